//! Bookinfo's four services, behaving as Istio's sample does where the mesh can see it:
//! same ports, paths, JSON, upstream host names (env-configurable), timeouts, retries and
//! propagated headers.

pub mod productpage;
pub mod services;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::server::Req;

/// Headers bookinfo forwards on its outbound calls: tracing context (so the mesh can
/// stitch spans), `x-request-id`, and the user identity headers routing rules match on
/// (`end-user` from the login, `user` as the seeds' canary sends it).
pub const PROPAGATED: &[&str] = &[
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "sw8",
    "end-user",
    "user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
];

pub fn forward_headers(req: &Req) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in PROPAGATED {
        for value in req.headers.get_all(*name) {
            out.append(*name, value.clone());
        }
    }
    out
}

/// `http://{NAME_HOSTNAME or name}{.SERVICES_DOMAIN}:{NAME_SERVICE_PORT or 9080}` as the
/// real services build their upstream addresses.
pub fn service_base(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let env = |key: String| std::env::var(key).ok().filter(|v| !v.is_empty());
    let host = env(format!("{upper}_HOSTNAME")).unwrap_or_else(|| name.to_string());
    let port = env(format!("{upper}_SERVICE_PORT")).unwrap_or_else(|| "9080".to_string());
    let domain = env("SERVICES_DOMAIN".to_string()).map_or(String::new(), |d| format!(".{d}"));
    format!("http://{host}{domain}:{port}")
}

/// A plain HTTP/1.1 client, as Python requests and the JAX-RS client are.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Full<Bytes>>,
}

/// What an upstream call produced when it produced a response at all.
pub struct Fetched {
    pub status: StatusCode,
    pub json: Option<Value>,
}

impl Upstream {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Upstream { client }
    }

    /// GET `url` with `headers` within `timeout`; `Err` says why nothing came back.
    pub async fn get_json(
        &self,
        url: &str,
        headers: &HeaderMap,
        timeout: Duration,
    ) -> Result<Fetched, String> {
        let mut req = Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("bad upstream URL {url}: {e}"))?;
        for (k, v) in headers {
            req.headers_mut().append(k, v.clone());
        }
        req.headers_mut().insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| describe(&e))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .to_bytes();
            Ok(Fetched {
                status,
                json: serde_json::from_slice(&body).ok(),
            })
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result.map_err(|e: String| format!("GET {url}: {e}")),
            Err(_) => Err(format!("GET {url}: timed out after {timeout:?}")),
        }
    }
}

fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// The leading integer of a path segment, as the real services parse product ids.
pub fn product_id(segment: &str) -> Option<u64> {
    segment.parse().ok()
}
