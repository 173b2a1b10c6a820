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
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
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
        let mut headers = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').expect("a header line");
            headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
        }
        let mut r = Raw {
            status,
            headers,
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
