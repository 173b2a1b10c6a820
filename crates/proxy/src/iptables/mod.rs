//! istio-iptables: the capture rules. PLACEHOLDER — the local-mesh work fills this in.

use std::process::ExitCode;

/// `ironmesh-proxy iptables …` (istio-iptables' flags).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// `ironmesh-proxy cleanup-iptables …`
#[derive(Debug, clap::Args)]
pub struct CleanupArgs {}

/// Installs the rules.
pub fn run(_args: Args) -> ExitCode {
    eprintln!("ironmesh-proxy iptables: not built yet");
    ExitCode::from(2)
}

/// Removes the rules.
pub fn cleanup(_args: CleanupArgs) -> ExitCode {
    eprintln!("ironmesh-proxy cleanup-iptables: not built yet");
    ExitCode::from(2)
}
