//! The local mesh runtime: `ironmesh up` runs a whole mesh on one Linux machine from the
//! manifests a user would `kubectl apply` — a network namespace per pod on a bridge,
//! discovery, sidecars with iptables capture, gateways — and the day-two commands
//! (`apply`, `delete`, `get`, `exec`, `logs`, `status`, `down`). See docs/local-mode.md.

pub mod cmds;
mod forward;
pub mod get;
mod images;
mod kubeproxy;
mod manifests;
mod net;
mod pods;
mod podspec;
mod procs;
mod state;
mod supervisor;
mod teardown;
pub mod up;

/// The discovery debug URL of a running local mesh, for proxy-status/proxy-config.
pub fn discovery_url() -> Option<String> {
    state::state_file()
        .exists()
        .then(|| format!("http://{}:{}", state::BRIDGE_IP, state::DISCOVERY_HTTP_PORT))
}
