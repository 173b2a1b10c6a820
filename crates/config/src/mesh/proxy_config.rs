//! ProxyConfig (`istio.mesh.v1alpha1.ProxyConfig`): the proxy's own settings, as
//! MeshConfig `defaultConfig` or a pod's `proxy.istio.io/config` annotation.
//!
//! Every field is optional on the wire; `Default` means "nothing set". The accessor
//! methods (`drain_duration()`, `proxy_admin_port()`, ...) return Istio's default for a
//! field that is not set, and [`ProxyConfig::effective`] returns a copy with all of
//! Istio's defaults filled in (what istiod hands the proxy).

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use serde::{Deserialize, Serialize};

use crate::types::Duration;

#[path = "proxy_config_validate.rs"]
pub(crate) mod validate;

pub use validate::host_port;

#[path = "proxy_config_types.rs"]
mod types;

pub use types::*;

/// ProxyConfig: per-proxy settings; every field optional, Istio defaults via accessors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyConfig {
    /// Directory for the generated Envoy configuration. Default `./etc/istio/proxy`.
    #[serde(
        default,
        alias = "config_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub config_path: Option<String>,
    /// Path to the proxy binary. Default `/usr/local/bin/envoy`.
    #[serde(
        default,
        alias = "binary_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub binary_path: Option<String>,
    /// Envoy `--service-cluster`; oneof with `tracingServiceName`. Default `istio-proxy`.
    #[serde(
        default,
        alias = "service_cluster",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_cluster: Option<String>,
    #[serde(
        default,
        alias = "tracing_service_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub tracing_service_name: Option<TracingServiceName>,
    /// Drain time on hot restart. Default 45s; whole seconds, at least 1ms.
    #[serde(
        default,
        alias = "drain_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub drain_duration: Option<Duration>,
    /// Deprecated. Default 60s.
    #[serde(
        default,
        alias = "parent_shutdown_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_shutdown_duration: Option<Duration>,
    /// xDS server `host:port`. Default `istiod.istio-system.svc:15012`.
    #[serde(
        default,
        alias = "discovery_address",
        skip_serializing_if = "Option::is_none"
    )]
    pub discovery_address: Option<String>,
    /// Deprecated.
    #[serde(
        default,
        alias = "discovery_refresh_delay",
        skip_serializing_if = "Option::is_none"
    )]
    pub discovery_refresh_delay: Option<Duration>,
    /// Deprecated: use `tracing.zipkin.address`.
    #[serde(
        default,
        alias = "zipkin_address",
        skip_serializing_if = "Option::is_none"
    )]
    pub zipkin_address: Option<String>,
    /// statsd UDP listener `host:port`.
    #[serde(
        default,
        alias = "statsd_udp_address",
        skip_serializing_if = "Option::is_none"
    )]
    pub statsd_udp_address: Option<String>,
    /// Deprecated: use `envoyMetricsService`.
    #[serde(
        default,
        alias = "envoy_metrics_service_address",
        skip_serializing_if = "Option::is_none"
    )]
    pub envoy_metrics_service_address: Option<String>,
    /// Envoy admin port. Default 15000.
    #[serde(
        default,
        alias = "proxy_admin_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_admin_port: Option<i32>,
    /// Deprecated.
    #[serde(
        default,
        alias = "availability_zone",
        skip_serializing_if = "Option::is_none"
    )]
    pub availability_zone: Option<String>,
    /// Default `MUTUAL_TLS`.
    #[serde(
        default,
        alias = "control_plane_auth_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub control_plane_auth_policy: Option<AuthenticationPolicy>,
    #[serde(
        default,
        alias = "custom_config_file",
        skip_serializing_if = "Option::is_none"
    )]
    pub custom_config_file: Option<String>,
    /// Maximum stat name length. Default 189.
    #[serde(
        default,
        alias = "stat_name_length",
        skip_serializing_if = "Option::is_none"
    )]
    pub stat_name_length: Option<i32>,
    /// Worker threads; 0 means all cores. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<i32>,
    #[serde(
        default,
        alias = "proxy_bootstrap_template_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_bootstrap_template_path: Option<String>,
    /// Default `REDIRECT`.
    #[serde(
        default,
        alias = "interception_mode",
        skip_serializing_if = "Option::is_none"
    )]
    pub interception_mode: Option<InterceptionMode>,
    /// Default: Zipkin at `zipkin.istio-system:9411`, sampling 1%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    /// Deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sds: Option<Sds>,
    #[serde(
        default,
        alias = "envoy_access_log_service",
        skip_serializing_if = "Option::is_none"
    )]
    pub envoy_access_log_service: Option<RemoteService>,
    #[serde(
        default,
        alias = "envoy_metrics_service",
        skip_serializing_if = "Option::is_none"
    )]
    pub envoy_metrics_service: Option<RemoteService>,
    /// Extra environment for the proxy (`ISTIO_META_*` goes to the xDS node metadata).
    #[serde(
        default,
        alias = "proxy_metadata",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub proxy_metadata: BTreeMap<String, String>,
    /// Envoy runtime values set at bootstrap.
    #[serde(
        default,
        alias = "runtime_values",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub runtime_values: BTreeMap<String, String>,
    /// Agent status/health port. Default 15020.
    #[serde(
        default,
        alias = "status_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub status_port: Option<i32>,
    #[serde(
        default,
        alias = "extra_stat_tags",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extra_stat_tags: Vec<String>,
    #[serde(
        default,
        alias = "gateway_topology",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_topology: Option<Topology>,
    /// Time allowed for connections to drain on shutdown. Default 5s.
    #[serde(
        default,
        alias = "termination_drain_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub termination_drain_duration: Option<Duration>,
    #[serde(default, alias = "mesh_id", skip_serializing_if = "Option::is_none")]
    pub mesh_id: Option<String>,
    #[serde(
        default,
        alias = "readiness_probe",
        skip_serializing_if = "Option::is_none"
    )]
    pub readiness_probe: Option<ReadinessProbe>,
    #[serde(
        default,
        alias = "proxy_stats_matcher",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_stats_matcher: Option<ProxyStatsMatcher>,
    /// Start the application only after the proxy is ready. Default false.
    #[serde(
        default,
        alias = "hold_application_until_proxy_starts",
        skip_serializing_if = "Option::is_none"
    )]
    pub hold_application_until_proxy_starts: Option<bool>,
    #[serde(
        default,
        alias = "ca_certificates_pem",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ca_certificates_pem: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ProxyImage>,
    #[serde(
        default,
        alias = "private_key_provider",
        skip_serializing_if = "Option::is_none"
    )]
    pub private_key_provider: Option<PrivateKeyProvider>,
    #[serde(
        default,
        alias = "proxy_headers",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_headers: Option<ProxyHeaders>,
    /// How often access log files are flushed. Default 1s.
    #[serde(
        default,
        alias = "file_flush_interval",
        skip_serializing_if = "Option::is_none"
    )]
    pub file_flush_interval: Option<Duration>,
    /// Buffer size (KiB) before an access log flush. Default 64.
    #[serde(
        default,
        alias = "file_flush_min_size_kb",
        skip_serializing_if = "Option::is_none"
    )]
    pub file_flush_min_size_kb: Option<u32>,
    /// Connection-level settings (timeouts, header handling, limits), kept as raw settings.
    #[serde(
        default,
        alias = "connection_settings",
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_settings: Option<super::mesh_config::JsonObject>,
}

/// Istio's default `configPath`.
pub const DEFAULT_CONFIG_PATH: &str = "./etc/istio/proxy";
/// Istio's default `binaryPath`.
pub const DEFAULT_BINARY_PATH: &str = "/usr/local/bin/envoy";
/// Istio's default `serviceCluster`.
pub const DEFAULT_SERVICE_CLUSTER: &str = "istio-proxy";
/// Istio's default `discoveryAddress`.
pub const DEFAULT_DISCOVERY_ADDRESS: &str = "istiod.istio-system.svc:15012";
/// Istio's default Zipkin address (`tracing.zipkin.address`).
pub const DEFAULT_ZIPKIN_ADDRESS: &str = "zipkin.istio-system:9411";
/// Istio's default `proxyAdminPort`.
pub const DEFAULT_PROXY_ADMIN_PORT: i32 = 15000;
/// Istio's default `statusPort`.
pub const DEFAULT_STATUS_PORT: i32 = 15020;

impl ProxyConfig {
    /// Istio's `DefaultProxyConfig`: what a proxy gets when nothing is configured.
    pub fn istio_defaults() -> ProxyConfig {
        ProxyConfig {
            config_path: Some(DEFAULT_CONFIG_PATH.into()),
            binary_path: Some(DEFAULT_BINARY_PATH.into()),
            service_cluster: Some(DEFAULT_SERVICE_CLUSTER.into()),
            drain_duration: Some(Duration::from_std(StdDuration::from_secs(45))),
            termination_drain_duration: Some(Duration::from_std(StdDuration::from_secs(5))),
            proxy_admin_port: Some(DEFAULT_PROXY_ADMIN_PORT),
            concurrency: Some(2),
            control_plane_auth_policy: Some(AuthenticationPolicy::MutualTls),
            discovery_address: Some(DEFAULT_DISCOVERY_ADDRESS.into()),
            tracing: Some(Tracing {
                zipkin: Some(TracingZipkin {
                    address: Some(DEFAULT_ZIPKIN_ADDRESS.into()),
                }),
                ..Default::default()
            }),
            stat_name_length: Some(189),
            status_port: Some(DEFAULT_STATUS_PORT),
            ..Default::default()
        }
    }

    /// This config laid over Istio's defaults, field by field: a field set here replaces
    /// the default (nested settings merge, lists are replaced, `proxyMetadata` entries
    /// are added to the defaults'). Setting one tracer (or `tracingServiceName`) replaces
    /// the default Zipkin tracer (or `serviceCluster`), as protobuf oneofs do.
    pub fn effective(&self) -> ProxyConfig {
        self.over(&ProxyConfig::istio_defaults())
    }

    /// This config laid over `base` (see [`ProxyConfig::effective`]).
    pub fn over(&self, base: &ProxyConfig) -> ProxyConfig {
        let mut base = base.clone();
        if self.tracing_service_name.is_some() {
            base.service_cluster = None;
        }
        if self.service_cluster.is_some() {
            base.tracing_service_name = None;
        }
        if let (Some(mine), Some(theirs)) = (&self.tracing, &mut base.tracing) {
            if !mine.tracers_set().is_empty() {
                theirs.zipkin = None;
                theirs.lightstep = None;
                theirs.datadog = None;
                theirs.stackdriver = None;
                theirs.open_census_agent = None;
            }
        }
        let mut merged = to_json(&base);
        overlay(&mut merged, to_json(self));
        serde_json::from_value(merged).expect("merging two valid ProxyConfigs gives a valid one")
    }

    /// `configPath`, default `./etc/istio/proxy`.
    pub fn config_path(&self) -> &str {
        self.config_path.as_deref().unwrap_or(DEFAULT_CONFIG_PATH)
    }

    /// `binaryPath`, default `/usr/local/bin/envoy`.
    pub fn binary_path(&self) -> &str {
        self.binary_path.as_deref().unwrap_or(DEFAULT_BINARY_PATH)
    }

    /// `serviceCluster`, default `istio-proxy` (none when `tracingServiceName` is set).
    pub fn service_cluster(&self) -> Option<&str> {
        match (&self.service_cluster, &self.tracing_service_name) {
            (Some(s), _) => Some(s),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_SERVICE_CLUSTER),
        }
    }

    /// `drainDuration`, default 45s.
    pub fn drain_duration(&self) -> StdDuration {
        dur(&self.drain_duration, 45)
    }

    /// `parentShutdownDuration`, default 60s.
    pub fn parent_shutdown_duration(&self) -> StdDuration {
        dur(&self.parent_shutdown_duration, 60)
    }

    /// `terminationDrainDuration`, default 5s.
    pub fn termination_drain_duration(&self) -> StdDuration {
        dur(&self.termination_drain_duration, 5)
    }

    /// `discoveryAddress`, default `istiod.istio-system.svc:15012`.
    pub fn discovery_address(&self) -> &str {
        self.discovery_address
            .as_deref()
            .unwrap_or(DEFAULT_DISCOVERY_ADDRESS)
    }

    /// `proxyAdminPort`, default 15000.
    pub fn proxy_admin_port(&self) -> i32 {
        self.proxy_admin_port.unwrap_or(DEFAULT_PROXY_ADMIN_PORT)
    }

    /// `statusPort`, default 15020.
    pub fn status_port(&self) -> i32 {
        self.status_port.unwrap_or(DEFAULT_STATUS_PORT)
    }

    /// `controlPlaneAuthPolicy`, default `MUTUAL_TLS`.
    pub fn control_plane_auth_policy(&self) -> AuthenticationPolicy {
        self.control_plane_auth_policy
            .unwrap_or(AuthenticationPolicy::MutualTls)
    }

    /// `statNameLength`, default 189.
    pub fn stat_name_length(&self) -> i32 {
        self.stat_name_length.unwrap_or(189)
    }

    /// `concurrency`, default 2 (0 means one worker per core).
    pub fn concurrency(&self) -> i32 {
        self.concurrency.unwrap_or(2)
    }

    /// `interceptionMode`, default `REDIRECT`.
    pub fn interception_mode(&self) -> InterceptionMode {
        self.interception_mode.unwrap_or(InterceptionMode::Redirect)
    }

    /// `tracing`, default a Zipkin tracer at `zipkin.istio-system:9411`.
    pub fn tracing(&self) -> Tracing {
        self.tracing.clone().unwrap_or_else(|| {
            ProxyConfig::istio_defaults()
                .tracing
                .expect("defaults set tracing")
        })
    }

    /// `holdApplicationUntilProxyStarts`, default false.
    pub fn hold_application_until_proxy_starts(&self) -> bool {
        self.hold_application_until_proxy_starts.unwrap_or(false)
    }

    /// `gatewayTopology.numTrustedProxies`, default 0.
    pub fn num_trusted_proxies(&self) -> u32 {
        self.gateway_topology
            .as_ref()
            .and_then(|t| t.num_trusted_proxies)
            .unwrap_or(0)
            .clamp(0, u32::MAX as i64) as u32
    }

    /// `fileFlushInterval`, default 1s.
    pub fn file_flush_interval(&self) -> StdDuration {
        dur(&self.file_flush_interval, 1)
    }

    /// `fileFlushMinSizeKb`, default 64.
    pub fn file_flush_min_size_kb(&self) -> u32 {
        self.file_flush_min_size_kb.unwrap_or(64)
    }

    /// `image.imageType`, default `default`.
    pub fn image_type(&self) -> &str {
        self.image
            .as_ref()
            .and_then(|i| i.image_type.as_deref())
            .unwrap_or("default")
    }
}

fn dur(d: &Option<Duration>, default_secs: u64) -> StdDuration {
    d.as_ref()
        .map(Duration::as_std)
        .unwrap_or(StdDuration::from_secs(default_secs))
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("config types serialize to JSON")
}

/// Deep-merges `top` onto `base`: objects merge key by key, anything else replaces.
pub(crate) fn overlay(base: &mut serde_json::Value, top: serde_json::Value) {
    use serde_json::Value;
    match (base, top) {
        (Value::Object(b), Value::Object(t)) => {
            for (k, v) in t {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => overlay(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, t) => *b = t,
    }
}
