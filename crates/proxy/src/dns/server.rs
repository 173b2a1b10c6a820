//! The DNS proxy's sockets: UDP and TCP on one port, answers from the [`NameTable`],
//! everything else forwarded to the upstream resolvers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use super::table::NameTable;

/// TTL of mesh answers: short, so a changed VIP is picked up quickly.
pub const TTL: u32 = 30;
/// How long one upstream gets to answer a forwarded query.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Queries handled at once; more wait (UDP) or queue in the accept backlog (TCP).
const MAX_IN_FLIGHT: usize = 512;
/// Idle TCP connections are closed after this long.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// A running DNS proxy; its sockets close when it is dropped.
#[derive(Debug)]
pub struct DnsServer {
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Ctx {
    table: watch::Receiver<Arc<NameTable>>,
    upstreams: Vec<SocketAddr>,
    namespace: String,
    limit: Semaphore,
}

/// Starts the DNS proxy on `addr` (UDP and TCP on the same port; port 0 picks one).
/// `upstreams` get every name that is not in the mesh; `namespace` is the proxy's own
/// (short names resolve only there).
pub async fn serve(
    addr: SocketAddr,
    table: watch::Receiver<Arc<NameTable>>,
    upstreams: Vec<SocketAddr>,
    namespace: String,
) -> std::io::Result<DnsServer> {
    let (udp, tcp) = bind_pair(addr).await?;
    let udp_addr = udp.local_addr()?;
    let tcp_addr = tcp.local_addr()?;
    // Never forward to ourselves: with DNS capture on, the resolver in resolv.conf may
    // well be our own address.
    let upstreams = upstreams.into_iter().filter(|u| *u != udp_addr).collect();
    let ctx = Arc::new(Ctx {
        table,
        upstreams,
        namespace,
        limit: Semaphore::new(MAX_IN_FLIGHT),
    });
    let tasks = vec![
        tokio::spawn(udp_loop(Arc::new(udp), ctx.clone())),
        tokio::spawn(tcp_loop(tcp, ctx)),
    ];
    tracing::info!(%udp_addr, %tcp_addr, "DNS proxy listening");
    Ok(DnsServer {
        udp_addr,
        tcp_addr,
        tasks,
    })
}

async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        return Ok((UdpSocket::bind(addr).await?, TcpListener::bind(addr).await?));
    }
    // Port 0: let UDP pick, then take the same port for TCP; retry if TCP's is taken.
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port for UDP and TCP")))
}

async fn udp_loop(socket: Arc<UdpSocket>, ctx: Arc<Ctx>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "DNS UDP receive failed");
                continue;
            }
        };
        let query = buf[..n].to_vec();
        let Ok(permit) = ctx.limit.acquire().await else {
            return;
        };
        permit.forget();
        let (socket, ctx) = (socket.clone(), ctx.clone());
        tokio::spawn(async move {
            if let Some(reply) = handle(&ctx, &query, false).await {
                let _ = socket.send_to(&reply, peer).await;
            }
            ctx.limit.add_permits(1);
        });
    }
}

async fn tcp_loop(listener: TcpListener, ctx: Arc<Ctx>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = tcp_conn(stream, &ctx).await;
        });
    }
}

/// RFC 1035 §4.2.2: every message is preceded by its length (two bytes).
async fn tcp_conn(mut stream: TcpStream, ctx: &Ctx) -> std::io::Result<()> {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            _ => return Ok(()),
        };
        let mut query = vec![0u8; len];
        stream.read_exact(&mut query).await?;
        let Some(reply) = handle(ctx, &query, true).await else {
            return Ok(());
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return Ok(());
        };
        stream.write_u16(reply_len).await?;
        stream.write_all(&reply).await?;
    }
}

/// The reply to one query; `None` when the bytes are not a DNS query at all. `via_tcp`:
/// the client asked over TCP, so a truncated upstream answer is retried over TCP.
async fn handle(ctx: &Ctx, query: &[u8], via_tcp: bool) -> Option<Vec<u8>> {
    let request = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) => {
            // Answer FORMERR when at least the id is there, so the client stops waiting.
            if query.len() < 2 {
                return None;
            }
            let id = u16::from_be_bytes([query[0], query[1]]);
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                .to_vec()
                .ok();
        }
    };
    if request.message_type() != MessageType::Query {
        return None;
    }
    if request.op_code() != OpCode::Query || request.queries().len() != 1 {
        return reply(&request, ResponseCode::NotImp, Vec::new(), false);
    }
    let q = &request.queries()[0];
    let table = ctx.table.borrow().clone();
    let qname = q.name().to_ascii();
    if let Some(ips) = table.lookup(&qname, &ctx.namespace) {
        let answers = ips
            .iter()
            .filter_map(|ip| match (q.query_type(), ip) {
                (RecordType::A, IpAddr::V4(v4)) => Some(RData::A(A(*v4))),
                (RecordType::AAAA, IpAddr::V6(v6)) => Some(RData::AAAA(AAAA(*v6))),
                _ => None,
            })
            .map(|data| Record::from_rdata(q.name().clone(), TTL, data))
            .collect();
        // A mesh name with no address of the asked type: NOERROR with no records, so
        // the client uses the A answer instead of waiting for upstream.
        let bytes = reply(&request, ResponseCode::NoError, answers, true)?;
        // A headless service with many pods can outgrow a UDP answer: say so (TC) and
        // let the client ask again over TCP.
        if !via_tcp && bytes.len() > usize::from(request.max_payload()) {
            let mut m =
                Message::from_vec(&reply(&request, ResponseCode::NoError, Vec::new(), true)?)
                    .ok()?;
            m.set_truncated(true);
            return m.to_vec().ok();
        }
        return Some(bytes);
    }
    match forward(&ctx.upstreams, query, via_tcp).await {
        Some(bytes) => Some(bytes),
        None => reply(&request, ResponseCode::ServFail, Vec::new(), false),
    }
}

fn reply(
    request: &Message,
    code: ResponseCode,
    answers: Vec<Record>,
    authoritative: bool,
) -> Option<Vec<u8>> {
    let mut m = Message::new();
    m.set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(authoritative)
        .set_response_code(code);
    for q in request.queries() {
        m.add_query(q.clone());
    }
    for a in answers {
        m.add_answer(a);
    }
    m.to_vec().ok()
}

/// Tries each upstream in turn over UDP; the first answer with the query's id wins. A
/// truncated answer to a TCP client is fetched again over TCP (a UDP client gets the
/// truncated one and retries over TCP itself).
async fn forward(upstreams: &[SocketAddr], query: &[u8], via_tcp: bool) -> Option<Vec<u8>> {
    let id = [query[0], query[1]];
    for upstream in upstreams {
        let bind: SocketAddr = if upstream.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let attempt = async {
            let socket = UdpSocket::bind(bind).await.ok()?;
            socket.connect(upstream).await.ok()?;
            socket.send(query).await.ok()?;
            let mut buf = vec![0u8; 4096];
            loop {
                let n = socket.recv(&mut buf).await.ok()?;
                // A stray datagram with another id is not our answer.
                if n >= 2 && buf[..2] == id {
                    return Some(buf[..n].to_vec());
                }
            }
        };
        match tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            Ok(Some(answer)) if via_tcp && is_truncated(&answer) => {
                if let Ok(Some(full)) =
                    tokio::time::timeout(UPSTREAM_TIMEOUT, forward_tcp(*upstream, query)).await
                {
                    return Some(full);
                }
                return Some(answer);
            }
            Ok(Some(answer)) => return Some(answer),
            _ => tracing::debug!(%upstream, "DNS upstream did not answer"),
        }
    }
    None
}

/// The TC bit of a DNS header (byte 2, bit 1).
fn is_truncated(message: &[u8]) -> bool {
    message.len() > 2 && message[2] & 0x02 != 0
}

async fn forward_tcp(upstream: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await.ok()?;
    stream
        .write_u16(u16::try_from(query.len()).ok()?)
        .await
        .ok()?;
    stream.write_all(query).await.ok()?;
    let len = stream.read_u16().await.ok()? as usize;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.ok()?;
    (buf.len() >= 2 && buf[..2] == query[..2]).then_some(buf)
}
