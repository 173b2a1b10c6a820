//! The little HTTP/1.1 the admin and agent ports need: a server loop over hyper with
//! hand-rolled routing, and a GET client for app probes and app metrics.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What a handler sees of a request: admin endpoints read only the method, the path
/// and the query.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub path: String,
    /// Query parameters in order; a bare key (`?include_eds`) has an empty value.
    pub query: Vec<(String, String)>,
}

impl Req {
    pub fn new(method: Method, path_and_query: &str) -> Req {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Req {
            method,
            path: path.to_owned(),
            query: parse_query(query),
        }
    }

    /// The value of `key`, if present (`Some("")` for a bare key).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub type Resp = Response<Full<Bytes>>;
pub type Handler = Arc<dyn Fn(Req) -> Pin<Box<dyn Future<Output = Resp> + Send>> + Send + Sync>;

pub fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    with_type(status, "text/plain; charset=UTF-8", body.into())
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    let mut body = serde_json::to_string_pretty(value).unwrap_or_default();
    body.push('\n');
    with_type(status, "application/json", body)
}

pub fn with_type(status: StatusCode, content_type: &'static str, body: String) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// 405 for a state-changing endpoint reached with GET, as Envoy answers.
pub fn post_required(req: &Req) -> Option<Resp> {
    (req.method != Method::POST).then(|| {
        text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} changes state: use POST\n", req.path),
        )
    })
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Binds `addr` (port 0 picks a free port) and serves `handler` on every connection.
/// Returns the bound address and the accept loop's task (abort it to stop accepting).
pub async fn serve(
    addr: SocketAddr,
    name: &'static str,
    handler: Handler,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} for the {name} endpoint: {e}; is another proxy running in this network namespace?"),
        )
    })?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, port = bound.port(), "{name}: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let path = request
                            .uri()
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_owned();
                        let req = Req::new(request.method().clone(), &path);
                        Ok::<_, std::convert::Infallible>(handler(req).await)
                    }
                });
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%error, %peer, "{name}: connection ended");
                }
            });
        }
    });
    Ok((bound, task))
}

/// The answer of a GET.
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Bodies read from the app (metrics) are capped: a runaway exporter must not take the
/// proxy's memory with it.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// GETs `http://{addr}{path}` with `headers`, all within `timeout`.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<Fetched, String> {
    tokio::time::timeout(timeout, get_inner(addr, path, headers))
        .await
        .map_err(|_| format!("no answer from {addr}{path} within {timeout:?}"))?
}

async fn get_inner(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
) -> Result<Fetched, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr} failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut builder = Request::get(path).header(header::HOST, addr.to_string());
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("bad request for {path}: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("GET {path} on {addr} failed: {e}"))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading {path} from {addr} failed: {e}"))?
        .to_bytes();
    Ok(Fetched { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_queries() {
        let req = Req::new(
            Method::GET,
            "/config_dump?include_eds&resource=x%7Cy&level=a+b",
        );
        assert_eq!(req.path, "/config_dump");
        assert_eq!(req.param("include_eds"), Some(""));
        assert_eq!(req.param("resource"), Some("x|y"));
        assert_eq!(req.param("level"), Some("a b"));
        assert_eq!(req.param("missing"), None);
        assert_eq!(Req::new(Method::GET, "/ready").query, vec![]);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
