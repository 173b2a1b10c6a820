//! `MeshConfig.extensionProviders[]`: named integrations (external authorization, tracing,
//! metrics, access logging) that Telemetry, AuthorizationPolicy (`CUSTOM`) and
//! `defaultProviders` refer to by name. Each entry has a name and exactly one provider.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::path::FieldPath;
use crate::types::Duration;
use crate::validation::{checks, Problems};

/// A protobuf `Struct` or a message this crate keeps as raw JSON: it must be an object.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

crate::string_enum! {
    /// OpenCensus trace context propagation formats.
    pub enum TraceContext {
        Unspecified = "UNSPECIFIED",
        W3cTraceContext = "W3C_TRACE_CONTEXT",
        GrpcBin = "GRPC_BIN",
        CloudTraceContext = "CLOUD_TRACE_CONTEXT",
        B3 = "B3",
    }
}

/// One named extension provider; exactly one of the provider fields is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionProvider {
    /// REQUIRED, unique among the mesh's providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        alias = "envoy_ext_authz_http",
        skip_serializing_if = "Option::is_none"
    )]
    pub envoy_ext_authz_http: Option<EnvoyExtAuthzHttpProvider>,
    #[serde(
        default,
        alias = "envoy_ext_authz_grpc",
        skip_serializing_if = "Option::is_none"
    )]
    pub envoy_ext_authz_grpc: Option<EnvoyExtAuthzGrpcProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipkin: Option<ZipkinTracingProvider>,
    /// Deprecated: use `opentelemetry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lightstep: Option<LightstepTracingProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogTracingProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stackdriver: Option<StackdriverProvider>,
    /// Deprecated: OpenCensus is sunset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opencensus: Option<OpenCensusAgentTracingProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skywalking: Option<SkyWalkingTracingProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opentelemetry: Option<OpenTelemetryTracingProvider>,
    /// `prometheus: {}` (no settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<JsonObject>,
    #[serde(
        default,
        alias = "envoy_file_access_log",
        skip_serializing_if = "Option::is_none"
    )]
    pub envoy_file_access_log: Option<EnvoyFileAccessLogProvider>,
    #[serde(
        default,
        alias = "envoy_http_als",
        skip_serializing_if = "Option::is_none"
    )]
    pub envoy_http_als: Option<EnvoyHttpGrpcV3LogProvider>,
    #[serde(
        default,
        alias = "envoy_tcp_als",
        skip_serializing_if = "Option::is_none"
    )]
    pub envoy_tcp_als: Option<EnvoyTcpGrpcV3LogProvider>,
    #[serde(
        default,
        alias = "envoy_otel_als",
        skip_serializing_if = "Option::is_none"
    )]
    pub envoy_otel_als: Option<EnvoyOpenTelemetryLogProvider>,
    /// An SDS (secret discovery) provider; kept as raw settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sds: Option<JsonObject>,
}

/// What a provider is used for, to check `defaultProviders` references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Authorization,
    Tracing,
    Metrics,
    AccessLogging,
    Secrets,
}

impl ExtensionProvider {
    /// The provider fields that are set, by JSON name.
    pub fn providers_set(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        macro_rules! set {
            ($($field:ident => $name:literal),+ $(,)?) => {
                $(if self.$field.is_some() { out.push($name); })+
            };
        }
        set! {
            envoy_ext_authz_http => "envoyExtAuthzHttp",
            envoy_ext_authz_grpc => "envoyExtAuthzGrpc",
            zipkin => "zipkin",
            lightstep => "lightstep",
            datadog => "datadog",
            stackdriver => "stackdriver",
            opencensus => "opencensus",
            skywalking => "skywalking",
            opentelemetry => "opentelemetry",
            prometheus => "prometheus",
            envoy_file_access_log => "envoyFileAccessLog",
            envoy_http_als => "envoyHttpAls",
            envoy_tcp_als => "envoyTcpAls",
            envoy_otel_als => "envoyOtelAls",
            sds => "sds",
        }
        out
    }

    /// What the (first) provider set here can be used for. Stackdriver serves tracing,
    /// metrics and access logging alike.
    pub fn kinds(&self) -> Vec<ProviderKind> {
        use ProviderKind::*;
        match self.providers_set().first().copied() {
            Some("envoyExtAuthzHttp" | "envoyExtAuthzGrpc") => vec![Authorization],
            Some(
                "zipkin" | "lightstep" | "datadog" | "opencensus" | "skywalking" | "opentelemetry",
            ) => vec![Tracing],
            Some("stackdriver") => vec![Tracing, Metrics, AccessLogging],
            Some("prometheus") => vec![Metrics],
            Some("envoyFileAccessLog" | "envoyHttpAls" | "envoyTcpAls" | "envoyOtelAls") => {
                vec![AccessLogging]
            }
            Some("sds") => vec![Secrets],
            _ => vec![],
        }
    }

    pub(crate) fn validate(&self, path: &FieldPath, p: &mut Problems) {
        let set = self.providers_set();
        match set.len() {
            0 => p.error(
                path,
                "extension provider has no provider: set exactly one of envoyExtAuthzHttp, \
                 envoyExtAuthzGrpc, zipkin, lightstep, datadog, stackdriver, opencensus, \
                 skywalking, opentelemetry, prometheus, envoyFileAccessLog, envoyHttpAls, \
                 envoyTcpAls, envoyOtelAls or sds",
            ),
            1 => {}
            _ => p.error(
                path,
                format!(
                    "extension provider sets {} providers ({}): set exactly one",
                    set.len(),
                    set.join(", ")
                ),
            ),
        }
        if let Some(x) = &self.envoy_ext_authz_http {
            let at = path.field("envoyExtAuthzHttp");
            service_and_port(&x.service, x.port, &at, p);
            timeout(&x.timeout, &at.field("timeout"), p);
            status_on_error(&x.status_on_error, &at.field("statusOnError"), p);
            if let Some(prefix) = x.path_prefix.as_deref().filter(|s| !s.is_empty()) {
                if !prefix.starts_with('/') {
                    p.error(
                        &at.field("pathPrefix"),
                        format!("pathPrefix should begin with `/` but found {prefix:?}"),
                    );
                }
            }
            if !x.include_headers_in_check.is_empty() {
                p.warn(
                    &at.field("includeHeadersInCheck"),
                    "includeHeadersInCheck is deprecated: use includeRequestHeadersInCheck",
                );
            }
            for k in x.include_additional_headers_in_check.keys() {
                p.check(
                    &at.field("includeAdditionalHeadersInCheck").key(k),
                    checks::header_name(k),
                );
            }
        }
        if let Some(x) = &self.envoy_ext_authz_grpc {
            let at = path.field("envoyExtAuthzGrpc");
            service_and_port(&x.service, x.port, &at, p);
            timeout(&x.timeout, &at.field("timeout"), p);
            status_on_error(&x.status_on_error, &at.field("statusOnError"), p);
        }
        if let Some(x) = &self.zipkin {
            let at = path.field("zipkin");
            service_and_port(&x.service, x.port, &at, p);
            timeout(&x.timeout, &at.field("timeout"), p);
            if let Some(path_) = x.path.as_deref().filter(|s| !s.is_empty()) {
                if !path_.starts_with('/') {
                    p.error(
                        &at.field("path"),
                        format!("path {path_:?} must start with '/'"),
                    );
                }
            }
            headers(&x.headers, &at.field("headers"), p);
        }
        if let Some(x) = &self.lightstep {
            let at = path.field("lightstep");
            p.warn(
                &at,
                "the lightstep provider is deprecated: use an opentelemetry provider",
            );
            service_and_port(&x.service, x.port, &at, p);
            if x.access_token.as_deref().unwrap_or("").is_empty() {
                p.error(
                    &at.field("accessToken"),
                    "access token is required for a lightstep provider",
                );
            }
        }
        if let Some(x) = &self.datadog {
            service_and_port(&x.service, x.port, &path.field("datadog"), p);
        }
        if let Some(x) = &self.opencensus {
            let at = path.field("opencensus");
            p.warn(
                &at,
                "the opencensus provider is deprecated: use an opentelemetry provider",
            );
            service_and_port(&x.service, x.port, &at, p);
        }
        if let Some(x) = &self.skywalking {
            service_and_port(&x.service, x.port, &path.field("skywalking"), p);
        }
        if let Some(x) = &self.opentelemetry {
            let at = path.field("opentelemetry");
            service_and_port(&x.service, x.port, &at, p);
            if x.grpc.is_some() && x.http.is_some() {
                p.error(
                    &at,
                    "OpenTelemetryTracingProvider cannot specify both grpc and http",
                );
            }
            if let Some(h) = &x.http {
                let hp = at.field("http");
                match h.path.as_deref() {
                    None | Some("") => p.error(
                        &hp.field("path"),
                        "http.path: Required value: the OTLP/HTTP path, e.g. /v1/traces",
                    ),
                    _ => {}
                }
                timeout(&h.timeout, &hp.field("timeout"), p);
                headers(&h.headers, &hp.field("headers"), p);
            }
        }
        if let Some(x) = &self.envoy_file_access_log {
            if let Some(f) = &x.log_format {
                if f.text.is_some() && f.labels.is_some() {
                    p.error(
                        &path.field("envoyFileAccessLog").field("logFormat"),
                        "logFormat sets both text and labels: set at most one",
                    );
                }
            }
        }
        if let Some(x) = &self.envoy_http_als {
            service_and_port(&x.service, x.port, &path.field("envoyHttpAls"), p);
        }
        if let Some(x) = &self.envoy_tcp_als {
            service_and_port(&x.service, x.port, &path.field("envoyTcpAls"), p);
        }
        if let Some(x) = &self.envoy_otel_als {
            service_and_port(&x.service, x.port, &path.field("envoyOtelAls"), p);
        }
    }
}

/// The `service` of a provider: `[<namespace>/]<hostname>` (or an IP address).
pub fn provider_service(service: &str) -> Result<(), String> {
    if service.is_empty() {
        return Err("service must not be empty: use a host such as \
                    my-authz.foo.svc.cluster.local or ns/my-authz.example.com"
            .into());
    }
    match service.split_once('/') {
        None => {
            if checks::fqdn(service).is_err() && checks::ip(service).is_err() {
                return Err(format!(
                    "invalid service fmt {service}: use a host name such as \
                     my-authz.foo.svc.cluster.local, [<namespace>/]<hostname>, or an IP address"
                ));
            }
            Ok(())
        }
        Some((ns, host)) => {
            if ns.is_empty() || host.is_empty() {
                return Err(format!(
                    "service {service:?}: namespace and host name cannot be empty in namespace/host"
                ));
            }
            checks::namespace_slash_host(service, false)?;
            if host != "*" && !host.contains('.') {
                return Err(format!(
                    "service {service:?}: short names (non FQDN) are not allowed after the namespace"
                ));
            }
            Ok(())
        }
    }
}

fn service_and_port(service: &Option<String>, port: Option<u32>, at: &FieldPath, p: &mut Problems) {
    p.check(
        &at.field("service"),
        provider_service(service.as_deref().unwrap_or("")),
    );
    match port {
        None => p.error(
            &at.field("port"),
            "port: Required value: port must be between 1-65535",
        ),
        Some(n) => p.check(&at.field("port"), checks::port(n)),
    }
}

fn timeout(d: &Option<Duration>, at: &FieldPath, p: &mut Problems) {
    if let Some(d) = d {
        p.check(
            at,
            checks::duration_at_least(d, std::time::Duration::from_millis(1)),
        );
    }
}

fn status_on_error(s: &Option<String>, at: &FieldPath, p: &mut Problems) {
    let Some(s) = s.as_deref().filter(|s| !s.is_empty()) else {
        return;
    };
    match s.parse::<u32>() {
        Ok(code) if (100..=599).contains(&code) => {}
        _ => p.error(
            at,
            format!("invalid statusOnError value {s}: use an HTTP status code such as \"403\" or \"503\""),
        ),
    }
}

fn headers(list: &[HttpHeader], at: &FieldPath, p: &mut Problems) {
    for (i, h) in list.iter().enumerate() {
        p.check(
            &at.index(i).field("name"),
            checks::header_name(h.name.as_deref().unwrap_or("")),
        );
    }
}

/// Request body forwarding for ext_authz.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyExternalAuthorizationRequestBody {
    #[serde(
        default,
        alias = "max_request_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_request_bytes: Option<u32>,
    #[serde(
        default,
        alias = "allow_partial_message",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_partial_message: Option<bool>,
    #[serde(
        default,
        alias = "pack_as_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub pack_as_bytes: Option<bool>,
}

/// External authorization over Envoy's ext_authz HTTP API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyExtAuthzHttpProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Default 600s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(
        default,
        alias = "path_prefix",
        skip_serializing_if = "Option::is_none"
    )]
    pub path_prefix: Option<String>,
    #[serde(default, alias = "fail_open", skip_serializing_if = "Option::is_none")]
    pub fail_open: Option<bool>,
    /// Default "403".
    #[serde(
        default,
        alias = "status_on_error",
        skip_serializing_if = "Option::is_none"
    )]
    pub status_on_error: Option<String>,
    /// Deprecated: use `includeRequestHeadersInCheck`.
    #[serde(
        default,
        alias = "include_headers_in_check",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub include_headers_in_check: Vec<String>,
    #[serde(
        default,
        alias = "include_request_headers_in_check",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub include_request_headers_in_check: Vec<String>,
    #[serde(
        default,
        alias = "include_additional_headers_in_check",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub include_additional_headers_in_check: BTreeMap<String, String>,
    #[serde(
        default,
        alias = "include_request_body_in_check",
        skip_serializing_if = "Option::is_none"
    )]
    pub include_request_body_in_check: Option<EnvoyExternalAuthorizationRequestBody>,
    #[serde(
        default,
        alias = "headers_to_upstream_on_allow",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers_to_upstream_on_allow: Vec<String>,
    #[serde(
        default,
        alias = "headers_to_downstream_on_deny",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers_to_downstream_on_deny: Vec<String>,
    #[serde(
        default,
        alias = "headers_to_downstream_on_allow",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers_to_downstream_on_allow: Vec<String>,
}

/// External authorization over Envoy's ext_authz gRPC API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyExtAuthzGrpcProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, alias = "fail_open", skip_serializing_if = "Option::is_none")]
    pub fail_open: Option<bool>,
    #[serde(
        default,
        alias = "status_on_error",
        skip_serializing_if = "Option::is_none"
    )]
    pub status_on_error: Option<String>,
    #[serde(
        default,
        alias = "include_request_body_in_check",
        skip_serializing_if = "Option::is_none"
    )]
    pub include_request_body_in_check: Option<EnvoyExternalAuthorizationRequestBody>,
}

/// An HTTP header sent to a provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// An HTTP endpoint of a provider (OTLP over HTTP).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpService {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Default 3s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeader>,
}

/// Zipkin tracing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZipkinTracingProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(
        default,
        alias = "max_tag_length",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_tag_length: Option<u32>,
    #[serde(
        default,
        rename = "enable64bitTraceId",
        alias = "enable_64bit_trace_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_64bit_trace_id: Option<bool>,
    /// Collector endpoint path (default `/api/v2/spans`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `USE_B3` or `USE_B3_WITH_W3C_PROPAGATION`.
    #[serde(
        default,
        alias = "trace_context_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub trace_context_option: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HttpHeader>,
}

/// Lightstep tracing (deprecated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LightstepTracingProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(
        default,
        alias = "access_token",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_token: Option<String>,
    #[serde(
        default,
        alias = "max_tag_length",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_tag_length: Option<u32>,
}

/// Datadog tracing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatadogTracingProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(
        default,
        alias = "max_tag_length",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_tag_length: Option<u32>,
}

/// Apache SkyWalking tracing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkyWalkingTracingProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(
        default,
        alias = "access_token",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_token: Option<String>,
}

/// Stackdriver logging labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StackdriverLogging {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Stackdriver (Google Cloud) tracing, metrics and logging.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StackdriverProvider {
    /// Deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// Deprecated.
    #[serde(
        default,
        alias = "max_number_of_attributes",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_number_of_attributes: Option<i64>,
    /// Deprecated.
    #[serde(
        default,
        alias = "max_number_of_annotations",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_number_of_annotations: Option<i64>,
    /// Deprecated.
    #[serde(
        default,
        alias = "max_number_of_message_events",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_number_of_message_events: Option<i64>,
    #[serde(
        default,
        alias = "max_tag_length",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_tag_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<StackdriverLogging>,
}

/// OpenCensus agent tracing (deprecated).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenCensusAgentTracingProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<TraceContext>,
    #[serde(
        default,
        alias = "max_tag_length",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_tag_length: Option<u32>,
}

/// OpenTelemetry (OTLP) tracing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenTelemetryTracingProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(
        default,
        alias = "max_tag_length",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_tag_length: Option<u32>,
    /// Export over HTTP instead of gRPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpService>,
    /// gRPC export settings (timeout, initial metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<JsonObject>,
    /// Resource detectors (`environment: {}`, `dynatrace: {}`).
    #[serde(
        default,
        alias = "resource_detectors",
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_detectors: Option<JsonObject>,
    /// Dynatrace sampler settings.
    #[serde(
        default,
        alias = "dynatrace_sampler",
        skip_serializing_if = "Option::is_none"
    )]
    pub dynatrace_sampler: Option<JsonObject>,
}

/// Access log format: `text` or `labels` (JSON), at most one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLogFormat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<JsonObject>,
}

/// Access logs written to a local file or stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyFileAccessLogProvider {
    /// Default `/dev/stdout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, alias = "log_format", skip_serializing_if = "Option::is_none")]
    pub log_format: Option<AccessLogFormat>,
}

/// Envoy gRPC access log service for HTTP traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyHttpGrpcV3LogProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, alias = "log_name", skip_serializing_if = "Option::is_none")]
    pub log_name: Option<String>,
    #[serde(
        default,
        alias = "filter_state_objects_to_log",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub filter_state_objects_to_log: Vec<String>,
    #[serde(
        default,
        alias = "additional_request_headers_to_log",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_request_headers_to_log: Vec<String>,
    #[serde(
        default,
        alias = "additional_response_headers_to_log",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_response_headers_to_log: Vec<String>,
    #[serde(
        default,
        alias = "additional_response_trailers_to_log",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_response_trailers_to_log: Vec<String>,
}

/// Envoy gRPC access log service for TCP traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyTcpGrpcV3LogProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, alias = "log_name", skip_serializing_if = "Option::is_none")]
    pub log_name: Option<String>,
    #[serde(
        default,
        alias = "filter_state_objects_to_log",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub filter_state_objects_to_log: Vec<String>,
}

/// OpenTelemetry access log format: body text and attribute labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OtelLogFormat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<JsonObject>,
}

/// Envoy OpenTelemetry (gRPC) access log service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyOpenTelemetryLogProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, alias = "log_name", skip_serializing_if = "Option::is_none")]
    pub log_name: Option<String>,
    #[serde(default, alias = "log_format", skip_serializing_if = "Option::is_none")]
    pub log_format: Option<OtelLogFormat>,
}
