use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};

use super::*;
use crate::telemetry::{Direction, ResponseFlags, StreamInfo};

/// Istio's `EnvoyTextLogFormat`, as the reference and discovery carry it.
const ISTIO_TEXT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

fn addr(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

fn headers(pairs: &[(&'static str, &str)]) -> Option<Arc<HeaderMap>> {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.append(*k, HeaderValue::from_str(v).unwrap());
    }
    Some(Arc::new(m))
}

/// The values of the seed's first JSON access-log line (sleep → httpbin, outbound).
fn seed_request() -> StreamInfo {
    StreamInfo {
        direction: Direction::Outbound,
        start_time: Some(UNIX_EPOCH + Duration::from_millis(1_682_991_904_154)),
        duration: Duration::from_millis(12),
        request_duration: Some(Duration::from_micros(300)),
        response_duration: Some(Duration::from_millis(11)),
        response_tx_duration: Some(Duration::from_millis(1)),
        protocol: Some("HTTP/1.1"),
        request_headers: headers(&[
            ("user-agent", "curl/8.0.1-DEV"),
            ("x-request-id", "6618b006-b862-927e-ac43-aaf4f2026c0d"),
            ("host", "httpbin:8000"),
        ]),
        method: Some("GET".into()),
        path: Some("/headers".into()),
        authority: Some("httpbin:8000".into()),
        response_code: 200,
        response_code_details: Some("via_upstream".into()),
        response_headers: headers(&[("x-envoy-upstream-service-time", "11")]),
        bytes_received: 0,
        bytes_sent: 508,
        upstream_host: addr("10.10.241.82:80"),
        upstream_cluster: Some("outbound|8000||httpbin.istio-demo.svc.cluster.local".into()),
        upstream_local_address: addr("10.10.241.84:58514"),
        downstream_local_address: addr("10.97.94.170:8000"),
        downstream_remote_address: addr("10.10.241.84:40658"),
        route_name: Some("default".into()),
        scheme: Some("http".into()),
        connection_id: 42,
        attempt_count: Some(1),
        ..Default::default()
    }
}

fn text(fmt: &str, info: &StreamInfo) -> String {
    LogFormat::text(fmt, false).unwrap().render(info)
}

fn one(op: &str, info: &StreamInfo) -> (String, serde_json::Value) {
    let t = text(op, info);
    let mut fields = prost_types::Struct::default();
    fields.fields.insert(
        "v".into(),
        prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue(op.into())),
        },
    );
    let j = LogFormat::json(&fields, false).unwrap().render(info);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    (t, v["v"].clone())
}

#[test]
fn istio_default_text_line_matches_envoy() {
    let line = text(ISTIO_TEXT, &seed_request());
    assert_eq!(
        line,
        "[2023-05-02T01:45:04.154Z] \"GET /headers HTTP/1.1\" 200 - via_upstream - \"-\" 0 508 12 11 \"-\" \"curl/8.0.1-DEV\" \"6618b006-b862-927e-ac43-aaf4f2026c0d\" \"httpbin:8000\" \"10.10.241.82:80\" outbound|8000||httpbin.istio-demo.svc.cluster.local 10.10.241.84:58514 10.97.94.170:8000 10.10.241.84:40658 - default\n"
    );
}

#[test]
fn istio_default_text_line_for_tcp_and_failures() {
    let tcp = StreamInfo {
        start_time: Some(UNIX_EPOCH + Duration::from_millis(1_682_991_904_000)),
        duration: Duration::from_millis(1003),
        bytes_received: 78,
        bytes_sent: 220,
        upstream_host: addr("10.213.0.7:3306"),
        upstream_cluster: Some("outbound|3306||mysql.db.svc.cluster.local".into()),
        upstream_local_address: addr("10.213.0.5:41000"),
        downstream_local_address: addr("240.240.0.9:3306"),
        downstream_remote_address: addr("10.213.0.5:52000"),
        ..Default::default()
    };
    assert_eq!(
        text(ISTIO_TEXT, &tcp),
        "[2023-05-02T01:45:04.000Z] \"- - -\" 0 - - - \"-\" 78 220 1003 - \"-\" \"-\" \"-\" \"-\" \"10.213.0.7:3306\" outbound|3306||mysql.db.svc.cluster.local 10.213.0.5:41000 240.240.0.9:3306 10.213.0.5:52000 - -\n"
    );
    let mut nr = seed_request();
    nr.response_code = 404;
    nr.response_code_details = Some("route_not_found".into());
    nr.flags = ResponseFlags::from_bits(ResponseFlags::NR);
    nr.upstream_host = None;
    nr.upstream_cluster = None;
    nr.upstream_local_address = None;
    nr.response_headers = None;
    nr.route_name = None;
    nr.bytes_sent = 0;
    assert_eq!(
        text(ISTIO_TEXT, &nr),
        "[2023-05-02T01:45:04.154Z] \"GET /headers HTTP/1.1\" 404 NR route_not_found - \"-\" 0 0 12 - \"-\" \"curl/8.0.1-DEV\" \"6618b006-b862-927e-ac43-aaf4f2026c0d\" \"httpbin:8000\" \"-\" - - 10.97.94.170:8000 10.10.241.84:40658 - -\n"
    );
}

#[test]
fn json_line_has_seed_keys_and_types() {
    let fields: &[(&str, &str)] = &[
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
    ];
    let st = prost_types::Struct {
        fields: fields
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    prost_types::Value {
                        kind: Some(prost_types::value::Kind::StringValue(v.to_string())),
                    },
                )
            })
            .collect(),
    };
    let line = LogFormat::json(&st, false).unwrap().render(&seed_request());
    assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
    let got: serde_json::Value = serde_json::from_str(&line).unwrap();
    // The seed's line, verbatim: same keys, same values, same JSON types.
    let want: serde_json::Value = serde_json::from_str(r#"{"route_name":"default","response_flags":"-","response_code":200,"authority":"httpbin:8000","user_agent":"curl/8.0.1-DEV","method":"GET","bytes_sent":508,"request_id":"6618b006-b862-927e-ac43-aaf4f2026c0d","bytes_received":0,"downstream_remote_address":"10.10.241.84:40658","x_forwarded_for":null,"upstream_cluster":"outbound|8000||httpbin.istio-demo.svc.cluster.local","upstream_transport_failure_reason":null,"path":"/headers","start_time":"2023-05-02T01:45:04.154Z","protocol":"HTTP/1.1","connection_termination_details":null,"upstream_service_time":"11","duration":12,"upstream_local_address":"10.10.241.84:58514","upstream_host":"10.10.241.82:80","response_code_details":"via_upstream","downstream_local_address":"10.97.94.170:8000","requested_server_name":null}"#).unwrap();
    assert_eq!(got, want);
}

#[test]
fn every_operator_renders_like_envoy() {
    let mut info = seed_request();
    info.direction = Direction::Inbound;
    info.peer_principal = Some("spiffe://cluster.local/ns/a/sa/sleep".into());
    info.local_principal = Some("spiffe://cluster.local/ns/b/sa/httpbin".into());
    info.requested_server_name = Some("outbound_.8000_._.httpbin.b.svc.cluster.local".into());
    info.upstream_transport_failure_reason = Some("delayed connect error: 111".into());
    info.connection_termination_details = Some("rbac_access_denied".into());
    info.flags = ResponseFlags::from_bits(ResponseFlags::UF | ResponseFlags::URX);
    info.response_trailers = headers(&[("grpc-message", "ok")]);
    let n = |v: u64| serde_json::json!(v);
    let s = |v: &str| serde_json::json!(v);
    let null = serde_json::Value::Null;
    let cases: Vec<(&str, &str, serde_json::Value)> = vec![
        (
            "%START_TIME%",
            "2023-05-02T01:45:04.154Z",
            s("2023-05-02T01:45:04.154Z"),
        ),
        ("%START_TIME(%s)%", "1682991904", s("1682991904")),
        (
            "%START_TIME(%Y/%m/%d %H:%M:%S.%3f)%",
            "2023/05/02 01:45:04.154",
            s("2023/05/02 01:45:04.154"),
        ),
        ("%DURATION%", "12", n(12)),
        ("%REQUEST_DURATION%", "0", n(0)),
        ("%RESPONSE_DURATION%", "11", n(11)),
        ("%RESPONSE_TX_DURATION%", "1", n(1)),
        ("%PROTOCOL%", "HTTP/1.1", s("HTTP/1.1")),
        ("%UPSTREAM_PROTOCOL%", "HTTP/1.1", s("HTTP/1.1")),
        ("%RESPONSE_CODE%", "200", n(200)),
        ("%RESPONSE_CODE_DETAILS%", "via_upstream", s("via_upstream")),
        (
            "%CONNECTION_TERMINATION_DETAILS%",
            "rbac_access_denied",
            s("rbac_access_denied"),
        ),
        ("%RESPONSE_FLAGS%", "UF,URX", s("UF,URX")),
        (
            "%RESPONSE_FLAGS_LONG%",
            "UpstreamConnectionFailure,UpstreamRetryLimitExceeded",
            s("UpstreamConnectionFailure,UpstreamRetryLimitExceeded"),
        ),
        ("%BYTES_RECEIVED%", "0", n(0)),
        ("%BYTES_SENT%", "508", n(508)),
        ("%UPSTREAM_HOST%", "10.10.241.82:80", s("10.10.241.82:80")),
        (
            "%UPSTREAM_REMOTE_ADDRESS%",
            "10.10.241.82:80",
            s("10.10.241.82:80"),
        ),
        (
            "%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
            "10.10.241.82",
            s("10.10.241.82"),
        ),
        ("%UPSTREAM_REMOTE_PORT%", "80", n(80)),
        (
            "%UPSTREAM_CLUSTER%",
            "outbound|8000||httpbin.istio-demo.svc.cluster.local",
            s("outbound|8000||httpbin.istio-demo.svc.cluster.local"),
        ),
        (
            "%UPSTREAM_CLUSTER_RAW%",
            "outbound|8000||httpbin.istio-demo.svc.cluster.local",
            s("outbound|8000||httpbin.istio-demo.svc.cluster.local"),
        ),
        (
            "%UPSTREAM_LOCAL_ADDRESS%",
            "10.10.241.84:58514",
            s("10.10.241.84:58514"),
        ),
        (
            "%UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%",
            "10.10.241.84",
            s("10.10.241.84"),
        ),
        ("%UPSTREAM_LOCAL_PORT%", "58514", n(58514)),
        (
            "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
            "delayed connect error: 111",
            s("delayed connect error: 111"),
        ),
        (
            "%DOWNSTREAM_LOCAL_ADDRESS%",
            "10.97.94.170:8000",
            s("10.97.94.170:8000"),
        ),
        (
            "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%",
            "10.97.94.170",
            s("10.97.94.170"),
        ),
        ("%DOWNSTREAM_LOCAL_PORT%", "8000", n(8000)),
        (
            "%DOWNSTREAM_REMOTE_ADDRESS%",
            "10.10.241.84:40658",
            s("10.10.241.84:40658"),
        ),
        (
            "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
            "10.10.241.84",
            s("10.10.241.84"),
        ),
        ("%DOWNSTREAM_REMOTE_PORT%", "40658", n(40658)),
        (
            "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%",
            "10.10.241.84:40658",
            s("10.10.241.84:40658"),
        ),
        (
            "%DOWNSTREAM_PEER_URI_SAN%",
            "spiffe://cluster.local/ns/a/sa/sleep",
            s("spiffe://cluster.local/ns/a/sa/sleep"),
        ),
        (
            "%DOWNSTREAM_LOCAL_URI_SAN%",
            "spiffe://cluster.local/ns/b/sa/httpbin",
            s("spiffe://cluster.local/ns/b/sa/httpbin"),
        ),
        ("%UPSTREAM_PEER_URI_SAN%", "-", null.clone()),
        (
            "%REQUESTED_SERVER_NAME%",
            "outbound_.8000_._.httpbin.b.svc.cluster.local",
            s("outbound_.8000_._.httpbin.b.svc.cluster.local"),
        ),
        ("%ROUTE_NAME%", "default", s("default")),
        ("%CONNECTION_ID%", "42", n(42)),
        ("%UPSTREAM_REQUEST_ATTEMPT_COUNT%", "1", n(1)),
        ("%GRPC_STATUS%", "-", null.clone()),
        ("%REQ(:METHOD)%", "GET", s("GET")),
        ("%REQ(:SCHEME)%", "http", s("http")),
        ("%REQ(:PATH)%", "/headers", s("/headers")),
        (
            "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
            "/headers",
            s("/headers"),
        ),
        ("%REQ(USER-AGENT):4%", "curl", s("curl")),
        (
            "%REQUEST_HEADER(user-agent)%",
            "curl/8.0.1-DEV",
            s("curl/8.0.1-DEV"),
        ),
        ("%REQ(X-MISSING)%", "-", null.clone()),
        ("%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%", "11", s("11")),
        ("%RESPONSE_HEADER(:STATUS)%", "200", s("200")),
        ("%TRAILER(GRPC-MESSAGE)%", "ok", s("ok")),
        ("%RESPONSE_TRAILER(X-NONE?GRPC-MESSAGE)%", "ok", s("ok")),
        ("%DYNAMIC_METADATA(istio.mixer:status)%", "-", null.clone()),
        ("%FILTER_STATE(istio.peer)%", "-", null.clone()),
    ];
    for (op, want_text, want_json) in cases {
        let (t, j) = one(op, &info);
        assert_eq!(t, want_text, "TEXT {op}");
        assert_eq!(j, want_json, "JSON {op}");
    }
    let host = text("%HOSTNAME%", &info);
    assert!(!host.is_empty() && host != "-", "hostname {host:?}");
}

#[test]
fn request_path_and_query_operators() {
    let mut info = seed_request();
    info.path = Some("/status/418?x=1".into());
    info.request_headers = headers(&[("x-envoy-original-path", "/orig?y=2")]);
    assert_eq!(
        text("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", &info),
        "/orig?y=2"
    );
    assert_eq!(text("%REQ_WITHOUT_QUERY(:PATH)%", &info), "/status/418");
    assert_eq!(
        text("%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%", &info),
        "/orig"
    );
    // :AUTHORITY falls back to Host when the core did not fill `authority`.
    info.authority = None;
    info.request_headers = headers(&[("host", "h:1")]);
    assert_eq!(text("%REQ(:AUTHORITY)%", &info), "h:1");
}

#[test]
fn path_trace_stream_and_environment() {
    let mut info = seed_request();
    info.path = Some("/status/418?x=1".into());
    assert_eq!(
        text("%PATH%|%PATH(NQ)%|%PATH(WQ:ORIG)%", &info),
        "/status/418?x=1|/status/418|-"
    );
    info.request_headers = headers(&[
        ("x-envoy-original-path", "/orig?y=2"),
        ("x-request-id", "rid"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ]);
    assert_eq!(
        text("%PATH%|%PATH(NQ:PATH)%|%PATH(WQ:ORIG):5%", &info),
        "/orig?y=2|/status/418|/orig"
    );
    assert_eq!(
        text("%TRACE_ID% %STREAM_ID% %ACCESS_LOG_TYPE%", &info),
        "4bf92f3577b34da6a3ce929d0e0e4736 rid DownstreamEnd"
    );
    info.request_headers = headers(&[("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7")]);
    assert_eq!(
        text("%TRACE_ID% %STREAM_ID%", &info),
        "80f198ee56343ba864fe8b2a57d3eff7 -"
    );
    info.stream_id = Some("tcp-uuid".into());
    assert_eq!(text("%STREAM_ID%", &info), "tcp-uuid");
    let tcp = StreamInfo::default();
    assert_eq!(
        text("%ACCESS_LOG_TYPE% %VIRTUAL_CLUSTER_NAME%", &tcp),
        "TcpConnectionEnd -"
    );
    let home = std::env::var("PATH").unwrap_or_default();
    assert_eq!(
        text("%ENVIRONMENT(PATH)%", &tcp),
        if home.is_empty() {
            "-".to_string()
        } else {
            home
        }
    );
    assert_eq!(text("%ENVIRONMENT(IRONMESH_SURELY_UNSET_VAR)%", &tcp), "-");
    assert!(LogFormat::text("%PATH(XQ)%", false).is_err());
    assert!(LogFormat::text("%PATH(NQ:ELSEWHERE)%", false).is_err());
    assert!(LogFormat::text("%ENVIRONMENT()%", false).is_err());
}

#[test]
fn grpc_status_forms() {
    let mut info = seed_request();
    info.protocol = Some("HTTP/2");
    info.request_headers = headers(&[("content-type", "application/grpc")]);
    info.response_trailers = headers(&[("grpc-status", "4")]);
    assert_eq!(text("%GRPC_STATUS%", &info), "DeadlineExceeded");
    assert_eq!(
        text("%GRPC_STATUS(CAMEL_STRING)%", &info),
        "DeadlineExceeded"
    );
    assert_eq!(
        text("%GRPC_STATUS(SNAKE_STRING)%", &info),
        "DEADLINE_EXCEEDED"
    );
    assert_eq!(one("%GRPC_STATUS(NUMBER)%", &info).1, serde_json::json!(4));
    // Trailers-only responses carry grpc-status in the headers.
    info.response_trailers = None;
    info.response_headers = headers(&[("grpc-status", "0")]);
    assert_eq!(text("%GRPC_STATUS%", &info), "OK");
    // No grpc-status at all: mapped from the HTTP status as gRPC clients do.
    info.response_headers = None;
    info.response_code = 503;
    assert_eq!(text("%GRPC_STATUS%", &info), "Unavailable");
    info.grpc_status = Some(21);
    assert_eq!(text("%GRPC_STATUS%", &info), "21");
}

#[test]
fn missing_values_and_omit_empty() {
    let info = StreamInfo::default();
    assert_eq!(
        text(
            "%ROUTE_NAME% %START_TIME% %UPSTREAM_HOST% %REQUEST_DURATION%",
            &info
        ),
        "- - - -"
    );
    let f = LogFormat::text("[%ROUTE_NAME%]", true).unwrap();
    assert_eq!(f.render(&info), "[]");
    let st = prost_types::Struct {
        fields: [
            ("a", "%ROUTE_NAME%"),
            ("b", "%RESPONSE_CODE%"),
            ("c", "x=%ROUTE_NAME%"),
        ]
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue(v.into())),
                },
            )
        })
        .collect(),
    };
    let full: serde_json::Value =
        serde_json::from_str(&LogFormat::json(&st, false).unwrap().render(&info)).unwrap();
    assert_eq!(full, serde_json::json!({"a": null, "b": 0, "c": "x=-"}));
    let omitted: serde_json::Value =
        serde_json::from_str(&LogFormat::json(&st, true).unwrap().render(&info)).unwrap();
    assert_eq!(omitted, serde_json::json!({"b": 0, "c": "x="}));
}

#[test]
fn nested_json_and_constants() {
    use prost_types::value::Kind;
    let inner = prost_types::Struct {
        fields: [(
            "code".to_string(),
            prost_types::Value {
                kind: Some(Kind::StringValue("%RESPONSE_CODE%".into())),
            },
        )]
        .into_iter()
        .collect(),
    };
    let st = prost_types::Struct {
        fields: [
            (
                "resp".to_string(),
                prost_types::Value {
                    kind: Some(Kind::StructValue(inner)),
                },
            ),
            (
                "n".to_string(),
                prost_types::Value {
                    kind: Some(Kind::NumberValue(1.5)),
                },
            ),
            (
                "b".to_string(),
                prost_types::Value {
                    kind: Some(Kind::BoolValue(true)),
                },
            ),
            (
                "lit".to_string(),
                prost_types::Value {
                    kind: Some(Kind::StringValue("plain".into())),
                },
            ),
        ]
        .into_iter()
        .collect(),
    };
    let got: serde_json::Value =
        serde_json::from_str(&LogFormat::json(&st, false).unwrap().render(&seed_request()))
            .unwrap();
    assert_eq!(
        got,
        serde_json::json!({"resp": {"code": 200}, "n": 1.5, "b": true, "lit": "plain"})
    );
}

#[test]
fn bad_formats_are_rejected_with_the_operator_named() {
    for (fmt, needle) in [
        ("%NOT_AN_OPERATOR%", "NOT_AN_OPERATOR"),
        ("%CEL(request.path)%", "CEL"),
        ("%METADATA(ROUTE:a:b)%", "METADATA"),
        ("%REQ()%", "REQ"),
        ("%REQ(A?B?C)%", "REQ"),
        ("%DURATION(x)%", "DURATION"),
        ("%START_TIME(%Q)%", "START_TIME"),
        ("%GRPC_STATUS(LOUD)%", "GRPC_STATUS"),
        ("%REQ(X):%", "REQ"),
        ("%DURATION", "DURATION"),
        ("100% sure", "position"),
        ("%REQ(X", "unclosed"),
        ("%ROUTE_NAME:3%", "length"),
        ("%DURATION:2%", "length"),
    ] {
        let err = LogFormat::text(fmt, false).expect_err(fmt);
        assert!(err.0.contains(needle), "{fmt}: {err}");
    }
}

#[test]
fn percent_escapes_and_empty_parens() {
    let info = seed_request();
    assert_eq!(text("100%% of %RESPONSE_CODE()%%%", &info), "100% of 200%");
    assert_eq!(text("%%", &info), "%");
}

#[test]
fn truncation_counts_characters() {
    let mut info = seed_request();
    info.request_headers = headers(&[("x-name", "héllo")]);
    assert_eq!(text("%REQ(X-NAME):2%", &info), "hé");
    assert_eq!(text("%REQ(X-NAME):10%", &info), "héllo");
}

#[test]
fn stream_info_from_a_request() {
    let req = http::Request::builder()
        .method("POST")
        .uri("/api/v1?x=1")
        .version(http::Version::HTTP_2)
        .header("host", "reviews:9080")
        .header("x-envoy-original-path", "/orig")
        .header("user-agent", "ua")
        .body(())
        .unwrap();
    let (parts, ()) = req.into_parts();
    let start = UNIX_EPOCH + Duration::from_millis(1_682_991_904_154);
    let info = StreamInfo::for_request(Direction::Inbound, start, &parts);
    assert_eq!(
        text("%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %REQ(:AUTHORITY)% %REQ(:SCHEME)% %REQ(USER-AGENT)% %START_TIME%", &info),
        "POST /orig HTTP/2 reviews:9080 http ua 2023-05-02T01:45:04.154Z"
    );
    let req = http::Request::builder()
        .uri("http://ratings.bookinfo:9080/r?q")
        .body(())
        .unwrap();
    let info = StreamInfo::for_request(Direction::Outbound, start, &req.into_parts().0);
    assert_eq!(
        text("%REQ(:AUTHORITY)% %REQ(:PATH)% %PROTOCOL%", &info),
        "ratings.bookinfo:9080 /r?q HTTP/1.1"
    );
}
