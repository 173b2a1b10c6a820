//! The agent: process start-up, identity, wiring of xDS to the data plane, health and
//! drain. PLACEHOLDER — the data-plane core fills this in.

use std::process::ExitCode;

/// `ironmesh-proxy proxy sidecar|router …`
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// `sidecar` or `router` (gateway).
    pub role: String,
}

/// Runs the proxy until SIGTERM.
pub fn run(_args: ProxyArgs) -> ExitCode {
    eprintln!("ironmesh-proxy proxy: not built yet");
    ExitCode::from(2)
}
