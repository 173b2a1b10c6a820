use envoy_types::pb::envoy::config::route::v3::{route, route_action};

use super::{action, route_config, routes, vhost};
use crate::testutil::{bookinfo, sidecar, BOOKINFO_CONFIG};

fn productpage() -> crate::Proxy {
    sidecar(
        "productpage-v1-1",
        "default",
        "10.244.0.10",
        &[("app", "productpage"), ("version", "v1")],
    )
}

#[test]
fn port_route_has_a_vhost_per_service_with_seed_domains() {
    let push = bookinfo().push();
    let rc = route_config(&push, &productpage(), "9080");
    assert!(!rc.validate_clusters.unwrap().value);
    assert!(rc.ignore_port_in_host_matching);
    assert_eq!(
        rc.max_direct_response_body_size_bytes.unwrap().value,
        1048576
    );
    let v = vhost(&rc, "details.default.svc.cluster.local:9080");
    // Same order as seeds/002: fqdn, short name, name.ns.svc, name.ns, VIP.
    assert_eq!(
        v.domains,
        [
            "details.default.svc.cluster.local",
            "details",
            "details.default.svc",
            "details.default",
            "10.96.1.13"
        ]
    );
    assert!(v.include_request_attempt_count);
    let r = &v.routes[0];
    assert_eq!(r.name, "default");
    assert_eq!(
        r.decorator.as_ref().unwrap().operation,
        "details.default.svc.cluster.local:9080/*"
    );
    let a = action(r);
    assert_eq!(
        a.cluster_specifier,
        Some(route_action::ClusterSpecifier::Cluster(
            "outbound|9080||details.default.svc.cluster.local".into()
        ))
    );
    assert_eq!(a.timeout.unwrap().seconds, 0);
    // Istio's default retry policy.
    let rp = a.retry_policy.as_ref().unwrap();
    assert_eq!(rp.num_retries.unwrap().value, 2);
    assert_eq!(
        rp.retry_on,
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    );
    assert_eq!(rp.host_selection_retry_max_attempts, 5);
    assert_eq!(
        rp.retry_host_predicate[0].name,
        "envoy.retry_host_predicates.previous_hosts"
    );
    assert!(rp.retriable_status_codes.is_empty());

    // Another namespace's service: no short name.
    let rc = route_config(&push, &productpage(), "15014");
    let v = vhost(&rc, "istiod.istio-system.svc.cluster.local:15014");
    assert_eq!(
        v.domains,
        [
            "istiod.istio-system.svc.cluster.local",
            "istiod.istio-system.svc",
            "istiod.istio-system",
            "10.96.0.30"
        ]
    );
    // Unknown hosts pass through.
    let any = vhost(&rc, "allow_any");
    assert_eq!(any.domains, ["*"]);
    assert_eq!(
        action(&any.routes[0]).cluster_specifier,
        Some(route_action::ClusterSpecifier::Cluster(
            "PassthroughCluster".into()
        ))
    );
}

#[test]
fn registry_only_blocks_unknown_hosts() {
    let push = bookinfo()
        .mesh("outboundTrafficPolicy: {mode: REGISTRY_ONLY}")
        .push();
    let rc = route_config(&push, &productpage(), "9080");
    let block = vhost(&rc, "block_all");
    match &block.routes[0].action {
        Some(route::Action::DirectResponse(d)) => assert_eq!(d.status, 502),
        other => panic!("{other:?}"),
    }
    assert!(rc.virtual_hosts.iter().all(|v| v.name != "allow_any"));
}

#[test]
fn sniffed_ports_with_a_vip_get_their_own_route() {
    let push = bookinfo().push();
    let names: Vec<String> = routes(&push, &productpage())
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert!(
        names.contains(&"kube-dns.kube-system.svc.cluster.local:9153".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"9153".to_string()));
    assert!(!names.contains(&"53".to_string()));
    let rc = route_config(
        &push,
        &productpage(),
        "kube-dns.kube-system.svc.cluster.local:9153",
    );
    assert_eq!(rc.virtual_hosts.len(), 1);
    assert_eq!(rc.virtual_hosts[0].domains, ["*"]);
}

#[test]
fn virtual_service_routes_replace_the_default() {
    let push = bookinfo().config(BOOKINFO_CONFIG).push();
    let rc = route_config(&push, &productpage(), "9080");
    let v = vhost(&rc, "reviews.default.svc.cluster.local:9080");
    assert_eq!(v.routes.len(), 2);
    let jason = &v.routes[0];
    assert_eq!(jason.name, "");
    let m = jason.r#match.as_ref().unwrap();
    assert_eq!(m.headers[0].name, "end-user");
    assert!(m.case_sensitive.unwrap().value);
    assert_eq!(
        action(jason).cluster_specifier,
        Some(route_action::ClusterSpecifier::Cluster(
            "outbound|9080|v2|reviews.default.svc.cluster.local".into()
        ))
    );
    assert_eq!(
        jason.decorator.as_ref().unwrap().operation,
        "reviews.default.svc.cluster.local:9080/*"
    );
    assert!(format!("{:?}", jason.metadata)
        .contains("/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"));
    let split = &v.routes[1];
    match &action(split).cluster_specifier {
        Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
            let got: Vec<(String, u32)> = w
                .clusters
                .iter()
                .map(|c| (c.name.clone(), c.weight.unwrap().value))
                .collect();
            assert_eq!(
                got,
                [
                    (
                        "outbound|9080|v1|reviews.default.svc.cluster.local".to_string(),
                        50
                    ),
                    (
                        "outbound|9080|v3|reviews.default.svc.cluster.local".to_string(),
                        50
                    )
                ]
            );
            #[allow(deprecated)]
            let total = &w.total_weight;
            assert!(total.is_none());
        }
        other => panic!("{other:?}"),
    }
    // Weighted routes are named after the VirtualService in traces.
    assert_eq!(
        split.decorator.as_ref().unwrap().operation,
        "reviews:9080/*"
    );
}

#[test]
fn consistent_hash_goes_on_routes_and_drops_previous_hosts() {
    let dr = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings.default.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      consistentHash: {useSourceIp: true}
"#;
    let push = bookinfo().config(dr).push();
    let rc = route_config(&push, &productpage(), "9080");
    let a = action(&vhost(&rc, "ratings.default.svc.cluster.local:9080").routes[0]).clone();
    assert_eq!(a.hash_policy.len(), 1);
    assert!(format!("{:?}", a.hash_policy[0]).contains("source_ip: true"));
    assert!(a.retry_policy.unwrap().retry_host_predicate.is_empty());
}
