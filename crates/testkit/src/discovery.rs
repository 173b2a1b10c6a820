//! The `ironmesh-discovery` binary for tests of other crates: located next to the test
//! executable (built with cargo when missing), started on a config directory with every
//! port chosen by the OS, killed on drop.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http;
use crate::net::wait_until;

/// The `ironmesh-discovery` binary: `$IRONMESH_DISCOVERY`, or the one beside the test
/// executable, built with cargo when it is missing (see [`crate::bins::binary`]).
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("IRONMESH_DISCOVERY") {
        Some(p) => PathBuf::from(p),
        None => crate::bins::binary("ironmesh-discovery", "ironmesh-discovery"),
    })
    .clone()
}

/// A temporary tree: `config/` (what discovery watches), `staging/` (files are written
/// there and renamed into place, so the watcher never sees half a file), `mesh.yaml`
/// and the logs.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("ironmesh-test-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir(dir.path().join("config")).expect("mkdir config");
        std::fs::create_dir(dir.path().join("staging")).expect("mkdir staging");
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub fn mesh_config(&self) -> PathBuf {
        self.dir.path().join("mesh.yaml")
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

    /// Starts discovery on this workspace (with `mesh.yaml` when written); its log is
    /// `discovery.log` here.
    pub fn start_discovery(&self) -> Discovery {
        let mesh = self.mesh_config();
        let mesh = mesh.exists().then_some(mesh);
        Discovery::start(
            &self.config_dir(),
            mesh.as_deref(),
            &self.dir.path().join("discovery.log"),
        )
    }
}

/// `text` with every `${KEY}` replaced; panics when a placeholder is left.
pub fn fill_template(text: &str, vars: &[(&str, String)]) -> String {
    let mut text = text.to_string();
    for (k, v) in vars {
        text = text.replace(&format!("${{{k}}}"), v);
    }
    assert!(!text.contains("${"), "a placeholder is left unset:\n{text}");
    text
}

/// A running discovery process.
pub struct Discovery {
    child: Child,
    pub xds: SocketAddr,
    pub http: SocketAddr,
    pub monitoring: SocketAddr,
    log: PathBuf,
}

impl Discovery {
    /// Starts discovery on `config_dir`, every port chosen by the OS, stderr to `log`.
    /// Returns once `/ready` answers 200.
    pub fn start(config_dir: &Path, mesh_config: Option<&Path>, log: &Path) -> Discovery {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the discovery log");
        let mut cmd = Command::new(binary());
        cmd.arg("--config-dir")
            .arg(config_dir)
            .args(["--grpc-addr", "127.0.0.1:0"])
            .args(["--http-addr", "127.0.0.1:0"])
            .args(["--monitoring-addr", "127.0.0.1:0"]);
        if let Some(m) = mesh_config {
            cmd.arg("--mesh-config").arg(m);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the `listening` lines, then keeps draining so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let mut addrs = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while addrs.len() < 3 {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "ironmesh-discovery did not print its three `listening` lines within 30s \
                     (exit: {status:?})\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            };
            if let Some((what, addr)) = line
                .strip_prefix("listening ")
                .and_then(|rest| rest.split_once('='))
            {
                let addr: SocketAddr = addr
                    .trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
                addrs.insert(what.to_string(), addr);
            }
        }
        let d = Discovery {
            child,
            xds: addrs["xds"],
            http: addrs["http"],
            monitoring: addrs["monitoring"],
            log: log.to_path_buf(),
        };
        let ok = wait_until(Duration::from_secs(60), || {
            http::get_simple(d.http, "/ready").is_ok_and(|r| r.status == 200)
        });
        assert!(ok, "discovery is not ready after 60s\n{}", d.logs());
        d
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id (for RSS and CPU readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// GET on the debug port; panics unless it answers 200.
    pub fn get(&self, path: &str) -> String {
        match http::get_simple(self.http, path) {
            Ok(r) if r.status == 200 => r.body,
            Ok(r) => panic!("discovery GET {path}: {} {}", r.status, r.body),
            Err(e) => panic!("discovery GET {path}: {e}\n{}", self.logs()),
        }
    }

    pub fn get_json(&self, path: &str) -> Value {
        let body = self.get(path);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {body}"))
    }

    /// Fails the test when discovery rejected any file of its config directory.
    pub fn assert_config_accepted(&self) {
        let configz = self.get_json("/debug/configz");
        let rejected = configz["rejected"].as_array().cloned().unwrap_or_default();
        assert!(
            rejected.is_empty(),
            "discovery rejected test config: {:#}",
            Value::Array(rejected)
        );
    }

    /// The syncz entry of the connection from `node_id` (the newest, if several).
    pub fn syncz_of(&self, node_id: &str) -> Option<Value> {
        match self.get_json("/debug/syncz") {
            Value::Array(a) => a.into_iter().rev().find(|c| c["id"] == node_id),
            _ => None,
        }
    }

    /// Whether `node_id` is connected and has acknowledged every type it subscribed to
    /// (at least LDS and CDS) at the version sent.
    pub fn in_sync(&self, node_id: &str) -> bool {
        let Some(entry) = self.syncz_of(node_id) else {
            return false;
        };
        let Some(types) = entry["types"].as_object() else {
            return false;
        };
        let subscribed: Vec<&Value> = types.values().filter(|t| t["subscribed"] == true).collect();
        subscribed.len() >= 2
            && subscribed.iter().all(|t| {
                let sent = t["sentVersion"].as_str();
                sent.is_some() && sent == t["ackedVersion"].as_str()
            })
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
