//! The runtime's record of everything it made, kept in `/run/ironmesh/state.json`.
//!
//! Every namespace, veth and process is written here *before* it is created, so that
//! `ironmesh down` can remove it even when the supervisor was killed half-way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Where the runtime keeps its state, logs, config dir and sockets.
pub const RUN_DIR: &str = "/run/ironmesh";
/// The node network namespace holding the bridge and discovery.
pub const NODE_NETNS: &str = "im-node";
pub const BRIDGE: &str = "im-br0";
/// The bridge's address: the pods' default gateway and discovery's address.
pub const BRIDGE_IP: &str = "10.213.0.1";
/// The host end of the host↔node link (a /30 carved out of the top of the pod /16).
pub const HOST_VETH: &str = "imh0";
pub const HOST_LINK_IP: &str = "10.213.255.253";
pub const HOST_LINK_NET: &str = "10.213.255.252/30";
pub const NODE_LINK_IP: &str = "10.213.255.254";
pub const NODE_VETH: &str = "imh1";
pub const POD_CIDR: &str = "10.213.0.0/16";
pub const XDS_PORT: u16 = 15010;
pub const DISCOVERY_HTTP_PORT: u16 = 8080;
pub const DISCOVERY_MONITORING_PORT: u16 = 15014;
/// uid/gid of the sidecar, excluded from capture by the iptables rules.
pub const PROXY_UID: u32 = 1337;
/// uid/gid the applications run as.
pub const APP_UID: u32 = 1000;

pub fn run_dir() -> PathBuf {
    PathBuf::from(RUN_DIR)
}
pub fn state_file() -> PathBuf {
    run_dir().join("state.json")
}
pub fn config_dir() -> PathBuf {
    run_dir().join("config")
}
pub fn logs_dir() -> PathBuf {
    run_dir().join("logs")
}
pub fn supervisor_log() -> PathBuf {
    run_dir().join("supervisor.log")
}
/// Touched by `apply`/`delete` to make the supervisor reconcile pods with the config dir.
pub fn reconcile_file() -> PathBuf {
    run_dir().join("reconcile")
}
pub fn mesh_config_file() -> PathBuf {
    run_dir().join("mesh.yaml")
}
pub fn pod_log(namespace: &str, pod: &str, container: &str) -> PathBuf {
    logs_dir()
        .join(namespace)
        .join(pod)
        .join(format!("{container}.log"))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// `starting`, `ready`, `failed` or `stopping`.
    pub phase: String,
    #[serde(default)]
    pub message: String,
    pub profile: String,
    pub supervisor_pid: Option<u32>,
    /// Network namespaces made (node first), deleted by `down`.
    pub netns: Vec<String>,
    /// Whether the host end of the host↔node link was made.
    pub host_link: bool,
    pub discovery_pid: Option<u32>,
    pub pods: Vec<PodState>,
    /// Service VIPs the runtime assigned, `namespace/name` → IP.
    pub vips: BTreeMap<String, String>,
    pub forwards: Vec<Forward>,
    /// Last pod IP handed out (host part), to keep IPs unique across restarts of pods.
    pub last_ip: u32,
    pub started_at: u64,
    pub ready_after_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PodState {
    pub namespace: String,
    pub name: String,
    pub netns: String,
    /// The node end of the pod's veth (the pod end is `eth0`).
    pub veth: String,
    pub ip: String,
    pub injected: bool,
    pub gateway: bool,
    /// `Pending`, `Running`, `Terminating`.
    pub phase: String,
    pub ready: bool,
    /// `Deployment/name`, `StatefulSet/name` or empty for a bare Pod.
    pub owner: String,
    pub containers: Vec<ContainerState>,
    pub created_at: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerState {
    pub name: String,
    pub pid: Option<u32>,
    pub uid: u32,
    pub restarts: u32,
    /// `Running`, `CrashLoopBackOff`, `Error`, `Completed`.
    pub status: String,
    pub ready: bool,
    pub ports: Vec<u16>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Forward {
    /// `istio-ingressgateway:80`.
    pub name: String,
    pub target: String,
    pub local: String,
}

impl State {
    pub fn load() -> anyhow::Result<Option<State>> {
        load_from(&state_file())
    }

    /// Writes atomically (temp file + rename) so readers never see half a file.
    pub fn save(&self) -> anyhow::Result<()> {
        let path = state_file();
        let tmp = path.with_extension(format!("json.{}", std::process::id()));
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

fn load_from(path: &Path) -> anyhow::Result<Option<State>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not readable state; remove it after checking `ip netns list`",
                path.display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether `pid` is alive and its command line mentions `needle` (guards against a
/// recycled pid being signalled).
pub fn pid_alive(pid: u32, needle: &str) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(bytes) => {
            let cmd = String::from_utf8_lossy(&bytes);
            needle.is_empty() || cmd.contains(needle)
        }
        Err(_) => false,
    }
}
