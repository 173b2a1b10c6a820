use std::collections::BTreeMap;

use ironmesh_registry::model::ServiceOrigin;
use ironmesh_registry::{Endpoint, Locality, Resolution, Service, TlsMode};
use ironmesh_xds::nds::NameTable;

use crate::testutil::{sidecar, World};
use prost::{Message, Name};

fn entry(ns: &str, name: &str, host: &str, addresses: &[&str], resolution: Resolution) -> Service {
    Service {
        hostname: host.into(),
        name: name.into(),
        namespace: ns.into(),
        vip: addresses.first().and_then(|a| a.parse().ok()),
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
        ports: Vec::new(),
        resolution,
        mesh_external: true,
        labels: BTreeMap::new(),
        export_to: vec!["*".into()],
        origin: ServiceOrigin::ServiceEntry(format!("{ns}/{name}")),
        selector: None,
    }
}

fn unpack(a: &prost_types::Any) -> NameTable {
    assert_eq!(a.type_url, NameTable::type_url());
    NameTable::decode(a.value.as_slice()).unwrap()
}

fn world() -> World {
    World::new()
        .service(
            "istio-demo",
            "httpbin",
            Some("240.240.0.7"),
            &[("http", 8000, 80)],
            &[("app", "httpbin")],
        )
        .service(
            "other",
            "db",
            Some("240.240.1.1"),
            &[("tcp", 5432, 5432)],
            &[],
        )
        .service(
            "other",
            "cassandra",
            None,
            &[("tcp", 9042, 9042)],
            &[("app", "c")],
        )
        .pod("other", "cassandra-0", "10.213.0.20", &[("app", "c")])
        .pod("other", "cassandra-1", "10.213.0.21", &[("app", "c")])
        .raw_service(entry(
            "istio-demo",
            "ext",
            "api.example.com",
            &[],
            Resolution::Dns,
        ))
        .raw_service(entry(
            "istio-demo",
            "fixed",
            "fixed.example.com",
            &["240.240.9.9"],
            Resolution::Dns,
        ))
        .raw_service(entry(
            "istio-demo",
            "wild",
            "*.wild.example.com",
            &[],
            Resolution::Dns,
        ))
        .raw_service(entry(
            "istio-demo",
            "pass",
            "pass.example.com",
            &[],
            Resolution::Passthrough,
        ))
}

fn table_for(ns: &str) -> NameTable {
    let push = world().push();
    let proxy = sidecar("sleep-1", ns, "10.213.0.9", &[("app", "sleep")]);
    let out = crate::generate(&push, &proxy, crate::NAME_TABLE_TYPE).unwrap();
    assert_eq!(out.len(), 1, "one table per proxy");
    assert_eq!(out[0].0, "", "named like Istio's");
    unpack(&out[0].1)
}

#[test]
fn kubernetes_services_carry_short_name_and_namespace() {
    let t = table_for("istio-demo");
    let h = &t.table["httpbin.istio-demo.svc.cluster.local"];
    assert_eq!(h.ips, vec!["240.240.0.7"]);
    assert_eq!(h.registry, "Kubernetes");
    assert_eq!(h.shortname, "httpbin");
    assert_eq!(h.namespace, "istio-demo");
    let db = &t.table["db.other.svc.cluster.local"];
    assert_eq!(
        (db.shortname.as_str(), db.namespace.as_str()),
        ("db", "other")
    );
}

#[test]
fn headless_services_resolve_to_pod_ips() {
    let t = table_for("istio-demo");
    assert_eq!(
        t.table["cassandra.other.svc.cluster.local"].ips,
        vec!["10.213.0.20", "10.213.0.21"]
    );
}

#[test]
fn service_entries_get_their_address_or_an_auto_allocated_vip() {
    let t = table_for("istio-demo");
    assert_eq!(t.table["fixed.example.com"].ips, vec!["240.240.9.9"]);
    assert_eq!(t.table["fixed.example.com"].registry, "External");
    assert!(t.table["fixed.example.com"].shortname.is_empty());

    let auto: std::net::Ipv4Addr = t.table["api.example.com"].ips[0].parse().unwrap();
    assert_eq!(&auto.octets()[..2], &[240, 240]);
    let used = ["240.240.0.7", "240.240.1.1", "240.240.9.9"];
    assert!(!used.contains(&auto.to_string().as_str()));
    // Every proxy sees the same allocation.
    assert_eq!(
        table_for("other").table["api.example.com"].ips,
        vec![auto.to_string()]
    );

    assert!(
        !t.table.keys().any(|k| k.starts_with('*')),
        "wildcards cannot be answered"
    );
    assert!(
        !t.table.contains_key("pass.example.com"),
        "NONE resolution gets no VIP"
    );
}

#[test]
fn visibility_follows_export_to_and_sidecar_egress() {
    let push = world()
        .config(
            r#"
apiVersion: networking.istio.io/v1beta1
kind: Sidecar
metadata: {name: default, namespace: istio-demo}
spec:
  egress:
  - hosts: ["./*"]
"#,
        )
        .push();
    let proxy = sidecar("sleep-1", "istio-demo", "10.213.0.9", &[]);
    let out = crate::generate(&push, &proxy, crate::NAME_TABLE_TYPE).unwrap();
    let t = unpack(&out[0].1);
    assert!(t.table.contains_key("httpbin.istio-demo.svc.cluster.local"));
    assert!(
        !t.table.contains_key("db.other.svc.cluster.local"),
        "{:?}",
        t.table.keys()
    );
}

#[test]
fn endpoints_that_are_names_are_not_addresses() {
    let push = World::new()
        .service("ns", "h", None, &[("http", 80, 80)], &[])
        .endpoint(
            "h.ns.svc.cluster.local",
            Endpoint {
                address: "not-an-ip.example".into(),
                port: 80,
                service_port: 80,
                labels: BTreeMap::new(),
                service_account: String::new(),
                locality: Locality::default(),
                weight: 1,
                healthy: true,
                workload_name: String::new(),
                namespace: "ns".into(),
                tls_mode: TlsMode::Disabled,
            },
        )
        .push();
    let proxy = sidecar("p", "ns", "10.213.0.9", &[]);
    let out = crate::generate(&push, &proxy, crate::NAME_TABLE_TYPE).unwrap();
    let t = unpack(&out[0].1);
    assert!(t.table.is_empty(), "{t:?}");
}
