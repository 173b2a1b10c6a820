//! Shared helpers of the Envoy interop tests: the discovery process, a config directory
//! that is changed atomically, Istio-style node identities, plain HTTP, and readers for
//! Envoy's admin API.

pub mod discovery;
pub mod envoy;
pub mod http;
pub mod mesh;

use std::path::{Path, PathBuf};

pub use discovery::Discovery;

#[allow(unused_imports)] // each test binary uses a different subset
pub use ironmesh_testkit::net::{free_ports, loopback, wait_until};

/// A temporary tree: `config/` (what discovery watches), `staging/` (where files are
/// written before being renamed into place, so the watcher never sees half a file),
/// `mesh.yaml` and the discovery log.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("ironmesh-interop-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir(dir.path().join("config")).expect("mkdir config");
        std::fs::create_dir(dir.path().join("staging")).expect("mkdir staging");
        Workspace { dir }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub fn mesh_config(&self) -> PathBuf {
        self.dir.path().join("mesh.yaml")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("discovery.log")
    }

    /// Writes `config/<name>` atomically (write + rename).
    pub fn write(&self, name: &str, text: &str) {
        let staged = self.dir.path().join("staging").join(name);
        std::fs::write(&staged, text).expect("write staged file");
        std::fs::rename(&staged, self.config_dir().join(name)).expect("rename into config/");
    }

    pub fn write_mesh(&self, text: &str) {
        std::fs::write(self.mesh_config(), text).expect("write mesh.yaml");
    }

    /// Starts discovery on this workspace (with `mesh.yaml` when written).
    pub fn start_discovery(&self) -> Discovery {
        let mesh = self.mesh_config();
        let mesh = mesh.exists().then_some(mesh);
        Discovery::start(&self.config_dir(), mesh.as_deref(), &self.log())
    }
}

/// The repository root (for `examples/`).
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}
