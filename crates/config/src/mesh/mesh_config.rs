//! MeshConfig (`istio.mesh.v1alpha1.MeshConfig`): mesh-wide settings from the `mesh` key
//! of the `istio` ConfigMap.
//!
//! Every field is optional on the wire and `Default` means "nothing set", so a decoded
//! MeshConfig serializes back to what the user wrote. Istio's defaults for unset fields
//! come from the accessor methods (`root_namespace()`, `connect_timeout()`, ...), each
//! documenting its default, and from [`MeshConfig::effective`], which returns a copy with
//! every default filled in the way istiod merges the ConfigMap over its built-in mesh
//! configuration. Field names are lowerCamelCase; protobuf's snake_case names are
//! accepted too, as Istio's protobuf JSON reader does.

use std::time::Duration as StdDuration;

use serde::{Deserialize, Serialize};

use super::proxy_config::{overlay, to_json, TcpKeepalive};
use super::ProxyConfig;
use crate::networking::destination_rule::LocalityLoadBalancerSetting;
use crate::types::Duration;

#[path = "mesh_config_validate.rs"]
mod validate;

#[path = "extension_provider.rs"]
mod extension_provider;

pub use extension_provider::*;

#[path = "mesh_config_types.rs"]
mod types;

pub use types::*;

/// MeshConfig: every field of `istio.mesh.v1alpha1.MeshConfig`, all optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshConfig {
    /// Outbound capture port. Default 15001.
    #[serde(
        default,
        alias = "proxy_listen_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_listen_port: Option<i32>,
    /// Inbound capture port. Default 15006.
    #[serde(
        default,
        alias = "proxy_inbound_listen_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_inbound_listen_port: Option<i32>,
    /// HTTP PROXY listener port, if any.
    #[serde(
        default,
        alias = "proxy_http_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_http_port: Option<i32>,
    /// Upstream connect timeout. Default 10s; 1ms to 1h.
    #[serde(
        default,
        alias = "connect_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// Protocol sniffing timeout. Default 0s (none).
    #[serde(
        default,
        alias = "protocol_detection_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub protocol_detection_timeout: Option<Duration>,
    #[serde(
        default,
        alias = "tcp_keepalive",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Default `istio`.
    #[serde(
        default,
        alias = "ingress_class",
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_class: Option<String>,
    /// Default `istio-ingressgateway`.
    #[serde(
        default,
        alias = "ingress_service",
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_service: Option<String>,
    /// Default `STRICT`.
    #[serde(
        default,
        alias = "ingress_controller_mode",
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_controller_mode: Option<IngressControllerMode>,
    /// Default `ingressgateway`.
    #[serde(
        default,
        alias = "ingress_selector",
        skip_serializing_if = "Option::is_none"
    )]
    pub ingress_selector: Option<String>,
    /// Default true.
    #[serde(
        default,
        alias = "enable_tracing",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_tracing: Option<bool>,
    /// Default empty (access logging off); usually `/dev/stdout`.
    #[serde(
        default,
        alias = "access_log_file",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_log_file: Option<String>,
    #[serde(
        default,
        alias = "access_log_format",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_log_format: Option<String>,
    /// Default `TEXT`.
    #[serde(
        default,
        alias = "access_log_encoding",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_log_encoding: Option<AccessLogEncoding>,
    /// Default false.
    #[serde(
        default,
        alias = "enable_envoy_access_log_service",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_envoy_access_log_service: Option<bool>,
    /// Default false.
    #[serde(
        default,
        alias = "disable_envoy_listener_log",
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_envoy_listener_log: Option<bool>,
    /// Mesh-wide proxy defaults, merged over Istio's ProxyConfig defaults.
    #[serde(
        default,
        alias = "default_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_config: Option<ProxyConfig>,
    /// Default mode `ALLOW_ANY`.
    #[serde(
        default,
        alias = "outbound_traffic_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
    /// Default mode `PASSTHROUGH`.
    #[serde(
        default,
        alias = "inbound_traffic_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub inbound_traffic_policy: Option<InboundTrafficPolicy>,
    #[serde(
        default,
        alias = "config_sources",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub config_sources: Vec<ConfigSource>,
    /// Default true.
    #[serde(
        default,
        alias = "enable_auto_mtls",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_auto_mtls: Option<bool>,
    /// Default `cluster.local`.
    #[serde(
        default,
        alias = "trust_domain",
        skip_serializing_if = "Option::is_none"
    )]
    pub trust_domain: Option<String>,
    #[serde(
        default,
        alias = "trust_domain_aliases",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub trust_domain_aliases: Vec<String>,
    #[serde(
        default,
        alias = "ca_certificates",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ca_certificates: Vec<CertificateData>,
    /// Default `["*"]`.
    #[serde(
        default,
        alias = "default_service_export_to",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub default_service_export_to: Vec<String>,
    /// Default `["*"]`.
    #[serde(
        default,
        alias = "default_virtual_service_export_to",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub default_virtual_service_export_to: Vec<String>,
    /// Default `["*"]`.
    #[serde(
        default,
        alias = "default_destination_rule_export_to",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub default_destination_rule_export_to: Vec<String>,
    /// Default `istio-system`.
    #[serde(
        default,
        alias = "root_namespace",
        skip_serializing_if = "Option::is_none"
    )]
    pub root_namespace: Option<String>,
    /// Default `{enabled: true}`.
    #[serde(
        default,
        alias = "locality_lb_setting",
        skip_serializing_if = "Option::is_none"
    )]
    pub locality_lb_setting: Option<LocalityLoadBalancerSetting>,
    /// Mesh-wide zone-aware load balancing settings.
    #[serde(
        default,
        alias = "zone_aware_lb_setting",
        skip_serializing_if = "Option::is_none"
    )]
    pub zone_aware_lb_setting: Option<JsonObject>,
    /// DNS refresh rate of STRICT_DNS clusters. Default 60s.
    #[serde(
        default,
        alias = "dns_refresh_rate",
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_refresh_rate: Option<Duration>,
    /// Default `DO_NOT_UPGRADE`.
    #[serde(
        default,
        alias = "h2_upgrade_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    #[serde(
        default,
        alias = "inbound_cluster_stat_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub inbound_cluster_stat_name: Option<String>,
    #[serde(
        default,
        alias = "outbound_cluster_stat_name",
        skip_serializing_if = "Option::is_none"
    )]
    pub outbound_cluster_stat_name: Option<String>,
    /// Deprecated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
    /// Removed from Istio's API (Thrift support was dropped); accepted and ignored.
    #[serde(
        default,
        alias = "thrift_config",
        skip_serializing_if = "Option::is_none"
    )]
    pub thrift_config: Option<JsonObject>,
    #[serde(
        default,
        alias = "service_settings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_settings: Vec<ServiceSettings>,
    #[serde(
        default,
        alias = "service_scope_configs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_scope_configs: Vec<ServiceScopeConfigs>,
    /// Default true.
    #[serde(
        default,
        alias = "enable_prometheus_merge",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_prometheus_merge: Option<bool>,
    /// Deprecated. Default true.
    #[serde(
        default,
        alias = "verify_certificate_at_client",
        skip_serializing_if = "Option::is_none"
    )]
    pub verify_certificate_at_client: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaConfig>,
    /// Named providers; Istio always adds `prometheus`, `stackdriver` and `envoy`.
    #[serde(
        default,
        alias = "extension_providers",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extension_providers: Vec<ExtensionProvider>,
    #[serde(
        default,
        alias = "default_providers",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_providers: Option<DefaultProviders>,
    /// Namespaces istiod watches; empty means all.
    #[serde(
        default,
        alias = "discovery_selectors",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub discovery_selectors: Vec<KubeLabelSelector>,
    /// Default `DEFAULT` (which is `BASE`).
    #[serde(
        default,
        alias = "path_normalization",
        skip_serializing_if = "Option::is_none"
    )]
    pub path_normalization: Option<ProxyPathNormalization>,
    #[serde(
        default,
        alias = "default_http_retry_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_http_retry_policy: Option<HttpRetry>,
    #[serde(
        rename = "meshMTLS",
        default,
        alias = "mesh_mTLS",
        skip_serializing_if = "Option::is_none"
    )]
    pub mesh_mtls: Option<TlsConfig>,
    #[serde(
        default,
        alias = "tls_defaults",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_defaults: Option<TlsConfig>,
    /// `""` (none), `fips-140-2` or `pqc`.
    #[serde(
        default,
        alias = "compliance_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub compliance_policy: Option<String>,
    /// Mesh-wide traffic policy defaults (connection pool, outlier detection, ...).
    #[serde(
        default,
        alias = "default_traffic_policy",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_traffic_policy: Option<JsonObject>,
    /// Mesh-wide ServiceEntry visibility policy.
    #[serde(
        default,
        alias = "service_entry_visibility",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_entry_visibility: Option<JsonObject>,
    /// Not a MeshConfig field: caught only to say where it belongs (validation rejects it).
    #[serde(default, alias = "mesh_networks", skip_serializing)]
    pub mesh_networks: Option<serde_json::Value>,
}

/// Istio's default `rootNamespace`.
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";
/// Istio's default `trustDomain`.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";
/// Extension providers Istio always defines (a provider of the same name replaces them).
pub const BUILTIN_PROVIDERS: &[&str] = &["prometheus", "stackdriver", "envoy"];
/// Istio's default `defaultHttpRetryPolicy.retryOn`.
pub const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

fn secs(d: &Option<Duration>, default: StdDuration) -> StdDuration {
    d.as_ref().map(Duration::as_std).unwrap_or(default)
}

impl MeshConfig {
    /// Istio's `DefaultMeshConfig`: the mesh configuration when the ConfigMap is empty.
    pub fn istio_defaults() -> MeshConfig {
        let star = || vec!["*".to_string()];
        MeshConfig {
            enable_tracing: Some(true),
            access_log_file: Some(String::new()),
            access_log_encoding: Some(AccessLogEncoding::Text),
            access_log_format: Some(String::new()),
            enable_envoy_access_log_service: Some(false),
            protocol_detection_timeout: Some(Duration::from_std(StdDuration::ZERO)),
            ingress_service: Some("istio-ingressgateway".into()),
            ingress_controller_mode: Some(IngressControllerMode::Strict),
            ingress_class: Some("istio".into()),
            trust_domain: Some(DEFAULT_TRUST_DOMAIN.into()),
            enable_auto_mtls: Some(true),
            outbound_traffic_policy: Some(OutboundTrafficPolicy {
                mode: Some(OutboundTrafficPolicyMode::AllowAny),
                tls: None,
            }),
            locality_lb_setting: Some(
                serde_json::from_value(serde_json::json!({"enabled": true})).unwrap_or_default(),
            ),
            default_config: Some(ProxyConfig::istio_defaults()),
            root_namespace: Some(DEFAULT_ROOT_NAMESPACE.into()),
            proxy_listen_port: Some(15001),
            proxy_inbound_listen_port: Some(15006),
            connect_timeout: Some(Duration::from_std(StdDuration::from_secs(10))),
            default_service_export_to: star(),
            default_virtual_service_export_to: star(),
            default_destination_rule_export_to: star(),
            dns_refresh_rate: Some(Duration::from_std(StdDuration::from_secs(60))),
            enable_prometheus_merge: Some(true),
            default_providers: Some(DefaultProviders::default()),
            extension_providers: builtin_providers(),
            ..Default::default()
        }
    }

    /// This MeshConfig merged over Istio's defaults the way istiod applies the ConfigMap:
    /// a field set here replaces the default (nested settings merge, lists replace),
    /// `defaultConfig` is merged over the default ProxyConfig, extension providers replace
    /// the built-in ones of the same name and are otherwise appended, and trust domain
    /// aliases are kept sorted and unique.
    pub fn effective(&self) -> MeshConfig {
        let defaults = MeshConfig::istio_defaults();
        let mut mine = self.clone();
        mine.mesh_networks = None;
        let default_config = self
            .default_config
            .as_ref()
            .map(|pc| pc.over(&ProxyConfig::istio_defaults()))
            .or_else(|| defaults.default_config.clone());
        let mut providers = defaults.extension_providers.clone();
        for p in &self.extension_providers {
            match providers.iter_mut().find(|e| e.name == p.name) {
                Some(existing) => *existing = p.clone(),
                None => providers.push(p.clone()),
            }
        }
        let mut aliases = self.trust_domain_aliases.clone();
        aliases.sort();
        aliases.dedup();
        mine.default_config = None;
        mine.extension_providers.clear();
        let mut merged = to_json(&defaults);
        overlay(&mut merged, to_json(&mine));
        let mut out: MeshConfig = serde_json::from_value(merged)
            .expect("merging two valid MeshConfigs gives a valid one");
        out.default_config = default_config;
        out.extension_providers = providers;
        out.trust_domain_aliases = aliases;
        out
    }

    /// `proxyListenPort`, default 15001.
    pub fn proxy_listen_port(&self) -> i32 {
        self.proxy_listen_port.unwrap_or(15001)
    }

    /// `proxyInboundListenPort`, default 15006.
    pub fn proxy_inbound_listen_port(&self) -> i32 {
        self.proxy_inbound_listen_port.unwrap_or(15006)
    }

    /// `connectTimeout`, default 10s.
    pub fn connect_timeout(&self) -> StdDuration {
        secs(&self.connect_timeout, StdDuration::from_secs(10))
    }

    /// `protocolDetectionTimeout`, default 0s (no timeout).
    pub fn protocol_detection_timeout(&self) -> StdDuration {
        secs(&self.protocol_detection_timeout, StdDuration::ZERO)
    }

    /// `dnsRefreshRate`, default 60s.
    pub fn dns_refresh_rate(&self) -> StdDuration {
        secs(&self.dns_refresh_rate, StdDuration::from_secs(60))
    }

    /// `ingressClass`, default `istio`.
    pub fn ingress_class(&self) -> &str {
        self.ingress_class.as_deref().unwrap_or("istio")
    }

    /// `ingressService`, default `istio-ingressgateway`.
    pub fn ingress_service(&self) -> &str {
        self.ingress_service
            .as_deref()
            .unwrap_or("istio-ingressgateway")
    }

    /// `ingressControllerMode`, default `STRICT`.
    pub fn ingress_controller_mode(&self) -> IngressControllerMode {
        self.ingress_controller_mode
            .unwrap_or(IngressControllerMode::Strict)
    }

    /// `ingressSelector`, default `ingressgateway` (selects `istio: ingressgateway`).
    pub fn ingress_selector(&self) -> &str {
        self.ingress_selector.as_deref().unwrap_or("ingressgateway")
    }

    /// `enableTracing`, default true.
    pub fn enable_tracing(&self) -> bool {
        self.enable_tracing.unwrap_or(true)
    }

    /// `accessLogFile`, default empty (access logging off).
    pub fn access_log_file(&self) -> &str {
        self.access_log_file.as_deref().unwrap_or("")
    }

    /// `accessLogFormat`, default empty (Envoy's default format).
    pub fn access_log_format(&self) -> &str {
        self.access_log_format.as_deref().unwrap_or("")
    }

    /// `accessLogEncoding`, default `TEXT`.
    pub fn access_log_encoding(&self) -> AccessLogEncoding {
        self.access_log_encoding.unwrap_or(AccessLogEncoding::Text)
    }

    /// `enableEnvoyAccessLogService`, default false.
    pub fn enable_envoy_access_log_service(&self) -> bool {
        self.enable_envoy_access_log_service.unwrap_or(false)
    }

    /// `disableEnvoyListenerLog`, default false.
    pub fn disable_envoy_listener_log(&self) -> bool {
        self.disable_envoy_listener_log.unwrap_or(false)
    }

    /// `defaultConfig` merged over Istio's ProxyConfig defaults (drain 45s, admin port
    /// 15000, status port 15020, discovery `istiod.istio-system.svc:15012`, ...).
    pub fn default_config(&self) -> ProxyConfig {
        match &self.default_config {
            Some(pc) => pc.effective(),
            None => ProxyConfig::istio_defaults(),
        }
    }

    /// `outboundTrafficPolicy.mode`, default `ALLOW_ANY`.
    pub fn outbound_traffic_policy_mode(&self) -> OutboundTrafficPolicyMode {
        self.outbound_traffic_policy
            .as_ref()
            .and_then(|p| p.mode)
            .unwrap_or(OutboundTrafficPolicyMode::AllowAny)
    }

    /// `inboundTrafficPolicy.mode`, default `PASSTHROUGH`.
    pub fn inbound_traffic_policy_mode(&self) -> InboundTrafficPolicyMode {
        self.inbound_traffic_policy
            .as_ref()
            .and_then(|p| p.mode)
            .unwrap_or(InboundTrafficPolicyMode::Passthrough)
    }

    /// `enableAutoMtls`, default true.
    pub fn enable_auto_mtls(&self) -> bool {
        self.enable_auto_mtls.unwrap_or(true)
    }

    /// `trustDomain`, default `cluster.local`.
    pub fn trust_domain(&self) -> &str {
        self.trust_domain.as_deref().unwrap_or(DEFAULT_TRUST_DOMAIN)
    }

    /// `rootNamespace`, default `istio-system`.
    pub fn root_namespace(&self) -> &str {
        self.root_namespace
            .as_deref()
            .unwrap_or(DEFAULT_ROOT_NAMESPACE)
    }

    /// `defaultServiceExportTo`, default `["*"]`.
    pub fn default_service_export_to(&self) -> Vec<String> {
        star_default(&self.default_service_export_to)
    }

    /// `defaultVirtualServiceExportTo`, default `["*"]`.
    pub fn default_virtual_service_export_to(&self) -> Vec<String> {
        star_default(&self.default_virtual_service_export_to)
    }

    /// `defaultDestinationRuleExportTo`, default `["*"]`.
    pub fn default_destination_rule_export_to(&self) -> Vec<String> {
        star_default(&self.default_destination_rule_export_to)
    }

    /// `h2UpgradePolicy`, default `DO_NOT_UPGRADE`.
    pub fn h2_upgrade_policy(&self) -> H2UpgradePolicy {
        self.h2_upgrade_policy
            .unwrap_or(H2UpgradePolicy::DoNotUpgrade)
    }

    /// `pathNormalization.normalization`, default `DEFAULT` (which behaves as `BASE`).
    pub fn path_normalization(&self) -> NormalizationType {
        self.path_normalization
            .as_ref()
            .and_then(|p| p.normalization)
            .unwrap_or(NormalizationType::Default)
    }

    /// `enablePrometheusMerge`, default true.
    pub fn enable_prometheus_merge(&self) -> bool {
        self.enable_prometheus_merge.unwrap_or(true)
    }

    /// `verifyCertificateAtClient`, default true.
    pub fn verify_certificate_at_client(&self) -> bool {
        self.verify_certificate_at_client.unwrap_or(true)
    }

    /// Locality load balancing is on unless `localityLbSetting.enabled` is false.
    pub fn locality_lb_enabled(&self) -> bool {
        self.locality_lb_setting
            .as_ref()
            .and_then(|l| serde_json::to_value(l).ok())
            .and_then(|v| v.get("enabled").and_then(serde_json::Value::as_bool))
            .unwrap_or(true)
    }

    /// `defaultHttpRetryPolicy.attempts`, default 2.
    pub fn default_retry_attempts(&self) -> i32 {
        self.default_http_retry_policy
            .as_ref()
            .and_then(|r| r.attempts)
            .unwrap_or(2)
    }

    /// `defaultHttpRetryPolicy.retryOn`, default
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`.
    pub fn default_retry_on(&self) -> &str {
        self.default_http_retry_policy
            .as_ref()
            .and_then(|r| r.retry_on.as_deref())
            .unwrap_or(DEFAULT_RETRY_ON)
    }

    /// `ca.requestTimeout`, default 10s.
    pub fn ca_request_timeout(&self) -> StdDuration {
        secs(
            &self.ca.as_ref().and_then(|c| c.request_timeout.clone()),
            StdDuration::from_secs(10),
        )
    }

    /// `ca.istiodSide`, default true.
    pub fn ca_istiod_side(&self) -> bool {
        self.ca.as_ref().and_then(|c| c.istiod_side).unwrap_or(true)
    }

    /// The extension providers in effect: Istio's built-ins (`prometheus`,
    /// `stackdriver`, and `envoy` writing to `/dev/stdout`), replaced or extended by the
    /// ones configured here.
    pub fn extension_providers(&self) -> Vec<ExtensionProvider> {
        self.effective().extension_providers
    }

    /// The provider with this name, built-in ones included.
    pub fn extension_provider(&self, name: &str) -> Option<ExtensionProvider> {
        self.extension_providers
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .cloned()
            .or_else(|| {
                builtin_providers()
                    .into_iter()
                    .find(|p| p.name.as_deref() == Some(name))
            })
    }
}

fn star_default(v: &[String]) -> Vec<String> {
    if v.is_empty() {
        vec!["*".into()]
    } else {
        v.to_vec()
    }
}

/// The providers Istio defines in every mesh.
pub fn builtin_providers() -> Vec<ExtensionProvider> {
    vec![
        ExtensionProvider {
            name: Some("prometheus".into()),
            prometheus: Some(JsonObject::new()),
            ..Default::default()
        },
        ExtensionProvider {
            name: Some("stackdriver".into()),
            stackdriver: Some(StackdriverProvider::default()),
            ..Default::default()
        },
        ExtensionProvider {
            name: Some("envoy".into()),
            envoy_file_access_log: Some(EnvoyFileAccessLogProvider {
                path: Some("/dev/stdout".into()),
                log_format: None,
            }),
            ..Default::default()
        },
    ]
}
