//! Shared by the control-plane benchmark examples (`bench_generate`, `bench_push`): the
//! synthetic mesh, small statistics, and what a result line looks like.
//!
//! The synthetic mesh: `services` Kubernetes Services (one HTTP port, 80 → 8080) spread
//! over namespaces of 100, each selecting 3 ready Pods. Pod IPs come from 10.244.0.0/16
//! and service VIPs from 240.240.0.0/16. They are DATA only: nothing in the benchmark
//! ever connects to them (no traffic is sent; the push benchmark runs in a private
//! network namespace where they are not even routable).

// Each example binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Pods behind every service.
pub const PODS_PER_SERVICE: usize = 3;
/// Services per namespace.
pub const SERVICES_PER_NAMESPACE: usize = 100;
/// The sidecar the generation benchmark generates for (a client in `default`).
pub const CLIENT_NODE_ID: &str = "sidecar~10.244.0.5~client.default~default.svc.cluster.local";

pub fn namespace_of(service: usize) -> String {
    format!("bench-{:03}", service / SERVICES_PER_NAMESPACE)
}

pub fn service_name(service: usize) -> String {
    format!("svc-{service}")
}

pub fn hostname(service: usize) -> String {
    format!(
        "{}.{}.svc.cluster.local",
        service_name(service),
        namespace_of(service)
    )
}

/// The outbound EDS cluster of a service's only port.
pub fn cluster_name(service: usize) -> String {
    format!("outbound|80||{}", hostname(service))
}

/// Pod `pod` of `service`: 10.244.0.10 upwards, three per service (30 010 addresses for
/// 10 000 services, all below 10.244.118.0).
pub fn pod_ip(service: usize, pod: usize) -> Ipv4Addr {
    let n = u32::try_from(service * PODS_PER_SERVICE + pod + 10).expect("small index");
    assert!(
        n < 250 * 256,
        "the synthetic mesh outgrew 10.244.0.0-10.244.249.255"
    );
    Ipv4Addr::new(10, 244, (n >> 8) as u8, (n & 0xff) as u8)
}

/// The address a benchmark change moves a pod to: 10.244.250.0/24 and up, which no
/// generated pod uses.
pub fn changed_ip(change: usize) -> Ipv4Addr {
    let n = u32::try_from(change + 1).expect("small index");
    assert!(n < 6 * 256, "at most 1 535 changes per mesh");
    Ipv4Addr::new(10, 244, 250 + (n >> 8) as u8, (n & 0xff) as u8)
}

fn vip(service: usize) -> Ipv4Addr {
    let n = u32::try_from(service + 1).expect("small index");
    assert!(n < 65_000, "the synthetic mesh outgrew 240.240.0.0/16");
    Ipv4Addr::new(240, 240, (n >> 8) as u8, (n & 0xff) as u8)
}

/// Most changes one mesh directory takes: the pods they move get files of their own.
pub const MAX_CHANGES: usize = 64;

/// The service whose pod 0 the `seq`-th change moves (spread over the mesh).
pub fn changed_service(seq: usize, services: usize) -> usize {
    assert!(
        seq < MAX_CHANGES,
        "at most {MAX_CHANGES} changes per mesh directory"
    );
    (seq * 7919 + 13) % services
}

fn movable(services: usize) -> BTreeSet<usize> {
    (0..MAX_CHANGES.min(services))
        .map(|seq| changed_service(seq, services))
        .collect()
}

/// The file of a pod the benchmark moves.
pub fn pod_file(dir: &Path, service: usize) -> PathBuf {
    dir.join(namespace_of(service))
        .join("pods")
        .join(format!("{}-0.yaml", service_name(service)))
}

pub fn pod_yaml(service: usize, pod: usize, ip: Ipv4Addr) -> String {
    let name = service_name(service);
    let ns = namespace_of(service);
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}-{pod}\n  namespace: {ns}\n  \
         labels: {{app: {name}, version: v1}}\nspec:\n  containers:\n  - name: app\n    \
         image: bench\n    ports: [{{name: http, containerPort: 8080}}]\nstatus:\n  \
         phase: Running\n  podIP: {ip}\n  conditions: [{{type: Ready, status: \"True\"}}]\n"
    )
}

fn service_yaml(service: usize) -> String {
    let name = service_name(service);
    let ns = namespace_of(service);
    let vip = vip(service);
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  clusterIP: {vip}\n  selector: {{app: {name}}}\n  \
         ports: [{{name: http, port: 80, targetPort: 8080}}]\n"
    )
}

fn namespace_yaml(ns: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n")
}

/// The synthetic mesh as `(relative path, text)`, laid out as the benchmark writes it:
/// `namespaces.yaml`; per namespace `<ns>/services.yaml` and `<ns>/pods.yaml`; and the
/// pods that changes move, one file each (`<ns>/pods/<svc>-0.yaml`), so a change
/// rewrites one pod as a kubelet would. Batching the rest keeps the file count low: the
/// store's per-file duplicate check costs O(files × objects) (docs/benchmarks.md).
pub fn manifests(services: usize) -> Vec<(PathBuf, String)> {
    let movable = movable(services);
    let mut out = Vec::new();
    let mut namespaces = namespace_yaml("default");
    let mut first = 0;
    while first < services {
        let last = (first + SERVICES_PER_NAMESPACE).min(services);
        let ns = namespace_of(first);
        let _ = write!(namespaces, "---\n{}", namespace_yaml(&ns));
        let mut svc_text = String::new();
        let mut pod_text = String::new();
        for s in first..last {
            let _ = write!(svc_text, "---\n{}", service_yaml(s));
            for p in 0..PODS_PER_SERVICE {
                let yaml = pod_yaml(s, p, pod_ip(s, p));
                if p == 0 && movable.contains(&s) {
                    out.push((pod_file(Path::new(""), s), yaml));
                } else {
                    let _ = write!(pod_text, "---\n{yaml}");
                }
            }
        }
        out.push((Path::new(&ns).join("services.yaml"), svc_text));
        out.push((Path::new(&ns).join("pods.yaml"), pod_text));
        first = last;
    }
    out.push((PathBuf::from("namespaces.yaml"), namespaces));
    out
}

/// The same mesh with every object in a file of its own, as `(path, text)`.
pub fn manifests_one_per_object(services: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in 0..services {
        let ns = namespace_of(s);
        let name = service_name(s);
        out.push((format!("{ns}/services/{name}.yaml"), service_yaml(s)));
        for p in 0..PODS_PER_SERVICE {
            out.push((
                format!("{ns}/pods/{name}-{p}.yaml"),
                pod_yaml(s, p, pod_ip(s, p)),
            ));
        }
    }
    out
}

/// Writes [`manifests`] into `dir` (emptied first).
pub fn write_manifests(dir: &Path, services: usize) -> io::Result<usize> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let files = manifests(services);
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(files.len())
}

/// Replaces a file the way an editor saves it (write aside, rename over), so a watcher
/// never reads it half-written.
pub fn replace_file(path: &Path, text: &str) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading dot keeps the manifest loader from reading the temporary file.
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The `p`-th percentile (0..=100) by nearest rank; `None` when empty.
pub fn percentile(values: &[Duration], p: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

pub fn median(values: &[Duration]) -> Option<Duration> {
    percentile(values, 50.0)
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

pub fn bytes(n: u64) -> String {
    if n < 10 * 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    }
}

pub fn kib(n: u64) -> String {
    bytes(n * 1024)
}

/// One result: a row of the final table (`row`, in first-seen order), the column it
/// belongs to (the number of services), and the text of the cell. `bench/discovery.sh`
/// collects these tab-separated lines from both examples into one table.
pub fn emit(row: &str, services: usize, cell: &str) {
    println!("{row}\t{services}\t{cell}");
}

/// Parses `100,1000,10000`.
pub fn parse_sizes(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not a number of services"))
        })
        .collect()
}

/// The directory holding the manifests of one size under the work directory.
pub fn mesh_dir(work: &Path, services: usize) -> PathBuf {
    work.join(format!("mesh-{services}"))
}
