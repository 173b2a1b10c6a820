//! Python with gRPC for tests: the proxyless xDS client (`grpcio`) that proves what
//! ironmesh serves works for a client nobody on this project wrote.
//!
//! The interpreter is `$IRONMESH_GRPC_PYTHON`, or a venv under the cache dir
//! (`$IRONMESH_CACHE`, default `~/.cache/ironmesh`) at `venvs/grpc`, created on first use
//! with `grpcio grpcio-health-checking grpcio-csds grpcio-tools protobuf`. Creation is
//! serialised across processes by a lock file, because a venv cannot be built elsewhere
//! and moved (its scripts name their own path).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// What the venv must hold.
pub const GRPC_PACKAGES: &[&str] = &[
    "grpcio",
    "grpcio-health-checking",
    "grpcio-csds",
    "grpcio-tools",
    "protobuf",
];

/// The modules whose import proves the venv is complete.
const PROBE: &str = "import grpc, grpc_health.v1.health, grpc_csds, grpc_tools, google.protobuf";

/// How long an install by another process may hold the lock before it counts as dead.
const LOCK_STALE_AFTER: Duration = Duration::from_secs(900);

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IRONMESH_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/ironmesh")
}

/// Whether `python` runs and imports every module of the gRPC venv.
fn complete(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", PROBE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Python interpreter with grpcio and friends: `$IRONMESH_GRPC_PYTHON`, or the
/// cache's `venvs/grpc/bin/python`, installing the venv when it is missing or
/// incomplete. Panics with what to do when neither works.
pub fn grpc_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(python) = std::env::var_os("IRONMESH_GRPC_PYTHON") {
                let python = PathBuf::from(python);
                assert!(
                    complete(&python),
                    "IRONMESH_GRPC_PYTHON={} cannot `{PROBE}`: install {} into it",
                    python.display(),
                    GRPC_PACKAGES.join(" ")
                );
                return python;
            }
            let venv = cache_dir().join("venvs/grpc");
            let python = venv.join("bin/python");
            if !complete(&python) {
                install(&venv);
            }
            assert!(
                complete(&python),
                "{} cannot `{PROBE}` after installing {}",
                python.display(),
                GRPC_PACKAGES.join(" ")
            );
            python
        })
        .clone()
}

/// Removes the lock file when the install finishes or panics.
struct Unlock(PathBuf);

impl Drop for Unlock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Takes `lock` (creating it exclusively), waiting while another process holds it.
/// `None` when that other process finished the venv meanwhile.
fn take_lock(lock: &Path, done: impl Fn() -> bool) -> Option<Unlock> {
    let deadline = Instant::now() + LOCK_STALE_AFTER;
    loop {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(_) => return Some(Unlock(lock.to_path_buf())),
            Err(_) if done() => return None,
            Err(_) => {
                let stale = fs::metadata(lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > LOCK_STALE_AFTER);
                if stale {
                    let _ = fs::remove_file(lock);
                }
                assert!(
                    Instant::now() < deadline,
                    "another process holds {} for too long; remove it if no install is running",
                    lock.display()
                );
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn install(venv: &Path) {
    let parent = venv.parent().expect("venv has a parent");
    fs::create_dir_all(parent).expect("create the venv dir");
    let python = venv.join("bin/python");
    let Some(_unlock) = take_lock(&venv.with_extension("lock"), || complete(&python)) else {
        return;
    };
    if complete(&python) {
        return;
    }
    eprintln!(
        "installing {} into {} (once)",
        GRPC_PACKAGES.join(" "),
        venv.display()
    );
    let step = |program: &Path, args: &[&str]| {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            out.status.success(),
            "`{} {}` failed; gRPC tests need python3 (with venv) and access to PyPI, or \
             IRONMESH_GRPC_PYTHON pointing at a Python that has {}\n{}{}",
            program.display(),
            args.join(" "),
            GRPC_PACKAGES.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A venv that exists but misses packages is completed in place, not rebuilt.
    if !venv.join("bin/pip").exists() {
        let _ = fs::remove_dir_all(venv);
        step(
            Path::new("python3"),
            &["-m", "venv", venv.to_str().expect("utf-8 path")],
        );
    }
    let mut args = vec!["install", "--quiet", "--disable-pip-version-check"];
    args.extend_from_slice(GRPC_PACKAGES);
    step(&venv.join("bin/pip"), &args);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the venv (installed on first use).
    #[test]
    fn the_interpreter_imports_grpc() {
        let python = grpc_python();
        let out = Command::new(&python)
            .args(["-c", "import grpc; print(grpc.__version__)"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
    }

    #[test]
    fn a_held_lock_is_waited_for_until_the_work_is_done() {
        let dir = tempfile::TempDir::new().unwrap();
        let lock = dir.path().join("x.lock");
        let first = take_lock(&lock, || false).expect("free lock is taken");
        assert!(lock.exists());
        assert!(take_lock(&lock, || true).is_none(), "done elsewhere");
        drop(first);
        assert!(!lock.exists());
        assert!(take_lock(&lock, || false).is_some());
    }
}
