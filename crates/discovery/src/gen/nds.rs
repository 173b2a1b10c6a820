//! NDS: the name table a sidecar's DNS proxy answers from.
//!
//! One `NameTable` per proxy (resource name `""`, as Istio sends it) with every host the
//! proxy can see: Kubernetes services by fqdn with their ClusterIP (headless: the pod
//! IPs) plus `shortname`/`namespace` so the agent can answer `name`, `name.ns`,
//! `name.ns.svc`; ServiceEntry hosts with their address, or — when the entry has none —
//! a VIP auto-allocated from 240.240.0.0/16, as Istio's DNS auto-allocation does, so an
//! application can connect to an external host by name and be captured.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ironmesh_registry::builder::vip;
use ironmesh_registry::model::ServiceOrigin;
use ironmesh_registry::{Resolution, Service, ServiceRegistry};
use ironmesh_xds::nds::{NameInfo, NameTable, REGISTRY_EXTERNAL, REGISTRY_KUBERNETES};

use crate::proxy::Proxy;
use crate::push_context::PushContext;

/// A single IP written as an address (`10.0.0.1`, `10.0.0.1/32`); CIDR ranges are not.
fn single_ip(address: &str) -> Option<IpAddr> {
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Some(ip);
    }
    let (ip, bits) = address.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let full = if ip.is_ipv4() { "32" } else { "128" };
    (bits == full).then_some(ip)
}

fn wants_auto_vip(s: &Service) -> bool {
    matches!(s.origin, ServiceOrigin::ServiceEntry(_))
        && s.vip.is_none()
        && !s.addresses.iter().any(|a| single_ip(a).is_some())
        && !s.hostname.starts_with('*')
        && s.resolution != Resolution::Passthrough
}

/// VIPs for ServiceEntry hosts that have no address. Computed over the whole registry
/// (not one proxy's view) so every proxy gets the same address for a host, avoiding
/// every VIP already in use.
pub fn auto_allocated(registry: &ServiceRegistry) -> BTreeMap<String, IpAddr> {
    let mut taken: BTreeSet<IpAddr> = registry.services.iter().filter_map(|s| s.vip).collect();
    let wanted: BTreeSet<String> = registry
        .services
        .iter()
        .filter(|s| wants_auto_vip(s))
        .map(|s| s.hostname.clone())
        .collect();
    vip::allocate(&wanted, &mut taken).into_iter().collect()
}

fn ips_of(s: &Service, registry: &ServiceRegistry, auto: &BTreeMap<String, IpAddr>) -> Vec<String> {
    if let Some(vip) = s.vip {
        let mut ips = vec![vip.to_string()];
        // Further single-IP addresses of a ServiceEntry answer too.
        for a in &s.addresses {
            if let Some(ip) = single_ip(a).filter(|ip| *ip != vip) {
                ips.push(ip.to_string());
            }
        }
        return ips;
    }
    let listed: Vec<String> = s
        .addresses
        .iter()
        .filter_map(|a| single_ip(a))
        .map(|ip| ip.to_string())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    if let Some(ip) = auto.get(&s.hostname) {
        return vec![ip.to_string()];
    }
    if s.origin == ServiceOrigin::Kubernetes {
        // Headless: the ready pods' own addresses.
        let ips: BTreeSet<IpAddr> = registry
            .all_endpoints(&s.hostname)
            .filter_map(|e| e.address.parse().ok())
            .collect();
        return ips.into_iter().map(|ip| ip.to_string()).collect();
    }
    Vec::new()
}

/// The name table for `proxy`.
pub fn generate(push: &PushContext, proxy: &Proxy) -> NameTable {
    let registry = push.registry();
    let auto = auto_allocated(registry);
    let scope = push.scope(proxy);
    let mut table = NameTable::default();
    for s in scope.services() {
        if s.hostname.starts_with('*') {
            continue;
        }
        let ips = ips_of(s, registry, &auto);
        if ips.is_empty() {
            continue;
        }
        let info = if s.origin == ServiceOrigin::Kubernetes {
            NameInfo {
                ips,
                registry: REGISTRY_KUBERNETES.into(),
                shortname: s.name.clone(),
                namespace: s.namespace.clone(),
                alt_hosts: Vec::new(),
            }
        } else {
            NameInfo {
                ips,
                registry: REGISTRY_EXTERNAL.into(),
                ..Default::default()
            }
        };
        table.table.insert(s.hostname.clone(), info);
    }
    table
}
