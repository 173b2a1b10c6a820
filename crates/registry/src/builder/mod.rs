//! Turns config objects into the service registry, following Istio's rules for
//! Kubernetes Services (with Pods, WorkloadEntries, Endpoints and EndpointSlices) and
//! ServiceEntries. Everything comes out sorted, so generated config is stable.

mod kube;
mod service_entry;
pub mod vip;
mod workloads;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ironmesh_config::mesh::MeshConfig;
use ironmesh_config::{Object, Resource};
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::model::{Endpoint, Service, ServiceOrigin, ServiceRegistry};
use workloads::Instance;

pub use kube::EXPORT_TO_ANNOTATION;

/// Builds every service, its endpoints and the workloads from `objects`. `domain` is the
/// cluster domain (`cluster.local`) that qualifies Kubernetes Service names.
///
/// When two services claim the same host name in the same namespace, the Kubernetes
/// Service wins over ServiceEntries, and ServiceEntries are taken in name order; hosts
/// defined in several namespaces are all kept (visibility picks one per proxy), and
/// their endpoints are merged under the host name.
/// Kubernetes Services that name no clusterIP get one from 240.240.0.0/16.
fn allocate_missing_vips(built: &mut [(Service, Vec<Endpoint>)]) {
    let wants = |s: &Service| {
        s.vip.is_none()
            && s.origin == crate::model::ServiceOrigin::Kubernetes
            && s.resolution == crate::model::Resolution::ClientSideLb
    };
    let mut taken: std::collections::BTreeSet<std::net::IpAddr> =
        built.iter().filter_map(|(s, _)| s.vip).collect();
    let wanted = built
        .iter()
        .filter(|(s, _)| wants(s))
        .map(|(s, _)| s.hostname.clone())
        .collect();
    let allocated: BTreeMap<String, std::net::IpAddr> =
        vip::allocate(&wanted, &mut taken).into_iter().collect();
    for (svc, _) in built.iter_mut() {
        if wants(svc) {
            svc.vip = allocated.get(&svc.hostname).copied();
        }
    }
}

pub fn build_services(objects: &[Arc<Object>], mesh: &MeshConfig, domain: &str) -> ServiceRegistry {
    let index = Index::new(objects);
    let default_export_to = mesh.default_service_export_to();
    let mut built: Vec<(Service, Vec<Endpoint>)> = Vec::new();
    for obj in objects {
        match &obj.resource {
            Resource::Service(svc) => {
                built.push(kube::convert(obj, svc, &index, &default_export_to, domain))
            }
            Resource::ServiceEntry(se) => {
                built.extend(service_entry::convert(obj, se, &index, &default_export_to))
            }
            _ => {}
        }
    }

    built.sort_by(|(a, _), (b, _)| {
        (&a.hostname, &a.namespace, origin_rank(&a.origin), &a.name).cmp(&(
            &b.hostname,
            &b.namespace,
            origin_rank(&b.origin),
            &b.name,
        ))
    });
    built.dedup_by(|(b, _), (a, _)| a.hostname == b.hostname && a.namespace == b.namespace);

    allocate_missing_vips(&mut built);

    let mut endpoints: BTreeMap<String, BTreeMap<u16, Vec<Endpoint>>> = BTreeMap::new();
    let mut services = Vec::with_capacity(built.len());
    for (svc, eps) in built {
        for ep in eps {
            endpoints
                .entry(svc.hostname.clone())
                .or_default()
                .entry(ep.service_port)
                .or_default()
                .push(ep);
        }
        services.push(Arc::new(svc));
    }
    for ports in endpoints.values_mut() {
        for eps in ports.values_mut() {
            sort_endpoints(eps);
        }
    }

    let mut workloads: Vec<_> = index
        .instances
        .values()
        .flatten()
        .filter(|i| !i.name.is_empty())
        .map(|i| Arc::new(i.workload()))
        .collect();
    workloads.sort_by(|a, b| (&a.namespace, &a.name, a.ip).cmp(&(&b.namespace, &b.name, b.ip)));

    ServiceRegistry {
        services,
        endpoints,
        workloads,
    }
}

fn origin_rank(o: &ServiceOrigin) -> u8 {
    match o {
        ServiceOrigin::Kubernetes => 0,
        ServiceOrigin::ServiceEntry(_) => 1,
    }
}

/// Sorted by address (IPs in numeric order, then host names), then port; one endpoint
/// per address and port (a ready copy wins over a not-ready one).
fn sort_endpoints(eps: &mut Vec<Endpoint>) {
    let key = |e: &Endpoint| {
        (
            e.address.parse::<IpAddr>().ok(),
            e.address.clone(),
            e.port,
            !e.healthy,
            e.workload_name.clone(),
        )
    };
    eps.sort_by_key(key);
    eps.dedup_by(|b, a| a.address == b.address && a.port == b.port);
}

/// `exportTo` as namespaces: `.` is the object's own namespace, `~` hides it from all,
/// `*` shows it to all.
pub fn resolve_export_to(list: &[String], namespace: &str) -> Vec<String> {
    if list.iter().any(|e| e == "~") {
        return Vec::new();
    }
    if list.iter().any(|e| e == "*") {
        return vec!["*".to_string()];
    }
    let mut out: Vec<String> = list
        .iter()
        .map(|e| {
            if e == "." {
                namespace.to_string()
            } else {
                e.clone()
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The objects the builder looks up by namespace.
pub(crate) struct Index<'a> {
    /// Pods with an IP and WorkloadEntries, by namespace, in object order.
    instances: BTreeMap<String, Vec<Instance>>,
    /// Endpoints objects by (namespace, name).
    endpoints: BTreeMap<(String, String), Vec<&'a Endpoints>>,
    slices: BTreeMap<String, Vec<&'a EndpointSlice>>,
}

impl<'a> Index<'a> {
    fn new(objects: &'a [Arc<Object>]) -> Self {
        let mut index = Index {
            instances: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            slices: BTreeMap::new(),
        };
        for obj in objects {
            let ns = obj.namespace().to_string();
            match &obj.resource {
                Resource::Pod(pod) => {
                    if let Some(i) = Instance::from_pod(obj, pod) {
                        index.instances.entry(ns).or_default().push(i);
                    }
                }
                Resource::WorkloadEntry(we) => {
                    if let Some(i) = Instance::from_entry(obj.name(), &ns, we) {
                        index.instances.entry(ns).or_default().push(i);
                    }
                }
                Resource::Endpoints(eps) => index
                    .endpoints
                    .entry((ns, obj.name().to_string()))
                    .or_default()
                    .push(eps),
                Resource::EndpointSlice(slice) => index.slices.entry(ns).or_default().push(slice),
                _ => {}
            }
        }
        index
    }

    pub(crate) fn instances_in<'s>(
        &'s self,
        namespace: &str,
    ) -> impl Iterator<Item = &'s Instance> {
        self.instances.get(namespace).into_iter().flatten()
    }

    pub(crate) fn slices_in<'s>(
        &'s self,
        namespace: &str,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 's {
        self.slices.get(namespace).into_iter().flatten().copied()
    }
}
