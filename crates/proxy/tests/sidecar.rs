//! Sidecar listeners through the real binary: protocol detection on a port of unknown
//! protocol, and (as root, in a network namespace with iptables REDIRECT as istio-init
//! installs it) `virtualOutbound` SO_ORIGINAL_DST hand-off and `virtualInbound` to the
//! app from 127.0.0.6.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ironmesh_testkit::netns::{self, NetNs};
use serde_json::{json, Value};
use support::*;

const TCP: &str = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

fn tcp_chain(name: &str, m: Value, cluster: &str) -> Value {
    json!({"name": name, "filterChainMatch": m, "filters": [{"name": "envoy.filters.network.tcp_proxy", "typedConfig": {"@type": TCP, "statPrefix": cluster, "cluster": cluster}}]})
}

fn http_chain(name: &str, m: Value, route: &str) -> Value {
    json!({"name": name, "filterChainMatch": m, "filters": [hcm(route, name)]})
}

fn original_dst(name: &str, bind: bool) -> Value {
    let mut c = json!({"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": name, "type": "ORIGINAL_DST", "lbPolicy": "CLUSTER_PROVIDED", "connectTimeout": "1s"});
    if bind {
        c["upstreamBindConfig"] =
            json!({"sourceAddress": {"address": "127.0.0.6", "portValue": 0}});
    }
    c
}

const SNIFF: &str = r#"[{"name": "envoy.filters.listener.tls_inspector", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}},
    {"name": "envoy.filters.listener.http_inspector", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"}}]"#;

/// The shape discovery gives a sidecar: virtualOutbound, a sniffed `0.0.0.0_80`,
/// virtualInbound with a chain for app port 8080.
fn sidecar_config(remote: SocketAddr) -> Value {
    let sniff: Value = serde_json::from_str(SNIFF).unwrap();
    let listeners = vec![
        json!({"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "virtualOutbound", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 15001}},
            "useOriginalDst": true, "trafficDirection": "OUTBOUND",
            "filterChains": [tcp_chain("virtualOutbound-blackhole", json!({"destinationPort": 15001}), "BlackHoleCluster"), tcp_chain("virtualOutbound-catchall-tcp", json!({}), "PassthroughCluster")]}),
        json!({"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "0.0.0.0_80", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 80}},
            "bindToPort": false, "trafficDirection": "OUTBOUND", "listenerFilters": sniff.clone(), "listenerFiltersTimeout": "0s", "continueOnListenerFiltersTimeout": true,
            "filterChains": [http_chain("0.0.0.0_80", json!({"transportProtocol": "raw_buffer", "applicationProtocols": ["http/1.1", "h2c"]}), "80"),
                             tcp_chain("PassthroughFilterChain", json!({}), "PassthroughCluster")]}),
        json!({"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "virtualInbound", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 15006}},
            "trafficDirection": "INBOUND",
            "listenerFilters": [{"name": "envoy.filters.listener.original_dst", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst"}}],
            "filterChains": [tcp_chain("virtualInbound-blackhole", json!({"destinationPort": 15006}), "BlackHoleCluster"),
                             http_chain("0.0.0.0_8080", json!({"destinationPort": 8080}), "inbound|8080||"),
                             tcp_chain("PassthroughFilterChain", json!({}), "InboundPassthroughCluster")]}),
    ];
    let routes = vec![
        route_config(
            "80",
            json!([{"name": "echo.default.svc.cluster.local:80", "domains": ["echo.default.svc.cluster.local", "echo", "240.240.0.10"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "outbound|80||echo.default.svc.cluster.local", "timeout": "0s"}}]},
            {"name": "allow_any", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "PassthroughCluster", "timeout": "0s"}}]}]),
        ),
        route_config(
            "inbound|8080||",
            json!([{"name": "inbound|http|8080", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "inbound|8080||", "timeout": "0s"}}]}]),
        ),
    ];
    let clusters = vec![
        original_dst("PassthroughCluster", false),
        original_dst("InboundPassthroughCluster", true),
        original_dst("inbound|8080||", true),
        json!({"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "BlackHoleCluster", "type": "STATIC", "connectTimeout": "1s"}),
        eds_cluster(
            "outbound|80||echo.default.svc.cluster.local",
            "LEAST_REQUEST",
            false,
        ),
    ];
    config(
        listeners,
        routes,
        clusters,
        vec![endpoints(
            "outbound|80||echo.default.svc.cluster.local",
            &[remote],
        )],
    )
}

#[test]
fn sniffed_port_routes_http_and_passes_other_bytes_through() {
    let remote = EchoServer::http("remote");
    let p = Proxy::with_config(
        "sidecar",
        &sidecar_config(remote.addr),
        &["--bind-port", "80=127.0.0.1:0"],
    );
    p.wait_ready();
    let addr = p.addr("0.0.0.0_80");
    let r = get(addr, "echo.default.svc.cluster.local", "/hello", &[]);
    assert_eq!((r.status, r.header("x-echo-server")), (200, Some("remote")));
    let r = rt()
        .block_on(send(addr, true, req(true, "echo", "/h2c", &[])))
        .unwrap();
    assert_eq!(
        (r.status, r.header("x-echo-server")),
        (200, Some("remote")),
        "h2c preface detected"
    );
    // Not HTTP: the passthrough chain forwards to the original destination, here the
    // unbound port 80 on loopback, so the connection is closed without a reply.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"\x00\x01not http at all\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty());
    // Connecting to virtualOutbound without a redirect hits its blackhole chain, never
    // a loop back into the proxy.
    let mut s = TcpStream::connect(p.addr("virtualOutbound")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty());
}

/// Runs `f` on a thread inside `ns` (client sockets must live in the namespace).
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        netns::enter(&ns);
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn iptables_capture_outbound_original_dst_and_inbound_from_127_0_0_6() {
    if !netns::is_root() {
        eprintln!("SKIPPED (needs root): iptables_capture_outbound_original_dst_and_inbound_from_127_0_0_6");
        return;
    }
    let ns = NetNs::new("sidecar");
    // The pod IP lives on loopback; VIPs need a route so connect() gets as far as NAT.
    ns.exec_ok("ip", &["addr", "add", "10.213.0.5/32", "dev", "lo"]);
    ns.exec_ok("ip", &["route", "add", "240.240.0.0/16", "dev", "lo"]);
    // The essence of istio-init's rules: the proxy's own inbound hop (from 127.0.0.6)
    // is exempt; service VIPs go to 15001; the app port to 15006.
    ns.exec_ok(
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-s",
            "127.0.0.6/32",
            "-j",
            "RETURN",
        ],
    );
    ns.exec_ok(
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            "240.240.0.0/16",
            "-j",
            "REDIRECT",
            "--to-ports",
            "15001",
        ],
    );
    ns.exec_ok(
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            "10.213.0.5/32",
            "--dport",
            "8080",
            "-j",
            "REDIRECT",
            "--to-ports",
            "15006",
        ],
    );
    let remote = EchoServer::http_in("remote", "10.213.0.5:9090".parse().unwrap(), Some(&ns.name));
    let _app = EchoServer::http_in("app", "10.213.0.5:8080".parse().unwrap(), Some(&ns.name));
    let (dir, mut args) = config_args(&sidecar_config(remote.addr), &[]);
    args.extend(["--outbound-port", "15001", "--inbound-port", "15006"].map(String::from));
    let p = Proxy::launch(
        ns.command(std::path::Path::new(env!("CARGO_BIN_EXE_ironmesh-proxy"))),
        "sidecar",
        &args,
        dir,
        &[],
    );
    p.wait_ready();

    // Outbound: the app dials the service VIP; iptables sends it to 15001 and the proxy
    // hands it to 0.0.0.0_80 by the original destination.
    let r = in_ns(&ns.name, || {
        get(
            "240.240.0.10:80".parse().unwrap(),
            "echo.default.svc.cluster.local",
            "/out",
            &[],
        )
    });
    assert_eq!(
        (r.status, r.header("x-echo-server")),
        (200, Some("remote")),
        "{:?}",
        r.body
    );
    // Inbound: a client dials the pod's app port; the proxy forwards to the app from 127.0.0.6.
    let r = in_ns(&ns.name, || {
        get("10.213.0.5:8080".parse().unwrap(), "app", "/in", &[])
    });
    assert_eq!(
        (r.status, r.header("x-echo-server")),
        (200, Some("app")),
        "{:?}",
        r.body
    );
    let peer = r.json()["peer"].as_str().unwrap().to_string();
    assert!(peer.starts_with("127.0.0.6:"), "app saw {peer}");
    assert_eq!(
        r.header("server"),
        Some("istio-envoy"),
        "went through the proxy"
    );
}
