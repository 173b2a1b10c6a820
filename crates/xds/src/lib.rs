//! `ironmesh-xds`: Envoy v3 xDS on the wire, for both sides.
//!
//! Owns: the Envoy v3 protobuf types (re-exported from `envoy-types` as [`pb`]), resource
//! type URLs ([`type_url`]) and Istio's resource naming ([`names`]:
//! `outbound|80|v1|reviews.default.svc.cluster.local`, `inbound|80||`, …), the ADS
//! protocol as a server ([`server`]: SotW and Delta, versions, nonces, ACK/NACK,
//! [`debounce`]), and proto3 JSON rendering for config dumps ([`json`]). The ADS client
//! ([`client`]: reconnect with backoff, last-known-good, NACK details) is the proxy's.
//!
//! Must not: know about Istio CRDs (`ironmesh-config`); it speaks only xDS.

#![forbid(unsafe_code)]

pub mod client;
pub mod debounce;
pub mod hash;
pub mod json;
pub mod names;
pub mod nds;
pub mod server;
pub mod type_url;

/// Envoy's v3 API (and the `google.protobuf`, `xds`, `udpa` packages it uses), compiled
/// with prost 0.14 / tonic 0.14. Paths follow the proto packages:
/// `pb::envoy::config::cluster::v3::Cluster`, `pb::google::protobuf::Any`, …
pub use envoy_types::pb;

/// The `Any` that every Envoy resource travels in. It is `envoy-types`' own copy of
/// `google.protobuf.Any` (not `prost_types::Any`): that is the type the generated
/// `DiscoveryResponse` carries.
pub type Any = pb::google::protobuf::Any;

/// Packs a message into an [`Any`] with its `type.googleapis.com/…` URL.
pub fn pack<M: prost::Name + prost::Message>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

pub use client::{
    AdsClient, ClientConfig, ClientHandle, ClientStatus, ConnectionState, Handler,
    TypeClientStatus, TypeSubscription, Update, XdsResource,
};
pub use debounce::{Debouncer, DebouncerConfig};
pub use json::{any_to_json, json_to_any, json_to_message, message_to_json, JsonError};
pub use server::{
    AdsServer, ConnectionStatus, Generator, Nack, Protocol, Push, PushPublisher, PushScope,
    Resource, ServerConfig, Subscription, TypeStatus,
};
