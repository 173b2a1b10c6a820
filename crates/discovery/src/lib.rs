//! `ironmesh-discovery`: the control plane (istiod's pilot-discovery).
//!
//! Owns: the PushContext (an immutable, indexed snapshot of config plus registry per
//! push), per-proxy generators (LDS, RDS, CDS, EDS, SDS), gateway translation, scoping
//! (Sidecar, exportTo), the CA service, injection/validation webhooks and debug
//! endpoints; the `ironmesh-discovery` binary.
//!
//! Must not: run data-plane traffic.
//!
//! Library layout: [`proxy`] parses who is asking (the xDS node), [`push_context`]
//! indexes a registry snapshot, [`generate()`] builds Envoy v3 resources with the
//! builders in [`gen`] (sidecar, gateway and proxyless-gRPC flavours).

#![forbid(unsafe_code)]

pub mod gen;
mod generate;
pub mod proxy;
pub mod push_context;

#[cfg(test)]
mod testutil;

pub use generate::{
    generate, GenError, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, NAME_TABLE_TYPE, ROUTE_TYPE,
    SECRET_TYPE,
};
pub use proxy::{Proxy, ProxyError, ProxyKind};
pub use push_context::PushContext;
