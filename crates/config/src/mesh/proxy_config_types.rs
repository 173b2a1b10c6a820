//! The message and enum types ProxyConfig's fields use (tracing, remote services,
//! gateway topology, readiness probe, proxy headers, ...).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::networking::destination_rule::ClientTlsSettings;
use crate::types::Duration;

crate::string_enum! {
    /// How the proxy authenticates to the control plane.
    pub enum AuthenticationPolicy { None = "NONE", MutualTls = "MUTUAL_TLS", Inherit = "INHERIT" }
}

crate::string_enum! {
    /// How inbound traffic is redirected to the proxy.
    pub enum InterceptionMode { Redirect = "REDIRECT", Tproxy = "TPROXY", None = "NONE" }
}

crate::string_enum! {
    /// Naming scheme of the Envoy `service_cluster` used in trace spans.
    pub enum TracingServiceName {
        AppLabelAndNamespace = "APP_LABEL_AND_NAMESPACE",
        CanonicalNameOnly = "CANONICAL_NAME_ONLY",
        CanonicalNameAndNamespace = "CANONICAL_NAME_AND_NAMESPACE",
    }
}

crate::string_enum! {
    /// How a gateway handles the `x-forwarded-client-cert` header.
    pub enum ForwardClientCertDetails {
        Undefined = "UNDEFINED",
        Sanitize = "SANITIZE",
        ForwardOnly = "FORWARD_ONLY",
        AppendForward = "APPEND_FORWARD",
        SanitizeSet = "SANITIZE_SET",
        AlwaysForwardOnly = "ALWAYS_FORWARD_ONLY",
    }
}

crate::string_enum! {
    /// When the metadata-exchange headers are sent.
    pub enum MetadataExchangeMode { Undefined = "UNDEFINED", InMesh = "IN_MESH" }
}

pub use super::super::mesh_config::TraceContext;

/// `SO_KEEPALIVE` settings: MeshConfig and ProxyConfig use the same message as a
/// DestinationRule's connection pool.
pub use crate::networking::destination_rule::TcpKeepalive;

/// A remote service the proxy sends data to (access logs, metrics).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteService {
    /// `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(
        default,
        alias = "tls_settings",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_settings: Option<ClientTlsSettings>,
    #[serde(
        default,
        alias = "tcp_keepalive",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_keepalive: Option<TcpKeepalive>,
}

/// `tracing.zipkin`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingZipkin {
    /// `host:port`, e.g. `zipkin.istio-system:9411`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `tracing.lightstep` (deprecated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingLightstep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(
        default,
        alias = "access_token",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_token: Option<String>,
}

/// `tracing.datadog`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingDatadog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `tracing.stackdriver`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingStackdriver {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    #[serde(
        default,
        alias = "max_number_of_attributes",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_number_of_attributes: Option<i64>,
    #[serde(
        default,
        alias = "max_number_of_annotations",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_number_of_annotations: Option<i64>,
    #[serde(
        default,
        alias = "max_number_of_message_events",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_number_of_message_events: Option<i64>,
}

/// `tracing.openCensusAgent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingOpenCensusAgent {
    /// gRPC address, e.g. `dns://authority/host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<TraceContext>,
}

/// A custom span tag: exactly one of literal, environment or header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomTag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<TagLiteral>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<TagSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<TagSource>,
}

/// A literal tag value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagLiteral {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A tag value read from an environment variable or a request header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        alias = "default_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_value: Option<String>,
}

/// `tracing`: at most one tracer plus sampling and tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tracing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<TracingZipkin>,
    /// Deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lightstep: Option<TracingLightstep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<TracingDatadog>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stackdriver: Option<TracingStackdriver>,
    #[serde(
        default,
        alias = "open_census_agent",
        skip_serializing_if = "Option::is_none"
    )]
    pub open_census_agent: Option<TracingOpenCensusAgent>,
    #[serde(
        default,
        alias = "custom_tags",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub custom_tags: BTreeMap<String, CustomTag>,
    /// Default 256.
    #[serde(
        default,
        alias = "max_path_tag_length",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_path_tag_length: Option<u32>,
    /// Percentage of requests traced, 0.0-100.0. Default 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<f64>,
    #[serde(
        default,
        alias = "tls_settings",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_settings: Option<ClientTlsSettings>,
    /// Whether Istio's standard tags are added to spans (default true).
    #[serde(
        default,
        alias = "enable_istio_tags",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_istio_tags: Option<bool>,
}

impl Tracing {
    /// The tracers that are set, by JSON name.
    pub fn tracers_set(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.zipkin.is_some() {
            v.push("zipkin");
        }
        if self.lightstep.is_some() {
            v.push("lightstep");
        }
        if self.datadog.is_some() {
            v.push("datadog");
        }
        if self.stackdriver.is_some() {
            v.push("stackdriver");
        }
        if self.open_census_agent.is_some() {
            v.push("openCensusAgent");
        }
        v
    }

    /// Sampling percentage; Istio's default is 1.0.
    pub fn sampling(&self) -> f64 {
        self.sampling.unwrap_or(1.0)
    }

    /// Longest path kept in the `http.url` tag; Istio's default is 256.
    pub fn max_path_tag_length(&self) -> u32 {
        self.max_path_tag_length.unwrap_or(256)
    }
}

/// `sds` (deprecated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(
        default,
        rename = "k8sSaJwtPath",
        alias = "k8s_sa_jwt_path",
        skip_serializing_if = "Option::is_none"
    )]
    pub k8s_sa_jwt_path: Option<String>,
}

/// `gatewayTopology`: where a gateway sits relative to trusted proxies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Topology {
    /// Trusted proxies in front of the gateway (X-Forwarded-For hops). Default 0.
    #[serde(
        default,
        alias = "num_trusted_proxies",
        skip_serializing_if = "Option::is_none"
    )]
    pub num_trusted_proxies: Option<i64>,
    #[serde(
        default,
        alias = "forward_client_cert_details",
        skip_serializing_if = "Option::is_none"
    )]
    pub forward_client_cert_details: Option<ForwardClientCertDetails>,
    /// Enables PROXY protocol on the gateway's listeners (`proxyProtocol: {}`).
    #[serde(
        default,
        alias = "proxy_protocol",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_protocol: Option<super::super::mesh_config::JsonObject>,
}

/// `proxyStatsMatcher`: extra Envoy stats to create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyStatsMatcher {
    #[serde(
        default,
        alias = "inclusion_prefixes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inclusion_prefixes: Vec<String>,
    #[serde(
        default,
        alias = "inclusion_suffixes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inclusion_suffixes: Vec<String>,
    #[serde(
        default,
        alias = "inclusion_regexps",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inclusion_regexps: Vec<String>,
}

/// `image`: which proxy image variant to inject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyImage {
    /// `default`, `debug` or `distroless`.
    #[serde(default, alias = "image_type", skip_serializing_if = "Option::is_none")]
    pub image_type: Option<String>,
}

/// A private key provider's batching delay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollDelayProvider {
    #[serde(default, alias = "poll_delay", skip_serializing_if = "Option::is_none")]
    pub poll_delay: Option<Duration>,
    /// QAT only: fall back to software when the hardware is busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<bool>,
}

/// `privateKeyProvider`: exactly one of `cryptomb` or `qat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrivateKeyProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cryptomb: Option<PollDelayProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qat: Option<PollDelayProvider>,
}

/// A header that can be turned off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisableHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// A header that can be turned on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnableHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `proxyHeaders.server`: turn off or replace the `server` header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `proxyHeaders.metadataExchangeHeaders`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataExchangeHeaders {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MetadataExchangeMode>,
}

/// `proxyHeaders.setCurrentClientCertDetails`: what goes into XFCC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetCurrentClientCertDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<bool>,
}

/// `proxyHeaders`: which headers the proxy adds or forwards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyHeaders {
    #[serde(
        default,
        alias = "forwarded_client_cert",
        skip_serializing_if = "Option::is_none"
    )]
    pub forwarded_client_cert: Option<ForwardClientCertDetails>,
    #[serde(
        default,
        alias = "set_current_client_cert_details",
        skip_serializing_if = "Option::is_none"
    )]
    pub set_current_client_cert_details: Option<SetCurrentClientCertDetails>,
    #[serde(default, alias = "request_id", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<DisableHeader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerHeader>,
    #[serde(
        default,
        alias = "attempt_count",
        skip_serializing_if = "Option::is_none"
    )]
    pub attempt_count: Option<DisableHeader>,
    #[serde(
        default,
        alias = "envoy_debug_headers",
        skip_serializing_if = "Option::is_none"
    )]
    pub envoy_debug_headers: Option<DisableHeader>,
    #[serde(
        default,
        alias = "metadata_exchange_headers",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata_exchange_headers: Option<MetadataExchangeHeaders>,
    #[serde(
        default,
        alias = "preserve_http1_header_case",
        skip_serializing_if = "Option::is_none"
    )]
    pub preserve_http1_header_case: Option<bool>,
    #[serde(
        default,
        alias = "x_forwarded_host",
        skip_serializing_if = "Option::is_none"
    )]
    pub x_forwarded_host: Option<EnableHeader>,
    #[serde(
        default,
        alias = "x_forwarded_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub x_forwarded_port: Option<EnableHeader>,
}

/// HTTP GET readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGetAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `HTTP` or `HTTPS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, alias = "http_headers", skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<super::super::mesh_config::HttpHeader>,
}

/// TCP connect readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSocketAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

/// Command readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecAction {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

/// gRPC health readiness check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcHealthCheckAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// `readinessProbe` (VM health checking): exactly one of httpGet, tcpSocket, exec, grpc.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadinessProbe {
    #[serde(
        default,
        alias = "initial_delay_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub initial_delay_seconds: Option<i32>,
    #[serde(
        default,
        alias = "timeout_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_seconds: Option<i32>,
    #[serde(
        default,
        alias = "period_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub period_seconds: Option<i32>,
    #[serde(
        default,
        alias = "success_threshold",
        skip_serializing_if = "Option::is_none"
    )]
    pub success_threshold: Option<i32>,
    #[serde(
        default,
        alias = "failure_threshold",
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_threshold: Option<i32>,
    #[serde(default, alias = "http_get", skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    #[serde(default, alias = "tcp_socket", skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcHealthCheckAction>,
}
