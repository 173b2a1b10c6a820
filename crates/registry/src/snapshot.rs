//! An immutable, versioned view of everything the control plane knows: config objects,
//! the effective MeshConfig and the service registry built from them. Swapped whole on
//! every change; readers hold an `Arc` for as long as they need a consistent view.

use std::collections::BTreeSet;
use std::sync::Arc;

use ironmesh_config::mesh::MeshConfig;
use ironmesh_config::{Diagnostic, Object};
use serde::Serialize;

use crate::model::ServiceRegistry;

/// What changed since the previous snapshot; lets discovery push only EDS when only
/// endpoints moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Change {
    /// The first snapshot, or config/services changed.
    Full,
    /// Only endpoints of these service hostnames changed.
    Endpoints(BTreeSet<String>),
}

/// A file the store refused (it failed validation): its objects keep their last good
/// version, if any.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedFile {
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Increases by one per published snapshot.
    pub version: u64,
    pub change: Change,
    /// Every accepted object (Istio kinds and Kubernetes kinds), sorted by
    /// (kind, namespace, name).
    pub objects: Vec<Arc<Object>>,
    /// The MeshConfig in force (from the `istio` ConfigMap in the root namespace, a
    /// `--mesh-config` file, or Istio's defaults).
    pub mesh: Arc<MeshConfig>,
    pub services: Arc<ServiceRegistry>,
    /// Files whose latest content was refused.
    pub rejected: Vec<RejectedFile>,
}

impl Snapshot {
    /// An empty snapshot (version 0) with Istio's default MeshConfig.
    pub fn empty() -> Self {
        Snapshot {
            version: 0,
            change: Change::Full,
            objects: Vec::new(),
            mesh: Arc::new(MeshConfig::default()),
            services: Arc::new(ServiceRegistry::default()),
            rejected: Vec::new(),
        }
    }

    /// Objects of one kind.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Arc<Object>> + 'a {
        self.objects.iter().filter(move |o| o.kind() == kind)
    }
}
