//! Pods and WorkloadEntries as the builder sees them: an address, ports by name, labels
//! and identity, ready to become endpoints of whatever service selects them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ironmesh_config::networking::WorkloadEntry;
use ironmesh_config::Object;
use k8s_openapi::api::core::v1::Pod;

use crate::model::{Endpoint, Locality, TlsMode, Workload};

/// Pod label that says whether the workload's proxy speaks Istio mTLS.
pub(crate) const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";
/// Annotation the injector writes on every pod it gives a sidecar.
const SIDECAR_STATUS_ANNOTATION: &str = "sidecar.istio.io/status";
const REGION_LABEL: &str = "topology.kubernetes.io/region";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
const SUBZONE_LABEL: &str = "topology.istio.io/subzone";

/// A Pod with an IP, or a WorkloadEntry: something a selector can pick.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub name: String,
    /// The workload the instance belongs to, as Istio names it in telemetry: a pod's
    /// Deployment (or other controller), a WorkloadEntry's own name.
    pub workload_name: String,
    pub namespace: String,
    /// An IP for pods; an IP, host name or `unix://` path for WorkloadEntries.
    pub address: String,
    pub ip: Option<IpAddr>,
    /// Container ports (pods) or `ports` (WorkloadEntry), by name.
    pub ports: BTreeMap<String, u16>,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    pub locality: Locality,
    pub weight: u32,
    pub ready: bool,
    pub tls_mode: TlsMode,
    pub kind: InstanceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InstanceKind {
    Pod,
    WorkloadEntry,
}

impl Instance {
    /// A pod that has been given an IP and has not finished; `None` otherwise (it cannot
    /// take traffic and its IP may already belong to another pod).
    pub fn from_pod(obj: &Object, pod: &Pod) -> Option<Instance> {
        let status = pod.status.as_ref()?;
        let phase = status.phase.as_deref().unwrap_or("");
        if matches!(phase, "Succeeded" | "Failed") {
            return None;
        }
        let address = status
            .pod_ip
            .as_deref()
            .or_else(|| status.pod_ips.as_ref()?.first().map(|p| p.ip.as_str()))
            .filter(|ip| !ip.is_empty())?;
        let ip: IpAddr = address.parse().ok()?;
        let labels = obj.metadata.labels.clone().unwrap_or_default();
        let annotations = obj.metadata.annotations.as_ref();
        let spec = pod.spec.as_ref();
        let ports = spec
            .map(|s| {
                s.containers
                    .iter()
                    .flat_map(|c| c.ports.iter().flatten())
                    .filter_map(|p| {
                        let name = p.name.clone().filter(|n| !n.is_empty())?;
                        Some((name, u16::try_from(p.container_port).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let service_account = spec
            .and_then(|s| s.service_account_name.clone().or(s.service_account.clone()))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_string());
        let has_sidecar = annotations.is_some_and(|a| a.contains_key(SIDECAR_STATUS_ANNOTATION));
        let tls_mode = match labels.get(TLS_MODE_LABEL) {
            Some(mode) => tls_mode_of(mode),
            None if has_sidecar => TlsMode::Istio,
            None => TlsMode::Disabled,
        };
        let locality = Locality {
            region: labels.get(REGION_LABEL).cloned().unwrap_or_default(),
            zone: labels.get(ZONE_LABEL).cloned().unwrap_or_default(),
            subzone: labels.get(SUBZONE_LABEL).cloned().unwrap_or_default(),
        };
        Some(Instance {
            name: obj.name().to_string(),
            workload_name: workload_of_pod(obj, &labels),
            namespace: obj.namespace().to_string(),
            address: address.to_string(),
            ip: Some(ip),
            ports,
            labels,
            service_account,
            locality,
            weight: 1,
            ready: pod_ready(obj, pod),
            tls_mode,
            kind: InstanceKind::Pod,
        })
    }

    /// A WorkloadEntry object (`name`/`namespace` given) or a ServiceEntry's inline
    /// endpoint (no name). `None` when it has no address (a network-only entry, which
    /// needs a gateway ironmesh does not model).
    pub fn from_entry(name: &str, namespace: &str, we: &WorkloadEntry) -> Option<Instance> {
        let address = we.address.clone().filter(|a| !a.is_empty())?;
        let ports = we
            .ports
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), u16::try_from(*v).ok()?)))
            .collect();
        // Istio's rule: the label decides; otherwise an entry that names a service
        // account is expected to run a proxy with that identity.
        let tls_mode = match we.labels.get(TLS_MODE_LABEL) {
            Some(mode) => tls_mode_of(mode),
            None if we.service_account.as_deref().is_some_and(|s| !s.is_empty()) => TlsMode::Istio,
            None => TlsMode::Disabled,
        };
        Some(Instance {
            name: name.to_string(),
            workload_name: name.to_string(),
            namespace: namespace.to_string(),
            ip: address.parse().ok(),
            address,
            ports,
            labels: we.labels.clone(),
            service_account: we.service_account.clone().unwrap_or_default(),
            locality: we
                .locality
                .as_deref()
                .map(Locality::parse)
                .unwrap_or_default(),
            weight: we.weight.filter(|w| *w > 0).unwrap_or(1),
            ready: true,
            tls_mode,
            kind: InstanceKind::WorkloadEntry,
        })
    }

    /// Every `selector` label is on this instance. An empty selector matches all.
    pub fn matches(&self, selector: &BTreeMap<String, String>) -> bool {
        selector.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }

    pub fn is_unix(&self) -> bool {
        self.address.starts_with("unix://")
    }

    /// This instance as an endpoint of `service_port`, dialled on `port`.
    pub fn endpoint(&self, port: u16, service_port: u16) -> Endpoint {
        Endpoint {
            address: self.address.clone(),
            // A Unix socket has no port.
            port: if self.is_unix() { 0 } else { port },
            service_port,
            labels: self.labels.clone(),
            service_account: self.service_account.clone(),
            locality: self.locality.clone(),
            weight: self.weight,
            healthy: self.ready,
            workload_name: self.workload_name.clone(),
            namespace: self.namespace.clone(),
            tls_mode: self.tls_mode,
        }
    }

    pub fn workload(&self) -> Workload {
        Workload {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            ip: self.ip,
            labels: self.labels.clone(),
            service_account: self.service_account.clone(),
            locality: self.locality.clone(),
            ready: self.ready,
            ports: self.ports.clone(),
        }
    }
}

fn tls_mode_of(label: &str) -> TlsMode {
    if label == "istio" {
        TlsMode::Istio
    } else {
        TlsMode::Disabled
    }
}

/// The name Istio gives a pod's workload (its `istio.workload` endpoint metadata and so
/// `destination_workload`): the controlling owner's name, with a Deployment's
/// ReplicaSet traced back to the Deployment (its name less `-<pod-template-hash>`) and
/// a CronJob's Job to the CronJob (less `-<schedule time>`); the pod's own name when no
/// controller owns it.
fn workload_of_pod(obj: &Object, labels: &BTreeMap<String, String>) -> String {
    let owners = obj.metadata.owner_references.as_deref().unwrap_or_default();
    let Some(owner) = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or(owners.first())
    else {
        return obj.name().to_string();
    };
    let name = owner.name.as_str();
    let trimmed = match owner.kind.as_str() {
        "ReplicaSet" => labels
            .get("pod-template-hash")
            .filter(|h| !h.is_empty())
            .and_then(|h| name.strip_suffix(h.as_str())?.strip_suffix('-')),
        "Job" => name
            .rsplit_once('-')
            .filter(|(job, time)| {
                !job.is_empty() && !time.is_empty() && time.bytes().all(|b| b.is_ascii_digit())
            })
            .map(|(job, _)| job),
        _ => None,
    };
    trimmed.unwrap_or(name).to_string()
}

/// Kubernetes readiness: the `Ready` condition, when the kubelet (or the local runtime)
/// wrote one; a running pod without conditions counts as ready. A pod being deleted is
/// draining and takes no new traffic.
fn pod_ready(obj: &Object, pod: &Pod) -> bool {
    if obj.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    match status.conditions.as_deref() {
        Some(conds) if !conds.is_empty() => conds
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        _ => status.phase.as_deref() == Some("Running"),
    }
}
