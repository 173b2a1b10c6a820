//! The capture settings, parsed and checked from istio-iptables' string flags.

use std::fmt;

use ipnet::IpNet;

/// How inbound connections reach the proxy: `REDIRECT` (NAT, the proxy sees its own
/// address as the destination and asks SO_ORIGINAL_DST) or `TPROXY` (mangle + policy
/// routing; the original source address is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterceptionMode {
    Redirect,
    Tproxy,
}

/// A list flag where `*` means "everything".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<T> {
    All,
    Only(Vec<T>),
}

impl<T> Selection<T> {
    pub fn is_empty(&self) -> bool {
        matches!(self, Selection::Only(v) if v.is_empty())
    }
}

/// Everything the rule builder needs; no I/O happens while building it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    pub outbound_port: u16,
    pub inbound_port: u16,
    /// Istio's HBONE tunnel port: never captured inbound, never looped back outbound.
    pub tunnel_port: u16,
    pub proxy_uids: Vec<u32>,
    pub proxy_gids: Vec<u32>,
    pub mode: InterceptionMode,
    pub outbound_cidrs: Selection<IpNet>,
    pub outbound_exclude_cidrs: Vec<IpNet>,
    pub inbound_ports: Selection<u16>,
    pub inbound_exclude_ports: Vec<u16>,
    pub outbound_exclude_ports: Vec<u16>,
    pub outbound_include_ports: Vec<u16>,
    pub kube_virt_interfaces: Vec<String>,
    /// Capture DNS (UDP and TCP port 53) from everyone but the proxy to `dns_port`.
    pub redirect_dns: bool,
    pub dns_port: u16,
    pub tproxy_mark: u32,
    pub tproxy_route_table: u32,
}

/// A flag value that cannot be used, with the flag's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

fn err(flag: &'static str, message: impl fmt::Display) -> ConfigError {
    ConfigError {
        flag,
        message: message.to_string(),
    }
}

fn items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

pub fn parse_port(flag: &'static str, value: &str) -> Result<u16, ConfigError> {
    match value.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(err(flag, format!("{value:?} is not a port (1-65535)"))),
    }
}

pub fn parse_ports(flag: &'static str, value: &str) -> Result<Vec<u16>, ConfigError> {
    items(value).map(|p| parse_port(flag, p)).collect()
}

pub fn parse_port_selection(
    flag: &'static str,
    value: &str,
) -> Result<Selection<u16>, ConfigError> {
    if value.trim() == "*" {
        return Ok(Selection::All);
    }
    parse_ports(flag, value).map(Selection::Only)
}

pub fn parse_ids(flag: &'static str, value: &str) -> Result<Vec<u32>, ConfigError> {
    let ids: Vec<u32> = items(value)
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| err(flag, format!("{v:?} is not a numeric id")))
        })
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err(err(
            flag,
            "give at least one numeric id (the proxy runs as 1337)",
        ));
    }
    Ok(ids)
}

pub fn parse_cidrs(flag: &'static str, value: &str) -> Result<Vec<IpNet>, ConfigError> {
    items(value)
        .map(|c| {
            c.parse::<IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| err(flag, format!("{c:?} is not a CIDR like 10.0.0.0/8")))
        })
        .collect()
}

pub fn parse_cidr_selection(
    flag: &'static str,
    value: &str,
) -> Result<Selection<IpNet>, ConfigError> {
    if value.trim() == "*" {
        return Ok(Selection::All);
    }
    parse_cidrs(flag, value).map(Selection::Only)
}

pub fn parse_mode(value: &str) -> Result<InterceptionMode, ConfigError> {
    match value.trim().to_ascii_uppercase().as_str() {
        "" | "REDIRECT" => Ok(InterceptionMode::Redirect),
        "TPROXY" => Ok(InterceptionMode::Tproxy),
        other => Err(err(
            "--istio-inbound-interception-mode",
            format!("{other:?} is not REDIRECT or TPROXY"),
        )),
    }
}

pub fn parse_interfaces(value: &str) -> Result<Vec<String>, ConfigError> {
    items(value)
        .map(|i| {
            let ok = i.len() < 16
                && i.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
            if ok {
                Ok(i.to_string())
            } else {
                Err(err(
                    "--kube-virt-interfaces",
                    format!("{i:?} is not an interface name"),
                ))
            }
        })
        .collect()
}

impl CaptureConfig {
    /// Whether PREROUTING sends anything to ISTIO_INBOUND.
    pub fn captures_inbound(&self) -> bool {
        !self.inbound_ports.is_empty()
    }
}
