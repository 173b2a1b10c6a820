//! The processes of one pod: istio-init (iptables) and istio-proxy for injected pods,
//! then each container, with the environment Kubernetes and Istio's injector give them.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, EnvVar};

use super::images::{is_known, program_for, Program};
use super::pods::{container_ports, PodPlan};
use super::procs::{ProcKind, ProcSpec};
use super::state::*;

/// The istio-iptables arguments of Istio's injected init container, plus DNS capture
/// (Istio's ISTIO_META_DNS_CAPTURE) so that the sidecar's DNS proxy answers.
pub fn iptables_args() -> Vec<String> {
    [
        "iptables",
        "-p",
        "15001",
        "-z",
        "15006",
        "-u",
        "1337",
        "-g",
        "1337",
        "-m",
        "REDIRECT",
        "-i",
        "*",
        "-x",
        "",
        "-b",
        "*",
        "-d",
        "15090,15021,15020",
        "--redirect-dns",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn proc_specs(p: &PodPlan, ip: &str, bin_dir: &Path) -> (Vec<ProcSpec>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut out = Vec::new();
    let proxy = bin_dir.join("ironmesh-proxy");
    if p.injected {
        out.push(ProcSpec {
            container: "istio-init".into(),
            program: proxy.clone(),
            args: iptables_args(),
            env: Vec::new(),
            uid: None,
            ports: Vec::new(),
            kind: ProcKind::Init,
        });
        let args = vec![
            "proxy".to_string(),
            "sidecar".into(),
            "--domain".into(),
            format!("{}.svc.cluster.local", p.namespace),
            "--discovery-address".into(),
            format!("{BRIDGE_IP}:{XDS_PORT}"),
        ];
        out.push(ProcSpec {
            container: "istio-proxy".into(),
            program: proxy.clone(),
            args,
            env: proxy_env(p, ip),
            uid: Some(PROXY_UID),
            ports: vec![15021],
            kind: ProcKind::Sidecar,
        });
    }
    for c in &p.spec.containers {
        if !is_known(c) {
            warnings.push(format!(
                "{}/{} container {}: image {} is not a known sample and has no command; it idles (give it a `command` to run something)",
                p.namespace,
                p.name,
                c.name,
                c.image.as_deref().unwrap_or("")
            ));
        }
        let mut env = container_env(p, ip, c);
        let (program, args, uid, kind) = match program_for(c) {
            Program::Proxy(mut args) => {
                env.extend(proxy_env(p, ip));
                if !args.iter().any(|a| a.starts_with("--discovery-address")) {
                    args.push("--discovery-address".into());
                    args.push(format!("{BRIDGE_IP}:{XDS_PORT}"));
                }
                (proxy.clone(), args, PROXY_UID, ProcKind::Sidecar)
            }
            Program::Sample(args) => {
                let role_port = args
                    .first()
                    .and_then(|r| r.parse::<ironmesh_sample::Role>().ok())
                    .and_then(|r| r.default_port());
                let port = container_ports(c)
                    .first()
                    .copied()
                    .or(role_port)
                    .unwrap_or(8080);
                env.push(("PORT".into(), port.to_string()));
                let mut a = args;
                a.extend(["--port".to_string(), port.to_string()]);
                (bin_dir.join("ironmesh-sample"), a, APP_UID, ProcKind::App)
            }
            Program::Command(mut line) => {
                let first = line.remove(0);
                (resolve(&first), line, APP_UID, ProcKind::App)
            }
        };
        out.push(ProcSpec {
            container: c.name.clone(),
            program,
            args,
            env,
            uid: Some(uid),
            ports: container_ports(c),
            kind,
        });
    }
    (out, warnings)
}

/// An absolute path that does not exist here (an image's `/usr/bin/x`) falls back to
/// the command of the same name on PATH.
fn resolve(cmd: &str) -> std::path::PathBuf {
    let path = Path::new(cmd);
    if path.is_absolute() && path.exists() {
        return path.to_path_buf();
    }
    let base = path.file_name().map(|f| f.to_string_lossy().to_string());
    let base = base.unwrap_or_else(|| cmd.to_string());
    for dir in super::procs::BASE_PATH.split(':') {
        let candidate = Path::new(dir).join(&base);
        if candidate.exists() {
            return candidate;
        }
    }
    path.to_path_buf()
}

fn field_ref(p: &PodPlan, ip: &str, path: &str) -> String {
    match path {
        "metadata.name" => p.name.clone(),
        "metadata.namespace" => p.namespace.clone(),
        "status.podIP" | "status.podIPs" => ip.to_string(),
        "status.hostIP" => BRIDGE_IP.to_string(),
        "spec.serviceAccountName" => p.service_account(),
        "spec.nodeName" => "ironmesh-node".into(),
        other => {
            if let Some(key) = other
                .strip_prefix("metadata.labels['")
                .and_then(|k| k.strip_suffix("']"))
            {
                return p.labels.get(key).cloned().unwrap_or_default();
            }
            String::new()
        }
    }
}

fn container_env(p: &PodPlan, ip: &str, c: &Container) -> Vec<(String, String)> {
    let mut env = vec![
        ("HOSTNAME".to_string(), p.name.clone()),
        ("POD_NAME".into(), p.name.clone()),
        ("POD_NAMESPACE".into(), p.namespace.clone()),
        ("INSTANCE_IP".into(), ip.to_string()),
    ];
    for EnvVar {
        name,
        value,
        value_from,
    } in c.env.iter().flatten()
    {
        let v = match (value, value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => from
                .field_ref
                .as_ref()
                .map(|f| field_ref(p, ip, &f.field_path))
                .unwrap_or_default(),
            _ => String::new(),
        };
        env.push((name.clone(), v));
    }
    env
}

/// The sidecar's environment as Istio's injector writes it (seed 002's pod spec).
fn proxy_env(p: &PodPlan, ip: &str) -> Vec<(String, String)> {
    let labels: BTreeMap<&String, &String> = p.labels.iter().collect();
    let ports: Vec<serde_json::Value> = p
        .spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .map(|port| serde_json::json!({"containerPort": port.container_port, "protocol": port.protocol.clone().unwrap_or_else(|| "TCP".into())}))
        .collect();
    let apps: Vec<&str> = p.spec.containers.iter().map(|c| c.name.as_str()).collect();
    let workload = p.workload_name();
    let owner = match p.owner.split_once('/') {
        Some((kind, name)) => format!(
            "kubernetes://apis/apps/v1/namespaces/{}/{}s/{}",
            p.namespace,
            kind.to_ascii_lowercase(),
            name
        ),
        None => format!(
            "kubernetes://apis/v1/namespaces/{}/pods/{}",
            p.namespace, p.name
        ),
    };
    vec![
        ("POD_NAME".into(), p.name.clone()),
        ("POD_NAMESPACE".into(), p.namespace.clone()),
        ("INSTANCE_IP".into(), ip.to_string()),
        ("SERVICE_ACCOUNT".into(), p.service_account()),
        ("HOST_IP".into(), BRIDGE_IP.into()),
        ("PILOT_CERT_PROVIDER".into(), "istiod".into()),
        ("CA_ADDR".into(), format!("{BRIDGE_IP}:15012")),
        (
            "PROXY_CONFIG".into(),
            format!(r#"{{"discoveryAddress":"{BRIDGE_IP}:{XDS_PORT}"}}"#),
        ),
        (
            "DISCOVERY_ADDRESS".into(),
            format!("{BRIDGE_IP}:{XDS_PORT}"),
        ),
        (
            "ISTIO_META_POD_PORTS".into(),
            serde_json::to_string(&ports).unwrap_or_default(),
        ),
        ("ISTIO_META_APP_CONTAINERS".into(), apps.join(",")),
        ("ISTIO_META_CLUSTER_ID".into(), "Kubernetes".into()),
        ("ISTIO_META_NODE_NAME".into(), "ironmesh-node".into()),
        ("ISTIO_META_INTERCEPTION_MODE".into(), "REDIRECT".into()),
        ("ISTIO_META_WORKLOAD_NAME".into(), workload),
        ("ISTIO_META_OWNER".into(), owner),
        ("ISTIO_META_MESH_ID".into(), "cluster.local".into()),
        ("ISTIO_META_DNS_CAPTURE".into(), "true".into()),
        (
            "ISTIO_METAJSON_LABELS".into(),
            serde_json::to_string(&labels).unwrap_or_default(),
        ),
        ("TRUST_DOMAIN".into(), "cluster.local".into()),
    ]
}
