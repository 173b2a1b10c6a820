//! Filter chain selection: Envoy's FilterChainMatch precedence (destination port, then
//! destination IP prefix, server name, transport protocol, application protocols,
//! source IP), most specific matching chain wins.

use std::net::SocketAddr;

use super::detect::Detected;
use crate::model::{ChainMatch, FilterChain, Listener};

/// The facts a chain is selected on.
pub struct ConnFacts<'a> {
    pub dst: SocketAddr,
    pub src: SocketAddr,
    pub detected: &'a Detected,
}

fn sni_score(m: &ChainMatch, sni: Option<&str>) -> Option<u32> {
    if m.server_names.is_empty() {
        return Some(0);
    }
    let sni = sni?;
    let mut best = None;
    for n in &m.server_names {
        if n == sni {
            return Some(1000);
        }
        if let Some(suffix) = n.strip_prefix('*') {
            if sni.len() > suffix.len() && sni.ends_with(suffix) {
                best = best.max(Some(suffix.len() as u32));
            }
        }
    }
    best
}

fn score(m: &ChainMatch, f: &ConnFacts<'_>) -> Option<(u8, u32, u32, u8, u8, u32)> {
    let port = match m.destination_port {
        None => 0,
        Some(p) if p == f.dst.port() => 1,
        Some(_) => return None,
    };
    let prefix = if m.prefix_ranges.is_empty() {
        0
    } else {
        m.prefix_ranges
            .iter()
            .filter(|n| n.contains(&f.dst.ip()))
            .map(|n| u32::from(n.prefix_len()) + 1)
            .max()?
    };
    let sni = sni_score(m, f.detected.server_name.as_deref())?;
    let transport = match &m.transport_protocol {
        None => 0,
        Some(t) if t == f.detected.transport => 1,
        Some(_) => return None,
    };
    let alpn = if m.application_protocols.is_empty() {
        0
    } else if m
        .application_protocols
        .iter()
        .any(|a| f.detected.application_protocols.iter().any(|d| d == a))
    {
        1
    } else {
        return None;
    };
    let source = if m.source_prefix_ranges.is_empty() {
        0
    } else {
        m.source_prefix_ranges
            .iter()
            .filter(|n| n.contains(&f.src.ip()))
            .map(|n| u32::from(n.prefix_len()) + 1)
            .max()?
    };
    Some((port, prefix, sni, transport, alpn, source))
}

/// The chain for a connection, or the default chain, or `None` (Envoy closes it).
pub fn select_chain<'a>(l: &'a Listener, f: &ConnFacts<'_>) -> Option<&'a FilterChain> {
    let mut best: Option<(&FilterChain, _)> = None;
    for c in &l.chains {
        if let Some(s) = score(&c.matcher, f) {
            if best.as_ref().is_none_or(|(_, b)| s > *b) {
                best = Some((c, s));
            }
        }
    }
    best.map(|(c, _)| c).or(l.default_chain.as_ref())
}

/// For `virtualOutbound` (use_original_dst): the listener bound to the original
/// destination (`<ip>_<port>` first, then `0.0.0.0_<port>`).
pub fn listener_for<'a>(
    listeners: impl Iterator<Item = &'a std::sync::Arc<Listener>>,
    dst: SocketAddr,
) -> Option<&'a std::sync::Arc<Listener>> {
    let mut wildcard = None;
    for l in listeners {
        if l.address.port() != dst.port() || l.use_original_dst {
            continue;
        }
        if l.address.ip() == dst.ip() {
            return Some(l);
        }
        if l.address.ip().is_unspecified() && wildcard.is_none() {
            wildcard = Some(l);
        }
    }
    wildcard
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Snapshot;

    #[test]
    fn sidecar_golden_chains() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../discovery/testdata/golden/000-httpbin-sleep/sidecar.json"
        ))
        .unwrap();
        let snap = Snapshot::from_json(&text).unwrap();
        let l80 = &snap.listeners["0.0.0.0_80"];
        let http = Detected {
            transport: "raw_buffer",
            application_protocols: vec!["http/1.1".into()],
            server_name: None,
        };
        let raw = Detected {
            transport: "raw_buffer",
            ..Default::default()
        };
        let f = |d| ConnFacts {
            dst: "240.240.0.1:80".parse().unwrap(),
            src: "127.0.0.1:1".parse().unwrap(),
            detected: d,
        };
        assert_eq!(&*select_chain(l80, &f(&http)).unwrap().name, "0.0.0.0_80");
        assert_eq!(
            &*select_chain(l80, &f(&raw)).unwrap().name,
            "PassthroughFilterChain"
        );
        let inbound = &snap.listeners["virtualInbound"];
        let to = |port: u16, d| ConnFacts {
            dst: SocketAddr::new("127.0.2.11".parse().unwrap(), port),
            src: "127.0.0.1:1".parse().unwrap(),
            detected: d,
        };
        assert_eq!(
            &*select_chain(inbound, &to(80, &raw)).unwrap().name,
            "0.0.0.0_80"
        );
        assert_eq!(
            &*select_chain(inbound, &to(15006, &raw)).unwrap().name,
            "virtualInbound-blackhole"
        );
        assert_eq!(
            &*select_chain(inbound, &to(9999, &http)).unwrap().name,
            "virtualInbound-catchall-http"
        );
        assert_eq!(
            &*select_chain(inbound, &to(9999, &raw)).unwrap().name,
            "PassthroughFilterChain"
        );
        let dst = "240.240.199.127:15021".parse().unwrap();
        assert_eq!(
            &*listener_for(snap.listeners.values(), dst).unwrap().name,
            "240.240.199.127_15021"
        );
        assert_eq!(
            &*listener_for(snap.listeners.values(), "10.1.1.1:80".parse().unwrap())
                .unwrap()
                .name,
            "0.0.0.0_80"
        );
        assert!(listener_for(snap.listeners.values(), "10.1.1.1:81".parse().unwrap()).is_none());
    }

    #[test]
    fn sni_precedence() {
        let m = |names: &[&str]| ChainMatch {
            server_names: names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            sni_score(&m(&["a.example.com"]), Some("a.example.com")),
            Some(1000)
        );
        assert!(sni_score(&m(&["*.example.com"]), Some("a.example.com")).unwrap() > 0);
        assert_eq!(sni_score(&m(&["*.example.com"]), Some("example.com")), None);
        assert_eq!(sni_score(&m(&[]), None), Some(0));
    }
}
