//! Removing what the runtime made, from the state file alone: used by the supervisor on
//! its way out and by `ironmesh down` after a supervisor that died without cleaning up.

use std::time::Duration;

use super::net::{etc_dir, ip_quiet, netns_exists};
use super::procs::kill_netns_pids;
use super::state::*;

/// Kills every process in the namespace, deletes it (its veth goes with it) and its
/// /etc/netns files.
pub fn remove_netns(netns: &str) {
    if netns_exists(netns) {
        kill_netns_pids(netns, Duration::from_secs(2));
        ip_quiet(&["netns", "del", netns]);
    }
    let _ = std::fs::remove_dir_all(etc_dir(netns));
}

/// Everything in `state`, pods first, the node last, then the host link and files.
/// Safe to run twice.
pub fn teardown(state: &State) {
    for ps in &state.pods {
        remove_netns(&ps.netns);
    }
    for ns in state.netns.iter().rev() {
        remove_netns(ns);
    }
    if state.host_link {
        // Deleting the host end removes the pair and the pod /16 route through it.
        ip_quiet(&["link", "del", HOST_VETH]);
    }
    let _ = std::fs::remove_dir_all(run_dir());
}
