//! The binary driven over ADS by the testkit's fake control plane: node identity,
//! updates applied live, NACK keeping the last good config, surviving the control
//! plane going away and reconnecting.

mod support;

use std::time::{Duration, Instant};

use ironmesh_testkit::fake_ads::FakeAds;
use serde_json::{json, Value};
use support::*;

fn gateway_config(backend: std::net::SocketAddr, lb: &str) -> Value {
    config(
        vec![http_listener(8080, "r")],
        vec![route_config(
            "r",
            json!([{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "e", "timeout": "0s"}}]}]),
        )],
        vec![eds_cluster("e", lb, false)],
        vec![endpoints("e", &[backend])],
    )
}

fn start(ads: &FakeAds, extra: &[&str]) -> Proxy {
    let mut args = vec![
        "--discovery-address".to_string(),
        ads.addr.to_string(),
        "--bind-port".into(),
        "8080=127.0.0.1:0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let p = Proxy::spawn(
        "router",
        &args,
        ironmesh_testkit::TempDir::new().unwrap(),
        &[],
    );
    p.wait_ready();
    p
}

fn server_of(addr: std::net::SocketAddr) -> Option<String> {
    rt().block_on(send(addr, false, req(false, "h", "/", &[])))
        .ok()
        .and_then(|r| r.header("x-echo-server").map(str::to_string))
}

fn wait_server(addr: std::net::SocketAddr, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = server_of(addr);
        if got.as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {got:?}, wanted {want} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_scenario(extra: &[&str]) {
    let a = EchoServer::http("a");
    let b = EchoServer::http("b");
    let ads = FakeAds::start(
        "127.0.0.1:0".parse().unwrap(),
        &gateway_config(a.addr, "ROUND_ROBIN"),
    );
    let p = start(&ads, extra);
    assert!(
        ads.nodes()
            .iter()
            .any(|n| n == "router~127.0.0.1~test-pod-1234-abcd.default~default.svc.cluster.local"),
        "{:?}",
        ads.nodes()
    );
    let addr = p.addr("0.0.0.0_8080");
    assert_eq!(server_of(addr).as_deref(), Some("a"));

    // A cluster the proxy cannot honour: NACKed, the last good config keeps serving.
    ads.set(&gateway_config(a.addr, "MAGLEV"));
    let line = p.wait_line(Duration::from_secs(10), |l| {
        l.starts_with("config rejected type=Cluster")
    });
    assert!(line.contains("lb_policy MAGLEV is not supported"), "{line}");
    assert_eq!(server_of(addr).as_deref(), Some("a"));

    // A good update (new endpoints) is applied live.
    ads.set(&gateway_config(b.addr, "ROUND_ROBIN"));
    wait_server(addr, "b", Duration::from_secs(10));

    // Discovery goes away: traffic keeps flowing on the last good config.
    let listen = ads.addr;
    let generator = ads.stop();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        assert_eq!(server_of(addr).as_deref(), Some("b"));
    }
    // It comes back with different endpoints: the proxy reconnects and applies them.
    let ads = FakeAds::restart(listen, generator);
    ads.set(&gateway_config(a.addr, "ROUND_ROBIN"));
    wait_server(addr, "a", Duration::from_secs(30));
}

#[test]
fn delta_ads_updates_nack_and_reconnect() {
    run_scenario(&[]);
}

#[test]
fn sotw_ads_updates_nack_and_reconnect() {
    run_scenario(&["--sotw"]);
}

#[test]
fn config_swaps_keep_in_flight_requests_and_established_connections() {
    use std::io::{Read, Write};
    let a = EchoServer::http("a");
    let b = EchoServer::http("b");
    let t = EchoServer::tcp("t");
    let with = |backend: std::net::SocketAddr, tcp_cluster: &str| {
        let mut c = gateway_config(backend, "ROUND_ROBIN");
        c["listeners"]
            .as_array_mut()
            .unwrap()
            .push(tcp_listener(9000, tcp_cluster, json!({})));
        c["clusters"]
            .as_array_mut()
            .unwrap()
            .push(eds_cluster("t", "ROUND_ROBIN", false));
        c["endpoints"]
            .as_array_mut()
            .unwrap()
            .push(endpoints("t", &[t.addr]));
        c
    };
    let ads = FakeAds::start("127.0.0.1:0".parse().unwrap(), &with(a.addr, "t"));
    let p = start(&ads, &["--bind-port", "9000=127.0.0.1:0"]);
    let addr = p.addr("0.0.0.0_8080");
    let tcp_addr = p.addr("0.0.0.0_9000");
    // A slow request to `a` and an open TCP connection, then the config moves on.
    let slow = std::thread::spawn(move || get(addr, "h", "/delay/1500", &[]));
    let mut conn = std::net::TcpStream::connect(tcp_addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"before ").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // `a` leaves the endpoints and the TCP listener now points at a missing cluster.
    ads.set(&with(b.addr, "missing"));
    wait_server(addr, "b", Duration::from_secs(10));
    let r = slow.join().unwrap();
    assert_eq!(
        (r.status, r.header("x-echo-server")),
        (200, Some("a")),
        "in-flight request finished on the old host"
    );
    conn.write_all(b"after").unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).unwrap();
    assert_eq!(
        out, "t got 12 bytes: before after",
        "established TCP connection survived the swap"
    );
}
