//! `ConnectionPoolSettings` (also Sidecar's inbound pool) and `OutlierDetection`.

use serde::{Deserialize, Serialize};

use super::super::net_checks;
use crate::path::FieldPath;
use crate::types::Duration;
use crate::validation::{Context, Problems, Validate};

/// `ConnectionPoolSettings`: limits on connections and requests per upstream host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionPoolSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSettings>,
}

/// `ConnectionPoolSettings.TCPSettings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connection_duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
}

/// `TCPSettings.TcpKeepalive`: SO_KEEPALIVE settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpKeepalive {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

crate::string_enum! {
    /// `HTTPSettings.H2UpgradePolicy`.
    pub enum H2UpgradePolicy {
        Default = "DEFAULT",
        DoNotUpgrade = "DO_NOT_UPGRADE",
        Upgrade = "UPGRADE",
    }
}

/// `ConnectionPoolSettings.HTTPSettings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http1_max_pending_requests: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_max_requests: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_client_protocol: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_keep_alive: Option<Http2KeepAlive>,
}

/// `HTTPSettings.http2KeepAlive`: HTTP/2 PING keepalive towards the upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http2KeepAlive {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// `OutlierDetection`: eject hosts that keep failing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_external_local_origin_errors: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_local_origin_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_errors: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_5xx_errors: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_health_percent: Option<i32>,
    /// Deprecated: use `consecutiveGatewayErrors` or `consecutive5xxErrors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_errors: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outlier_detection_http_error_codes: Vec<u32>,
}

fn non_negative(v: Option<i32>, what: &str, path: &FieldPath, p: &mut Problems) {
    if let Some(n) = v.filter(|n| *n < 0) {
        p.error(
            path,
            format!("{what} must be non-negative (got {n}): use 0 or a positive number"),
        );
    }
}

fn duration(d: &Option<Duration>, path: &FieldPath, p: &mut Problems) {
    if let Some(d) = d {
        net_checks::proxy_duration(d, path, p);
    }
}

impl Validate for ConnectionPoolSettings {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        if self.http.is_none() && self.tcp.is_none() {
            p.error(
                path,
                "connection pool must have at least one field: set tcp or http, or remove it",
            );
            return;
        }
        if let Some(h) = &self.http {
            let at = path.field("http");
            non_negative(
                h.http1_max_pending_requests,
                "http1 max pending requests",
                &at.field("http1MaxPendingRequests"),
                p,
            );
            non_negative(
                h.http2_max_requests,
                "http2 max requests",
                &at.field("http2MaxRequests"),
                p,
            );
            non_negative(
                h.max_requests_per_connection,
                "max requests per connection",
                &at.field("maxRequestsPerConnection"),
                p,
            );
            non_negative(h.max_retries, "max retries", &at.field("maxRetries"), p);
            non_negative(
                h.max_concurrent_streams,
                "max concurrent streams",
                &at.field("maxConcurrentStreams"),
                p,
            );
            duration(&h.idle_timeout, &at.field("idleTimeout"), p);
            if h.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade)
                && h.use_client_protocol == Some(true)
            {
                p.error(
                    &at.field("useClientProtocol"),
                    "use client protocol must not be true when H2UpgradePolicy is UPGRADE: choose one",
                );
            }
            if let Some(k) = &h.http2_keep_alive {
                let kp = at.field("http2KeepAlive");
                duration(&k.interval, &kp.field("interval"), p);
                duration(&k.timeout, &kp.field("timeout"), p);
            }
        }
        if let Some(t) = &self.tcp {
            let at = path.field("tcp");
            non_negative(
                t.max_connections,
                "max connections",
                &at.field("maxConnections"),
                p,
            );
            duration(&t.connect_timeout, &at.field("connectTimeout"), p);
            duration(
                &t.max_connection_duration,
                &at.field("maxConnectionDuration"),
                p,
            );
            duration(&t.idle_timeout, &at.field("idleTimeout"), p);
            if let Some(k) = &t.tcp_keepalive {
                let kp = at.field("tcpKeepalive");
                duration(&k.time, &kp.field("time"), p);
                duration(&k.interval, &kp.field("interval"), p);
            }
        }
    }
}

impl Validate for OutlierDetection {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        duration(&self.base_ejection_time, &path.field("baseEjectionTime"), p);
        duration(&self.interval, &path.field("interval"), p);
        if self.consecutive_errors.is_some_and(|n| n != 0) {
            p.warn(
                &path.field("consecutiveErrors"),
                "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
            );
        }
        if self.split_external_local_origin_errors != Some(true)
            && self
                .consecutive_local_origin_failures
                .is_some_and(|n| n > 0)
        {
            p.error(
                &path.field("consecutiveLocalOriginFailures"),
                "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false: set splitExternalLocalOriginErrors: true",
            );
        }
        if let Some(v) = self.max_ejection_percent {
            net_checks::int_percent(v, &path.field("maxEjectionPercent"), p);
        }
        if let Some(v) = self.min_health_percent {
            net_checks::int_percent(v, &path.field("minHealthPercent"), p);
        }
        for (i, c) in self.outlier_detection_http_error_codes.iter().enumerate() {
            if !(100..=599).contains(c) {
                p.error(
                    &path.field("outlierDetectionHttpErrorCodes").index(i),
                    format!("HTTP status {c} is invalid: outlier detection error codes must be between 100 and 599"),
                );
            }
        }
    }
}
