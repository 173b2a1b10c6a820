//! `ironmesh proxy-status` and `ironmesh proxy-config`, driven through the real binary
//! against a fake control plane (a loopback HTTP server serving testdata/*.json), a
//! fake proxy admin port serving a config dump captured from Envoy 1.40, and — when the
//! Envoy binary is installed — a live Envoy.

#[path = "proxy_cli/support.rs"]
mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

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

#[test]
fn live_envoy_tables_match_the_captured_dump() {
    let envoy = envoy_binary();
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
