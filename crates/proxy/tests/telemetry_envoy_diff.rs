//! Differential: real Envoy 1.40 serves requests (200 through a cluster, 404 NR, 503 UF,
//! and a TCP proxy connection) with Istio's TEXT and JSON access logs, compiled from
//! the same xDS `AccessLog` protos we feed `AccessLogs::from_xds`. Every Envoy JSON line
//! is turned into a `StreamInfo`; our TEXT rendering must equal Envoy's TEXT line byte
//! for byte and our JSON rendering must equal Envoy's JSON (same keys, values, types).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use ironmesh_proxy::telemetry::{AccessLogs, ResponseFlags, StreamInfo};
use ironmesh_testkit::envoy::Envoy;
use ironmesh_testkit::net::free_ports;
use ironmesh_testkit::TempDir;
use ironmesh_xds::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
use ironmesh_xds::pb::envoy::config::core::v3::{
    data_source, substitution_format_string, DataSource, SubstitutionFormatString,
    TypedExtensionConfig,
};
use ironmesh_xds::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use ironmesh_xds::pb::google::protobuf::{value, Any, Struct, Value};
use prost::{Message, Name};
use serde_json::json;

const ISTIO_TEXT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

const JSON_FIELDS: &[(&str, &str)] = &[
    ("start_time", "%START_TIME%"),
    ("route_name", "%ROUTE_NAME%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("protocol", "%PROTOCOL%"),
    ("response_code", "%RESPONSE_CODE%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
    (
        "connection_termination_details",
        "%CONNECTION_TERMINATION_DETAILS%",
    ),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("duration", "%DURATION%"),
    (
        "upstream_service_time",
        "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    ),
    ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
    ("user_agent", "%REQ(USER-AGENT)%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("authority", "%REQ(:AUTHORITY)%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"),
    ("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"),
    ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
    ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
    ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
    (
        "upstream_transport_failure_reason",
        "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    ),
    // Beyond Istio's keys: operators whose JSON typing matters.
    ("downstream_local_port", "%DOWNSTREAM_LOCAL_PORT%"),
    (
        "upstream_host_no_port",
        "%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
    ),
    ("flags_long", "%RESPONSE_FLAGS_LONG%"),
    ("ua_prefix", "%REQ(USER-AGENT):4%"),
    ("mixed", "code=%RESPONSE_CODE()% 100%% route=%ROUTE_NAME%"),
    // Inputs read back into the StreamInfo (so only their typing is compared).
    ("start_ns", "%START_TIME(%s.%9f)%"),
    ("request_duration", "%REQUEST_DURATION%"),
    ("response_duration", "%RESPONSE_DURATION%"),
    ("response_tx_duration", "%RESPONSE_TX_DURATION%"),
    ("connection_id", "%CONNECTION_ID%"),
    ("attempts", "%UPSTREAM_REQUEST_ATTEMPT_COUNT%"),
    ("scheme", "%REQ(:SCHEME)%"),
    // Derived from the inputs: values must match too.
    (
        "start_custom",
        "%START_TIME(%Y/%m/%d %H:%M:%S.%6f %j %a %z)%",
    ),
    ("start_epoch", "%START_TIME(%s)%"),
    ("path_no_query", "%REQ_WITHOUT_QUERY(:PATH)%"),
    ("hostname", "%HOSTNAME%"),
    ("upstream_protocol", "%UPSTREAM_PROTOCOL%"),
    ("upstream_local_port", "%UPSTREAM_LOCAL_PORT%"),
    ("upstream_remote_port", "%UPSTREAM_REMOTE_PORT%"),
    ("remote_no_port", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
    ("req_ct", "%REQ(CONTENT-TYPE)%"),
    ("resp_grpc", "%RESP(GRPC-STATUS)%"),
    ("grpc", "%GRPC_STATUS%"),
    ("grpc_snake", "%GRPC_STATUS(SNAKE_STRING)%"),
    ("grpc_number", "%GRPC_STATUS(NUMBER)%"),
    ("dynamic", "%DYNAMIC_METADATA(foo:bar)%"),
    ("path_op", "%PATH%"),
    ("path_nq", "%PATH(NQ)%"),
    ("path_orig", "%PATH(WQ:ORIG):4%"),
    ("trace", "%TRACE_ID%"),
    ("stream_id", "%STREAM_ID%"),
    ("vcluster", "%VIRTUAL_CLUSTER_NAME%"),
    ("log_type", "%ACCESS_LOG_TYPE%"),
    ("env", "%ENVIRONMENT(HOME):5%"),
];

fn file_log(path: &Path, format: substitution_format_string::Format) -> AccessLog {
    // Envoy only knows REQ_WITHOUT_QUERY through this formatter extension.
    let req_without_query = TypedExtensionConfig {
        name: "envoy.formatter.req_without_query".into(),
        typed_config: Some(Any {
            type_url: "type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery".into(),
            value: vec![],
        }),
    };
    let file = FileAccessLog {
        path: path.display().to_string(),
        access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(
            SubstitutionFormatString {
                format: Some(format),
                formatters: vec![req_without_query],
                ..Default::default()
            },
        )),
    };
    AccessLog {
        name: "envoy.access_loggers.file".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(Any {
            type_url: FileAccessLog::type_url(),
            value: file.encode_to_vec(),
        })),
        ..Default::default()
    }
}

fn loggers(dir: &Path, tag: &str) -> Vec<AccessLog> {
    let text = substitution_format_string::Format::TextFormatSource(DataSource {
        specifier: Some(data_source::Specifier::InlineString(ISTIO_TEXT.into())),
        ..Default::default()
    });
    let json = substitution_format_string::Format::JsonFormat(Struct {
        fields: JSON_FIELDS
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Value {
                        kind: Some(value::Kind::StringValue(v.to_string())),
                    },
                )
            })
            .collect(),
    });
    vec![
        file_log(&dir.join(format!("{tag}.text.log")), text),
        file_log(&dir.join(format!("{tag}.json.log")), json),
    ]
}

/// A keep-alive HTTP/1.1 backend answering every request with `hello`.
fn backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nhello";
                        if conn.write_all(resp).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn http_get(port: u16, path: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: diff.example:{port}\r\nUser-Agent: diff-test/1.0\r\n{extra}Connection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn admin_post(admin: SocketAddr, path: &str) {
    let mut s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "POST {path}: {out}");
}

fn sa(v: &serde_json::Value) -> Option<SocketAddr> {
    v.as_str()
        .map(|s| s.parse().unwrap_or_else(|e| panic!("address {s}: {e}")))
}

fn st(v: &serde_json::Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// `2026-11-22T02:10:04.154Z` → SystemTime.
fn parse_time(s: &str) -> SystemTime {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (hh, mm, ss, ms) = (n(11, 13), n(14, 16), n(17, 19), n(20, 23));
    // Days from civil (Howard Hinnant), independent of the code under test.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    UNIX_EPOCH + Duration::from_secs(secs as u64) + Duration::from_millis(ms as u64)
}

/// The StreamInfo Envoy's JSON line describes.
fn info_from_envoy(j: &serde_json::Value) -> StreamInfo {
    let mut req = HeaderMap::new();
    for (key, header) in [
        ("user_agent", "user-agent"),
        ("request_id", "x-request-id"),
        ("x_forwarded_for", "x-forwarded-for"),
        ("req_ct", "content-type"),
    ] {
        if let Some(v) = j[key].as_str() {
            req.insert(header, HeaderValue::from_str(v).unwrap());
        }
    }
    let mut resp = HeaderMap::new();
    if let Some(v) = j["upstream_service_time"].as_str() {
        resp.insert(
            "x-envoy-upstream-service-time",
            HeaderValue::from_str(v).unwrap(),
        );
    }
    if let Some(v) = j["resp_grpc"].as_str() {
        resp.insert("grpc-status", HeaderValue::from_str(v).unwrap());
    }
    let protocol = match j["protocol"].as_str() {
        Some("HTTP/1.1") => Some("HTTP/1.1"),
        Some("HTTP/2") => Some("HTTP/2"),
        Some("HTTP/1.0") => Some("HTTP/1.0"),
        None => None,
        Some(other) => panic!("protocol {other}"),
    };
    let ms = |k: &str| j[k].as_u64().map(Duration::from_millis);
    let start = j["start_ns"].as_str().expect("start_ns");
    let (secs, nanos) = start.split_once('.').unwrap();
    let start_time = UNIX_EPOCH + Duration::new(secs.parse().unwrap(), nanos.parse().unwrap());
    assert_eq!(
        parse_time(j["start_time"].as_str().unwrap()),
        UNIX_EPOCH
            + Duration::from_millis(
                start_time.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
            )
    );
    StreamInfo {
        start_time: Some(start_time),
        request_duration: ms("request_duration"),
        response_duration: ms("response_duration"),
        response_tx_duration: ms("response_tx_duration"),
        connection_id: j["connection_id"]
            .as_u64()
            .expect("connection_id is a number"),
        attempt_count: j["attempts"].as_u64().map(|n| n as u32),
        scheme: st(&j["scheme"]).map(Into::into),
        // HTTP derives it from x-request-id; TCP connections carry their own.
        stream_id: if protocol.is_none() {
            st(&j["stream_id"])
        } else {
            None
        },
        duration: Duration::from_millis(j["duration"].as_u64().expect("duration is a number")),
        protocol,
        request_headers: protocol.map(|_| Arc::new(req)),
        response_headers: Some(Arc::new(resp)),
        method: st(&j["method"]).map(Into::into),
        path: st(&j["path"]),
        authority: st(&j["authority"]),
        response_code: j["response_code"]
            .as_u64()
            .expect("response_code is a number") as u16,
        response_code_details: st(&j["response_code_details"]).map(Into::into),
        connection_termination_details: st(&j["connection_termination_details"]),
        flags: ResponseFlags::from_short(j["response_flags"].as_str().unwrap())
            .expect("known flags"),
        bytes_received: j["bytes_received"].as_u64().expect("a number"),
        bytes_sent: j["bytes_sent"].as_u64().expect("a number"),
        upstream_host: sa(&j["upstream_host"]),
        upstream_cluster: st(&j["upstream_cluster"]),
        upstream_local_address: sa(&j["upstream_local_address"]),
        upstream_transport_failure_reason: st(&j["upstream_transport_failure_reason"]),
        downstream_local_address: sa(&j["downstream_local_address"]),
        downstream_remote_address: sa(&j["downstream_remote_address"]),
        requested_server_name: st(&j["requested_server_name"]),
        route_name: st(&j["route_name"]),
        ..Default::default()
    }
}

fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} lines, want {n}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn our_access_log_lines_equal_envoys() {
    let dir = TempDir::new().unwrap();
    let backend = backend();
    // Envoy binds its listeners after this returns: ports outside the ephemeral range.
    let [dead, http_port, tcp_port] = free_ports(3)[..] else {
        unreachable!()
    };
    let http_logs = loggers(dir.path(), "http");
    let tcp_logs = loggers(dir.path(), "tcp");
    let to_json = |l: &[AccessLog]| {
        l.iter()
            .map(|a| ironmesh_xds::message_to_json(a).unwrap())
            .collect::<Vec<_>>()
    };
    let cluster = |name: &str, port: u16| {
        json!({"name": name, "type": "STATIC", "connect_timeout": "1s",
               "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}})
    };
    let bootstrap = json!({
        "static_resources": {
            "listeners": [
                {"name": "http", "address": {"socket_address": {"address": "127.0.0.1", "port_value": http_port}},
                 "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "diff",
                    "access_log": to_json(&http_logs),
                    "route_config": {"name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                        {"name": "default", "match": {"prefix": "/ok"}, "route": {"cluster": "backend"}},
                        {"match": {"prefix": "/uf"}, "route": {"cluster": "dead"}},
                        {"match": {"prefix": "/grpc14"}, "direct_response": {"status": 200},
                         "response_headers_to_add": [{"header": {"key": "grpc-status", "value": "14"}}]},
                        {"match": {"prefix": "/grpc503"}, "direct_response": {"status": 503}}]}]},
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
                 }}]}]},
                {"name": "tcp", "address": {"socket_address": {"address": "127.0.0.1", "port_value": tcp_port}},
                 "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                    "stat_prefix": "tcp", "cluster": "backend", "access_log": to_json(&tcp_logs)
                 }}]}]}
            ],
            "clusters": [cluster("backend", backend.port()), cluster("dead", dead)]
        }
    });
    let envoy = Envoy::start_with_bootstrap(&bootstrap);
    // Probe only the HTTP listener: a TCP probe would be logged by the TCP proxy.
    // Both static listeners are bound together.
    assert!(
        envoy.wait_for(
            |_| TcpStream::connect(("127.0.0.1", http_port)).is_ok(),
            Duration::from_secs(20)
        ),
        "envoy listeners up\n{}",
        envoy.logs()
    );
    // Our side compiles the very same protos.
    let ours_http = AccessLogs::from_xds(&http_logs).expect("ours compiles what Envoy accepted");
    let ours_tcp = AccessLogs::from_xds(&tcp_logs).expect("ours compiles what Envoy accepted");

    assert!(
        http_get(http_port, "/ok/x?q=1", "X-Forwarded-For: 10.213.0.9\r\n")
            .starts_with("HTTP/1.1 200")
    );
    assert!(http_get(http_port, "/nope", "").starts_with("HTTP/1.1 404"));
    assert!(http_get(http_port, "/uf", "").starts_with("HTTP/1.1 503"));
    let grpc = "Content-Type: application/grpc\r\n";
    assert!(http_get(http_port, "/grpc14", grpc).starts_with("HTTP/1.1 200"));
    // Envoy turns a local reply to a gRPC request into 200 + grpc-status (here 14).
    let r = http_get(http_port, "/grpc503", grpc);
    assert!(
        r.starts_with("HTTP/1.1 200") && r.to_ascii_lowercase().contains("grpc-status: 14"),
        "{r}"
    );
    {
        let mut s = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        while !got.ends_with(b"hello") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "tcp proxy closed early");
            got.extend_from_slice(&buf[..n]);
        }
    }

    // Envoy flushes access-log files every 10 s (--file-flush-interval-msec); reopening
    // flushes them now.
    admin_post(envoy.admin_address(), "/reopen_logs");
    let mut compared = 0;
    for (tag, ours, n) in [("http", &ours_http, 5), ("tcp", &ours_tcp, 1)] {
        let text = wait_lines(&dir.path().join(format!("{tag}.text.log")), n);
        let jsons = wait_lines(&dir.path().join(format!("{tag}.json.log")), n);
        for (envoy_text, envoy_json) in text.iter().zip(&jsons) {
            let j: serde_json::Value = serde_json::from_str(envoy_json).unwrap();
            let info = info_from_envoy(&j);
            let our_text = ours.loggers[0].format.render(&info);
            assert_eq!(
                our_text,
                format!("{envoy_text}\n"),
                "TEXT differs for Envoy JSON {j}"
            );
            let our_json: serde_json::Value =
                serde_json::from_str(&ours.loggers[1].format.render(&info)).unwrap();
            let diffs: Vec<String> = j
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, v)| our_json.get(k.as_str()) != Some(v))
                .map(|(k, v)| format!("{k}: envoy {v}, ours {}", our_json[k.as_str()]))
                .collect();
            assert!(
                diffs.is_empty(),
                "{tag} JSON differs:\n{}",
                diffs.join("\n")
            );
            assert_eq!(our_json, j, "JSON differs");
            compared += 1;
        }
    }
    assert_eq!(compared, 6);

    // Envoy's own histograms use the same default buckets Istio's do: the `le` values
    // (and their `%g` spelling) of our exposition must match Envoy's.
    let envoy_prom = envoy.admin_get("/stats/prometheus");
    let les = |text: &str, metric: &str| -> Vec<String> {
        let mut seen_labels = None;
        text.lines()
            .filter(|l| l.starts_with(&format!("{metric}_bucket{{")))
            .filter(|l| {
                // Only the first series of the metric.
                let labels = l.split(",le=").next().unwrap().to_string();
                seen_labels.get_or_insert_with(|| labels.clone()) == &labels
            })
            .map(|l| {
                l.split("le=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let envoy_les = les(&envoy_prom, "envoy_cluster_upstream_rq_time");
    assert!(
        !envoy_les.is_empty(),
        "Envoy exposes upstream_rq_time\n{envoy_prom}"
    );
    assert!(envoy_prom.contains("# TYPE envoy_cluster_upstream_rq_time histogram"));
    let t = ironmesh_proxy::telemetry::Telemetry::new(Default::default());
    t.record(
        &info_from_envoy(
            &serde_json::from_str(&wait_lines(&dir.path().join("http.json.log"), 1)[0]).unwrap(),
        ),
        &AccessLogs::default(),
    );
    let ours = t.render_prometheus();
    assert!(ours.contains("# TYPE istio_request_duration_milliseconds histogram"));
    assert_eq!(les(&ours, "istio_request_duration_milliseconds"), envoy_les);
}
