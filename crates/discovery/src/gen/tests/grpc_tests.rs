use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, LbPolicy,
};
use envoy_types::pb::envoy::config::route::v3::route_action;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager,
};

use super::{action, clusters, listener, listeners, route_config, unpack};
use crate::testutil::{grpc_client, World};

const VS: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  http:
  - match:
    - headers: {x-canary: {exact: "yes"}}
    timeout: 3s
    fault:
      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 50}}
    route:
    - destination: {host: echo, subset: v2}
  - retries: {attempts: 3, retryOn: "unavailable,connect-failure"}
    route:
    - destination: {host: echo, subset: v1}
      weight: 80
    - destination: {host: echo, subset: v2}
      weight: 20
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"#;

fn world() -> World {
    World::new()
        .service(
            "default",
            "echo",
            Some("10.96.0.50"),
            &[("grpc", 7070, 7070)],
            &[("app", "echo")],
        )
        .service(
            "default",
            "plain",
            Some("10.96.0.51"),
            &[("http", 8080, 8080)],
            &[("app", "plain")],
        )
        .pod(
            "default",
            "echo-v1",
            "10.1.0.1",
            &[("app", "echo"), ("version", "v1")],
        )
        .pod(
            "default",
            "echo-v2",
            "10.1.0.2",
            &[("app", "echo"), ("version", "v2")],
        )
        .config(VS)
}

#[test]
fn api_listeners_per_service_port() {
    let push = world().push();
    let c = grpc_client("default");
    let names: Vec<String> = listeners(&push, &c).into_iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        [
            "echo.default.svc.cluster.local:7070",
            "plain.default.svc.cluster.local:8080"
        ]
    );
    let l = listener(&push, &c, "echo.default.svc.cluster.local:7070");
    assert!(l.address.is_none() && l.filter_chains.is_empty());
    let hcm: HttpConnectionManager = unpack(
        l.api_listener
            .as_ref()
            .unwrap()
            .api_listener
            .as_ref()
            .unwrap(),
    );
    let filters: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        filters,
        ["envoy.filters.http.fault", "envoy.filters.http.router"]
    );
    match hcm.route_specifier {
        Some(RouteSpecifier::Rds(r)) => {
            assert_eq!(r.route_config_name, "echo.default.svc.cluster.local:7070")
        }
        other => panic!("{other:?}"),
    }
    // No faults on plain: the router alone.
    let l = listener(&push, &c, "plain.default.svc.cluster.local:8080");
    let hcm: HttpConnectionManager = unpack(
        l.api_listener
            .as_ref()
            .unwrap()
            .api_listener
            .as_ref()
            .unwrap(),
    );
    assert_eq!(hcm.http_filters.len(), 1);
}

#[test]
fn routes_use_max_stream_duration_and_grpc_retries() {
    let push = world().push();
    let rc = route_config(
        &push,
        &grpc_client("default"),
        "echo.default.svc.cluster.local:7070",
    );
    let routes = &rc.virtual_hosts[0].routes;
    let a = action(&routes[0]);
    assert!(a.timeout.is_none());
    assert_eq!(
        a.max_stream_duration
            .as_ref()
            .unwrap()
            .max_stream_duration
            .unwrap()
            .seconds,
        3
    );
    assert!(
        a.retry_policy.is_none(),
        "gRPC gets no default retry policy"
    );
    let b = action(&routes[1]);
    let rp = b.retry_policy.as_ref().unwrap();
    assert_eq!(rp.retry_on, "unavailable");
    assert!(rp.retry_host_predicate.is_empty());
    assert!(matches!(
        b.cluster_specifier,
        Some(route_action::ClusterSpecifier::WeightedClusters(_))
    ));
}

#[test]
fn clusters_are_eds_only() {
    let push = world().push();
    let all = clusters(&push, &grpc_client("default"));
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "outbound|7070|v1|echo.default.svc.cluster.local",
            "outbound|7070|v2|echo.default.svc.cluster.local",
            "outbound|7070||echo.default.svc.cluster.local",
            "outbound|8080||plain.default.svc.cluster.local",
        ]
    );
    for c in &all {
        assert_eq!(
            c.cluster_discovery_type,
            Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32))
        );
        assert_eq!(c.lb_policy, LbPolicy::RoundRobin as i32);
        assert!(c.typed_extension_protocol_options.is_empty());
    }
}
