//! ServiceEntry: one service per host, with endpoints from the inline list, from the
//! Pods and WorkloadEntries its `workloadSelector` picks, or (DNS resolution without
//! endpoints) the host itself.

use std::net::IpAddr;

use ironmesh_config::networking::service_entry::{
    Location, Resolution as SeResolution, ServiceEntry, ServicePort as SePort,
};
use ironmesh_config::Object;

use super::workloads::Instance;
use super::{resolve_export_to, Index};
use crate::model::{Endpoint, Protocol, Resolution, Service, ServiceOrigin, ServicePort, TlsMode};

/// One service per host, each with its endpoints.
pub(crate) fn convert(
    obj: &Object,
    se: &ServiceEntry,
    index: &Index<'_>,
    default_export_to: &[String],
) -> Vec<(Service, Vec<Endpoint>)> {
    let namespace = obj.namespace();
    let resolution = match se.resolution.unwrap_or(SeResolution::None) {
        SeResolution::None => Resolution::Passthrough,
        SeResolution::Static => Resolution::ClientSideLb,
        SeResolution::Dns | SeResolution::DynamicDns => Resolution::Dns,
        SeResolution::DnsRoundRobin => Resolution::DnsRoundRobin,
    };
    let se_ports: Vec<(&SePort, ServicePort)> = se
        .ports
        .iter()
        .filter_map(|p| {
            let number = p.number.and_then(|n| u16::try_from(n).ok())?;
            Some((
                p,
                ServicePort {
                    name: p.name.clone().unwrap_or_default(),
                    port: number,
                    protocol: Protocol::parse(p.protocol.as_deref().unwrap_or("")),
                    target_port: p
                        .target_port
                        .and_then(|n| u16::try_from(n).ok())
                        .filter(|n| *n > 0),
                },
            ))
        })
        .collect();
    let vip = se.addresses.iter().find_map(|a| vip_of(a));
    let export_to = if se.export_to.is_empty() {
        resolve_export_to(default_export_to, namespace)
    } else {
        resolve_export_to(&se.export_to, namespace)
    };
    let selector = se.workload_selector.as_ref().map(|s| s.labels.clone());

    // Instances shared by every host of the entry.
    let instances: Vec<Instance> = match &selector {
        Some(sel) => index
            .instances_in(namespace)
            .filter(|i| i.matches(sel))
            .cloned()
            .collect(),
        None => se
            .endpoint_list()
            .iter()
            .filter_map(|we| Instance::from_entry("", namespace, we))
            .collect(),
    };
    let dns_self = selector.is_none()
        && se.endpoint_list().is_empty()
        && matches!(resolution, Resolution::Dns | Resolution::DnsRoundRobin);

    se.hosts
        .iter()
        .map(|host| {
            let mut endpoints = Vec::new();
            for (_, sp) in &se_ports {
                if dns_self {
                    if !host.starts_with('*') {
                        endpoints.push(host_endpoint(host, namespace, sp));
                    }
                    continue;
                }
                for inst in &instances {
                    // Istio's order: the instance's port of the same name, then
                    // targetPort, then the service port.
                    let port = inst
                        .ports
                        .get(&sp.name)
                        .copied()
                        .filter(|n| *n > 0)
                        .or(sp.target_port)
                        .unwrap_or(sp.port);
                    endpoints.push(inst.endpoint(port, sp.port));
                }
            }
            let service = Service {
                hostname: host.clone(),
                name: obj.name().to_string(),
                namespace: namespace.to_string(),
                vip,
                addresses: se.addresses.clone(),
                ports: se_ports.iter().map(|(_, p)| p.clone()).collect(),
                resolution,
                mesh_external: se.location != Some(Location::MeshInternal),
                labels: obj.metadata.labels.clone().unwrap_or_default(),
                export_to: export_to.clone(),
                origin: ServiceOrigin::ServiceEntry(format!("{namespace}/{}", obj.name())),
                selector: selector.clone(),
            };
            (service, endpoints)
        })
        .collect()
}

/// An address that is one IP (`10.0.0.1` or `10.0.0.1/32`); CIDR ranges are no VIP.
fn vip_of(address: &str) -> Option<IpAddr> {
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Some(ip);
    }
    let (ip, bits) = address.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let full = if ip.is_ipv4() { "32" } else { "128" };
    (bits == full).then_some(ip)
}

/// DNS resolution without endpoints: the proxy resolves the host itself.
fn host_endpoint(host: &str, namespace: &str, sp: &ServicePort) -> Endpoint {
    Endpoint {
        address: host.to_string(),
        port: sp.target_port.unwrap_or(sp.port),
        service_port: sp.port,
        labels: Default::default(),
        service_account: String::new(),
        locality: Default::default(),
        weight: 1,
        healthy: true,
        workload_name: String::new(),
        namespace: namespace.to_string(),
        tls_mode: TlsMode::Disabled,
    }
}
