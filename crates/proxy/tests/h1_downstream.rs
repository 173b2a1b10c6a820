//! The downstream HTTP/1.1 connection over raw sockets: pipelining, framing of every
//! response kind, `connection: close`, and a connection that moves from the fast path
//! to hyper mid-way (`dataplane/h1server.rs`).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::json;
use support::*;

/// One parsed response: status, lower-cased headers, de-chunked body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    /// The header lines as sent.
    lines: Vec<String>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A client connection that reads responses one by one, keeping what follows.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn { s, buf: Vec::new() }
    }

    fn send(&mut self, raw: &str) {
        self.s.write_all(raw.as_bytes()).unwrap();
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 65536];
        let n = self.s.read(&mut chunk).expect("read from the proxy");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill() > 0, "connection closed mid-body");
        }
        self.buf.drain(..n).collect()
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = self.take(i + 2);
                return String::from_utf8(l[..i].to_vec()).unwrap();
            }
            assert!(self.fill() > 0, "connection closed mid-line");
        }
    }

    /// Reads one response to a request of `method`.
    fn response(&mut self, method: &str) -> Raw {
        let status_line = self.line();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let (mut headers, mut lines) = (Vec::new(), Vec::new());
        loop {
            let l = self.line();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').expect("a header line");
            headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
            lines.push(l);
        }
        let mut r = Raw {
            status,
            headers,
            lines,
            body: Vec::new(),
        };
        if method == "HEAD" || status == 204 || status == 304 {
            return r;
        }
        if let Some(len) = r.header("content-length") {
            let len = len.parse().unwrap();
            r.body = self.take(len);
        } else if r.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line(), 16).unwrap();
                let data = self.take(size);
                assert_eq!(self.line(), "", "chunk ends with CRLF");
                if size == 0 {
                    break;
                }
                r.body.extend_from_slice(&data);
            }
        } else {
            while self.fill() > 0 {}
            r.body = std::mem::take(&mut self.buf);
        }
        r
    }

    fn closed(&mut self) -> bool {
        self.buf.is_empty() && self.fill() == 0
    }
}

fn proxy(echo: &EchoServer) -> Proxy {
    let vhosts = json!([{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/direct"}, "directResponse": {"status": 200, "body": {"inlineString": "hello"}}},
        {"match": {"prefix": "/"}, "route": {"cluster": "echo", "timeout": "0s"}}]}]);
    let cfg = config(
        vec![http_listener(8080, "r")],
        vec![route_config("r", vhosts)],
        vec![eds_cluster("echo", "ROUND_ROBIN", false)],
        vec![endpoints("echo", &[echo.addr])],
    );
    let p = Proxy::with_config("router", &cfg, &["--bind-port", "8080=127.0.0.1:0"]);
    p.wait_ready();
    p
}

/// An echo backend, the proxy in front of it, and a client connection to the proxy.
fn connected() -> (EchoServer, Proxy, Conn) {
    let echo = EchoServer::http("echo");
    let p = proxy(&echo);
    let c = Conn::open(p.addr("0.0.0.0_8080"));
    (echo, p, c)
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let (_echo, _proxy, mut c) = connected();
    c.send("GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\nGET /direct HTTP/1.1\r\nHost: a\r\n\r\n");
    for path in ["/one", "/two"] {
        let r = c.response("GET");
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["path"], path);
        // The echo server's body has no length, so it arrives chunked.
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert!(r.header("date").is_some(), "a date is added");
        assert_eq!(r.header("server"), Some("istio-envoy"));
    }
    let r = c.response("GET");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(r.header("content-length"), Some("5"));
}

#[test]
fn head_204_and_large_bodies_are_framed_as_hyper_frames_them() {
    let (_echo, _proxy, mut c) = connected();
    c.send("HEAD /direct HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response("HEAD");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some("5"),
        "HEAD keeps the length"
    );
    c.send("GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response("GET");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), None);
    // A response larger than what is copied behind the head (16 KiB): the echo of a
    // 40 KB header.
    let big = "x".repeat(40_000);
    c.send(&format!(
        "GET /big HTTP/1.1\r\nHost: a\r\nx-big: {big}\r\n\r\n"
    ));
    let r = c.response("GET");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["headers"]["x-big"], big.as_str());
    // Still in step after all three.
    c.send("GET /after HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.response("GET").json()["path"], "/after");
}

#[test]
fn a_request_with_a_body_moves_the_connection_to_hyper_mid_way() {
    let (_echo, _proxy, mut c) = connected();
    c.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.response("GET").json()["path"], "/first");
    // A body, pipelined with a bodiless request after it: both served, in order.
    c.send("POST /post HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\n\r\nhelloGET /last HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response("POST");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["method"], "POST");
    assert_eq!(r.json()["body_len"], 5);
    assert_eq!(c.response("GET").json()["path"], "/last");
}

#[test]
fn connection_close_is_answered_and_honoured() {
    let (_echo, p, mut c) = connected();
    c.send("GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = c.response("GET");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed(), "the proxy closes after the response");
    // Malformed heads are answered by hyper (400), not dropped.
    let mut c = Conn::open(p.addr("0.0.0.0_8080"));
    c.send("GET / HTTP/1.1\r\nbad header\r\n\r\n");
    assert_eq!(c.response("GET").status, 400);
}

#[test]
fn each_request_of_a_connection_gets_its_own_route_timeout() {
    // The connection's requests share one timer (`dataplane/deadline.rs`), armed for
    // the first deadline it was given.
    let (_echo, _proxy, mut c) = connected();
    let get = |c: &mut Conn, path: &str, timeout_ms: u32| {
        c.send(&format!(
            "GET {path} HTTP/1.1\r\nHost: a\r\nx-envoy-upstream-rq-timeout-ms: {timeout_ms}\r\n\r\n"
        ));
        c.response("GET").status
    };
    assert_eq!(get(&mut c, "/delay/10", 300), 200);
    // Runs past the first request's deadline, within its own.
    assert_eq!(get(&mut c, "/delay/600", 3000), 200);
    // A deadline earlier than the one the timer is armed for.
    let asked = std::time::Instant::now();
    assert_eq!(get(&mut c, "/delay/2000", 100), 504);
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "timed out at its own deadline, not the earlier request's"
    );
    // Still in step, with no timeout pending from before.
    assert_eq!(get(&mut c, "/delay/10", 0), 200);
    // The largest timeout a client can ask for is, in effect, none.
    c.send("GET /delay/10 HTTP/1.1\r\nHost: a\r\nx-envoy-upstream-rq-timeout-ms: 18446744073709551615\r\n\r\n");
    assert_eq!(c.response("GET").status, 200);
}

/// A router with `vhosts` on one listener, cluster `cluster` being `upstream`, and a
/// client connection to it.
fn gateway(vhosts: serde_json::Value, cluster: &str, upstream: SocketAddr) -> (Proxy, Conn) {
    let cfg = config(
        vec![http_listener(8080, "r")],
        vec![route_config("r", vhosts)],
        vec![eds_cluster(cluster, "ROUND_ROBIN", false)],
        vec![endpoints(cluster, &[upstream])],
    );
    let p = Proxy::with_config("router", &cfg, &["--bind-port", "8080=127.0.0.1:0"]);
    p.wait_ready();
    let c = Conn::open(p.addr("0.0.0.0_8080"));
    (p, c)
}

/// An upstream that hands each request head it reads, on any connection, to `answer`
/// and writes back what that returns; `None` closes the connection.
fn scripted_upstream<F>(answer: F) -> SocketAddr
where
    F: Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                loop {
                    while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..i + 4).collect();
                        let Some(r) = answer(&head[..i]) else {
                            return;
                        };
                        if s.write_all(&r).is_err() {
                            return;
                        }
                    }
                    let mut chunk = [0u8; 4096];
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

/// An upstream that answers each request head, on whichever connection, with the next
/// of `responses`.
fn canned_upstream(responses: Vec<&'static str>) -> SocketAddr {
    let queue = std::sync::Mutex::new(
        responses
            .into_iter()
            .collect::<std::collections::VecDeque<_>>(),
    );
    scripted_upstream(move |_| {
        queue
            .lock()
            .unwrap()
            .pop_front()
            .map(|r| r.as_bytes().to_vec())
    })
}

#[test]
fn upstream_heads_pass_through_with_hop_by_hop_fields_and_server_replaced() {
    let upstream = canned_upstream(vec![
        // Passed through as bytes (`h1client::RawHead`).
        "HTTP/1.1 200 OK\r\nServer: backend\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\n\
         Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-Mixed-Case: Value\r\n\
         set-cookie: b=2\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 2\r\n\
         Content-Length: 2\r\nProxy-Connection: x\r\n\r\nok",
        // Carries a field the proxy sets: parsed into a map, which the proxy's replaces.
        "HTTP/1.1 200 OK\r\nX-Envoy-Upstream-Service-Time: 99999\r\nContent-Length: 0\r\n\r\n",
        // `connection` names another field, which goes too.
        "HTTP/1.1 201 Created\r\nConnection: x-hop\r\nX-Hop: secret\r\nX-Kept: yes\r\n\
         Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    ]);
    let vhosts = json!([{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "canned"}}]}]);
    let (_p, mut c) = gateway(vhosts, "canned", upstream);

    c.send("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response("GET");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(r.all("server"), ["istio-envoy"], "{:?}", r.lines);
    assert_eq!(r.all("set-cookie"), ["a=1", "b=2"], "in the order sent");
    assert_eq!(r.all("content-length"), ["2"]);
    assert_eq!(
        r.all("date"),
        ["Mon, 01 Jan 2024 00:00:00 GMT"],
        "the upstream's"
    );
    for hop in ["connection", "keep-alive", "proxy-connection"] {
        assert_eq!(r.header(hop), None, "{hop} is hop-by-hop: {:?}", r.lines);
    }
    assert!(
        r.lines.iter().any(|l| l == "x-mixed-case: Value"),
        "names in lower case, values as sent: {:?}",
        r.lines
    );
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert!(r.header("x-envoy-upstream-service-time").is_some());

    c.send("GET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response("GET");
    assert_eq!(r.status, 200);
    let times = r.all("x-envoy-upstream-service-time");
    assert_eq!(times.len(), 1, "{:?}", r.lines);
    assert_ne!(times[0], "99999", "the proxy's own");

    c.send("GET /3 HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response("GET");
    assert_eq!((r.status, r.body.as_slice()), (201, &b"hi"[..]));
    assert_eq!(r.header("x-hop"), None, "{:?}", r.lines);
    assert_eq!(r.header("x-kept"), Some("yes"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
}

/// `x-envoy-peer-metadata` as a server-side sidecar sends it: a base64 protobuf
/// `Struct` of its node metadata.
fn peer_metadata(workload: &str, namespace: &str) -> String {
    use base64::Engine as _;
    use prost::Message as _;
    use prost_types::{value::Kind, Struct, Value};
    let s = |v: &str| Value {
        kind: Some(Kind::StringValue(v.to_string())),
    };
    let labels = Struct {
        fields: [
            ("app".to_string(), s("e")),
            ("version".to_string(), s("v2")),
        ]
        .into(),
    };
    let meta = Struct {
        fields: [
            ("NAME".to_string(), s(&format!("{workload}-5f7d9-abcde"))),
            ("WORKLOAD_NAME".to_string(), s(workload)),
            ("NAMESPACE".to_string(), s(namespace)),
            (
                "LABELS".to_string(),
                Value {
                    kind: Some(Kind::StructValue(labels)),
                },
            ),
        ]
        .into(),
    };
    base64::engine::general_purpose::STANDARD.encode(meta.encode_to_vec())
}

#[test]
fn outbound_responses_with_peer_metadata_pass_through_and_name_the_destination() {
    // A server-side sidecar's answers carry its peer metadata. Outbound, the proxy reads
    // the destination's identity from them, and drops them where the exchange filter
    // is configured (Istio's sidecars; here listener 8080) before the app sees them.
    let head = |n: u32| -> &'static str {
        Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nX-Envoy-Peer-Metadata: {}\r\n\
                 X-Envoy-Peer-Metadata-Id: sidecar~10.0.0.9~e-v2-5f7d9-abcde.default~default.svc.cluster.local\r\n\
                 X-Mixed-Case: Value\r\nContent-Length: 2\r\n\r\nr{n}",
                peer_metadata("e-v2", "default")
            )
            .into_boxed_str(),
        )
    };
    let upstream = canned_upstream((0..5).map(head).collect());
    let vhosts = json!([{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "route": {"cluster": "canned"}}]}]);
    let mut exchanging = http_listener(8080, "r");
    exchanging["filterChains"][0]["filters"][0]["typedConfig"]["httpFilters"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "istio.metadata_exchange"}));
    let cfg = config(
        vec![exchanging, http_listener(8081, "r")],
        vec![route_config("r", vhosts)],
        // No workload in the endpoint's metadata: only the response names the peer.
        vec![eds_cluster("canned", "ROUND_ROBIN", false)],
        vec![endpoints("canned", &[upstream])],
    );
    let p = Proxy::with_config(
        "router",
        &cfg,
        &[
            "--bind-port",
            "8080=127.0.0.1:0",
            "--bind-port",
            "8081=127.0.0.1:0",
        ],
    );
    p.wait_ready();

    let mut c = Conn::open(p.addr("0.0.0.0_8080"));
    for i in 0..2 {
        c.send("GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
        let r = c.response("GET");
        assert_eq!((r.status, r.body.len()), (200, 2), "{:?}", r.lines);
        for name in ["x-envoy-peer-metadata", "x-envoy-peer-metadata-id"] {
            assert_eq!(
                r.header(name),
                None,
                "request {i}: {name} dropped: {:?}",
                r.lines
            );
        }
        assert!(
            r.lines.iter().any(|l| l == "x-mixed-case: Value"),
            "{:?}",
            r.lines
        );
        assert_eq!(r.all("x-envoy-upstream-service-time").len(), 1);
    }
    // Without the exchange filter they reach the client as the upstream sent them.
    let mut c = Conn::open(p.addr("0.0.0.0_8081"));
    c.send("GET /y HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.response("GET");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-envoy-peer-metadata"),
        Some(peer_metadata("e-v2", "default").as_str())
    );
    assert!(
        r.header("x-envoy-peer-metadata-id").is_some(),
        "{:?}",
        r.lines
    );
    // A sidecar always exchanges (Istio's sidecars all have the filter; discovery
    // leaves it out for Envoy's sake), so its app never sees them.
    let sidecar = Proxy::with_config("sidecar", &cfg, &["--bind-port", "8081=127.0.0.1:0"]);
    sidecar.wait_ready();
    let mut s = Conn::open(sidecar.addr("0.0.0.0_8081"));
    s.send("GET /z HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = s.response("GET");
    assert_eq!(r.status, 200);
    for name in ["x-envoy-peer-metadata", "x-envoy-peer-metadata-id"] {
        assert_eq!(
            r.header(name),
            None,
            "sidecar: {name} dropped: {:?}",
            r.lines
        );
    }

    let metrics = c_get_metrics(&p);
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{") && l.contains("reporter=\"source\""))
        .collect();
    assert!(!series.is_empty(), "{metrics}");
    for l in &series {
        for label in [
            "destination_workload=\"e-v2\"",
            "destination_workload_namespace=\"default\"",
            "destination_app=\"e\"",
            "destination_version=\"v2\"",
        ] {
            assert!(l.contains(label), "{label} missing in {l}");
        }
    }
    let total: f64 = series
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 3.0, "{metrics}");
}

fn c_get_metrics(p: &Proxy) -> String {
    let r = get(p.addr("prometheus"), "localhost", "/stats/prometheus", &[]);
    String::from_utf8_lossy(&r.body).into_owned()
}

/// An upstream that answers every request head with an empty 200 and hands the heads
/// it received, as text, to the returned channel.
fn recording_upstream() -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = scripted_upstream(move |head| {
        let _ = tx
            .lock()
            .unwrap()
            .send(String::from_utf8_lossy(head).into_owned());
        Some(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec())
    });
    (addr, rx)
}

/// A plain request (no field the proxy reads or edits) goes upstream from its fields as
/// received (`dataplane/rawreq.rs`); the upstream must see what the header-map path
/// sends for the same request: the same fields, names in lower case, the proxy's own
/// appended, hop-by-hop ones gone. Header matching and header operations see them too.
#[test]
fn plain_requests_reach_the_upstream_as_the_header_map_path_sends_them() {
    let (upstream, heads) = recording_upstream();
    let vhosts = json!([{"name": "v", "domains": ["*"], "routes": [
        {"match": {"prefix": "/match", "headers": [
            {"name": "end-user", "stringMatch": {"exact": "jason"}}]},
         "route": {"cluster": "rec"}},
        {"match": {"prefix": "/match"}, "directResponse": {"status": 418}},
        {"match": {"prefix": "/ops"}, "route": {"cluster": "rec"},
         "requestHeadersToAdd": [{"header": {"key": "x-added", "value": "yes"}}],
         "requestHeadersToRemove": ["x-drop"]},
        {"match": {"prefix": "/rewrite"}, "route": {"cluster": "rec", "prefixRewrite": "/new",
         "hostRewriteLiteral": "b.example"}},
        {"match": {"prefix": "/"}, "route": {"cluster": "rec"}}]}]);
    let (_p, mut c) = gateway(vhosts, "rec", upstream);
    let mut exchange = |req: &str| -> (u16, Vec<String>) {
        c.send(req);
        let r = c.response("GET");
        if r.status != 200 {
            return (r.status, Vec::new());
        }
        let head = heads
            .recv_timeout(Duration::from_secs(10))
            .expect("the upstream saw the request");
        (200, head.split("\r\n").map(str::to_string).collect())
    };
    let fields = "Host: a.example\r\nUser-Agent: UA/1\r\nX-Dup: 1\r\nAccept: */*\r\n\
                  x-dup: 2\r\nConnection: keep-alive\r\nX-Drop: d\r\n";

    // Plain: every field is the client's but `connection`.
    let (status, plain) = exchange(&format!("GET /p?q=1 HTTP/1.1\r\n{fields}\r\n"));
    assert_eq!(status, 200);
    assert_eq!(plain[0], "GET /p?q=1 HTTP/1.1");
    assert_eq!(
        plain[1..6],
        [
            "host: a.example",
            "user-agent: UA/1",
            "x-dup: 1",
            "accept: */*",
            "x-dup: 2"
        ],
        "the client's fields in the order sent, names in lower case: {plain:?}"
    );
    assert!(
        !plain.iter().any(|l| l.starts_with("connection")),
        "{plain:?}"
    );
    let id = plain
        .iter()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("a generated x-request-id");
    assert_eq!((id.len(), &id[14..15]), (36, "4"), "a UUID v4: {id}");
    for added in [
        "x-forwarded-for: ",
        "x-forwarded-proto: http",
        "x-envoy-external-address: 127.0.0.1",
        "x-envoy-expected-rq-timeout-ms: 15000",
    ] {
        assert!(
            plain.iter().any(|l| l.starts_with(added)),
            "{added} in {plain:?}"
        );
    }

    // With a trace field the request takes the header-map path: the same fields.
    let (status, mapped) = exchange(&format!(
        "GET /p?q=1 HTTP/1.1\r\n{fields}X-B3-Sampled: 1\r\n\r\n"
    ));
    assert_eq!(status, 200);
    let comparable = |lines: &[String]| {
        let mut v: Vec<String> = lines
            .iter()
            .filter(|l| !l.starts_with("x-request-id:") && !l.starts_with("x-b3-sampled:"))
            .cloned()
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        comparable(&plain),
        comparable(&mapped),
        "{plain:?}\n{mapped:?}"
    );
    assert!(mapped.iter().any(|l| l == "x-b3-sampled: 1"), "{mapped:?}");

    // Header matching reads the fields as received, in any case.
    let (status, _) = exchange("GET /match HTTP/1.1\r\nHost: a\r\nEnd-User: jason\r\n\r\n");
    assert_eq!(status, 200);
    let (status, _) = exchange("GET /match HTTP/1.1\r\nHost: a\r\nEnd-User: bob\r\n\r\n");
    assert_eq!(status, 418);

    // Header operations edit them.
    let (status, ops) = exchange(&format!("GET /ops HTTP/1.1\r\n{fields}\r\n"));
    assert_eq!(status, 200);
    assert!(ops.iter().any(|l| l == "x-added: yes"), "{ops:?}");
    assert!(!ops.iter().any(|l| l.starts_with("x-drop")), "{ops:?}");
    assert!(ops.iter().any(|l| l == "user-agent: UA/1"), "{ops:?}");

    // A rewrite replaces the path and Host, and says what they were.
    let (status, rw) = exchange(&format!("GET /rewrite/x HTTP/1.1\r\n{fields}\r\n"));
    assert_eq!(status, 200);
    assert_eq!(rw[0], "GET /new/x HTTP/1.1");
    assert_eq!(
        rw[1], "host: b.example",
        "in the received Host's place: {rw:?}"
    );
    for l in [
        "x-envoy-original-path: /rewrite/x",
        "x-envoy-original-host: a.example",
    ] {
        assert!(rw.iter().any(|x| x == l), "{l} in {rw:?}");
    }

    // No Host at all: the authority (empty) is sent as Host, last, as the map path does.
    let (status, nohost) = exchange("GET /p HTTP/1.1\r\nAccept: x\r\n\r\n");
    assert_eq!(status, 200);
    assert_eq!(
        nohost.last().map(String::as_str),
        Some("host: "),
        "{nohost:?}"
    );
}
