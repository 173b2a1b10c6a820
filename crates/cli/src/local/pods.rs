//! What should run: pods from Deployments (replicas), StatefulSets and bare Pods of the
//! config dir, whether each gets a sidecar, and the processes of each pod.

use std::collections::BTreeMap;

use ironmesh_config::{load_paths, LoadOptions, Object, Resource};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde_json::{json, Value};

use super::images::{program_for, Program};
use super::state::*;

const INJECT: &str = "sidecar.istio.io/inject";
/// Marks Pod files the runtime wrote for a controller's replica.
pub const OWNER_ANNOTATION: &str = "ironmesh.io/owner";

/// A pod that should be running.
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub namespace: String,
    pub name: String,
    /// `Deployment/name`, `StatefulSet/name`, or empty for a bare Pod.
    pub owner: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub spec: PodSpec,
    pub injected: bool,
}

impl PodPlan {
    pub fn service_account(&self) -> String {
        self.spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into())
    }
    pub fn workload_name(&self) -> String {
        match self.owner.split_once('/') {
            Some((_, n)) => n.to_string(),
            None => self.name.clone(),
        }
    }
    pub fn is_gateway(&self) -> bool {
        self.spec
            .containers
            .iter()
            .any(|c| matches!(program_for(c), Program::Proxy(_)))
    }
}

/// Objects of the config dir (discovery's view of the world).
pub fn load_config_objects() -> anyhow::Result<Vec<Object>> {
    let loaded = load_paths(&[config_dir()], &LoadOptions::default())?;
    Ok(loaded.objects)
}

/// The pods the objects ask for. Controller replicas are named like Kubernetes names
/// them (`<deployment>-<template hash>-<suffix>`); `existing` keeps the names of pods
/// already running with the same template so that a reconcile does not churn them.
pub fn desired_pods(objects: &[Object], existing: &[PodState]) -> Vec<PodPlan> {
    let ns_labels: BTreeMap<String, BTreeMap<String, String>> = objects
        .iter()
        .filter(|o| o.kind() == "Namespace")
        .map(|o| {
            (
                o.name().to_string(),
                o.metadata.labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for o in objects {
        let ns = o.namespace().to_string();
        match &o.resource {
            Resource::Deployment(d) => {
                let Some(spec) = &d.spec else { continue };
                let replicas = spec.replicas.unwrap_or(1).max(0) as usize;
                let tmpl = &spec.template;
                let hash = template_hash(&serde_json::to_string(tmpl).unwrap_or_default());
                let owner = format!("Deployment/{}", o.name());
                let prefix = format!("{}-{hash}-", o.name());
                let mut names: Vec<String> = existing
                    .iter()
                    .filter(|p| {
                        p.namespace == ns && p.owner == owner && p.name.starts_with(&prefix)
                    })
                    .map(|p| p.name.clone())
                    .collect();
                names.truncate(replicas);
                let mut salt = 0u32;
                while names.len() < replicas {
                    let n = format!("{prefix}{}", suffix(&format!("{ns}/{prefix}{salt}")));
                    salt += 1;
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
                for name in names {
                    let mut labels = tmpl
                        .metadata
                        .as_ref()
                        .and_then(|m| m.labels.clone())
                        .unwrap_or_default();
                    labels.insert("pod-template-hash".into(), hash.clone());
                    let annotations = tmpl
                        .metadata
                        .as_ref()
                        .and_then(|m| m.annotations.clone())
                        .unwrap_or_default();
                    out.push(plan(
                        &ns,
                        name,
                        owner.clone(),
                        labels,
                        annotations,
                        tmpl.spec.clone().unwrap_or_default(),
                        &ns_labels,
                    ));
                }
            }
            Resource::StatefulSet(s) => {
                let Some(spec) = &s.spec else { continue };
                let tmpl = &spec.template;
                for i in 0..spec.replicas.unwrap_or(1).max(0) {
                    let labels = tmpl
                        .metadata
                        .as_ref()
                        .and_then(|m| m.labels.clone())
                        .unwrap_or_default();
                    let annotations = tmpl
                        .metadata
                        .as_ref()
                        .and_then(|m| m.annotations.clone())
                        .unwrap_or_default();
                    let name = format!("{}-{i}", o.name());
                    let owner = format!("StatefulSet/{}", o.name());
                    out.push(plan(
                        &ns,
                        name,
                        owner,
                        labels,
                        annotations,
                        tmpl.spec.clone().unwrap_or_default(),
                        &ns_labels,
                    ));
                }
            }
            Resource::Pod(p) => {
                let annotations = o.metadata.annotations.clone().unwrap_or_default();
                if annotations.contains_key(OWNER_ANNOTATION) {
                    continue;
                }
                let labels = o.metadata.labels.clone().unwrap_or_default();
                let spec = p.spec.clone().unwrap_or_default();
                out.push(plan(
                    &ns,
                    o.name().to_string(),
                    String::new(),
                    labels,
                    annotations,
                    spec,
                    &ns_labels,
                ));
            }
            _ => {}
        }
    }
    out
}

fn plan(
    ns: &str,
    name: String,
    owner: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    spec: PodSpec,
    ns_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> PodPlan {
    let injected = injection(ns, &labels, &annotations, ns_labels);
    PodPlan {
        namespace: ns.to_string(),
        name,
        owner,
        labels,
        annotations,
        spec,
        injected,
    }
}

/// Istio's rules: the pod's label (or legacy annotation) wins; otherwise the
/// namespace label `istio-injection=enabled`.
fn injection(
    ns: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    ns_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> bool {
    if let Some(v) = labels.get(INJECT).or_else(|| annotations.get(INJECT)) {
        return v == "true";
    }
    ns_labels
        .get(ns)
        .and_then(|l| l.get("istio-injection"))
        .is_some_and(|v| v == "enabled")
}

/// Kubernetes' pod-template-hash: short, stable for the template.
fn template_hash(text: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn suffix(seed: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    template_hash(&format!("{seed}{nanos}"))[..5].to_string()
}

/// The Pod object handed to discovery: the template's labels and spec, the sidecar's
/// injection marks, and the status a kubelet would report.
pub fn pod_object(p: &PodPlan, ip: &str, phase: &str, ready: bool) -> Value {
    let mut labels = p.labels.clone();
    let mut annotations = p.annotations.clone();
    if !p.owner.is_empty() {
        annotations.insert(OWNER_ANNOTATION.into(), p.owner.clone());
    }
    if p.injected {
        labels
            .entry("security.istio.io/tlsMode".into())
            .or_insert_with(|| "istio".into());
        let canonical = labels
            .get("app.kubernetes.io/name")
            .or(labels.get("app"))
            .cloned()
            .unwrap_or_else(|| p.workload_name());
        labels
            .entry("service.istio.io/canonical-name".into())
            .or_insert(canonical);
        let rev = labels
            .get("app.kubernetes.io/version")
            .or(labels.get("version"))
            .cloned()
            .unwrap_or_else(|| "latest".into());
        labels
            .entry("service.istio.io/canonical-revision".into())
            .or_insert(rev);
        annotations.insert(
            "sidecar.istio.io/status".into(),
            r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":[],"imagePullSecrets":null,"revision":"default"}"#.into(),
        );
    }
    let mut spec = serde_json::to_value(&p.spec).unwrap_or_else(|_| json!({}));
    spec["nodeName"] = json!("ironmesh-node");
    spec["serviceAccountName"] = json!(p.service_account());
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": p.name,
            "namespace": p.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
        "status": {
            "phase": phase,
            "hostIP": BRIDGE_IP,
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        }
    })
}

pub fn pod_file(namespace: &str, name: &str) -> std::path::PathBuf {
    config_dir().join(format!("pod.{namespace}.{name}.json"))
}

/// The container ports a pod's apps listen on.
pub fn container_ports(c: &Container) -> Vec<u16> {
    c.ports
        .iter()
        .flatten()
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect()
}
