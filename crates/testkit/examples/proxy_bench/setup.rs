//! What the benchmark starts: nginx (backend and reference proxy) from config files in
//! the work dir, the mesh config for discovery, and Envoy with `--concurrency N`.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ironmesh_testkit::envoy::{bootstrap, envoy_binary, AdsApi};
use ironmesh_testkit::node::Node;
use serde_json::json;

/// The path every client requests; the backend serves a 1 KiB file there.
pub const PATH: &str = "/1k.html";
/// The Host the gateway routes.
pub const HOST: &str = "bench.example.com";

/// A child process killed (and reaped) on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running; `Err` with its log tail when it exited.
    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}): {}",
                self.name,
                tail(&fs::read_to_string(&self.log).unwrap_or_default(), 5)
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master only stops its worker when asked; SIGKILL
        // would leave the worker running as an orphan.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_ok() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while std::time::Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
    let out = fs::File::create(log).expect("create log");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone log"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Proc {
        child,
        name: name.into(),
        log: log.to_path_buf(),
    }
}

/// nginx with one worker, `daemon off`, everything under `dir/<name>/`; `server` is the
/// body of the `http {}` block.
fn nginx(dir: &Path, name: &str, server: &str) -> Proc {
    let root = dir.join(name);
    fs::create_dir_all(root.join("tmp")).expect("mkdir nginx dir");
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {root}/tmp/body;\n  proxy_temp_path {root}/tmp/proxy;\n\
         keepalive_requests 1000000;\n  keepalive_timeout 120s;\n{server}\n}}\n",
        root = root.display()
    );
    let conf_path = root.join("nginx.conf");
    fs::write(&conf_path, conf).expect("write nginx.conf");
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(&root)
        .arg("-e")
        .arg(root.join("error.log"))
        .arg("-c")
        .arg(&conf_path);
    spawn(name, cmd, &root.join("stdout.log"))
}

/// The backend: nginx serving a 1 KiB file at [`PATH`].
pub fn nginx_backend(dir: &Path, port: u16) -> Proc {
    let html = dir.join("html");
    fs::create_dir_all(&html).expect("mkdir html");
    fs::write(html.join("1k.html"), "x".repeat(1024)).expect("write 1k.html");
    nginx(
        dir,
        "nginx-backend",
        &format!(
            "  server {{ listen 127.0.0.1:{port}; location / {{ root {}; }} }}",
            html.display()
        ),
    )
}

/// The reference proxy: nginx, one worker, keep-alive upstream pool.
pub fn nginx_proxy(dir: &Path, port: u16, backend: u16) -> Proc {
    nginx(
        dir,
        "nginx-proxy",
        &format!(
            "  upstream backend {{ server 127.0.0.1:{backend}; keepalive 32; keepalive_requests 1000000; }}\n\
             \x20 server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://backend; \
             proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}"
        ),
    )
}

/// Envoy with `--concurrency`, driven by ADS at `xds` as `node`.
pub fn envoy(dir: &Path, name: &str, node: &Node, xds: SocketAddr, concurrency: usize) -> Proc {
    let mut b = bootstrap(&node.envoy_config(xds.port(), AdsApi::Delta));
    b["admin"] = json!({"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}});
    let path = dir.join(format!("{name}.json"));
    fs::write(&path, b.to_string()).expect("write bootstrap");
    let mut cmd = Command::new(envoy_binary());
    cmd.arg("-c")
        .arg(&path)
        .args(["--disable-hot-restart", "-l", "warning"])
        .args(["--concurrency", &concurrency.to_string()]);
    spawn(name, cmd, &dir.join(format!("{name}.log")))
}

/// The small mesh: two gateways route Host [`HOST`] to the backend at
/// 127.0.0.1:`backend` (a ServiceEntry selecting a WorkloadEntry), so that ironmesh-proxy
/// and Envoy can run side by side on the same config: `istio: ingressgateway` (Pod on
/// 127.0.0.30, listener on `ours`) and `istio: ingressgateway-envoy` (Pod on 127.0.0.31,
/// listener on `envoy`). One VirtualService binds both gateways.
pub fn gateway_yaml(ours: u16, envoy: u16, backend: u16) -> String {
    let mut y = format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: bench}}
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {{name: backend, namespace: bench}}
spec:
  hosts: [backend.bench.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP, targetPort: {backend}}}]
  workloadSelector: {{labels: {{app: backend}}}}
---
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata: {{name: backend-0, namespace: bench}}
spec:
  address: 127.0.0.1
  labels: {{app: backend}}
  ports: {{http: {backend}}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {{name: bench, namespace: bench}}
spec:
  hosts: ["{HOST}"]
  gateways: [bench-gateway, bench-gateway-envoy]
  http:
  - route: [{{destination: {{host: backend.bench.internal}}}}]
---
apiVersion: v1
kind: Namespace
metadata: {{name: istio-system}}
"#
    );
    for (suffix, ip, port) in [("", "127.0.0.30", ours), ("-envoy", "127.0.0.31", envoy)] {
        let _ = write!(
            y,
            r#"---
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {{name: bench-gateway{suffix}, namespace: bench}}
spec:
  selector: {{istio: ingressgateway{suffix}}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: ["{HOST}"]
---
apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway{suffix}
  namespace: istio-system
  labels: {{app: istio-ingressgateway{suffix}, istio: ingressgateway{suffix}}}
spec:
  selector: {{app: istio-ingressgateway{suffix}, istio: ingressgateway{suffix}}}
  ports: [{{name: http2, port: 80, protocol: TCP, targetPort: {port}}}]
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-ingressgateway{suffix}-bench-0
  namespace: istio-system
  labels: {{app: istio-ingressgateway{suffix}, istio: ingressgateway{suffix}, sidecar.istio.io/inject: "false"}}
spec:
  serviceAccountName: istio-ingressgateway-service-account
  containers: [{{name: istio-proxy, image: "docker.io/istio/proxyv2:1.17.2"}}]
status:
  phase: Running
  podIP: {ip}
  conditions: [{{type: Ready, status: "True"}}]
"#
        );
    }
    y
}

/// `services` Kubernetes Services (HTTP port 80 → 8080, VIPs in 240.240.0.0/16), each
/// selecting three ready Pods (IPs in 10.213.0.0/16), 100 Services per namespace. The
/// addresses are data only: nothing sends traffic to them.
pub fn scale_yaml(services: usize) -> String {
    let mut y = String::new();
    for ns in 0..services.div_ceil(100) {
        let _ = write!(
            y,
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: scale-{ns:03}}}\n---\n"
        );
    }
    for i in 0..services {
        let ns = i / 100;
        let _ = write!(
            y,
            "apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: scale-{ns:03}}}\n\
             spec:\n  clusterIP: 240.240.{}.{}\n  selector: {{app: svc-{i}}}\n  \
             ports: [{{name: http, port: 80, targetPort: 8080}}]\n---\n",
            i / 250,
            i % 250 + 1
        );
        for j in 0..3 {
            let n = i * 3 + j;
            let _ = write!(
                y,
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: svc-{i}-{j}, namespace: scale-{ns:03}, \
                 labels: {{app: svc-{i}}}}}\nspec: {{containers: [{{name: app, image: app}}]}}\n\
                 status: {{phase: Running, podIP: 10.213.{}.{}, conditions: [{{type: Ready, status: \"True\"}}]}}\n---\n",
                n / 250,
                n % 250 + 1
            );
        }
    }
    y
}
