//! The debug HTTP API (`--http-addr`): `/ready` and istiod's `/debug/*` endpoints. The
//! JSON shapes are what `ironmesh proxy-status` / `proxy-config` read.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ironmesh_xds::{type_url, ConnectionStatus};
use serde_json::{json, Value};

use super::State;

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/debug/syncz", get(syncz))
        .route("/debug/config_dump", get(config_dump))
        .route("/debug/registryz", get(registryz))
        .route("/debug/configz", get(configz))
        .route("/debug/push_status", get(push_status))
        .with_state(state)
}

async fn ready(AxState(s): AxState<Arc<State>>) -> Response {
    if *s.ready.borrow() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the config directory has not been read yet\n",
        )
            .into_response()
    }
}

/// istiod's version string for the ISTIOD/VERSION columns.
fn server_version() -> String {
    format!("ironmesh-{}", env!("CARGO_PKG_VERSION"))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "ironmesh-discovery".into())
}

/// One object per connected stream, in the shape `ironmesh proxy-status` reads.
async fn syncz(AxState(s): AxState<Arc<State>>) -> Json<Value> {
    let connected = s.generator.connected();
    let host = hostname();
    let out: Vec<Value> = s
        .ads
        .connections()
        .into_iter()
        .map(|c| syncz_entry(&c, connected.get(&c.node_id), &host))
        .collect();
    Json(Value::Array(out))
}

fn syncz_entry(
    c: &ConnectionStatus,
    conn: Option<&super::generator::Connected>,
    host: &str,
) -> Value {
    let mut types = serde_json::Map::new();
    for t in &c.types {
        let key = t.short_name.clone().unwrap_or_else(|| t.type_url.clone());
        types.insert(
            key,
            json!({
                "subscribed": !t.subscription.is_empty(),
                "sentVersion": t.sent_version,
                "sentNonce": t.sent_nonce,
                "ackedVersion": t.acked_version,
                "nack": t.last_nack.as_ref().map(|n| json!({"version": n.version, "message": n.message, "at": n.at})),
                "sentAt": t.sent_at,
                "ackedAt": t.acked_at,
                "sentResources": t.sent_resources,
                "generateError": t.generate_error,
            }),
        );
    }
    let (proxy, cluster, version) = match conn {
        Some(c) => (
            c.proxy.pod_id.clone(),
            c.proxy
                .cluster_id
                .clone()
                .unwrap_or_else(|| "Kubernetes".into()),
            c.proxy.istio_version.clone().unwrap_or_default(),
        ),
        None => (c.node_id.clone(), "Kubernetes".into(), String::new()),
    };
    json!({
        "id": c.node_id,
        "connectionId": c.id,
        "proxy": proxy,
        "clusterId": cluster,
        "istiodVersion": server_version(),
        "discoveryId": host,
        "version": version,
        "protocol": c.protocol,
        "connectedAt": c.connected_at,
        "pushVersion": c.push_version,
        "types": types,
    })
}

#[derive(serde::Deserialize)]
struct DumpQuery {
    #[serde(rename = "proxyID")]
    proxy_id: Option<String>,
}

/// Envoy's admin ConfigDump shape for one connected proxy, generated from the current
/// push context (what the proxy has been, or is about to be, sent).
async fn config_dump(AxState(s): AxState<Arc<State>>, Query(q): Query<DumpQuery>) -> Response {
    let connected = s.generator.connected();
    let Some(wanted) = q.proxy_id.filter(|p| !p.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "add ?proxyID=<node id or pod.namespace>; connected: {}\n",
                known(&connected)
            ),
        )
            .into_response();
    };
    let Some(conn) = connected
        .get(&wanted)
        .or_else(|| connected.values().find(|c| c.proxy.pod_id == wanted))
    else {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "proxy {wanted:?} is not connected; connected: {}\n",
                known(&connected)
            ),
        )
            .into_response();
    };
    let versions = sent_versions(&s.ads.connections(), &conn.node.id);
    let fallback = s.publisher.current().version.to_string();
    let version_of = |t: &str| versions.get(t).cloned().unwrap_or_else(|| fallback.clone());

    let render = |t: &str| -> Result<Vec<Value>, String> {
        let resources = s.generator.resources(&conn.proxy, t)?;
        resources
            .iter()
            .map(|r| ironmesh_xds::any_to_json(&r.resource).map_err(|e| e.to_string()))
            .collect()
    };
    let sections = (|| -> Result<Value, String> {
        let node = ironmesh_xds::message_to_json(&conn.node).map_err(|e| e.to_string())?;
        let lv = version_of(type_url::LISTENER);
        let cv = version_of(type_url::CLUSTER);
        let rv = version_of(type_url::ROUTE);
        let ev = version_of(type_url::ENDPOINT);
        let listeners: Vec<Value> = render(type_url::LISTENER)?
            .into_iter()
            .map(|l| json!({"name": l["name"], "activeState": {"versionInfo": lv, "listener": l}}))
            .collect();
        let clusters: Vec<Value> = render(type_url::CLUSTER)?
            .into_iter()
            .map(|c| json!({"versionInfo": cv, "cluster": c}))
            .collect();
        let routes: Vec<Value> = render(type_url::ROUTE)?
            .into_iter()
            .map(|r| json!({"versionInfo": rv, "routeConfig": r}))
            .collect();
        let endpoints: Vec<Value> = render(type_url::ENDPOINT)?
            .into_iter()
            .map(|e| json!({"versionInfo": ev, "endpointConfig": e}))
            .collect();
        Ok(json!({"configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {"node": node}},
            {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump", "versionInfo": cv, "dynamicActiveClusters": clusters},
            {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump", "versionInfo": lv, "dynamicListeners": listeners},
            {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump", "dynamicRouteConfigs": routes},
            {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump", "dynamicEndpointConfigs": endpoints},
        ]}))
    })();
    match sections {
        Ok(v) => Json(v).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("generating config for {wanted}: {e}\n"),
        )
            .into_response(),
    }
}

fn known(connected: &BTreeMap<String, super::generator::Connected>) -> String {
    if connected.is_empty() {
        return "none".into();
    }
    connected
        .values()
        .map(|c| format!("{} ({})", c.proxy.pod_id, c.node.id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The latest version sent to `node_id` per type (any of its streams).
fn sent_versions(conns: &[ConnectionStatus], node_id: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for c in conns.iter().filter(|c| c.node_id == node_id) {
        for t in &c.types {
            if let Some(v) = &t.sent_version {
                out.insert(t.type_url.clone(), v.clone());
            }
        }
    }
    out
}

/// Services, endpoints and workloads as the registry built them.
async fn registryz(AxState(s): AxState<Arc<State>>) -> Response {
    let snapshot = match s.store.lock() {
        Ok(store) => store.snapshot(),
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "store lock poisoned\n").into_response()
        }
    };
    Json(json!({
        "version": snapshot.version,
        "services": snapshot.services.services,
        "endpoints": snapshot.services.endpoints,
        "workloads": snapshot.services.workloads,
    }))
    .into_response()
}

/// Every accepted object (kind, namespace, name, source) and every rejected file with
/// its diagnostics: why a change did not take effect.
async fn configz(AxState(s): AxState<Arc<State>>) -> Response {
    let snapshot = match s.store.lock() {
        Ok(store) => store.snapshot(),
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "store lock poisoned\n").into_response()
        }
    };
    let objects: Vec<Value> = snapshot
        .objects
        .iter()
        .map(|o| {
            json!({
                "kind": o.kind(),
                "apiVersion": o.api_version,
                "namespace": o.namespace(),
                "name": o.name(),
                "file": o.source.file.as_ref(),
                "line": o.source.line,
            })
        })
        .collect();
    Json(json!({
        "version": snapshot.version,
        "objects": objects,
        "rejected": snapshot.rejected,
    }))
    .into_response()
}

async fn push_status(AxState(s): AxState<Arc<State>>) -> Json<Value> {
    let push = s.publisher.current();
    let conns = s.ads.connections();
    let synced = conns
        .iter()
        .filter(|c| {
            c.types
                .iter()
                .all(|t| t.synced() || t.subscription.is_empty())
        })
        .count();
    Json(json!({
        "pushVersion": push.version,
        "pushScope": format!("{:?}", push.scope),
        "snapshotVersion": s.generator.snapshot_version(),
        "connections": conns.len(),
        "synced": synced,
        "domain": s.domain,
        "rejectedFiles": s.metrics.rejected_files(),
    }))
}
