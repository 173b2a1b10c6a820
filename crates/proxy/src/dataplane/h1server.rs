//! The downstream HTTP/1.1 fast path: keep-alive connections of bodiless requests, which
//! is most traffic, served without hyper's connection machinery.
//!
//! The connection's own task parses each request head (`httparse`, header values share
//! the read buffer), runs the router, and writes the response head and body with as few
//! writes as the body allows (one, when the upstream's answer is already buffered). The
//! first request it does not handle (HTTP/1.0, a body, `Upgrade`, `Expect`, `TE`, a
//! `Connection` option other than `close`/`keep-alive`, absolute-form targets, `CONNECT`,
//! the h2c preface, malformed or oversized heads) hands the connection, bytes already
//! read included, to hyper for the rest of its life, so every other behaviour (errors
//! included) stays hyper's. The response framing follows hyper's server rules: an exact
//! body length becomes `content-length`, an unknown one `transfer-encoding: chunked`, no
//! body for `HEAD`/1xx/204/304, `date` added when absent, `connection: close` when the
//! connection ends after the response.

use std::future::poll_fn;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body::RespBody;
use super::detect::Rewind;
use super::http::HttpConn;
use super::rawreq::{self, Class, RawRequest};

/// hyper's default limit on request header fields.
const MAX_HEADERS: usize = 100;
/// Longer heads are left to hyper, which applies its own limits and error replies.
const MAX_HEAD: usize = 64 * 1024;
/// Read buffer size; reused across requests once their header values are dropped.
const READ_BUF: usize = 8 * 1024;
/// Body chunks up to this size are copied behind the head to go out in one write.
const COPY_LIMIT: usize = 16 * 1024;

/// A downstream request head, as far as the fast path is concerned.
// Not boxed: the request moves on into the router by value, as hyper's would.
#[allow(clippy::large_enum_variant)]
enum Head {
    /// A request to serve here; the head's length; whether the client asked to close;
    /// its fields as received when it is plain (`rawreq`; the request's map is empty).
    Ready(Request<Option<Incoming>>, usize, bool, Option<RawRequest>),
    Partial,
    /// Anything else: hyper takes over the connection from this request on.
    Hyper,
}

/// Serves a downstream HTTP connection: HTTP/1.1 here, the rest through hyper.
pub async fn serve<I>(conn: Arc<HttpConn>, mut io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut drain = super::Drained::new(conn.rt.clone());
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let mut out: Vec<u8> = Vec::with_capacity(2048);
    let mut timer = super::deadline::RouteTimer::new();
    // Access logs read the request's fields from a header map.
    let raw_ok = conn.hcm.access_logs.is_empty();
    loop {
        // A complete head, with any bytes after it left in `buf`.
        let (req, close, raw) = loop {
            if !buf.is_empty() {
                let all = buf.split().freeze();
                match parse_head(&all, raw_ok) {
                    Head::Ready(req, n, close, raw) => {
                        if n < all.len() {
                            buf.extend_from_slice(&all[n..]);
                        }
                        break (req, close, raw);
                    }
                    Head::Partial if all.len() < MAX_HEAD => {
                        let mut again = BytesMut::with_capacity(all.len() + READ_BUF);
                        again.extend_from_slice(&all);
                        buf = again;
                    }
                    _ => return super::http::serve_hyper(conn, Rewind::new(all, io)).await,
                }
            }
            if buf.capacity() - buf.len() < READ_BUF / 2 {
                // Reclaims the buffer in place once the last request's values are gone.
                buf.reserve(READ_BUF);
            }
            let read = if buf.is_empty() {
                // Idle between requests: a drain closes the connection now.
                tokio::select! {
                    biased;
                    r = io.read_buf(&mut buf) => r,
                    _ = &mut drain => return,
                }
            } else {
                io.read_buf(&mut buf).await
            };
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let is_head = req.method() == Method::HEAD;

        let resp = {
            // Pinned where it is made: the future is large, and moving it costs a copy.
            let mut routed = std::pin::pin!(super::http::route_request(
                conn.clone(),
                req,
                raw,
                &mut timer,
                true
            ));
            // Meanwhile the client may close (the request is abandoned, as hyper and
            // Envoy do) or pipeline its next request (kept for later).
            let mut watching = true;
            loop {
                tokio::select! {
                    biased;
                    r = &mut routed => break Some(r),
                    r = io.read_buf(&mut buf), if watching => match r {
                        Ok(0) | Err(_) => break None,
                        Ok(_) => watching = buf.len() < MAX_HEAD,
                    },
                }
            }
        };
        let Some(resp) = resp else { return };
        let keep_alive = !close && !conn.rt.is_draining();
        match write_response(&mut io, &mut out, resp, is_head, keep_alive).await {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                let _ = io.shutdown().await;
                return;
            }
        }
    }
}

/// Parses a request head; with `raw_ok` a plain request keeps its fields as received.
fn parse_head(all: &Bytes, raw_ok: bool) -> Head {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    let n = match parsed.parse(all) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Hyper,
    };
    let (Some(1), Some(method), Some(path)) = (parsed.version, parsed.method, parsed.path) else {
        return Head::Hyper;
    };
    if !path.starts_with('/') {
        return Head::Hyper;
    }
    let method = match Method::from_bytes(method.as_bytes()) {
        Ok(m) if m != Method::CONNECT => m,
        _ => return Head::Hyper,
    };
    let Ok(uri) = Uri::from_maybe_shared(all.slice_ref(path.as_bytes())) else {
        return Head::Hyper;
    };
    if raw_ok {
        let mut raw = RawRequest::new(all.clone(), parsed.headers.len());
        let mut close = false;
        let mut plain = true;
        for field in parsed.headers.iter() {
            let (name, value) = (field.name.as_bytes(), field.value);
            let class = rawreq::classify(name, value);
            match class {
                Class::Hyper => return Head::Hyper,
                Class::Connection if value.eq_ignore_ascii_case(b"close") => close = true,
                Class::Connection if value.eq_ignore_ascii_case(b"keep-alive") => {}
                Class::Connection => return Head::Hyper,
                Class::Managed => plain = false,
                Class::Plain | Class::Host => plain &= raw.push(name, value, &class),
            }
            if !plain {
                break;
            }
        }
        if plain {
            return Head::Ready(request(method, uri, HeaderMap::new()), n, close, Some(raw));
        }
    }
    // Room for what the proxy adds (x-request-id, x-forwarded-*, x-envoy-*) without
    // growing the table.
    let mut headers = HeaderMap::with_capacity(parsed.headers.len() + 8);
    let mut close = false;
    for field in parsed.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(field.name.as_bytes()) else {
            return Head::Hyper;
        };
        match name {
            header::CONTENT_LENGTH if field.value != b"0" => return Head::Hyper,
            header::TRANSFER_ENCODING | header::UPGRADE | header::EXPECT | header::TE => {
                return Head::Hyper
            }
            header::CONNECTION => {
                if field.value.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if !field.value.eq_ignore_ascii_case(b"keep-alive") {
                    return Head::Hyper;
                }
            }
            _ => {}
        }
        let Ok(value) = HeaderValue::from_maybe_shared(all.slice_ref(field.value)) else {
            return Head::Hyper;
        };
        headers.append(name, value);
    }
    Head::Ready(request(method, uri, headers), n, close, None)
}

fn request(method: Method, uri: Uri, headers: HeaderMap) -> Request<Option<Incoming>> {
    let mut req = Request::new(None);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    req
}

/// How the response body is delimited on the wire.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    /// No body bytes are written (HEAD, 1xx, 204, 304, or an empty body).
    Nothing,
    Length,
    Chunked,
}

/// Writes one response; `Ok(true)` when the connection stays open for the next request.
async fn write_response<I>(
    io: &mut I,
    out: &mut Vec<u8>,
    resp: Response<RespBody>,
    is_head: bool,
    keep_alive: bool,
) -> io::Result<bool>
where
    I: AsyncWrite + Unpin,
{
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    // A 101 is never asked for on this path (upgrades go to hyper); nothing may follow
    // it. A `connection: close` from the proxy is found below, among the headers.
    let keep_alive = keep_alive && status != StatusCode::SWITCHING_PROTOCOLS;
    let may_have_length = !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED);
    let may_have_body = may_have_length && !is_head;

    out.clear();
    if status == StatusCode::OK && parts.extensions.is_empty() {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        match parts.extensions.get::<hyper::ext::ReasonPhrase>() {
            Some(r) => out.extend_from_slice(r.as_bytes()),
            None => out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
    let mut fields = Fields {
        out,
        may_have_length,
        keep_alive,
        has_length: false,
        has_date: false,
        has_connection: false,
    };
    // An upstream head passed through as bytes: its fields first, minus the hop-by-hop
    // ones (the upstream connection's business) and those the header map replaces.
    if let Some(raw) = body.take_head() {
        let server_replaced = parts.headers.contains_key(header::SERVER);
        for (name, value, line) in raw.lines() {
            let kind = match Kind::of_raw(name) {
                Kind::HopByHop => continue,
                Kind::Server if server_replaced => continue,
                k => k,
            };
            if kind == Kind::Other
                && line.len() == name.len() + 2 + value.len()
                && line[name.len() + 1] == b' '
            {
                // `name: value` as a header map would write it, but for the name's case:
                // one copy of the line.
                fields.put_line(name.len(), line);
            } else {
                fields.put(kind, name, value);
            }
        }
    }
    for (name, value) in parts.headers.iter() {
        fields.put(Kind::of(name), name.as_str().as_bytes(), value.as_bytes());
    }
    let Fields {
        out,
        has_length,
        has_date,
        has_connection,
        keep_alive,
        ..
    } = fields;
    let framing = if !may_have_body || body.is_end_stream() {
        if !has_length && may_have_length && !is_head {
            out.extend_from_slice(b"content-length: 0\r\n");
        }
        Framing::Nothing
    } else if has_length {
        Framing::Length
    } else if let Some(n) = body.size_hint().exact() {
        let _ = write!(out, "content-length: {n}\r\n");
        Framing::Length
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Framing::Chunked
    };
    if !keep_alive && !has_connection {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        date::extend(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    drop(parts);

    if framing == Framing::Nothing {
        // The body ends here (and its telemetry with it), written or not.
        drop(body);
        flush(io, out).await?;
        return Ok(keep_alive);
    }
    // A length-delimited chunk waiting to go out behind `out` in one vectored write,
    // rather than being copied in (most bodies are one chunk).
    let mut held: Option<Bytes> = None;
    loop {
        // Whatever is ready goes out with the head; a body still on its way has the
        // head flushed first, so the client sees it without waiting for the body.
        let frame = match poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await {
            Poll::Ready(f) => f,
            Poll::Pending => {
                send_out(io, out, held.take()).await?;
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let data = match frame {
            None => break,
            // The upstream failed mid-body: the client sees the connection end early.
            Some(Err(_)) => return Ok(false),
            // Trailers need `te: trailers`, which this path never serves.
            Some(Ok(f)) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        if let Some(h) = held.take() {
            append(io, out, h).await?;
        }
        if framing == Framing::Chunked {
            let _ = write!(out, "{:x}\r\n", data.len());
            append(io, out, data).await?;
            out.extend_from_slice(b"\r\n");
        } else {
            held = Some(data);
        }
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    send_out(io, out, held).await?;
    Ok(keep_alive)
}

/// The header fields that framing and connection handling look at.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    ContentLength,
    Date,
    Connection,
    Server,
    /// `transfer-encoding`, and in an upstream's head also `connection`, `keep-alive`,
    /// `proxy-connection` and `upgrade`.
    HopByHop,
    Other,
}

impl Kind {
    fn of(name: &HeaderName) -> Kind {
        match *name {
            header::TRANSFER_ENCODING => Kind::HopByHop,
            header::CONTENT_LENGTH => Kind::ContentLength,
            header::DATE => Kind::Date,
            header::CONNECTION => Kind::Connection,
            _ => Kind::Other,
        }
    }

    /// For a name as an upstream wrote it, in any case.
    fn of_raw(name: &[u8]) -> Kind {
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        // By length first: most names match none of these.
        match name.len() {
            4 if is("date") => Kind::Date,
            6 if is("server") => Kind::Server,
            7 if is("upgrade") => Kind::HopByHop,
            10 if is("connection") || is("keep-alive") => Kind::HopByHop,
            14 if is("content-length") => Kind::ContentLength,
            16 if is("proxy-connection") => Kind::HopByHop,
            17 if is("transfer-encoding") => Kind::HopByHop,
            _ => Kind::Other,
        }
    }
}

/// The response head's header fields as they are written, and what they said.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    may_have_length: bool,
    keep_alive: bool,
    has_length: bool,
    has_date: bool,
    has_connection: bool,
}

impl Fields<'_> {
    fn put(&mut self, kind: Kind, name: &[u8], value: &[u8]) {
        match kind {
            // Framing is this side's business (upstream ones are already stripped).
            Kind::HopByHop => return,
            Kind::ContentLength => {
                if self.has_length || !self.may_have_length || parse_length(value).is_none() {
                    return;
                }
                self.has_length = true;
            }
            Kind::Date => self.has_date = true,
            Kind::Connection => {
                self.has_connection = true;
                if value.eq_ignore_ascii_case(b"close") {
                    self.keep_alive = false;
                }
            }
            Kind::Server | Kind::Other => {}
        }
        // Lower case, as a header map holds names (and Envoy writes them).
        let at = self.out.len();
        self.out.extend_from_slice(name);
        self.out[at..].make_ascii_lowercase();
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
    }

    /// An `Other` field's whole line, `name: value`, its name `name_len` bytes long.
    fn put_line(&mut self, name_len: usize, line: &[u8]) {
        let at = self.out.len();
        self.out.extend_from_slice(line);
        self.out[at..at + name_len].make_ascii_lowercase();
        self.out.extend_from_slice(b"\r\n");
    }
}

fn parse_length(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?.trim();
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Adds `data` behind `out`: copied when small, else written out with it.
async fn append<I: AsyncWrite + Unpin>(
    io: &mut I,
    out: &mut Vec<u8>,
    data: Bytes,
) -> io::Result<()> {
    if data.len() <= COPY_LIMIT {
        out.extend_from_slice(&data);
        return Ok(());
    }
    write_two(io, out, &data).await?;
    out.clear();
    Ok(())
}

/// Sends `out` and then `held`, if any.
async fn send_out<I: AsyncWrite + Unpin>(
    io: &mut I,
    out: &mut Vec<u8>,
    held: Option<Bytes>,
) -> io::Result<()> {
    if let Some(h) = held {
        write_two(io, out, &h).await?;
        out.clear();
    }
    flush(io, out).await
}

async fn flush<I: AsyncWrite + Unpin>(io: &mut I, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    // A no-op on TCP; TLS streams send what they buffered.
    io.flush().await
}

/// Writes `a` then `b`, with vectored writes where the stream supports them.
async fn write_two<I: AsyncWrite + Unpin>(io: &mut I, a: &[u8], b: &[u8]) -> io::Result<()> {
    let (mut a, mut b) = (a, b);
    while !a.is_empty() {
        let bufs = [io::IoSlice::new(a), io::IoSlice::new(b)];
        let n = io.write_vectored(&bufs).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        if n < a.len() {
            a = &a[n..];
        } else {
            b = &b[n - a.len()..];
            a = &[];
        }
    }
    io.write_all(b).await
}

/// The `date` header's value, formatted once per second per thread (as hyper does).
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }

    pub fn extend(out: &mut Vec<u8>) {
        let now = SystemTime::now();
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        CACHED.with(|c| {
            let mut c = c.borrow_mut();
            if c.0 != secs || c.1.is_empty() {
                *c = (secs, httpdate::fmt_http_date(now));
            }
            out.extend_from_slice(c.1.as_bytes());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &'static [u8]) -> Head {
        parse_head(&Bytes::from_static(raw), false)
    }

    #[test]
    fn simple_requests_are_served_here_with_values_from_the_buffer() {
        let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: x:80\r\nX-Dup: 1\r\nx-dup: 2\r\ncontent-length: 0\r\n\r\nGET /next";
        let Head::Ready(req, n, close, _) = head(raw) else {
            panic!("not served here")
        };
        assert_eq!(&raw[n..], b"GET /next");
        assert!(!close);
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.uri().path_and_query().unwrap().as_str(), "/a?b=1");
        assert_eq!(req.headers()["host"], "x:80");
        let dups: Vec<_> = req.headers().get_all("x-dup").iter().collect();
        assert_eq!(dups, ["1", "2"]);
        let Head::Ready(_, _, close, _) = head(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")
        else {
            panic!("not served here")
        };
        assert!(close);
    }

    #[test]
    fn plain_requests_keep_their_fields_as_received() {
        let plain = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept: */*\r\n\r\n";
        let Head::Ready(req, _, close, Some(raw)) = parse_head(&Bytes::from_static(plain), true)
        else {
            panic!("not plain")
        };
        assert!(close);
        assert!(req.headers().is_empty());
        assert_eq!(raw.host(), Some("x"));
        // `connection` is hop-by-hop: not kept.
        assert_eq!(raw.to_header_map().len(), 2);
        for managed in [
            &b"GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nhost: a\r\nHost: b\r\n\r\n",
        ] {
            let Head::Ready(req, _, _, None) = parse_head(&Bytes::from_static(managed), true)
            else {
                panic!("plain: {}", String::from_utf8_lossy(managed))
            };
            assert!(!req.headers().is_empty());
        }
        // Without `raw_ok` (an access log reads the fields) every request has a map.
        assert!(matches!(
            parse_head(&Bytes::from_static(plain), false),
            Head::Ready(_, _, true, None)
        ));
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for raw in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            b"GET / HTTP/1.1\r\nexpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nte: trailers\r\n\r\n",
            b"GET / HTTP/1.1\r\nconnection: keep-alive, x-hop\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"CONNECT x:443 HTTP/1.1\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
        ] {
            for raw_ok in [false, true] {
                assert!(
                    matches!(parse_head(&Bytes::from_static(raw), raw_ok), Head::Hyper),
                    "{}",
                    String::from_utf8_lossy(raw)
                );
            }
        }
        assert!(matches!(head(b"GET / HTTP/1.1\r\nHost: x"), Head::Partial));
    }
}
