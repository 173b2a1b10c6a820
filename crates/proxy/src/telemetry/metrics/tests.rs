use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};

use super::*;
use crate::telemetry::{ResponseFlags, Telemetry};

/// One parsed sample line: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, k: &str) -> &str {
        self.labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{} has no label {k}", self.name))
    }
}

/// A strict parser of the Prometheus text format: every line is a `# TYPE` comment
/// or `name{k="v",...} value`; anything else fails the test.
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut p = rest.split(' ');
            let (name, kind) = (p.next().unwrap(), p.next().unwrap());
            assert!(name.starts_with("istio_"), "{line}");
            assert!(["counter", "histogram", "gauge"].contains(&kind), "{line}");
            assert!(p.next().is_none(), "{line}");
            continue;
        }
        let brace = line
            .find('{')
            .unwrap_or_else(|| panic!("no labels: {line}"));
        let name = &line[..brace];
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let body: Vec<char> = line[brace + 1..].chars().collect();
        let mut labels = Vec::new();
        let mut i = 0;
        while body.get(i) != Some(&'}') {
            let key: String = body[i..].iter().take_while(|c| **c != '=').collect();
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            i += key.chars().count();
            assert_eq!(body.get(i..i + 2), Some(&['=', '"'][..]), "{line}");
            i += 2;
            let mut value = String::new();
            loop {
                match body
                    .get(i)
                    .unwrap_or_else(|| panic!("unterminated: {line}"))
                {
                    '\\' => {
                        i += 1;
                        value.push(if body[i] == 'n' { '\n' } else { body[i] });
                    }
                    '"' => break,
                    c => value.push(*c),
                }
                i += 1;
            }
            i += 1;
            labels.push((key, value));
            match body.get(i) {
                Some(',') => i += 1,
                Some('}') => {}
                _ => panic!("expected ',' or '}}' in {line}"),
            }
        }
        let rest: String = body[i + 1..].iter().collect();
        let value = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        out.push(Sample {
            name: name.to_string(),
            labels,
            value: value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line}")),
        });
    }
    out
}

fn meta(workload: &str, ns: &str, app: &str, version: &str) -> PeerMetadata {
    PeerMetadata {
        workload: workload.into(),
        namespace: ns.into(),
        cluster: "Kubernetes".into(),
        service_account: workload.into(),
        labels: [("app", app), ("version", version)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
    .with_derived_labels()
}

fn request(direction: Direction, peer: Option<PeerMetadata>) -> StreamInfo {
    StreamInfo {
        direction,
        protocol: Some("HTTP/1.1"),
        response_code: 200,
        duration: Duration::from_millis(7),
        bytes_received: 20,
        bytes_sent: 508,
        authority: Some("ratings:9080".into()),
        destination_service: Some("ratings.bookinfo.svc.cluster.local".into()),
        peer: peer.map(Arc::new),
        ..Default::default()
    }
}

fn samples(t: &Telemetry, name: &str) -> Vec<Sample> {
    parse(&t.render_prometheus())
        .into_iter()
        .filter(|s| s.name == name)
        .collect()
}

#[test]
fn outbound_labels_are_istios_in_order() {
    let t = Telemetry::new(meta("productpage-v1", "bookinfo", "productpage", "v1"));
    let mut info = request(
        Direction::Outbound,
        Some(meta("ratings-v1", "bookinfo", "ratings", "v1")),
    );
    t.record(&info, &Default::default());
    t.record(&info, &Default::default());
    let s = samples(&t, "istio_requests_total");
    assert_eq!(s.len(), 1, "one series for two identical requests");
    assert_eq!(s[0].value, 2.0);
    let names: Vec<&str> = s[0].labels.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, HTTP_LABELS.to_vec());
    let want = [
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("source_canonical_service", "productpage"),
        ("source_canonical_revision", "v1"),
        ("source_workload_namespace", "bookinfo"),
        ("source_principal", "unknown"),
        ("source_app", "productpage"),
        ("source_version", "v1"),
        ("source_cluster", "Kubernetes"),
        ("destination_workload", "ratings-v1"),
        ("destination_workload_namespace", "bookinfo"),
        ("destination_principal", "unknown"),
        ("destination_app", "ratings"),
        ("destination_version", "v1"),
        ("destination_service", "ratings.bookinfo.svc.cluster.local"),
        ("destination_canonical_service", "ratings"),
        ("destination_canonical_revision", "v1"),
        ("destination_service_name", "ratings"),
        ("destination_service_namespace", "bookinfo"),
        ("destination_cluster", "Kubernetes"),
        ("request_protocol", "http"),
        ("response_code", "200"),
        ("grpc_response_status", ""),
        ("response_flags", "-"),
        ("connection_security_policy", "unknown"),
    ];
    for (k, v) in want {
        assert_eq!(s[0].label(k), v, "{k}");
    }
    // A different response code is a different series.
    info.response_code = 503;
    info.flags = ResponseFlags::from_bits(ResponseFlags::UH);
    t.record(&info, &Default::default());
    let s = samples(&t, "istio_requests_total");
    assert_eq!(s.len(), 2);
    let uh = s
        .iter()
        .find(|s| s.label("response_code") == "503")
        .unwrap();
    assert_eq!(uh.label("response_flags"), "UH");
    assert_eq!(uh.value, 1.0);
}

#[test]
fn inbound_labels_take_the_peer_as_source() {
    let t = Telemetry::new(meta("ratings-v1", "bookinfo", "ratings", "v1"));
    let mut info = request(
        Direction::Inbound,
        Some(meta("reviews-v2", "bookinfo", "reviews", "v2")),
    );
    info.mutual_tls = true;
    info.peer_principal = Some("spiffe://cluster.local/ns/bookinfo/sa/reviews".into());
    info.local_principal = Some("spiffe://cluster.local/ns/bookinfo/sa/ratings".into());
    t.record(&info, &Default::default());
    let s = &samples(&t, "istio_requests_total")[0];
    assert_eq!(s.label("reporter"), "destination");
    assert_eq!(s.label("source_workload"), "reviews-v2");
    assert_eq!(s.label("source_version"), "v2");
    assert_eq!(
        s.label("source_principal"),
        "spiffe://cluster.local/ns/bookinfo/sa/reviews"
    );
    assert_eq!(s.label("destination_workload"), "ratings-v1");
    assert_eq!(
        s.label("destination_principal"),
        "spiffe://cluster.local/ns/bookinfo/sa/ratings"
    );
    assert_eq!(s.label("connection_security_policy"), "mutual_tls");
    info.mutual_tls = false;
    info.peer = None;
    t.record(&info, &Default::default());
    let plain = samples(&t, "istio_requests_total")
        .into_iter()
        .find(|s| s.label("connection_security_policy") == "none")
        .expect("plaintext series");
    assert_eq!(plain.label("source_workload"), "unknown");
    assert_eq!(plain.label("source_canonical_revision"), "unknown");
    assert_eq!(plain.label("source_principal"), "unknown");
}

#[test]
fn unknown_destination_service_falls_back_to_authority() {
    let t = Telemetry::new(meta("sleep", "default", "sleep", "v1"));
    let mut info = request(Direction::Outbound, None);
    info.destination_service = None;
    info.authority = Some("httpbin.org".into());
    t.record(&info, &Default::default());
    let s = &samples(&t, "istio_requests_total")[0];
    assert_eq!(s.label("destination_service"), "httpbin.org");
    assert_eq!(s.label("destination_service_name"), "httpbin.org");
    assert_eq!(s.label("destination_service_namespace"), "unknown");
    assert_eq!(s.label("destination_workload"), "unknown");
    // The fallback keeps the port, as Istio's does.
    info.authority = Some("127.0.0.1:8080".into());
    t.record(&info, &Default::default());
    let s = samples(&t, "istio_requests_total")
        .into_iter()
        .find(|s| s.label("destination_service") == "127.0.0.1:8080")
        .unwrap();
    assert_eq!(s.label("destination_service_name"), "127.0.0.1:8080");
}

#[test]
fn grpc_requests_are_labelled_grpc() {
    let t = Telemetry::new(meta("a", "ns", "a", "v1"));
    let mut info = request(Direction::Outbound, None);
    info.protocol = Some("HTTP/2");
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/grpc"));
    info.request_headers = Some(Arc::new(h));
    info.grpc_status = Some(14);
    info.request_messages = Some(3);
    info.response_messages = Some(5);
    t.record(&info, &Default::default());
    t.record(&info, &Default::default());
    let s = &samples(&t, "istio_requests_total")[0];
    assert_eq!(s.label("request_protocol"), "grpc");
    assert_eq!(s.label("grpc_response_status"), "14");
    assert_eq!(samples(&t, "istio_request_messages_total")[0].value, 6.0);
    assert_eq!(samples(&t, "istio_response_messages_total")[0].value, 10.0);
    // Plain HTTP series get no message counters.
    let plain = request(Direction::Outbound, None);
    t.record(&plain, &Default::default());
    assert_eq!(samples(&t, "istio_requests_total").len(), 2);
    assert_eq!(samples(&t, "istio_request_messages_total").len(), 1);
}

#[test]
fn histograms_are_cumulative_with_envoy_bounds() {
    let t = Telemetry::new(meta("a", "ns", "a", "v1"));
    for ms in [0u64, 3, 7, 4000, 4_000_000] {
        let mut info = request(Direction::Outbound, None);
        info.duration = Duration::from_millis(ms);
        t.record(&info, &Default::default());
    }
    let d = samples(&t, "istio_request_duration_milliseconds_bucket");
    let le = |b: &str| {
        d.iter()
            .find(|s| s.label("le") == b)
            .unwrap_or_else(|| panic!("le={b}"))
            .value
    };
    assert_eq!(le("0.5"), 1.0);
    assert_eq!(le("5"), 2.0);
    assert_eq!(le("10"), 3.0);
    assert_eq!(le("5000"), 4.0);
    assert_eq!(le("3600000"), 4.0);
    assert_eq!(le("+Inf"), 5.0);
    assert_eq!(d.len(), 20);
    let bounds: Vec<&str> = d.iter().map(|s| s.label("le")).collect();
    assert_eq!(
        bounds,
        [
            "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
            "10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"
        ]
    );
    assert_eq!(
        samples(&t, "istio_request_duration_milliseconds_count")[0].value,
        5.0
    );
    assert_eq!(
        samples(&t, "istio_request_duration_milliseconds_sum")[0].value,
        4_004_010.0
    );
    assert_eq!(
        samples(&t, "istio_response_bytes_sum")[0].value,
        5.0 * 508.0
    );
    assert_eq!(samples(&t, "istio_request_bytes_count")[0].value, 5.0);
}

#[test]
fn tcp_metrics_have_no_response_code() {
    let t = Telemetry::new(meta("client", "ns", "client", "v1"));
    let mut conn = StreamInfo {
        protocol: None,
        bytes_received: 100,
        bytes_sent: 42,
        destination_service: Some("mysql.db.svc.cluster.local".into()),
        peer: Some(Arc::new(meta("mysql-0", "db", "mysql", "8"))),
        ..Default::default()
    };
    t.record_tcp_open(&conn);
    let opened = samples(&t, "istio_tcp_connections_opened_total");
    assert_eq!(opened[0].value, 1.0);
    assert_eq!(
        samples(&t, "istio_tcp_connections_closed_total")[0].value,
        0.0
    );
    conn.tcp_open_reported = true;
    t.record(&conn, &Default::default());
    // A second connection never announced at open counts as opened at close.
    let mut other = conn.clone();
    other.tcp_open_reported = false;
    t.record(&other, &Default::default());
    let s = &samples(&t, "istio_tcp_connections_opened_total")[0];
    assert_eq!(s.value, 2.0);
    assert!(s
        .labels
        .iter()
        .all(|(k, _)| k != "response_code" && k != "grpc_response_status"));
    assert_eq!(s.labels.len(), 23);
    assert_eq!(s.label("request_protocol"), "tcp");
    assert_eq!(s.label("destination_service_namespace"), "db");
    assert_eq!(
        samples(&t, "istio_tcp_connections_closed_total")[0].value,
        2.0
    );
    assert_eq!(samples(&t, "istio_tcp_sent_bytes_total")[0].value, 84.0);
    assert_eq!(
        samples(&t, "istio_tcp_received_bytes_total")[0].value,
        200.0
    );
    assert!(samples(&t, "istio_requests_total").is_empty());
}

#[test]
fn label_values_are_escaped() {
    let t = Telemetry::new(meta("a", "ns", "a", "v1"));
    let mut info = request(Direction::Outbound, None);
    info.destination_service = None;
    info.authority = Some("we\"ird\\host".into());
    t.record(&info, &Default::default());
    let s = &samples(&t, "istio_requests_total")[0];
    assert_eq!(s.label("destination_service"), "we\"ird\\host");
}

#[test]
fn build_info_is_always_present() {
    let t = Telemetry::new(PeerMetadata::default());
    let b = samples(&t, "istio_build");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].label("component"), "proxy");
    assert_eq!(b[0].value, 1.0);
}

#[test]
fn envoy_double_has_no_exponent() {
    assert_eq!(envoy_double(0.5), "0.5");
    assert_eq!(envoy_double(600000.0), "600000");
    assert_eq!(envoy_double(1_800_000.0), "1800000");
}

#[test]
fn series_are_bounded() {
    let t = Telemetry::with_series_limit(meta("gw", "ns", "gw", "v1"), 100);
    let mut info = request(Direction::Outbound, None);
    info.destination_service = None;
    for i in 0..110 {
        info.authority = Some(format!("host-{i}.example"));
        t.record(&info, &Default::default());
    }
    assert_eq!(t.metrics_overflow(), 10);
    // Known series keep counting.
    info.authority = Some("host-0.example".into());
    t.record(&info, &Default::default());
    assert_eq!(t.metrics_overflow(), 10);
    let text = t.render_prometheus();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("istio_requests_total{")
                && l.contains("destination_service=\"host-0.example\"")
        })
        .unwrap();
    assert!(line.ends_with(" 2"), "{line}");
}

#[test]
fn replicas_share_a_series() {
    let t = Telemetry::new(meta("productpage-v1", "bookinfo", "productpage", "v1"));
    for hash in ["aaa", "bbb"] {
        let mut peer = meta("ratings-v1", "bookinfo", "ratings", "v1");
        peer.labels.insert("pod-template-hash".into(), hash.into());
        t.record(
            &request(Direction::Outbound, Some(peer)),
            &Default::default(),
        );
    }
    let s = samples(&t, "istio_requests_total");
    assert_eq!(
        s.len(),
        1,
        "pod labels that are not metric labels must not split series"
    );
    assert_eq!(s[0].value, 2.0);
}

#[test]
fn outbound_mtls_principals_and_no_duplicate_series() {
    let t = Telemetry::new(meta("productpage-v1", "bookinfo", "productpage", "v1"));
    let mut info = request(
        Direction::Outbound,
        Some(meta("ratings-v1", "bookinfo", "ratings", "v1")),
    );
    info.mutual_tls = true;
    info.local_principal = Some("spiffe://cluster.local/ns/bookinfo/sa/productpage".into());
    info.peer_principal = Some("spiffe://cluster.local/ns/bookinfo/sa/ratings".into());
    t.record(&info, &Default::default());
    let s = &samples(&t, "istio_requests_total")[0];
    assert_eq!(
        s.label("source_principal"),
        "spiffe://cluster.local/ns/bookinfo/sa/productpage"
    );
    assert_eq!(
        s.label("destination_principal"),
        "spiffe://cluster.local/ns/bookinfo/sa/ratings"
    );
    assert_eq!(s.label("connection_security_policy"), "unknown");
    // Plaintext with and without principals known, and mTLS without principals: all
    // render the same labels, so they must be one series.
    let mut plain = info.clone();
    plain.mutual_tls = false;
    t.record(&plain, &Default::default());
    plain.peer_principal = None;
    plain.local_principal = None;
    t.record(&plain, &Default::default());
    plain.mutual_tls = true;
    t.record(&plain, &Default::default());
    // Same labels through the authority fallback as through destination_service.
    plain.destination_service = None;
    plain.authority = Some("ratings.bookinfo.svc.cluster.local".into());
    t.record(&plain, &Default::default());
    let all = samples(&t, "istio_requests_total");
    assert_eq!(all.len(), 2, "{all:?}");
    let unknown = all
        .iter()
        .find(|s| s.label("source_principal") == "unknown")
        .unwrap();
    assert_eq!(unknown.value, 4.0);
    let text = t.render_prometheus();
    let mut series: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit_once(' ').unwrap().0)
        .collect();
    let n = series.len();
    series.sort();
    series.dedup();
    assert_eq!(series.len(), n, "no series appears twice");
}

#[test]
fn without_access_logs_only_the_grpc_content_type_is_kept() {
    let none = crate::telemetry::AccessLogs::default();
    let mut h = HeaderMap::new();
    h.insert("x-request-id", HeaderValue::from_static("abc"));
    assert!(crate::telemetry::request_headers_for(&none, &h).is_none());
    assert!(crate::telemetry::response_headers_for(&none, &h).is_none());
    h.insert(
        "content-type",
        HeaderValue::from_static("application/grpc+proto"),
    );
    let kept = crate::telemetry::request_headers_for(&none, &h).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept["content-type"], "application/grpc+proto");
}

#[test]
fn counts_from_every_worker_thread_are_summed() {
    // Workers count into slots of their own; the exposition must still show one series
    // with the total, histograms included.
    let t = Arc::new(Telemetry::new(meta("a", "ns", "a", "v1")));
    let workers = crate::dataplane::workers::Workers::start(2).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..6 {
        let (t, tx) = (t.clone(), tx.clone());
        workers.spawn(async move {
            let slot = crate::dataplane::workers::slot();
            t.record(&request(Direction::Outbound, None), &Default::default());
            tx.send(slot).unwrap();
        });
    }
    let mut slots: Vec<usize> = (0..6).map(|_| rx.recv().unwrap()).collect();
    slots.sort();
    slots.dedup();
    assert_eq!(slots, [1, 2], "each worker has a slot of its own");
    // And one from this thread (slot 0).
    t.record(&request(Direction::Outbound, None), &Default::default());
    let total = samples(&t, "istio_requests_total");
    assert_eq!(total.len(), 1, "{total:?}");
    assert_eq!(total[0].value, 7.0);
    assert_eq!(
        samples(&t, "istio_response_bytes_sum")[0].value,
        7.0 * 508.0
    );
    let inf = samples(&t, "istio_request_duration_milliseconds_bucket");
    assert_eq!(
        inf.iter().find(|s| s.label("le") == "+Inf").unwrap().value,
        7.0
    );
}
