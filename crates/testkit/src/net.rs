//! Loopback plumbing shared by the process tests: polling with a deadline and free ports.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Polls `cond` every 50 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `n` distinct ports that were free on every address when chosen, for a process that
/// binds them later.
///
/// They come from just below the kernel's ephemeral range (`ip_local_port_range`): a
/// port from `bind(:0)` could be handed to some test's outgoing connection before the
/// process binds it (Envoy then NACKs its listener with EADDRINUSE), while ports below
/// the range are only ever taken on purpose. A process-wide cursor, started at an offset
/// from the PID, keeps parallel tests and concurrent test binaries apart.
pub fn free_ports(n: usize) -> Vec<u16> {
    static RANGE: OnceLock<(u32, u32, AtomicU32)> = OnceLock::new();
    let (low, high, cursor) = RANGE.get_or_init(|| {
        let (low, high) = reserved_range();
        let start = std::process::id().wrapping_mul(7919) % (high - low).max(1);
        (low, high, AtomicU32::new(start))
    });
    let (low, high) = (*low, *high);
    if high - low < 4 * n as u32 {
        return ephemeral_ports(n);
    }
    let span = high - low;
    let mut held = Vec::with_capacity(n);
    for _ in 0..span {
        if held.len() == n {
            break;
        }
        let port = (low + cursor.fetch_add(1, Ordering::Relaxed) % span) as u16;
        // Free on 0.0.0.0 means free on every address, whichever one the process binds.
        if let Ok(l) = TcpListener::bind(("0.0.0.0", port)) {
            held.push(l);
        }
    }
    if held.len() < n {
        return ephemeral_ports(n);
    }
    held.iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// Ports `[low, high)` under the ephemeral range, at most 10 000 of them, never under 10 000.
fn reserved_range() -> (u32, u32) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let high = ephemeral_low.min(65536);
    (high.saturating_sub(10_000).max(10_000).min(high), high)
}

/// `n` distinct ports the kernel picks (the ephemeral range): the fallback when the range
/// leaves no room below it.
fn ephemeral_ports(n: usize) -> Vec<u16> {
    // Holding every listener until all are chosen keeps the ports distinct.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Something bound to a local port.
pub trait BoundPort {
    fn port(&self) -> u16;
}

/// Binds `bind` on every address of `ips` with one port free on all of them (the
/// backends of one Service share a port, each on its own loopback address). Retries,
/// since another process may take the port between two binds.
pub fn bind_same_port<T: BoundPort>(
    ips: &[IpAddr],
    mut bind: impl FnMut(SocketAddr) -> std::io::Result<T>,
) -> Vec<T> {
    let Some((first, rest)) = ips.split_first() else {
        return Vec::new();
    };
    for _ in 0..50 {
        let Ok(head) = bind(SocketAddr::new(*first, 0)) else {
            continue;
        };
        let port = head.port();
        let mut bound = vec![head];
        for ip in rest {
            match bind(SocketAddr::new(*ip, port)) {
                Ok(t) => bound.push(t),
                Err(_) => break,
            }
        }
        if bound.len() == ips.len() {
            return bound;
        }
    }
    panic!("no port free on all of {ips:?} after 50 tries");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let (low, high) = reserved_range();
        let ports = free_ports(8);
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 8, "{ports:?}");
        for p in &ports {
            if high - low >= 32 {
                assert!(
                    (low..high).contains(&u32::from(*p)),
                    "{p} not in {low}..{high}"
                );
            }
            TcpListener::bind(("127.0.0.1", *p)).unwrap_or_else(|e| panic!("bind {p}: {e}"));
        }
        // The next call moves on: ports handed out are not handed out again at once.
        let more = free_ports(8);
        assert!(
            more.iter().all(|p| !ports.contains(p)),
            "{ports:?} {more:?}"
        );
    }
}
