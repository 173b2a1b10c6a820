//! Proto3 JSON for Envoy resources, in the shape Envoy's `/config_dump` prints:
//! lowerCamelCase field names, `@type` inside `Any`, durations as `"1s"`, enums by name,
//! 64-bit integers as strings, default values left out.
//!
//! Reflection comes from the descriptor set `envoy-types` was generated from (copied by
//! `build.rs`), so every message that crate knows renders, including ones packed in
//! `Any` at any depth. Types outside it (Istio's own filter configs) fail with
//! [`JsonError::UnknownType`] instead of rendering something half-right.

use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, ReflectMessage, SerializeOptions,
};
use serde_json::Value;

use crate::Any;

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/envoy_types.bin"));

/// Why a message could not be rendered or parsed.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error(
        "{0:?} is not a type known to envoy-types; only Envoy's own protos (and the \
         google/xds/udpa ones they use) can be rendered"
    )]
    UnknownType(String),
    #[error("type URL {0:?} has no `/`; expected type.googleapis.com/<full message name>")]
    BadTypeUrl(String),
    #[error("the bytes are not a valid {type_name}: {reason}")]
    Decode { type_name: String, reason: String },
    #[error("cannot render {type_name} as JSON: {reason}")]
    Serialize { type_name: String, reason: String },
    #[error("the JSON is not a valid {type_name}: {reason}")]
    Deserialize { type_name: String, reason: String },
    #[error("the descriptor set built into ironmesh-xds is corrupt ({0}); rebuild the crate")]
    Descriptors(String),
}

/// The descriptor pool of every message `envoy-types` knows, decoded once.
pub fn descriptor_pool() -> Result<&'static DescriptorPool, JsonError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTORS).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| JsonError::Descriptors(e.clone()))
}

fn type_name(type_url: &str) -> Result<&str, JsonError> {
    type_url
        .rsplit_once('/')
        .map(|(_, name)| name)
        .ok_or_else(|| JsonError::BadTypeUrl(type_url.to_owned()))
}

fn decode(full_name: &str, bytes: &[u8]) -> Result<DynamicMessage, JsonError> {
    let descriptor = descriptor_pool()?
        .get_message_by_name(full_name)
        .ok_or_else(|| JsonError::UnknownType(full_name.to_owned()))?;
    DynamicMessage::decode(descriptor, bytes).map_err(|e| JsonError::Decode {
        type_name: full_name.to_owned(),
        reason: e.to_string(),
    })
}

fn render(message: &DynamicMessage) -> Result<Value, JsonError> {
    let options = SerializeOptions::new();
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| {
            let reason = e.to_string();
            // prost-reflect reports an Any it cannot resolve as "message '<name>' not
            // found"; surface it as the unknown type it is.
            match reason
                .strip_prefix("message '")
                .and_then(|r| r.strip_suffix("' not found"))
            {
                Some(name) => JsonError::UnknownType(name.to_owned()),
                None => JsonError::Serialize {
                    type_name: message.descriptor().full_name().to_owned(),
                    reason,
                },
            }
        })
}

/// Renders a packed resource as `{"@type": "<type_url>", …fields}`.
pub fn any_to_json(any: &Any) -> Result<Value, JsonError> {
    type_name(&any.type_url)?;
    // Going through google.protobuf.Any itself lets prost-reflect apply the proto3 JSON
    // rules for Any (including well-known types, which nest under "value").
    let dynamic = decode("google.protobuf.Any", &any.encode_to_vec())?;
    render(&dynamic)
}

/// Renders a message (its fields, no `@type`).
pub fn message_to_json<M: prost::Name + Message>(message: &M) -> Result<Value, JsonError> {
    render(&decode(&M::full_name(), &message.encode_to_vec())?)
}

fn parse(full_name: &str, value: &Value) -> Result<DynamicMessage, JsonError> {
    let descriptor = descriptor_pool()?
        .get_message_by_name(full_name)
        .ok_or_else(|| JsonError::UnknownType(full_name.to_owned()))?;
    DynamicMessage::deserialize_with_options(descriptor, value, &DeserializeOptions::new()).map_err(
        |e| JsonError::Deserialize {
            type_name: full_name.to_owned(),
            reason: e.to_string(),
        },
    )
}

/// Packs proto3 JSON of the message named by `type_url` into an [`Any`]. An `@type`
/// member, if present, must name the same type and is dropped.
pub fn json_to_any(type_url: &str, value: &Value) -> Result<Any, JsonError> {
    let full_name = type_name(type_url)?;
    let mut value = value.clone();
    if let Some(object) = value.as_object_mut() {
        if let Some(declared) = object.remove("@type") {
            let declared = declared.as_str().unwrap_or_default();
            if type_name(declared).ok() != Some(full_name) {
                return Err(JsonError::Deserialize {
                    type_name: full_name.to_owned(),
                    reason: format!("\"@type\" is {declared:?}, expected {type_url:?}"),
                });
            }
        }
    }
    let message = parse(full_name, &value)?;
    Ok(Any {
        type_url: type_url.to_owned(),
        value: message.encode_to_vec(),
    })
}

/// Parses proto3 JSON into a typed message.
pub fn json_to_message<M: prost::Name + Message + Default>(value: &Value) -> Result<M, JsonError> {
    let full_name = M::full_name();
    let message = parse(&full_name, value)?;
    M::decode(message.encode_to_vec().as_slice()).map_err(|e| JsonError::Decode {
        type_name: full_name,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::envoy::config::cluster::v3::{cluster, Cluster};
    use crate::pb::envoy::config::core::v3::{
        address, socket_address, Address, Http2ProtocolOptions, SocketAddress,
    };
    use crate::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener};
    use crate::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        http_connection_manager, HttpConnectionManager, Rds,
    };
    use crate::pb::envoy::extensions::upstreams::http::v3::{
        http_protocol_options, HttpProtocolOptions,
    };
    use crate::pb::google::protobuf::{Duration, UInt32Value};
    use crate::{pack, type_url};
    use serde_json::json;

    fn cluster() -> Cluster {
        let options = HttpProtocolOptions {
            upstream_protocol_options: Some(
                http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                    http_protocol_options::ExplicitHttpConfig {
                        protocol_config: Some(
                            http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                                Http2ProtocolOptions {
                                    max_concurrent_streams: Some(UInt32Value { value: 100 }),
                                    ..Default::default()
                                },
                            ),
                        ),
                    },
                ),
            ),
            ..Default::default()
        };
        Cluster {
            name: "outbound|80||httpbin.default.svc.cluster.local".into(),
            connect_timeout: Some(Duration {
                seconds: 1,
                nanos: 0,
            }),
            cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32,
            )),
            lb_policy: cluster::LbPolicy::LeastRequest as i32,
            typed_extension_protocol_options: [(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_owned(),
                pack(&options),
            )]
            .into(),
            per_connection_buffer_limit_bytes: Some(UInt32Value { value: 32768 }),
            ..Default::default()
        }
    }

    #[test]
    fn cluster_renders_like_a_config_dump_and_round_trips() {
        let any = pack(&cluster());
        let v = any_to_json(&any).unwrap();
        assert_eq!(v["@type"], type_url::CLUSTER);
        assert_eq!(v["name"], "outbound|80||httpbin.default.svc.cluster.local");
        assert_eq!(v["connectTimeout"], "1s");
        assert_eq!(v["type"], "EDS");
        assert_eq!(v["lbPolicy"], "LEAST_REQUEST");
        assert_eq!(v["perConnectionBufferLimitBytes"], 32768);
        let options = &v["typedExtensionProtocolOptions"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        assert_eq!(
            options["@type"],
            "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        );
        assert_eq!(
            options["explicitHttpConfig"]["http2ProtocolOptions"]["maxConcurrentStreams"],
            100
        );
        let back = json_to_any(type_url::CLUSTER, &v).unwrap();
        let decoded = Cluster::decode(back.value.as_slice()).unwrap();
        assert_eq!(decoded, cluster());
        let typed: Cluster = json_to_message(
            &v.as_object()
                .unwrap()
                .clone()
                .into_iter()
                .filter(|(k, _)| k != "@type")
                .collect::<serde_json::Map<_, _>>()
                .into(),
        )
        .unwrap();
        assert_eq!(typed, cluster());
    }

    #[test]
    fn listener_with_http_connection_manager_round_trips() {
        let hcm = HttpConnectionManager {
            stat_prefix: "outbound_0.0.0.0_80".into(),
            route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
                route_config_name: "80".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let listener = Listener {
            name: "0.0.0.0_80".into(),
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: "0.0.0.0".into(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(80)),
                    ..Default::default()
                })),
            }),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "envoy.filters.network.http_connection_manager".into(),
                    config_type: Some(
                        crate::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(
                            pack(&hcm),
                        ),
                    ),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let v = message_to_json(&listener).unwrap();
        assert!(v.get("@type").is_none());
        assert_eq!(v["address"]["socketAddress"]["portValue"], 80);
        let filter = &v["filterChains"][0]["filters"][0];
        assert_eq!(
            filter["typedConfig"]["@type"],
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
        );
        assert_eq!(filter["typedConfig"]["rds"]["routeConfigName"], "80");
        assert_eq!(filter["typedConfig"]["statPrefix"], "outbound_0.0.0.0_80");
        let back: Listener = json_to_message(&v).unwrap();
        assert_eq!(back, listener);
    }

    #[test]
    fn scalars_follow_proto3_json() {
        use crate::pb::envoy::config::core::v3::RuntimeUInt32;
        use crate::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
        // uint64 renders as a string.
        let v = message_to_json(&crate::pb::envoy::r#type::v3::Int64Range { start: 1, end: 5 })
            .unwrap();
        assert_eq!(v, json!({"start": "1", "end": "5"}));
        let v = message_to_json(&RuntimeUInt32 {
            default_value: 7,
            runtime_key: "k".into(),
        })
        .unwrap();
        assert_eq!(v, json!({"defaultValue": 7, "runtimeKey": "k"}));
        // A well-known type inside Any nests under "value".
        let any = pack(&Duration {
            seconds: 1,
            nanos: 500_000_000,
        });
        assert_eq!(
            any_to_json(&any).unwrap(),
            json!({"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1.500s"})
        );
        // Defaults are left out, as in Envoy's config dump.
        let v = message_to_json(&ClusterLoadAssignment::default()).unwrap();
        assert_eq!(v, json!({}));
    }

    #[test]
    fn errors_name_the_problem() {
        let unknown = Any {
            type_url: "type.googleapis.com/istio.networking.nds.v1.NameTable".into(),
            value: vec![],
        };
        assert!(matches!(
            any_to_json(&unknown),
            Err(JsonError::UnknownType(_))
        ));
        let bad = json_to_any(type_url::CLUSTER, &json!({"nmae": "x"})).unwrap_err();
        assert!(matches!(bad, JsonError::Deserialize { .. }), "{bad}");
        assert!(bad.to_string().contains("envoy.config.cluster.v3.Cluster"));
        let mismatch =
            json_to_any(type_url::CLUSTER, &json!({"@type": type_url::LISTENER})).unwrap_err();
        assert!(mismatch.to_string().contains("@type"), "{mismatch}");
        assert!(matches!(
            json_to_any("no-slash", &json!({})),
            Err(JsonError::BadTypeUrl(_))
        ));
    }
}
