//! Process lifecycle through the real binary: readiness, drain on SIGTERM, bad config.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

fn simple(echo: &EchoServer) -> serde_json::Value {
    config(
        vec![http_listener(8080, "r")],
        vec![route_config(
            "r",
            json!([{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "e", "timeout": "0s"}}]}]),
        )],
        vec![eds_cluster("e", "ROUND_ROBIN", false)],
        vec![endpoints("e", &[echo.addr])],
    )
}

/// A router on `simple` config, ready, its listener on a free loopback port.
fn ready_router(echo: &EchoServer) -> Proxy {
    let p = Proxy::with_config(
        "router",
        &simple(echo),
        &["--bind-port", "8080=127.0.0.1:0"],
    );
    p.wait_ready();
    p
}

#[test]
fn readiness_reports_ready_after_config() {
    let echo = EchoServer::http("e");
    let p = ready_router(&echo);
    let ready = p.addr("readiness");
    let r = get(ready, "localhost", "/healthz/ready", &[]);
    assert_eq!(r.status, 200);
    assert!(
        p.lines()
            .iter()
            .any(|l| l.starts_with("config applied type=Listener version=file resources=1")),
        "{:?}",
        p.lines()
    );
}

#[test]
fn sigterm_drains_in_flight_requests_and_stops_accepting() {
    let echo = EchoServer::http("e");
    let mut p = ready_router(&echo);
    let addr = p.addr("0.0.0.0_8080");
    assert_eq!(get(addr, "h", "/", &[]).status, 200);
    let slow = std::thread::spawn(move || get(addr, "h", "/delay/1500", &[]));
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    p.sigterm();
    p.wait_line(Duration::from_secs(5), |l| l == "draining");
    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if std::net::TcpStream::connect(addr).is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "listener still accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = slow.join().unwrap();
    assert_eq!(
        r.status, 200,
        "the in-flight request completes during the drain"
    );
    assert_eq!(r.header("connection"), Some("close"));
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "proxy did not exit after the drain"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // Exits when the last connection is gone, before the 3 s drain duration.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn unsupported_config_is_rejected_with_the_reason() {
    let echo = EchoServer::http("e");
    let mut cfg = simple(&echo);
    cfg["clusters"][0]["lbPolicy"] = json!("MAGLEV");
    let mut p = Proxy::with_config("router", &cfg, &[]);
    let status = p.child.wait().unwrap();
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(100));
    let err = p.stderr.0.lock().unwrap().join("\n");
    assert!(
        err.contains("Cluster \"e\"") && err.contains("lb_policy MAGLEV is not supported"),
        "{err}"
    );
}

/// The proxy re-executes itself once with mimalloc's memory-returning settings (same
/// PID); a user's own value is kept.
#[test]
fn runs_with_the_allocator_settings_in_its_environment() {
    let echo = EchoServer::http("e");
    let p = ready_router(&echo);
    let environ = std::fs::read(format!("/proc/{}/environ", p.child.id())).unwrap();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    for want in ["MIMALLOC_PURGE_DELAY=0", "MIMALLOC_ARENA_EAGER_COMMIT=0"] {
        assert!(vars.iter().any(|v| v == want), "{want} missing: {vars:?}");
    }
    // Still serving after the re-exec.
    assert_eq!(get(p.addr("0.0.0.0_8080"), "h", "/", &[]).status, 200);
}
