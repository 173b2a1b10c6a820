//! Processes inside a pod's network namespace, each a separate host process started
//! through `ip netns exec` (which also bind-mounts the pod's /etc/netns files) and
//! `setpriv` for its uid, with stdout+stderr appended to the container's log file.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What to run for one container.
#[derive(Debug, Clone)]
pub struct ProcSpec {
    pub container: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `None` runs as root (the iptables init step).
    pub uid: Option<u32>,
    pub ports: Vec<u16>,
    pub kind: ProcKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcKind {
    /// Runs to completion before the others start (istio-init).
    Init,
    Sidecar,
    App,
}

pub const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn command_in(netns: &str, uid: Option<u32>, program: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns]);
    if let Some(uid) = uid {
        let id = uid.to_string();
        cmd.args([
            "setpriv",
            "--reuid",
            &id,
            "--regid",
            &id,
            "--clear-groups",
            "--",
        ]);
    }
    cmd.arg(program).args(args);
    cmd.current_dir("/");
    cmd
}

pub fn spawn(netns: &str, spec: &ProcSpec, log: &Path) -> anyhow::Result<Child> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = command_in(netns, spec.uid, &spec.program, &spec.args);
    cmd.env_clear()
        .env("PATH", BASE_PATH)
        .env("HOME", "/tmp")
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    cmd.spawn().with_context(|| {
        format!(
            "cannot start {} for container {}",
            spec.program.display(),
            spec.container
        )
    })
}

/// SIGTERM, then SIGKILL after `grace`.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Ends every process in a network namespace: SIGTERM, a short grace, then SIGKILL.
pub fn kill_netns_pids(netns: &str, grace: Duration) {
    let pids = super::net::netns_pids(netns);
    if pids.is_empty() {
        return;
    }
    for p in &pids {
        let _ = kill(Pid::from_raw(*p as i32), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if super::net::netns_pids(netns).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in super::net::netns_pids(netns) {
        let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(100));
}

pub fn signal_pid(pid: u32, sig: Signal) -> bool {
    kill(Pid::from_raw(pid as i32), sig).is_ok()
}
