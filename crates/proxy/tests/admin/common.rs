//! Fakes for the admin tests: hooks, an app with metrics and probe targets, Envoy
//! resources, and a tiny HTTP client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironmesh_proxy::admin::AdminHooks;
use ironmesh_xds::pb::envoy::config::cluster::v3::Cluster;
use ironmesh_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use ironmesh_xds::pb::envoy::config::listener::v3::Listener;
use ironmesh_xds::pb::envoy::config::route::v3::RouteConfiguration;
use ironmesh_xds::{json_to_message, Any, Update, XdsResource};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const CLUSTER_NAME: &str = "outbound|9080||reviews.default.svc.cluster.local";

pub struct FakeHooks {
    pub ready: Mutex<Result<(), String>>,
    pub quits: AtomicUsize,
    pub drains: AtomicUsize,
}

impl Default for FakeHooks {
    fn default() -> Self {
        FakeHooks {
            ready: Mutex::new(Ok(())),
            quits: AtomicUsize::new(0),
            drains: AtomicUsize::new(0),
        }
    }
}

impl AdminHooks for FakeHooks {
    fn ready(&self) -> Result<(), String> {
        self.ready.lock().unwrap().clone()
    }
    fn stats_prometheus(&self) -> String {
        "# HELP envoy_cluster_upstream_cx_total Connections.\n\
         # TYPE envoy_cluster_upstream_cx_total counter\n\
         envoy_cluster_upstream_cx_total{cluster_name=\"a\"} 7\n\
         # TYPE istio_requests_total counter\n\
         istio_requests_total 3\n\
         # EOF\n"
            .into()
    }
    fn drain_listeners(&self) {
        self.drains
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn quit(&self) {
        self.quits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn clusters_text(&self) -> String {
        format!("{CLUSTER_NAME}::10.213.0.1:9080::health_flags::healthy\n")
    }
}

/// An EDS cluster with the fields that exercise rendering: enums, durations, wrapper
/// values, `Struct` metadata.
pub fn eds_cluster() -> Cluster {
    json_to_message(&json!({
        "name": CLUSTER_NAME,
        "type": "EDS",
        "eds_cluster_config": {
            "eds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "connect_timeout": "10s",
        "lb_policy": "LEAST_REQUEST",
        "circuit_breakers": {"thresholds": [{"max_connections": 4294967295u64, "max_requests": 4294967295u64}]},
        "metadata": {"filter_metadata": {"istio": {
            "services": [{"host": "reviews.default.svc.cluster.local", "name": "reviews", "namespace": "default"}]
        }}},
    }))
    .unwrap()
}

pub fn cla(port: u32) -> ClusterLoadAssignment {
    json_to_message(&json!({
        "cluster_name": CLUSTER_NAME,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": "10.213.0.1", "port_value": port}
        }}}]}],
    }))
    .unwrap()
}

/// A loopback HTTP listener whose routes come over RDS (`9080`).
pub fn listener() -> Listener {
    json_to_message(&json!({
        "name": "127.0.0.1_0",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "inbound_0.0.0.0_9080",
                "rds": {"config_source": {"ads": {}, "resource_api_version": "V3"}, "route_config_name": "9080"},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                }}],
            },
        }]}],
    }))
    .unwrap()
}

pub fn route() -> RouteConfiguration {
    json_to_message(&json!({
        "name": "9080",
        "virtual_hosts": [{
            "name": "reviews.default.svc.cluster.local:9080",
            "domains": ["reviews.default.svc.cluster.local", "reviews"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": CLUSTER_NAME, "timeout": "0s"}, "name": "default"}],
        }],
        "validate_clusters": false,
    }))
    .unwrap()
}

/// An update of `type_url` holding `resources` (each at `version`).
pub fn update(type_url: &str, version: &str, resources: Vec<(&str, Any)>) -> Update {
    let map: BTreeMap<String, XdsResource> = resources
        .into_iter()
        .map(|(name, any)| {
            let r = XdsResource {
                name: name.into(),
                version: version.into(),
                resource: any,
            };
            (name.to_owned(), r)
        })
        .collect();
    Update {
        type_url: type_url.into(),
        version_info: version.into(),
        resources: Arc::new(map),
        removed: vec![],
    }
}

/// One HTTP/1.1 request; returns status, body and content type.
pub async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let work = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("a status code");
        let ctype = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-type")
                    .then(|| v.trim().to_owned())
            })
            .unwrap_or_default();
        (code, body.to_owned(), ctype)
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .unwrap_or_else(|_| panic!("{method} {path} on {addr} within 10s"))
}

/// The app in the pod: `/metrics`, `/status/<code>`; remembers request heads.
pub struct FakeApp {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeApp {
    pub async fn start() -> FakeApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    seen.lock().unwrap().push(head);
                    let (code, body) = match path.as_str() {
                        "/metrics" => (
                            200,
                            "# TYPE app_requests_total counter\napp_requests_total 42\n",
                        ),
                        p if p.starts_with("/status/") => (p[8..].parse().unwrap_or(500), ""),
                        _ => (404, ""),
                    };
                    let response = format!(
                        "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        FakeApp {
            port,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Closes the listening socket: the app is gone.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
