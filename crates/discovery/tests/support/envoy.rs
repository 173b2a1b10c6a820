//! Istio-style Envoy nodes (what pilot-agent puts in the bootstrap) and readers for what
//! a running Envoy accepted: its xDS counters and the names in its `/config_dump`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ironmesh_testkit::envoy::{AdsApi, Envoy, EnvoyConfig};
use serde_json::{json, Map, Value};

use super::discovery::{out_of_sync, Discovery};
use super::wait_until;

/// A proxy identity: node id, cluster and metadata as pilot-agent writes them.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub cluster: String,
    pub metadata: Value,
    /// `pod.namespace`, what proxy-status shows.
    pub pod_id: String,
}

/// `sidecar~IP~pod.ns~ns.svc.cluster.local` with the ISTIO_META_* metadata of an
/// injected pod (seed 000's bootstrap).
pub fn sidecar(ip: &str, pod: &str, ns: &str, app: &str, version: &str, sa: &str) -> Node {
    let workload = format!("{app}-{version}");
    Node {
        id: format!("sidecar~{ip}~{pod}.{ns}~{ns}.svc.cluster.local"),
        cluster: format!("{app}.{ns}"),
        metadata: json!({
            "NAMESPACE": ns,
            "NAME": pod,
            "LABELS": {"app": app, "version": version,
                "service.istio.io/canonical-name": app,
                "service.istio.io/canonical-revision": version},
            "INSTANCE_IPS": ip,
            "SERVICE_ACCOUNT": sa,
            "WORKLOAD_NAME": workload,
            "OWNER": format!("kubernetes://apis/apps/v1/namespaces/{ns}/deployments/{workload}"),
            "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local",
            "INTERCEPTION_MODE": "REDIRECT",
            "ISTIO_VERSION": "1.17.2",
        }),
        pod_id: format!("{pod}.{ns}"),
    }
}

/// `router~IP~pod.istio-system~istio-system.svc.cluster.local`, labelled
/// `istio=ingressgateway` like the default ingress gateway (seed 000's bootstrap).
pub fn router(ip: &str, pod: &str) -> Node {
    Node {
        id: format!("router~{ip}~{pod}.istio-system~istio-system.svc.cluster.local"),
        cluster: "istio-ingressgateway.istio-system".into(),
        metadata: json!({
            "NAMESPACE": "istio-system",
            "NAME": pod,
            "LABELS": {"app": "istio-ingressgateway", "istio": "ingressgateway",
                "service.istio.io/canonical-name": "istio-ingressgateway",
                "service.istio.io/canonical-revision": "latest"},
            "INSTANCE_IPS": ip,
            "SERVICE_ACCOUNT": "istio-ingressgateway-service-account",
            "WORKLOAD_NAME": "istio-ingressgateway",
            "OWNER": "kubernetes://apis/apps/v1/namespaces/istio-system/deployments/istio-ingressgateway",
            "CLUSTER_ID": "Kubernetes",
            "MESH_ID": "cluster.local",
            "ISTIO_VERSION": "1.17.2",
        }),
        pod_id: format!("{pod}.istio-system"),
    }
}

/// Starts Envoy (`--concurrency 1`) as `node`, talking `api` to discovery's xDS port.
pub fn start(node: &Node, xds_port: u16, api: AdsApi) -> Envoy {
    Envoy::start(&EnvoyConfig {
        node_id: node.id.clone(),
        cluster: node.cluster.clone(),
        metadata: node.metadata.clone(),
        xds_port,
        api,
    })
}

/// Counters and gauges whose name matches the RE2 `filter`.
pub fn stats(envoy: &Envoy, filter: &str) -> BTreeMap<String, u64> {
    envoy
        .admin_get(&format!("/stats?filter={filter}"))
        .lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(": ")?;
            Some((n.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// What Envoy's `/config_dump?include_eds` holds, by name.
#[derive(Debug, Default)]
pub struct Dump {
    /// Active (not warming) dynamic listeners.
    pub listeners: BTreeSet<String>,
    pub warming_listeners: BTreeSet<String>,
    pub clusters: BTreeSet<String>,
    /// Active clusters of type EDS.
    pub eds_clusters: BTreeSet<String>,
    pub routes: BTreeMap<String, Value>,
    /// Cluster name → endpoint `ip:port`s (every cluster, EDS or not).
    pub endpoints: BTreeMap<String, Vec<String>>,
}

pub fn dump(envoy: &Envoy) -> Dump {
    let raw = envoy.config_dump();
    let mut d = Dump::default();
    let empty = Vec::new();
    for section in raw["configs"].as_array().unwrap_or(&empty) {
        let ty = section["@type"].as_str().unwrap_or("");
        if ty.ends_with("ListenersConfigDump") {
            for l in section["dynamic_listeners"].as_array().unwrap_or(&empty) {
                let name = l["name"].as_str().unwrap_or("").to_string();
                if l.get("active_state").is_some() {
                    d.listeners.insert(name);
                } else if l.get("warming_state").is_some() {
                    d.warming_listeners.insert(name);
                }
            }
        } else if ty.ends_with("ClustersConfigDump") {
            for c in section["dynamic_active_clusters"]
                .as_array()
                .unwrap_or(&empty)
            {
                let name = c["cluster"]["name"].as_str().unwrap_or("").to_string();
                if c["cluster"]["type"] == "EDS" {
                    d.eds_clusters.insert(name.clone());
                }
                d.clusters.insert(name);
            }
        } else if ty.ends_with("RoutesConfigDump") {
            for r in section["dynamic_route_configs"]
                .as_array()
                .unwrap_or(&empty)
            {
                let rc = &r["route_config"];
                d.routes
                    .insert(rc["name"].as_str().unwrap_or("").to_string(), rc.clone());
            }
        } else if ty.ends_with("EndpointsConfigDump") {
            for e in section["dynamic_endpoint_configs"]
                .as_array()
                .unwrap_or(&empty)
            {
                let cla = &e["endpoint_config"];
                let mut addrs = Vec::new();
                for group in cla["endpoints"].as_array().unwrap_or(&empty) {
                    for lb in group["lb_endpoints"].as_array().unwrap_or(&empty) {
                        let sa = &lb["endpoint"]["address"]["socket_address"];
                        addrs.push(format!(
                            "{}:{}",
                            sa["address"].as_str().unwrap_or(""),
                            sa["port_value"]
                        ));
                    }
                }
                d.endpoints.insert(
                    cla["cluster_name"].as_str().unwrap_or("").to_string(),
                    addrs,
                );
            }
        }
    }
    d
}

/// Every `*.update_rejected` counter of Envoy that is not zero.
pub fn rejections(envoy: &Envoy) -> BTreeMap<String, u64> {
    stats(envoy, "update_rejected$")
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Waits until Envoy has taken a first LDS and CDS update, nothing is warming, and
/// discovery reports every type it subscribed to as acknowledged at the version sent.
/// Panics with both sides' view when that does not happen within `timeout`.
pub fn wait_converged(envoy: &Envoy, discovery: &Discovery, node: &Node, timeout: Duration) {
    let ok = wait_until(timeout, || converged(envoy, discovery, node));
    if !ok {
        panic!(
            "{} did not converge within {timeout:?}\nsyncz: {:#}\nenvoy rejections: {:?}\n\
             envoy stats: {:#?}\nenvoy log:\n{}\ndiscovery log:\n{}",
            node.id,
            discovery
                .syncz_of(&node.id)
                .unwrap_or_else(|| json!("not connected")),
            rejections(envoy),
            stats(envoy, "(update_|warming|total_listeners)"),
            tail(&envoy.logs(), 60),
            tail(&discovery.logs(), 60),
        );
    }
}

fn converged(envoy: &Envoy, discovery: &Discovery, node: &Node) -> bool {
    let s = stats(
        envoy,
        "^(listener_manager.lds.update_success|cluster_manager.cds.update_success|cluster_manager.warming_clusters|listener_manager.total_listeners_warming)$",
    );
    let get = |k: &str| s.get(k).copied().unwrap_or(0);
    if get("listener_manager.lds.update_success") == 0
        || get("cluster_manager.cds.update_success") == 0
        || get("cluster_manager.warming_clusters") != 0
        || get("listener_manager.total_listeners_warming") != 0
    {
        return false;
    }
    match discovery.syncz_of(&node.id) {
        Some(entry) => {
            let subscribed = entry["types"]
                .as_object()
                .map(|t| t.values().filter(|v| v["subscribed"] == true).count())
                .unwrap_or(0);
            subscribed >= 2 && out_of_sync(&entry).is_empty()
        }
        None => false,
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The syncz `types` object of `node`'s connection.
pub fn syncz_types(discovery: &Discovery, node: &Node) -> Map<String, Value> {
    discovery
        .syncz_of(&node.id)
        .and_then(|e| e["types"].as_object().cloned())
        .unwrap_or_else(|| panic!("{} is not in /debug/syncz", node.id))
}
