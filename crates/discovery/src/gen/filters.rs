//! Network and listener filters shared by sidecar and gateway listeners: the HTTP
//! connection manager with Istio's filter chain, TCP proxy, access logs from MeshConfig
//! and the listener filters that detect the original destination and protocols.

use envoy_types::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
use envoy_types::pb::envoy::config::core::v3::{
    data_source, substitution_format_string, DataSource, SubstitutionFormatString,
};
use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, Filter, ListenerFilter,
};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::http_inspector::v3::HttpInspector;
use envoy_types::pb::envoy::extensions::filters::listener::original_dst::v3::OriginalDst;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{self, PathWithEscapedSlashesAction, RouteSpecifier, UpgradeConfig},
    http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use envoy_types::pb::google::protobuf::{Struct, Value};
use ironmesh_config::mesh::mesh_config::AccessLogEncoding;
use ironmesh_config::mesh::MeshConfig;
use prost::{Message, Name};

use super::route::{CORS_FILTER, FAULT_FILTER};
use super::util::{ads_config_source, any, boolv, string_value};

pub const HCM: &str = "envoy.filters.network.http_connection_manager";
pub const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";
pub const ROUTER: &str = "envoy.filters.http.router";
const FILE_ACCESS_LOG: &str = "envoy.access_loggers.file";

/// Istio's default TEXT access-log format (`EnvoyTextLogFormat`).
pub const DEFAULT_TEXT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/// Istio's default JSON access-log fields.
pub const DEFAULT_JSON_FIELDS: &[(&str, &str)] = &[
    ("start_time", "%START_TIME%"),
    ("route_name", "%ROUTE_NAME%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("protocol", "%PROTOCOL%"),
    ("response_code", "%RESPONSE_CODE%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
    (
        "connection_termination_details",
        "%CONNECTION_TERMINATION_DETAILS%",
    ),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("duration", "%DURATION%"),
    (
        "upstream_service_time",
        "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    ),
    ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
    ("user_agent", "%REQ(USER-AGENT)%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("authority", "%REQ(:AUTHORITY)%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"),
    ("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"),
    ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
    ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
    ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
    (
        "upstream_transport_failure_reason",
        "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    ),
];

fn json_to_value(v: &serde_json::Value) -> Value {
    use envoy_types::pb::google::protobuf::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => {
            Kind::ListValue(envoy_types::pb::google::protobuf::ListValue {
                values: a.iter().map(json_to_value).collect(),
            })
        }
        serde_json::Value::Object(o) => Kind::StructValue(Struct {
            fields: o
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        }),
    };
    Value { kind: Some(kind) }
}

/// The file access log MeshConfig asks for (`accessLogFile`, `accessLogEncoding`,
/// `accessLogFormat`), or nothing when `accessLogFile` is empty.
pub fn access_logs(mesh: &MeshConfig) -> Vec<AccessLog> {
    let path = mesh.access_log_file();
    if path.is_empty() {
        return Vec::new();
    }
    let custom = mesh.access_log_format();
    let format = match mesh.access_log_encoding() {
        AccessLogEncoding::Json => {
            let parsed =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(custom).ok();
            let fields = match parsed {
                Some(map) if !custom.is_empty() => map
                    .iter()
                    .map(|(k, v)| (k.clone(), json_to_value(v)))
                    .collect(),
                _ => DEFAULT_JSON_FIELDS
                    .iter()
                    .map(|(k, v)| (k.to_string(), string_value(v)))
                    .collect(),
            };
            substitution_format_string::Format::JsonFormat(Struct { fields })
        }
        AccessLogEncoding::Text => {
            let text = if custom.is_empty() {
                DEFAULT_TEXT_FORMAT.to_string()
            } else if custom.ends_with('\n') {
                custom.to_string()
            } else {
                format!("{custom}\n")
            };
            substitution_format_string::Format::TextFormatSource(DataSource {
                specifier: Some(data_source::Specifier::InlineString(text)),
                ..Default::default()
            })
        }
    };
    let file = FileAccessLog {
        path: path.to_string(),
        access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(
            SubstitutionFormatString {
                format: Some(format),
                ..Default::default()
            },
        )),
    };
    vec![AccessLog {
        name: FILE_ACCESS_LOG.to_string(),
        config_type: Some(access_log::ConfigType::TypedConfig(any(&file))),
        ..Default::default()
    }]
}

fn http_filter<M: Message + Name>(name: &str, m: &M) -> HttpFilter {
    HttpFilter {
        name: name.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(any(m))),
        ..Default::default()
    }
}

/// Fault, CORS, router: the filters VirtualService features need, router last.
pub fn sidecar_http_filters() -> Vec<HttpFilter> {
    vec![
        http_filter(FAULT_FILTER, &HttpFault::default()),
        http_filter(CORS_FILTER, &Cors::default()),
        http_filter(ROUTER, &Router::default()),
    ]
}

/// Where an HTTP connection manager gets its routes.
pub enum Routes {
    Rds(String),
    Inline(Box<RouteConfiguration>),
}

/// An HTTP connection manager as Istio configures it for sidecars and gateways.
pub fn hcm(
    stat_prefix: &str,
    routes: Routes,
    filters: Vec<HttpFilter>,
    mesh: &MeshConfig,
) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: stat_prefix.to_string(),
        route_specifier: Some(match routes {
            Routes::Rds(name) => RouteSpecifier::Rds(Rds {
                config_source: Some(ads_config_source()),
                route_config_name: name,
            }),
            Routes::Inline(rc) => RouteSpecifier::RouteConfig(*rc),
        }),
        http_filters: filters,
        access_log: access_logs(mesh),
        use_remote_address: Some(boolv(false)),
        generate_request_id: Some(boolv(true)),
        upgrade_configs: vec![UpgradeConfig {
            upgrade_type: "websocket".into(),
            ..Default::default()
        }],
        normalize_path: Some(boolv(true)),
        // Istio's `server:` header value, which users see on every proxied response.
        server_name: "istio-envoy".into(),
        path_with_escaped_slashes_action: PathWithEscapedSlashesAction::KeepUnchanged as i32,
        codec_type: http_connection_manager::CodecType::Auto as i32,
        ..Default::default()
    }
}

pub fn network_filter<M: Message + Name>(name: &str, m: &M) -> Filter {
    Filter {
        name: name.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(any(m))),
    }
}

pub fn hcm_filter(h: &HttpConnectionManager) -> Filter {
    network_filter(HCM, h)
}

/// A TCP proxy to one cluster, or to several by weight.
pub fn tcp_proxy(stat_prefix: &str, clusters: &[(String, u32)], mesh: &MeshConfig) -> Filter {
    let spec = if clusters.len() == 1 {
        tcp_proxy::ClusterSpecifier::Cluster(clusters[0].0.clone())
    } else {
        tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
            clusters: clusters
                .iter()
                .map(
                    |(name, weight)| tcp_proxy::weighted_cluster::ClusterWeight {
                        name: name.clone(),
                        weight: *weight,
                        ..Default::default()
                    },
                )
                .collect(),
        })
    };
    network_filter(
        TCP_PROXY,
        &TcpProxy {
            stat_prefix: stat_prefix.to_string(),
            cluster_specifier: Some(spec),
            access_log: access_logs(mesh),
            ..Default::default()
        },
    )
}

fn listener_filter<M: Message + Name>(name: &str, m: &M) -> ListenerFilter {
    ListenerFilter {
        name: name.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(any(m))),
        ..Default::default()
    }
}

pub fn original_dst_filter() -> ListenerFilter {
    listener_filter("envoy.filters.listener.original_dst", &OriginalDst {})
}

pub fn tls_inspector() -> ListenerFilter {
    listener_filter(
        "envoy.filters.listener.tls_inspector",
        &TlsInspector::default(),
    )
}

pub fn http_inspector() -> ListenerFilter {
    listener_filter("envoy.filters.listener.http_inspector", &HttpInspector {})
}
