//! `ironmesh-config`: the Istio API, typed.
//!
//! Owns the serde models of every Istio kind in every served version
//! (networking.istio.io v1/v1beta1/v1alpha3, security.istio.io v1/v1beta1,
//! telemetry.istio.io v1/v1alpha1, extensions.istio.io v1alpha1), the Kubernetes objects
//! the mesh reads (through `k8s-openapi`), MeshConfig and ProxyConfig with Istio's
//! defaults, YAML/JSON loading that remembers the file and line of every field, and
//! validation with Istio's rules.
//!
//! Must not: do I/O beyond reading the files and stdin it is pointed at, know about
//! Envoy, or hold state. Later crates (registry, discovery) build on these types.

#![forbid(unsafe_code)]

pub mod extensions;
pub mod load;
pub mod mesh;
pub mod networking;
pub mod object;
pub mod path;
pub mod security;
pub mod telemetry;
pub mod types;
pub mod validation;
pub mod yaml;

pub use load::{load_parsed, load_paths, load_str, Diagnostic, LoadError, LoadOptions, Loaded};
pub use object::{Object, ObjectRef, Resource, Source};
pub use path::FieldPath;
pub use validation::{Context, Problem, Problems, Severity, Validate};

/// This crate's version (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
