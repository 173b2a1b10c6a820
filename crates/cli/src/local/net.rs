//! Network plumbing through iproute2: the node namespace with its bridge, one namespace
//! per pod with a veth on the bridge, and the host↔node link that makes pod IPs
//! reachable from the host (for the gateway forwarders, readiness checks and the CLI).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _};

use super::state::*;

/// Runs `ip ARGS…`, failing with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    run("ip", args)
}

pub fn run(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{cmd}`: is it installed and on PATH?"))?;
    if !out.status.success() {
        bail!(
            "`{cmd} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Best effort: used on the way down, where a missing thing is fine.
pub fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip").args(args).output();
}

pub fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// The node namespace: bridge with the pods' gateway address, forwarding on, and a veth
/// pair to the host with a route for the pod /16.
pub fn create_node(state: &mut State) -> anyhow::Result<()> {
    if !state.netns.iter().any(|n| n == NODE_NETNS) {
        state.netns.insert(0, NODE_NETNS.to_string());
    }
    state.host_link = true;
    state.save()?;
    ip(&["netns", "add", NODE_NETNS])?;
    ip(&["-n", NODE_NETNS, "link", "set", "lo", "up"])?;
    ip(&["-n", NODE_NETNS, "link", "add", BRIDGE, "type", "bridge"])?;
    let bridge_cidr = format!("{BRIDGE_IP}/16");
    ip(&["-n", NODE_NETNS, "addr", "add", &bridge_cidr, "dev", BRIDGE])?;
    ip(&["-n", NODE_NETNS, "link", "set", BRIDGE, "up"])?;
    run(
        "ip",
        &[
            "netns",
            "exec",
            NODE_NETNS,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ],
    )?;
    ip(&[
        "link", "add", HOST_VETH, "type", "veth", "peer", "name", NODE_VETH, "netns", NODE_NETNS,
    ])?;
    let host_cidr = format!("{HOST_LINK_IP}/30");
    let node_cidr = format!("{NODE_LINK_IP}/30");
    ip(&["addr", "add", &host_cidr, "dev", HOST_VETH])?;
    ip(&["link", "set", HOST_VETH, "up"])?;
    ip(&[
        "-n", NODE_NETNS, "addr", "add", &node_cidr, "dev", NODE_VETH,
    ])?;
    ip(&["-n", NODE_NETNS, "link", "set", NODE_VETH, "up"])?;
    ip(&[
        "route",
        "add",
        POD_CIDR,
        "via",
        NODE_LINK_IP,
        "dev",
        HOST_VETH,
    ])?;
    Ok(())
}

/// A pod namespace with `eth0` on the bridge, `lo` up and a default route via the bridge.
/// The caller has recorded `netns` and `veth` in the state already.
pub fn create_pod_net(netns: &str, veth: &str, ip_addr: &str) -> anyhow::Result<()> {
    ip(&["netns", "add", netns])?;
    ip(&[
        "link", "add", veth, "netns", NODE_NETNS, "type", "veth", "peer", "name", "eth0", "netns",
        netns,
    ])?;
    ip(&["-n", NODE_NETNS, "link", "set", veth, "master", BRIDGE])?;
    ip(&["-n", NODE_NETNS, "link", "set", veth, "up"])?;
    ip(&["-n", netns, "link", "set", "lo", "up"])?;
    let cidr = format!("{ip_addr}/16");
    ip(&["-n", netns, "addr", "add", &cidr, "dev", "eth0"])?;
    ip(&["-n", netns, "link", "set", "eth0", "up"])?;
    ip(&["-n", netns, "route", "add", "default", "via", BRIDGE_IP])?;
    // The host end sits inside the pod /16 but not on the bridge: route it, not ARP it.
    ip(&["-n", netns, "route", "add", HOST_LINK_NET, "via", BRIDGE_IP])?;
    // Apps run unprivileged but listen on ports like 80, as in their containers.
    run(
        "ip",
        &[
            "netns",
            "exec",
            netns,
            "sysctl",
            "-qw",
            "net.ipv4.ip_unprivileged_port_start=0",
        ],
    )?;
    Ok(())
}

/// `/etc/netns/<netns>`: `ip netns exec` bind-mounts these files over `/etc`, which gives
/// each pod its own hosts file and resolv.conf without a mount namespace of our own.
pub fn etc_dir(netns: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(netns)
}

/// Writes in place (not by rename) so that processes already running with the file
/// bind-mounted see the new content.
pub fn write_in_place(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Pids of every process inside a network namespace.
pub fn netns_pids(netns: &str) -> Vec<u32> {
    let Ok(out) = Command::new("ip").args(["netns", "pids", netns]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The listening TCP ports of the network namespace `pid` lives in.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let mut ports = Vec::new();
    for file in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // st 0A = LISTEN
            if cols.len() > 3 && cols[3] == "0A" {
                if let Some(port) = cols[1].rsplit(':').next() {
                    if let Ok(p) = u16::from_str_radix(port, 16) {
                        ports.push(p);
                    }
                }
            }
        }
    }
    ports
}

/// Interface name for a pod's node-side veth: ≤ 15 characters, stable for the name.
pub fn veth_name(netns: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in netns.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("imv{h:08x}")
}

pub fn pod_ip(host_part: u32) -> String {
    // 10.213.0.0/16: .0.1 is the bridge, the top /30 is the host link.
    let n = host_part;
    format!("10.213.{}.{}", (n >> 8) & 0xff, n & 0xff)
}
