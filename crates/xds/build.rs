//! Copies the protobuf descriptor set that `envoy-types` ships (but does not export)
//! into OUT_DIR, so `json.rs` can render any Envoy resource as proto3 JSON.
//!
//! The exact `envoy-types` package this crate resolved to is found through
//! `cargo metadata` (its `resolve` graph), so a second copy of the crate elsewhere in
//! the registry can never be picked by mistake.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const DESCRIPTORS: &str = "src/generated/types.bin";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets this"));
    let dir = envoy_types_dir(&manifest_dir).or_else(|metadata_error| {
        from_lockfile(&manifest_dir).map_err(|lock_error| {
            format!(
                "cannot find the envoy-types sources.\n- through cargo metadata: \
                 {metadata_error}\n- through Cargo.lock and CARGO_HOME: {lock_error}"
            )
        })
    });
    let source = match dir {
        Ok(dir) => dir.join(DESCRIPTORS),
        Err(e) => fail(&e),
    };
    if !source.is_file() {
        fail(&format!(
            "envoy-types has no descriptor set at {}; this crate expects the layout of \
             envoy-types 0.7 (src/generated/types.bin). Pin envoy-types to a version that \
             ships it.",
            source.display()
        ));
    }
    println!("cargo:rerun-if-changed={}", source.display());
    if let Err(e) = fs::copy(&source, out_dir.join("envoy_types.bin")) {
        fail(&format!(
            "cannot copy {} into OUT_DIR: {e}",
            source.display()
        ));
    }
}

fn fail(message: &str) -> ! {
    panic!("ironmesh-xds build: {message}");
}

/// The directory of the `envoy-types` package that this crate depends on.
fn envoy_types_dir(manifest_dir: &Path) -> Result<PathBuf, String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = manifest_dir.join("Cargo.toml");
    let out = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        // Without a platform filter cargo wants every platform's packages (redox, …),
        // which an offline registry cache does not hold.
        .args(
            env::var("TARGET")
                .map(|t| vec!["--filter-platform".to_owned(), t])
                .unwrap_or_default(),
        )
        .output()
        .map_err(|e| format!("cannot run `{cargo} metadata`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo metadata --offline` failed (run `cargo fetch` first):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cannot parse `cargo metadata` output: {e}"))?;
    let packages = meta["packages"]
        .as_array()
        .ok_or("metadata has no packages")?;
    let self_id = packages
        .iter()
        .find(|p| {
            p["name"] == "ironmesh-xds"
                && p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path())
        })
        .and_then(|p| p["id"].as_str())
        .ok_or("`cargo metadata` does not list ironmesh-xds itself")?;
    let nodes = meta["resolve"]["nodes"]
        .as_array()
        .ok_or("metadata has no resolve graph")?;
    let dep_id = nodes
        .iter()
        .find(|n| n["id"] == self_id)
        .and_then(|n| n["deps"].as_array())
        .and_then(|deps| deps.iter().find(|d| d["name"] == "envoy_types"))
        .and_then(|d| d["pkg"].as_str())
        .ok_or("ironmesh-xds does not resolve a dependency on envoy-types")?;
    let package = packages
        .iter()
        .find(|p| p["id"] == dep_id)
        .ok_or("the resolved envoy-types package is missing from `cargo metadata`")?;
    let manifest_path = package["manifest_path"]
        .as_str()
        .ok_or("envoy-types has no manifest_path")?;
    Path::new(manifest_path)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("odd manifest path {manifest_path}"))
}

/// Fallback when `cargo metadata --offline` cannot run (a package of another workspace
/// member not downloaded yet): the single envoy-types version in Cargo.lock, looked up
/// in the registry sources under CARGO_HOME.
fn from_lockfile(manifest_dir: &Path) -> Result<PathBuf, String> {
    let lockfile = manifest_dir
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.is_file())
        .ok_or("no Cargo.lock above the crate")?;
    println!("cargo:rerun-if-changed={}", lockfile.display());
    let text = fs::read_to_string(&lockfile).map_err(|e| e.to_string())?;
    let mut versions = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"envoy-types\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                versions.push(v.trim_matches('"').to_owned());
            }
        }
    }
    let [version] = versions.as_slice() else {
        return Err(format!(
            "{} lists envoy-types {versions:?}; expected exactly one version",
            lockfile.display()
        ));
    };
    let home = env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| env::var("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map_err(|_| "neither CARGO_HOME nor HOME is set")?;
    let registry = home.join("registry/src");
    let entries =
        fs::read_dir(&registry).map_err(|e| format!("cannot read {}: {e}", registry.display()))?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path().join(format!("envoy-types-{version}")))
        .find(|dir| dir.join(DESCRIPTORS).is_file())
        .ok_or_else(|| format!("envoy-types-{version} is not under {}", registry.display()))
}
