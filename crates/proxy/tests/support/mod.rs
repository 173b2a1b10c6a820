//! Shared by the proxy's integration tests: runs the real `ironmesh-proxy` binary with a
//! static config (or against an ADS server), reads its port lines, and a small HTTP
//! client over hyper (HTTP/1.1 or h2c prior knowledge).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

pub use ironmesh_testkit::echo::EchoServer;

type Lines = Arc<(Mutex<Vec<String>>, Condvar)>;

/// A running `ironmesh-proxy`; killed when dropped.
pub struct Proxy {
    pub child: Child,
    lines: Lines,
    pub stderr: Lines,
    _dir: ironmesh_testkit::TempDir,
}

fn pump(r: impl std::io::Read + Send + 'static, lines: Lines, echo: bool) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("[proxy] {line}");
            }
            let (m, c) = &*lines;
            m.lock().unwrap().push(line);
            c.notify_all();
        }
    });
}

impl Proxy {
    /// Starts `proxy <role>` with `config` as `--config-file`, extra flags appended.
    pub fn with_config(role: &str, config: &Value, extra: &[&str]) -> Proxy {
        let (dir, args) = config_args(config, extra);
        Self::spawn(role, &args, dir, &[])
    }

    pub fn spawn(
        role: &str,
        extra: &[String],
        dir: ironmesh_testkit::TempDir,
        env: &[(&str, &str)],
    ) -> Proxy {
        let mut args: Vec<String> = ["--outbound-port", "0", "--inbound-port", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().cloned());
        Self::launch(
            Command::new(env!("CARGO_BIN_EXE_ironmesh-proxy")),
            role,
            &args,
            dir,
            env,
        )
    }

    /// Starts the proxy through `cmd` (the binary itself, or `ip netns exec … binary`).
    pub fn launch(
        mut cmd: Command,
        role: &str,
        extra: &[String],
        dir: ironmesh_testkit::TempDir,
        env: &[(&str, &str)],
    ) -> Proxy {
        cmd.args([
            "proxy",
            role,
            "--readiness-port",
            "0",
            "--status-port",
            "0",
            "--prometheus-port",
            "0",
            "--admin-addr",
            "127.0.0.1:0",
            "--agent-bind",
            "127.0.0.1",
        ])
        .args(extra)
        .env("POD_NAME", "test-pod-1234-abcd")
        .env("POD_NAMESPACE", "default")
        .env("INSTANCE_IP", "127.0.0.1")
        .env("TERMINATION_DRAIN_DURATION_SECONDS", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ironmesh-proxy");
        let lines: Lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stderr: Lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        pump(child.stdout.take().unwrap(), lines.clone(), true);
        pump(child.stderr.take().unwrap(), stderr.clone(), true);
        Proxy {
            child,
            lines,
            stderr,
            _dir: dir,
        }
    }

    /// Waits for a stdout line matching `pred`; panics after `timeout`.
    pub fn wait_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let (m, c) = &*self.lines;
        let deadline = Instant::now() + timeout;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(l) = g.iter().find(|l| pred(l)) {
                return l.clone();
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "no matching proxy output within {timeout:?}; got:\n{}",
                g.join("\n")
            );
            g = c.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().clone()
    }

    pub fn wait_ready(&self) {
        self.wait_line(Duration::from_secs(30), |l| l == "ready");
    }

    /// The address listener `name` was bound on (`listening <name>=<addr>`).
    pub fn addr(&self, name: &str) -> SocketAddr {
        let prefix = format!("listening {name}=");
        let l = self.wait_line(Duration::from_secs(30), |l| l.starts_with(&prefix));
        let a: SocketAddr = l[prefix.len()..].parse().unwrap();
        if a.ip().is_unspecified() {
            SocketAddr::new("127.0.0.1".parse().unwrap(), a.port())
        } else {
            a
        }
    }

    pub fn sigterm(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, n: &str) -> Option<&str> {
        self.headers.get(n).and_then(|v| v.to_str().ok())
    }
    /// A header the echo backend received.
    pub fn echoed(&self, n: &str) -> Option<String> {
        self.json()["headers"][n].as_str().map(str::to_string)
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Sends one request on a new connection (HTTP/1.1, or h2c prior knowledge when `h2`).
pub async fn send(addr: SocketAddr, h2: bool, req: Request<Full<Bytes>>) -> Result<Resp, String> {
    let s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let io = TokioIo::new(s);
    let resp = if h2 {
        let (mut s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        s.send_request(req).await.map_err(|e| e.to_string())?
    } else {
        let (mut s, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        s.send_request(req).await.map_err(|e| e.to_string())?
    };
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.map_err(|e| e.to_string())?;
    let trailers = collected.trailers().cloned();
    Ok(Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    })
}

/// Builds a request for `host` + `path`.
pub fn req(h2: bool, host: &str, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = if h2 {
        Request::builder()
            .uri(format!("http://{host}{path}"))
            .version(http::Version::HTTP_2)
    } else {
        Request::builder().uri(path).header("host", host)
    };
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

/// GET over HTTP/1.1 (blocking).
pub fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    rt().block_on(send(addr, false, req(false, host, path, headers)))
        .unwrap()
}

/// Writes `config` to a temp dir: `--config-file PATH` plus `extra`.
pub fn config_args(config: &Value, extra: &[&str]) -> (ironmesh_testkit::TempDir, Vec<String>) {
    let dir = ironmesh_testkit::TempDir::new().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let mut args = vec!["--config-file".to_string(), path.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    (dir, args)
}

// ---- config builders (proto3 JSON in the shape of discovery's goldens) ----

pub fn socket(addr: SocketAddr) -> Value {
    json!({"socketAddress": {"address": addr.ip().to_string(), "portValue": addr.port()}})
}

pub fn endpoints(name: &str, addrs: &[SocketAddr]) -> Value {
    json!({"@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", "clusterName": name,
        "endpoints": [{"lbEndpoints": addrs.iter().map(|a| json!({"endpoint": {"address": socket(*a)}})).collect::<Vec<_>>()}]})
}

/// An EDS cluster (endpoints in `endpoints()` under the same name); `h2` sets explicit HTTP/2.
pub fn eds_cluster(name: &str, lb: &str, h2: bool) -> Value {
    let mut c = json!({"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": name, "type": "EDS",
        "edsClusterConfig": {"edsConfig": {"ads": {}, "resourceApiVersion": "V3"}, "serviceName": name},
        "connectTimeout": "1s", "lbPolicy": lb});
    if h2 {
        c["typedExtensionProtocolOptions"] = json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicitHttpConfig": {"http2ProtocolOptions": {}}}});
    }
    c
}

pub fn hcm(route_name: &str, stat: &str) -> Value {
    json!({"name": "envoy.filters.network.http_connection_manager", "typedConfig": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "statPrefix": stat, "rds": {"configSource": {"ads": {}, "resourceApiVersion": "V3"}, "routeConfigName": route_name},
        "httpFilters": [{"name": "envoy.filters.http.fault", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
                        {"name": "envoy.filters.http.router", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
        "serverName": "istio-envoy", "useRemoteAddress": true, "upgradeConfigs": [{"upgradeType": "websocket"}]}})
}

/// A gateway-style HTTP listener `0.0.0.0_<port>` using RDS `route_name`.
pub fn http_listener(port: u16, route_name: &str) -> Value {
    json!({"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": format!("0.0.0.0_{port}"),
        "address": {"socketAddress": {"address": "0.0.0.0", "portValue": port}},
        "filterChains": [{"filters": [hcm(route_name, &format!("outbound_0.0.0.0_{port}"))]}], "trafficDirection": "OUTBOUND"})
}

pub fn tcp_listener(port: u16, cluster: &str, extra: Value) -> Value {
    let mut tp = json!({"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "statPrefix": cluster, "cluster": cluster});
    if let (Some(o), Some(e)) = (tp.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    json!({"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": format!("0.0.0.0_{port}"),
        "address": {"socketAddress": {"address": "0.0.0.0", "portValue": port}},
        "filterChains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typedConfig": tp}]}]})
}

pub fn route_config(name: &str, vhosts: Value) -> Value {
    json!({"@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": name, "virtualHosts": vhosts, "validateClusters": false})
}

/// The common gateway setup: listener on `port` (bound to 127.0.0.1:0), route config
/// "r", the given clusters and endpoints.
pub fn config(
    listeners: Vec<Value>,
    routes: Vec<Value>,
    clusters: Vec<Value>,
    eps: Vec<Value>,
) -> Value {
    json!({"listeners": listeners, "routes": routes, "clusters": clusters, "endpoints": eps})
}

pub fn count_servers(addr: SocketAddr, host: &str, path: &str, n: usize) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let rt = rt();
    for _ in 0..n {
        let r = rt
            .block_on(send(addr, false, req(false, host, path, &[])))
            .unwrap();
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        *out.entry(r.header("x-echo-server").unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    out
}
