//! The runtime's config directory (`/run/ironmesh/config`), which discovery watches: one
//! JSON file per object, keyed by kind, namespace and name, so that `apply` replaces and
//! `delete` removes exactly one object.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use ironmesh_config::load::{manifest_files, read_text};
use ironmesh_config::object::kind_info;
use ironmesh_config::{load_paths, LoadOptions};
use serde_json::{json, Value};

use super::state::{config_dir, mesh_config_file, State};

/// Validates `paths` with Istio's rules; errors stop here with the usual diagnostics.
pub fn validate(paths: &[PathBuf]) -> anyhow::Result<usize> {
    let loaded = load_paths(paths, &LoadOptions::default())?;
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == ironmesh_config::Severity::Error)
        .map(|d| d.to_string())
        .collect();
    if !errors.is_empty() {
        bail!(
            "the manifests are invalid ({} error{}):\n  {}\nfix them (`ironmesh validate -f …` shows the same) and try again",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            errors.join("\n  ")
        );
    }
    Ok(loaded.objects.len())
}

/// Every document of `paths` as JSON, with `metadata.namespace` filled in for namespaced
/// kinds (kubectl's default namespace), in file order.
pub fn read_documents(paths: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
    let mut docs = Vec::new();
    for path in paths {
        for file in manifest_files(path)? {
            let text = read_text(&file)?;
            for doc in ironmesh_config::yaml::parse_stream(&text).documents {
                let mut value = doc.value;
                if value.is_null() {
                    continue;
                }
                let Some(kind) = value.get("kind").and_then(Value::as_str) else {
                    // A bare MeshConfig document: handed to discovery as its mesh file.
                    docs.push(value);
                    continue;
                };
                let namespaced = kind_info(kind).is_none_or(|k| k.namespaced);
                if namespaced {
                    let meta = value
                        .as_object_mut()
                        .context("a document is not a mapping")?
                        .entry("metadata")
                        .or_insert_with(|| json!({}));
                    if meta.get("namespace").and_then(Value::as_str).is_none() {
                        meta["namespace"] = json!("default");
                    }
                }
                docs.push(value);
            }
        }
    }
    Ok(docs)
}

pub fn kind_of(v: &Value) -> &str {
    v.get("kind").and_then(Value::as_str).unwrap_or("")
}
pub fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}
pub fn namespace_of(v: &Value) -> &str {
    v.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The file an object lives in inside the config dir.
pub fn object_path(v: &Value) -> PathBuf {
    let kind = kind_of(v).to_ascii_lowercase();
    let ns = namespace_of(v);
    let name = name_of(v);
    let file = if ns.is_empty() {
        format!("{kind}.{name}.json")
    } else {
        format!("{kind}.{ns}.{name}.json")
    };
    config_dir().join(file)
}

/// Writes objects into the config dir, giving Services without a clusterIP a VIP from
/// 240.240.0.0/16 (as kube-apiserver would from its service range). Bare MeshConfig
/// documents are merged into the mesh file. Returns `kind ns/name` per object.
pub fn write_objects(docs: &[Value], state: &mut State) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(config_dir())?;
    let mut written = Vec::new();
    for doc in docs {
        if doc.get("kind").is_none() {
            let text = serde_json::to_string_pretty(doc)?;
            std::fs::write(mesh_config_file(), text)?;
            written.push("MeshConfig".to_string());
            continue;
        }
        let mut doc = doc.clone();
        if kind_of(&doc) == "Service" {
            assign_vip(&mut doc, state);
        }
        let path = object_path(&doc);
        std::fs::write(&path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(describe(&doc));
    }
    Ok(written)
}

/// Removes objects from the config dir; returns what was removed and what was not there.
pub fn delete_objects(docs: &[Value]) -> (Vec<String>, Vec<String>) {
    let (mut gone, mut missing) = (Vec::new(), Vec::new());
    for doc in docs.iter().filter(|d| d.get("kind").is_some()) {
        match std::fs::remove_file(object_path(doc)) {
            Ok(()) => gone.push(describe(doc)),
            Err(_) => missing.push(describe(doc)),
        }
    }
    (gone, missing)
}

pub fn describe(doc: &Value) -> String {
    let ns = namespace_of(doc);
    if ns.is_empty() {
        format!("{} {}", kind_of(doc), name_of(doc))
    } else {
        format!("{} {}/{}", kind_of(doc), ns, name_of(doc))
    }
}

fn assign_vip(svc: &mut Value, state: &mut State) {
    let key = format!("{}/{}", namespace_of(svc), name_of(svc));
    let given = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let vip = match given {
        Some(ip) => ip,
        None => match state.vips.get(&key) {
            Some(ip) => ip.clone(),
            None => {
                let used: std::collections::BTreeSet<&String> = state.vips.values().collect();
                let ip = (10u32..65000)
                    .map(|n| format!("240.240.{}.{}", n >> 8, n & 0xff))
                    .find(|ip| !used.contains(ip))
                    .unwrap_or_else(|| "240.240.255.254".into());
                ip
            }
        },
    };
    if vip != "None" {
        state.vips.insert(key, vip.clone());
    }
    if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".into(), json!(vip));
    }
}

/// The objects `istioctl install --set profile=…` would add: the istio-system
/// namespace, the ingress gateway (and the egress gateway for `demo`) as Deployments
/// of the proxy image with `proxy router`, their Services and service accounts.
pub fn system_objects(profile: &str) -> Vec<Value> {
    let mut out = vec![json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "istio-system"}
    })];
    if profile == "minimal" {
        return out;
    }
    out.extend(gateway_objects(
        "istio-ingressgateway",
        "ingressgateway",
        json!([
            {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
            {"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
        ]),
    ));
    if profile == "demo" {
        out.extend(gateway_objects(
            "istio-egressgateway",
            "egressgateway",
            json!([
                {"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
            ]),
        ));
    }
    out
}

fn gateway_objects(name: &str, istio_label: &str, ports: Value) -> Vec<Value> {
    let labels = json!({"app": name, "istio": istio_label});
    let sa = format!("{name}-service-account");
    let container_ports: Vec<Value> = ports
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| json!({"containerPort": p["targetPort"], "protocol": "TCP"}))
        .collect();
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": sa, "namespace": "istio-system", "labels": labels}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": "istio-system", "labels": labels},
               "spec": {"type": "LoadBalancer", "selector": labels, "ports": ports}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "istio-system", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
          "template": {
            "metadata": {"labels": labels,
                         "annotations": {"sidecar.istio.io/inject": "false"}},
            "spec": {"serviceAccountName": sa, "containers": [{
              "name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.19.3",
              "args": ["proxy", "router", "--domain", "istio-system.svc.cluster.local"],
              "ports": container_ports,
              "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}}
            }]}}}}),
    ]
}

/// istioctl's `demo` profile turns on access logs to stdout; the seeds use JSON.
pub fn profile_mesh_config(profile: &str) -> Option<&'static str> {
    (profile == "demo").then_some("accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n")
}

pub fn ensure_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if !path.exists() {
        std::fs::write(path, text)?;
    }
    Ok(())
}
