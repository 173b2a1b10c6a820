//! VirtualService `tcp` and `tls` routes → TCP proxy filters and SNI filter chains, for
//! gateways and sidecars alike.

use std::collections::{BTreeMap, HashSet};

use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, FilterChainMatch};
use ironmesh_config::networking::virtual_service::RouteDestination;

use super::cds::outbound_name;
use super::filters::tcp_proxy;
use crate::proxy::Proxy;
use crate::push_context::{labels_subset, qualify_gateway, PushContext, VsConfig};

/// Where L4 routes are being built: a proxy, the listener port, and the gateway it acts
/// as (`mesh` for sidecars, `namespace/name` for gateways).
pub struct L4Ctx<'a> {
    pub push: &'a PushContext,
    pub proxy: &'a Proxy,
    pub port: u16,
    pub gateway: &'a str,
}

impl L4Ctx<'_> {
    /// Whether a `tcp`/`tls` match applies here: its port, gateways, source labels and
    /// source namespace.
    fn applies(
        &self,
        vs: &VsConfig,
        port: Option<u32>,
        gateways: &[String],
        source_labels: &BTreeMap<String, String>,
        source_namespace: Option<&str>,
    ) -> bool {
        port.is_none_or(|p| p == u32::from(self.port))
            && (gateways.is_empty()
                || gateways
                    .iter()
                    .any(|g| qualify_gateway(g, &vs.namespace) == self.gateway))
            && labels_subset(source_labels, &self.proxy.labels)
            && source_namespace.is_none_or(|ns| ns == self.proxy.namespace)
    }
}

/// A TCP proxy to the (weighted) destinations of an L4 route.
pub fn tcp_destinations(
    push: &PushContext,
    vs: &VsConfig,
    route: &[RouteDestination],
    port: u16,
) -> Option<Filter> {
    let clusters: Vec<(String, u32)> = route
        .iter()
        .filter_map(|rd| {
            let d = rd.destination.as_ref()?;
            let host = push.qualify(d.host.as_deref()?, &vs.namespace);
            let svc_port = d
                .port
                .as_ref()
                .and_then(|p| p.number)
                .map(|n| n as u16)
                .or_else(|| {
                    push.service(&host)
                        .filter(|s| s.ports.len() == 1)
                        .map(|s| s.ports[0].port)
                })
                .unwrap_or(port);
            let weight = if route.len() == 1 {
                1
            } else {
                rd.weight.unwrap_or(0).max(0) as u32
            };
            (weight > 0).then(|| {
                (
                    outbound_name(svc_port, d.subset.as_deref().unwrap_or(""), &host),
                    weight,
                )
            })
        })
        .collect();
    let stat = clusters.first()?.0.clone();
    Some(tcp_proxy(&stat, &clusters, push.mesh()))
}

/// The first `tcp` route of a VirtualService that applies here.
pub fn tcp_route(ctx: &L4Ctx<'_>, vs: &VsConfig) -> Option<Filter> {
    vs.spec
        .tcp
        .iter()
        .filter(|r| {
            r.match_.is_empty()
                || r.match_.iter().any(|m| {
                    ctx.applies(
                        vs,
                        m.port,
                        &m.gateways,
                        &m.source_labels,
                        m.source_namespace.as_deref(),
                    )
                })
        })
        .find_map(|r| tcp_destinations(ctx.push, vs, &r.route, ctx.port))
}

/// One SNI filter chain per applicable `tls` match; `allowed` filters the SNI names
/// (a gateway server's hosts) and `used` keeps names unique across VirtualServices.
pub fn tls_chains(
    ctx: &L4Ctx<'_>,
    vs: &VsConfig,
    allowed: &dyn Fn(&str) -> bool,
    used: &mut HashSet<String>,
) -> Vec<FilterChain> {
    let mut out = Vec::new();
    for r in &vs.spec.tls {
        for m in &r.match_ {
            if !ctx.applies(
                vs,
                m.port,
                &m.gateways,
                &m.source_labels,
                m.source_namespace.as_deref(),
            ) {
                continue;
            }
            let snis: Vec<String> = m
                .sni_hosts
                .iter()
                .filter(|h| allowed(h))
                .filter(|h| used.insert((*h).clone()))
                .cloned()
                .collect();
            if snis.is_empty() {
                continue;
            }
            if let Some(f) = tcp_destinations(ctx.push, vs, &r.route, ctx.port) {
                out.push(FilterChain {
                    filter_chain_match: Some(FilterChainMatch {
                        server_names: snis,
                        ..Default::default()
                    }),
                    filters: vec![f],
                    ..Default::default()
                });
            }
        }
    }
    out
}
