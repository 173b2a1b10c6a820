//! Data-plane benchmark driver (run by `bench/proxy.sh`, which builds everything in
//! release and passes the paths). Measures on loopback: direct to the backend,
//! ironmesh-proxy, Envoy and nginx as one-hop HTTP/1.1 proxies, then both xDS proxies
//! as sidecars holding 1 000 services; prints one markdown table.
//!
//! ```text
//! proxy_bench --work DIR --loadgen PATH [--wrk PATH] [--proxy PATH] [--duration 10]
//!             [--rate 1000] [--conns 16] [--concurrency 2] [--services 1000] [--rounds 3]
//! ```
//! Every path runs at once (idle when not measured): ironmesh-proxy and Envoy as two
//! gateways of the same mesh config on their own ports. The fixed-rate and idle figures
//! are taken one path at a time; the closed-loop maximum in `--rounds` rounds, each
//! running every path in turn, and the median per path counts, so that a drift of the
//! machine's speed during the run hits every path alike.
//! `$IRONMESH_DISCOVERY` names the discovery binary (see `testkit::discovery`).

mod procs;
mod report;
mod setup;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ironmesh_testkit::discovery::Workspace;
use ironmesh_testkit::net::{free_ports, loopback, wait_until};
use ironmesh_testkit::node::{self, Node};
use ironmesh_testkit::proxy::{Proxy, ProxyOptions};
use report::{Column, Measured};
use serde_json::Value;
use setup::{HOST, PATH};

pub struct Opts {
    work: PathBuf,
    loadgen: PathBuf,
    wrk: Option<PathBuf>,
    proxy: Option<PathBuf>,
    duration: f64,
    rate: f64,
    conns: usize,
    concurrency: usize,
    services: usize,
    /// Closed-loop runs per path, interleaved across paths; the median counts.
    rounds: usize,
}

fn parse() -> Opts {
    let mut o = Opts {
        work: std::env::temp_dir(),
        loadgen: PathBuf::from("loadgen"),
        wrk: None,
        proxy: None,
        duration: 10.0,
        rate: 1000.0,
        conns: 16,
        concurrency: 2,
        services: 1000,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let num = |v: &str| -> f64 { v.parse().unwrap_or_else(|e| panic!("{flag} {v}: {e}")) };
        match flag.as_str() {
            "--work" => o.work = v.into(),
            "--loadgen" => o.loadgen = v.into(),
            "--wrk" => o.wrk = Some(v.into()),
            "--proxy" => o.proxy = Some(v.into()),
            "--duration" => o.duration = num(&v),
            "--rate" => o.rate = num(&v),
            "--conns" => o.conns = num(&v) as usize,
            "--concurrency" => o.concurrency = num(&v) as usize,
            "--services" => o.services = num(&v) as usize,
            "--rounds" => o.rounds = (num(&v) as usize).max(1),
            other => panic!("unknown flag {other}"),
        }
    }
    o
}

fn log(msg: &str) {
    eprintln!("[{:>6.1}s] {msg}", started().elapsed().as_secs_f64());
}

fn started() -> Instant {
    static T: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T.get_or_init(Instant::now)
}

/// One GET through `addr` answers 200 (the loadgen's probe).
fn probe(o: &Opts, addr: SocketAddr) -> bool {
    Command::new(&o.loadgen)
        .args([
            "probe",
            "--addr",
            &addr.to_string(),
            "--host",
            HOST,
            "--path",
            PATH,
        ])
        .output()
        .is_ok_and(|out| out.status.success())
}

fn loadgen(o: &Opts, mode: &str, addr: SocketAddr) -> Value {
    let out = Command::new(&o.loadgen)
        .args([
            mode,
            "--addr",
            &addr.to_string(),
            "--host",
            HOST,
            "--path",
            PATH,
        ])
        .args(["--conns", &o.conns.to_string()])
        .args(["--duration", &o.duration.to_string()])
        .args(["--rate", &o.rate.to_string()])
        .output()
        .expect("run loadgen");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "loadgen printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Closed-loop maximum: wrk (`-t1`, as the anchors in perf-anchors.md) when present,
/// else the loadgen's `max` mode. Returns requests/s and non-200 answers.
fn max_rps(o: &Opts, addr: SocketAddr) -> (f64, u64) {
    if let Some(wrk) = &o.wrk {
        let out = Command::new(wrk)
            .args(["-t1", "-c", &o.conns.to_string()])
            .args(["-d", &format!("{}s", o.duration.round() as u64)])
            .args(["-H", &format!("Host: {HOST}")])
            .arg(format!("http://{addr}{PATH}"))
            .output()
            .expect("run wrk");
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |prefix: &str| -> Option<f64> {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(prefix))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        };
        let errors = field("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64
            + text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Socket errors:"))
                .map(|l| {
                    l.split(',')
                        .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                        .sum()
                })
                .unwrap_or(0);
        return (field("Requests/sec:").unwrap_or(0.0), errors);
    }
    let v = loadgen(o, "max", addr);
    (
        v["rps"].as_f64().unwrap_or(0.0),
        v["errors"].as_u64().unwrap_or(0),
    )
}

/// One way of reaching the backend, running for the whole measurement.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    /// Empty for direct (no proxy process to read).
    pids: Vec<u32>,
    /// What keeps the path's processes running until the last round.
    _running: Box<dyn std::any::Any>,
}

/// The figures taken one path at a time: idle RSS, then the fixed-rate run.
fn measure_fixed(o: &Opts, p: &Target) -> Measured {
    log(&format!("{}: idle, {} rps", p.name, o.rate));
    std::thread::sleep(Duration::from_secs(2));
    let rss_idle = procs::rss_mib(&p.pids);
    let cpu0 = procs::cpu_seconds(&p.pids);
    let fixed = loadgen(o, "rate", p.addr);
    let cpu_fixed = procs::cpu_seconds(&p.pids) - cpu0;
    let requests_fixed = fixed["requests"].as_f64().unwrap_or(0.0);
    let us = |k: &str| fixed[k].as_f64().unwrap_or(0.0) / 1000.0;
    Measured {
        max_rps: 0.0,
        max_runs: Vec::new(),
        errors: fixed["errors"].as_u64().unwrap_or(0),
        p50: us("p50_us"),
        p90: us("p90_us"),
        p99: us("p99_us"),
        achieved_rate: fixed["rps"].as_f64().unwrap_or(0.0),
        rss_idle,
        rss_peak: 0.0,
        // The fixed-rate run includes a 1 s warm-up the loadgen does not count.
        cpu_per_1000_fixed: cpu_fixed / ((requests_fixed + o.rate) / 1000.0),
        cpu_per_1000_max: 0.0,
        has_process: !p.pids.is_empty(),
    }
}

/// The closed-loop maximum of every path, `o.rounds` times round-robin; each path's
/// median goes into its figures, CPU per request over all its runs.
fn measure_max(o: &Opts, paths: &[Target], figures: &mut [Measured]) {
    let mut cpu = vec![0.0; paths.len()];
    for round in 1..=o.rounds {
        for (i, p) in paths.iter().enumerate() {
            log(&format!("{}: max, round {round}/{}", p.name, o.rounds));
            let cpu0 = procs::cpu_seconds(&p.pids);
            let (rps, errors) = max_rps(o, p.addr);
            cpu[i] += procs::cpu_seconds(&p.pids) - cpu0;
            figures[i].max_runs.push(rps);
            figures[i].errors += errors;
        }
    }
    for (i, (p, m)) in paths.iter().zip(figures.iter_mut()).enumerate() {
        let mut runs = m.max_runs.clone();
        runs.sort_by(f64::total_cmp);
        m.max_rps = runs[runs.len() / 2];
        let requests: f64 = m.max_runs.iter().sum::<f64>() * o.duration;
        m.cpu_per_1000_max = cpu[i] / (requests / 1000.0);
        m.rss_peak = procs::peak_rss_mib(&p.pids);
    }
}

/// Waits until `node` has ACKed everything discovery sent and (for a gateway) one
/// request routes through `addr`.
fn wait_proxy(
    o: &Opts,
    ws_discovery: &ironmesh_testkit::discovery::Discovery,
    node: &Node,
    addr: Option<SocketAddr>,
    alive: &mut dyn FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let mut died = None;
    let ok = wait_until(Duration::from_secs(120), || {
        if let Err(e) = alive() {
            died = Some(e);
            return true;
        }
        ws_discovery.in_sync(&node.id()) && addr.is_none_or(|a| probe(o, a))
    });
    if let Some(e) = died {
        return Err(e);
    }
    if !ok {
        return Err(format!(
            "{} not in sync / not routing after 120s",
            node.id()
        ));
    }
    Ok(())
}

fn main() {
    let o = parse();
    started();
    std::fs::create_dir_all(&o.work).expect("work dir");
    // nginx's worker drops to an unprivileged user when started as root, and must
    // still read the 1 KiB file (mktemp -d makes the dir 0700).
    let mut perms = std::fs::metadata(&o.work).expect("work dir").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&o.work, perms).expect("chmod 755 the work dir");
    let ports = free_ports(6);
    let (backend_port, nginx_port, gateway_port, outbound, inbound, envoy_port) =
        (ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]);
    let mut columns: Vec<Column> = Vec::new();
    let mut paths: Vec<Target> = Vec::new();

    let mut backend = setup::nginx_backend(&o.work, backend_port);
    let backend_addr = loopback(backend_port);
    assert!(
        wait_until(Duration::from_secs(10), || probe(&o, backend_addr)),
        "the nginx backend does not answer: {:?}",
        backend.alive()
    );
    paths.push(Target {
        name: "direct",
        addr: backend_addr,
        pids: Vec::new(),
        _running: Box::new(()),
    });

    // The xDS proxies: one discovery, a gateway each.
    let ws = Workspace::new();
    ws.write(
        "gateway.yaml",
        &setup::gateway_yaml(gateway_port, envoy_port, backend_port),
    );
    ws.write_mesh(&format!(
        "proxyListenPort: {outbound}\nproxyInboundListenPort: {inbound}\n"
    ));
    let discovery = ws.start_discovery();
    discovery.assert_config_accepted();
    let gateway = loopback(gateway_port);
    let router = node::router("127.0.0.30", "istio-ingressgateway-bench-0");
    let mut failed: Vec<Column> = Vec::new();

    match &o.proxy {
        None => failed.push(Column::na(
            "ironmesh-proxy",
            "binary not built (see the build step)",
        )),
        Some(bin) => match start_ironmesh(&o, bin, &router, &discovery, Some(gateway), &[]) {
            Ok(p) => paths.push(Target {
                name: "ironmesh-proxy",
                addr: gateway,
                pids: vec![p.pid()],
                _running: Box::new(p),
            }),
            Err(e) => failed.push(Column::na("ironmesh-proxy", &e)),
        },
    }

    {
        let envoy_router = envoy_router();
        let envoy_addr = loopback(envoy_port);
        let mut envoy = setup::envoy(
            &o.work,
            "envoy-router",
            &envoy_router,
            discovery.xds,
            o.concurrency,
        );
        match wait_proxy(&o, &discovery, &envoy_router, Some(envoy_addr), &mut || {
            envoy.alive()
        }) {
            Ok(()) => paths.push(Target {
                name: "Envoy",
                addr: envoy_addr,
                pids: vec![envoy.pid()],
                _running: Box::new(envoy),
            }),
            Err(e) => failed.push(Column::na("Envoy", &e)),
        }
    }

    {
        let nginx = setup::nginx_proxy(&o.work, nginx_port, backend_port);
        let addr = loopback(nginx_port);
        if wait_until(Duration::from_secs(10), || probe(&o, addr)) {
            paths.push(Target {
                name: "nginx",
                addr,
                pids: procs::tree(nginx.pid()),
                _running: Box::new(nginx),
            });
        } else {
            failed.push(Column::na("nginx", "did not answer within 10s"));
        }
    }

    let mut figures: Vec<Measured> = paths.iter().map(|p| measure_fixed(&o, p)).collect();
    measure_max(&o, &paths, &mut figures);
    for (p, m) in paths.iter().zip(figures) {
        columns.push(Column::ok(p.name, m));
    }
    // In the table's fixed order, whatever did not run included.
    columns.extend(failed);
    let order = ["direct", "ironmesh-proxy", "Envoy", "nginx"];
    columns.sort_by_key(|c| order.iter().position(|n| *n == c.name));
    // Stops the proxies.
    drop(paths);
    drop(backend);

    // (d) Sidecars holding the large config.
    log(&format!(
        "{} services / {} endpoints",
        o.services,
        o.services * 3
    ));
    ws.write("scale.yaml", &setup::scale_yaml(o.services));
    let ok = wait_until(Duration::from_secs(120), || {
        discovery
            .get_json("/debug/registryz")
            .to_string()
            .contains(&format!("svc-{}.", o.services - 1))
    });
    assert!(
        ok,
        "discovery did not load the scale config\n{}",
        discovery.logs()
    );
    discovery.assert_config_accepted();
    let sidecar = node::sidecar(
        "10.213.255.1",
        "client-0",
        "default",
        "client",
        "v1",
        "client",
    );
    let scale_args: Vec<String> = vec![
        "--outbound-port".into(),
        outbound.to_string(),
        "--inbound-port".into(),
        inbound.to_string(),
    ];
    let ours = match &o.proxy {
        None => Err("binary not built".to_string()),
        Some(bin) => start_ironmesh(&o, bin, &sidecar, &discovery, None, &scale_args)
            .map(|p| settle_rss(&[p.pid()])),
    };
    let theirs = {
        let mut envoy = setup::envoy(
            &o.work,
            "envoy-sidecar",
            &sidecar,
            discovery.xds,
            o.concurrency,
        );
        wait_proxy(&o, &discovery, &sidecar, None, &mut || envoy.alive())
            .map(|()| settle_rss(&[envoy.pid()]))
    };
    let report = report::Report {
        columns,
        scale_ours: ours,
        scale_envoy: theirs,
        services: o.services,
        opts_line: format!(
            "{} connections, {} s per measurement, fixed rate {} rps, proxies --concurrency {}, closed-loop maximum: median of {} rounds interleaved across the paths",
            o.conns, o.duration, o.rate, o.concurrency, o.rounds
        ),
        max_tool: if o.wrk.is_some() {
            "wrk -t1"
        } else {
            "loadgen max"
        }
        .into(),
    };
    println!("{}", report.render());
    log("done");
}

/// The second gateway's node (Envoy's): `istio: ingressgateway-envoy` on 127.0.0.31.
fn envoy_router() -> Node {
    let mut n = node::router("127.0.0.31", "istio-ingressgateway-envoy-bench-0");
    n.cluster = "istio-ingressgateway-envoy.istio-system".into();
    n.metadata["LABELS"]["app"] = "istio-ingressgateway-envoy".into();
    n.metadata["LABELS"]["istio"] = "ingressgateway-envoy".into();
    n.metadata["LABELS"]["service.istio.io/canonical-name"] = "istio-ingressgateway-envoy".into();
    n.metadata["WORKLOAD_NAME"] = "istio-ingressgateway-envoy".into();
    n.metadata["OWNER"] =
        "kubernetes://apis/apps/v1/namespaces/istio-system/deployments/istio-ingressgateway-envoy"
            .into();
    n
}

/// RSS once the proxy has had 3 s to settle after taking its config.
fn settle_rss(pids: &[u32]) -> f64 {
    std::thread::sleep(Duration::from_secs(3));
    procs::rss_mib(pids)
}

fn start_ironmesh(
    o: &Opts,
    bin: &Path,
    node: &Node,
    discovery: &ironmesh_testkit::discovery::Discovery,
    gateway: Option<SocketAddr>,
    extra: &[String],
) -> Result<Proxy, String> {
    let mut opts = ProxyOptions::new(bin, node.clone(), discovery.xds);
    opts.concurrency = o.concurrency;
    opts.extra_args = extra.to_vec();
    let proxy = Proxy::start(&opts).map_err(|e| first_lines(&e, 3))?;
    let mut alive = || Ok(());
    wait_proxy(o, discovery, node, gateway, &mut alive)
        .map_err(|e| format!("{e}; log: {}", setup::tail(&proxy.logs(), 3)))?;
    Ok(proxy)
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join(" | ")
}
