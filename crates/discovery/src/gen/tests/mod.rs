//! Generator tests: hand-built registries and YAML config, assertions on the Envoy
//! resources, and an interop check with Envoy's own Python protos.

mod cds_tests;
mod eds_tests;
mod gateway_tests;
mod grpc_tests;
mod lds_tests;
mod nds_tests;
mod protos;
mod rds_tests;
mod route_tests;
mod sds_tests;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    route, Route, RouteAction, RouteConfiguration, VirtualHost,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use crate::proxy::Proxy;
use crate::push_context::PushContext;

pub fn unpack<M: Message + Name + Default>(a: &Any) -> M {
    assert_eq!(a.type_url, M::type_url());
    M::decode(a.value.as_slice()).unwrap()
}

pub fn clusters(push: &PushContext, proxy: &Proxy) -> Vec<Cluster> {
    super::cds::generate(push, proxy)
}

pub fn cluster(push: &PushContext, proxy: &Proxy, name: &str) -> Cluster {
    let all = clusters(push, proxy);
    let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
    all.into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name} in {names:#?}"))
}

pub fn routes(push: &PushContext, proxy: &Proxy) -> Vec<RouteConfiguration> {
    crate::generate(push, proxy, crate::ROUTE_TYPE)
        .unwrap()
        .into_iter()
        .map(|(_, a)| RouteConfiguration::decode(a.value.as_slice()).unwrap())
        .collect()
}

pub fn route_config(push: &PushContext, proxy: &Proxy, name: &str) -> RouteConfiguration {
    let all = routes(push, proxy);
    let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
    all.into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no route config {name} in {names:?}"))
}

pub fn vhost<'a>(rc: &'a RouteConfiguration, name: &str) -> &'a VirtualHost {
    let names: Vec<&str> = rc.virtual_hosts.iter().map(|v| v.name.as_str()).collect();
    rc.virtual_hosts
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vhost {name} in {names:?}"))
}

pub fn action(r: &Route) -> &RouteAction {
    match &r.action {
        Some(route::Action::Route(a)) => a,
        other => panic!("not a route action: {other:?}"),
    }
}

pub fn listeners(push: &PushContext, proxy: &Proxy) -> Vec<Listener> {
    crate::generate(push, proxy, crate::LISTENER_TYPE)
        .unwrap()
        .into_iter()
        .map(|(_, a)| Listener::decode(a.value.as_slice()).unwrap())
        .collect()
}

pub fn listener(push: &PushContext, proxy: &Proxy, name: &str) -> Listener {
    let all = listeners(push, proxy);
    let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
    all.into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no listener {name} in {names:?}"))
}

fn typed(f: &Filter) -> &Any {
    match &f.config_type {
        Some(filter::ConfigType::TypedConfig(a)) => a,
        other => panic!("no typed config: {other:?}"),
    }
}

pub fn hcm_of(f: &Filter) -> HttpConnectionManager {
    assert_eq!(f.name, super::filters::HCM);
    unpack(typed(f))
}

pub fn tcp_of(f: &Filter) -> TcpProxy {
    assert_eq!(f.name, super::filters::TCP_PROXY);
    unpack(typed(f))
}

pub fn tcp_cluster(f: &Filter) -> String {
    match tcp_of(f).cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::Cluster(c)) => c,
        other => panic!("not a single cluster: {other:?}"),
    }
}
