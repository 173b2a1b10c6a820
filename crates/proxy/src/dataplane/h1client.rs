//! The HTTP/1.1 upstream client for the common request: no body, no upgrade, to an
//! HTTP/1.1 upstream. It runs in the request's own task, writing the head and reading
//! the response from the socket directly, where hyper's client would hand the request
//! to a per-connection task over channels and pass the body back the same way (several
//! task wake-ups per request, the largest cost left in profiles of the proxy).
//! Requests with a body, upgrades and HTTP/2 keep using hyper (`upstream`).
//!
//! Connections are pooled per worker thread (`IDLE`), like hyper's in `upstream`. A
//! pooled connection is checked for a close by the upstream from the readiness tokio
//! already has (no syscall); one that still fails before any byte of the answer is
//! retried once on a new connection, which is safe because no body was sent.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::upstream::{connect, ConnectError, PoolKey, SendError};

/// Largest response head accepted (Envoy's default `max_request_headers_kb` is 60).
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in a response head.
const MAX_HEADERS: usize = 128;
/// Most idle connections kept per upstream host and worker.
const MAX_IDLE: usize = 64;

/// Boxed wherever it goes (`Box<Conn>`): made once per connection, it then moves with
/// every request through the pool, the exchange and the response body.
pub struct Conn {
    io: TcpStream,
    buf: BytesMut,
    local: SocketAddr,
    key: PoolKey,
}

thread_local! {
    // Boxes, not `Conn`s: a pooled connection leaves the pool with the next request.
    #[allow(clippy::vec_box)]
    static IDLE: RefCell<HashMap<PoolKey, Vec<Box<Conn>>, foldhash::fast::RandomState>> =
        RefCell::new(HashMap::default());
}

fn take_idle(key: PoolKey) -> Option<Box<Conn>> {
    IDLE.with(|m| m.borrow_mut().get_mut(&key).and_then(Vec::pop))
}

fn give_back(conn: Box<Conn>) {
    IDLE.with(|m| {
        let mut m = m.borrow_mut();
        let idle = m.entry(conn.key).or_default();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    });
}

impl Conn {
    /// Whether the upstream closed (or wrote unasked) while the connection sat idle.
    /// Readable readiness on an idle connection means EOF, a reset or stray bytes.
    fn closed_while_idle(&mut self, cx: &mut Context<'_>) -> bool {
        match self.io.poll_read_ready(cx) {
            Poll::Pending => false,
            Poll::Ready(Err(_)) => true,
            Poll::Ready(Ok(())) => !matches!(
                self.io.try_read_buf(&mut self.buf),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            ),
        }
    }
}

/// The upstream's answer: head, body, and the local address the request left from.
pub struct Answer {
    pub status: StatusCode,
    pub version: Version,
    /// The head's header fields as received (framing headers included).
    pub head: RawHead,
    pub body: H1Body,
    pub local: SocketAddr,
}

impl Answer {
    /// The response, its header fields parsed into a map (values share the head's
    /// bytes); `transfer-encoding` is left out, framing being the proxy's business
    /// downstream.
    pub fn into_response(self) -> Response<H1Body> {
        let headers = self.head.to_header_map();
        response(self.status, self.version, headers, self.body)
    }

    /// The response with an empty header map and the head's fields kept, as bytes, in
    /// the body ([`H1Body::take_head`]): for a downstream HTTP/1.1 writer that copies
    /// them out as they are, minus what it replaces. Most responses are passed on
    /// unedited, and building a map of their fields only to write it out again costs
    /// a hashed insert and a shared-buffer reference count per field.
    pub fn into_passthrough_response(mut self) -> Response<H1Body> {
        self.body.head = Some(self.head);
        response(self.status, self.version, HeaderMap::new(), self.body)
    }
}

fn response(
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: H1Body,
) -> Response<H1Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.version_mut() = version;
    *resp.headers_mut() = headers;
    resp
}

/// A response head's header fields, kept as the bytes they arrived in. httparse has
/// validated them against the same grammar `HeaderName` and `HeaderValue` check (token
/// names; values without control characters other than tab), so converting them later
/// cannot fail.
pub struct RawHead {
    bytes: Bytes,
    /// Each field's name and value (trimmed, as httparse gives it) in `bytes`.
    fields: Vec<RawField>,
}

#[derive(Clone, Copy)]
struct RawField {
    name: (u32, u32),
    value: (u32, u32),
}

impl RawHead {
    fn slice(&self, range: (u32, u32)) -> &[u8] {
        at(&self.bytes, range)
    }

    /// Every field in the order received: name (in the case the upstream wrote it) and
    /// value.
    pub fn fields(&self) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> + '_ {
        self.fields
            .iter()
            .map(|f| (self.slice(f.name), self.slice(f.value)))
    }

    /// Every field as in [`RawHead::fields`], with its line as received from the start
    /// of the name to the end of the (trimmed) value.
    pub fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8], &[u8])> + '_ {
        self.fields.iter().map(|f| {
            (
                self.slice(f.name),
                self.slice(f.value),
                self.slice((f.name.0, f.value.1)),
            )
        })
    }

    /// The values of the fields named `name` (lower case), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl DoubleEndedIterator<Item = &'a [u8]> + 'a {
        self.fields()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Drops the fields with any of `names` (lower case): they are not passed on.
    pub fn remove(&mut self, names: &[&str]) {
        let bytes = &self.bytes;
        self.fields.retain(|f| {
            let name = at(bytes, f.name);
            !names
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        });
    }

    /// The fields as a header map, without `transfer-encoding`; values share the head's
    /// bytes.
    pub fn to_header_map(&self) -> HeaderMap {
        // Room for what the proxy adds (`server`, `x-envoy-upstream-service-time`,
        // `date`) without growing the table.
        let mut map = HeaderMap::with_capacity(self.fields.len() + 4);
        for f in &self.fields {
            match map_entry(&self.bytes, f.name, f.value) {
                Some((name, _)) if name == header::TRANSFER_ENCODING => {}
                Some((name, value)) => {
                    map.append(name, value);
                }
                None => {}
            }
        }
        map
    }
}

/// The bytes of `head` from `start` to `end` (a field's name or value).
pub(super) fn at(head: &[u8], (start, end): (u32, u32)) -> &[u8] {
    &head[start as usize..end as usize]
}

/// Where `s`, a slice of `head` (at most 4 GiB), starts and ends in it.
pub(super) fn span(head: &[u8], s: &[u8]) -> (u32, u32) {
    let start = (s.as_ptr() as usize - head.as_ptr() as usize) as u32;
    (start, start + s.len() as u32)
}

/// A parsed field of `head` as a header map entry, the value sharing the buffer. httparse
/// checked both already (names are tokens, values have no controls), as these
/// conversions do, so `None` is not expected.
pub(super) fn map_entry(
    head: &Bytes,
    name: (u32, u32),
    value: (u32, u32),
) -> Option<(HeaderName, HeaderValue)> {
    let name = HeaderName::from_bytes(at(head, name)).ok()?;
    let value = HeaderValue::from_maybe_shared(head.slice(value.0 as usize..value.1 as usize));
    Some((name, value.ok()?))
}

/// Sends a bodiless request (`head` is its encoded head, see [`encode_head`]).
/// `idempotent` (RFC 9110 §9.2.2) allows resending it when a pooled connection fails
/// before any byte of the answer.
pub async fn send(
    key: PoolKey,
    connect_timeout: Duration,
    head: &[u8],
    is_head: bool,
    idempotent: bool,
) -> Result<Answer, SendError> {
    let mut pooled = None;
    while let Some(mut c) = take_idle(key) {
        if !std::future::poll_fn(|cx| Poll::Ready(c.closed_while_idle(cx))).await {
            pooled = Some(c);
            break;
        }
    }
    if let Some(c) = pooled {
        match exchange(c, head, is_head).await {
            Ok(a) => return Ok(a),
            // Closed under us before answering: the same request on a new connection.
            Err(Failure::BeforeAnswer(_)) if idempotent => {}
            Err(Failure::BeforeAnswer(e)) => return Err(SendError::Reset(e)),
            Err(Failure::Other(e)) => return Err(SendError::Reset(e)),
        }
    }
    // Boxed: connecting is rare, and its state would grow every request's future.
    let io = Box::pin(connect(key.addr, key.bind, connect_timeout))
        .await
        .map_err(SendError::Connect)?;
    let local = io
        .local_addr()
        .map_err(|e| SendError::Connect(ConnectError::Io(e)))?;
    let c = Box::new(Conn {
        io,
        buf: BytesMut::with_capacity(8 * 1024),
        local,
        key,
    });
    match exchange(c, head, is_head).await {
        Ok(a) => Ok(a),
        Err(Failure::BeforeAnswer(e) | Failure::Other(e)) => Err(SendError::Reset(e)),
    }
}

enum Failure {
    /// Nothing of a response arrived: safe to resend a bodiless request.
    BeforeAnswer(String),
    Other(String),
}

async fn exchange(mut c: Box<Conn>, head: &[u8], is_head: bool) -> Result<Answer, Failure> {
    c.buf.clear();
    c.io.write_all(head)
        .await
        .map_err(|e| Failure::BeforeAnswer(e.to_string()))?;
    loop {
        if !c.buf.is_empty() {
            match parse_head(&mut c.buf).map_err(Failure::Other)? {
                Parsed::Partial => {}
                Parsed::Informational(n) => {
                    c.buf.advance(n);
                    continue;
                }
                Parsed::Complete(status, version, head, seen) => {
                    let framing = framing(status, &head, seen, is_head).map_err(Failure::Other)?;
                    let reusable = version == Version::HTTP_11
                        && !(seen.connection && has_token(&head, "connection", "close"))
                        && !matches!(framing, Framing::UntilClose);
                    let local = c.local;
                    let mut body = H1Body {
                        conn: Some(c),
                        state: State::from(framing),
                        reusable,
                        trailers: None,
                        head: None,
                    };
                    body.release_if_done();
                    return Ok(Answer {
                        status,
                        version,
                        head,
                        body,
                        local,
                    });
                }
            }
        }
        if c.buf.len() >= MAX_HEAD {
            return Err(Failure::Other(format!(
                "response head larger than {MAX_HEAD} bytes"
            )));
        }
        c.buf.reserve(4096);
        let before = c.buf.is_empty();
        match read_more(&mut c).await {
            Ok(0) if before => {
                return Err(Failure::BeforeAnswer(
                    "connection closed before a response".into(),
                ))
            }
            Ok(0) => return Err(Failure::Other("connection closed mid-head".into())),
            Ok(_) => {}
            Err(e) if before => return Err(Failure::BeforeAnswer(e.to_string())),
            Err(e) => return Err(Failure::Other(e.to_string())),
        }
    }
}

async fn read_more(c: &mut Conn) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_read_more(&mut c.io, &mut c.buf, cx)).await
}

fn poll_read_more(
    io: &mut TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(8 * 1024);
    }
    // Through `AsyncRead` rather than `try_read_buf`: tokio clears the readiness after
    // a short read, so the next exchange on this connection does not begin with a
    // `recv` that can only say EAGAIN (one wasted syscall per request otherwise).
    let read = tokio::io::AsyncReadExt::read_buf(io, buf);
    std::pin::pin!(read).poll(cx)
}

/// Encodes an origin-form HTTP/1.1 request head.
pub fn encode_head(method: &Method, path: &str, headers: &HeaderMap) -> Vec<u8> {
    // Sized up front: the proxy's own headers make most heads outgrow a guess.
    let size = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + method.as_str().len()
        + path.len()
        + 14;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

enum Parsed {
    Partial,
    /// A 1xx head other than 101, `n` bytes long, to skip.
    Informational(usize),
    /// A final head, already taken out of the buffer, and which framing headers it has.
    Complete(StatusCode, Version, RawHead, Seen),
}

/// The framing headers a response head carries, noted while parsing it so that the
/// (usual) absent ones cost no lookups.
#[derive(Clone, Copy, Default)]
struct Seen {
    transfer_encoding: bool,
    content_length: bool,
    connection: bool,
}

/// Parses a response head at the start of `buf`. A complete final head is taken out of
/// `buf`; its header values point into it (shared `Bytes`) rather than being copied.
fn parse_head(buf: &mut BytesMut) -> Result<Parsed, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let n = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(format!("invalid response head: {e}")),
    };
    let code = r.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| format!("invalid status {code}"))?;
    if status.is_informational() {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err("101 Switching Protocols to a request that asked no upgrade".into());
        }
        return Ok(Parsed::Informational(n));
    }
    let version = if r.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // Where each name and value sit in the buffer (the head is at most 64 KiB).
    let mut seen = Seen::default();
    let mut fields = Vec::with_capacity(r.headers.len());
    for h in r.headers.iter() {
        let name = h.name.as_bytes();
        fields.push(RawField {
            name: span(buf, name),
            value: span(buf, h.value),
        });
        match name.len() {
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => seen.transfer_encoding = true,
            14 if name.eq_ignore_ascii_case(b"content-length") => seen.content_length = true,
            10 if name.eq_ignore_ascii_case(b"connection") => seen.connection = true,
            _ => {}
        }
    }
    let bytes = buf.split_to(n).freeze();
    Ok(Parsed::Complete(
        status,
        version,
        RawHead { bytes, fields },
        seen,
    ))
}

fn has_token(head: &RawHead, name: &str, token: &str) -> bool {
    head.values(name).any(|v| {
        std::str::from_utf8(v)
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// RFC 9112 §6.3, in its order.
fn framing(s: StatusCode, head: &RawHead, seen: Seen, is_head: bool) -> Result<Framing, String> {
    if is_head || s == StatusCode::NO_CONTENT || s == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    let last_te = if seen.transfer_encoding {
        head.values("transfer-encoding").next_back()
    } else {
        None
    };
    if let Some(te) = last_te {
        let last_is_chunked = std::str::from_utf8(te)
            .ok()
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        return Ok(if last_is_chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    let lengths = seen.content_length.then(|| head.values("content-length"));
    for v in lengths.into_iter().flatten() {
        let n: u64 = std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("invalid content-length {:?}", String::from_utf8_lossy(v)))?;
        if length.is_some_and(|l| l != n) {
            return Err("conflicting content-length headers".into());
        }
        length = Some(n);
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

enum State {
    Length(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// Inside a chunk, this many bytes left.
    ChunkData(u64),
    /// After a chunk's data: its CRLF.
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

impl From<Framing> for State {
    fn from(f: Framing) -> State {
        match f {
            Framing::Empty => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        }
    }
}

/// A response body read from the upstream connection as the downstream asks for it;
/// the connection goes back to this worker's pool when the body ends.
pub struct H1Body {
    conn: Option<Box<Conn>>,
    state: State,
    reusable: bool,
    // Boxed: rare, and the body moves with the response.
    trailers: Option<Box<HeaderMap>>,
    /// The response head's fields, when the response left them out of its header map
    /// ([`Answer::into_passthrough_response`]).
    head: Option<RawHead>,
}

impl H1Body {
    /// The head's fields that the response's header map left out, if it did: the
    /// writer of the response head must write them.
    pub fn take_head(&mut self) -> Option<RawHead> {
        self.head.take()
    }

    fn release_if_done(&mut self) {
        if matches!(self.state, State::Done) {
            if let Some(c) = self.conn.take() {
                if self.reusable && c.buf.is_empty() {
                    give_back(c);
                }
            }
        }
    }

    fn fail(&mut self, msg: impl Into<String>) -> FramePoll {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(BodyError(msg.into()))))
    }
}

type FramePoll = Poll<Option<Result<Frame<Bytes>, BodyError>>>;

/// The upstream connection failed mid-body.
#[derive(Debug)]
pub struct BodyError(String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream body: {}", self.0)
    }
}

impl std::error::Error for BodyError {}

impl Body for H1Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> FramePoll {
        let this = &mut *self;
        loop {
            let Some(c) = this.conn.as_mut() else {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(*t))));
            };
            if c.buf.is_empty() && !matches!(this.state, State::Done) {
                match ready!(poll_read_more(&mut c.io, &mut c.buf, cx)) {
                    Ok(0) if matches!(this.state, State::UntilClose) => {
                        this.state = State::Done;
                        this.conn = None;
                        continue;
                    }
                    Ok(0) => return this.fail("connection closed before the end of the body"),
                    Ok(_) => {}
                    Err(e) => return this.fail(e.to_string()),
                }
            }
            match this.state {
                State::Done => {
                    this.release_if_done();
                    this.conn = None;
                    continue;
                }
                State::Length(rem) | State::ChunkData(rem) => {
                    let n = (c.buf.len() as u64).min(rem) as usize;
                    let data = c.buf.split_to(n).freeze();
                    let rem = rem - n as u64;
                    this.state = match this.state {
                        State::Length(_) if rem == 0 => State::Done,
                        State::Length(_) => State::Length(rem),
                        _ if rem == 0 => State::ChunkEnd,
                        _ => State::ChunkData(rem),
                    };
                    this.release_if_done();
                    if !data.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                State::UntilClose => {
                    let data = c.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::ChunkEnd => {
                    if c.buf.len() < 2 {
                        if let Err(e) = need_more(c, cx) {
                            return e;
                        }
                        continue;
                    }
                    if &c.buf[..2] != b"\r\n" {
                        return this.fail("chunk not followed by CRLF");
                    }
                    c.buf.advance(2);
                    this.state = State::ChunkSize;
                }
                State::ChunkSize => {
                    let Some(end) = find_crlf(&c.buf) else {
                        if c.buf.len() > 1024 {
                            return this.fail("chunk-size line too long");
                        }
                        if let Err(e) = need_more(c, cx) {
                            return e;
                        }
                        continue;
                    };
                    let line = &c.buf[..end];
                    let digits = line.split(|b| *b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(digits)
                        .ok()
                        .and_then(|d| u64::from_str_radix(d.trim(), 16).ok());
                    let Some(size) = size else {
                        return this.fail("invalid chunk size");
                    };
                    c.buf.advance(end + 2);
                    this.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::Trailers => {
                    let Some(end) = find_crlf(&c.buf) else {
                        if c.buf.len() > MAX_HEAD {
                            return this.fail("trailers too large");
                        }
                        if let Err(e) = need_more(c, cx) {
                            return e;
                        }
                        continue;
                    };
                    if end == 0 {
                        c.buf.advance(2);
                        this.state = State::Done;
                        this.release_if_done();
                        this.conn = None;
                        continue;
                    }
                    let line = c.buf.split_to(end + 2);
                    if let Some((k, v)) = line[..end]
                        .iter()
                        .position(|b| *b == b':')
                        .map(|i| (&line[..i], &line[i + 1..end]))
                    {
                        if let (Ok(k), Ok(v)) = (
                            HeaderName::from_bytes(k.trim_ascii()),
                            HeaderValue::from_bytes(v.trim_ascii()),
                        ) {
                            this.trailers
                                .get_or_insert_with(Default::default)
                                .append(k, v);
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done if self.trailers.is_none() => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// Reads more into an incomplete buffer: `Err` carries the poll result to return.
fn need_more(c: &mut Conn, cx: &mut Context<'_>) -> Result<(), FramePoll> {
    match poll_read_more(&mut c.io, &mut c.buf, cx) {
        Poll::Pending => Err(Poll::Pending),
        Poll::Ready(Ok(0)) => Err(Poll::Ready(Some(Err(BodyError(
            "connection closed inside a chunk".into(),
        ))))),
        Poll::Ready(Ok(_)) => Ok(()),
        Poll::Ready(Err(e)) => Err(Poll::Ready(Some(Err(BodyError(e.to_string()))))),
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A one-connection upstream that answers each request head with the next canned
    /// response, then closes.
    async fn upstream(
        responses: Vec<&'static [u8]>,
    ) -> (PoolKey, tokio::task::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut heads = Vec::new();
            let mut buf = Vec::new();
            for r in responses {
                loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        heads.push(String::from_utf8_lossy(&buf[..i]).into_owned());
                        buf.drain(..i + 4);
                        break;
                    }
                    let mut tmp = [0u8; 4096];
                    let n = s.read(&mut tmp).await.unwrap();
                    if n == 0 {
                        return heads;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                }
                s.write_all(r).await.unwrap();
            }
            heads
        });
        let key = PoolKey {
            addr,
            h2: false,
            bind: None,
        };
        (key, task)
    }

    async fn get(key: PoolKey) -> (Response<()>, Bytes, Option<HeaderMap>) {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("x"));
        let head = encode_head(&Method::GET, "/p?q=1", &h);
        let a = send(key, Duration::from_secs(1), &head, false, true)
            .await
            .unwrap();
        let (parts, body) = a.into_response().into_parts();
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        (
            Response::from_parts(parts, ()),
            collected.to_bytes(),
            trailers,
        )
    }

    #[tokio::test]
    async fn length_chunked_and_informational_responses_over_one_pooled_connection() {
        let (key, server) = upstream(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\nx-a: 2\r\n\r\nhello",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 9\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let (r, body, _) = get(key).await;
        assert_eq!(r.status(), 200);
        assert_eq!(body, "hello");
        assert_eq!(r.headers().get_all("x-a").iter().count(), 2);
        let (r, body, trailers) = get(key).await;
        assert_eq!(r.status(), 201);
        assert_eq!(body, "abcde");
        assert!(r.headers().get(header::TRANSFER_ENCODING).is_none());
        assert_eq!(trailers.unwrap()["x-t"], "9");
        let (r, body, _) = get(key).await;
        assert_eq!(r.status(), 204);
        assert!(body.is_empty());
        let heads = server.await.unwrap();
        assert_eq!(
            heads.len(),
            3,
            "all three went over the one pooled connection"
        );
        assert!(
            heads[0].starts_with("GET /p?q=1 HTTP/1.1\r\nhost: x"),
            "{}",
            heads[0]
        );
    }

    #[tokio::test]
    async fn a_passed_through_head_keeps_its_fields_as_received() {
        let (key, _server) = upstream(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a=1\r\nX-A:  v \r\nset-cookie: b=2\r\nTransfer-Encoding: identity\r\n\r\nok",
        ])
        .await;
        let head = encode_head(&Method::GET, "/", &HeaderMap::new());
        let a = send(key, Duration::from_secs(1), &head, false, true)
            .await
            .unwrap();
        let mut resp = a.into_passthrough_response();
        assert!(resp.headers().is_empty(), "the fields stay out of the map");
        let raw = resp
            .body_mut()
            .take_head()
            .expect("the head rides in the body");
        let fields: Vec<(&[u8], &[u8])> = raw.fields().collect();
        assert_eq!(
            fields,
            [
                (&b"Content-Length"[..], &b"2"[..]),
                (b"Set-Cookie", b"a=1"),
                (b"X-A", b"v"),
                (b"set-cookie", b"b=2"),
                (b"Transfer-Encoding", b"identity"),
            ]
        );
        let cookies: Vec<_> = raw.values("set-cookie").collect();
        assert_eq!(cookies, [&b"a=1"[..], b"b=2"]);
        let map = raw.to_header_map();
        assert_eq!(map.get_all("set-cookie").iter().count(), 2);
        assert_eq!(map["x-a"], "v");
        assert!(map.get("transfer-encoding").is_none());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "ok");
    }

    #[tokio::test]
    async fn a_pooled_connection_the_upstream_closed_is_replaced() {
        // The first upstream answers once and closes; the retry must connect anew.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..2 {
                let (mut s, _) = l.accept().await.unwrap();
                let mut tmp = [0u8; 4096];
                let _ = s.read(&mut tmp).await.unwrap();
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .unwrap();
                // Let the proxy return it to the pool, then close.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let key = PoolKey {
            addr,
            h2: false,
            bind: None,
        };
        assert_eq!(get(key).await.1, "ok");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(get(key).await.1, "ok");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn until_close_bodies_and_bad_heads() {
        let (key, _server) = upstream(vec![b"HTTP/1.0 200 OK\r\n\r\nall of it"]).await;
        let (r, body, _) = get(key).await;
        assert_eq!(r.version(), Version::HTTP_10);
        assert_eq!(body, "all of it");

        let (key, _server) = upstream(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
        ])
        .await;
        let head = encode_head(&Method::GET, "/", &HeaderMap::new());
        assert!(matches!(
            send(key, Duration::from_secs(1), &head, false, true).await,
            Err(SendError::Reset(e)) if e.contains("conflicting content-length")
        ));
    }
}
