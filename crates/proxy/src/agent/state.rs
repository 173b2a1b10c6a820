//! The proxy's live state: config snapshot, listeners, readiness. The seam the admin
//! endpoints (15000/15020/15021/15090) answer from.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ironmesh_xds::type_url;
use ironmesh_xds::Any;

use crate::dataplane::listeners::ListenerSet;
use crate::dataplane::Runtime;
use crate::model::listener::RouteSource;
use crate::model::{ClusterKind, NetworkFilter};

/// Longest the first RDS/EDS responses may hold readiness back.
pub const WARMING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything the agent and the admin server need; one per process.
pub struct ProxyState {
    pub rt: Arc<Runtime>,
    pub listeners: Arc<ListenerSet>,
    /// Types applied at least once (readiness needs LDS and CDS).
    applied: Mutex<BTreeSet<String>>,
    listeners_bound: AtomicBool,
    ready_logged: AtomicBool,
    /// When LDS and CDS were first both applied (warming of RDS/EDS starts).
    warming_since: Mutex<Option<std::time::Instant>>,
    /// Set by `/quitquitquit` or SIGTERM.
    pub quit: tokio::sync::Notify,
}

impl ProxyState {
    pub fn new(rt: Arc<Runtime>) -> Arc<ProxyState> {
        let listeners = ListenerSet::new(rt.clone());
        Arc::new(ProxyState {
            rt,
            listeners,
            applied: Mutex::new(BTreeSet::new()),
            listeners_bound: AtomicBool::new(false),
            ready_logged: AtomicBool::new(false),
            warming_since: Mutex::new(None),
            quit: tokio::sync::Notify::new(),
        })
    }

    /// Compiles one xDS update (the complete set of `type_url`) and swaps it in.
    /// `Err` is the NACK's `error_detail`; the last good config keeps serving.
    pub fn apply(
        &self,
        type_url: &str,
        version: &str,
        resources: Arc<BTreeMap<String, Any>>,
    ) -> Result<(), String> {
        let current = self.rt.snapshot.load_full();
        let next = current
            .apply(type_url, version, resources)
            .map_err(|e| e.to_string())?;
        let count = match type_url {
            type_url::LISTENER => next.listeners.len(),
            type_url::ROUTE => next.routes.len(),
            type_url::CLUSTER => next.clusters.len(),
            type_url::ENDPOINT => next.endpoints.len(),
            type_url::SECRET => next.secrets.len(),
            _ => 0,
        };
        self.rt.snapshot.store(Arc::new(next));
        let short = type_url.rsplit('.').next().unwrap_or(type_url);
        tracing::info!(r#type = short, version, resources = count, "config applied");
        println!("config applied type={short} version={version} resources={count}");
        if type_url == type_url::LISTENER {
            let snap = self.rt.snapshot.load_full();
            match self.listeners.reconcile(&snap) {
                Ok(()) => self.listeners_bound.store(true, Ordering::SeqCst),
                Err(e) => {
                    self.listeners_bound.store(false, Ordering::SeqCst);
                    tracing::error!("{e}");
                }
            }
        }
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(type_url.to_string());
        self.check_ready();
        Ok(())
    }

    /// EDS cluster names and RDS route names the current config refers to (what the ADS
    /// client subscribes to by name).
    pub fn names(&self, type_url: &str) -> BTreeSet<String> {
        let snap = self.rt.snapshot.load_full();
        match type_url {
            type_url::ENDPOINT => snap
                .clusters
                .values()
                .filter_map(|c| match &c.kind {
                    ClusterKind::Eds(n) => Some(n.clone()),
                    _ => None,
                })
                .collect(),
            type_url::ROUTE => {
                let mut out = BTreeSet::new();
                for l in snap.listeners.values() {
                    for c in l.chains.iter().chain(l.default_chain.iter()) {
                        if let NetworkFilter::Http(h) = &c.filter {
                            if let RouteSource::Rds(n) = &h.routes {
                                out.insert(n.clone());
                            }
                        }
                    }
                }
                out
            }
            type_url::SECRET => snap
                .listeners
                .values()
                .flat_map(|l| l.chains.iter().chain(l.default_chain.iter()))
                .filter_map(|c| c.tls.as_ref())
                .flat_map(|t| t.secret_names().map(str::to_string).collect::<Vec<_>>())
                .collect(),
            _ => BTreeSet::new(),
        }
    }

    /// Logs `ready` once; call after updates and periodically while warming.
    pub fn check_ready(&self) {
        if self.ready() && !self.ready_logged.swap(true, Ordering::SeqCst) {
            tracing::info!("proxy ready");
            println!("ready");
        }
    }

    /// Ready (15021) once LDS and CDS were applied, every listener is bound, and the
    /// routes and endpoints they name arrived, as Envoy's initial warming; a name that
    /// never arrives stops blocking readiness after [`WARMING_TIMEOUT`].
    pub fn ready(&self) -> bool {
        let base = {
            let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
            applied.contains(type_url::LISTENER)
                && applied.contains(type_url::CLUSTER)
                && self.listeners_bound.load(Ordering::SeqCst)
        };
        if !base {
            return false;
        }
        let since = *self
            .warming_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(std::time::Instant::now);
        if self.ready_logged.load(Ordering::SeqCst) || since.elapsed() >= WARMING_TIMEOUT {
            return true;
        }
        let snap = self.rt.snapshot.load_full();
        self.names(type_url::ROUTE)
            .iter()
            .all(|n| snap.routes.contains_key(n))
            && self
                .names(type_url::ENDPOINT)
                .iter()
                .all(|n| snap.endpoints.contains_key(n))
    }

    /// `/drain_listeners`: stop accepting, drain live connections.
    pub fn drain_listeners(&self) {
        self.rt.start_drain();
        self.listeners.stop_all();
    }

    /// `/quitquitquit`.
    pub fn quit(&self) {
        self.quit.notify_one();
    }

    /// `/stats/prometheus` of the data plane.
    pub fn stats_prometheus(&self) -> String {
        self.rt.telemetry.render_prometheus()
    }

    /// Envoy's `/clusters` text: `cluster::host:port::health_flags::healthy` lines.
    pub fn clusters_text(&self) -> String {
        let snap = self.rt.snapshot.load_full();
        let mut names: Vec<_> = snap.clusters.keys().collect();
        names.sort();
        let mut out = String::new();
        for name in names {
            let c = &snap.clusters[name];
            if let Some(eps) = snap.endpoints_of(c) {
                for h in &eps.hosts {
                    let health = if h.healthy {
                        "healthy"
                    } else {
                        "/failed_eds_health"
                    };
                    let _ = writeln!(out, "{name}::{}::health_flags::{health}", h.addr);
                    let _ = writeln!(out, "{name}::{}::weight::{}", h.addr, h.weight);
                    let _ = writeln!(
                        out,
                        "{name}::{}::rq_active::{}",
                        h.addr,
                        h.active.load(Ordering::Relaxed)
                    );
                }
            }
        }
        out
    }

    /// The raw accepted resources and version of each type (`/config_dump`).
    pub fn raw_config(&self) -> BTreeMap<String, crate::model::snapshot::RawResources> {
        (*self.rt.snapshot.load().raw).clone()
    }
}
