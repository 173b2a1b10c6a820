//! The proxy's admin API (Envoy's, on 127.0.0.1:15000) and the agent's ports
//! (pilot-agent's status port 15020, readiness 15021, Prometheus 15090).
//!
//! Self-contained: the data plane plugs in through [`AdminHooks`] and feeds every
//! accepted xDS update to [`AdminState::record_update`]; this module keeps the last
//! accepted resources and renders them as Envoy's `/config_dump`, so `istioctl
//! proxy-config` and `ironmesh proxy-config --proxy-admin` read it like a real Envoy's.
//! Endpoints are listed in docs/proxy-admin.md.

mod agent;
mod http;
mod logging;
mod routes;
mod store;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::{ConnectionState, Handler, Update};
use serde_json::Value;
use tokio::task::JoinHandle;

pub use agent::{
    merge_expositions, parse_probers, parse_prometheus_annotations, AgentConfig, AppScrape, Prober,
    APP_PROBERS_ENV, PROMETHEUS_ANNOTATIONS_ENV,
};
pub use http::Req;
pub use logging::{reloadable_filter, LogControl};
pub use store::render_any;

/// Envoy's admin address in a sidecar (loopback only: it can change the proxy).
pub const ADMIN_ADDR: &str = "127.0.0.1:15000";
/// pilot-agent's status port: health, merged metrics, app probes.
pub const STATUS_PORT: u16 = 15020;
/// The readiness port the injector points the sidecar's readiness probe at.
pub const READINESS_PORT: u16 = 15021;
/// Envoy's Prometheus port (`/stats/prometheus`).
pub const PROMETHEUS_PORT: u16 = 15090;

/// What the data plane provides to the admin endpoints.
pub trait AdminHooks: Send + Sync + 'static {
    /// `Err(reason)` → 503 with the reason on `/ready` and `/healthz/ready`.
    fn ready(&self) -> Result<(), String>;
    /// The proxy's own metrics, Prometheus text.
    fn stats_prometheus(&self) -> String;
    /// `POST /drain_listeners`: stop accepting, finish what is in flight.
    fn drain_listeners(&self);
    /// `POST /quitquitquit`: exit.
    fn quit(&self);
    /// Envoy's `/clusters` text
    /// (`outbound|9080||reviews.default.svc.cluster.local::10.0.0.1:9080::health_flags::healthy`).
    fn clusters_text(&self) -> String;
    /// `/clusters?format=json` (Envoy's `ClustersConfigDump`-like `cluster_statuses`);
    /// `None` answers 501.
    fn clusters_json(&self) -> Option<Value> {
        None
    }
    /// `/stats` text; by default the Prometheus samples as `name{labels}: value`.
    fn stats_text(&self) -> String {
        routes::prometheus_to_stats_text(&self.stats_prometheus())
    }
}

/// Optional parts of the admin state.
#[derive(Default)]
pub struct AdminOptions {
    /// Makes `/logging` change the log filter.
    pub log: Option<LogControl>,
    /// App probes and app metrics (normally [`AgentConfig::from_env`]).
    pub agent: AgentConfig,
    /// Shown by `/server_info` (defaults to this crate's version).
    pub version: Option<String>,
}

/// Everything the admin servers share; cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    inner: Arc<Inner>,
}

struct Inner {
    hooks: Arc<dyn AdminHooks>,
    node: Node,
    started: SystemTime,
    started_at: tokio::time::Instant,
    store: Mutex<store::ConfigStore>,
    log: Option<LogControl>,
    agent: AgentConfig,
    version: String,
    draining: AtomicBool,
    scrape_failures: AtomicU64,
}

impl AdminState {
    /// `node` is what the proxy sends to discovery (shown as the bootstrap node).
    pub fn new(node: Node, hooks: Arc<dyn AdminHooks>) -> Self {
        Self::with_options(node, hooks, AdminOptions::default())
    }

    pub fn with_options(node: Node, hooks: Arc<dyn AdminHooks>, options: AdminOptions) -> Self {
        AdminState {
            inner: Arc::new(Inner {
                hooks,
                node,
                started: SystemTime::now(),
                started_at: tokio::time::Instant::now(),
                store: Mutex::new(store::ConfigStore::default()),
                log: options.log,
                agent: options.agent,
                version: options
                    .version
                    .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
                draining: AtomicBool::new(false),
                scrape_failures: AtomicU64::new(0),
            }),
        }
    }

    /// Records an update the proxy accepted (call it after `Handler::apply` succeeds);
    /// rejected updates must not be recorded, so the dump shows what is in force.
    pub fn record_update(&self, update: &Update) {
        self.store().record(update, SystemTime::now());
    }

    /// The version of the last recorded update of a type.
    pub fn accepted_version(&self, type_url: &str) -> Option<String> {
        self.store().version(type_url).map(str::to_owned)
    }

    /// Envoy's `/config_dump` (`include_eds` adds the endpoints section).
    pub fn config_dump(&self, include_eds: bool) -> Value {
        self.store()
            .config_dump(&self.inner.node, self.inner.started, include_eds)
    }

    /// Whether `/drain_listeners` was called.
    pub fn draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    fn store(&self) -> MutexGuard<'_, store::ConfigStore> {
        // A panic elsewhere must not take the admin API down with it.
        self.inner.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Wraps the proxy's xDS handler so that every update it accepts is recorded for
/// `/config_dump`; rejected updates are not (the dump shows what is in force).
pub struct RecordAccepted<H> {
    inner: H,
    state: AdminState,
}

impl<H: Handler> RecordAccepted<H> {
    pub fn new(inner: H, state: AdminState) -> Self {
        RecordAccepted { inner, state }
    }
}

impl<H: Handler> Handler for RecordAccepted<H> {
    fn apply(&self, update: &Update) -> Result<(), String> {
        self.inner.apply(update)?;
        self.state.record_update(update);
        Ok(())
    }

    fn names(&self, type_url: &str) -> std::collections::BTreeSet<String> {
        self.inner.names(type_url)
    }

    fn connection(&self, state: ConnectionState) {
        self.inner.connection(state);
    }
}

/// Serves the admin API (`/config_dump`, `/clusters`, `/stats`, `/ready`, `/logging`,
/// …) on `addr`; port 0 picks one. Returns the bound address and the accept task.
pub async fn serve_admin(
    addr: SocketAddr,
    state: AdminState,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    http::serve(addr, "admin", handler(state, routes::admin)).await
}

/// Serves the agent's status port: `/healthz/ready`, merged `/stats/prometheus`,
/// `/app-health/…`, `/quitquitquit`.
pub async fn serve_status(
    addr: SocketAddr,
    state: AdminState,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    http::serve(addr, "status", handler(state, routes::status)).await
}

/// Serves `/healthz/ready` only (the sidecar's readiness probe target).
pub async fn serve_readiness(
    addr: SocketAddr,
    state: AdminState,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    http::serve(addr, "readiness", handler(state, routes::readiness)).await
}

/// Serves the proxy's own `/stats/prometheus` (Envoy's port 15090).
pub async fn serve_prometheus(
    addr: SocketAddr,
    state: AdminState,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    http::serve(addr, "prometheus", handler(state, routes::prometheus)).await
}

fn handler<F, Fut>(state: AdminState, route: F) -> http::Handler
where
    F: Fn(AdminState, Req) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Resp> + Send + 'static,
{
    Arc::new(move |req| Box::pin(route(state.clone(), req)))
}
