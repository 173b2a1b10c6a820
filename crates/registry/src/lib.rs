//! `ironmesh-registry`: the mesh's model of services and workloads, and the config store.
//!
//! Owns: the service/workload model (Service, ServiceInstance/Workload, ports, VIPs,
//! labels, locality, identity); a versioned config store with immutable snapshots and
//! change events; sources that feed it (a watched directory in local mode, the Kubernetes
//! API through kube-rs).
//!
//! Must not: know about Envoy or xDS (that is `ironmesh-discovery`), or run traffic.
//!
//! Built by the control-plane issue; today the crate holds only this contract.

#![forbid(unsafe_code)]
