//! kube-proxy's job for pods without a sidecar: in the node namespace (which routes
//! every packet a pod sends to a Service VIP, the VIP not being on the bridge), DNAT
//! each `VIP:port` to a ready pod's `IP:targetPort`, picked at random, and masquerade
//! so replies come back through the node. Pods with a sidecar never get here: their
//! sidecar captured the connection already.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use ironmesh_config::{Object, Resource};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::state::NODE_NETNS;

/// A ready pod: namespace, IP, labels, named container ports.
pub struct Endpoint<'a> {
    pub namespace: &'a str,
    pub ip: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub ports: BTreeMap<String, u16>,
}

/// The nat table for the node namespace.
pub fn rules(objects: &[Object], endpoints: &[Endpoint<'_>]) -> String {
    let mut out = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    for o in objects {
        let Resource::Service(svc) = &o.resource else {
            continue;
        };
        let Some(spec) = &svc.spec else { continue };
        let Some(vip) = spec.cluster_ip.as_deref().filter(|ip| ip.contains('.')) else {
            continue;
        };
        let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let eps: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|e| e.namespace == o.namespace())
            .filter(|e| selector.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
            .collect();
        for port in spec.ports.iter().flatten() {
            if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
                continue;
            }
            let targets: Vec<(String, u16)> = eps
                .iter()
                .filter_map(|e| {
                    let tp = match &port.target_port {
                        None => u16::try_from(port.port).ok()?,
                        Some(IntOrString::Int(n)) => u16::try_from(*n).ok()?,
                        Some(IntOrString::String(name)) => *e.ports.get(name)?,
                    };
                    Some((e.ip.to_string(), tp))
                })
                .collect();
            let n = targets.len();
            for (i, (ip, tp)) in targets.iter().enumerate() {
                // Rule i of n takes 1/(n-i) of what is left: uniform over n.
                let stat = if i + 1 < n {
                    format!(
                        " -m statistic --mode random --probability {:.5}",
                        1.0 / (n - i) as f64
                    )
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "-A PREROUTING -d {vip}/32 -p tcp --dport {}{stat} -j DNAT --to-destination {ip}:{tp}\n",
                    port.port
                ));
            }
        }
    }
    out.push_str("-A POSTROUTING -m conntrack --ctstate DNAT -j MASQUERADE\nCOMMIT\n");
    out
}

pub fn apply(rules: &str) -> anyhow::Result<()> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", NODE_NETNS, "iptables-restore"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run iptables-restore in the node namespace")?;
    child
        .stdin
        .take()
        .context("iptables-restore stdin")?
        .write_all(rules.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "iptables-restore in {NODE_NETNS} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
