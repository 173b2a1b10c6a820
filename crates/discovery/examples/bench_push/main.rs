//! Control-plane benchmark, part 2: the real `ironmesh-discovery` binary under load.
//!
//! For each mesh size: start discovery on the mesh written by `bench_generate`, read its
//! RSS once loaded, connect N Delta ADS clients that behave like Envoy (subscribe, ACK
//! everything), read its RSS again; at the latency sizes, move one pod to a new IP by
//! rewriting its file and time, per client, file write → EDS response carrying the new
//! address. Optionally start a real Envoy sidecar on the same discovery and read its
//! RSS once its config is loaded.
//!
//! Every address dialled is 127.0.0.1 (discovery's ports, Envoy's admin). The pod IPs
//! in the manifests are data that nobody connects to; `bench/discovery.sh` also runs this
//! in a private network namespace, where they are not routable at all.
//!
//! Prints tab-separated result lines (`row`, services, cell) on stdout.

#[path = "../bench_support/mod.rs"]
mod bench_support;
mod client;
mod procs;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use bench_support::{emit, kib, mesh_dir, ms, parse_sizes, percentile, rss_kib};
use client::{Expect, Shared};
use procs::{http_get, Discovery, Envoy};

#[derive(Debug, Parser)]
struct Args {
    /// The `ironmesh-discovery` binary (a release build).
    #[arg(long)]
    discovery: PathBuf,
    /// Work directory: the meshes are (re)written to `<work>/mesh-<services>/`, logs
    /// next to them.
    #[arg(long)]
    work: PathBuf,
    /// Mesh sizes (services) to start discovery with.
    #[arg(long, default_value = "100,1000,10000")]
    sizes: String,
    /// Sizes at which endpoint-change latency is measured.
    #[arg(long, default_value = "1000")]
    latency_sizes: String,
    /// Debounce settings to measure latency with (the first also serves the RSS rows).
    #[arg(long, default_value = "100ms,10ms")]
    debounce: String,
    /// ADS clients to connect: one number for every size, or one per size (each client
    /// at 10 000 services costs seconds of CPU to sync, so a bounded run uses fewer).
    #[arg(long, default_value = "100")]
    clients: String,
    /// Endpoint changes per latency measurement.
    #[arg(long, default_value_t = 5)]
    changes: usize,
    /// A real Envoy binary: when given, its RSS is measured at `--envoy-services`.
    #[arg(long)]
    envoy: Option<PathBuf>,
    #[arg(long, default_value_t = 1000)]
    envoy_services: usize,
}

/// Longest wait for any one phase, so a broken build ends the run instead of hanging it.
const PHASE_LIMIT: Duration = Duration::from_secs(180);
/// Longest wait for one endpoint change to reach every client.
const CHANGE_LIMIT: Duration = Duration::from_secs(10);
/// Pause between changes, so two changes never share a debounce window.
const BETWEEN_CHANGES: Duration = Duration::from_millis(300);
/// Settling time before reading RSS.
const SETTLE: Duration = Duration::from_secs(1);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sizes = parse_sizes(&args.sizes).map_err(anyhow::Error::msg)?;
    let latency_sizes = parse_sizes(&args.latency_sizes).map_err(anyhow::Error::msg)?;
    let debounces: Vec<String> = args
        .debounce
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    anyhow::ensure!(!debounces.is_empty(), "--debounce needs at least one value");
    let clients = parse_sizes(&args.clients).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        clients.len() == 1 || clients.len() == sizes.len(),
        "--clients takes one number, or one per size ({} sizes)",
        sizes.len()
    );
    anyhow::ensure!(
        clients.iter().all(|c| (1..1000).contains(c)),
        "--clients must be 1..999"
    );
    for (n, &services) in sizes.iter().enumerate() {
        // Written afresh, so the pods that changes move start from their own IPs.
        bench_support::write_manifests(&mesh_dir(&args.work, services), services)?;
        let mut changes_made = 0;
        for (i, debounce) in debounces.iter().enumerate() {
            let latency = latency_sizes.contains(&services);
            if i > 0 && !latency {
                break;
            }
            let run = Run {
                args: &args,
                services,
                clients: clients[n.min(clients.len() - 1)],
                debounce,
                first: i == 0,
                // Envoy on the last run at its size, so the table keeps discovery's rows
                // together.
                envoy: services == args.envoy_services && (i + 1 == debounces.len() || !latency),
                latency,
            };
            run.execute(&mut changes_made)
                .await
                .with_context(|| format!("{services} services, debounce {debounce}"))?;
        }
    }
    Ok(())
}

struct Run<'a> {
    args: &'a Args,
    services: usize,
    clients: usize,
    debounce: &'a str,
    /// The first run at this size also reports RSS, start-up and sync times.
    first: bool,
    /// This run also measures Envoy (when `--envoy` is given).
    envoy: bool,
    latency: bool,
}

impl Run<'_> {
    async fn execute(&self, changes_made: &mut usize) -> anyhow::Result<()> {
        let services = self.services;
        let clients = self.clients;
        let dir = mesh_dir(&self.args.work, services);
        let log = self
            .args
            .work
            .join(format!("discovery-{services}-{}.log", self.debounce));
        let started = Instant::now();
        let discovery = Discovery::start(&self.args.discovery, &dir, self.debounce, log)?;
        wait_ready(&discovery).await?;
        if self.first {
            emit(
                "discovery: process start → /ready",
                services,
                &ms(started.elapsed()),
            );
            tokio::time::sleep(SETTLE).await;
            emit(
                "discovery RSS: loaded, no proxies",
                services,
                &kib(rss_kib(discovery.pid()).unwrap_or(0)),
            );
        }

        let (expect_tx, expect_rx) = watch::channel(None);
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
        let shared = Shared {
            synced: Arc::new(AtomicUsize::new(0)),
            expect: expect_rx,
            seen: seen_tx,
        };
        let uri = format!("http://{}", discovery.xds);
        let mut tasks = JoinSet::new();
        let started = Instant::now();
        for index in 0..clients {
            tasks.spawn(client::run(index, uri.clone(), shared.clone()));
        }
        let deadline = started + PHASE_LIMIT;
        while shared.synced.load(Ordering::SeqCst) < clients {
            if let Some(ended) = tasks.try_join_next() {
                bail!(
                    "an ADS client stopped before syncing: {:?}; see {}",
                    ended
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| format!("{e:#}"))),
                    discovery.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {clients} clients synced within {PHASE_LIMIT:?}",
                    shared.synced.load(Ordering::SeqCst)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.first {
            emit(
                "Delta ADS clients: connect → all synced",
                services,
                &format!("{} ({clients} clients)", ms(started.elapsed())),
            );
            tokio::time::sleep(SETTLE).await;
            emit(
                "discovery RSS: those clients connected",
                services,
                &format!("{} ({clients})", kib(rss_kib(discovery.pid()).unwrap_or(0))),
            );
        }

        if self.latency {
            let mut samples = Vec::new();
            let mut missed = 0;
            let pushes_before = discovery.pushes().await.unwrap_or_default();
            for _ in 0..self.args.changes {
                let seq = *changes_made;
                *changes_made += 1;
                // Pod 0 of a different service each time, spread over the mesh.
                let svc = bench_support::changed_service(seq, services);
                let ip = bench_support::changed_ip(seq);
                expect_tx.send_replace(Some(Arc::new(Expect {
                    seq,
                    cluster: bench_support::cluster_name(svc),
                    ip: ip.to_string(),
                })));
                let path = bench_support::pod_file(&dir, svc);
                let text = bench_support::pod_yaml(svc, 0, ip);
                let written = Instant::now();
                bench_support::replace_file(&path, &text)?;
                let mut got = 0;
                let until = tokio::time::Instant::now() + CHANGE_LIMIT;
                while got < clients {
                    match tokio::time::timeout_at(until, seen_rx.recv()).await {
                        Ok(Some((s, at))) if s == seq => {
                            got += 1;
                            samples.push(at.saturating_duration_since(written));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
                missed += clients - got;
                tokio::time::sleep(BETWEEN_CHANGES).await;
            }
            let min = percentile(&samples, 0.0).unwrap_or_default();
            let p50 = percentile(&samples, 50.0).unwrap_or_default();
            let p99 = percentile(&samples, 99.0).unwrap_or_default();
            let note = if missed > 0 {
                format!(
                    " ({missed} of {} not within {CHANGE_LIMIT:?})",
                    clients * self.args.changes
                )
            } else {
                String::new()
            };
            emit(
                &format!(
                    "endpoint change → all clients, p50 / p99 (first) (debounce {})",
                    self.debounce
                ),
                services,
                &format!(
                    "{} / {} ({}) ({clients} clients){note}",
                    ms(p50),
                    ms(p99),
                    ms(min)
                ),
            );
            if self.first {
                // Which types those changes made discovery regenerate and send.
                let after = discovery.pushes().await.unwrap_or_default();
                let sent: Vec<String> = after
                    .iter()
                    .map(|(t, n)| (t, n - pushes_before.get(t).copied().unwrap_or(0)))
                    .filter(|(_, n)| *n > 0)
                    .map(|(t, n)| format!("{t} {n}"))
                    .collect();
                emit(
                    &format!(
                        "responses sent for those {} changes, by type",
                        self.args.changes
                    ),
                    services,
                    &if sent.is_empty() {
                        "none".to_string()
                    } else {
                        sent.join(", ")
                    },
                );
            }
        }

        if let Some(bin) = self.args.envoy.as_ref().filter(|_| self.envoy) {
            // Stop the benchmark clients first, so Envoy loads on an idle server.
            tasks.abort_all();
            envoy_rss(bin, &discovery, &self.args.work, services).await?;
        }
        tasks.abort_all();
        drop(discovery);
        Ok(())
    }
}

async fn wait_ready(d: &Discovery) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_LIMIT;
    loop {
        if let Ok((200, _)) = http_get(d.http, "/ready").await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "discovery not ready within {PHASE_LIMIT:?}; see {}",
                d.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn envoy_rss(
    bin: &std::path::Path,
    discovery: &Discovery,
    work: &std::path::Path,
    services: usize,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let envoy = Envoy::start(bin, discovery.xds, &work.join("envoy"))?;
    let deadline = started + PHASE_LIMIT;
    loop {
        let clusters = envoy
            .stat("cluster_manager.active_clusters")
            .await
            .unwrap_or(0);
        let warming = envoy.stat("cluster_manager.warming_clusters").await;
        let listeners = envoy
            .stat("listener_manager.total_listeners_active")
            .await
            .unwrap_or(0);
        let ready = matches!(http_get(envoy.admin, "/ready").await, Ok((200, _)));
        if ready && warming == Some(0) && listeners > 0 && clusters as usize >= services {
            emit(
                "Envoy sidecar: start → config loaded (clusters / listeners)",
                services,
                &format!("{} ({clusters} / {listeners})", ms(started.elapsed())),
            );
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "Envoy did not load the config within {PHASE_LIMIT:?} ({clusters} clusters, \
                 {listeners} listeners); see {}",
                envoy.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(2 * SETTLE).await;
    emit(
        "Envoy sidecar RSS (concurrency 2)",
        services,
        &kib(rss_kib(envoy.pid()).unwrap_or(0)),
    );
    if let Some(heap) = envoy.stat("server.memory_allocated").await {
        emit(
            "Envoy sidecar heap allocated",
            services,
            &bench_support::bytes(heap),
        );
    }
    let mut rejected = 0;
    for stat in [
        "cluster_manager.cds.update_rejected",
        "listener_manager.lds.update_rejected",
    ] {
        rejected += envoy.stat(stat).await.unwrap_or(0);
    }
    if rejected > 0 {
        emit(
            "Envoy sidecar: rejected updates (NACKs)",
            services,
            &format!("{rejected}; see {}", envoy.log.display()),
        );
    }
    Ok(())
}
