//! Binding listeners from the snapshot and dispatching accepted connections: original
//! destination, `virtualOutbound` hand-off, protocol detection, filter chain, filter.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::detect::{sniff, Detected, Rewind};
use super::select::{listener_for, select_chain, ConnFacts};
use super::{http, tcp, ConnGuard, Runtime};
use crate::model::{Listener, NetworkFilter, Snapshot};

struct Bound {
    configured: SocketAddr,
    local: SocketAddr,
    stop: watch::Sender<bool>,
}

/// The listeners currently bound, reconciled against each new snapshot.
pub struct ListenerSet {
    rt: Arc<Runtime>,
    bound: Mutex<HashMap<String, Bound>>,
}

/// SO_ORIGINAL_DST: where the client meant to connect before an iptables REDIRECT.
pub fn original_dst(s: &TcpStream) -> Option<SocketAddr> {
    use nix::sys::socket::{getsockopt, sockopt};
    let local = s.local_addr().ok()?;
    if local.is_ipv4() {
        let sa = getsockopt(&s.as_fd(), sockopt::OriginalDst).ok()?;
        Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))),
            u16::from_be(sa.sin_port),
        ))
    } else {
        let sa = getsockopt(&s.as_fd(), sockopt::Ip6tOriginalDst).ok()?;
        Some(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)),
            u16::from_be(sa.sin6_port),
        ))
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

impl ListenerSet {
    pub fn new(rt: Arc<Runtime>) -> Arc<ListenerSet> {
        Arc::new(ListenerSet {
            rt,
            bound: Mutex::new(HashMap::new()),
        })
    }

    /// Where `l` should be bound, or `None` when it only receives hand-offs.
    fn bind_addr(&self, l: &Listener) -> Option<SocketAddr> {
        let o = &self.rt.options;
        if let Some(a) = o.bind_overrides.get(&l.address.port()) {
            return Some(*a);
        }
        if o.sidecar && &*l.name == "virtualOutbound" {
            return Some(SocketAddr::new(l.address.ip(), o.outbound_port));
        }
        if o.sidecar && &*l.name == "virtualInbound" {
            return Some(SocketAddr::new(l.address.ip(), o.inbound_port));
        }
        l.bind_to_port.then_some(l.address)
    }

    /// Binds new listeners and stops removed ones; established connections are untouched.
    /// Errors name the listeners that could not be bound.
    pub fn reconcile(self: &Arc<Self>, snap: &Snapshot) -> Result<(), String> {
        let mut bound = self.bound.lock().unwrap_or_else(|p| p.into_inner());
        let mut want = HashMap::new();
        for (name, l) in snap.listeners.iter() {
            if let Some(a) = self.bind_addr(l) {
                want.insert(name.clone(), a);
            }
        }
        bound.retain(|name, b| {
            let keep = want.get(name) == Some(&b.configured);
            if !keep {
                let _ = b.stop.send(true);
                tracing::info!(listener = %name, "listener removed");
            }
            keep
        });
        let mut errors = Vec::new();
        for (name, addr) in want {
            if bound.contains_key(&name) {
                continue;
            }
            match bind(addr) {
                Ok(tl) => {
                    let local = tl.local_addr().unwrap_or(addr);
                    // The line tests and operators read to find a listener's port.
                    println!("listening {name}={local}");
                    let (stop, rx) = watch::channel(false);
                    bound.insert(
                        name.clone(),
                        Bound {
                            configured: addr,
                            local,
                            stop,
                        },
                    );
                    tokio::spawn(accept_loop(self.rt.clone(), name, tl, rx));
                }
                Err(e) => errors.push(format!("{name} on {addr}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "cannot bind listeners ({}); free the ports or map them with --bind-port",
                errors.join("; ")
            ))
        }
    }

    /// Listener name → bound local address.
    pub fn bound(&self) -> Vec<(String, SocketAddr)> {
        let b = self.bound.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = b.iter().map(|(n, b)| (n.clone(), b.local)).collect();
        v.sort();
        v
    }

    /// Stops accepting on every listener (drain); live connections continue.
    pub fn stop_all(&self) {
        let mut b = self.bound.lock().unwrap_or_else(|p| p.into_inner());
        for (_, l) in b.drain() {
            let _ = l.stop.send(true);
        }
    }
}

async fn accept_loop(
    rt: Arc<Runtime>,
    name: String,
    tl: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let name: Arc<str> = name.into();
    loop {
        tokio::select! {
            r = tl.accept() => match r {
                Ok((s, peer)) => {
                    let _ = s.set_nodelay(true);
                    hand_off(&rt, name.clone(), s, peer);
                }
                Err(e) => {
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = super::wait_true(&mut stop) => return,
        }
    }
}

/// Runs an accepted connection on the next worker, re-registered with that worker's
/// reactor so its readiness events wake it there.
fn hand_off(rt: &Arc<Runtime>, name: Arc<str>, s: TcpStream, peer: SocketAddr) {
    match s.into_std() {
        Ok(s) => {
            let worker_rt = rt.clone();
            rt.workers.spawn(async move {
                match TcpStream::from_std(s) {
                    Ok(s) => handle_conn(worker_rt, name, s, peer).await,
                    Err(e) => {
                        tracing::warn!(listener = %name, error = %e, "cannot hand off connection")
                    }
                }
            });
        }
        Err(e) => tracing::warn!(listener = %name, error = %e, "cannot hand off connection"),
    }
}

async fn handle_conn(rt: Arc<Runtime>, name: Arc<str>, mut s: TcpStream, peer: SocketAddr) {
    let _guard = ConnGuard::new(&rt);
    let snap = rt.snapshot.load_full();
    let Some(listener) = snap.listeners.get(&*name).cloned() else {
        return;
    };
    let Ok(local) = s.local_addr() else { return };
    // Without a real original destination (no iptables), the connection is treated as
    // addressed to the listener's configured port, so `virtual*-blackhole` chains catch
    // direct connections instead of passing them back to the proxy itself.
    let logical = SocketAddr::new(local.ip(), listener.address.port());
    let dst = if listener.use_original_dst || listener.original_dst_filter {
        original_dst(&s).filter(|o| *o != local).unwrap_or(logical)
    } else {
        logical
    };
    let target = if listener.use_original_dst {
        listener_for(snap.listeners.values(), dst)
            .cloned()
            .unwrap_or(listener)
    } else {
        listener
    };
    drop(snap);
    let (detected, prefix) = if target.needs_sniffing {
        let timeout = target
            .filters_timeout
            .filter(|t| !t.is_zero())
            .unwrap_or(rt.options.detect_timeout);
        match sniff(&mut s, timeout, target.tls_inspector, target.http_inspector).await {
            Ok(r) => r,
            Err(_) => return,
        }
    } else {
        (
            Detected {
                transport: "raw_buffer",
                ..Default::default()
            },
            Bytes::new(),
        )
    };
    let facts = ConnFacts {
        dst,
        src: peer,
        detected: &detected,
    };
    let Some(chain) = select_chain(&target, &facts) else {
        tracing::debug!(listener = %target.name, %dst, "no filter chain matched; closing");
        return;
    };
    let filter = chain.filter.clone();
    let sni = detected.server_name.clone();
    let stream = Rewind::new(prefix, s);
    if let Some(tls) = chain.tls.clone() {
        let snap = rt.snapshot.load_full();
        let Some(stream) = super::tls::accept(&snap, &tls, &filter, stream).await else {
            return;
        };
        drop(snap);
        let sni = sni.or_else(|| stream.get_ref().1.server_name().map(str::to_string));
        dispatch(rt, filter, stream, dst, peer, sni).await;
        return;
    }
    dispatch(rt, filter, stream, dst, peer, sni).await;
}

/// Hands a (possibly TLS-terminated) connection to its chain's network filter.
async fn dispatch<I>(
    rt: Arc<Runtime>,
    filter: NetworkFilter,
    stream: I,
    dst: SocketAddr,
    peer: SocketAddr,
    sni: Option<String>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match filter {
        NetworkFilter::Http(hcm) => {
            let conn = Arc::new(http::HttpConn::new(rt.clone(), hcm, dst, peer, sni));
            http::serve(conn, stream).await;
        }
        NetworkFilter::Tcp(tp) => tcp::proxy(rt.clone(), tp, stream, dst, peer, sni).await,
    }
}
