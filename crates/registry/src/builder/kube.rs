//! Kubernetes Services: host names, VIPs, ports, and endpoints from selected Pods and
//! WorkloadEntries, or from Endpoints/EndpointSlices for services without a selector.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ironmesh_config::Object;
use k8s_openapi::api::core::v1::{EndpointAddress, Service as KubeService};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::workloads::{Instance, InstanceKind};
use super::{resolve_export_to, Index};
use crate::model::{Endpoint, Protocol, Resolution, Service, ServiceOrigin, ServicePort, TlsMode};

/// Annotation that limits which namespaces see a Service, as Istio reads it.
pub const EXPORT_TO_ANNOTATION: &str = "networking.istio.io/exportTo";
/// Label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A port as written, with the target port kept by name when it is one.
struct KubePort {
    port: ServicePort,
    named_target: Option<String>,
}

/// The Service and its endpoints.
pub(crate) fn convert(
    obj: &Object,
    svc: &KubeService,
    index: &Index<'_>,
    default_export_to: &[String],
    domain: &str,
) -> (Service, Vec<Endpoint>) {
    let name = obj.name();
    let namespace = obj.namespace();
    let spec = svc.spec.clone().unwrap_or_default();
    let external_name = spec
        .external_name
        .as_deref()
        .filter(|n| !n.is_empty() && spec.type_.as_deref() == Some("ExternalName"));
    let vip = spec
        .cluster_ip
        .as_deref()
        .filter(|ip| !ip.is_empty() && *ip != "None")
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    // No clusterIP at all (not headless "None"): the API server would allocate one;
    // `build_services` does (see vip.rs), so resolve as a VIP service.
    let needs_vip = external_name.is_none()
        && spec.cluster_ip.as_deref().is_none_or(str::is_empty)
        && spec
            .cluster_ips
            .as_ref()
            .is_none_or(|ips| ips.iter().all(|ip| ip.is_empty()));
    let resolution = match (external_name, vip) {
        (Some(_), _) => Resolution::Dns,
        (None, Some(_)) => Resolution::ClientSideLb,
        (None, None) if needs_vip => Resolution::ClientSideLb,
        (None, None) => Resolution::Passthrough,
    };
    let ports: Vec<KubePort> = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let number = u16::try_from(p.port).ok()?;
            let name = p.name.clone().unwrap_or_default();
            // The API server defaults an absent targetPort to the port itself.
            let (target_port, named_target) = match &p.target_port {
                None => (Some(number), None),
                Some(IntOrString::Int(n)) => (u16::try_from(*n).ok(), None),
                Some(IntOrString::String(s)) => match s.parse::<u16>() {
                    Ok(n) => (Some(n), None),
                    Err(_) => (None, Some(s.clone())),
                },
            };
            Some(KubePort {
                port: ServicePort {
                    protocol: Protocol::from_port(
                        Some(&name),
                        p.app_protocol.as_deref(),
                        p.protocol.as_deref(),
                    ),
                    name,
                    port: number,
                    target_port,
                },
                named_target,
            })
        })
        .collect();
    let annotated: Vec<String> = obj
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(EXPORT_TO_ANNOTATION))
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let export_to = if annotated.is_empty() {
        resolve_export_to(default_export_to, namespace)
    } else {
        resolve_export_to(&annotated, namespace)
    };
    // Kubernetes treats `selector: {}` like no selector: nothing is selected and the
    // endpoints are managed by hand.
    let selector = spec.selector.clone().filter(|s| !s.is_empty());
    let labels = obj.metadata.labels.clone().unwrap_or_default();

    let endpoints = if let Some(external) = external_name {
        ports
            .iter()
            .map(|p| Endpoint {
                address: external.to_string(),
                port: p.port.port,
                service_port: p.port.port,
                labels: labels.clone(),
                service_account: String::new(),
                locality: Default::default(),
                weight: 1,
                healthy: true,
                workload_name: String::new(),
                namespace: namespace.to_string(),
                tls_mode: TlsMode::Disabled,
            })
            .collect()
    } else if let Some(sel) = &selector {
        selected_endpoints(index, namespace, sel, &ports)
    } else {
        manual_endpoints(index, namespace, name, &ports)
    };

    let service = Service {
        hostname: format!("{name}.{namespace}.svc.{domain}"),
        name: name.to_string(),
        namespace: namespace.to_string(),
        vip,
        addresses: Vec::new(),
        ports: ports.into_iter().map(|p| p.port).collect(),
        resolution,
        mesh_external: external_name.is_some(),
        labels,
        export_to,
        origin: ServiceOrigin::Kubernetes,
        selector,
    };
    (service, endpoints)
}

/// Pods and WorkloadEntries of the namespace whose labels match the selector.
fn selected_endpoints(
    index: &Index<'_>,
    namespace: &str,
    selector: &BTreeMap<String, String>,
    ports: &[KubePort],
) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for inst in index
        .instances_in(namespace)
        .filter(|i| i.matches(selector))
    {
        for p in ports {
            if let Some(port) = instance_port(inst, p) {
                out.push(inst.endpoint(port, p.port.port));
            }
        }
    }
    out
}

/// Where `inst` serves service port `p`. A pod's named target port is looked up in its
/// container ports (a pod without that port is not an endpoint of it, as in
/// Kubernetes); a WorkloadEntry maps the service port's name first, as Istio does.
fn instance_port(inst: &Instance, p: &KubePort) -> Option<u16> {
    match inst.kind {
        InstanceKind::Pod => match &p.named_target {
            Some(name) => inst.ports.get(name).copied(),
            None => p.port.target_port,
        },
        InstanceKind::WorkloadEntry => inst
            .ports
            .get(&p.port.name)
            .copied()
            .filter(|n| *n > 0)
            .or(p.port.target_port)
            .or_else(|| {
                p.named_target
                    .as_ref()
                    .and_then(|n| inst.ports.get(n).copied())
            })
            .or(Some(p.port.port)),
    }
}

/// Endpoints written by hand (or by a controller) for a Service without a selector:
/// the Endpoints object of the same name and the EndpointSlices labelled with it.
fn manual_endpoints(
    index: &Index<'_>,
    namespace: &str,
    service: &str,
    ports: &[KubePort],
) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let key = (namespace.to_string(), service.to_string());
    for eps in index.endpoints.get(&key).into_iter().flatten() {
        for subset in eps.subsets.iter().flatten() {
            let subset_ports = subset.ports.iter().flatten();
            for sp in subset_ports {
                let Some(p) = matching_port(ports, sp.name.as_deref()) else {
                    continue;
                };
                let Ok(port) = u16::try_from(sp.port) else {
                    continue;
                };
                let ready = subset.addresses.iter().flatten().map(|a| (a, true));
                let not_ready = subset
                    .not_ready_addresses
                    .iter()
                    .flatten()
                    .map(|a| (a, false));
                for (addr, healthy) in ready.chain(not_ready) {
                    out.push(address_endpoint(
                        index,
                        namespace,
                        addr,
                        port,
                        p.port.port,
                        healthy,
                    ));
                }
            }
        }
    }
    for slice in index.slices_in(namespace) {
        let owner = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL));
        if owner.map(String::as_str) != Some(service) {
            continue;
        }
        for sp in slice.ports.iter().flatten() {
            let Some(p) = matching_port(ports, sp.name.as_deref()) else {
                continue;
            };
            let Some(port) = sp.port.and_then(|n| u16::try_from(n).ok()) else {
                continue;
            };
            for ep in &slice.endpoints {
                // EndpointSlice: an unset `ready` means ready.
                let healthy = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                for a in &ep.addresses {
                    let addr = EndpointAddress {
                        ip: a.clone(),
                        target_ref: ep.target_ref.clone(),
                        ..Default::default()
                    };
                    out.push(address_endpoint(
                        index,
                        namespace,
                        &addr,
                        port,
                        p.port.port,
                        healthy,
                    ));
                }
            }
        }
    }
    out
}

/// Endpoint ports are matched to service ports by name; an unnamed one matches the
/// Service's unnamed (single) port.
fn matching_port<'a>(ports: &'a [KubePort], name: Option<&str>) -> Option<&'a KubePort> {
    let name = name.unwrap_or("");
    ports.iter().find(|p| p.port.name == name)
}

/// An address from Endpoints/EndpointSlices, with the pod's metadata when it points at
/// a known pod (by target reference, else by IP).
fn address_endpoint(
    index: &Index<'_>,
    namespace: &str,
    addr: &EndpointAddress,
    port: u16,
    service_port: u16,
    healthy: bool,
) -> Endpoint {
    let by_ref = addr
        .target_ref
        .as_ref()
        .filter(|r| r.kind.as_deref() == Some("Pod"))
        .and_then(|r| {
            let ns = r.namespace.as_deref().unwrap_or(namespace);
            let name = r.name.as_deref()?;
            index
                .instances_in(ns)
                .find(|i| i.kind == InstanceKind::Pod && i.name == name)
        });
    let pod = by_ref.or_else(|| {
        index
            .instances_in(namespace)
            .find(|i| i.kind == InstanceKind::Pod && i.address == addr.ip)
    });
    match pod {
        Some(pod) => Endpoint {
            address: addr.ip.clone(),
            healthy,
            ..pod.endpoint(port, service_port)
        },
        None => Endpoint {
            address: addr.ip.clone(),
            port,
            service_port,
            labels: BTreeMap::new(),
            service_account: String::new(),
            locality: Default::default(),
            weight: 1,
            healthy,
            workload_name: addr
                .target_ref
                .as_ref()
                .and_then(|r| r.name.clone())
                .unwrap_or_default(),
            namespace: namespace.to_string(),
            tls_mode: TlsMode::Disabled,
        },
    }
}
