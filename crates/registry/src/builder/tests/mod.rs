//! Builder tests: Kubernetes rules in `kube`, ServiceEntry rules and whole scenarios
//! in `service_entry`.

mod kube;
mod service_entry;

use std::sync::Arc;

use ironmesh_config::mesh::MeshConfig;
use ironmesh_config::{load_str, LoadOptions, Object};

use super::build_services;
use crate::model::{Endpoint, ServiceRegistry};

pub(super) fn objects(yaml: &str) -> Vec<Arc<Object>> {
    let loaded = load_str("test.yaml", yaml, &LoadOptions::default());
    assert_eq!(
        loaded.error_count(),
        0,
        "test input must be valid: {:#?}",
        loaded.diagnostics
    );
    loaded.objects.into_iter().map(Arc::new).collect()
}

pub(super) fn build(yaml: &str) -> ServiceRegistry {
    build_services(&objects(yaml), &MeshConfig::default(), "cluster.local")
}

pub(super) fn seed(name: &str) -> String {
    let path = format!("{}/../../examples/seeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A running pod with an IP, `Ready` as given, labels as `k: v` pairs.
pub(super) fn pod(name: &str, ns: &str, ip: &str, labels: &[(&str, &str)], ready: bool) -> String {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    format!(
        r#"---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels:
{labels}spec:
  containers:
  - name: app
    image: app
    ports:
    - name: http-app
      containerPort: 8080
status:
  phase: Running
  podIP: {ip}
  conditions:
  - type: Ready
    status: "{}"
"#,
        if ready { "True" } else { "False" }
    )
}

pub(super) fn addresses(eps: &[Endpoint]) -> Vec<(&str, u16)> {
    eps.iter().map(|e| (e.address.as_str(), e.port)).collect()
}
