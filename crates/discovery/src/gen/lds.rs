//! Sidecar LDS: `virtualOutbound` (15001, original destination), one outbound listener
//! per HTTP port (`0.0.0.0_<port>`), per sniffed or TCP service port (`<vip>_<port>`),
//! and `virtualInbound` (15006) for the proxy's own workload.

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};
use ironmesh_config::mesh::mesh_config::OutboundTrafficPolicyMode;
use std::collections::HashSet;

use ironmesh_registry::{Protocol, Service, ServicePort};

use super::cds::{outbound_name, BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER};
use super::filters::{self, hcm, hcm_filter, http_inspector, tcp_proxy, tls_inspector, Routes};
use super::inbound::virtual_inbound;
use super::l4_route::{self, L4Ctx};
use super::rds::OutboundPorts;
use super::util::{boolv, duration, socket_address, u32v};
use crate::proxy::Proxy;
use crate::push_context::{PushContext, SidecarScope, VsConfig, MESH_GATEWAY};

pub const VIRTUAL_OUTBOUND: &str = "virtualOutbound";
pub const PASSTHROUGH_CHAIN: &str = "PassthroughFilterChain";
/// Application protocols http_inspector reports for plaintext HTTP.
pub const HTTP_ALPN: [&str; 2] = ["http/1.1", "h2c"];

/// Where traffic to unknown destinations goes.
pub fn fallthrough_cluster(push: &PushContext, proxy: &Proxy) -> &'static str {
    if push.outbound_mode(proxy) == OutboundTrafficPolicyMode::RegistryOnly {
        BLACKHOLE_CLUSTER
    } else {
        PASSTHROUGH_CLUSTER
    }
}

pub fn chain(
    name: &str,
    m: Option<FilterChainMatch>,
    filters: Vec<envoy_types::pb::envoy::config::listener::v3::Filter>,
) -> FilterChain {
    FilterChain {
        name: name.to_string(),
        filter_chain_match: m,
        filters,
        ..Default::default()
    }
}

pub fn http_match(port: Option<u16>) -> FilterChainMatch {
    FilterChainMatch {
        destination_port: port.map(|p| u32v(u32::from(p))),
        transport_protocol: "raw_buffer".into(),
        application_protocols: HTTP_ALPN.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn port_match(port: u16) -> FilterChainMatch {
    FilterChainMatch {
        destination_port: Some(u32v(u32::from(port))),
        ..Default::default()
    }
}

/// Outbound listeners are reached through virtualOutbound's original-destination
/// hand-off, so they do not bind their own sockets.
fn outbound_listener(
    push: &PushContext,
    name: String,
    ip: &str,
    port: u16,
    sniff: bool,
    chains: Vec<FilterChain>,
) -> Listener {
    Listener {
        name,
        address: Some(socket_address(ip, u32::from(port))),
        filter_chains: chains,
        bind_to_port: Some(boolv(false)),
        traffic_direction: TrafficDirection::Outbound as i32,
        listener_filters: if sniff {
            vec![tls_inspector(), http_inspector()]
        } else {
            Vec::new()
        },
        listener_filters_timeout: sniff.then(|| duration(push.mesh().protocol_detection_timeout())),
        continue_on_listener_filters_timeout: sniff,
        ..Default::default()
    }
}

fn virtual_outbound(push: &PushContext, proxy: &Proxy) -> Listener {
    let mesh = push.mesh();
    let port = mesh.proxy_listen_port() as u16;
    let fall = fallthrough_cluster(push, proxy);
    Listener {
        name: VIRTUAL_OUTBOUND.into(),
        address: Some(socket_address("0.0.0.0", u32::from(port))),
        use_original_dst: Some(boolv(true)),
        traffic_direction: TrafficDirection::Outbound as i32,
        filter_chains: vec![
            // Traffic addressed to 15001 itself would loop forever.
            chain(
                "virtualOutbound-blackhole",
                Some(port_match(port)),
                vec![tcp_proxy(
                    BLACKHOLE_CLUSTER,
                    &[(BLACKHOLE_CLUSTER.into(), 1)],
                    mesh,
                )],
            ),
            chain(
                "virtualOutbound-catchall-tcp",
                None,
                vec![tcp_proxy(fall, &[(fall.into(), 1)], mesh)],
            ),
        ],
        ..Default::default()
    }
}

/// `0.0.0.0_<port>`: HTTP by RDS `"<port>"`, anything else to the fall-through cluster.
fn http_listener(push: &PushContext, proxy: &Proxy, port: u16) -> Listener {
    let mesh = push.mesh();
    let fall = fallthrough_cluster(push, proxy);
    let name = format!("0.0.0.0_{port}");
    let h = hcm(
        &format!("outbound_{name}"),
        Routes::Rds(port.to_string()),
        filters::sidecar_http_filters(),
        mesh,
    );
    let chains = vec![
        chain(&name, Some(http_match(None)), vec![hcm_filter(&h)]),
        chain(
            PASSTHROUGH_CHAIN,
            None,
            vec![tcp_proxy(fall, &[(fall.into(), 1)], mesh)],
        ),
    ];
    outbound_listener(push, name, "0.0.0.0", port, true, chains)
}

/// `<vip>_<port>` for a sniffed port: HTTP by RDS `<fqdn>:<port>`, else TCP to the
/// service's cluster.
fn sniffed_listener(push: &PushContext, svc: &Service, p: &ServicePort) -> Option<Listener> {
    let mesh = push.mesh();
    let vip = svc.vip?.to_string();
    let name = format!("{vip}_{}", p.port);
    let cluster = outbound_name(p.port, "", &svc.hostname);
    let h = hcm(
        &format!("outbound_{name}"),
        Routes::Rds(format!("{}:{}", svc.hostname, p.port)),
        filters::sidecar_http_filters(),
        mesh,
    );
    let chains = vec![
        chain(&name, Some(http_match(None)), vec![hcm_filter(&h)]),
        chain(
            &cluster,
            None,
            vec![tcp_proxy(&cluster, &[(cluster.clone(), 1)], mesh)],
        ),
    ];
    Some(outbound_listener(push, name, &vip, p.port, true, chains))
}

/// `<vip>_<port>` (or `0.0.0.0_<port>` without a VIP) to the service's cluster, or
/// where its VirtualService's `tls` (by SNI) or `tcp` routes send it.
fn tcp_listener(
    push: &PushContext,
    proxy: &Proxy,
    vss: &[&VsConfig],
    svc: &Service,
    p: &ServicePort,
) -> Listener {
    let mesh = push.mesh();
    let ip = svc
        .vip
        .map(|v| v.to_string())
        .unwrap_or_else(|| "0.0.0.0".into());
    let cluster = outbound_name(p.port, "", &svc.hostname);
    let ctx = L4Ctx {
        push,
        proxy,
        port: p.port,
        gateway: MESH_GATEWAY,
    };
    let vs = SidecarScope::virtual_service_for(vss, &svc.hostname);
    let mut chains = Vec::new();
    let tls = matches!(p.protocol, Protocol::Tls | Protocol::Https);
    if let Some(vs) = vs.filter(|_| tls) {
        chains = l4_route::tls_chains(&ctx, vs, &|_| true, &mut HashSet::new());
    }
    let default = vs
        .and_then(|vs| l4_route::tcp_route(&ctx, vs))
        .unwrap_or_else(|| tcp_proxy(&cluster, &[(cluster.clone(), 1)], mesh));
    chains.push(chain(&cluster, None, vec![default]));
    let sni = chains.len() > 1;
    let mut l = outbound_listener(push, format!("{ip}_{}", p.port), &ip, p.port, false, chains);
    if sni {
        l.listener_filters = vec![tls_inspector()];
    }
    l
}

/// All listeners of a sidecar, sorted by name. When two services want the same
/// listener name, the first (HTTP before sniffed before TCP, then by host) wins.
pub fn generate(push: &PushContext, proxy: &Proxy) -> Vec<Listener> {
    let scope = push.scope(proxy);
    let ports = OutboundPorts::new(&scope);
    let mut out = vec![virtual_outbound(push, proxy)];
    out.extend(ports.http.iter().map(|p| http_listener(push, proxy, *p)));
    out.extend(
        ports
            .sniffed
            .iter()
            .filter_map(|(s, p)| sniffed_listener(push, s, p)),
    );
    let vss = scope.mesh_virtual_services();
    out.extend(
        ports
            .tcp
            .iter()
            .map(|(s, p)| tcp_listener(push, proxy, &vss, s, p)),
    );
    out.push(virtual_inbound(push, proxy));
    let mut seen = std::collections::HashSet::new();
    out.retain(|l| seen.insert(l.name.clone()));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
