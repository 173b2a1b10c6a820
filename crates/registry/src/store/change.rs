//! What changed between two snapshots: everything (a full push), only the endpoints of
//! some hosts (an EDS push), or nothing at all (no snapshot).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ironmesh_config::{Object, Resource};

use crate::model::ServiceRegistry;
use crate::snapshot::{Change, Snapshot};

/// Kinds that only feed endpoints and workloads; a change to them is judged by what it
/// does to the registry, not by the object itself.
fn is_endpoint_source(obj: &Object) -> bool {
    matches!(
        obj.resource,
        Resource::Pod(_)
            | Resource::Endpoints(_)
            | Resource::EndpointSlice(_)
            | Resource::WorkloadEntry(_)
    )
}

/// The change from `prev` to `next`, or `None` when nothing a reader could notice moved
/// (same objects at the same places, same MeshConfig, same rejected files).
///
/// `Change::Endpoints` with an empty set means "nothing proxies see changed": only
/// source positions, rejected files or unselected workloads did.
pub(crate) fn classify(prev: &Snapshot, next: &Snapshot) -> Option<Change> {
    if prev.version == 0 {
        return Some(Change::Full);
    }
    let configs_equal = same_config(&prev.objects, &next.objects);
    if prev.mesh != next.mesh
        || !configs_equal
        || prev.services.services != next.services.services
        || workload_identity_changed(&prev.services, &next.services)
    {
        return Some(Change::Full);
    }
    let hosts = changed_endpoint_hosts(&prev.services, &next.services);
    if hosts.is_empty()
        && same_objects_exactly(&prev.objects, &next.objects)
        && same_rejections(prev, next)
        && prev.services.workloads == next.services.workloads
    {
        return None;
    }
    Some(Change::Endpoints(hosts))
}

/// Non-endpoint objects are equal in content (where they are written does not matter).
fn same_config(a: &[Arc<Object>], b: &[Arc<Object>]) -> bool {
    let a: Vec<_> = a.iter().filter(|o| !is_endpoint_source(o)).collect();
    let b: Vec<_> = b.iter().filter(|o| !is_endpoint_source(o)).collect();
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| Arc::ptr_eq(x, y) || same_content(x, y))
}

fn same_objects_exactly(a: &[Arc<Object>], b: &[Arc<Object>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| Arc::ptr_eq(x, y) || (x.source == y.source && same_content(x, y)))
}

fn same_rejections(a: &Snapshot, b: &Snapshot) -> bool {
    a.rejected.len() == b.rejected.len()
        && a.rejected
            .iter()
            .zip(&b.rejected)
            .all(|(x, y)| x.file == y.file && x.diagnostics == y.diagnostics)
}

pub(crate) fn same_content(a: &Object, b: &Object) -> bool {
    a.api_version == b.api_version
        && a.metadata == b.metadata
        && same_resource(&a.resource, &b.resource)
}

fn same_resource(a: &Resource, b: &Resource) -> bool {
    macro_rules! same {
        ($($v:ident),+ $(,)?) => {
            match (a, b) {
                $((Resource::$v(x), Resource::$v(y)) => x == y,)+
                _ => false,
            }
        };
    }
    same!(
        VirtualService,
        DestinationRule,
        Gateway,
        ServiceEntry,
        Sidecar,
        WorkloadEntry,
        WorkloadGroup,
        EnvoyFilter,
        ProxyConfig,
        PeerAuthentication,
        AuthorizationPolicy,
        RequestAuthentication,
        Telemetry,
        WasmPlugin,
        Namespace,
        Service,
        Endpoints,
        EndpointSlice,
        Pod,
        Deployment,
        ReplicaSet,
        StatefulSet,
        DaemonSet,
        ServiceAccount,
        Secret,
        ConfigMap,
    )
}

/// A workload that exists in both registries but with other labels, identity, locality
/// or ports changes which policies and sidecar scopes apply to its proxy: that needs a
/// full push. Workloads coming, going, changing IP or readiness only move endpoints.
fn workload_identity_changed(a: &ServiceRegistry, b: &ServiceRegistry) -> bool {
    let before: BTreeMap<(&str, &str), _> = a
        .workloads
        .iter()
        .map(|w| ((w.namespace.as_str(), w.name.as_str()), w))
        .collect();
    b.workloads.iter().any(|w| {
        before
            .get(&(w.namespace.as_str(), w.name.as_str()))
            .is_some_and(|old| {
                old.labels != w.labels
                    || old.service_account != w.service_account
                    || old.locality != w.locality
                    || old.ports != w.ports
            })
    })
}

fn changed_endpoint_hosts(a: &ServiceRegistry, b: &ServiceRegistry) -> BTreeSet<String> {
    a.endpoints
        .keys()
        .chain(b.endpoints.keys())
        .filter(|h| a.endpoints.get(*h) != b.endpoints.get(*h))
        .cloned()
        .collect()
}
