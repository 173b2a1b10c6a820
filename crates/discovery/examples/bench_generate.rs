//! Control-plane benchmark, part 1: writes the synthetic meshes and measures, in process,
//! what one push costs per proxy: loading the manifests into the store, building the
//! PushContext, and generating + encoding LDS/RDS/CDS/EDS for one sidecar.
//!
//! Run through `bench/discovery.sh`, which prints the results as one table; alone:
//! `cargo run --release -p ironmesh-discovery --example bench_generate -- --work DIR`.
//! Prints tab-separated result lines (`row`, services, cell) on stdout.

mod bench_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use ironmesh_discovery::{
    generate, Proxy, PushContext, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE,
};
use ironmesh_registry::{FileChange, FileOutcome, Store};
use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use prost::Message as _;

use bench_support::{bytes, emit, median, mesh_dir, ms, parse_sizes, PODS_PER_SERVICE};

#[derive(Debug, Parser)]
struct Args {
    /// Work directory: the meshes are written to `<work>/mesh-<services>/`.
    #[arg(long)]
    work: PathBuf,
    /// Numbers of services, comma-separated.
    #[arg(long, default_value = "100,1000,10000")]
    sizes: String,
    /// Timed runs per measurement (the median is reported); large meshes get fewer, so
    /// the whole run stays bounded.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const TYPES: [(&str, &str); 4] = [
    ("LDS", LISTENER_TYPE),
    ("RDS", ROUTE_TYPE),
    ("CDS", CLUSTER_TYPE),
    ("EDS", ENDPOINT_TYPE),
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sizes = parse_sizes(&args.sizes).map_err(anyhow::Error::msg)?;
    let proxy = client_proxy()?;
    for &services in &sizes {
        let dir = mesh_dir(&args.work, services);
        bench_support::write_manifests(&dir, services)
            .with_context(|| format!("cannot write the synthetic mesh to {}", dir.display()))?;
        // At 10 000 services one run takes seconds; three keep the median honest.
        let runs = if services >= 10_000 {
            args.runs.min(3)
        } else {
            args.runs
        }
        .max(1);
        measure(&dir, services, runs, &proxy)?;
    }
    Ok(())
}

/// The sidecar of a client pod in `default`, as Envoy would introduce itself.
fn client_proxy() -> anyhow::Result<Proxy> {
    let node = Node {
        id: bench_support::CLIENT_NODE_ID.to_string(),
        metadata: Some(Struct {
            fields: [(
                "NAMESPACE".to_string(),
                Value {
                    kind: Some(Kind::StringValue("default".to_string())),
                },
            )]
            .into(),
        }),
        ..Default::default()
    };
    Proxy::from_node(&node).context("the benchmark's node id does not parse")
}

/// The store's load time when every object has a file of its own. The store checks each
/// file's objects against every other file's, so this grows with files × objects: skipped
/// where it would take minutes.
fn load_one_per_object(services: usize) -> anyhow::Result<String> {
    if services > 2_000 {
        return Ok("not run (grows with n²)".to_string());
    }
    let changes: Vec<FileChange> = bench_support::manifests_one_per_object(services)
        .into_iter()
        .map(|(path, text)| FileChange::Write { path, text })
        .collect();
    let files = changes.len();
    let mut store = Store::new("cluster.local", None);
    let started = Instant::now();
    store.apply(changes);
    let took = started.elapsed();
    let endpoints: usize = store
        .snapshot()
        .services
        .endpoints
        .values()
        .flat_map(|ports| ports.values())
        .map(Vec::len)
        .sum();
    anyhow::ensure!(
        endpoints == services * PODS_PER_SERVICE,
        "one-file-per-object mesh: expected {} endpoints, found {endpoints}",
        services * PODS_PER_SERVICE
    );
    Ok(format!("{} ({files} files)", ms(took)))
}

fn measure(
    dir: &std::path::Path,
    services: usize,
    runs: usize,
    proxy: &Proxy,
) -> anyhow::Result<()> {
    let files = ironmesh_config::load::manifest_files(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?;
    let changes = files
        .iter()
        .map(|f| {
            Ok(FileChange::Write {
                path: f.display().to_string(),
                text: std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Parse + validate + registry build: what discovery does when it reads the directory
    // (file reading excluded). Once only: a store loads a file set once.
    let mut store = Store::new("cluster.local", None);
    let started = Instant::now();
    let outcomes = store.apply(changes);
    let load = started.elapsed();
    let refused: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, FileOutcome::Rejected { .. }))
        .collect();
    anyhow::ensure!(
        refused.is_empty(),
        "the store refused {} synthetic file(s), first: {:?}",
        refused.len(),
        refused.first()
    );
    let snapshot = store.snapshot();
    let endpoints: usize = snapshot
        .services
        .services
        .iter()
        .map(|s| snapshot.services.endpoints(&s.hostname, 80).len())
        .sum();
    anyhow::ensure!(
        endpoints == services * PODS_PER_SERVICE,
        "expected {} endpoints in the registry, found {endpoints}",
        services * PODS_PER_SERVICE
    );
    emit(
        "manifest files / endpoints",
        services,
        &format!("{} / {endpoints}", files.len()),
    );
    emit("store: load manifests → snapshot", services, &ms(load));
    emit(
        "store: same mesh, one file per object",
        services,
        &load_one_per_object(services)?,
    );

    // Warm-up, untimed: the first run pays for allocator growth and cold caches.
    let push = PushContext::new(Arc::clone(&snapshot), "cluster.local");
    for (_, type_url) in TYPES {
        generate(&push, proxy, type_url)?;
    }
    drop(push);

    let mut build_times = Vec::new();
    let mut push = None;
    for _ in 0..runs {
        let started = Instant::now();
        let p = PushContext::new(Arc::clone(&snapshot), "cluster.local");
        build_times.push(started.elapsed());
        push = Some(p);
    }
    let push = push.context("no run")?;
    emit(
        "PushContext build (median)",
        services,
        &ms(median(&build_times).unwrap_or_default()),
    );

    let mut total_time = Vec::new();
    let mut hash_time = Vec::new();
    let mut total_bytes = 0u64;
    let mut per_type_time: Vec<Vec<Duration>> = vec![Vec::new(); TYPES.len()];
    let mut per_type: Vec<(usize, u64)> = vec![(0, 0); TYPES.len()];
    for _ in 0..runs {
        let mut run_total = Duration::ZERO;
        let mut generated = Vec::new();
        for (i, (_, type_url)) in TYPES.iter().enumerate() {
            let started = Instant::now();
            let resources = generate(&push, proxy, type_url)?;
            let took = started.elapsed();
            run_total += took;
            per_type_time[i].push(took);
            let size: u64 = resources
                .iter()
                .map(|(_, any)| any.encoded_len() as u64)
                .sum();
            per_type[i] = (resources.len(), size);
            generated.extend(resources);
        }
        total_time.push(run_total);
        // What the ADS server adds per proxy and push on Delta streams: a content hash of
        // every resource it might send, to diff against what the client holds.
        let started = Instant::now();
        for (_, any) in generated.drain(..) {
            std::hint::black_box(ironmesh_xds::hash::resource_version(&ironmesh_xds::Any {
                type_url: any.type_url,
                value: any.value,
            }));
        }
        hash_time.push(started.elapsed());
    }
    for (i, (name, _)) in TYPES.iter().enumerate() {
        let (count, size) = per_type[i];
        total_bytes += size;
        emit(
            &format!("{name}: generate + encode (median)"),
            services,
            &ms(median(&per_type_time[i]).unwrap_or_default()),
        );
        emit(
            &format!("{name}: resources / bytes"),
            services,
            &format!("{count} / {}", bytes(size)),
        );
    }
    emit(
        "all four types: generate + encode per proxy (median)",
        services,
        &ms(median(&total_time).unwrap_or_default()),
    );
    emit(
        "all four types: bytes per proxy",
        services,
        &bytes(total_bytes),
    );
    emit(
        "Delta resource versions (content hash) of all four types per proxy (median)",
        services,
        &ms(median(&hash_time).unwrap_or_default()),
    );
    Ok(())
}
