//! End to end through `ironmesh up` with sidecars: the httpbin and bookinfo examples
//! (seeds 000, 001, 004) — capture, access logs on both sides, metrics, the ingress
//! gateway, proxy-status and the weighted reviews split.

mod local_support;

use std::time::Duration;

use local_support::*;
use serde_json::Value;

fn example(name: &str) -> String {
    examples_dir().join(name).to_str().unwrap().to_string()
}

/// The ingress gateway's forwarded port 80, from the state file.
fn gateway_url() -> String {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string("/run/ironmesh/state.json").unwrap())
            .unwrap();
    let local = state["forwards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "istio-ingressgateway:80")
        .expect("gateway port 80 forwarded")["local"]
        .as_str()
        .unwrap()
        .to_string();
    format!("http://{local}")
}

/// `curl` from the host: (status code, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-m", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn access_log(pod: &str, request_id: &str) -> Value {
    let found = eventually(Duration::from_secs(5), || {
        ok(&["logs", pod, "-c", "istio-proxy"])
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["request_id"] == request_id)
    });
    found.unwrap_or_else(|| panic!("no access log line for {request_id} in {pod}'s sidecar"))
}

fn metric(pod_ip: &str, reporter: &str) -> f64 {
    let (code, body) = curl(&[&format!("http://{pod_ip}:15090/stats/prometheus")]);
    assert_eq!(
        code, 200,
        "15090 reachable directly (excluded from capture)"
    );
    body.lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .filter(|l| l.contains(&format!("reporter=\"{reporter}\"")))
        .filter(|l| l.contains("destination_service=\"httpbin.istio-demo.svc.cluster.local\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn httpbin_through_sidecars_and_the_gateway() {
    if require_root("httpbin_through_sidecars_and_the_gateway").is_none() {
        return;
    }
    let (_mesh, out) = Mesh::up(&["--profile", "demo", "-f", &example("httpbin")]);
    assert!(out.contains("✔ ready in"), "{out}");
    let egress = pod_row("istio-egressgateway-");
    assert_eq!(
        &egress[0..4],
        ["istio-system", &egress[1], "1/1", "Running"],
        "demo adds the egress gateway"
    );
    let sleep = pod_row("sleep-");
    let httpbin = pod_row("httpbin-");
    assert_eq!(&sleep[2..4], ["2/2", "Running"], "{sleep:?}");
    assert_eq!(sleep[6], "istio-proxy");
    assert_eq!(&httpbin[2..4], ["2/2", "Running"], "{httpbin:?}");

    // The seed's call: by Service name, captured by both sidecars.
    let body = ok(&[
        "exec",
        "sleep",
        "-n",
        "istio-demo",
        "-c",
        "sleep",
        "--",
        "curl",
        "-sS",
        "-m",
        "10",
        "http://httpbin:8000/headers",
    ]);
    let headers: Value = serde_json::from_str(&body).expect("httpbin JSON");
    let request_id = headers["headers"]["X-Request-Id"]
        .as_str()
        .unwrap_or_else(|| panic!("no X-Request-Id: {body}"))
        .to_string();
    assert_eq!(headers["headers"]["Host"], "httpbin:8000");

    let out_log = access_log("sleep", &request_id);
    assert_eq!(
        out_log["upstream_cluster"], "outbound|8000||httpbin.istio-demo.svc.cluster.local",
        "{out_log}"
    );
    assert_eq!(out_log["response_code"], 200);
    assert_eq!(out_log["path"], "/headers");
    assert_eq!(out_log["authority"], "httpbin:8000");
    assert_eq!(out_log["upstream_host"], format!("{}:80", httpbin[5]));
    assert!(
        out_log["downstream_local_address"]
            .as_str()
            .unwrap()
            .starts_with("240.240."),
        "the VIP was captured: {out_log}"
    );
    let in_log = access_log("httpbin", &request_id);
    assert_eq!(in_log["upstream_cluster"], "inbound|80||", "{in_log}");
    assert_eq!(
        in_log["downstream_local_address"],
        format!("{}:80", httpbin[5])
    );
    assert!(in_log["downstream_remote_address"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}:", sleep[5])));

    // The agent's ports are excluded from capture and answer directly.
    let (code, _) = curl(&[&format!("http://{}:15021/healthz/ready", httpbin[5])]);
    assert_eq!(code, 200, "15021 readiness");
    let (code, _) = curl(&[&format!("http://{}:15020/stats/prometheus", httpbin[5])]);
    assert_eq!(code, 200, "15020 merged stats");

    // Both reporters count the call.
    assert!(
        metric(&sleep[5], "source") >= 1.0,
        "reporter=source on the client"
    );
    assert!(
        metric(&httpbin[5], "destination") >= 1.0,
        "reporter=destination on the server"
    );
    // The server's sidecar learns who called through Istio's metadata exchange headers.
    let (_, server_stats) = curl(&[&format!("http://{}:15090/stats/prometheus", httpbin[5])]);
    assert!(
        server_stats
            .lines()
            .any(|l| l.starts_with("istio_requests_total{")
                && l.contains("reporter=\"destination\"")
                && l.contains("source_workload=\"sleep\"")
                && l.contains("source_workload_namespace=\"istio-demo\"")),
        "reporter=destination names the calling workload:\n{server_stats}"
    );

    // The ingress gateway, forwarded to 127.0.0.1.
    let gw = gateway_url();
    let (code, body) = curl(&["-H", "Host: httpbin.example.com", &format!("{gw}/headers")]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("httpbin.example.com"), "{body}");
    let (code, _) = curl(&[&format!("{gw}/status/418")]);
    assert_eq!(code, 418, "httpbin's /status/418 through the gateway");

    // Every proxy acknowledged its config.
    let status = ok(&["proxy-status", "-v"]);
    let rows: Vec<&str> = status.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{status}");
    for row in rows {
        // The egress gateway has no routes to subscribe to (RDS IGNORED).
        assert!(row.matches("SYNCED").count() >= 3, "{row}");
        assert!(!row.contains("STALE") && !row.contains("NOT SENT"), "{row}");
    }

    // proxy-config by pod prefix, shaped like the seeds' tables.
    let routes = ok(&["proxy-config", "route", "sleep"]);
    assert!(
        routes.contains("httpbin.istio-demo.svc.cluster.local:8000"),
        "{routes}"
    );
    let clusters = ok(&["proxy-config", "cluster", "sleep"]);
    assert!(
        clusters.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols == [
                "httpbin.istio-demo.svc.cluster.local",
                "8000",
                "-",
                "outbound",
                "EDS",
            ]
        }),
        "{clusters}"
    );
    let endpoints = ok(&["proxy-config", "endpoint", "sleep", "-n", "istio-demo"]);
    assert!(
        endpoints
            .lines()
            .any(|l| l.starts_with(&format!("{}:80 ", httpbin[5]))
                && l.contains("HEALTHY")
                && l.contains("outbound|8000||httpbin.istio-demo.svc.cluster.local")),
        "{endpoints}"
    );

    // Applied live: a ServiceEntry host, which no hosts file names, resolves through
    // the sidecar's DNS proxy (port 53 captured) to an auto-allocated VIP and routes.
    let se_dir = std::env::temp_dir().join(format!("ironmesh-se-{}", std::process::id()));
    write_manifests(
        &se_dir,
        "se.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\nmetadata:\n  name: external-api\n  namespace: istio-demo\nspec:\n  hosts: [api.external.test]\n  ports:\n  - {{number: 80, name: http, protocol: HTTP}}\n  resolution: STATIC\n  location: MESH_EXTERNAL\n  endpoints:\n  - address: {}\n",
            httpbin[5]
        ),
    );
    ok(&["apply", "-f", se_dir.to_str().unwrap()]);
    let resolved = eventually(Duration::from_secs(20), || {
        let out = run(&[
            "exec",
            "sleep",
            "--",
            "getent",
            "hosts",
            "api.external.test",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.starts_with("240.240.").then_some(text)
    });
    assert!(
        resolved.is_some(),
        "api.external.test did not resolve to a VIP"
    );
    let code = ok(&[
        "exec",
        "sleep",
        "--",
        "curl",
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "x-request-id: se-call-1",
        "http://api.external.test/get",
    ]);
    assert_eq!(code, "200");
    let se_log = access_log("sleep", "se-call-1");
    assert_eq!(
        se_log["upstream_cluster"], "outbound|80||api.external.test",
        "{se_log}"
    );

    // The proxy's own traffic (uid 1337) is not captured: a call from the istio-proxy
    // container straight to httpbin's pod IP leaves no outbound log line in sleep's sidecar.
    let before = ok(&["logs", "sleep", "-c", "istio-proxy"])
        .lines()
        .filter(|l| l.contains("\"outbound|"))
        .count();
    let direct = format!("http://{}:80/get", httpbin[5]);
    ok(&[
        "exec",
        "sleep",
        "-c",
        "istio-proxy",
        "--",
        "curl",
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        &direct,
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let after = ok(&["logs", "sleep", "-c", "istio-proxy"])
        .lines()
        .filter(|l| l.contains("\"outbound|"))
        .count();
    assert_eq!(before, after, "uid 1337 traffic went through the sidecar");
}

#[test]
fn bookinfo_gateway_and_reviews_split() {
    if require_root("bookinfo_gateway_and_reviews_split").is_none() {
        return;
    }
    let (_mesh, _) = Mesh::up(&["-f", &example("bookinfo")]);
    let rows = pods();
    assert_eq!(
        rows.iter().filter(|r| r[0] == "default").count(),
        6,
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r[3] == "Running"), "{rows:?}");
    let gw = gateway_url();

    let (code, body) = curl(&[&format!("{gw}/productpage")]);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("Book Details") || body.contains("details"),
        "{body}"
    );
    let (code, _) = curl(&[&format!("{gw}/not-a-bookinfo-path")]);
    assert_eq!(
        code, 404,
        "paths outside the VirtualService's matches are not routed"
    );
    let (code, _) = curl(&[&format!("{gw}/api/v1/products")]);
    assert_eq!(code, 200);

    // seed 004: reviews 50/50 between v1 and v3, never v2. With n = 80 a fair coin
    // lands within 25..55 of 80 (±3.4 sd) except about once in 1,500 runs.
    let n = 80;
    let (mut v1, mut v3, mut other) = (0, 0, 0);
    for _ in 0..n {
        let (code, body) = curl(&[&format!("{gw}/productpage")]);
        assert_eq!(code, 200);
        if body.contains("reviews-v1-") {
            v1 += 1;
        } else if body.contains("reviews-v3-") {
            v3 += 1;
        } else {
            other += 1;
        }
    }
    assert_eq!(
        other, 0,
        "v2 or no reviews answered {other} times (v1 {v1}, v3 {v3})"
    );
    assert!((25..=55).contains(&v1), "v1 answered {v1} of {n}, v3 {v3}");
}
