//! `ironmesh-xds`: Envoy v3 xDS on the wire, for both sides.
//!
//! Owns: the Envoy v3 protobuf types (re-exported from `envoy-types`), resource type
//! URLs and Istio's resource naming (`outbound|80|v1|reviews.default.svc.cluster.local`,
//! `inbound|80||`, …), the ADS protocol as a server (SotW and Delta, versions, nonces,
//! ACK/NACK, debounce) and as a client (reconnect, last-known-good, NACK details), and
//! proto3 JSON rendering for config dumps.
//!
//! Must not: know about Istio CRDs (`ironmesh-config`); it speaks only xDS.
//!
//! Built by the control-plane issue; today the crate holds only this contract.

#![forbid(unsafe_code)]
