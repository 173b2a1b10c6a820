//! Shared pieces of the local-mesh end-to-end tests: the root check, building the
//! sibling binaries, running `ironmesh`, and a guard that runs `ironmesh down`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One local mesh per machine: tests in a binary take turns.
static LOCK: Mutex<()> = Mutex::new(());

pub fn ironmesh() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ironmesh"))
}

/// `None` (after printing SKIPPED) when not root.
pub fn require_root(test: &str) -> Option<()> {
    if nix::unistd::Uid::effective().is_root() {
        Some(())
    } else {
        eprintln!("SKIPPED (needs root): {test}");
        None
    }
}

/// Builds ironmesh-discovery, -proxy and -sample into the directory of the ironmesh
/// binary under test when they are missing (a plain `cargo test -p ironmesh-cli`
/// builds only this crate's binary).
pub fn ensure_binaries() {
    let dir = ironmesh().parent().expect("bin dir").to_path_buf();
    let missing: Vec<&str> = ["ironmesh-discovery", "ironmesh-proxy", "ironmesh-sample"]
        .into_iter()
        .filter(|b| !dir.join(b).exists())
        .collect();
    if missing.is_empty() {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build");
    for b in &missing {
        cmd.args(["-p", b]);
    }
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    let status = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build of {missing:?} failed");
}

pub struct Mesh {
    _lock: MutexGuard<'static, ()>,
}

impl Mesh {
    /// `ironmesh up -d` with `args`; panics (after tearing down) when it fails.
    pub fn up(args: &[&str]) -> (Mesh, String) {
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        ensure_binaries();
        clear_previous_test_mesh();
        let mesh = Mesh { _lock: lock };
        let mut full = vec!["up", "-d"];
        full.extend_from_slice(args);
        let out = run(&full);
        mark_test_mesh();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "ironmesh up failed:\n{text}");
        (mesh, text)
    }
}

const RUN_DIR: &str = "/run/ironmesh";
/// Left in the run directory by these tests so a later run knows the mesh is theirs.
const TEST_MARK: &str = "/run/ironmesh/started-by-ironmesh-tests";

/// Takes down a mesh a crashed run of these tests left behind, so that it cannot make
/// this run fail; a mesh someone started by hand is left alone and the test fails,
/// saying so, rather than tearing it down.
fn clear_previous_test_mesh() {
    if Path::new(RUN_DIR).join("state.json").exists() && !Path::new(TEST_MARK).exists() {
        panic!(
            "a local mesh that these tests did not start is up ({RUN_DIR}/state.json); \
             the end-to-end tests need the machine's one local mesh and would tear it \
             down. Run `ironmesh down` first, then re-run the tests."
        );
    }
    let _ = run(&["down"]);
}

fn mark_test_mesh() {
    if Path::new(RUN_DIR).is_dir() {
        let _ = std::fs::write(TEST_MARK, "ironmesh-cli end-to-end tests\n");
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let out = run(&["down"]);
        if !out.status.success() {
            eprintln!(
                "ironmesh down failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

pub fn run(args: &[&str]) -> Output {
    Command::new(ironmesh())
        .args(args)
        .env_remove("IRONMESH_DISCOVERY")
        .output()
        .expect("run ironmesh")
}

/// stdout of a command that must succeed.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "ironmesh {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Rows of `ironmesh get pods` as (namespace, name, ready, status, restarts, ip, sidecar).
pub fn pods() -> Vec<Vec<String>> {
    ok(&["get", "pods"])
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

pub fn pod_row(prefix: &str) -> Vec<String> {
    pods()
        .into_iter()
        .find(|r| r[1].starts_with(prefix))
        .unwrap_or_else(|| panic!("no pod {prefix}* in {:?}", pods()))
}

/// What the runtime leaves on the machine: its netns (the node's and those of pods in
/// `namespaces`), links and the state dir. Other tests' namespaces are not ours to see.
pub fn leftovers_in(namespaces: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip");
    for l in String::from_utf8_lossy(&netns.stdout).lines() {
        let name = l.split_whitespace().next().unwrap_or("");
        if name == "im-node"
            || namespaces
                .iter()
                .any(|n| name.starts_with(&format!("im-{n}-")))
        {
            out.push(format!("netns {l}"));
        }
    }
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip");
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        if l.contains(" imh0") || l.contains(" imv") {
            out.push(format!("link {l}"));
        }
    }
    if Path::new(RUN_DIR).exists() {
        out.push(RUN_DIR.into());
    }
    out
}

pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

pub fn write_manifests(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join(name), text).expect("write manifest");
}

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

impl Mesh {
    /// Only the turn-taking lock (and `down` when dropped): for tests of failing `up`s.
    pub fn up_lock_only() -> Mesh {
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        ensure_binaries();
        clear_previous_test_mesh();
        Mesh { _lock: lock }
    }
}
