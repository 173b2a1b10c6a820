//! istio-iptables: the rules that capture a pod's traffic into the proxy.
//!
//! Same flags, chains and meaning as Istio's `istio-iptables` (see docs/iptables.md);
//! the defaults are what Istio's injector passes (`-i '*' -b '*' -d 15090,15021,15020`),
//! so `ironmesh-proxy iptables` alone sets up a standard sidecar. The rule text is built
//! by [`rules`] (pure) and applied by [`apply`] with `iptables-restore --noflush`.

pub mod apply;
pub mod config;
pub mod rules;

use std::process::ExitCode;

use config::{CaptureConfig, ConfigError};
use rules::{Existing, Family};

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "" | "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

/// `ironmesh-proxy iptables …` (istio-iptables' flags). Boxed so the CLI's command
/// enum stays small.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: Box<Flags>,
}

/// istio-iptables' flags, with the injector's values as defaults.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Flags {
    /// Port all outbound TCP is redirected to (the proxy's virtualOutbound listener).
    #[arg(short = 'p', long = "envoy-port", default_value = "15001")]
    pub envoy_port: String,
    /// Port all inbound TCP is redirected to (virtualInbound).
    #[arg(short = 'z', long = "inbound-capture-port", default_value = "15006")]
    pub inbound_capture_port: String,
    /// HBONE tunnel port: never captured.
    #[arg(short = 'e', long = "inbound-tunnel-port", default_value = "15008")]
    pub inbound_tunnel_port: String,
    /// UID(s) of the proxy, whose own traffic is never captured (comma separated).
    #[arg(short = 'u', long = "proxy-uid", default_value = "1337")]
    pub proxy_uid: String,
    /// GID(s) of the proxy (default: the same as --proxy-uid).
    #[arg(short = 'g', long = "proxy-gid", default_value = "")]
    pub proxy_gid: String,
    /// REDIRECT or TPROXY.
    #[arg(
        short = 'm',
        long = "istio-inbound-interception-mode",
        default_value = "REDIRECT"
    )]
    pub mode: String,
    /// Outbound CIDRs to capture, comma separated; `*` for all, empty for none.
    #[arg(short = 'i', long = "istio-service-cidr", default_value = "*")]
    pub service_cidr: String,
    /// Outbound CIDRs never captured (when -i is `*`).
    #[arg(short = 'x', long = "istio-service-exclude-cidr", default_value = "")]
    pub service_exclude_cidr: String,
    /// Inbound ports to capture; `*` for all, empty for none.
    #[arg(short = 'b', long = "istio-inbound-ports", default_value = "*")]
    pub inbound_ports: String,
    /// Inbound ports never captured (when -b is `*`).
    #[arg(
        short = 'd',
        long = "istio-local-exclude-ports",
        default_value = "15090,15021,15020"
    )]
    pub local_exclude_ports: String,
    /// Outbound ports captured whatever the destination.
    #[arg(short = 'q', long = "istio-outbound-ports", default_value = "")]
    pub outbound_ports: String,
    /// Outbound ports never captured.
    #[arg(
        short = 'o',
        long = "istio-local-outbound-ports-exclude",
        default_value = ""
    )]
    pub local_outbound_ports_exclude: String,
    /// Interfaces whose inbound traffic (from VMs) is treated as outbound.
    #[arg(short = 'k', long = "kube-virt-interfaces", default_value = "")]
    pub kube_virt_interfaces: String,
    /// TPROXY mark.
    #[arg(
        short = 't',
        long = "istio-inbound-tproxy-mark",
        default_value = "1337"
    )]
    pub tproxy_mark: String,
    /// TPROXY routing table.
    #[arg(
        short = 'r',
        long = "istio-inbound-tproxy-route-table",
        default_value = "133"
    )]
    pub tproxy_route_table: String,
    /// Capture DNS (UDP and TCP port 53) from everyone but the proxy to the DNS proxy.
    #[arg(long = "redirect-dns", num_args = 0..=1, default_value = "false", default_missing_value = "true", value_parser = parse_bool)]
    pub redirect_dns: bool,
    /// Accepted for compatibility: ironmesh always captures all port-53 traffic when
    /// --redirect-dns is on.
    #[arg(long = "capture-all-dns", num_args = 0..=1, default_value = "false", default_missing_value = "true", value_parser = parse_bool)]
    pub capture_all_dns: bool,
    /// Port of the DNS proxy.
    #[arg(long = "dns-port", default_value = "15053")]
    pub dns_port: String,
    /// Print the iptables-restore input instead of applying it.
    #[arg(short = 'n', long = "dry-run", num_args = 0..=1, default_value = "false", default_missing_value = "true", value_parser = parse_bool)]
    pub dry_run: bool,
    /// Install the same rules for IPv6 too (ip6tables; `::6` and `::1` in place of
    /// 127.0.0.6 and 127.0.0.1).
    #[arg(long = "dual-stack", num_args = 0..=1, default_value = "false", default_missing_value = "true", value_parser = parse_bool)]
    pub dual_stack: bool,
    /// Accepted for compatibility with istio-init's arguments; ignored.
    #[arg(long = "log_output_level", default_value = "")]
    pub log_output_level: String,
}

impl Args {
    /// The checked settings.
    pub fn config(&self) -> Result<CaptureConfig, ConfigError> {
        self.flags.config()
    }
}

impl Flags {
    /// The checked settings.
    pub fn config(&self) -> Result<CaptureConfig, ConfigError> {
        use config::*;
        let proxy_uids = parse_ids("--proxy-uid", &self.proxy_uid)?;
        let proxy_gids = if self.proxy_gid.trim().is_empty() {
            proxy_uids.clone()
        } else {
            parse_ids("--proxy-gid", &self.proxy_gid)?
        };
        let number = |flag: &'static str, v: &str| {
            v.trim().parse::<u32>().map_err(|_| ConfigError {
                flag,
                message: format!("{v:?} is not a number"),
            })
        };
        Ok(CaptureConfig {
            outbound_port: parse_port("--envoy-port", &self.envoy_port)?,
            inbound_port: parse_port("--inbound-capture-port", &self.inbound_capture_port)?,
            tunnel_port: parse_port("--inbound-tunnel-port", &self.inbound_tunnel_port)?,
            proxy_uids,
            proxy_gids,
            mode: parse_mode(&self.mode)?,
            outbound_cidrs: parse_cidr_selection("--istio-service-cidr", &self.service_cidr)?,
            outbound_exclude_cidrs: parse_cidrs(
                "--istio-service-exclude-cidr",
                &self.service_exclude_cidr,
            )?,
            inbound_ports: parse_port_selection("--istio-inbound-ports", &self.inbound_ports)?,
            inbound_exclude_ports: parse_ports(
                "--istio-local-exclude-ports",
                &self.local_exclude_ports,
            )?,
            outbound_exclude_ports: parse_ports(
                "--istio-local-outbound-ports-exclude",
                &self.local_outbound_ports_exclude,
            )?,
            outbound_include_ports: parse_ports("--istio-outbound-ports", &self.outbound_ports)?,
            kube_virt_interfaces: parse_interfaces(&self.kube_virt_interfaces)?,
            redirect_dns: self.redirect_dns,
            dns_port: parse_port("--dns-port", &self.dns_port)?,
            tproxy_mark: number("--istio-inbound-tproxy-mark", &self.tproxy_mark)?,
            tproxy_route_table: number(
                "--istio-inbound-tproxy-route-table",
                &self.tproxy_route_table,
            )?,
        })
    }
}

/// `ironmesh-proxy cleanup-iptables …`
#[derive(Debug, Clone, clap::Args)]
pub struct CleanupArgs {
    /// TPROXY mark whose routing rule to remove.
    #[arg(
        short = 't',
        long = "istio-inbound-tproxy-mark",
        default_value = "1337"
    )]
    pub tproxy_mark: u32,
    /// TPROXY routing table to flush.
    #[arg(
        short = 'r',
        long = "istio-inbound-tproxy-route-table",
        default_value = "133"
    )]
    pub tproxy_route_table: u32,
    /// Print the iptables-restore input instead of applying it.
    #[arg(short = 'n', long = "dry-run", num_args = 0..=1, default_value = "false", default_missing_value = "true", value_parser = parse_bool)]
    pub dry_run: bool,
}

/// Installs the rules (or prints them with --dry-run).
pub fn run(args: Args) -> ExitCode {
    let cfg = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ironmesh-proxy iptables: {e}");
            return ExitCode::from(2);
        }
    };
    let mut families = vec![Family::V4];
    if args.flags.dual_stack {
        families.push(Family::V6);
    }
    if args.flags.dry_run {
        for f in families {
            if f == Family::V6 {
                println!("# ip6tables-restore --noflush");
            }
            let ruleset = rules::build_for(&cfg, f);
            print!("{}", rules::restore_input(&ruleset, &Existing::default()));
        }
        return ExitCode::SUCCESS;
    }
    for f in families {
        if let Err(e) = install(&cfg, f) {
            eprintln!("ironmesh-proxy iptables: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn install(cfg: &CaptureConfig, f: Family) -> Result<(), apply::ApplyError> {
    if cfg.mode == config::InterceptionMode::Tproxy && cfg.captures_inbound() {
        apply::add_tproxy_routes(cfg.tproxy_mark, cfg.tproxy_route_table, f)?;
    }
    let text = apply::apply(&rules::build_for(cfg, f), f)?;
    eprintln!(
        "ironmesh-proxy iptables: applied {} {} rules",
        text.lines().filter(|l| l.starts_with("-A ")).count(),
        match f {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    );
    Ok(())
}

/// Removes every rule and chain `iptables` installed (IPv4, and IPv6 when any of ours
/// is there); succeeds when there are none.
pub fn cleanup(args: CleanupArgs) -> ExitCode {
    // IPv6 is optional: a host without ip6tables simply has nothing of ours there.
    let v6_installed = apply::existing(Family::V6).is_ok_and(|e| !e.is_empty());
    let mut families = vec![Family::V4];
    if v6_installed {
        families.push(Family::V6);
    }
    if args.dry_run {
        for f in families {
            match apply::existing(f) {
                Ok(e) => {
                    if f == Family::V6 {
                        println!("# ip6tables-restore --noflush");
                    }
                    print!("{}", rules::cleanup_input(&e).unwrap_or_default())
                }
                Err(e) => {
                    eprintln!("ironmesh-proxy cleanup-iptables: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    let mut removed = false;
    for f in families {
        let result = apply::cleanup(f);
        apply::remove_tproxy_routes(args.tproxy_mark, args.tproxy_route_table, f);
        match result {
            Ok(r) => removed |= r.is_some(),
            Err(e) => {
                eprintln!("ironmesh-proxy cleanup-iptables: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if removed {
        eprintln!("ironmesh-proxy cleanup-iptables: removed the capture rules");
    } else {
        eprintln!("ironmesh-proxy cleanup-iptables: nothing to remove");
    }
    ExitCode::SUCCESS
}
