//! The scenarios the interop tests run: the seeds' Bookinfo (with Pods on loopback IPs)
//! and seed 002's canary published on the ingress gateway with real backends.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

use ironmesh_config::{load_str, LoadOptions};

use super::envoy::{self as envoy_support, Node};
use super::http::Backend;
use super::{free_ports, repo_root, Discovery, Workspace};

/// `crates/discovery/testdata/interop/<name>` with every `${KEY}` replaced.
pub fn template(name: &str, vars: &[(&str, String)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/interop")
        .join(name);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (k, v) in vars {
        text = text.replace(&format!("${{{k}}}"), v);
    }
    assert!(
        !text.contains("${"),
        "{name}: a placeholder is left unset:\n{text}"
    );
    text
}

/// `examples/seeds/<name>`.
pub fn seed(name: &str) -> String {
    let path = repo_root().join("examples/seeds").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The YAML documents of `text` (split on `---` lines).
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(String::new());
        } else {
            let last = docs.last_mut().expect("one document");
            last.push_str(line);
            last.push('\n');
        }
    }
    docs
}

/// `kind/namespace/name` of every object a document defines.
fn keys(doc: &str) -> Vec<String> {
    load_str("doc.yaml", doc, &LoadOptions::default())
        .objects
        .iter()
        .map(|o| format!("{}/{}/{}", o.kind(), o.namespace(), o.name()))
        .collect()
}

/// The documents of `text` whose objects `others` does not define already (the seeds
/// repeat some objects, e.g. bookinfo-gateway in 001 and 004, and a config directory
/// must hold each object once).
pub fn without_duplicates(text: &str, others: &[&str]) -> String {
    let seen: BTreeSet<String> = others
        .iter()
        .flat_map(|t| documents(t))
        .flat_map(|d| keys(&d))
        .collect();
    let kept: Vec<String> = documents(text)
        .into_iter()
        .filter(|d| {
            let k = keys(d);
            !k.is_empty() && k.iter().all(|k| !seen.contains(k))
        })
        .collect();
    kept.join("---\n")
}

/// Sidecar listener ports (`proxyListenPort`, `proxyInboundListenPort`) of our own, so
/// that sidecar Envoys of parallel tests (and anything else on the machine) never
/// fight over 15001/15006.
pub fn mesh_config(outbound: u16, inbound: u16) -> String {
    format!("proxyListenPort: {outbound}\nproxyInboundListenPort: {inbound}\n")
}

/// Seeds 001 + 004 (Bookinfo, its gateway, the reviews 50/50 split and subsets) with
/// Pods on 127.0.0.11–16, the ingress gateway Pod on 127.0.0.30, and discovery running.
pub struct Bookinfo {
    pub ws: Workspace,
    pub discovery: Discovery,
    /// The gateway Service's target port for port 80: the gateway listener's port.
    pub gateway_port: u16,
}

impl Bookinfo {
    pub fn start() -> Bookinfo {
        let ports = free_ports(3);
        let (gateway_port, outbound, inbound) = (ports[0], ports[1], ports[2]);
        let ws = Workspace::new();
        let bookinfo = seed("001-bookinfo-gateway.yaml");
        ws.write("001-bookinfo-gateway.yaml", &bookinfo);
        ws.write(
            "004-reviews.yaml",
            &without_duplicates(&seed("004-bookinfo-reviews-50-v3.yaml"), &[&bookinfo]),
        );
        ws.write(
            "workloads.yaml",
            &template(
                "bookinfo-workloads.yaml",
                &[("GATEWAY_HTTP_PORT", gateway_port.to_string())],
            ),
        );
        ws.write_mesh(&mesh_config(outbound, inbound));
        let discovery = ws.start_discovery();
        assert_config_accepted(&discovery);
        Bookinfo {
            ws,
            discovery,
            gateway_port,
        }
    }

    /// productpage's sidecar (127.0.0.13).
    pub fn sidecar() -> Node {
        envoy_support::sidecar(
            "127.0.0.13",
            "productpage-v1-6b746f74dc-9stvs",
            "default",
            "productpage",
            "v1",
            "bookinfo-productpage",
        )
    }

    /// The ingress gateway (127.0.0.30).
    pub fn router() -> Node {
        envoy_support::router("127.0.0.30", "istio-ingressgateway-cb9c6b49d-2bm49")
    }
}

/// Fails the test when discovery rejected any file of the config directory.
pub fn assert_config_accepted(discovery: &Discovery) {
    let configz = discovery.get_json("/debug/configz");
    let rejected = configz["rejected"].as_array().cloned().unwrap_or_default();
    assert!(
        rejected.is_empty(),
        "discovery rejected test config: {:#}",
        serde_json::Value::Array(rejected)
    );
}

/// Seed 002's canary on the ingress gateway: two real backends (v1 on 127.0.0.21, v2 on
/// 127.0.0.22), the gateway listener on `http_port` (Host `*`, header canary and the
/// `split.example.com` 50/50 split) and on `specific_port` (only `only.example.com`).
pub struct Canary {
    pub ws: Workspace,
    pub discovery: Discovery,
    pub http_port: u16,
    pub specific_port: u16,
    /// Held so the upstream servers live as long as the scenario.
    _backends: Vec<Backend>,
}

impl Canary {
    pub fn start() -> Canary {
        let backends = start_backends();
        let backend_port = backends[0].addr().port();
        let ports = free_ports(2);
        let ws = Workspace::new();
        ws.write(
            "canary-gateway.yaml",
            &template(
                "canary-gateway.yaml",
                &[
                    ("BACKEND_PORT", backend_port.to_string()),
                    ("GATEWAY_HTTP_PORT", ports[0].to_string()),
                    ("GATEWAY_SPECIFIC_PORT", ports[1].to_string()),
                ],
            ),
        );
        write_canary_vs(&ws, "v1");
        let discovery = ws.start_discovery();
        let c = Canary {
            discovery,
            ws,
            http_port: ports[0],
            specific_port: ports[1],
            _backends: backends,
        };
        assert_config_accepted(&c.discovery);
        c
    }

    /// Rewrites the VirtualService `canary` with `subset` as the default route.
    pub fn set_default_subset(&self, subset: &str) {
        write_canary_vs(&self.ws, subset);
    }

    pub fn router() -> Node {
        Bookinfo::router()
    }
}

fn write_canary_vs(ws: &Workspace, subset: &str) {
    ws.write(
        "canary-virtualservice.yaml",
        &template(
            "canary-virtualservice.yaml",
            &[("DEFAULT_SUBSET", subset.to_string())],
        ),
    );
}

/// v1 on 127.0.0.21 and v2 on 127.0.0.22, on one port free on both.
fn start_backends() -> Vec<Backend> {
    for _ in 0..20 {
        let v1 =
            Backend::start(SocketAddr::from(([127, 0, 0, 21], 0)), "v1").expect("bind 127.0.0.21");
        let port = v1.addr().port();
        if let Ok(v2) = Backend::start(SocketAddr::from(([127, 0, 0, 22], port)), "v2") {
            return vec![v1, v2];
        }
    }
    panic!("no port free on both 127.0.0.21 and 127.0.0.22 after 20 tries");
}
