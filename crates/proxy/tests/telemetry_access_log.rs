//! Access loggers compiled from the xDS that ironmesh-discovery really emits (its
//! golden outputs) and from hand-built protos, writing real files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use ironmesh_proxy::telemetry::{AccessLogs, Direction, PeerMetadata, StreamInfo, Telemetry};
use ironmesh_testkit::TempDir;
use ironmesh_xds::pb::envoy::config::accesslog::v3::{access_log, AccessLog, AccessLogFilter};
use ironmesh_xds::pb::envoy::config::core::v3::{
    data_source, substitution_format_string, DataSource, SubstitutionFormatString,
};
use ironmesh_xds::pb::envoy::extensions::access_loggers::file::v3::{
    file_access_log, FileAccessLog,
};
use ironmesh_xds::pb::envoy::extensions::access_loggers::stream::v3::StdoutAccessLog;
use ironmesh_xds::pb::google::protobuf::Any;
use prost::{Message, Name};

const ISTIO_TEXT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/// The JSON keys of the seed's access-log lines.
const SEED_KEYS: [&str; 24] = [
    "authority",
    "bytes_received",
    "bytes_sent",
    "connection_termination_details",
    "downstream_local_address",
    "downstream_remote_address",
    "duration",
    "method",
    "path",
    "protocol",
    "request_id",
    "requested_server_name",
    "response_code",
    "response_code_details",
    "response_flags",
    "route_name",
    "start_time",
    "upstream_cluster",
    "upstream_host",
    "upstream_local_address",
    "upstream_service_time",
    "upstream_transport_failure_reason",
    "user_agent",
    "x_forwarded_for",
];

fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

fn file_log(path: &Path, format: substitution_format_string::Format) -> AccessLog {
    let file = FileAccessLog {
        path: path.display().to_string(),
        access_log_format: Some(file_access_log::AccessLogFormat::LogFormat(
            SubstitutionFormatString {
                format: Some(format),
                ..Default::default()
            },
        )),
    };
    AccessLog {
        name: "envoy.access_loggers.file".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(any(&file))),
        ..Default::default()
    }
}

fn text_source(s: &str) -> substitution_format_string::Format {
    substitution_format_string::Format::TextFormatSource(DataSource {
        specifier: Some(data_source::Specifier::InlineString(s.to_string())),
        ..Default::default()
    })
}

fn addr(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

fn request(id: u32) -> StreamInfo {
    let mut h = HeaderMap::new();
    h.insert("user-agent", HeaderValue::from_static("curl/8.0.1-DEV"));
    h.insert(
        "x-request-id",
        HeaderValue::from_str(&format!("req-{id}")).unwrap(),
    );
    let mut resp = HeaderMap::new();
    resp.insert(
        "x-envoy-upstream-service-time",
        HeaderValue::from_static("11"),
    );
    StreamInfo {
        direction: Direction::Outbound,
        start_time: Some(UNIX_EPOCH + Duration::from_millis(1_682_991_904_154)),
        duration: Duration::from_millis(12),
        protocol: Some("HTTP/1.1"),
        request_headers: Some(Arc::new(h)),
        response_headers: Some(Arc::new(resp)),
        method: Some("GET".into()),
        path: Some("/headers".into()),
        authority: Some("httpbin:8000".into()),
        response_code: 200,
        response_code_details: Some("via_upstream".into()),
        bytes_sent: 508,
        upstream_host: addr("10.213.0.82:80"),
        upstream_cluster: Some("outbound|8000||httpbin.istio-demo.svc.cluster.local".into()),
        upstream_local_address: addr("10.213.0.84:58514"),
        downstream_local_address: addr("240.240.0.170:8000"),
        downstream_remote_address: addr("10.213.0.84:40658"),
        route_name: Some("default".into()),
        destination_service: Some("httpbin.istio-demo.svc.cluster.local".into()),
        ..Default::default()
    }
}

/// Every `accessLog` list inside a golden config dump.
fn collect_access_logs(v: &serde_json::Value, out: &mut Vec<Vec<AccessLog>>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                if k == "accessLog" {
                    let list = child
                        .as_array()
                        .expect("accessLog is a list")
                        .iter()
                        .map(|l| {
                            ironmesh_xds::json_to_message::<AccessLog>(l).expect("AccessLog JSON")
                        })
                        .collect();
                    out.push(list);
                } else {
                    collect_access_logs(child, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|c| collect_access_logs(c, out)),
        _ => {}
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../discovery/testdata/golden")
}

#[test]
fn discovery_golden_access_logs_compile_and_render_the_seed_keys() {
    let mut lists = Vec::new();
    for entry in std::fs::read_dir(golden_dir()).expect("golden dir") {
        let dir = entry.unwrap().path();
        for file in ["sidecar.json", "router.json"] {
            let p = dir.join(file);
            if let Ok(text) = std::fs::read_to_string(&p) {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                collect_access_logs(&v, &mut lists);
            }
        }
    }
    let non_empty: Vec<_> = lists.iter().filter(|l| !l.is_empty()).collect();
    assert!(
        !non_empty.is_empty(),
        "the 000-access-log-meshconfig golden carries access logs"
    );
    for list in non_empty {
        // Compiling opens /dev/stdout, which is what discovery emits by default.
        let logs = AccessLogs::from_xds(list).expect("discovery's access logs compile");
        assert_eq!(logs.paths(), vec!["/dev/stdout"]);
        // Render through the compiled format (without writing to stdout).
        let line = logs.loggers[0].format.render(&request(1));
        let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, SEED_KEYS.to_vec());
        assert_eq!(v["response_code"], serde_json::json!(200));
        assert_eq!(v["duration"], serde_json::json!(12));
        assert_eq!(v["upstream_service_time"], serde_json::json!("11"));
        assert_eq!(v["x_forwarded_for"], serde_json::Value::Null);
    }
}

#[test]
fn istio_text_log_is_written_to_the_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("access.log");
    let logs = AccessLogs::from_xds(&[file_log(&path, text_source(ISTIO_TEXT))]).unwrap();
    assert!(
        path.exists(),
        "the file is created when the listener is applied"
    );
    let t = Telemetry::new(PeerMetadata::default());
    t.record(&request(7), &logs);
    logs.flush();
    let got = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        got,
        "[2023-05-02T01:45:04.154Z] \"GET /headers HTTP/1.1\" 200 - via_upstream - \"-\" 0 508 12 11 \"-\" \"curl/8.0.1-DEV\" \"req-7\" \"httpbin:8000\" \"10.213.0.82:80\" outbound|8000||httpbin.istio-demo.svc.cluster.local 10.213.0.84:58514 240.240.0.170:8000 10.213.0.84:40658 - default\n"
    );
    // The same record was counted.
    assert!(t
        .render_prometheus()
        .contains("istio_requests_total{reporter=\"source\""));
}

#[test]
fn concurrent_records_produce_whole_lines() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("concurrent.log");
    std::fs::write(&path, "existing\n").unwrap();
    let logs = Arc::new(
        AccessLogs::from_xds(&[file_log(
            &path,
            text_source("%REQ(X-REQUEST-ID)% %BYTES_SENT%\n"),
        )])
        .unwrap(),
    );
    let t = Arc::new(Telemetry::new(PeerMetadata::default()));
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let (logs, t) = (logs.clone(), t.clone());
            std::thread::spawn(move || {
                for i in 0..250 {
                    t.record(&request(n * 1000 + i), &logs);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|h| h.join().unwrap());
    logs.flush();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "existing", "appends, never truncates");
    assert_eq!(lines.len(), 1001);
    let mut ids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| {
            let (id, bytes) = l.split_once(' ').expect("whole line");
            assert_eq!(bytes, "508");
            id
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1000, "every record exactly once");
    assert_eq!(logs.loggers[0].sink.dropped(), 0);
}

#[test]
fn json_format_proto_from_xds() {
    use ironmesh_xds::pb::google::protobuf::{value, Struct, Value};
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("json.log");
    let s = |v: &str| Value {
        kind: Some(value::Kind::StringValue(v.into())),
    };
    let fields = Struct {
        fields: [
            ("code", s("%RESPONSE_CODE%")),
            ("who", s("%REQ(USER-AGENT)%")),
            ("sni", s("%REQUESTED_SERVER_NAME%")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    };
    let logs = AccessLogs::from_xds(&[file_log(
        &path,
        substitution_format_string::Format::JsonFormat(fields),
    )])
    .unwrap();
    logs.log(&request(1));
    logs.flush();
    let v: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim_end()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"code": 200, "who": "curl/8.0.1-DEV", "sni": null})
    );
}

#[test]
#[allow(deprecated)]
fn legacy_and_default_formats() {
    let dir = TempDir::new().unwrap();
    let legacy = dir.path().join("legacy.log");
    let default = dir.path().join("default.log");
    let mk = |path: &Path, f: Option<file_access_log::AccessLogFormat>| AccessLog {
        name: "envoy.access_loggers.file".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(any(&FileAccessLog {
            path: path.display().to_string(),
            access_log_format: f,
        }))),
        ..Default::default()
    };
    let logs = AccessLogs::from_xds(&[
        mk(
            &legacy,
            Some(file_access_log::AccessLogFormat::Format(
                "%RESPONSE_CODE% %UPSTREAM_HOST%\n".into(),
            )),
        ),
        mk(&default, None),
    ])
    .unwrap();
    logs.log(&request(3));
    logs.flush();
    assert_eq!(
        std::fs::read_to_string(&legacy).unwrap(),
        "200 10.213.0.82:80\n"
    );
    // Envoy's own default format (no Istio additions).
    assert_eq!(
        std::fs::read_to_string(&default).unwrap(),
        "[2023-05-02T01:45:04.154Z] \"GET /headers HTTP/1.1\" 200 - 0 508 12 11 \"-\" \"curl/8.0.1-DEV\" \"req-3\" \"httpbin:8000\" \"10.213.0.82:80\"\n"
    );
}

#[test]
fn unsupported_configs_are_nacked_with_a_reason() {
    let dir = TempDir::new().unwrap();
    let ok = file_log(&dir.path().join("x.log"), text_source("%DURATION%\n"));
    let mut filtered = ok.clone();
    filtered.filter = Some(AccessLogFilter::default());
    let err = AccessLogs::from_xds(&[filtered]).unwrap_err();
    assert!(err.contains("filter"), "{err}");

    let bad_op = file_log(&dir.path().join("y.log"), text_source("%NOPE%\n"));
    let err = AccessLogs::from_xds(&[bad_op]).unwrap_err();
    assert!(err.contains("%NOPE%"), "{err}");

    let grpc = AccessLog {
        name: "envoy.access_loggers.http_grpc".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(Any {
            type_url: "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig".into(),
            value: vec![],
        })),
        ..Default::default()
    };
    let err = AccessLogs::from_xds(&[grpc]).unwrap_err();
    assert!(err.contains("HttpGrpcAccessLogConfig"), "{err}");

    let unwritable = file_log(
        Path::new("/proc/ironmesh-no-such-dir/a.log"),
        text_source("%DURATION%\n"),
    );
    let err = AccessLogs::from_xds(&[unwritable]).unwrap_err();
    assert!(err.contains("cannot open"), "{err}");

    let stdout = AccessLog {
        name: "envoy.access_loggers.stdout".into(),
        config_type: Some(access_log::ConfigType::TypedConfig(any(
            &StdoutAccessLog::default(),
        ))),
        ..Default::default()
    };
    let logs = AccessLogs::from_xds(&[stdout]).expect("stdout logger");
    assert_eq!(logs.paths(), vec!["/dev/stdout"]);
    assert!(AccessLogs::from_xds(&[]).unwrap().is_empty());
}

#[test]
fn reopen_follows_log_rotation() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("rotated.log");
    let logs =
        AccessLogs::from_xds(&[file_log(&path, text_source("%REQ(X-REQUEST-ID)%\n"))]).unwrap();
    logs.log(&request(1));
    logs.flush();
    // logrotate moves the file away; lines keep going to the moved file until reopen.
    let moved = dir.path().join("rotated.log.1");
    std::fs::rename(&path, &moved).unwrap();
    logs.log(&request(2));
    logs.flush();
    ironmesh_proxy::telemetry::reopen_access_logs();
    logs.log(&request(3));
    logs.flush();
    assert_eq!(std::fs::read_to_string(&moved).unwrap(), "req-1\nreq-2\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "req-3\n");
}

#[test]
fn shared_types_cross_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Telemetry>();
    shared::<AccessLogs>();
    shared::<StreamInfo>();
    // And they are actually usable from another thread.
    let logs = AccessLogs::default();
    let t = Arc::new(Telemetry::new(PeerMetadata::default()));
    let t2 = t.clone();
    std::thread::spawn(move || t2.record(&request(9), &logs))
        .join()
        .unwrap();
    assert!(t.render_prometheus().contains("istio_requests_total{"));
}
