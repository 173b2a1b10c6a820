//! The TCP proxy filter: one upstream connection per downstream connection, bytes copied
//! both ways with half-close (EOF one way shuts down writing that way only) and an idle
//! timeout over both directions.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::upstream::{connect, ConnectError};
use super::Runtime;
use crate::lb;
use crate::model::listener::TrafficDirection;
use crate::model::{ClusterSpec, TcpProxy};
use crate::telemetry::{Direction, ResponseFlags, StreamInfo};

const BUF: usize = 16 * 1024;

/// Proxies `down` to the TCP proxy's cluster until both directions are closed.
pub async fn proxy<D>(
    rt: Arc<Runtime>,
    tp: Arc<TcpProxy>,
    down: D,
    dst: SocketAddr,
    peer: SocketAddr,
    sni: Option<String>,
) where
    D: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let mut info = StreamInfo {
        direction: if tp.direction == TrafficDirection::Inbound {
            Direction::Inbound
        } else {
            Direction::Outbound
        },
        start_time: Some(SystemTime::now()),
        downstream_local_address: Some(dst),
        downstream_remote_address: Some(peer),
        requested_server_name: sni,
        ..Default::default()
    };
    let cluster_name = match &tp.cluster {
        ClusterSpec::Single(c) => c.clone(),
        ClusterSpec::Weighted { clusters, total } => {
            lb::pick_weighted(clusters, |c| c.weight, *total, &mut rand::rng())
                .map(|c| c.name.clone())
                .unwrap_or_else(|| "".into())
        }
    };
    info.upstream_cluster = Some(cluster_name.to_string());
    let snap = rt.snapshot.load_full();
    let Some(cluster) = snap.clusters.get(&*cluster_name).cloned() else {
        info.flags.set(ResponseFlags::NC);
        info.duration = start.elapsed();
        rt.telemetry.record(&info, &tp.access_logs);
        return;
    };
    if let Some(s) = &cluster.service {
        info.destination_service = Some(s.host.clone());
    }
    let (addr, _active, peer_md) = match snap.endpoints_of(&cluster) {
        None => (dst, None, None),
        Some(eps) => match lb::pick(eps, cluster.lb, &mut rand::rng()) {
            Some(h) => (h.addr, lb::count_active(eps, cluster.lb, h), h.peer.clone()),
            None => {
                info.flags.set(ResponseFlags::UH);
                info.duration = start.elapsed();
                rt.telemetry.record(&info, &tp.access_logs);
                return;
            }
        },
    };
    drop(snap);
    if info.direction == Direction::Outbound {
        info.peer = peer_md;
    }
    info.upstream_host = Some(addr);
    let up = match connect(addr, cluster.bind, cluster.connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            info.flags.set(ResponseFlags::UF);
            info.upstream_transport_failure_reason = Some(e.reason());
            if let ConnectError::Timeout = e {
                tracing::debug!(upstream = %addr, "tcp connect timeout");
            }
            info.duration = start.elapsed();
            rt.telemetry.record(&info, &tp.access_logs);
            return;
        }
    };
    info.upstream_local_address = up.local_addr().ok();
    rt.telemetry.record_tcp_open(&info);
    info.tcp_open_reported = true;
    let (sent, received) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let idle = copy_both(down, up, tp.idle_timeout, &received, &sent).await;
    if idle {
        info.connection_termination_details = Some("idle_timeout".into());
    }
    info.bytes_received = received.load(Ordering::Relaxed);
    info.bytes_sent = sent.load(Ordering::Relaxed);
    info.duration = start.elapsed();
    rt.telemetry.record(&info, &tp.access_logs);
}

/// Copies both ways; returns whether the idle timeout ended the connection.
pub async fn copy_both<A, B>(
    a: A,
    b: B,
    idle: Option<Duration>,
    a_to_b: &AtomicU64,
    b_to_a: &AtomicU64,
) -> bool
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let last = std::sync::Mutex::new(Instant::now());
    let both = async {
        tokio::join!(
            pump(&mut ar, &mut bw, a_to_b, &last),
            pump(&mut br, &mut aw, b_to_a, &last)
        );
    };
    let Some(idle) = idle else {
        both.await;
        return false;
    };
    tokio::pin!(both);
    loop {
        let since = last.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
        if since >= idle {
            return true;
        }
        tokio::select! {
            _ = &mut both => return false,
            _ = tokio::time::sleep(idle - since) => {}
        }
    }
}

async fn pump<R, W>(r: &mut R, w: &mut W, count: &AtomicU64, last: &std::sync::Mutex<Instant>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
        *last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
    // Half-close: the peer sees EOF, the other direction keeps flowing.
    let _ = w.shutdown().await;
}
