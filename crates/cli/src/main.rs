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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Version(args) => version::run(args),
        Command::ProxyStatus(args) => proxy_status::run(args),
        Command::ProxyConfig(args) => proxy_config::run(args),
    }
}
