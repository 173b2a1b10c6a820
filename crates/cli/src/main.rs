//! `ironmesh`: the command-line tool (istioctl's counterpart).
//!
//! Owns: argument parsing and presentation — `validate`, `version`, and, as later issues
//! land, the local mesh runtime (`up/down/status/apply/exec/logs`), `analyze`,
//! `proxy-status`, `proxy-config`, `kube-inject`, `install`.
//!
//! Must not: hold logic that belongs to a library crate; commands call into
//! `ironmesh-config` and friends and only format what they return.

#![forbid(unsafe_code)]

mod discovery_client;
mod local;
mod proxy_config;
mod proxy_status;
mod validate;
mod version;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ironmesh — an Istio-compatible service mesh with a small, fast Rust sidecar.
///
/// Reads the same YAML as Istio (VirtualService, DestinationRule, Gateway, …) and
/// Kubernetes (Namespace, Service, Deployment, …).
#[derive(Parser)]
#[command(name = "ironmesh", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate Istio and Kubernetes manifests offline, with Istio's rules.
    ///
    /// Reads files, directories (recursively, *.yaml, *.yml, *.json) and `-` (stdin).
    /// Prints one line per problem as `file:line: severity: Kind ns/name: field: message`
    /// and a summary. A document with neither apiVersion nor kind is read as a
    /// MeshConfig (the `mesh` key of the istio ConfigMap), which is also validated
    /// inside a ConfigMap named `istio`.
    ///
    /// Exit status: 0 when everything is valid (warnings allowed), 1 when anything is
    /// invalid, 2 when an input cannot be read.
    Validate(validate::Args),
    /// Print the version of every ironmesh component.
    Version(version::Args),
    /// Show whether every connected proxy has accepted the control plane's latest config.
    ///
    /// Reads ironmesh-discovery's /debug/syncz. Cells: `SYNCED (age)` (acknowledged),
    /// `STALE` (sent, not acknowledged; `STALE (NACK)` when rejected), `NOT SENT`,
    /// `IGNORED` (type not subscribed).
    #[command(visible_alias = "ps")]
    ProxyStatus(proxy_status::Args),
    /// Show a proxy's listeners, routes, clusters, endpoints or bootstrap, as tables.
    ///
    /// Reads the config the control plane built for the proxy (/debug/config_dump), or
    /// with --proxy-admin the proxy's own admin port (/config_dump?include_eds).
    #[command(visible_alias = "pc")]
    ProxyConfig(proxy_config::Args),
    /// Run a local mesh on this machine from Kubernetes + Istio manifests (needs root).
    ///
    /// Creates a network namespace per pod on a bridge, starts discovery, injects
    /// sidecars (namespace label istio-injection=enabled or pod label
    /// sidecar.istio.io/inject), runs the ingress gateway and forwards its ports to
    /// 127.0.0.1. State lives in /run/ironmesh; `ironmesh down` removes everything.
    Up(local::up::UpArgs),
    /// Stop the local mesh and remove every namespace, veth, rule, file and process it made.
    Down,
    /// Show the local mesh: phase, gateway ports and pods.
    Status,
    /// Add or change objects in the running local mesh (new Deployments start pods).
    Apply(local::cmds::FilesArgs),
    /// Remove objects from the running local mesh.
    Delete(local::cmds::FilesArgs),
    /// List pods, services, gateways, virtualservices, destinationrules or all.
    Get(local::get::GetArgs),
    /// Run a command inside a pod of the local mesh (its network namespace, DNS and user).
    Exec(local::cmds::ExecArgs),
    /// Print a container's log (`-c istio-proxy` for the sidecar).
    Logs(local::cmds::LogsArgs),
    #[command(name = "__supervise", hide = true)]
    Supervise(local::cmds::SuperviseArgs),
}

fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // proxy-status / proxy-config talk to the local mesh's discovery when one runs and
    // no address was given.
    let debug_cmd = argv
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| matches!(a, "proxy-status" | "ps" | "proxy-config" | "pc"));
    if debug_cmd
        && std::env::var_os("IRONMESH_DISCOVERY").is_none()
        && !argv
            .iter()
            .any(|a| a.to_string_lossy().starts_with("--discovery"))
    {
        if let Some(url) = local::discovery_url() {
            argv.push("--discovery".into());
            argv.push(url.into());
        }
    }
    let cli = Cli::parse_from(argv);
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Version(args) => version::run(args),
        Command::ProxyStatus(args) => proxy_status::run(args),
        Command::ProxyConfig(args) => proxy_config::run(args),
        Command::Up(args) => local::up::run(args),
        Command::Down => local::cmds::down(),
        Command::Status => local::cmds::status(),
        Command::Apply(args) => local::cmds::apply(args),
        Command::Delete(args) => local::cmds::delete(args),
        Command::Get(args) => local::get::run(args),
        Command::Exec(args) => local::cmds::exec(args),
        Command::Logs(args) => local::cmds::logs(args),
        Command::Supervise(args) => local::cmds::supervise(args),
    }
}
