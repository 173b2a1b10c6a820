//! `ironmesh get …` and the status table: kubectl-like columns from the state file
//! (pods) and the config dir (Services and Istio config).

use std::process::ExitCode;

use ironmesh_config::{Object, Resource};

use super::pods::load_config_objects;
use super::state::*;

#[derive(clap::Args)]
pub struct GetArgs {
    /// pods, services, gateways, virtualservices, destinationrules or all (short names
    /// po, svc, gw, vs, dr work too).
    what: String,
    /// Only this namespace (default: every namespace).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Every namespace (the default; accepted for kubectl muscle memory).
    #[arg(short = 'A', long = "all-namespaces")]
    all_namespaces: bool,
}

pub fn run(args: GetArgs) -> ExitCode {
    let _ = args.all_namespaces;
    let Some(state) = super::cmds::running_state() else {
        return ExitCode::FAILURE;
    };
    let ns = args.namespace.as_deref();
    let objects = load_config_objects().unwrap_or_default();
    match args.what.as_str() {
        "pods" | "pod" | "po" => print_pods(&state, ns, false),
        "services" | "service" | "svc" => print_services(&objects, ns),
        "gateways" | "gateway" | "gw" => print_istio(&objects, ns, "Gateway"),
        "virtualservices" | "virtualservice" | "vs" => print_istio(&objects, ns, "VirtualService"),
        "destinationrules" | "destinationrule" | "dr" => {
            print_istio(&objects, ns, "DestinationRule")
        }
        "all" => {
            print_pods(&state, ns, false);
            println!();
            print_services(&objects, ns);
            for kind in ["Gateway", "VirtualService", "DestinationRule"] {
                if objects.iter().any(|o| o.kind() == kind) {
                    println!();
                    print_istio(&objects, ns, kind);
                }
            }
        }
        other => {
            eprintln!("error: unknown resource type {other:?}; use pods, services, gateways, virtualservices, destinationrules or all");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

pub fn age(since: u64) -> String {
    let s = now_secs().saturating_sub(since);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// Pods as `kubectl get pods -o wide` would show them, plus whether a sidecar runs.
pub fn print_pods(state: &State, ns: Option<&str>, status_table: bool) {
    let mut rows = vec![vec![
        "NAMESPACE".to_string(),
        "NAME".into(),
        "READY".into(),
        "STATUS".into(),
        "RESTARTS".into(),
        "IP".into(),
        "SIDECAR".into(),
        "AGE".into(),
    ]];
    let mut pods: Vec<&PodState> = state
        .pods
        .iter()
        .filter(|p| ns.is_none_or(|n| n == p.namespace))
        .collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    for p in pods {
        let ready = p.containers.iter().filter(|c| c.ready).count();
        let restarts: u32 = p.containers.iter().map(|c| c.restarts).sum();
        let status = p
            .containers
            .iter()
            .find(|c| c.status != "Running")
            .map(|c| c.status.clone())
            .unwrap_or_else(|| p.phase.clone());
        rows.push(vec![
            p.namespace.clone(),
            p.name.clone(),
            format!("{ready}/{}", p.containers.len()),
            status,
            restarts.to_string(),
            p.ip.clone(),
            if p.injected {
                "istio-proxy".into()
            } else if p.gateway {
                "gateway".into()
            } else {
                "-".into()
            },
            age(p.created_at),
        ]);
    }
    if rows.len() == 1 && !status_table {
        println!("No pods found.");
        return;
    }
    print_table(&rows);
}

fn print_services(objects: &[Object], ns: Option<&str>) {
    let mut rows = vec![vec![
        "NAMESPACE".to_string(),
        "NAME".into(),
        "TYPE".into(),
        "CLUSTER-IP".into(),
        "PORT(S)".into(),
    ]];
    for o in objects {
        let Resource::Service(svc) = &o.resource else {
            continue;
        };
        if ns.is_some_and(|n| n != o.namespace()) {
            continue;
        }
        let spec = svc.spec.clone().unwrap_or_default();
        let ports: Vec<String> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP")))
            .collect();
        rows.push(vec![
            o.namespace().to_string(),
            o.name().to_string(),
            spec.type_.unwrap_or_else(|| "ClusterIP".into()),
            spec.cluster_ip.unwrap_or_else(|| "<none>".into()),
            ports.join(","),
        ]);
    }
    print_table(&rows);
}

fn print_istio(objects: &[Object], ns: Option<&str>, kind: &str) {
    let mut header = vec!["NAMESPACE".to_string(), "NAME".into()];
    match kind {
        "VirtualService" => header.extend(["GATEWAYS".to_string(), "HOSTS".into()]),
        "DestinationRule" => header.push("HOST".into()),
        _ => {}
    }
    let mut rows = vec![header];
    for o in objects.iter().filter(|o| o.kind() == kind) {
        if ns.is_some_and(|n| n != o.namespace()) {
            continue;
        }
        let mut row = vec![o.namespace().to_string(), o.name().to_string()];
        match &o.resource {
            Resource::VirtualService(vs) => {
                row.push(format!("[{}]", vs.gateways.join(",")));
                row.push(format!("[{}]", vs.hosts.join(",")));
            }
            Resource::DestinationRule(dr) => row.push(dr.host.clone().unwrap_or_default()),
            _ => {}
        }
        rows.push(row);
    }
    if rows.len() == 1 {
        println!("No {kind} objects found.");
        return;
    }
    print_table(&rows);
}

pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}
