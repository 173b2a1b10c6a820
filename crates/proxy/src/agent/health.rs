//! Minimal readiness endpoint (`/healthz/ready` on the readiness port). The full admin
//! and agent servers (15000, 15020, 15090) are in `crate::admin` when present.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use super::state::ProxyState;

/// Binds `addr`, logs `listening <label>=<addr>`, serves `/healthz/ready`.
pub async fn serve_ready(
    label: &str,
    addr: SocketAddr,
    state: Arc<ProxyState>,
) -> std::io::Result<()> {
    let l = TcpListener::bind(addr).await?;
    println!("listening {label}={}", l.local_addr()?);
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let state = state.clone();
                    async move {
                        let (status, body) = match req.uri().path() {
                            "/healthz/ready" | "/ready" if state.ready() => {
                                (StatusCode::OK, "LIVE\n")
                            }
                            "/healthz/ready" | "/ready" => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                "not ready: waiting for the first listeners and clusters\n",
                            ),
                            _ => (StatusCode::NOT_FOUND, "not found\n"),
                        };
                        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                        *r.status_mut() = status;
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    Ok(())
}
