//! Sidecar (networking.istio.io): what a sidecar listens for and may reach.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::destination_rule::ConnectionPoolSettings;
use super::gateway::{Port, ServerTlsMode, ServerTlsSettings};
use super::net_checks::{self, Protocol};
use super::workload_entry::UNIX_PREFIX;
use crate::path::FieldPath;
use crate::types::{PortSelector, WorkloadSelector};
use crate::validation::{checks, Context, Problems, Validate};

/// `SidecarPort`: the same shape as a Gateway server port.
pub type SidecarPort = Port;

crate::string_enum! {
    /// `CaptureMode`: how traffic reaches a listener.
    pub enum CaptureMode { Default = "DEFAULT", Iptables = "IPTABLES", None = "NONE" }
}

crate::string_enum! {
    /// `OutboundTrafficPolicy.Mode`.
    pub enum OutboundMode { RegistryOnly = "REGISTRY_ONLY", AllowAny = "ALLOW_ANY" }
}

/// `Sidecar`: the ingress and egress listeners of selected workloads' proxies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sidecar {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<IngressListener>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressListener>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_connection_pool: Option<ConnectionPoolSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
}

/// `IstioIngressListener`: a port the workload serves, forwarded to `defaultEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressListener {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<SidecarPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_mode: Option<CaptureMode>,
    /// `127.0.0.1:PORT`, `0.0.0.0:PORT`, `[::1]:PORT`, `[::]:PORT` or `unix://...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
}

/// `IstioEgressListener`: the hosts reachable through one outbound port (or all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressListener {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<SidecarPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_mode: Option<CaptureMode>,
    /// `namespace/dnsName` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// `OutboundTrafficPolicy`: what to do with traffic to unknown destinations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundTrafficPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<OutboundMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_proxy: Option<EgressProxy>,
}

/// `OutboundTrafficPolicy.egressProxy`: a `Destination` (host, subset, port) that
/// unknown traffic is sent to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EgressProxy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

impl Validate for Sidecar {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if let Some(sel) = &self.workload_selector {
            net_checks::networking_workload_selector(
                &sel.labels,
                "sidecar",
                &path.field("workloadSelector"),
                p,
            );
        }
        if self.egress.is_empty()
            && self.ingress.is_empty()
            && self.outbound_traffic_policy.is_none()
            && self.inbound_connection_pool.is_none()
        {
            p.error(
                path,
                "sidecar: empty configuration provided: set egress (e.g. hosts [\"./*\", \"istio-system/*\"]), ingress, outboundTrafficPolicy or inboundConnectionPool",
            );
            return;
        }

        let mut ports = BTreeSet::new();
        for (i, l) in self.ingress.iter().enumerate() {
            let at = path.field("ingress").index(i);
            l.validate(cx, &at, p);
            if let Some(n) = l.port.as_ref().and_then(|x| x.number) {
                if !ports.insert(n) {
                    p.error(
                        &at.field("port").field("number"),
                        format!("sidecar: ports on IP bound listeners must be unique: port {n} is used twice"),
                    );
                }
            }
        }
        self.inbound_connection_pool
            .validate(cx, &path.field("inboundConnectionPool"), p);

        let mut ports = BTreeSet::new();
        let mut sockets = BTreeSet::new();
        let mut catch_all = false;
        let last = self.egress.len().saturating_sub(1);
        for (i, l) in self.egress.iter().enumerate() {
            let at = path.field("egress").index(i);
            match &l.port {
                None => {
                    if catch_all {
                        p.error(
                            &at,
                            "sidecar: egress can have only one listener with empty port (the catch-all)",
                        );
                        continue;
                    }
                    if i == last {
                        catch_all = true;
                    } else {
                        p.error(
                            &at,
                            "sidecar: the egress listener with empty port should be the last listener in the list",
                        );
                        catch_all = true;
                    }
                }
                Some(port) => {
                    let number = port.number.unwrap_or(0);
                    let bind = l.bind.as_deref().unwrap_or("");
                    if number == 0 {
                        if !sockets.insert(bind) {
                            p.error(
                                &at.field("bind"),
                                "sidecar: unix domain socket values for listeners must be unique",
                            );
                        }
                    } else if !ports.insert(number) {
                        p.error(
                            &at.field("port").field("number"),
                            format!("sidecar: ports on IP bound listeners must be unique: port {number} is used twice"),
                        );
                    }
                }
            }
            l.validate(cx, &at, p);
        }

        if let Some(o) = &self.outbound_traffic_policy {
            o.validate(cx, &path.field("outboundTrafficPolicy"), p);
        }
    }
}

fn port_name_and_protocol(port: &SidecarPort, path: &FieldPath, p: &mut Problems) {
    if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
        p.check(&path.field("name"), net_checks::port_name(name));
    }
    net_checks::optional_protocol(
        port.protocol.as_deref().unwrap_or(""),
        &path.field("protocol"),
        p,
    );
    if port.target_port.is_some_and(|t| t > 0) {
        p.error(
            &path.field("targetPort"),
            "targetPort has no impact on Sidecars: remove it (use defaultEndpoint to pick the application port)",
        );
    }
}

impl Validate for IngressListener {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let pp = path.field("port");
        let Some(port) = &self.port else {
            p.error(
                &pp,
                "sidecar: port is required for ingress listeners: Required value",
            );
            return;
        };
        port_name_and_protocol(port, &pp, p);
        p.check(&pp.field("number"), checks::port(port.number.unwrap_or(0)));
        if let Some(b) = self.bind.as_deref().filter(|b| !b.is_empty()) {
            p.check(&path.field("bind"), net_checks::ip(b));
        }
        if let Some(ep) = self.default_endpoint.as_deref().filter(|e| !e.is_empty()) {
            p.check(&path.field("defaultEndpoint"), default_endpoint(ep));
        }
        if let Some(tls) = &self.tls {
            let tp = path.field("tls");
            if !tls.subject_alt_names.is_empty() {
                p.error(
                    &tp.field("subjectAltNames"),
                    "sidecar: subjectAltNames is not supported in ingress tls",
                );
            }
            if tls.https_redirect == Some(true) {
                p.error(
                    &tp.field("httpsRedirect"),
                    "sidecar: httpsRedirect is not supported",
                );
            }
            if tls
                .credential_name
                .as_deref()
                .is_some_and(|c| !c.is_empty())
            {
                p.error(
                    &tp.field("credentialName"),
                    "sidecar: credentialName is not currently supported: use serverCertificate, privateKey and caCertificates files",
                );
            }
            let mode = tls.mode.unwrap_or(ServerTlsMode::Passthrough);
            if matches!(
                mode,
                ServerTlsMode::IstioMutual | ServerTlsMode::AutoPassthrough
            ) {
                p.error(
                    &tp.field("mode"),
                    format!("configuration is invalid: cannot set mode to {mode} in sidecar ingress tls: use SIMPLE or MUTUAL"),
                );
            }
            tls.validate(cx, &tp, p);
        }
        if let Some(pool) = &self.connection_pool {
            pool.validate(cx, &path.field("connectionPool"), p);
            let http = port
                .protocol
                .as_deref()
                .and_then(Protocol::parse)
                .is_some_and(Protocol::is_http);
            if pool.http.is_some() && !http {
                p.warn(
                    &path.field("connectionPool").field("http"),
                    format!(
                        "sidecar: HTTP connection pool settings are configured for port {} but its protocol is not HTTP; only TCP settings will apply",
                        port.number.unwrap_or(0)
                    ),
                );
            }
        }
    }
}

/// `defaultEndpoint`: a loopback or any-address with a port, or a Unix socket.
fn default_endpoint(ep: &str) -> Result<(), String> {
    const FORMS: &str =
        "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset";
    if let Some(sock) = ep.strip_prefix(UNIX_PREFIX) {
        return net_checks::unix_address(sock);
    }
    let (host, port) = ep
        .rsplit_once(':')
        .ok_or_else(|| format!("{FORMS} (got {ep:?})"))?;
    let host = match host.strip_prefix('[') {
        Some(h) => h
            .strip_suffix(']')
            .ok_or_else(|| format!("{FORMS} (got {ep:?})"))?,
        None if host.contains(':') => {
            return Err(format!(
                "{FORMS} (got {ep:?}): put IPv6 addresses in brackets"
            ))
        }
        None => host,
    };
    if !matches!(host, "" | "127.0.0.1" | "0.0.0.0" | "::1" | "::") {
        return Err(format!("{FORMS} (got {ep:?})"));
    }
    let n: u32 = port
        .parse()
        .map_err(|_| format!("sidecar: defaultEndpoint port ({port}) is not a number"))?;
    checks::port(n)
}

impl Validate for EgressListener {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if let Some(port) = &self.port {
            let pp = path.field("port");
            port_name_and_protocol(port, &pp, p);
            let bind = self.bind.as_deref().unwrap_or("");
            let bp = path.field("bind");
            match port.number.unwrap_or(0) {
                0 => {
                    match bind.strip_prefix(UNIX_PREFIX) {
                        Some(sock) => p.check(&bp, net_checks::unix_address(sock)),
                        None => p.error(
                            &pp.field("number"),
                            "sidecar: ports with 0 value must have a unix domain socket bind address (unix:///path or unix://@name); otherwise port must be between 1-65535",
                        ),
                    }
                    if !matches!(
                        self.capture_mode,
                        None | Some(CaptureMode::Default | CaptureMode::None)
                    ) {
                        p.error(
                            &path.field("captureMode"),
                            "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
                        );
                    }
                }
                n => {
                    p.check(&pp.field("number"), checks::port(n));
                    if !bind.is_empty() {
                        p.check(&bp, net_checks::ip(bind));
                    }
                }
            }
        }

        let hp = path.field("hosts");
        if self.hosts.is_empty() {
            p.error(
                &hp,
                "sidecar: egress listener must contain at least one host: Required value; e.g. [\"./*\", \"istio-system/*\"]",
            );
            return;
        }
        let mut by_ns: std::collections::BTreeMap<&str, BTreeSet<&str>> = Default::default();
        for (i, h) in self.hosts.iter().enumerate() {
            let at = hp.index(i);
            p.check(&at, net_checks::ns_slash_host(h, false));
            if let Some((ns, svc)) = h.split_once('/') {
                let seen = by_ns.entry(ns).or_default();
                let dup = if svc == "*" {
                    !seen.is_empty()
                } else {
                    seen.contains(svc) || seen.contains("*")
                };
                if dup {
                    p.warn(&at, format!("duplicated egress host: {h}"));
                }
                seen.insert(svc);
            }
        }
        if by_ns.get("*").is_some_and(|s| s.contains("*")) && by_ns.len() != 1 {
            p.warn(
                &hp,
                "`*/*` host select all resources, no other hosts can be added",
            );
        }
    }
}

impl Validate for OutboundTrafficPolicy {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let Some(proxy) = &self.egress_proxy else {
            return;
        };
        let at = path.field("egressProxy");
        if self.mode != Some(OutboundMode::AllowAny) {
            p.error(
                &at,
                "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
            );
            return;
        }
        match proxy.host.as_deref() {
            None | Some("") => p.error(
                &at.field("host"),
                "Required value: egressProxy.host names the proxy service, e.g. egress.istio-system.svc.cluster.local",
            ),
            Some(h) => p.check(&at.field("host"), net_checks::fqdn(h)),
        }
        if let Some(s) = proxy.subset.as_deref().filter(|s| !s.is_empty()) {
            if !checks::is_dns1123_label(s) {
                p.error(&at.field("subset"), format!("subset name is invalid: {s}"));
            }
        }
        match proxy.port.and_then(|x| x.number) {
            None => p.error(
                &at.field("port"),
                "sidecar: egress_proxy port must be non-nil: set port.number",
            ),
            Some(n) => p.check(&at.field("port").field("number"), checks::port(n)),
        }
    }
}

#[cfg(test)]
mod tests;
