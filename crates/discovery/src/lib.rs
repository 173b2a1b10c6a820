//! `ironmesh-discovery`: the control plane (istiod's pilot-discovery).
//!
//! Owns: the PushContext (an immutable, indexed snapshot of config plus registry per
//! push), per-proxy generators (LDS, RDS, CDS, EDS, SDS), gateway translation, scoping
//! (Sidecar, exportTo), the CA service, injection/validation webhooks and debug
//! endpoints; the `ironmesh-discovery` binary.
//!
//! Must not: run data-plane traffic.
//!
//! Built by the control-plane issue; today the crate holds only this contract.

#![forbid(unsafe_code)]
