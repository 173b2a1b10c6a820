//! The data path: listeners, protocol detection, HTTP and TCP proxying.
//!
//! Everything reads config through [`Runtime::snapshot`] (one `ArcSwap` load per
//! connection or request, no locks); a config swap never touches established
//! connections, which keep the listener/filter chain they started with.

pub mod body;
pub mod deadline;
pub mod detect;
pub mod h1client;
pub mod h1server;
pub mod headers;
pub mod http;
pub mod listeners;
pub mod rawreq;
pub mod retry;
pub mod select;
pub mod tcp;
pub mod tls;
pub mod upstream;
pub mod workers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::model::Snapshot;
use crate::telemetry::Telemetry;

/// Data-path settings that come from flags, not xDS.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bound on protocol detection when the listener sets `listener_filters_timeout: 0s`.
    pub detect_timeout: Duration,
    /// Listener port → where to bind it instead (tests, and gateways without privileges).
    /// Listeners whose port is listed are bound even when `bind_to_port` is false.
    pub bind_overrides: HashMap<u16, SocketAddr>,
    /// Sidecar: the port `virtualOutbound` binds (--outbound-port).
    pub outbound_port: u16,
    /// Sidecar: the port `virtualInbound` binds (--inbound-port).
    pub inbound_port: u16,
    /// Address listeners on 0.0.0.0 bind to when overridden ports give only a port.
    pub sidecar: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            detect_timeout: Duration::from_secs(1),
            bind_overrides: HashMap::new(),
            outbound_port: 15001,
            inbound_port: 15006,
            sidecar: true,
        }
    }
}

/// State shared by every listener and connection.
pub struct Runtime {
    pub snapshot: ArcSwap<Snapshot>,
    pub telemetry: Arc<Telemetry>,
    /// Where accepted connections run.
    pub workers: workers::Workers,
    pub options: Options,
    /// Set on SIGTERM / drain: listeners stop accepting, HTTP/1 responses say `connection: close`.
    pub draining: AtomicBool,
    drain_tx: watch::Sender<bool>,
    pub active_connections: AtomicUsize,
    /// Istio metadata exchange: this workload's `x-envoy-peer-metadata(-id)` headers,
    /// sent upstream on outbound requests and downstream on inbound responses.
    pub peer_headers: Option<[(::http::HeaderName, ::http::HeaderValue); 2]>,
}

impl Runtime {
    pub fn new(
        telemetry: Arc<Telemetry>,
        options: Options,
        peer_headers: Option<[(::http::HeaderName, ::http::HeaderValue); 2]>,
        workers: workers::Workers,
    ) -> Arc<Runtime> {
        let (drain_tx, _) = watch::channel(false);
        Arc::new(Runtime {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            telemetry,
            workers,
            options,
            draining: AtomicBool::new(false),
            drain_tx,
            active_connections: AtomicUsize::new(0),
            peer_headers,
        })
    }

    /// Starts draining: stop accepting, close idle keep-alive connections.
    pub fn start_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let _ = self.drain_tx.send(true);
    }

    pub fn drain_signal(&self) -> watch::Receiver<bool> {
        self.drain_tx.subscribe()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// Counts a live downstream connection.
pub struct ConnGuard(Arc<Runtime>);

impl ConnGuard {
    pub fn new(rt: &Arc<Runtime>) -> Self {
        rt.active_connections.fetch_add(1, Ordering::Relaxed);
        ConnGuard(rt.clone())
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.active_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves when the runtime starts draining. It is polled with its connection on
/// every wake-up, so after registering with the drain signal it answers from the
/// `draining` flag alone while the task's waker stays the same (a watch receiver
/// re-locks its waiter list on each poll).
pub struct Drained {
    rt: Arc<Runtime>,
    signal: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    registered: Option<std::task::Waker>,
}

impl Drained {
    pub fn new(rt: Arc<Runtime>) -> Drained {
        let mut rx = rt.drain_signal();
        Drained {
            rt,
            signal: Box::pin(async move { wait_true(&mut rx).await }),
            registered: None,
        }
    }
}

impl std::future::Future for Drained {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        // `start_drain` sets the flag before it signals, so a wake-up for the drain
        // always finds it set.
        if self.rt.is_draining() {
            return std::task::Poll::Ready(());
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return std::task::Poll::Pending;
        }
        let r = self.signal.as_mut().poll(cx);
        if r.is_pending() {
            self.registered = Some(cx.waker().clone());
        }
        r
    }
}

/// Resolves when `rx` turns true (or its sender is gone).
pub async fn wait_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await.map(|_| ());
}
