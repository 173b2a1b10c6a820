use super::*;
use crate::testutil::{bookinfo, router, sidecar, World, BOOKINFO_CONFIG};

fn hosts(push: &PushContext, proxy: &Proxy) -> Vec<String> {
    push.scope(proxy)
        .services()
        .iter()
        .map(|s| s.hostname.clone())
        .collect()
}

#[test]
fn export_to_resolution() {
    let d = vec!["*".to_string()];
    assert_eq!(ExportTo::resolve(&[], &d, "a"), ExportTo::All);
    let dot = ExportTo::resolve(&[".".into()], &d, "a");
    assert!(dot.allows("a") && !dot.allows("b"));
    assert!(!ExportTo::resolve(&["~".into()], &d, "a").allows("a"));
}

#[test]
fn sidecar_egress_hosts_scope_services_and_virtual_services() {
    let sc = r#"
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["./*", "istio-system/istiod.istio-system.svc.cluster.local"]
"#;
    let push = bookinfo().config(BOOKINFO_CONFIG).config(sc).push();
    let p = sidecar(
        "productpage-v1-1",
        "default",
        "10.244.0.10",
        &[("app", "productpage")],
    );
    assert_eq!(
        hosts(&push, &p),
        [
            "details.default.svc.cluster.local",
            "istiod.istio-system.svc.cluster.local",
            "productpage.default.svc.cluster.local",
            "ratings.default.svc.cluster.local",
            "reviews.default.svc.cluster.local",
        ]
    );
    // No cluster and no listener for hosts the proxy may not see.
    let clusters: Vec<String> = crate::gen::cds::generate(&push, &p)
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(!clusters
        .iter()
        .any(|c| c.contains("kube-dns") || c.contains("ingressgateway")));
    let listeners: Vec<String> = crate::gen::lds::generate(&push, &p)
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert!(!listeners
        .iter()
        .any(|l| l.starts_with("10.96.0.10") || l == "0.0.0.0_80"));
    assert_eq!(push.scope(&p).mesh_virtual_services().len(), 1);
    // Gateways ignore Sidecar resources.
    let gw = router("gw", "default", "10.0.0.9", &[]);
    assert!(hosts(&push, &gw).len() > 5);
}

#[test]
fn workload_selector_sidecar_wins_over_namespace_default() {
    let sc = r#"
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ratings-only, namespace: default}
spec:
  workloadSelector: {labels: {app: productpage}}
  egress:
  - hosts: ["./ratings.default.svc.cluster.local"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  egress:
  - hosts: ["*/*"]
"#;
    let push = bookinfo().config(sc).push();
    let pp = sidecar(
        "productpage-v1-1",
        "default",
        "10.244.0.10",
        &[("app", "productpage")],
    );
    assert_eq!(hosts(&push, &pp), ["ratings.default.svc.cluster.local"]);
    assert_eq!(
        push.outbound_mode(&pp),
        OutboundTrafficPolicyMode::RegistryOnly
    );
    let rv = sidecar(
        "reviews-v1-1",
        "default",
        "10.244.0.11",
        &[("app", "reviews")],
    );
    assert_eq!(hosts(&push, &rv).len(), 4);
    // Another namespace falls back to the root namespace's Sidecar.
    let other = sidecar("x", "prod", "10.0.0.1", &[]);
    assert_eq!(hosts(&push, &other).len(), 7);
}

#[test]
fn export_to_hides_services_virtual_services_and_rules() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: private, namespace: default}
spec:
  hosts: [ratings]
  exportTo: ["."]
  http:
  - route:
    - destination: {host: ratings, subset: v9}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: private, namespace: default}
spec:
  host: ratings
  exportTo: ["."]
  subsets:
  - {name: v9, labels: {version: v9}}
"#;
    let mut world = bookinfo().config(yaml);
    world = world.service(
        "default",
        "secret",
        Some("10.96.9.9"),
        &[("http", 80, 80)],
        &[("app", "secret")],
    );
    let mut snap = world.snapshot();
    let mut reg = (*snap.services).clone();
    for s in reg.services.iter_mut() {
        if s.name == "secret" {
            std::sync::Arc::make_mut(s).export_to = vec!["default".into()];
        }
    }
    snap.services = std::sync::Arc::new(reg);
    let push = PushContext::new(std::sync::Arc::new(snap), "cluster.local");
    let inside = sidecar("pp", "default", "10.244.0.10", &[]);
    let outside = sidecar("x", "prod", "10.0.0.1", &[]);
    assert!(hosts(&push, &inside).contains(&"secret.default.svc.cluster.local".to_string()));
    assert!(!hosts(&push, &outside).contains(&"secret.default.svc.cluster.local".to_string()));
    assert_eq!(push.virtual_services_for("default", MESH_GATEWAY).len(), 1);
    assert!(push.virtual_services_for("prod", MESH_GATEWAY).is_empty());
    assert!(push
        .destination_rule(&inside, "ratings.default.svc.cluster.local")
        .is_some());
    // The service's namespace rule is not exported to prod.
    assert!(push
        .destination_rule(&outside, "ratings.default.svc.cluster.local")
        .is_none());
}

#[test]
fn destination_rule_precedence() {
    let dr = |name: &str, ns: &str, host: &str| {
        format!("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  host: \"{host}\"\n")
    };
    let yaml = [
        dr("svc-ns", "default", "ratings"),
        dr("client-ns", "prod", "ratings.default.svc.cluster.local"),
        dr("root", "istio-system", "*.default.svc.cluster.local"),
        dr(
            "root-exact",
            "istio-system",
            "details.default.svc.cluster.local",
        ),
    ]
    .join("---\n");
    let push = bookinfo().config(&yaml).push();
    let prod = sidecar("x", "prod", "10.0.0.1", &[]);
    let dev = sidecar("y", "dev", "10.0.0.2", &[]);
    let name = |p: &Proxy, h: &str| push.destination_rule(p, h).map(|d| d.name.clone());
    assert_eq!(
        name(&prod, "ratings.default.svc.cluster.local").as_deref(),
        Some("client-ns")
    );
    assert_eq!(
        name(&dev, "ratings.default.svc.cluster.local").as_deref(),
        Some("svc-ns")
    );
    assert_eq!(
        name(&dev, "details.default.svc.cluster.local").as_deref(),
        Some("root-exact")
    );
    assert_eq!(
        name(&dev, "reviews.default.svc.cluster.local").as_deref(),
        Some("root")
    );
    assert_eq!(name(&dev, "istiod.istio-system.svc.cluster.local"), None);
}

#[test]
fn service_targets_come_from_selectors_or_endpoint_ips() {
    let push = bookinfo().push();
    let gw = router(
        "istio-ingressgateway-1",
        "istio-system",
        "10.244.0.2",
        &[("app", "istio-ingressgateway"), ("istio", "ingressgateway")],
    );
    let ports: Vec<(u16, u16)> = push
        .service_targets(&gw)
        .iter()
        .map(|t| (t.port.port, t.target_port))
        .collect();
    assert_eq!(
        ports,
        [(80, 8080), (443, 8443), (15021, 15021), (31400, 31400)]
    );
    // Found by IP even without labels.
    let bare = sidecar("reviews-v1-1", "default", "10.244.0.11", &[]);
    assert_eq!(push.service_targets(&bare)[0].service.name, "reviews");
    let nobody = World::new().push();
    assert!(nobody.service_targets(&bare).is_empty());
}
