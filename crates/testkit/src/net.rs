//! Loopback plumbing shared by the process tests: polling with a deadline and free ports.

use std::net::{IpAddr, SocketAddr, TcpListener};
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

/// `n` distinct free ports on 127.0.0.1.
pub fn free_ports(n: usize) -> Vec<u16> {
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
