//! The monitoring port (`--monitoring-addr`): Prometheus text on `/metrics`, with
//! istiod's metric names.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use ironmesh_registry::Snapshot;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Config-side metrics (the ADS server registers its own `pilot_xds*` ones).
#[derive(Clone)]
pub struct Metrics {
    services: Gauge<i64, AtomicI64>,
    virtual_services: Gauge<i64, AtomicI64>,
    rejected_files: Gauge<i64, AtomicI64>,
    config_rejections: Counter<u64, AtomicU64>,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            services: Gauge::default(),
            virtual_services: Gauge::default(),
            rejected_files: Gauge::default(),
            config_rejections: Counter::default(),
        };
        registry.register(
            "pilot_services",
            "Services known to the control plane",
            m.services.clone(),
        );
        registry.register(
            "pilot_virt_services",
            "VirtualServices known to the control plane",
            m.virtual_services.clone(),
        );
        registry.register(
            "ironmesh_config_rejected_files",
            "Config files whose latest content failed validation (their last good objects stay in force; see /debug/configz)",
            m.rejected_files.clone(),
        );
        registry.register(
            "ironmesh_config_rejections",
            "Snapshots published while at least one file was rejected",
            m.config_rejections.clone(),
        );
        m
    }

    pub fn observe_snapshot(&self, s: &Snapshot) {
        self.services.set(s.services.services.len() as i64);
        self.virtual_services
            .set(s.of_kind("VirtualService").count() as i64);
        self.rejected_files.set(s.rejected.len() as i64);
        if !s.rejected.is_empty() {
            self.config_rejections.inc();
        }
        for r in &s.rejected {
            for d in &r.diagnostics {
                tracing::warn!(file = %r.file, "config rejected: {d}");
            }
        }
    }

    pub fn rejected_files(&self) -> i64 {
        self.rejected_files.get()
    }
}

pub fn router(registry: Arc<Registry>) -> Router {
    Router::new().route("/metrics", get(move || render(registry.clone())))
}

async fn render(registry: Arc<Registry>) -> impl IntoResponse {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        text = format!("# encoding failed: {e}\n");
    }
    // prometheus-client always suffixes counters with `_total`; istiod's two xDS counters
    // are named without it, and dashboards query those names.
    let text = text
        .replace("pilot_xds_pushes_total", "pilot_xds_pushes")
        .replace("pilot_total_xds_rejects_total", "pilot_total_xds_rejects");
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
