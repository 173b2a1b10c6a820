//! Locating the workspace's binaries from another crate's tests.

use std::path::PathBuf;
use std::process::Command;

/// Path of binary `name` of package `package` in the current target directory (next to
/// the running test executable), building it with cargo when it is missing.
pub fn binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .to_path_buf();
    let path = dir.join(name);
    if !path.exists() {
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
