//! The DNS proxy (127.0.0.1:15053, UDP and TCP): answers mesh names from the name table
//! discovery pushes (Istio's NDS) and forwards everything else to the upstream
//! resolvers from `/etc/resolv.conf`. With `ironmesh-proxy iptables --redirect-dns`, the
//! application's port-53 traffic lands here. See docs/dns.md.

mod server;
mod table;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

pub use server::{serve, DnsServer, TTL, UPSTREAM_TIMEOUT};
pub use table::NameTable;

/// The proxy's default DNS address (Istio's agent port).
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 15053);

/// The `nameserver` lines of a resolv.conf, as port-53 addresses.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then_some(())?;
            // Link-local v6 servers carry a zone (`fe80::1%eth0`) that SocketAddr
            // cannot hold; they are skipped.
            words.next()?.parse::<IpAddr>().ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The upstream resolvers of this host (`/etc/resolv.conf`); empty when unreadable.
pub fn system_upstreams() -> Vec<SocketAddr> {
    resolv_conf_upstreams(Path::new("/etc/resolv.conf"))
}

pub fn resolv_conf_upstreams(path: &Path) -> Vec<SocketAddr> {
    std::fs::read_to_string(path)
        .map(|t| parse_resolv_conf(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
