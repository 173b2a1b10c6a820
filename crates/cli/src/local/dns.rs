//! Each pod's /etc/netns files: hosts (Service VIPs) and resolv.conf.

use std::collections::BTreeMap;

use super::net;
use super::state::*;

/// A hosts file naming every Service VIP (short names for the pod's own namespace, as
/// the search path would) and a resolv.conf with the cluster search path; injected
/// pods' DNS is captured to their sidecar's DNS proxy as well.
pub fn write_pod_dns(ps: &PodState, vips: &BTreeMap<String, String>) {
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n");
    hosts.push_str(&format!("{}\t{}\n", ps.ip, ps.name));
    for (key, vip) in vips {
        let Some((ns, name)) = key.split_once('/') else {
            continue;
        };
        let mut names = format!("{name}.{ns}.svc.cluster.local {name}.{ns}.svc {name}.{ns}");
        if ns == ps.namespace {
            names.push(' ');
            names.push_str(name);
        }
        hosts.push_str(&format!("{vip}\t{names}\n"));
    }
    let resolv = format!(
        "search {}.svc.cluster.local svc.cluster.local cluster.local\nnameserver {BRIDGE_IP}\noptions ndots:5 timeout:1 attempts:2\n",
        ps.namespace
    );
    let dir = net::etc_dir(&ps.netns);
    let _ = std::fs::create_dir_all(&dir);
    let _ = net::write_in_place(&dir.join("hosts"), &hosts);
    let _ = net::write_in_place(&dir.join("resolv.conf"), &resolv);
    let _ = net::write_in_place(&dir.join("hostname"), &format!("{}\n", ps.name));
}
