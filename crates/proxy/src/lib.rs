//! `ironmesh-proxy`: the data plane and pilot-agent's duties in one process.
//!
//! Owns: xDS-driven listeners, protocol detection, HTTP/1.1, HTTP/2, gRPC, WebSocket and
//! TCP proxying, routing, load balancing, retries/timeouts/faults, circuit breaking,
//! outlier detection, mTLS, RBAC/JWT filters, access logs, metrics, tracing, the admin
//! API; and the agent's duties: certificates, health/readiness, stats merge, DNS proxy,
//! iptables, drain, Envoy supervision.
//!
//! Must not: parse Istio CRDs — it understands only xDS, so it depends on
//! `ironmesh-xds` and `ironmesh-security`, never on config, registry or discovery.

#![forbid(unsafe_code)]

pub mod admin;
pub mod agent;
pub mod dataplane;
pub mod dns;
pub mod iptables;
pub mod lb;
pub mod model;
pub mod routing;
pub mod telemetry;
