//! `ironmesh-proxy`: the sidecar / gateway process (pilot-agent + data plane in one).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc's per-thread heaps suit the data path's many short-lived allocations
/// (headers, stream info) better than glibc's malloc: measured in `bench/proxy.sh`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Proxy(args) => ironmesh_proxy::agent::run(*args),
        Command::Iptables(args) => ironmesh_proxy::iptables::run(args),
        Command::CleanupIptables(args) => ironmesh_proxy::iptables::cleanup(args),
    }
}
