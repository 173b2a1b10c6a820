//! Proxyless gRPC (node metadata `GENERATOR: grpc`): an API listener `<fqdn>:<port>` per
//! visible service port whose HTTP connection manager takes routes over RDS under the
//! same name; routes come from the mesh VirtualServices with `max_stream_duration` for
//! timeouts, and the fault filter only where a route injects faults.

use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use ironmesh_registry::{Protocol, Resolution, Service};

use super::cds::outbound_name;
use super::filters::ROUTER;
use super::rds::{route_configuration, vhost};
use super::route::{default_route, vs_routes, RouteCtx, FAULT_FILTER};
use super::util::{ads_config_source, any};
use crate::proxy::Proxy;
use crate::push_context::{PushContext, SidecarScope, MESH_GATEWAY};

/// The service ports a gRPC client may dial through xDS, with their routes.
fn targets(push: &PushContext, proxy: &Proxy) -> Vec<(String, Vec<Route>)> {
    let scope = push.scope(proxy);
    let vss = scope.mesh_virtual_services();
    let mut out = Vec::new();
    for svc in scope
        .services()
        .iter()
        .filter(|s| s.resolution != Resolution::Passthrough)
    {
        for p in svc.ports.iter().filter(|p| p.protocol != Protocol::Udp) {
            let ctx = RouteCtx {
                push,
                proxy,
                port: p.port,
                gateways: vec![MESH_GATEWAY.to_string()],
            };
            out.push((
                format!("{}:{}", svc.hostname, p.port),
                routes(&ctx, &vss, svc, p.port),
            ));
        }
    }
    out
}

fn routes(
    ctx: &RouteCtx<'_>,
    vss: &[&crate::push_context::VsConfig],
    svc: &Service,
    port: u16,
) -> Vec<Route> {
    if let Some(vs) = SidecarScope::virtual_service_for(vss, &svc.hostname) {
        let r = vs_routes(ctx, vs);
        if !r.is_empty() {
            return r;
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

fn filter<M: prost::Message + prost::Name>(name: &str, m: &M) -> HttpFilter {
    HttpFilter {
        name: name.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(any(m))),
        ..Default::default()
    }
}

/// API listeners, sorted by name.
pub fn listeners(push: &PushContext, proxy: &Proxy) -> Vec<Listener> {
    let mut out: Vec<Listener> = targets(push, proxy)
        .into_iter()
        .map(|(name, routes)| {
            let mut http_filters = Vec::new();
            if routes
                .iter()
                .any(|r| r.typed_per_filter_config.contains_key(FAULT_FILTER))
            {
                http_filters.push(filter(FAULT_FILTER, &HttpFault::default()));
            }
            // gRPC requires the router to be the last filter.
            http_filters.push(filter(ROUTER, &Router::default()));
            let hcm = HttpConnectionManager {
                stat_prefix: name.clone(),
                route_specifier: Some(RouteSpecifier::Rds(Rds {
                    config_source: Some(ads_config_source()),
                    route_config_name: name.clone(),
                })),
                http_filters,
                ..Default::default()
            };
            Listener {
                name,
                api_listener: Some(ApiListener {
                    api_listener: Some(any(&hcm)),
                }),
                ..Default::default()
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One route configuration per API listener, with a single catch-all virtual host
/// (the listener already chose the service).
pub fn route_configs(push: &PushContext, proxy: &Proxy) -> Vec<RouteConfiguration> {
    let mut out: Vec<RouteConfiguration> = targets(push, proxy)
        .into_iter()
        .map(|(name, routes)| {
            route_configuration(
                name.clone(),
                vec![vhost(name, vec!["*".into()], routes)],
                false,
            )
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
