//! `virtualInbound` (15006): captured inbound traffic, one filter chain per port the
//! workload serves (HTTP through an inline `inbound|<port>||` route, TCP straight to the
//! inbound cluster) and passthrough chains for ports no service declares.

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener};
use ironmesh_registry::Protocol;

use super::cds::{inbound_name, BLACKHOLE_CLUSTER, INBOUND_PASSTHROUGH_CLUSTER};
use super::filters::{
    self, hcm, hcm_filter, http_inspector, original_dst_filter, tcp_proxy, tls_inspector, Routes,
};
use super::lds::{chain, http_match, port_match, PASSTHROUGH_CHAIN};
use super::rds::inbound_route_config;
use super::util::{duration, socket_address};
use crate::proxy::Proxy;
use crate::push_context::PushContext;

pub const VIRTUAL_INBOUND: &str = "virtualInbound";

fn inbound_hcm(
    push: &PushContext,
    stat_prefix: &str,
    cluster: &str,
    vhost: &str,
    operation: &str,
) -> FilterChain {
    let h = hcm(
        stat_prefix,
        Routes::Inline(Box::new(inbound_route_config(cluster, vhost, operation))),
        filters::sidecar_http_filters(),
        push.mesh(),
    );
    FilterChain {
        filters: vec![hcm_filter(&h)],
        ..Default::default()
    }
}

/// The inbound capture listener of a sidecar.
pub fn virtual_inbound(push: &PushContext, proxy: &Proxy) -> Listener {
    let mesh = push.mesh();
    let port = mesh.proxy_inbound_listen_port() as u16;
    let mut chains = vec![chain(
        "virtualInbound-blackhole",
        Some(port_match(port)),
        vec![tcp_proxy(
            BLACKHOLE_CLUSTER,
            &[(BLACKHOLE_CLUSTER.into(), 1)],
            mesh,
        )],
    )];
    for t in push.service_targets(proxy) {
        let cluster = inbound_name(t.target_port);
        let name = format!("0.0.0.0_{}", t.target_port);
        let http = || {
            let mut c = inbound_hcm(
                push,
                &format!("inbound_{name}"),
                &cluster,
                &format!("inbound|http|{}", t.target_port),
                &format!("{}:{}/*", t.service.hostname, t.port.port),
            );
            c.name = name.clone();
            c
        };
        let tcp = || {
            chain(
                &cluster,
                Some(port_match(t.target_port)),
                vec![tcp_proxy(&cluster, &[(cluster.clone(), 1)], mesh)],
            )
        };
        match t.port.protocol {
            p if p.is_http() => {
                let mut c = http();
                c.filter_chain_match = Some(port_match(t.target_port));
                chains.push(c);
            }
            Protocol::Unsupported => {
                let mut c = http();
                c.filter_chain_match = Some(http_match(Some(t.target_port)));
                chains.push(c);
                chains.push(tcp());
            }
            _ => chains.push(tcp()),
        }
    }
    let mut catch_http = inbound_hcm(
        push,
        INBOUND_PASSTHROUGH_CLUSTER,
        INBOUND_PASSTHROUGH_CLUSTER,
        "inbound|http|0",
        &format!("{INBOUND_PASSTHROUGH_CLUSTER}/*"),
    );
    catch_http.name = "virtualInbound-catchall-http".into();
    catch_http.filter_chain_match = Some(http_match(None));
    chains.push(catch_http);
    chains.push(chain(
        PASSTHROUGH_CHAIN,
        None,
        vec![tcp_proxy(
            INBOUND_PASSTHROUGH_CLUSTER,
            &[(INBOUND_PASSTHROUGH_CLUSTER.into(), 1)],
            mesh,
        )],
    ));
    Listener {
        name: VIRTUAL_INBOUND.into(),
        address: Some(socket_address("0.0.0.0", u32::from(port))),
        filter_chains: chains,
        listener_filters: vec![original_dst_filter(), tls_inspector(), http_inspector()],
        listener_filters_timeout: Some(duration(mesh.protocol_detection_timeout())),
        continue_on_listener_filters_timeout: true,
        traffic_direction: TrafficDirection::Inbound as i32,
        ..Default::default()
    }
}
