//! Loopback backends for data-plane tests: an HTTP echo server (HTTP/1.1 and h2c, gRPC
//! style trailers, WebSocket-style upgrade echo, status/delay endpoints) and a TCP echo
//! server that answers after the client half-closes.
//!
//! Each server runs on its own thread with its own runtime, so tests stay synchronous,
//! and stops when dropped.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A body made of fixed frames (data, then optional trailers).
pub struct Frames(VecDeque<Frame<Bytes>>);

impl Frames {
    pub fn new(data: impl Into<Bytes>, trailers: Option<HeaderMap>) -> Self {
        let mut q = VecDeque::new();
        let d = data.into();
        if !d.is_empty() {
            q.push_back(Frame::data(d));
        }
        if let Some(t) = trailers {
            q.push_back(Frame::trailers(t));
        }
        Frames(q)
    }
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

/// A running echo server; stops when dropped.
pub struct EchoServer {
    pub addr: SocketAddr,
    pub name: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn protocol(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

async fn respond(
    name: String,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<Frames>, Infallible> {
    let path = req.uri().path().to_string();
    let mut headers = String::new();
    for (k, v) in req.headers() {
        if !headers.is_empty() {
            headers.push(',');
        }
        headers.push_str(&format!(
            "\"{}\":\"{}\"",
            k,
            json_escape(v.to_str().unwrap_or(""))
        ));
    }
    if path == "/ws" || req.headers().contains_key(http::header::UPGRADE) {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 4096];
                loop {
                    match io.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if io.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        let mut r = Response::new(Frames::new(Bytes::new(), None));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut().insert(
            http::header::UPGRADE,
            req.headers()
                .get(http::header::UPGRADE)
                .cloned()
                .unwrap_or(HeaderValue::from_static("websocket")),
        );
        r.headers_mut().insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        return Ok(r);
    }
    let version = protocol(req.version());
    let method = req.method().to_string();
    let full_path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if grpc {
        // Echo the request message back, status in trailers, as a gRPC server does.
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        t.insert("grpc-message", HeaderValue::from_static("ok"));
        t.insert(
            "x-echo-server",
            HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("echo")),
        );
        let mut r = Response::new(Frames::new(body, Some(t)));
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        return Ok(r);
    }
    let mut status = StatusCode::OK;
    if let Some(code) = path.strip_prefix("/status/") {
        status = code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::BAD_REQUEST);
    }
    if let Some(ms) = path.strip_prefix("/delay/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let out = format!(
        "{{\"server\":\"{}\",\"peer\":\"{}\",\"protocol\":\"{}\",\"method\":\"{}\",\"path\":\"{}\",\"body_len\":{},\"headers\":{{{}}}}}",
        json_escape(&name),
        peer,
        version,
        method,
        json_escape(&full_path),
        body.len(),
        headers
    );
    let mut r = Response::new(Frames::new(out, None));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        "x-echo-server",
        HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("echo")),
    );
    Ok(r)
}

impl EchoServer {
    /// An HTTP echo server on `127.0.0.1:0` speaking HTTP/1.1 and h2c (prior knowledge)
    /// on the same port. Responses are JSON: server name, protocol, method, path, headers.
    pub fn http(name: &str) -> EchoServer {
        Self::http_on(name, "127.0.0.1:0".parse().expect("addr"))
    }

    pub fn http_on(name: &str, addr: SocketAddr) -> EchoServer {
        Self::http_in(name, addr, None)
    }

    /// Like [`EchoServer::http_on`], inside network namespace `netns` (`ip netns` name).
    pub fn http_in(name: &str, addr: SocketAddr, netns: Option<&str>) -> EchoServer {
        let netns = netns.map(str::to_string);
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let n = name.to_string();
        std::thread::spawn(move || {
            if let Some(ns) = &netns {
                crate::netns::enter(ns);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = TcpListener::bind(addr).await.expect("bind echo server");
                tx.send(l.local_addr().expect("addr")).expect("send addr");
                let serve = async {
                    loop {
                        let Ok((s, peer)) = l.accept().await else {
                            continue;
                        };
                        let name = n.clone();
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| {
                                respond(name.clone(), peer, req)
                            });
                            let _ =
                                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                                    .serve_connection_with_upgrades(TokioIo::new(s), svc)
                                    .await;
                        });
                    }
                };
                tokio::select! { _ = serve => {}, _ = stop_rx => {} }
            });
        });
        let addr = rx.recv().expect("echo server started");
        EchoServer {
            addr,
            name: name.to_string(),
            _stop: stop,
        }
    }

    /// A TCP server that reads until the client half-closes, then answers
    /// `<name> got <n> bytes: <data>` and closes.
    pub fn tcp(name: &str) -> EchoServer {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let n = name.to_string();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind tcp echo");
                tx.send(l.local_addr().expect("addr")).expect("send addr");
                let serve = async {
                    loop {
                        let Ok((mut s, _)) = l.accept().await else {
                            continue;
                        };
                        let name = n.clone();
                        tokio::spawn(async move {
                            let mut data = Vec::new();
                            if s.read_to_end(&mut data).await.is_ok() {
                                let msg = format!(
                                    "{name} got {} bytes: {}",
                                    data.len(),
                                    String::from_utf8_lossy(&data)
                                );
                                let _ = s.write_all(msg.as_bytes()).await;
                                let _ = s.shutdown().await;
                            }
                        });
                    }
                };
                tokio::select! { _ = serve => {}, _ = stop_rx => {} }
            });
        });
        let addr = rx.recv().expect("tcp echo started");
        EchoServer {
            addr,
            name: name.to_string(),
            _stop: stop,
        }
    }
}
