//! The discovery process: arguments, start-up, and the tasks that run until shutdown.

mod debug;
mod generator;
mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use ironmesh_discovery::PushContext;
use ironmesh_registry::{Change, DirSource, Snapshot, Store};
use ironmesh_xds::{AdsServer, Debouncer, DebouncerConfig, PushPublisher, PushScope, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use generator::MeshGenerator;

/// ironmesh-discovery — the control plane: turns services and Istio config into Envoy
/// configuration and pushes it to every proxy over ADS (SotW and Delta).
///
/// Every `--*-addr` accepts port 0; the chosen ports are printed one per line as
/// `listening xds=127.0.0.1:NNNNN`, `listening http=…`, `listening monitoring=…`.
#[derive(Debug, clap::Parser)]
#[command(name = "ironmesh-discovery", version)]
pub struct Args {
    /// Directory of manifests (Kubernetes objects and Istio config), watched recursively;
    /// changes reach connected proxies within a second.
    #[arg(long, value_name = "DIR")]
    pub config_dir: PathBuf,
    /// xDS (ADS gRPC) listen address: Istio's plaintext xDS port.
    #[arg(long, default_value = "127.0.0.1:15010")]
    pub grpc_addr: SocketAddr,
    /// Debug HTTP listen address: /ready and /debug/{syncz,config_dump,registryz,configz,push_status}.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Prometheus metrics listen address (/metrics).
    #[arg(long, default_value = "127.0.0.1:15014")]
    pub monitoring_addr: SocketAddr,
    /// Cluster DNS domain: services are `name.namespace.svc.<domain>`.
    #[arg(long, default_value = "cluster.local")]
    pub domain: String,
    /// MeshConfig file (YAML, as the `mesh` key of the istio ConfigMap). An `istio`
    /// ConfigMap in the config directory's root namespace overrides it field by field.
    #[arg(long, value_name = "FILE")]
    pub mesh_config: Option<PathBuf>,
    /// Quiet time after the last change before a push (Istio's PILOT_DEBOUNCE_AFTER).
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub debounce_after: Duration,
    /// Longest a push waits while changes keep coming (PILOT_DEBOUNCE_MAX).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub debounce_max: Duration,
    /// Proxies pushed to at once (PILOT_PUSH_THROTTLE).
    #[arg(long, default_value_t = 100)]
    pub push_throttle: usize,
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, default_value = "info", env = "IRONMESH_LOG")]
    pub log_level: String,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    ironmesh_config::types::parse_duration(s)
}

pub fn init_logging(args: &Args) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Shared state the HTTP handlers read.
pub struct State {
    pub store: Arc<Mutex<Store>>,
    pub ads: AdsServer<MeshGenerator>,
    pub generator: Arc<MeshGenerator>,
    pub publisher: Arc<PushPublisher>,
    pub metrics: metrics::Metrics,
    pub ready: watch::Receiver<bool>,
    pub domain: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let base_mesh = match &args.mesh_config {
        Some(path) => Some(load_mesh_config(path)?),
        None => None,
    };
    if !args.config_dir.is_dir() {
        bail!(
            "--config-dir {} is not a directory: point it at the folder holding your manifests",
            args.config_dir.display()
        );
    }

    let store = Arc::new(Mutex::new(Store::new(&args.domain, base_mesh)));
    let snapshots = store
        .lock()
        .map_err(|_| anyhow::anyhow!("store lock poisoned"))?
        .subscribe();
    let _dir = DirSource::start(args.config_dir.clone(), store.clone())
        .with_context(|| format!("cannot watch --config-dir {}", args.config_dir.display()))?;

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = metrics::Metrics::new(&mut registry);
    let generator = Arc::new(MeshGenerator::new(&args.domain));
    let publisher = Arc::new(PushPublisher::new());
    let ads = AdsServer::new(
        generator.clone(),
        publisher.subscribe(),
        ServerConfig {
            max_concurrent_pushes: args.push_throttle,
            ..Default::default()
        },
        &mut registry,
    );

    // Bind everything before announcing, so a test that reads the ports can connect.
    let grpc = TcpListener::bind(args.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on --grpc-addr {}", args.grpc_addr))?;
    let http = TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("cannot listen on --http-addr {}", args.http_addr))?;
    let monitoring = TcpListener::bind(args.monitoring_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on --monitoring-addr {}",
                args.monitoring_addr
            )
        })?;
    for (what, l) in [("xds", &grpc), ("http", &http), ("monitoring", &monitoring)] {
        let addr = l.local_addr()?;
        println!("listening {what}={addr}");
        tracing::info!(%addr, "listening {what}");
    }

    let (ready_tx, ready_rx) = watch::channel(false);
    let (changes, debouncer) = Debouncer::channel(DebouncerConfig {
        quiet: args.debounce_after,
        max: args.debounce_max,
    });
    tokio::spawn({
        let publisher = publisher.clone();
        async move { debouncer.run(&publisher).await }
    });
    tokio::spawn(apply_snapshots(
        snapshots,
        generator.clone(),
        args.domain.clone(),
        changes,
        ready_tx,
        metrics.clone(),
    ));

    let state = Arc::new(State {
        store,
        ads: ads.clone(),
        generator: generator.clone(),
        publisher: publisher.clone(),
        metrics: metrics.clone(),
        ready: ready_rx,
        domain: args.domain.clone(),
    });
    let registry = Arc::new(registry);

    let grpc_server = tonic::transport::Server::builder()
        .add_service(ads.into_service())
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc),
            shutdown_signal(),
        );
    let http_server =
        axum::serve(http, debug::router(state.clone())).with_graceful_shutdown(shutdown_signal());
    let monitoring_server = axum::serve(monitoring, metrics::router(registry))
        .with_graceful_shutdown(shutdown_signal());
    let (g, h, m) = tokio::join!(grpc_server, http_server, monitoring_server);
    g.context("xds server failed")?;
    h.context("debug HTTP server failed")?;
    m.context("monitoring server failed")?;
    tracing::info!("shut down");
    Ok(())
}

fn load_mesh_config(path: &std::path::Path) -> anyhow::Result<ironmesh_config::mesh::MeshConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --mesh-config {}", path.display()))?;
    let parsed = ironmesh_config::mesh::parse_mesh_config(&text);
    for p in &parsed.problems {
        eprintln!(
            "{}:{}: {}: {}: {}",
            path.display(),
            p.line.unwrap_or(1),
            p.severity,
            p.path,
            p.message
        );
    }
    parsed.into_result().map_err(|errors| {
        anyhow::anyhow!(
            "--mesh-config {} has {} error(s) (listed above); fix them or leave the flag out to use Istio's defaults",
            path.display(),
            errors.iter().filter(|e| e.severity == ironmesh_config::Severity::Error).count()
        )
    })
}

/// Turns each new snapshot into a PushContext and a debounced push.
async fn apply_snapshots(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    generator: Arc<MeshGenerator>,
    domain: String,
    changes: tokio::sync::mpsc::UnboundedSender<PushScope>,
    ready: watch::Sender<bool>,
    metrics: metrics::Metrics,
) {
    let mut applied = 0u64;
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        if snapshot.version > applied {
            applied = snapshot.version;
            metrics.observe_snapshot(&snapshot);
            let scope = match &snapshot.change {
                Change::Full => Some(PushScope::Full),
                Change::Endpoints(hosts) if hosts.is_empty() => None,
                Change::Endpoints(_) => Some(PushScope::Endpoints),
            };
            let domain = domain.clone();
            let built = tokio::task::spawn_blocking(move || {
                let version = snapshot.version;
                (version, PushContext::new(snapshot, &domain))
            })
            .await;
            match built {
                Ok((version, push)) => {
                    generator.swap(Arc::new(push), version);
                    tracing::info!(snapshot = version, "config applied");
                    if let Some(scope) = scope {
                        let _ = changes.send(scope);
                    }
                    let _ = ready.send(true);
                }
                Err(e) => tracing::error!("building the push context failed: {e}"),
            }
        }
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
