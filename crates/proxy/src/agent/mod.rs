//! The agent: process start-up, identity, wiring of xDS to the data plane, health and
//! drain (pilot-agent's duties).

pub mod identity;
pub mod state;
pub mod xds;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::dataplane::{Options, Runtime};
use crate::telemetry::Telemetry;
use identity::Identity;
use state::ProxyState;

/// `ironmesh-proxy proxy sidecar|router …`
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// `sidecar` or `router` (gateway).
    #[arg(value_parser = ["sidecar", "router"])]
    pub role: String,
    /// Discovery's plaintext xDS address.
    #[arg(long, default_value = "127.0.0.1:15010")]
    pub discovery_address: String,
    /// DNS domain of the node id (default `<POD_NAMESPACE>.svc.cluster.local`).
    #[arg(long)]
    pub domain: Option<String>,
    /// Worker threads of the data plane (0: one per core), as Envoy's --concurrency.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Envoy-style admin API.
    #[arg(long, default_value = "127.0.0.1:15000")]
    pub admin_addr: SocketAddr,
    /// Agent port: merged stats and health (15020).
    #[arg(long, default_value_t = 15020)]
    pub status_port: u16,
    /// `/healthz/ready` (15021).
    #[arg(long, default_value_t = 15021)]
    pub readiness_port: u16,
    /// `/stats/prometheus` (15090).
    #[arg(long, default_value_t = 15090)]
    pub prometheus_port: u16,
    /// Where `virtualOutbound` listens (iptables redirects outbound traffic here).
    #[arg(long, default_value_t = 15001)]
    pub outbound_port: u16,
    /// Where `virtualInbound` listens (iptables redirects inbound traffic here).
    #[arg(long, default_value_t = 15006)]
    pub inbound_port: u16,
    /// Bind the listener for port PORT on ADDR instead (repeatable), e.g.
    /// `--bind-port 8080=127.0.0.1:0`. Also binds listeners that normally only receive
    /// hand-offs from `virtualOutbound` (`bind_to_port: false`), so tests and hosts
    /// without iptables can reach them directly.
    #[arg(long = "bind-port", value_name = "PORT=ADDR")]
    pub bind_ports: Vec<String>,
    /// Address the agent's own ports (status, readiness, prometheus) bind on.
    #[arg(long, default_value = "0.0.0.0")]
    pub agent_bind: std::net::IpAddr,
    /// Static config instead of discovery: JSON `{"listeners":[…],"routes":[…],
    /// "clusters":[…],"endpoints":[…]}` (the shape of discovery's golden files).
    #[arg(long)]
    pub config_file: Option<std::path::PathBuf>,
    /// Bound on protocol detection when a listener sets `listener_filters_timeout: 0s`.
    #[arg(long, default_value_t = 1000)]
    pub protocol_detection_timeout_ms: u64,
    /// Where the DNS proxy listens when DNS capture is on (`ISTIO_META_DNS_CAPTURE=true`,
    /// as pilot-agent reads it): it answers mesh names from discovery's name table (NDS)
    /// and forwards the rest to /etc/resolv.conf's servers. 0 picks a port.
    #[arg(long, default_value = "127.0.0.1:15053")]
    pub dns_addr: SocketAddr,
    /// Use SotW ADS instead of Delta.
    #[arg(long)]
    pub sotw: bool,
}

fn parse_bind_ports(v: &[String]) -> Result<HashMap<u16, SocketAddr>, String> {
    let mut out = HashMap::new();
    for s in v {
        let (p, a) = s.split_once('=').ok_or_else(|| {
            format!("--bind-port {s:?}: expected PORT=ADDR, e.g. 8080=127.0.0.1:0")
        })?;
        let p: u16 = p
            .parse()
            .map_err(|_| format!("--bind-port {s:?}: {p:?} is not a port"))?;
        let a: SocketAddr = a
            .parse()
            .map_err(|_| format!("--bind-port {s:?}: {a:?} is not IP:PORT"))?;
        out.insert(p, a);
    }
    Ok(out)
}

/// Envoy drains for Istio's `terminationDrainDuration` (default 5 s).
fn drain_duration() -> Duration {
    std::env::var("TERMINATION_DRAIN_DURATION_SECONDS")
        .ok()
        .and_then(|s| s.trim().trim_end_matches('s').parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(5))
}

/// Runs the proxy until SIGTERM.
pub fn run(args: ProxyArgs) -> ExitCode {
    use tracing_subscriber::prelude::*;
    let directives = std::env::var("IRONMESH_LOG").unwrap_or_else(|_| "info".into());
    let log = match crate::admin::reloadable_filter(&directives) {
        Ok((filter, control)) => {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
                .try_init();
            Some(control)
        }
        Err(e) => {
            eprintln!("ironmesh-proxy: IRONMESH_LOG: {e}");
            return ExitCode::from(2);
        }
    };
    // The control runtime: xDS, admin, agent ports, accepting. Requests run on the
    // `--concurrency` data-path workers (dataplane::workers).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ironmesh-proxy: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run_async(args, log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ironmesh-proxy: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run_async(args: ProxyArgs, log: Option<crate::admin::LogControl>) -> anyhow::Result<()> {
    use crate::admin::{self, AdminOptions, AdminState, AgentConfig};
    let identity = Identity::from_env(
        &args.role,
        args.domain.as_deref(),
        |k| std::env::var(k).ok(),
        std::env::vars(),
    )
    .map_err(anyhow::Error::msg)?;
    let node = identity.node();
    tracing::info!(node = %node.id, "starting");
    let options = Options {
        detect_timeout: Duration::from_millis(args.protocol_detection_timeout_ms),
        bind_overrides: parse_bind_ports(&args.bind_ports).map_err(anyhow::Error::msg)?,
        outbound_port: args.outbound_port,
        inbound_port: args.inbound_port,
        sidecar: args.role == "sidecar",
    };
    let local = node
        .metadata
        .as_ref()
        .map(crate::telemetry::PeerMetadata::from_pb_node_metadata)
        .unwrap_or_else(|| identity.peer_metadata());
    let peer_headers = local.to_headers(&node.id);
    let telemetry = Arc::new(Telemetry::new(local));
    let workers = crate::dataplane::workers::Workers::start(
        crate::dataplane::workers::worker_count(args.concurrency),
    )
    .map_err(|e| anyhow::anyhow!("cannot start the worker threads: {e}"))?;
    let rt = Runtime::new(telemetry, options, Some(peer_headers), workers);
    let state = ProxyState::new(rt.clone());

    let agent = AgentConfig::from_env().map_err(|e| anyhow::anyhow!("{e}"))?;
    let admin_state = AdminState::with_options(
        node.clone(),
        state.clone(),
        AdminOptions {
            log,
            agent,
            version: None,
        },
    );
    let (a, _) = admin::serve_admin(args.admin_addr, admin_state.clone()).await?;
    println!("listening admin={a}");
    let (a, _) = admin::serve_status(
        SocketAddr::new(args.agent_bind, args.status_port),
        admin_state.clone(),
    )
    .await?;
    println!("listening status={a}");
    let (a, _) = admin::serve_readiness(
        SocketAddr::new(args.agent_bind, args.readiness_port),
        admin_state.clone(),
    )
    .await?;
    println!("listening readiness={a}");
    let (a, _) = admin::serve_prometheus(
        SocketAddr::new(args.agent_bind, args.prometheus_port),
        admin_state.clone(),
    )
    .await?;
    println!("listening prometheus={a}");

    // DNS capture is opt-in, as in Istio: the injector (or `ironmesh up`) sets the env
    // together with the iptables `--redirect-dns` rules that send port 53 here.
    let dns_capture = std::env::var("ISTIO_META_DNS_CAPTURE").is_ok_and(|v| v == "true");
    let (dns_tx, _dns_server) = if dns_capture && args.config_file.is_none() {
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(crate::dns::NameTable::default()));
        let namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
        let server =
            crate::dns::serve(args.dns_addr, rx, crate::dns::system_upstreams(), namespace)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot bind the DNS proxy on {} ({e}); pick another with --dns-addr or unset ISTIO_META_DNS_CAPTURE",
                        args.dns_addr
                    )
                })?;
        println!("listening dns={}", server.udp_addr);
        (Some(tx), Some(server))
    } else {
        (None, None)
    };
    let handler = Arc::new(xds::XdsHandler {
        state: state.clone(),
        admin: admin_state,
        dns: dns_tx.clone(),
    });
    let _client = match &args.config_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read --config-file {}: {e}", path.display())
            })?;
            let snap = crate::model::Snapshot::from_json(&text)
                .map_err(|e| anyhow::anyhow!("--config-file {}: {e}", path.display()))?;
            use ironmesh_xds::client::Handler;
            for url in [
                ironmesh_xds::type_url::CLUSTER,
                ironmesh_xds::type_url::ENDPOINT,
                ironmesh_xds::type_url::ROUTE,
                ironmesh_xds::type_url::LISTENER,
            ] {
                let raw = snap
                    .raw
                    .get(url)
                    .map(|r| r.resources.clone())
                    .unwrap_or_default();
                handler
                    .apply(&xds::update(url, "file", &raw))
                    .map_err(anyhow::Error::msg)?;
            }
            None
        }
        None => {
            let mut config =
                ironmesh_xds::client::ClientConfig::new(args.discovery_address.clone(), node);
            if args.sotw {
                config.protocol = ironmesh_xds::Protocol::Sotw;
            }
            // Gateway certificates, by the names the listeners' TLS contexts use.
            config
                .types
                .push(ironmesh_xds::client::TypeSubscription::named(
                    ironmesh_xds::type_url::SECRET,
                ));
            if dns_tx.is_some() {
                config.types.push(ironmesh_xds::client::TypeSubscription {
                    type_url: ironmesh_xds::type_url::NAME_TABLE.to_string(),
                    wildcard: true,
                });
            }
            Some(ironmesh_xds::client::AdsClient::spawn(config, handler))
        }
    };

    // Readiness can also become true by the warming timeout, without an update.
    let warm = state.clone();
    tokio::spawn(async move {
        while !warm.ready() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        warm.check_ready();
    });

    wait_for_shutdown(&state).await;
    let drain = drain_duration();
    tracing::info!(?drain, "draining");
    println!("draining");
    state.drain_listeners();
    let deadline = tokio::time::Instant::now() + drain;
    while tokio::time::Instant::now() < deadline
        && rt.active_connections.load(Ordering::Relaxed) > 0
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(
        remaining = rt.active_connections.load(Ordering::Relaxed),
        "exiting"
    );
    Ok(())
}

async fn wait_for_shutdown(state: &ProxyState) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            state.quit.notified().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = state.quit.notified() => {}
    }
}
