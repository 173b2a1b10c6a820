use std::net::IpAddr;

use ironmesh_xds::nds::{self, NameInfo};

use super::*;

pub fn sample() -> nds::NameTable {
    let mut t = nds::NameTable::default();
    let k8s = |ip: &str, short: &str, ns: &str| NameInfo {
        ips: vec![ip.into()],
        registry: nds::REGISTRY_KUBERNETES.into(),
        shortname: short.into(),
        namespace: ns.into(),
        alt_hosts: vec![],
    };
    t.table.insert(
        "httpbin.istio-demo.svc.cluster.local".into(),
        k8s("240.240.0.7", "httpbin", "istio-demo"),
    );
    t.table.insert(
        "ratings.bookinfo.svc.cluster.local".into(),
        k8s("240.240.3.3", "ratings", "bookinfo"),
    );
    t.table.insert(
        "api.example.com".into(),
        NameInfo {
            ips: vec!["240.240.9.9".into()],
            registry: nds::REGISTRY_EXTERNAL.into(),
            ..Default::default()
        },
    );
    t
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn every_search_domain_form_resolves() {
    let t = NameTable::from_nds(&ironmesh_xds::pack(&sample())).unwrap();
    assert_eq!(t.len(), 3);
    let want = [ip("240.240.0.7")];
    for name in [
        "httpbin",
        "httpbin.",
        "HTTPBIN",
        "httpbin.istio-demo",
        "httpbin.istio-demo.svc",
        "httpbin.istio-demo.svc.cluster.local",
        "httpbin.istio-demo.svc.cluster.local.",
    ] {
        assert_eq!(t.lookup(name, "istio-demo"), Some(&want[..]), "{name}");
    }
    // Short names only resolve in their own namespace; qualified ones everywhere.
    assert_eq!(t.lookup("httpbin", "bookinfo"), None);
    assert_eq!(t.lookup("httpbin.istio-demo", "bookinfo"), Some(&want[..]));
    assert_eq!(
        t.lookup("ratings", "bookinfo"),
        Some(&[ip("240.240.3.3")][..])
    );
    assert_eq!(
        t.lookup("api.example.com", "bookinfo"),
        Some(&[ip("240.240.9.9")][..])
    );
    assert_eq!(t.lookup("example.com", "istio-demo"), None);
    assert_eq!(t.lookup("httpbin.other", "istio-demo"), None);
}

#[test]
fn search_list_expansions_of_mesh_hosts_are_answered() {
    let t = NameTable::from_table(&sample()).unwrap();
    for name in [
        "api.example.com.istio-demo.svc.cluster.local",
        "api.example.com.svc.cluster.local",
        "api.example.com.cluster.local",
    ] {
        assert_eq!(
            t.lookup(name, "istio-demo"),
            Some(&[ip("240.240.9.9")][..]),
            "{name}"
        );
    }
    assert_eq!(
        t.lookup("www.example.org.istio-demo.svc.cluster.local", "istio-demo"),
        None
    );
}

#[test]
fn bad_tables_are_rejected_with_the_reason() {
    let mut t = sample();
    t.table.get_mut("api.example.com").unwrap().ips = vec!["api.example.com".into()];
    let e = NameTable::from_table(&t).unwrap_err();
    assert!(e.contains("not an IP"), "{e}");
    let wrong = ironmesh_xds::Any {
        type_url: "type.googleapis.com/envoy.config.cluster.v3.Cluster".into(),
        value: vec![],
    };
    assert!(NameTable::from_nds(&wrong)
        .unwrap_err()
        .contains("NameTable"));
}

#[test]
fn resolv_conf_nameservers() {
    let text = "# comment\nsearch istio-demo.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver ::1\nnameserver fe80::1%eth0\noptions ndots:5\n";
    assert_eq!(
        parse_resolv_conf(text),
        vec![
            "10.96.0.10:53".parse().unwrap(),
            "[::1]:53".parse().unwrap()
        ]
    );
}

#[test]
fn resources_merge_tables_and_per_host_name_info() {
    let whole = ironmesh_xds::pack(&sample());
    let per_host = ironmesh_xds::pack(&nds::NameTable {
        table: Default::default(),
        name_info: Some(NameInfo {
            ips: vec!["240.240.5.5".into()],
            registry: nds::REGISTRY_EXTERNAL.into(),
            ..Default::default()
        }),
    });
    let t = NameTable::from_resources([("", &whole), ("db.example.net", &per_host)]).unwrap();
    assert_eq!(t.len(), 4);
    assert_eq!(
        t.lookup("db.example.net", "x"),
        Some(&[ip("240.240.5.5")][..])
    );
    assert_eq!(
        t.lookup("httpbin", "istio-demo"),
        Some(&[ip("240.240.0.7")][..])
    );
}
