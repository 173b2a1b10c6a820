//! `ironmesh-registry`: the mesh's model of services and workloads, and the config store.
//!
//! Owns: the service/workload model (`model`: Service, ServicePort, Endpoint, Workload,
//! ports with protocols, VIPs, labels, locality, identity); a versioned config store with
//! immutable snapshots and change events; sources that feed it (a watched directory in
//! local mode; the Kubernetes API through kube-rs later).
//!
//! Must not: know about Envoy or xDS (that is `ironmesh-discovery`), or run traffic.

#![forbid(unsafe_code)]

pub mod builder;
pub mod dir_source;
pub mod model;
pub mod snapshot;
pub mod store;

pub use builder::build_services;
pub use dir_source::{DirSource, DirSourceHandle, RegistryError};
pub use model::{
    Endpoint, Locality, Protocol, Resolution, Service, ServiceOrigin, ServicePort, ServiceRegistry,
    TlsMode, Workload,
};
pub use snapshot::{Change, RejectedFile, Snapshot};
pub use store::{FileChange, FileOutcome, Store};
