//! The `ironmesh-discovery` binary under test: started on a config directory with its
//! three ports chosen by the OS (or a given xDS port, for restarts), killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http;
use super::wait_until;

/// A running discovery process.
pub struct Discovery {
    child: Child,
    pub xds: SocketAddr,
    pub http: SocketAddr,
    pub monitoring: SocketAddr,
    config_dir: PathBuf,
    mesh_config: Option<PathBuf>,
    log: PathBuf,
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ironmesh-discovery"))
}

impl Discovery {
    /// Starts discovery on `config_dir` (with `--mesh-config mesh_config` when given),
    /// every port chosen by the OS; stderr goes to `log`. Returns once it is ready.
    pub fn start(config_dir: &Path, mesh_config: Option<&Path>, log: &Path) -> Discovery {
        Self::start_on(config_dir, mesh_config, log, 0)
    }

    /// Like [`Discovery::start`] with the xDS port fixed (0 = any).
    pub fn start_on(
        config_dir: &Path,
        mesh_config: Option<&Path>,
        log: &Path,
        xds_port: u16,
    ) -> Discovery {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the discovery log");
        let mut cmd = Command::new(binary());
        cmd.arg("--config-dir")
            .arg(config_dir)
            .args(["--grpc-addr", &format!("127.0.0.1:{xds_port}")])
            .args([
                "--http-addr",
                "127.0.0.1:0",
                "--monitoring-addr",
                "127.0.0.1:0",
            ])
            .args([
                "--log-level",
                &std::env::var("IRONMESH_TEST_DISCOVERY_LOG").unwrap_or_else(|_| "info".into()),
            ]);
        if let Some(m) = mesh_config {
            cmd.arg("--mesh-config").arg(m);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start ironmesh-discovery");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the `listening` lines, then keeps draining so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let mut addrs = std::collections::BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while addrs.len() < 3 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
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
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    panic!(
                        "ironmesh-discovery did not print its three `listening` lines within 30s \
                         (exit: {status:?})\n{}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                }
            }
        }
        let d = Discovery {
            child,
            xds: addrs["xds"],
            http: addrs["http"],
            monitoring: addrs["monitoring"],
            config_dir: config_dir.to_path_buf(),
            mesh_config: mesh_config.map(Path::to_path_buf),
            log: log.to_path_buf(),
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&self) {
        let ok = wait_until(Duration::from_secs(20), || {
            http::get_simple(self.http, "/ready").is_ok_and(|r| r.status == 200)
        });
        assert!(ok, "discovery is not ready after 20s\n{}", self.logs());
    }

    /// Kills the process and starts a new one on the same xDS port and config.
    pub fn restart(&mut self) {
        self.kill();
        let next = Self::start_on(
            &self.config_dir,
            self.mesh_config.as_deref(),
            &self.log,
            self.xds.port(),
        );
        // Replacing `*self` drops the old value, whose child is already reaped.
        *self = next;
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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

    pub fn syncz(&self) -> Vec<Value> {
        match self.get_json("/debug/syncz") {
            Value::Array(a) => a,
            other => panic!("/debug/syncz is not an array: {other}"),
        }
    }

    /// The syncz entry of the connection from `node_id` (the newest, if several).
    pub fn syncz_of(&self, node_id: &str) -> Option<Value> {
        self.syncz().into_iter().rev().find(|c| c["id"] == node_id)
    }

    /// The Prometheus text on the monitoring port.
    pub fn metrics(&self) -> String {
        match http::get_simple(self.monitoring, "/metrics") {
            Ok(r) if r.status == 200 => r.body,
            other => panic!("GET /metrics: {other:?}"),
        }
    }

    /// The value of the sample `name{labels}` exactly as printed, e.g.
    /// `pilot_total_xds_rejects{type="cds"}`.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        self.metrics().lines().find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Types whose status in a syncz entry is not "subscribed, sent, acknowledged": the
/// reason for each, or an empty list when the proxy is in sync.
pub fn out_of_sync(entry: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(types) = entry["types"].as_object() else {
        return vec![format!("no types in {entry}")];
    };
    for (name, t) in types {
        if t["subscribed"] != Value::Bool(true) {
            continue;
        }
        let sent = t["sentVersion"].as_str();
        let acked = t["ackedVersion"].as_str();
        if sent.is_none() || sent != acked {
            problems.push(format!(
                "{name}: sent {sent:?} acked {acked:?} nack {}",
                t["nack"]
            ));
        }
    }
    problems
}
