//! Sidecar RDS: a route configuration `"<port>"` per outbound HTTP port, with one virtual
//! host per service on that port (`<fqdn>:<port>`, domains as Istio lists them) plus
//! `allow_any` or `block_all`, and `"<fqdn>:<port>"` for sniffed ports with a VIP.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::route::v3::route_action;
use envoy_types::pb::envoy::config::route::v3::Decorator;
use envoy_types::pb::envoy::config::route::v3::{
    route, DirectResponseAction, Route, RouteAction, RouteConfiguration, VirtualHost,
};
use ironmesh_config::mesh::mesh_config::OutboundTrafficPolicyMode;
use ironmesh_registry::{Protocol, Service, ServicePort};

use super::cds::{outbound_name, PASSTHROUGH_CLUSTER};
use super::route::{default_route, vs_routes, RouteCtx};
use super::route_match::route_match;
use super::util::{boolv, u32v, zero_duration};
use crate::proxy::Proxy;
use crate::push_context::{PushContext, SidecarScope, VsConfig, MESH_GATEWAY};

/// Istio raises Envoy's 4 KiB direct-response limit to what validation allows.
pub const MAX_DIRECT_RESPONSE_BYTES: u32 = 1024 * 1024;

/// How each visible service port is reached from a sidecar.
#[derive(Debug, Default)]
pub struct OutboundPorts {
    /// Ports with a shared `0.0.0.0_<port>` HTTP listener and route `"<port>"`.
    pub http: BTreeSet<u16>,
    /// Sniffed ports of services with a VIP: `<vip>_<port>` listener, route
    /// `<fqdn>:<port>`, TCP fallback.
    pub sniffed: Vec<(Arc<Service>, ServicePort)>,
    /// Opaque TCP ports.
    pub tcp: Vec<(Arc<Service>, ServicePort)>,
}

impl OutboundPorts {
    pub fn new(scope: &SidecarScope<'_>) -> OutboundPorts {
        let mut out = OutboundPorts::default();
        for svc in scope.services() {
            for p in &svc.ports {
                match p.protocol {
                    Protocol::Udp => {}
                    pr if pr.is_http() => {
                        out.http.insert(p.port);
                    }
                    Protocol::Unsupported if svc.vip.is_some() => {
                        out.sniffed.push((svc.clone(), p.clone()))
                    }
                    Protocol::Unsupported => {
                        out.http.insert(p.port);
                    }
                    _ => out.tcp.push((svc.clone(), p.clone())),
                }
            }
        }
        out
    }

    /// Whether a service port is served by the shared `"<port>"` route.
    fn on_shared_route(svc: &Service, p: &ServicePort) -> bool {
        p.protocol.is_http() || (p.protocol == Protocol::Unsupported && svc.vip.is_none())
    }
}

/// The names clients use for a service on a sidecar: the FQDN, the short name (same
/// namespace only), `name.ns.svc`, `name.ns` and the VIP.
pub fn domains(svc: &Service, proxy: &Proxy, domain: &str) -> Vec<String> {
    let mut out = vec![svc.hostname.clone()];
    if let Some(rest) = svc.hostname.strip_suffix(&format!(".svc.{domain}")) {
        if let Some((name, ns)) = rest.split_once('.') {
            if ns == proxy.namespace {
                out.push(name.to_string());
            }
            out.push(format!("{rest}.svc"));
            out.push(rest.to_string());
        }
    }
    if let Some(vip) = svc.vip {
        out.push(if vip.is_ipv6() {
            format!("[{vip}]")
        } else {
            vip.to_string()
        });
    }
    out
}

/// Routes for one service port: its VirtualService's, else the default route.
fn service_routes(ctx: &RouteCtx<'_>, vss: &[&VsConfig], svc: &Service, port: u16) -> Vec<Route> {
    if let Some(vs) = SidecarScope::virtual_service_for(vss, &svc.hostname) {
        let routes = vs_routes(ctx, vs);
        if !routes.is_empty() {
            return routes;
        }
    }
    let hash = ctx.hash(&svc.hostname, None, port);
    vec![default_route(
        ctx,
        &outbound_name(port, "", &svc.hostname),
        &format!("{}:{port}/*", svc.hostname),
        hash.as_ref(),
    )]
}

pub fn route_configuration(
    name: String,
    virtual_hosts: Vec<VirtualHost>,
    ignore_port: bool,
) -> RouteConfiguration {
    RouteConfiguration {
        name,
        virtual_hosts,
        validate_clusters: Some(boolv(false)),
        max_direct_response_body_size_bytes: Some(u32v(MAX_DIRECT_RESPONSE_BYTES)),
        ignore_port_in_host_matching: ignore_port,
        ..Default::default()
    }
}

pub fn vhost(name: String, domains: Vec<String>, routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name,
        domains,
        routes,
        include_request_attempt_count: true,
        ..Default::default()
    }
}

/// `allow_any` (to PassthroughCluster) or `block_all` (502), for hosts not in the mesh.
fn catch_all_vhost(mode: OutboundTrafficPolicyMode) -> VirtualHost {
    let (name, action) = if mode == OutboundTrafficPolicyMode::RegistryOnly {
        (
            "block_all",
            route::Action::DirectResponse(DirectResponseAction {
                status: 502,
                ..Default::default()
            }),
        )
    } else {
        (
            "allow_any",
            route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                    PASSTHROUGH_CLUSTER.into(),
                )),
                timeout: Some(zero_duration()),
                ..Default::default()
            }),
        )
    };
    vhost(
        name.into(),
        vec!["*".into()],
        vec![Route {
            name: name.into(),
            r#match: Some(route_match(None)),
            action: Some(action),
            ..Default::default()
        }],
    )
}

/// The shared route configuration `"<port>"`.
fn port_route_config(
    push: &PushContext,
    proxy: &Proxy,
    scope: &SidecarScope<'_>,
    vss: &[&VsConfig],
    port: u16,
) -> RouteConfiguration {
    let ctx = RouteCtx {
        push,
        proxy,
        port,
        gateways: vec![MESH_GATEWAY.to_string()],
    };
    let mut used: HashSet<String> = HashSet::new();
    let mut vhosts = Vec::new();
    for svc in scope.services() {
        let Some(p) = svc
            .port(port)
            .filter(|p| OutboundPorts::on_shared_route(svc, p))
        else {
            continue;
        };
        let ds: Vec<String> = domains(svc, proxy, push.domain())
            .into_iter()
            .filter(|d| used.insert(d.clone()))
            .collect();
        if ds.is_empty() {
            continue;
        }
        vhosts.push(vhost(
            format!("{}:{port}", svc.hostname),
            ds,
            service_routes(&ctx, vss, svc, p.port),
        ));
    }
    // Istio lets VirtualServices route hosts outside the registry on port 80 only.
    if port == 80 {
        for vs in vss {
            let routes = vs_routes(&ctx, vs);
            if routes.is_empty() {
                continue;
            }
            for h in &vs.hosts {
                if h == "*"
                    || scope
                        .services()
                        .iter()
                        .any(|s| crate::push_context::host::covers(h, &s.hostname))
                {
                    continue;
                }
                if used.insert(h.clone()) {
                    vhosts.push(vhost(
                        format!("{h}:{port}"),
                        vec![h.clone()],
                        routes.clone(),
                    ));
                }
            }
        }
    }
    vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    if !used.contains("*") {
        vhosts.push(catch_all_vhost(push.outbound_mode(proxy)));
    }
    route_configuration(port.to_string(), vhosts, true)
}

/// `<fqdn>:<port>` for a sniffed port with a VIP: one virtual host matching anything,
/// since its listener already selected the service by address.
fn sniffed_route_config(
    push: &PushContext,
    proxy: &Proxy,
    vss: &[&VsConfig],
    svc: &Service,
    port: u16,
) -> RouteConfiguration {
    let ctx = RouteCtx {
        push,
        proxy,
        port,
        gateways: vec![MESH_GATEWAY.to_string()],
    };
    let name = format!("{}:{port}", svc.hostname);
    route_configuration(
        name.clone(),
        vec![vhost(
            name,
            vec!["*".into()],
            service_routes(&ctx, vss, svc, port),
        )],
        true,
    )
}

/// Route configurations of a sidecar, sorted by name.
pub fn generate(push: &PushContext, proxy: &Proxy) -> Vec<RouteConfiguration> {
    let scope = push.scope(proxy);
    let vss = scope.mesh_virtual_services();
    let ports = OutboundPorts::new(&scope);
    let mut out: Vec<RouteConfiguration> = ports
        .http
        .iter()
        .map(|p| port_route_config(push, proxy, &scope, &vss, *p))
        .collect();
    for (svc, p) in &ports.sniffed {
        out.push(sniffed_route_config(push, proxy, &vss, svc, p.port));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The inbound route `inbound|<port>||`: everything to the local workload, no timeout.
pub fn inbound_route_config(
    cluster: &str,
    vhost_name: &str,
    operation: &str,
) -> RouteConfiguration {
    let action = RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_string())),
        timeout: Some(zero_duration()),
        max_stream_duration: Some(route_action::MaxStreamDuration {
            max_stream_duration: Some(zero_duration()),
            grpc_timeout_header_max: Some(zero_duration()),
            ..Default::default()
        }),
        ..Default::default()
    };
    RouteConfiguration {
        name: cluster.to_string(),
        virtual_hosts: vec![VirtualHost {
            name: vhost_name.to_string(),
            domains: vec!["*".into()],
            routes: vec![Route {
                name: "default".into(),
                r#match: Some(route_match(None)),
                action: Some(route::Action::Route(action)),
                decorator: Some(Decorator {
                    operation: operation.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }],
        validate_clusters: Some(boolv(false)),
        ..Default::default()
    }
}
