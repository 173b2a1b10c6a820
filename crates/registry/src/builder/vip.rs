//! Service VIPs for Services that name no `clusterIP` — what the API server would
//! allocate. Local mode has no API server, so the registry picks one from 240.240.0.0/16
//! (reserved, never routable): derived from the host name so it is stable across
//! restarts and unaffected by other services coming and going, with linear probing on
//! the rare collision (in host-name order, so the result is still deterministic).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

/// 240.240.0.0/16: the range service VIPs are allocated from.
pub const VIP_RANGE: (u8, u8) = (240, 240);

/// The preferred VIP for `hostname` (before collision handling).
pub fn preferred(hostname: &str) -> u16 {
    // FNV-1a: tiny, stable across Rust versions (unlike the std hasher).
    let mut h: u32 = 0x811c_9dc5;
    for b in hostname.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    // Skip .0.0 and .255.255.
    (h % 65534) as u16 + 1
}

/// Allocates a VIP for each host in `wanted` (sorted), avoiding every address in `taken`.
pub fn allocate(wanted: &BTreeSet<String>, taken: &mut BTreeSet<IpAddr>) -> Vec<(String, IpAddr)> {
    let mut out = Vec::with_capacity(wanted.len());
    for host in wanted {
        let mut n = preferred(host);
        loop {
            let ip = IpAddr::V4(Ipv4Addr::new(
                VIP_RANGE.0,
                VIP_RANGE.1,
                (n >> 8) as u8,
                n as u8,
            ));
            if taken.insert(ip) {
                out.push((host.clone(), ip));
                break;
            }
            n = if n >= 65534 { 1 } else { n + 1 };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_in_range_and_collision_free() {
        let hosts: BTreeSet<String> = (0..2000)
            .map(|i| format!("svc{i}.ns.svc.cluster.local"))
            .collect();
        let mut taken = BTreeSet::new();
        let a = allocate(&hosts, &mut taken);
        assert_eq!(taken.len(), 2000);
        for (_, ip) in &a {
            let IpAddr::V4(v4) = ip else { panic!("v4") };
            assert_eq!(&v4.octets()[..2], &[240, 240]);
            assert_ne!(v4.octets()[2..], [0, 0]);
        }
        let mut taken2 = BTreeSet::new();
        assert_eq!(a, allocate(&hosts, &mut taken2), "deterministic");
        // Another service appearing does not move an existing one's preferred address.
        let one: BTreeSet<String> = ["reviews.default.svc.cluster.local".to_string()].into();
        let mut t = BTreeSet::new();
        let first = allocate(&one, &mut t)[0].1;
        let mut more = one.clone();
        more.insert("zzz.default.svc.cluster.local".into());
        let mut t = BTreeSet::new();
        assert_eq!(allocate(&more, &mut t)[0].1, first);
    }
}
