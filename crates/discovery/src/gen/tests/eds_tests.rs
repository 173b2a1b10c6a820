use envoy_types::pb::envoy::config::core::v3::HealthStatus;
use envoy_types::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};

use crate::gen::cds::address_text;
use crate::testutil::{bookinfo, grpc_client, sidecar, World, BOOKINFO_CONFIG};

fn cla(push: &crate::PushContext, proxy: &crate::Proxy, name: &str) -> ClusterLoadAssignment {
    crate::gen::eds::generate(push, proxy)
        .into_iter()
        .find(|c| c.cluster_name == name)
        .unwrap_or_else(|| panic!("no load assignment for {name}"))
}

fn addresses(c: &ClusterLoadAssignment) -> Vec<String> {
    c.endpoints
        .iter()
        .flat_map(|l| l.lb_endpoints.iter())
        .map(|e| match &e.host_identifier {
            Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => {
                address_text(ep.address.as_ref().unwrap())
            }
            _ => String::new(),
        })
        .collect()
}

#[test]
fn subsets_filter_endpoints_by_labels() {
    let push = bookinfo().config(BOOKINFO_CONFIG).push();
    let p = sidecar(
        "productpage-v1-1",
        "default",
        "10.244.0.10",
        &[("app", "productpage")],
    );
    let all = cla(
        &push,
        &p,
        "outbound|9080||reviews.default.svc.cluster.local",
    );
    assert_eq!(
        addresses(&all),
        ["10.244.0.11:9080", "10.244.0.12:9080", "10.244.0.13:9080"]
    );
    let v2 = cla(
        &push,
        &p,
        "outbound|9080|v2|reviews.default.svc.cluster.local",
    );
    assert_eq!(addresses(&v2), ["10.244.0.12:9080"]);
    let e = &v2.endpoints[0].lb_endpoints[0];
    assert_eq!(e.health_status, HealthStatus::Healthy as i32);
    assert_eq!(e.load_balancing_weight.unwrap().value, 1);
    let meta = format!("{:?}", e.metadata);
    assert!(
        meta.contains("reviews-v2-1;default;reviews;v2;Kubernetes"),
        "{meta}"
    );
    // Only EDS clusters get load assignments.
    let names: Vec<String> = crate::gen::eds::generate(&push, &p)
        .into_iter()
        .map(|c| c.cluster_name)
        .collect();
    assert!(!names
        .iter()
        .any(|n| n.contains("Passthrough") || n.starts_with("inbound")));
}

#[test]
fn localities_are_grouped_and_weighted() {
    let push = World::new()
        .service(
            "default",
            "echo",
            Some("10.96.0.50"),
            &[("grpc", 7070, 7070)],
            &[("app", "echo")],
        )
        .pod_in_zone(
            "default",
            "echo-a",
            "10.1.0.1",
            &[("app", "echo")],
            "zone-a",
        )
        .pod_in_zone(
            "default",
            "echo-b",
            "10.1.0.2",
            &[("app", "echo")],
            "zone-a",
        )
        .pod_in_zone(
            "default",
            "echo-c",
            "10.1.0.3",
            &[("app", "echo")],
            "zone-b",
        )
        .push();
    let c = cla(
        &push,
        &grpc_client("default"),
        "outbound|7070||echo.default.svc.cluster.local",
    );
    assert_eq!(c.endpoints.len(), 2);
    let a = &c.endpoints[0];
    assert_eq!(a.locality.as_ref().unwrap().zone, "zone-a");
    assert_eq!(a.locality.as_ref().unwrap().region, "region1");
    assert_eq!(a.load_balancing_weight.unwrap().value, 2);
    assert_eq!(c.endpoints[1].load_balancing_weight.unwrap().value, 1);
}
