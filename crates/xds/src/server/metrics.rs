//! The ADS server's metrics, named as Istio names them so dashboards carry over.
//! Registered into a registry the caller owns: several servers can live in one process.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `type="cds"`, … as Istio labels xDS types.
pub(crate) type TypeLabel = [(&'static str, String); 1];

fn label(type_url: &str) -> TypeLabel {
    [("type", crate::type_url::metric_label(type_url))]
}

fn push_time_histogram() -> Histogram {
    // Istio's buckets for pilot_xds_push_time.
    Histogram::new([0.01, 0.1, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0])
}

#[derive(Clone)]
pub(crate) struct Metrics {
    connected: Gauge,
    pushes: Family<TypeLabel, Counter>,
    rejects: Family<TypeLabel, Counter>,
    push_time: Family<TypeLabel, Histogram, fn() -> Histogram>,
    convergence: Histogram,
}

impl Metrics {
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            connected: Gauge::default(),
            pushes: Family::default(),
            rejects: Family::default(),
            push_time: Family::new_with_constructor(push_time_histogram),
            convergence: Histogram::new([0.1, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0, 30.0]),
        };
        registry.register(
            "pilot_xds",
            "Number of endpoints connected to this pilot using XDS",
            metrics.connected.clone(),
        );
        registry.register(
            "pilot_xds_pushes",
            "Pilot build and send errors for lds, rds, cds and eds",
            metrics.pushes.clone(),
        );
        registry.register(
            "pilot_total_xds_rejects",
            "Total number of XDS responses from pilot rejected by proxy",
            metrics.rejects.clone(),
        );
        registry.register(
            "pilot_xds_push_time",
            "Total time in seconds Pilot takes to push lds, rds, cds and eds",
            metrics.push_time.clone(),
        );
        registry.register(
            "pilot_proxy_convergence_time",
            "Delay in seconds between config change and a proxy receiving all required \
             configuration",
            metrics.convergence.clone(),
        );
        metrics
    }

    pub(crate) fn connected(&self) {
        self.connected.inc();
    }

    pub(crate) fn disconnected(&self) {
        self.connected.dec();
    }

    pub(crate) fn pushed(&self, type_url: &str, seconds: f64) {
        let label = label(type_url);
        self.pushes.get_or_create(&label).inc();
        self.push_time.get_or_create(&label).observe(seconds);
    }

    pub(crate) fn rejected(&self, type_url: &str) {
        self.rejects.get_or_create(&label(type_url)).inc();
    }

    pub(crate) fn converged(&self, seconds: f64) {
        self.convergence.observe(seconds);
    }
}
