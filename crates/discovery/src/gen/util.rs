//! Small builders shared by the generators: Any packing, durations, wrappers, addresses,
//! ADS config sources, metadata and percentages.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{
    address, config_source, socket_address, AggregatedConfigSource, ApiVersion, ConfigSource,
    Metadata, SocketAddress, TransportSocket, TypedExtensionConfig,
};
use envoy_types::pb::envoy::config::core::v3::{transport_socket, Address};
use envoy_types::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};
use envoy_types::pb::google::protobuf::{
    value::Kind, Any, BoolValue, Duration, ListValue, Struct, UInt32Value, Value,
};
use prost::{Message, Name};

/// Packs a message into an `Any` with its canonical type URL.
pub fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

pub fn typed_extension<M: Message + Name>(name: &str, m: &M) -> TypedExtensionConfig {
    TypedExtensionConfig {
        name: name.to_string(),
        typed_config: Some(any(m)),
    }
}

pub fn transport_socket<M: Message + Name>(name: &str, m: &M) -> TransportSocket {
    TransportSocket {
        name: name.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(m))),
    }
}

pub fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub fn zero_duration() -> Duration {
    Duration::default()
}

pub fn seconds(s: i64) -> Duration {
    Duration {
        seconds: s,
        nanos: 0,
    }
}

pub fn u32v(v: u32) -> UInt32Value {
    UInt32Value { value: v }
}

pub fn boolv(v: bool) -> BoolValue {
    BoolValue { value: v }
}

pub fn socket_address(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// `{ads: {}, resourceApiVersion: V3}`, with no initial fetch timeout as Istio sends.
pub fn ads_config_source() -> ConfigSource {
    ConfigSource {
        initial_fetch_timeout: Some(zero_duration()),
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

/// SDS over ADS, for `kubernetes://<secret>` names.
pub fn sds_config_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

pub fn string_value(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

pub fn struct_value(fields: Vec<(&str, Value)>) -> Value {
    Value {
        kind: Some(Kind::StructValue(Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        })),
    }
}

pub fn list_value(values: Vec<Value>) -> Value {
    Value {
        kind: Some(Kind::ListValue(ListValue { values })),
    }
}

/// `filter_metadata[filter] = {key: value}`.
pub fn metadata(filter: &str, fields: Vec<(&str, Value)>) -> Metadata {
    let mut filter_metadata = HashMap::new();
    filter_metadata.insert(
        filter.to_string(),
        Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        },
    );
    Metadata {
        filter_metadata,
        ..Default::default()
    }
}

/// Istio's `Percent` (0–100, fractional) as parts per million.
pub fn percent_to_fraction(percent: f64) -> FractionalPercent {
    FractionalPercent {
        numerator: (percent * 10000.0) as u32,
        denominator: DenominatorType::Million as i32,
    }
}

/// A whole percentage, in hundredths.
pub fn integer_percent(percent: u32) -> FractionalPercent {
    FractionalPercent {
        numerator: percent,
        denominator: DenominatorType::Hundred as i32,
    }
}
