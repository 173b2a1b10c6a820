//! Proxyless gRPC against the real `ironmesh-discovery` binary: Python `grpcio` (a
//! client nobody on this project wrote) resolves `xds:///echo.<ns>.svc.cluster.local:7070`
//! over ADS and its calls follow what the VirtualService says — a 50/50 split between
//! two versions, a header match, and, after the file is edited, an injected abort
//! pushed to the already connected client.
//!
//! Needs the gRPC Python venv (created on first use by `ironmesh_testkit::python`).
//! Every process started here is killed when its guard drops, also when a test fails.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ironmesh_testkit::python::grpc_python;
use ironmesh_testkit::TempDir;
use serde_json::{json, Value};

const NS: &str = "grpc-echo";
const SERVICE_PORT: u16 = 7070;
/// Calls per count run; with p = 0.5 the ±12% band is about ±3.4 standard deviations.
const CALLS: usize = 200;
const TOLERANCE: f64 = 0.12;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/grpc")
}

fn host() -> String {
    format!("echo.{NS}.svc.cluster.local")
}

fn target() -> String {
    format!("xds:///{}:{SERVICE_PORT}", host())
}

/// A child process killed (and reaped) on drop.
struct Guard {
    name: &'static str,
    child: Child,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads lines of `out` on a thread, so waits can have deadlines.
fn line_reader(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The control plane, with its log in a file for failure messages.
struct Discovery {
    _guard: Guard,
    xds_port: u16,
    http_port: u16,
    log: PathBuf,
}

impl Discovery {
    fn start(config_dir: &Path, log: PathBuf) -> Discovery {
        let log_file = fs::File::create(&log).expect("create discovery log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ironmesh-discovery"))
            .arg("--config-dir")
            .arg(config_dir)
            .args([
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--monitoring-addr",
                "127.0.0.1:0",
                "--log-level",
                "info",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start ironmesh-discovery");
        let lines = line_reader(child.stdout.take().expect("piped stdout"));
        let guard = Guard {
            name: "ironmesh-discovery",
            child,
        };
        let (mut xds, mut http) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while xds.is_none() || http.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "ironmesh-discovery did not print its ports within 30s\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                )
            });
            let port = |l: &str| l.rsplit(':').next().and_then(|p| p.trim().parse().ok());
            if let Some(rest) = line.strip_prefix("listening xds=") {
                xds = port(rest);
            } else if let Some(rest) = line.strip_prefix("listening http=") {
                http = port(rest);
            }
        }
        let d = Discovery {
            _guard: guard,
            xds_port: xds.expect("xds port"),
            http_port: http.expect("http port"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while d.get("/ready").map(|(s, _)| s) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "ironmesh-discovery not ready within 30s\n{}",
                d.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    fn logs(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A plain HTTP/1.0 GET on the debug port: status and body.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_string()))
    }
}

/// One echo server answering `version`.
fn echo_server(ip: &str, port: u16, version: &str) -> Result<(Guard, u16), String> {
    let mut child = Command::new(grpc_python())
        .arg(testdata().join("echo_server.py"))
        .args([ip, &port.to_string(), version])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start echo_server.py: {e}"))?;
    let lines = line_reader(child.stdout.take().expect("piped stdout"));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let guard = Guard {
        name: "echo_server.py",
        child,
    };
    match lines.recv_timeout(Duration::from_secs(30)) {
        Ok(line) => {
            let bound = line
                .strip_prefix("ready ")
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("echo_server.py printed {line:?}"))?;
            Ok((guard, bound))
        }
        Err(_) => {
            drop(guard);
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            Err(format!("echo_server.py {ip}:{port} did not start: {err}"))
        }
    }
}

/// v1 on 127.0.0.31 and v2 on 127.0.0.32, on one port Q (the pods' container port).
fn echo_servers() -> (Vec<Guard>, u16) {
    let mut last = String::new();
    for _ in 0..5 {
        let (v1, q) = echo_server("127.0.0.31", 0, "v1").unwrap_or_else(|e| panic!("{e}"));
        match echo_server("127.0.0.32", q, "v2") {
            Ok((v2, _)) => return (vec![v1, v2], q),
            // Someone else holds Q on 127.0.0.32: pick another.
            Err(e) => last = e,
        }
    }
    panic!("cannot start the v2 echo server on the port of v1: {last}");
}

fn pod(name: &str, version: &str, ip: &str, q: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {NS}
  labels: {{app: echo, version: {version}}}
spec:
  containers:
  - name: echo
    image: echo
    ports:
    - {{name: grpc, containerPort: {q}}}
status:
  phase: Running
  podIP: {ip}
  podIPs: [{{ip: {ip}}}]
  conditions:
  - {{type: Ready, status: "True"}}
"#
    )
}

fn mesh_yaml(q: u16) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {NS}
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: {NS}
spec:
  selector: {{app: echo}}
  ports:
  - {{name: grpc, port: {SERVICE_PORT}, targetPort: grpc}}
---
{}---
{}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: echo
  namespace: {NS}
spec:
  host: echo
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
"#,
        pod("echo-v1", "v1", "127.0.0.31", q),
        pod("echo-v2", "v2", "127.0.0.32", q),
    )
}

/// Header `x-version: v2` goes to v2; everything else is split 50/50.
fn split_vs() -> String {
    let host = host();
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: {NS}
spec:
  hosts: [{host}]
  http:
  - name: pinned
    match:
    - headers:
        x-version: {{exact: v2}}
    route:
    - destination: {{host: {host}, subset: v2}}
  - name: split
    route:
    - destination: {{host: {host}, subset: v1}}
      weight: 50
    - destination: {{host: {host}, subset: v2}}
      weight: 50
"#
    )
}

/// Every call aborted with UNAVAILABLE.
fn abort_vs() -> String {
    let host = host();
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: echo
  namespace: {NS}
spec:
  hosts: [{host}]
  http:
  - name: broken
    fault:
      abort:
        grpcStatus: UNAVAILABLE
        percentage: {{value: 100}}
    route:
    - destination: {{host: {host}, subset: v1}}
"#
    )
}

/// Replaces `path` the way an editor saves (hidden temp file, then rename), so the
/// watcher never reads half a file.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    fs::write(&tmp, text).expect("write temp file");
    fs::rename(&tmp, path).expect("rename over the config file");
}

fn grpc_bootstrap(xds_port: u16) -> Value {
    json!({
        "xds_servers": [{
            "server_uri": format!("127.0.0.1:{xds_port}"),
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": {
            "id": format!("sidecar~127.0.0.1~client.{NS}~{NS}.svc.cluster.local"),
            "metadata": {"NAMESPACE": NS, "GENERATOR": "grpc"},
        },
        "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
    })
}

/// Everything one test needs, torn down in reverse order on drop.
struct Mesh {
    // Field order is drop order: the client side first, then the servers.
    discovery: Discovery,
    _servers: Vec<Guard>,
    vs_path: PathBuf,
    bootstrap: PathBuf,
    dir: TempDir,
}

impl Mesh {
    fn start() -> Mesh {
        let dir = TempDir::new().expect("temp dir");
        let config = dir.path().join("config");
        fs::create_dir(&config).expect("config dir");
        let (servers, q) = echo_servers();
        fs::write(config.join("mesh.yaml"), mesh_yaml(q)).expect("write mesh.yaml");
        let vs_path = config.join("virtual-service.yaml");
        fs::write(&vs_path, split_vs()).expect("write virtual-service.yaml");
        let discovery = Discovery::start(&config, dir.path().join("discovery.log"));
        let bootstrap = dir.path().join("bootstrap.json");
        fs::write(&bootstrap, grpc_bootstrap(discovery.xds_port).to_string()).expect("bootstrap");
        Mesh {
            discovery,
            _servers: servers,
            vs_path,
            bootstrap,
            dir,
        }
    }

    fn client(&self, args: &[&str]) -> Guard {
        let child = Command::new(grpc_python())
            .arg(testdata().join("client.py"))
            .args(args)
            .env("GRPC_XDS_BOOTSTRAP", &self.bootstrap)
            // grpcio logs xDS trouble (NACKs included) at this level.
            .env("GRPC_VERBOSITY", "ERROR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(self.dir.path().join("client.log")).expect("client log"))
            .spawn()
            .expect("start client.py");
        Guard {
            name: "client.py",
            child,
        }
    }

    /// Waits for the client's JSON line (at most `limit`), then for its exit.
    fn result(&self, mut client: Guard, lines: &mpsc::Receiver<String>, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.starts_with('{') => {
                    let _ = client.child.wait();
                    return serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("client printed bad JSON ({e}): {line}"));
                }
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = client.child.wait();
                    panic!(
                        "{} exited ({status:?}) without a result\n{}",
                        client.name,
                        self.diagnostics()
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = client.child.kill();
                    panic!(
                        "{} gave no result within {limit:?}\n{}",
                        client.name,
                        self.diagnostics()
                    );
                }
            }
        }
    }

    /// `client.py count` with metadata `pairs`.
    fn count(&self, pairs: &[&str]) -> Value {
        let target = target();
        let calls = CALLS.to_string();
        let mut args = vec!["count", target.as_str(), calls.as_str()];
        args.extend_from_slice(pairs);
        let mut client = self.client(&args);
        let lines = line_reader(client.child.stdout.take().expect("piped stdout"));
        let result = self.result(client, &lines, Duration::from_secs(120));
        self.assert_acked(&result);
        result
    }

    fn diagnostics(&self) -> String {
        let syncz = self
            .discovery
            .get("/debug/syncz")
            .map(|(_, b)| b)
            .unwrap_or_default();
        format!(
            "--- discovery /debug/syncz\n{syncz}\n--- discovery log\n{}\n--- client log\n{}",
            self.discovery.logs(),
            fs::read_to_string(self.dir.path().join("client.log")).unwrap_or_default()
        )
    }

    /// grpcio must not have NACKed anything: show its complaint when it did.
    #[track_caller]
    fn assert_acked(&self, result: &Value) {
        let nacked: Vec<&Value> = result["csds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["status"] == "NACKED" || r.get("error").is_some())
            .collect();
        assert!(
            nacked.is_empty(),
            "grpcio rejected resources:\n{}\nclient messages: {}\n{}",
            serde_json::to_string_pretty(&nacked).unwrap(),
            result["messages"],
            self.diagnostics()
        );
    }
}

fn count_of(result: &Value, version: &str) -> u64 {
    result["counts"][version].as_u64().unwrap_or(0)
}

#[test]
fn grpcio_follows_weighted_and_header_routes_and_a_pushed_fault() {
    let mesh = Mesh::start();

    // 50/50 split between the subsets.
    let split = mesh.count(&[]);
    eprintln!("split: {split}");
    let (v1, v2) = (count_of(&split, "v1"), count_of(&split, "v2"));
    assert_eq!(
        v1 + v2,
        CALLS as u64,
        "every call must be answered by v1 or v2: {split}\n{}",
        mesh.diagnostics()
    );
    for (version, n) in [("v1", v1), ("v2", v2)] {
        let share = n as f64 / CALLS as f64;
        assert!(
            (share - 0.5).abs() <= TOLERANCE,
            "{version} got {n} of {CALLS} calls ({:.0}%), expected 50% ± {:.0}%: {split}",
            share * 100.0,
            TOLERANCE * 100.0
        );
    }

    // The header match pins every call to v2.
    let pinned = mesh.count(&["x-version=v2"]);
    eprintln!("pinned: {pinned}");
    assert_eq!(
        count_of(&pinned, "v2"),
        CALLS as u64,
        "x-version: v2 must always reach v2: {pinned}\n{}",
        mesh.diagnostics()
    );

    // A connected client sees the abort as soon as the edited file is pushed.
    let target = target();
    let mut watcher = mesh.client(&["watch", &target, "UNAVAILABLE", "20"]);
    let lines = line_reader(watcher.child.stdout.take().expect("piped stdout"));
    match lines.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if line == "serving" => {}
        Ok(line) => panic!(
            "watch client could not call before the edit: {line}\n{}",
            mesh.diagnostics()
        ),
        Err(_) => panic!(
            "watch client did not start calling within 60s\n{}",
            mesh.diagnostics()
        ),
    }
    let edited = Instant::now();
    write_atomically(&mesh.vs_path, &abort_vs());
    let watched = mesh.result(watcher, &lines, Duration::from_secs(60));
    eprintln!("after the edit: {watched}");
    mesh.assert_acked(&watched);
    assert_eq!(
        watched["switched"],
        true,
        "calls did not fail with UNAVAILABLE within 20s of the edit: {watched}\n{}",
        mesh.diagnostics()
    );
    let took = edited.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the fault took {took:?} to reach a connected client"
    );
    let message = watched["messages"].to_string();
    // grpcio's own wording for an abort by the HTTPFault filter: the backends are fine.
    assert!(
        message.contains("Fault injected"),
        "expected UNAVAILABLE from the fault filter: {watched}"
    );

    // And a fresh client gets the fault from the first call.
    let broken = mesh.count(&[]);
    eprintln!("fresh client: {broken}");
    assert_eq!(
        broken["errors"]["UNAVAILABLE"].as_u64(),
        Some(CALLS as u64),
        "every call must be aborted with UNAVAILABLE: {broken}\n{}",
        mesh.diagnostics()
    );
}
