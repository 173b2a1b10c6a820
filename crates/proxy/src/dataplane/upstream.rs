//! Upstream connections: connect (timeout, source address) and keep-alive pools per
//! (host, protocol, source), HTTP/1.1 (one request at a time per connection) and
//! HTTP/2 (one multiplexed connection per host).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpSocket, TcpStream};

use super::body::ReqBody;

/// Why an upstream connection failed, in Envoy's words.
#[derive(Debug)]
pub enum ConnectError {
    Timeout,
    Io(io::Error),
    Handshake(hyper::Error),
}

impl ConnectError {
    /// `%UPSTREAM_TRANSPORT_FAILURE_REASON%` as Envoy 1.40 words it
    /// (`delayed_connect_error:_Connection_refused`: the OS's text, no errno).
    pub fn reason(&self) -> String {
        match self {
            ConnectError::Timeout => "connection timeout".into(),
            ConnectError::Io(e) => {
                let text = e.to_string();
                // Rust's rendering appends ` (os error N)`; Envoy's strerror does not.
                let text = text.split(" (os error").next().unwrap_or(&text);
                format!("delayed_connect_error:_{}", text.replace(' ', "_"))
            }
            ConnectError::Handshake(e) => format!("protocol_error:_{e}"),
        }
    }

    /// `%RESPONSE_CODE_DETAILS%` of the local reply, as Envoy 1.40 writes it:
    /// `upstream_reset_before_response_started{remote_connection_failure|<reason>}`.
    pub fn details(&self) -> String {
        match self {
            ConnectError::Timeout => {
                "upstream_reset_before_response_started{connection_timeout}".into()
            }
            _ => format!(
                "upstream_reset_before_response_started{{remote_connection_failure|{}}}",
                self.reason()
            ),
        }
    }
}

/// Why an upstream request failed before a response head arrived (either client).
#[derive(Debug)]
pub enum SendError {
    Connect(ConnectError),
    /// The connection closed or failed after the request was (possibly) sent.
    Reset(String),
    /// The route timeout (applied by the caller).
    Timeout,
}

/// Opens a TCP connection to `addr`, from `bind` when set (inbound: 127.0.0.6).
pub async fn connect(
    addr: SocketAddr,
    bind: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(ConnectError::Io)?;
    if let Some(ip) = bind {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(ConnectError::Io)?;
    }
    socket.set_nodelay(true).map_err(ConnectError::Io)?;
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ConnectError::Io(e)),
        Err(_) => Err(ConnectError::Timeout),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub addr: SocketAddr,
    pub h2: bool,
    pub bind: Option<IpAddr>,
}

#[derive(Default)]
pub struct HostPool {
    idle_h1: Mutex<Vec<(http1::SendRequest<ReqBody>, SocketAddr)>>,
    h2: Mutex<Option<(http2::SendRequest<ReqBody>, SocketAddr)>>,
}

/// A checked-out sender; HTTP/1 senders go back to the pool when the response ends.
pub enum Sender {
    H1(http1::SendRequest<ReqBody>, Arc<HostPool>, SocketAddr),
    H2(http2::SendRequest<ReqBody>, SocketAddr),
}

/// Most idle HTTP/1.1 connections kept per host.
const MAX_IDLE_H1: usize = 64;

impl HostPool {
    pub fn give_back(&self, s: http1::SendRequest<ReqBody>, local: SocketAddr) {
        if s.is_closed() {
            return;
        }
        let mut idle = self.idle_h1.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_H1 {
            idle.push((s, local));
        }
    }
}

thread_local! {
    static POOLS: Arc<Pools> = Arc::new(Pools::default());
}

/// This thread's upstream pools. Each worker keeps its own, so a pooled connection's
/// driver task and the requests sent on it run on the same thread.
pub fn pools() -> Arc<Pools> {
    POOLS.with(Arc::clone)
}

/// Upstream pools by host (one set per worker thread, see [`pools`]).
#[derive(Default)]
pub struct Pools {
    pools: RwLock<HashMap<PoolKey, Arc<HostPool>>>,
}

impl Pools {
    fn pool(&self, key: PoolKey) -> Arc<HostPool> {
        if let Some(p) = self
            .pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return p.clone();
        }
        self.pools
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .clone()
    }

    /// A ready sender for `key`, reusing an idle connection when there is one.
    pub async fn checkout(
        &self,
        key: PoolKey,
        connect_timeout: Duration,
    ) -> Result<Sender, ConnectError> {
        let pool = self.pool(key);
        if key.h2 {
            let existing = pool.h2.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some((mut s, local)) = existing {
                if !s.is_closed() && s.ready().await.is_ok() {
                    return Ok(Sender::H2(s, local));
                }
            }
            // Boxed: connecting is rare, and inline its state would make every
            // request's future (moved on each poll) larger.
            let (s, local) = Box::pin(connect_h2(key, connect_timeout)).await?;
            *pool.h2.lock().unwrap_or_else(|p| p.into_inner()) = Some((s.clone(), local));
            return Ok(Sender::H2(s, local));
        }
        loop {
            let candidate = pool.idle_h1.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some((mut s, local)) = candidate else {
                break;
            };
            if s.is_closed() {
                continue;
            }
            // A connection returned at end of response becomes ready once hyper has
            // finished the message; a closed one fails here and is dropped.
            if s.ready().await.is_ok() {
                return Ok(Sender::H1(s, pool, local));
            }
        }
        let (s, local) = Box::pin(connect_h1(key, connect_timeout)).await?;
        Ok(Sender::H1(s, pool, local))
    }
}

async fn connect_h1(
    key: PoolKey,
    connect_timeout: Duration,
) -> Result<(http1::SendRequest<ReqBody>, SocketAddr), ConnectError> {
    let stream = connect(key.addr, key.bind, connect_timeout).await?;
    let local = stream.local_addr().map_err(ConnectError::Io)?;
    let (s, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok((s, local))
}

async fn connect_h2(
    key: PoolKey,
    connect_timeout: Duration,
) -> Result<(http2::SendRequest<ReqBody>, SocketAddr), ConnectError> {
    let stream = connect(key.addr, key.bind, connect_timeout).await?;
    let local = stream.local_addr().map_err(ConnectError::Io)?;
    let (s, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(None)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((s, local))
}
