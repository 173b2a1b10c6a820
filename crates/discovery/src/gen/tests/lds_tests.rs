use envoy_types::pb::envoy::config::accesslog::v3::access_log;
use envoy_types::pb::envoy::config::core::v3::{substitution_format_string::Format, TrafficDirection};
use envoy_types::pb::envoy::extensions::access_loggers::file::v3::{file_access_log, FileAccessLog};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;

use super::{hcm_of, listener, listeners, tcp_cluster, unpack};
use crate::gen::cds::address_text;
use crate::testutil::{bookinfo, sidecar};

fn productpage() -> crate::Proxy {
    sidecar(
        "productpage-v1-1",
        "default",
        "10.244.0.10",
        &[("app", "productpage"), ("version", "v1")],
    )
}

#[test]
fn sidecar_listener_set() {
    let push = bookinfo().push();
    let names: Vec<String> = listeners(&push, &productpage())
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(
        names,
        [
            "0.0.0.0_15010",
            "0.0.0.0_15014",
            "0.0.0.0_80",
            "0.0.0.0_9080",
            "10.96.0.10_53",
            "10.96.0.10_9153",
            "10.96.0.20_15021",
            "10.96.0.20_31400",
            "10.96.0.20_443",
            "10.96.0.30_15012",
            "virtualInbound",
            "virtualOutbound",
        ]
    );
}

#[test]
fn virtual_outbound_hands_off_by_original_destination() {
    let push = bookinfo().push();
    let l = listener(&push, &productpage(), "virtualOutbound");
    assert_eq!(address_text(l.address.as_ref().unwrap()), "0.0.0.0:15001");
    assert!(l.use_original_dst.unwrap().value);
    let names: Vec<&str> = l.filter_chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["virtualOutbound-blackhole", "virtualOutbound-catchall-tcp"]
    );
    assert_eq!(
        tcp_cluster(&l.filter_chains[0].filters[0]),
        "BlackHoleCluster"
    );
    assert_eq!(
        tcp_cluster(&l.filter_chains[1].filters[0]),
        "PassthroughCluster"
    );

    let strict = bookinfo()
        .mesh("outboundTrafficPolicy: {mode: REGISTRY_ONLY}")
        .push();
    let l = listener(&strict, &productpage(), "virtualOutbound");
    assert_eq!(
        tcp_cluster(&l.filter_chains[1].filters[0]),
        "BlackHoleCluster"
    );
}

#[test]
fn http_port_listener_uses_rds_by_port() {
    let push = bookinfo().push();
    let l = listener(&push, &productpage(), "0.0.0.0_9080");
    assert!(!l.bind_to_port.unwrap().value);
    assert_eq!(l.traffic_direction, TrafficDirection::Outbound as i32);
    let http = &l.filter_chains[0];
    let m = http.filter_chain_match.as_ref().unwrap();
    assert_eq!(m.application_protocols, ["http/1.1", "h2c"]);
    assert_eq!(m.transport_protocol, "raw_buffer");
    let h = hcm_of(&http.filters[0]);
    assert_eq!(h.stat_prefix, "outbound_0.0.0.0_9080");
    match h.route_specifier {
        Some(RouteSpecifier::Rds(r)) => assert_eq!(r.route_config_name, "9080"),
        other => panic!("{other:?}"),
    }
    let filters: Vec<&str> = h.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        filters,
        [
            "envoy.filters.http.fault",
            "envoy.filters.http.cors",
            "envoy.filters.http.router"
        ]
    );
    assert!(!h.use_remote_address.unwrap().value);
    assert!(h.generate_request_id.unwrap().value);
    assert!(h.tracing.is_none());
    assert!(h.access_log.is_empty());
    assert_eq!(
        tcp_cluster(&l.filter_chains[1].filters[0]),
        "PassthroughCluster"
    );
    let lf: Vec<&str> = l.listener_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        lf,
        [
            "envoy.filters.listener.tls_inspector",
            "envoy.filters.listener.http_inspector"
        ]
    );
}

#[test]
fn tcp_and_sniffed_ports_bind_to_the_vip() {
    let push = bookinfo().push();
    let p = productpage();
    let tcp = listener(&push, &p, "10.96.0.10_53");
    assert_eq!(tcp.filter_chains.len(), 1);
    assert_eq!(
        tcp_cluster(&tcp.filter_chains[0].filters[0]),
        "outbound|53||kube-dns.kube-system.svc.cluster.local"
    );
    let sniffed = listener(&push, &p, "10.96.0.10_9153");
    match hcm_of(&sniffed.filter_chains[0].filters[0]).route_specifier {
        Some(RouteSpecifier::Rds(r)) => assert_eq!(
            r.route_config_name,
            "kube-dns.kube-system.svc.cluster.local:9153"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        tcp_cluster(&sniffed.filter_chains[1].filters[0]),
        "outbound|9153||kube-dns.kube-system.svc.cluster.local"
    );
}

#[test]
fn virtual_inbound_has_a_chain_per_workload_port() {
    let push = bookinfo().push();
    let l = listener(&push, &productpage(), "virtualInbound");
    assert_eq!(address_text(l.address.as_ref().unwrap()), "0.0.0.0:15006");
    assert_eq!(l.traffic_direction, TrafficDirection::Inbound as i32);
    assert_eq!(
        l.listener_filters[0].name,
        "envoy.filters.listener.original_dst"
    );
    let names: Vec<&str> = l.filter_chains.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "virtualInbound-blackhole",
            "0.0.0.0_9080",
            "virtualInbound-catchall-http",
            "PassthroughFilterChain"
        ]
    );
    let own = &l.filter_chains[1];
    assert_eq!(
        own.filter_chain_match
            .as_ref()
            .unwrap()
            .destination_port
            .unwrap()
            .value,
        9080
    );
    let h = hcm_of(&own.filters[0]);
    assert_eq!(h.stat_prefix, "inbound_0.0.0.0_9080");
    let Some(RouteSpecifier::RouteConfig(rc)) = h.route_specifier else {
        panic!()
    };
    assert_eq!(rc.name, "inbound|9080||");
    assert_eq!(rc.virtual_hosts[0].name, "inbound|http|9080");
    let r = &rc.virtual_hosts[0].routes[0];
    assert_eq!(
        r.decorator.as_ref().unwrap().operation,
        "productpage.default.svc.cluster.local:9080/*"
    );
    assert!(format!("{:?}", r.action).contains("inbound|9080||"));
    assert_eq!(
        tcp_cluster(&l.filter_chains[3].filters[0]),
        "InboundPassthroughCluster"
    );
}

#[test]
fn access_logs_follow_mesh_config() {
    let push = bookinfo().mesh("accessLogFile: /dev/stdout").push();
    let l = listener(&push, &productpage(), "0.0.0.0_9080");
    let h = hcm_of(&l.filter_chains[0].filters[0]);
    let log = &h.access_log[0];
    assert_eq!(log.name, "envoy.access_loggers.file");
    let Some(access_log::ConfigType::TypedConfig(a)) = &log.config_type else {
        panic!()
    };
    let f: FileAccessLog = unpack(a);
    assert_eq!(f.path, "/dev/stdout");
    let Some(file_access_log::AccessLogFormat::LogFormat(fmt)) = f.access_log_format else {
        panic!()
    };
    match fmt.format {
        Some(Format::TextFormatSource(src)) => {
            let text = format!("{src:?}");
            assert!(
                text.contains("[%START_TIME%]") && text.contains("%ROUTE_NAME%\\n"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    // TCP proxies log too.
    let tcp = listener(&push, &productpage(), "10.96.0.10_53");
    assert_eq!(
        super::tcp_of(&tcp.filter_chains[0].filters[0])
            .access_log
            .len(),
        1
    );

    let json = bookinfo()
        .mesh("accessLogFile: /dev/stdout\naccessLogEncoding: JSON")
        .push();
    let l = listener(&json, &productpage(), "0.0.0.0_9080");
    let h = hcm_of(&l.filter_chains[0].filters[0]);
    let Some(access_log::ConfigType::TypedConfig(a)) = &h.access_log[0].config_type else {
        panic!()
    };
    let f: FileAccessLog = unpack(a);
    let Some(file_access_log::AccessLogFormat::LogFormat(fmt)) = f.access_log_format else {
        panic!()
    };
    let Some(Format::JsonFormat(s)) = fmt.format else {
        panic!()
    };
    assert_eq!(s.fields.len(), 24);
    assert!(s.fields.contains_key("upstream_transport_failure_reason"));
}

#[test]
fn sidecar_tcp_and_tls_routes_from_virtual_services() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db]
  tcp:
  - match:
    - port: 5432
      sourceLabels: {app: productpage}
    route:
    - destination: {host: db, subset: primary}
      weight: 80
    - destination: {host: db, subset: replica}
      weight: 20
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure, a.secure.example.com]
  tls:
  - match:
    - sniHosts: [a.secure.example.com]
    route:
    - destination: {host: details, port: {number: 9080}}
"#;
    let push = bookinfo()
        .service(
            "default",
            "db",
            Some("10.96.2.1"),
            &[("tcp-pg", 5432, 5432)],
            &[("app", "db")],
        )
        .service(
            "default",
            "secure",
            Some("10.96.2.2"),
            &[("https", 443, 8443)],
            &[("app", "secure")],
        )
        .config(yaml)
        .push();
    let p = productpage();
    let db = listener(&push, &p, "10.96.2.1_5432");
    let tcp = super::tcp_of(&db.filter_chains[0].filters[0]);
    assert!(format!("{:?}", tcp.cluster_specifier)
        .contains("outbound|5432|replica|db.default.svc.cluster.local"));
    // Other clients do not match the source labels: straight to the service.
    let other = sidecar(
        "reviews-v1-1",
        "default",
        "10.244.0.11",
        &[("app", "reviews")],
    );
    let db = listener(&push, &other, "10.96.2.1_5432");
    assert_eq!(
        tcp_cluster(&db.filter_chains[0].filters[0]),
        "outbound|5432||db.default.svc.cluster.local"
    );

    let l = listener(&push, &p, "10.96.2.2_443");
    assert_eq!(
        l.listener_filters[0].name,
        "envoy.filters.listener.tls_inspector"
    );
    assert_eq!(
        l.filter_chains[0]
            .filter_chain_match
            .as_ref()
            .unwrap()
            .server_names,
        ["a.secure.example.com"]
    );
    assert_eq!(
        tcp_cluster(&l.filter_chains[0].filters[0]),
        "outbound|9080||details.default.svc.cluster.local"
    );
    assert_eq!(
        tcp_cluster(&l.filter_chains[1].filters[0]),
        "outbound|443||secure.default.svc.cluster.local"
    );
}
