//! Telemetry fed by the data path, through the real binary: access-log fields and
//! Istio metric labels as the proxy fills them for real requests and connections.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

fn access_log(path: &str) -> Value {
    json!([{"name": "envoy.access_loggers.file", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": path, "logFormat": {"jsonFormat": {
            "response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%", "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
            "upstream_host": "%UPSTREAM_HOST%", "route_name": "%ROUTE_NAME%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
            "method": "%REQ(:METHOD)%", "protocol": "%PROTOCOL%", "request_id": "%REQ(X-REQUEST-ID)%",
            "response_code_details": "%RESPONSE_CODE_DETAILS%", "bytes_sent": "%BYTES_SENT%", "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%"}}}}])
}

fn read_lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "only {} access-log lines: {text}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn access_log_and_metrics_for_http_requests() {
    let echo = EchoServer::http("e");
    let dir = ironmesh_testkit::TempDir::new().unwrap();
    let log = dir.path().join("access.log");
    let mut listener = http_listener(8080, "r");
    listener["filterChains"][0]["filters"][0]["typedConfig"]["accessLog"] =
        access_log(&log.display().to_string());
    let cluster = {
        let mut c = eds_cluster(
            "outbound|80||e.default.svc.cluster.local",
            "ROUND_ROBIN",
            false,
        );
        c["metadata"] = json!({"filterMetadata": {"istio": {"services": [{"host": "e.default.svc.cluster.local", "name": "e", "namespace": "default"}]}}});
        c
    };
    let mut eps = endpoints("outbound|80||e.default.svc.cluster.local", &[echo.addr]);
    eps["endpoints"][0]["lbEndpoints"][0]["metadata"] =
        json!({"filterMetadata": {"istio": {"workload": "e-v1;default;e;v1;Kubernetes"}}});
    let cfg = config(
        vec![listener],
        vec![route_config(
            "r",
            json!([{"name": "v", "domains": ["e.default.svc.cluster.local"], "routes": [{"name": "default", "match": {"prefix": "/"}, "route": {"cluster": "outbound|80||e.default.svc.cluster.local", "timeout": "0s"}}]}]),
        )],
        vec![cluster],
        vec![eps],
    );
    let p = Proxy::with_config("router", &cfg, &["--bind-port", "8080=127.0.0.1:0"]);
    p.wait_ready();
    let addr = p.addr("0.0.0.0_8080");
    let ok = get(
        addr,
        "e.default.svc.cluster.local",
        "/ok",
        &[("x-request-id", "rid-1")],
    );
    assert_eq!(ok.status, 200);
    assert_eq!(get(addr, "nowhere", "/nr", &[]).status, 404);
    let lines = read_lines(&log, 2);
    let first = lines
        .iter()
        .find(|l| l["path"] == "/ok")
        .expect("line for /ok");
    assert_eq!(first["response_code"], 200);
    assert_eq!(first["response_flags"], "-");
    assert_eq!(
        first["upstream_cluster"],
        "outbound|80||e.default.svc.cluster.local"
    );
    assert_eq!(first["upstream_host"], echo.addr.to_string());
    assert_eq!(first["route_name"], "default");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["protocol"], "HTTP/1.1");
    assert_eq!(first["request_id"], "rid-1");
    assert_eq!(first["response_code_details"], "via_upstream");
    assert_eq!(first["bytes_sent"].as_u64(), Some(ok.body.len() as u64));
    assert!(
        first["upstream_local_address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{first}"
    );
    let nr = lines
        .iter()
        .find(|l| l["path"] == "/nr")
        .expect("line for /nr");
    assert_eq!(
        (nr["response_code"].as_u64(), nr["response_flags"].as_str()),
        (Some(404), Some("NR"))
    );
    assert_eq!(nr["response_code_details"], "route_not_found");

    let metrics = get(p.addr("prometheus"), "localhost", "/stats/prometheus", &[]);
    let text = String::from_utf8_lossy(&metrics.body);
    let series = text
        .lines()
        .find(|l| l.starts_with("istio_requests_total{") && l.contains("response_code=\"200\""))
        .unwrap_or_else(|| panic!("no 200 series in:\n{text}"));
    for label in [
        "reporter=\"source\"",
        "destination_workload=\"e-v1\"",
        "destination_service=\"e.default.svc.cluster.local\"",
        "destination_canonical_revision=\"v1\"",
        "response_flags=\"-\"",
    ] {
        assert!(series.contains(label), "{label} missing in {series}");
    }
    assert!(
        text.lines().any(|l| l.starts_with("istio_requests_total{")
            && l.contains("response_code=\"404\"")
            && l.contains("response_flags=\"NR\"")),
        "{text}"
    );
}
