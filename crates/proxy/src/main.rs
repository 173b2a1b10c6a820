//! `ironmesh-proxy`: the sidecar / gateway process (pilot-agent + data plane in one).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: about 10% more requests/s than glibc's malloc in `bench/proxy.sh`
/// (per-thread heaps suit the workers' many short-lived allocations).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc reads its options from the environment as the process starts, before
/// `main`. Its defaults keep freed pages for a second and commit arenas eagerly, which
/// cost the proxy 10–20 MiB of RSS; with these it returns memory at once, for no
/// throughput loss measured. A user's own values are kept.
const ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MIMALLOC_PURGE_DELAY", "0"),
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
];

/// Re-executes the proxy once (same PID, same arguments) with [`ALLOCATOR_ENV`] set.
fn tune_allocator() {
    if ALLOCATOR_ENV
        .iter()
        .all(|(k, _)| std::env::var_os(k).is_some())
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(argv0) = args.next() {
        std::os::unix::process::CommandExt::arg0(&mut cmd, argv0);
    }
    cmd.args(args);
    for (k, v) in ALLOCATOR_ENV {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
    let err = std::os::unix::process::CommandExt::exec(&mut cmd);
    eprintln!("ironmesh-proxy: cannot re-execute with the allocator settings ({err}); continuing");
}

/// ironmesh-proxy — the mesh's data plane and agent in one process.
///
/// `proxy sidecar|router` runs the xDS-driven proxy (pilot-agent + Envoy's jobs);
/// `iptables` / `cleanup-iptables` install or remove the traffic capture rules
/// (istio-iptables' flags).
#[derive(Parser)]
#[command(name = "ironmesh-proxy", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy as a sidecar or a gateway (router), driven by xDS from discovery.
    Proxy(Box<ironmesh_proxy::agent::ProxyArgs>),
    /// Install the iptables rules that capture a pod's traffic (istio-iptables' flags).
    Iptables(ironmesh_proxy::iptables::Args),
    /// Remove every rule and chain `iptables` installed.
    CleanupIptables(ironmesh_proxy::iptables::CleanupArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Proxy(args) => {
            tune_allocator();
            ironmesh_proxy::agent::run(*args)
        }
        Command::Iptables(args) => ironmesh_proxy::iptables::run(args),
        Command::CleanupIptables(args) => ironmesh_proxy::iptables::cleanup(args),
    }
}
