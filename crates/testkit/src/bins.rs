//! Locating the workspace's binaries from another crate's tests.

use std::path::PathBuf;
use std::process::Command;

/// Path of binary `name` of package `package` in the current target directory (next to
/// the running test executable), building it with cargo when it is missing or older
/// than the sources of the workspace's crates (`cargo test -p X` does not rebuild
/// another package's binaries, and a stale one would test old code).
pub fn binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf();
    let path = dir.join(name);
    if !path.exists() || is_stale(&path) {
        let profile_release = dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-p", package, "--bin", name]);
        if profile_release {
            cmd.arg("--release");
        }
        let status = cmd
            .current_dir(crate::workspace_root())
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {name} failed"
        );
    }
    assert!(path.exists(), "{} not found after building", path.display());
    path
}

/// True when any `.rs` file or Cargo.toml under `crates/` is newer than `binary`.
fn is_stale(binary: &std::path::Path) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    fn newer(dir: &std::path::Path, than: std::time::SystemTime) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let p = e.path();
            if p.is_dir() {
                let skip = p
                    .file_name()
                    .is_some_and(|n| n == "target" || n == "testdata");
                !skip && newer(&p, than)
            } else {
                let source = p.extension().is_some_and(|x| x == "rs")
                    || p.file_name().is_some_and(|n| n == "Cargo.toml");
                source
                    && e.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t > than)
            }
        })
    }
    newer(&crate::workspace_root().join("crates"), built)
}
