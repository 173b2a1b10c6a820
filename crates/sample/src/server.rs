//! The HTTP server every listening role shares: HTTP/1.1 and cleartext HTTP/2 on one
//! port, the whole request body read before the handler runs, one log line per request.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// A fully read request plus the peer that sent it.
pub struct Req {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

impl Req {
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Query parameters in order, percent-decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

pub type Resp = Response<Full<Bytes>>;
pub type BoxFut = Pin<Box<dyn Future<Output = Resp> + Send>>;
pub type Handler = Arc<dyn Fn(Req) -> BoxFut + Send + Sync>;

/// A response with a body and content type.
pub fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

/// Binds `addr` and prints `listening on ADDR` (tests and the runtime read the port from
/// that line when `--port 0` was asked).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(e).with_context(|| {
                format!(
                    "cannot listen on {addr}: ports below 1024 need root, CAP_NET_BIND_SERVICE, \
                     or `sysctl net.ipv4.ip_unprivileged_port_start=0` in this network namespace"
                )
            });
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("cannot listen on {addr}; pick another --port or free it")
            })
        }
    };
    println!("listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// How a role logs its requests to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStyle {
    /// `127.0.0.6 "GET /headers HTTP/1.1" 200 1.234ms`.
    Plain,
    /// nginx's default `main` format, so `ironmesh logs` of a stand-in nginx pod reads
    /// like the real one's.
    Nginx,
}

/// Serves `handler` until the process is stopped.
pub async fn serve(listener: TcpListener, handler: Handler, style: LogStyle) -> anyhow::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually EMFILE; keep serving the connections we have.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: http::Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, peer, handler, style).await) }
            });
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                // Clients hanging up mid-request are normal under fault injection.
                let msg = e.to_string();
                if !msg.contains("connection closed") && !msg.contains("reset") {
                    eprintln!("connection from {peer}: {msg}");
                }
            }
        });
    }
}

async fn handle(
    req: http::Request<Incoming>,
    peer: SocketAddr,
    handler: Handler,
    style: LogStyle,
) -> Resp {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let version = parts.version;
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .unwrap_or("-")
            .to_string()
    };
    let (referer, user_agent, xff) = (
        header("referer"),
        header("user-agent"),
        header("x-forwarded-for"),
    );
    let path = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    let resp = match body.collect().await {
        Ok(collected) => {
            let req = Req {
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body: collected.to_bytes(),
                peer,
            };
            handler(req).await
        }
        Err(e) => respond(
            StatusCode::BAD_REQUEST,
            "text/plain",
            format!("could not read the request body: {e}\n"),
        ),
    };
    let status = resp.status().as_u16();
    let ip = peer.ip();
    match style {
        LogStyle::Plain => println!(
            "{ip} \"{method} {path} {version:?}\" {status} {:.3}ms",
            start.elapsed().as_secs_f64() * 1000.0
        ),
        LogStyle::Nginx => {
            let bytes = if method == Method::HEAD {
                0
            } else {
                http_body::Body::size_hint(resp.body()).exact().unwrap_or(0)
            };
            println!(
                "{ip} - - [{}] \"{method} {path} {version:?}\" {status} {bytes} \"{referer}\" \"{user_agent}\" \"{xff}\"",
                crate::clock::nginx_local_time(std::time::SystemTime::now())
            );
        }
    }
    resp
}
