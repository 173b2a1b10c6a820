//! DestinationRule (networking.istio.io): traffic policy and subsets for a host.
//!
//! The load balancer, connection pool / outlier detection and client TLS settings live
//! in sibling files (they are reused by Sidecar and MeshConfig) and are re-exported here.

mod client_tls;
mod connection_pool;
mod load_balancer;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use client_tls::{ClientTlsMode, ClientTlsSettings};
pub use connection_pool::{
    ConnectionPoolSettings, H2UpgradePolicy, Http2KeepAlive, HttpSettings, OutlierDetection,
    TcpKeepalive, TcpSettings,
};
pub use load_balancer::{
    ConsistentHashLb, CookieAttribute, Distribute, Failover, HttpCookie, LoadBalancerSettings,
    LocalityLoadBalancerSetting, MaglevLb, RingHashLb, SimpleLb, WarmupConfiguration,
    ZoneAwareLbSetting,
};

use super::net_checks;
use crate::path::FieldPath;
use crate::types::{Duration, LabelSelector, PortSelector};
use crate::validation::{checks, Context, Problems, Validate};

/// `DestinationRule`: policies applied to traffic for a host after routing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationRule {
    /// The service the rule applies to (a registry host name, wildcards allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<LabelSelector>,
}

/// `Subset`: a named set of endpoints (by labels) with its own traffic policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subset {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
}

/// `TrafficPolicy`: load balancing, connection pool, outlier detection, TLS and more.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_level_settings: Vec<PortTrafficPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<RetryBudget>,
}

/// `TrafficPolicy.PortTrafficPolicy`: a policy for one destination port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortTrafficPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
}

/// `TrafficPolicy.TunnelSettings`: tunnel TCP through HTTP CONNECT or POST.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TunnelSettings {
    /// `CONNECT` (default) or `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}

crate::string_enum! {
    /// `TrafficPolicy.ProxyProtocol.VERSION`.
    pub enum ProxyProtocolVersion { V1 = "V1", V2 = "V2" }
}

/// `TrafficPolicy.ProxyProtocol`: send a PROXY protocol header upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyProtocol {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ProxyProtocolVersion>,
}

/// `TrafficPolicy.RetryBudget`: a limit on concurrent retries relative to active
/// requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    /// Percent of active requests that may be retries (0-100, default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_retry_concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_interval: Option<Duration>,
}

impl Validate for DestinationRule {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let host_path = path.field("host");
        match self.host.as_deref() {
            None | Some("") => p.error(
                &host_path,
                "Required value: set the service this rule applies to, e.g. reviews.prod.svc.cluster.local",
            ),
            Some(h) => p.check(&host_path, net_checks::wildcard_host(h)),
        }
        self.traffic_policy
            .validate(cx, &path.field("trafficPolicy"), p);

        let mut names = BTreeSet::new();
        for (i, s) in self.subsets.iter().enumerate() {
            let at = path.field("subsets").index(i);
            if let Some(n) = s.name.as_deref() {
                if !n.is_empty() && !names.insert(n) {
                    p.error(
                        &at.field("name"),
                        format!("duplicate subset names: {n}: each subset needs its own name"),
                    );
                }
            }
            s.validate(cx, &at, p);
        }

        let export_path = path.field("exportTo");
        net_checks::export_to(cx, &self.export_to, false, &export_path, p);
        if let Some(sel) = &self.workload_selector {
            let sel_path = path.field("workloadSelector");
            validate_label_selector(sel, &sel_path, p);
            let own: BTreeSet<&str> = self
                .export_to
                .iter()
                .map(|e| if e == "." { cx.namespace } else { e.as_str() })
                .collect();
            if !own.is_empty() {
                if !own.contains(cx.namespace) {
                    p.error(
                        &export_path,
                        "destination rule with workload selector cannot have exportTo beyond current namespace: use exportTo [\".\"] or leave it out",
                    );
                } else if own.len() > 1 {
                    p.error(
                        &export_path,
                        "destination rule with workload selector cannot have multiple entries in exportTo: only the rule's own namespace (\".\") is allowed",
                    );
                }
            }
        }
    }
}

/// A `matchLabels` selector: valid labels, no wildcards; an empty one warns.
fn validate_label_selector(sel: &LabelSelector, path: &FieldPath, p: &mut Problems) {
    let at = path.field("matchLabels");
    for k in sel.match_labels.keys() {
        if k.is_empty() {
            p.error(
                &at,
                "empty key is not supported in selector: use a label name such as app",
            );
        }
    }
    checks::selector_labels(&sel.match_labels, &at, p);
    if sel.match_labels.is_empty() {
        p.warn(
            path,
            "workload selector specified without labels: the rule applies to every workload in the namespace",
        );
    }
}

impl Validate for Subset {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let name_path = path.field("name");
        match self.name.as_deref() {
            None | Some("") => p.error(
                &name_path,
                "subset name cannot be empty: Required value; use a DNS label such as v1",
            ),
            Some(n) if !checks::is_dns1123_label(n) => p.error(
                &name_path,
                format!(
                    "subset name is invalid: {n}: use letters, digits and '-' (1-63 characters, starting and ending with a letter or digit)"
                ),
            ),
            Some(_) => {}
        }
        net_checks::labels(&self.labels, &path.field("labels"), p);
        self.traffic_policy
            .validate(cx, &path.field("trafficPolicy"), p);
    }
}

impl TrafficPolicy {
    fn is_empty(&self) -> bool {
        self.load_balancer.is_none()
            && self.connection_pool.is_none()
            && self.outlier_detection.is_none()
            && self.tls.is_none()
            && self.port_level_settings.is_empty()
            && self.tunnel.is_none()
            && self.proxy_protocol.is_none()
            && self.retry_budget.is_none()
    }
}

impl Validate for TrafficPolicy {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if self.is_empty() {
            p.error(
                path,
                "traffic policy must have at least one field: set loadBalancer, connectionPool, outlierDetection, tls, portLevelSettings, tunnel, proxyProtocol or retryBudget, or remove it",
            );
            return;
        }
        if self.tunnel.is_some() && self.proxy_protocol.is_some() {
            p.error(
                path,
                "tunnel and proxyProtocol must not be set together: choose one way to carry the client address",
            );
        }
        self.outlier_detection
            .validate(cx, &path.field("outlierDetection"), p);
        self.connection_pool
            .validate(cx, &path.field("connectionPool"), p);
        if let Some(lb) = &self.load_balancer {
            lb.validate_with_outlier(
                self.outlier_detection.is_some(),
                &path.field("loadBalancer"),
                p,
            );
        }
        self.tls.validate(cx, &path.field("tls"), p);

        let mut ports = BTreeSet::new();
        for (i, pl) in self.port_level_settings.iter().enumerate() {
            let at = path.field("portLevelSettings").index(i);
            if let Some(n) = pl.port.and_then(|s| s.number) {
                if !ports.insert(n) {
                    p.warn(
                        &at.field("port").field("number"),
                        format!("port {n} appears in more than one portLevelSettings entry: only one of them takes effect"),
                    );
                }
            }
            pl.validate(cx, &at, p);
        }
        self.tunnel.validate(cx, &path.field("tunnel"), p);
        self.retry_budget
            .validate(cx, &path.field("retryBudget"), p);
    }
}

impl Validate for PortTrafficPolicy {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let port_path = path.field("port");
        match self.port.and_then(|s| s.number) {
            None => p.error(
                &port_path,
                "portTrafficPolicy must have valid port: set port.number to the destination port (1-65535)",
            ),
            Some(n) => p.check(&port_path.field("number"), checks::port(n)),
        }
        if self.load_balancer.is_none()
            && self.connection_pool.is_none()
            && self.outlier_detection.is_none()
            && self.tls.is_none()
        {
            p.error(
                path,
                "port traffic policy must have at least one field: set loadBalancer, connectionPool, outlierDetection or tls",
            );
            return;
        }
        self.outlier_detection
            .validate(cx, &path.field("outlierDetection"), p);
        self.connection_pool
            .validate(cx, &path.field("connectionPool"), p);
        if let Some(lb) = &self.load_balancer {
            lb.validate_with_outlier(
                self.outlier_detection.is_some(),
                &path.field("loadBalancer"),
                p,
            );
        }
        self.tls.validate(cx, &path.field("tls"), p);
    }
}

impl Validate for TunnelSettings {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if let Some(proto) = self.protocol.as_deref() {
            if !proto.is_empty() && proto != "CONNECT" && proto != "POST" {
                p.error(
                    &path.field("protocol"),
                    format!("tunnel protocol must be \"CONNECT\" or \"POST\" (got {proto:?})"),
                );
            }
        }
        let host_path = path.field("targetHost");
        match self.target_host.as_deref() {
            None | Some("") => p.error(
                &host_path,
                "Required value: tunnel target host must be valid FQDN or IP address",
            ),
            Some(h) => {
                if net_checks::fqdn(h).is_err() && checks::ip(h).is_err() {
                    p.error(
                        &host_path,
                        format!("tunnel target host must be valid FQDN or IP address (got {h:?})"),
                    );
                }
            }
        }
        let port_path = path.field("targetPort");
        match self.target_port {
            None => p.error(
                &port_path,
                "Required value: tunnel target port is invalid: set the port (1-65535) to tunnel to",
            ),
            Some(n) => {
                if let Err(e) = checks::port(n) {
                    p.error(&port_path, format!("tunnel target port is invalid: {e}"));
                }
            }
        }
    }
}

impl Validate for RetryBudget {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if let Some(v) = self.percent {
            if !(0.0..=100.0).contains(&v) {
                p.error(
                    &path.field("percent"),
                    format!("Invalid value: {v}: retry budget percent must be between 0 and 100"),
                );
            }
        }
        if let Some(d) = &self.budget_interval {
            net_checks::proxy_duration(d, &path.field("budgetInterval"), p);
        }
    }
}
