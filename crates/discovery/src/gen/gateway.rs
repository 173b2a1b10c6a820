//! Gateway LDS and RDS: listeners for the servers of every Gateway that selects a
//! gateway proxy, on the gateway Service's target port (server port 80 of a Service
//! mapping 80→8080 listens on `0.0.0.0_8080`), with HTTP routes `http.<port>`, TLS
//! termination per server (`https.<port>.<portName>.<gateway>.<namespace>`), SNI
//! passthrough and TCP routes from the VirtualServices bound to the gateway.

use std::collections::{BTreeMap, HashSet};

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener,
};
use envoy_types::pb::envoy::config::route::v3::{
    route, virtual_host::TlsRequirementType, DirectResponseAction, Route, RouteConfiguration,
    VirtualHost,
};
use ironmesh_config::networking::gateway::{Server, ServerTlsMode};
use ironmesh_registry::Protocol;

use super::filters::{self, hcm, hcm_filter, tls_inspector, Routes};
use super::l4_route::{self, L4Ctx};
use super::rds::{route_configuration, vhost};
use super::route::{vs_routes, RouteCtx};
use super::route_match::{is_catch_all, route_match};
use super::tls::{downstream_tls, TLS_TRANSPORT_SOCKET};
use super::util::{boolv, socket_address, transport_socket};
use crate::proxy::Proxy;
use crate::push_context::host::{self, NsHost};
use crate::push_context::{GatewayConfig, PushContext, VsConfig};

/// One server of one Gateway.
#[derive(Clone, Copy)]
struct ServerRef<'a> {
    gw: &'a GatewayConfig,
    server: &'a Server,
}

impl ServerRef<'_> {
    fn port(&self) -> u16 {
        self.server
            .port
            .as_ref()
            .and_then(|p| p.number)
            .unwrap_or(0) as u16
    }

    fn protocol(&self) -> Protocol {
        Protocol::parse(
            self.server
                .port
                .as_ref()
                .and_then(|p| p.protocol.as_deref())
                .unwrap_or(""),
        )
    }

    fn tls_mode(&self) -> Option<ServerTlsMode> {
        self.server
            .tls
            .as_ref()
            .map(|t| t.mode.unwrap_or(ServerTlsMode::Passthrough))
    }

    /// TLS terminated here (rather than passed through by SNI).
    fn terminates(&self) -> bool {
        matches!(
            self.tls_mode(),
            Some(ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual)
        )
    }

    /// 0: HTTP, 1: TLS (terminated or passed through), 2: opaque TCP.
    fn kind(&self) -> u8 {
        if self.protocol().is_http() {
            0
        } else if self.server.tls.is_some() {
            1
        } else {
            2
        }
    }

    fn passthrough(&self) -> bool {
        matches!(self.protocol(), Protocol::Https | Protocol::Tls) && !self.terminates()
    }

    fn hosts(&self) -> Vec<NsHost> {
        self.server
            .hosts
            .iter()
            .map(|h| NsHost::parse(h, &self.gw.namespace))
            .collect()
    }

    /// `https.<port>.<portName>.<gateway>.<namespace>`.
    fn https_route_name(&self) -> String {
        let port_name = self
            .server
            .port
            .as_ref()
            .and_then(|p| p.name.as_deref())
            .unwrap_or("");
        format!(
            "https.{}.{port_name}.{}.{}",
            self.port(),
            self.gw.name,
            self.gw.namespace
        )
    }

    /// SNI values for a terminating server's filter chain; none when it takes any host.
    fn server_names(&self) -> Vec<String> {
        let hosts: Vec<String> = self.hosts().into_iter().map(|h| h.host).collect();
        if hosts.iter().any(|h| h == "*") {
            Vec::new()
        } else {
            hosts
        }
    }
}

/// Servers grouped by the port the gateway listens on.
struct PortGroup<'a> {
    bind: String,
    listen_port: u16,
    servers: Vec<ServerRef<'a>>,
}

fn port_groups<'a>(push: &'a PushContext, proxy: &Proxy) -> Vec<PortGroup<'a>> {
    let targets = push.service_targets(proxy);
    let mut groups: BTreeMap<(String, u16), PortGroup<'a>> = BTreeMap::new();
    for gw in push.gateways_for(proxy) {
        for server in &gw.spec.servers {
            let s = ServerRef { gw, server };
            if s.port() == 0 {
                continue;
            }
            let listen_port = targets
                .iter()
                .find(|t| t.port.port == s.port())
                .map(|t| t.target_port)
                .unwrap_or(s.port());
            let bind = server
                .bind
                .clone()
                .filter(|b| !b.is_empty() && !b.starts_with("unix://"))
                .unwrap_or_else(|| "0.0.0.0".into());
            groups
                .entry((bind.clone(), listen_port))
                .or_insert_with(|| PortGroup {
                    bind,
                    listen_port,
                    servers: Vec::new(),
                })
                .servers
                .push(s);
        }
    }
    // The first server's kind (HTTP, TLS, TCP) decides what a port speaks; conflicting
    // servers on the same port are dropped, as Istio does.
    for g in groups.values_mut() {
        let first = g.servers[0].kind();
        g.servers.retain(|s| s.kind() == first);
    }
    groups.into_values().collect()
}

fn listener_name(g: &PortGroup<'_>) -> String {
    format!("{}_{}", g.bind, g.listen_port)
}

/// VirtualService hosts in common with the servers' hosts, with the routes each
/// contributes (several VirtualServices for one host are merged in order).
fn http_vhosts(
    push: &PushContext,
    proxy: &Proxy,
    servers: &[ServerRef<'_>],
    port: u16,
) -> Vec<VirtualHost> {
    let mut by_host: BTreeMap<String, (Vec<Route>, bool)> = BTreeMap::new();
    for s in servers {
        let key = s.gw.key();
        let ctx = RouteCtx {
            push,
            proxy,
            port,
            gateways: vec![key.clone()],
        };
        let redirect = s.server.tls.as_ref().and_then(|t| t.https_redirect) == Some(true);
        let server_hosts = s.hosts();
        for vs in push.virtual_services_for(&proxy.namespace, &key) {
            let hosts = common_hosts(&server_hosts, vs);
            if hosts.is_empty() {
                continue;
            }
            let routes = vs_routes(&ctx, vs);
            if routes.is_empty() {
                continue;
            }
            for h in hosts {
                let e = by_host.entry(h).or_default();
                e.0.extend(routes.iter().cloned());
                e.1 |= redirect;
            }
        }
    }
    by_host
        .into_iter()
        .map(|(h, (routes, redirect))| {
            let mut domains = vec![h.clone()];
            if h != "*" {
                domains.push(format!("{h}:*"));
            }
            let mut v = vhost(format!("{h}:{port}"), domains, sort_catch_all_last(routes));
            if redirect {
                v.require_tls = TlsRequirementType::All as i32;
            }
            v
        })
        .collect()
}

fn common_hosts(server_hosts: &[NsHost], vs: &VsConfig) -> Vec<String> {
    let mut out = Vec::new();
    for sh in server_hosts
        .iter()
        .filter(|h| h.allows_namespace(&vs.namespace))
    {
        for vh in &vs.hosts {
            if let Some(h) = host::intersect(&sh.host, vh) {
                if !out.contains(&h) {
                    out.push(h);
                }
            }
        }
    }
    out
}

/// Merged VirtualServices may each end with a catch-all; those go last so that they do
/// not hide the other VirtualServices' routes.
fn sort_catch_all_last(routes: Vec<Route>) -> Vec<Route> {
    let (all, rest): (Vec<Route>, Vec<Route>) = routes
        .into_iter()
        .partition(|r| r.r#match.as_ref().is_some_and(is_catch_all));
    rest.into_iter().chain(all).collect()
}

fn with_blackhole(mut vhosts: Vec<VirtualHost>, port: u16) -> Vec<VirtualHost> {
    if vhosts.is_empty() {
        vhosts.push(vhost(
            format!("blackhole:{port}"),
            vec!["*".into()],
            vec![Route {
                name: "default".into(),
                r#match: Some(route_match(None)),
                action: Some(route::Action::DirectResponse(DirectResponseAction {
                    status: 404,
                    ..Default::default()
                })),
                ..Default::default()
            }],
        ));
    }
    vhosts
}

/// Route configurations of a gateway proxy, sorted by name.
pub fn route_configs(push: &PushContext, proxy: &Proxy) -> Vec<RouteConfiguration> {
    let mut out = Vec::new();
    for g in port_groups(push, proxy) {
        let first = g.servers[0];
        if first.protocol().is_http() {
            let vh = http_vhosts(push, proxy, &g.servers, first.port());
            out.push(route_configuration(
                format!("http.{}", g.listen_port),
                with_blackhole(vh, first.port()),
                false,
            ));
        } else if first.protocol() == Protocol::Https {
            for s in g.servers.iter().filter(|s| s.terminates()) {
                let vh = http_vhosts(push, proxy, std::slice::from_ref(s), s.port());
                out.push(route_configuration(
                    s.https_route_name(),
                    with_blackhole(vh, s.port()),
                    false,
                ));
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn gateway_hcm(push: &PushContext, stat_prefix: &str, route: String) -> Filter {
    let mut h = hcm(
        stat_prefix,
        Routes::Rds(route),
        filters::sidecar_http_filters(),
        push.mesh(),
    );
    // Gateways are the edge: the client address is the peer's.
    h.use_remote_address = Some(boolv(true));
    hcm_filter(&h)
}

/// The first TCP route of the VirtualServices bound to a server that applies to its port.
fn tcp_route(push: &PushContext, proxy: &Proxy, s: &ServerRef<'_>) -> Option<Filter> {
    let key = s.gw.key();
    let ctx = L4Ctx {
        push,
        proxy,
        port: s.port(),
        gateway: &key,
    };
    let server_hosts = s.hosts();
    push.virtual_services_for(&proxy.namespace, &key)
        .into_iter()
        .filter(|vs| !common_hosts(&server_hosts, vs).is_empty())
        .find_map(|vs| l4_route::tcp_route(&ctx, vs))
}

/// SNI filter chains for a passthrough server: one per TLS route match.
fn passthrough_chains(push: &PushContext, proxy: &Proxy, s: &ServerRef<'_>) -> Vec<FilterChain> {
    let key = s.gw.key();
    let ctx = L4Ctx {
        push,
        proxy,
        port: s.port(),
        gateway: &key,
    };
    let server_hosts = s.hosts();
    let allowed = |h: &str| {
        server_hosts
            .iter()
            .any(|sh| host::intersect(&sh.host, h).is_some())
    };
    let mut used = HashSet::new();
    let mut out = Vec::new();
    for vs in push.virtual_services_for(&proxy.namespace, &key) {
        if !common_hosts(&server_hosts, vs).is_empty() {
            out.extend(l4_route::tls_chains(&ctx, vs, &allowed, &mut used));
        }
    }
    out
}

/// Listeners of a gateway proxy, sorted by name. Ports whose servers have no route
/// get no listener (Envoy refuses a listener without filter chains).
pub fn listeners(push: &PushContext, proxy: &Proxy) -> Vec<Listener> {
    let mut out = Vec::new();
    for g in port_groups(push, proxy) {
        let name = listener_name(&g);
        let first = g.servers[0];
        let mut chains = Vec::new();
        let mut tls = false;
        if first.protocol().is_http() {
            chains.push(FilterChain {
                filters: vec![gateway_hcm(
                    push,
                    &format!("outbound_{name}"),
                    format!("http.{}", g.listen_port),
                )],
                ..Default::default()
            });
        } else {
            for s in &g.servers {
                if s.terminates() {
                    tls = true;
                    let http = s.protocol() == Protocol::Https;
                    let Some(ctx) = s.server.tls.as_ref().and_then(|t| downstream_tls(t, http))
                    else {
                        continue;
                    };
                    let filter = if http {
                        Some(gateway_hcm(
                            push,
                            &format!("outbound_{name}"),
                            s.https_route_name(),
                        ))
                    } else {
                        tcp_route(push, proxy, s)
                    };
                    if let Some(f) = filter {
                        let names = s.server_names();
                        chains.push(FilterChain {
                            filter_chain_match: (!names.is_empty()).then(|| FilterChainMatch {
                                server_names: names,
                                ..Default::default()
                            }),
                            filters: vec![f],
                            transport_socket: Some(transport_socket(TLS_TRANSPORT_SOCKET, &ctx)),
                            ..Default::default()
                        });
                    }
                } else if s.passthrough() {
                    tls = true;
                    chains.extend(passthrough_chains(push, proxy, s));
                } else if s.tls_mode().is_none() {
                    if let Some(f) = tcp_route(push, proxy, s) {
                        chains.push(FilterChain {
                            filters: vec![f],
                            ..Default::default()
                        });
                        break;
                    }
                }
            }
        }
        if chains.is_empty() {
            continue;
        }
        out.push(Listener {
            name,
            address: Some(socket_address(&g.bind, u32::from(g.listen_port))),
            filter_chains: chains,
            listener_filters: if tls {
                vec![tls_inspector()]
            } else {
                Vec::new()
            },
            traffic_direction: TrafficDirection::Outbound as i32,
            ..Default::default()
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
