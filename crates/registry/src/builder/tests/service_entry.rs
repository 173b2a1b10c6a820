use std::collections::BTreeMap;

use ironmesh_config::mesh::MeshConfig;

use super::{addresses, build, objects, pod, seed};
use crate::builder::build_services;
use crate::model::{Protocol, Resolution, ServiceOrigin, TlsMode};

#[test]
fn service_entry_hosts_addresses_and_resolution() {
    let reg = build(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-api, namespace: egress, labels: {team: payments}}
spec:
  hosts: [api.example.com, pay]
  addresses: [10.0.0.0/24, 240.0.0.7/32, 240.0.0.8]
  ports:
  - {number: 443, name: https, protocol: HTTPS}
  - {number: 80, name: http, protocol: HTTP, targetPort: 8080}
  location: MESH_EXTERNAL
  resolution: STATIC
  exportTo: [".", istio-system]
  endpoints:
  - address: 1.2.3.4
  - address: 1.2.3.5
    ports: {https: 8443}
    labels: {zone: b}
    weight: 5
    locality: r1/z1/s1
    serviceAccount: pay-sa
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: internal, namespace: egress}
spec:
  hosts: [db.internal]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  location: MESH_INTERNAL
  resolution: NONE
"#,
    );
    for host in ["api.example.com", "pay"] {
        let svc = reg.service(host).unwrap_or_else(|| panic!("{host}"));
        assert_eq!(svc.namespace, "egress");
        assert_eq!(svc.name, "external-api");
        assert_eq!(svc.vip, Some("240.0.0.7".parse().unwrap()));
        assert_eq!(
            svc.addresses,
            vec!["10.0.0.0/24", "240.0.0.7/32", "240.0.0.8"]
        );
        assert_eq!(svc.resolution, Resolution::ClientSideLb);
        assert!(svc.mesh_external);
        assert_eq!(svc.export_to, vec!["egress", "istio-system"]);
        assert_eq!(
            svc.origin,
            ServiceOrigin::ServiceEntry("egress/external-api".into())
        );
        assert_eq!(svc.labels.get("team").map(String::as_str), Some("payments"));
        assert_eq!(svc.port(443).unwrap().protocol, Protocol::Https);
        assert_eq!(svc.port(80).unwrap().target_port, Some(8080));
        assert_eq!(
            addresses(reg.endpoints(host, 443)),
            vec![("1.2.3.4", 443), ("1.2.3.5", 8443)]
        );
        assert_eq!(
            addresses(reg.endpoints(host, 80)),
            vec![("1.2.3.4", 8080), ("1.2.3.5", 8080)]
        );
    }
    let ep = &reg.endpoints("pay", 443)[1];
    assert_eq!(ep.weight, 5);
    assert_eq!(ep.locality.to_string(), "r1/z1/s1");
    assert_eq!(ep.service_account, "pay-sa");
    assert_eq!(ep.tls_mode, TlsMode::Istio);
    assert_eq!(ep.labels.get("zone").map(String::as_str), Some("b"));
    assert_eq!(reg.endpoints("pay", 443)[0].tls_mode, TlsMode::Disabled);

    let internal = reg.service("db.internal").unwrap();
    assert_eq!(internal.resolution, Resolution::Passthrough);
    assert!(!internal.mesh_external);
    assert_eq!(internal.vip, None);
    assert_eq!(internal.export_to, vec!["*"]);
    assert!(reg.endpoints("db.internal", 5432).is_empty());
}

#[test]
fn service_entry_resolutions_map_like_istio() {
    let cases = [
        ("NONE", Resolution::Passthrough),
        ("STATIC", Resolution::ClientSideLb),
        ("DNS", Resolution::Dns),
        ("DNS_ROUND_ROBIN", Resolution::DnsRoundRobin),
        ("DYNAMIC_DNS", Resolution::Dns),
    ];
    for (written, want) in cases {
        let endpoints = if written == "STATIC" {
            "\n  endpoints: [{address: 1.1.1.1}]"
        } else {
            ""
        };
        let host = if written == "DYNAMIC_DNS" {
            "\"*.example.org\""
        } else {
            "a.example.org"
        };
        let reg = build(&format!(
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: e}}\nspec:\n  hosts: [{host}]\n  ports: [{{number: 80, name: http, protocol: HTTP}}]\n  resolution: {written}{endpoints}\n"
        ));
        assert_eq!(reg.services[0].resolution, want, "{written}");
    }
}

#[test]
fn dns_service_entry_without_endpoints_dials_its_hosts() {
    let reg = build(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: google, namespace: default}
spec:
  hosts: [www.google.com, maps.google.com]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 443, name: tls, protocol: TLS, targetPort: 8443}
  resolution: DNS
"#,
    );
    for host in ["www.google.com", "maps.google.com"] {
        assert_eq!(reg.service(host).unwrap().resolution, Resolution::Dns);
        assert_eq!(addresses(reg.endpoints(host, 80)), vec![(host, 80)]);
        assert_eq!(addresses(reg.endpoints(host, 443)), vec![(host, 8443)]);
    }
}

#[test]
fn service_entry_workload_selector_picks_pods_and_entries() {
    let mut yaml = String::from(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mixed, namespace: hybrid}
spec:
  hosts: [mixed.hybrid.svc.cluster.local]
  addresses: [240.240.5.5]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {number: 80, name: http-app, protocol: HTTP, targetPort: 9000}
  - {number: 81, name: other, protocol: HTTP}
  workloadSelector:
    labels: {app: mixed}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: mixed-vm, namespace: hybrid}
spec:
  address: 192.168.0.9
  labels: {app: mixed}
  ports: {other: 7000}
"#,
    );
    yaml += &pod("mixed-pod", "hybrid", "10.3.0.1", &[("app", "mixed")], true);
    yaml += &pod("unrelated", "hybrid", "10.3.0.2", &[("app", "no")], true);
    let reg = build(&yaml);
    let host = "mixed.hybrid.svc.cluster.local";
    let svc = reg.service(host).unwrap();
    assert_eq!(svc.vip, Some("240.240.5.5".parse().unwrap()));
    assert_eq!(
        svc.selector,
        Some(BTreeMap::from([("app".into(), "mixed".into())]))
    );
    // The pod's container port named like the service port wins; then targetPort.
    assert_eq!(
        addresses(reg.endpoints(host, 80)),
        vec![("10.3.0.1", 8080), ("192.168.0.9", 9000)]
    );
    assert_eq!(
        addresses(reg.endpoints(host, 81)),
        vec![("10.3.0.1", 81), ("192.168.0.9", 7000)]
    );
    assert_eq!(reg.endpoints(host, 80)[0].workload_name, "mixed-pod");
}

#[test]
fn kubernetes_service_wins_a_host_claimed_twice_in_its_namespace() {
    let reg = build(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shadow, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 9.9.9.9}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.1, ports: [{name: http, port: 80}], selector: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: other}
spec:
  hosts: [web.default.svc.cluster.local]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 8.8.8.8}]
"#,
    );
    let owners: Vec<_> = reg
        .services
        .iter()
        .map(|s| (s.namespace.as_str(), s.origin.clone()))
        .collect();
    assert_eq!(
        owners,
        vec![
            ("default", ServiceOrigin::Kubernetes),
            ("other", ServiceOrigin::ServiceEntry("other/ext".into())),
        ]
    );
    // The shadowed entry's endpoints are gone; the other namespace's are merged in.
    assert_eq!(
        addresses(reg.endpoints("web.default.svc.cluster.local", 80)),
        vec![("8.8.8.8", 80)]
    );
    assert_eq!(
        reg.service_in("web.default.svc.cluster.local", "other")
            .unwrap()
            .name,
        "ext"
    );
}

#[test]
fn output_does_not_depend_on_input_order() {
    let mut yaml = seed("001-bookinfo-gateway.yaml");
    for (i, v) in ["v1", "v2", "v3"].iter().enumerate() {
        yaml += &pod(
            &format!("reviews-{v}-abc"),
            "default",
            &format!("10.4.0.{}", 10 - i),
            &[("app", "reviews"), ("version", v)],
            true,
        );
    }
    let objs = objects(&yaml);
    let mut reversed = objs.clone();
    reversed.reverse();
    let a = build_services(&objs, &MeshConfig::default(), "cluster.local");
    let b = build_services(&reversed, &MeshConfig::default(), "cluster.local");
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

#[test]
fn bookinfo_with_three_reviews_versions() {
    let mut yaml = seed("001-bookinfo-gateway.yaml");
    let pods = [
        ("productpage-v1-1", "10.244.0.5", "productpage", "v1"),
        ("details-v1-1", "10.244.0.6", "details", "v1"),
        ("ratings-v1-1", "10.244.0.7", "ratings", "v1"),
        ("reviews-v1-1", "10.244.0.8", "reviews", "v1"),
        ("reviews-v2-1", "10.244.0.9", "reviews", "v2"),
        ("reviews-v3-1", "10.244.0.10", "reviews", "v3"),
    ];
    for (name, ip, app, version) in pods {
        yaml += &pod(
            name,
            "default",
            ip,
            &[("app", app), ("version", version)],
            true,
        );
    }
    let reg = build(&yaml);
    let hosts: Vec<_> = reg.services.iter().map(|s| s.hostname.as_str()).collect();
    assert_eq!(
        hosts,
        vec![
            "details.default.svc.cluster.local",
            "productpage.default.svc.cluster.local",
            "ratings.default.svc.cluster.local",
            "reviews.default.svc.cluster.local",
        ]
    );
    for svc in &reg.services {
        assert_eq!(svc.port(9080).unwrap().protocol, Protocol::Http);
    }
    let reviews = reg.endpoints("reviews.default.svc.cluster.local", 9080);
    let versions: Vec<_> = reviews
        .iter()
        .map(|e| (e.address.as_str(), e.labels["version"].as_str()))
        .collect();
    assert_eq!(
        versions,
        vec![
            ("10.244.0.8", "v1"),
            ("10.244.0.9", "v2"),
            ("10.244.0.10", "v3")
        ]
    );
    assert_eq!(
        reg.endpoints("productpage.default.svc.cluster.local", 9080)
            .len(),
        1
    );
    assert_eq!(reg.workloads.len(), 6);
}

#[test]
fn canary_subsets_see_version_labels() {
    let mut yaml = seed("002-canary-by-header.yaml");
    yaml += &pod(
        "canary-v1-x",
        "canary",
        "10.244.1.2",
        &[("app", "canary"), ("version", "v1")],
        true,
    );
    yaml += &pod(
        "canary-v2-y",
        "canary",
        "10.244.1.3",
        &[("app", "canary"), ("version", "v2")],
        true,
    );
    yaml += &pod(
        "toolbox-z",
        "canary",
        "10.244.1.4",
        &[("app", "toolbox")],
        true,
    );
    let reg = build(&yaml);
    let eps = reg.endpoints("canary.canary.svc.cluster.local", 80);
    let got: Vec<_> = eps
        .iter()
        .map(|e| (e.address.as_str(), e.port, e.labels["version"].as_str()))
        .collect();
    assert_eq!(
        got,
        vec![("10.244.1.2", 80, "v1"), ("10.244.1.3", 80, "v2")]
    );
}
