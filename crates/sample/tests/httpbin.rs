//! httpbin role through the real binary: each endpoint's JSON shape and content type.

mod common;

use std::time::{Duration, Instant};

use common::{request, Sample};
use serde_json::json;

fn httpbin() -> Sample {
    Sample::start(&["httpbin"], &[])
}

#[test]
fn headers_are_title_cased_strings_under_headers() {
    let s = httpbin();
    let r = request(
        s.addr,
        "GET",
        "/headers",
        &[
            ("x-b3-traceid", "2d88aa543462b4e1b30e5a52126e8a3a"),
            ("X-Request-Id", "65508395-36bf-9ac6-98f2-72ad5400f54a"),
            (
                "x-forwarded-client-cert",
                "By=spiffe://cluster.local/ns/istio-demo/sa/httpbin",
            ),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let h = v["headers"].as_object().expect("wrapped in \"headers\"");
    assert_eq!(h["X-B3-Traceid"], "2d88aa543462b4e1b30e5a52126e8a3a");
    assert_eq!(h["X-Request-Id"], "65508395-36bf-9ac6-98f2-72ad5400f54a");
    assert_eq!(
        h["X-Forwarded-Client-Cert"],
        "By=spiffe://cluster.local/ns/istio-demo/sa/httpbin"
    );
    assert_eq!(h["Host"], s.addr.to_string());
    assert_eq!(v.as_object().unwrap().len(), 1, "only the headers key: {v}");
    // Pretty-printed with sorted keys, as httpbin (Flask) renders it.
    let text = r.text();
    assert!(text.starts_with("{\n  \"headers\": {\n"), "{text}");
    assert!(text.find("\"Host\"").unwrap() < text.find("\"X-B3-Traceid\"").unwrap());
    let line = s.wait_log("/headers");
    assert!(
        line.contains("GET /headers") && line.contains(" 200 ") && line.ends_with("ms"),
        "{line}"
    );
}

#[test]
fn get_reports_args_headers_origin_url() {
    let s = httpbin();
    let r = s.get("/get?show=1&a=x&a=y");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["args"], json!({ "show": "1", "a": ["x", "y"] }));
    assert_eq!(v["origin"], "127.0.0.1");
    assert_eq!(v["url"], format!("http://{}/get?show=1&a=x&a=y", s.addr));
    assert!(v["headers"]["Host"].is_string());
    assert_eq!(request(s.addr, "POST", "/get", &[], b"x").status, 405);
}

#[test]
fn ip_and_user_agent() {
    let s = httpbin();
    assert_eq!(s.get("/ip").json(), json!({ "origin": "127.0.0.1" }));
    let r = request(
        s.addr,
        "GET",
        "/ip",
        &[("X-Forwarded-For", "10.213.0.9")],
        b"",
    );
    assert_eq!(r.json(), json!({ "origin": "10.213.0.9" }));
    let r = request(
        s.addr,
        "GET",
        "/user-agent",
        &[("User-Agent", "curl/8.0.1-DEV")],
        b"",
    );
    assert_eq!(r.json(), json!({ "user-agent": "curl/8.0.1-DEV" }));
}

#[test]
fn anything_echoes_method_body_and_json() {
    let s = httpbin();
    let r = request(
        s.addr,
        "PUT",
        "/anything/a/b?k=v",
        &[("Content-Type", "application/json")],
        br#"{"n": 1}"#,
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["args"], json!({ "k": "v" }));
    assert_eq!(v["data"], r#"{"n": 1}"#);
    assert_eq!(v["json"], json!({ "n": 1 }));
    assert_eq!(v["url"], format!("http://{}/anything/a/b?k=v", s.addr));

    let form = request(
        s.addr,
        "POST",
        "/anything",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"user=jason&x=1",
    )
    .json();
    assert_eq!(form["form"], json!({ "user": "jason", "x": "1" }));
    assert_eq!(form["data"], "");
    assert_eq!(form["json"], json!(null));
}

#[test]
fn status_codes() {
    let s = httpbin();
    for code in [200u16, 204, 404, 418, 500, 503] {
        let r = s.get(&format!("/status/{code}"));
        assert_eq!(r.status, code);
    }
    assert_eq!(s.get("/status/302").header("location"), Some("/redirect/1"));
    assert_eq!(s.get("/status/nope").status, 400);
    // A list picks among its codes.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..60 {
        let code = s.get("/status/201,202").status;
        assert!(code == 201 || code == 202, "{code}");
        seen.insert(code);
    }
    assert_eq!(
        seen.len(),
        2,
        "both codes of /status/201,202 appear in 60 tries"
    );
    assert_eq!(s.get("/status/503:1,200:0").status, 503);
}

#[test]
fn delay_waits_then_answers() {
    let s = httpbin();
    let start = Instant::now();
    let r = s.get("/delay/1");
    let took = start.elapsed();
    assert_eq!(r.status, 200);
    assert!(
        took >= Duration::from_millis(950),
        "answered after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    assert!(r.json()["headers"].is_object());
    assert_eq!(s.get("/delay/abc").status, 404);
}

#[test]
fn index_response_headers_and_not_found() {
    let s = httpbin();
    let r = s.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text().contains("/headers"));

    let r = s.get("/response-headers?X-Test=yes&Server=httpbin");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-test"), Some("yes"));
    let v = r.json();
    assert_eq!(v["X-Test"], "yes");
    assert_eq!(v["Content-Length"], r.body.len().to_string());

    assert_eq!(s.get("/no/such/endpoint").status, 404);
}

#[test]
fn serves_cleartext_http2() {
    let s = httpbin();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("h2c handshake");
        tokio::spawn(conn);
        let req = http::Request::get(format!("http://{}/headers", s.addr))
            .header("x-b3-sampled", "1")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.expect("h2 response");
        let status = resp.status().as_u16();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        (status, body)
    });
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["headers"]["X-B3-Sampled"], "1");
    assert_eq!(
        v["headers"]["Host"],
        s.addr.to_string(),
        "the :authority shows as Host"
    );
    s.wait_log("HTTP/2.0");
}
