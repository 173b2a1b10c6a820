//! `ironmesh-testkit`: test support, used only as a dev-dependency.
//!
//! Owns: helpers shared by the integration tests of every crate — locating the
//! workspace's built binaries, running them with captured output, temporary manifest
//! trees; later a fake control plane, a fake CA, echo servers and the network-namespace
//! harness.
//!
//! Must not: ship in any binary.

#![forbid(unsafe_code)]

pub mod bins;
pub mod discovery;
pub mod echo;
pub mod envoy;
pub mod fake_ads;
pub mod http;
pub mod mirror;
pub mod net;
pub mod netns;
pub mod node;
pub mod proxy;
pub mod python;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use tempfile::TempDir;

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .expect("crates/testkit sits two levels below the workspace root")
        .to_path_buf()
}

/// `shared/` beside the repository (reference material, Istio's corpus). Panics with a
/// clear message when it is missing, so a test can never pass for lack of its input.
pub fn shared_dir() -> PathBuf {
    let dir = workspace_root().join("../shared");
    assert!(
        dir.is_dir(),
        "expected the shared/ folder beside the repository at {}",
        dir.display()
    );
    dir.canonicalize().unwrap_or(dir)
}

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `bin` with `args` in `cwd` (the workspace root when `None`), feeding `stdin`.
pub fn run(bin: &str, args: &[&str], cwd: Option<&Path>, stdin: Option<&str>) -> Run {
    let root = workspace_root();
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(cwd.unwrap_or(&root))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for child");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
