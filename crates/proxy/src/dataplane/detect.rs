//! Protocol detection for ports of unknown protocol: what Envoy's `tls_inspector` and
//! `http_inspector` listener filters find out before a filter chain is chosen.
//!
//! The first bytes are READ (not peeked) into a buffer and replayed by [`Rewind`], so the
//! chosen filter chain sees the stream from its first byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What detection found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Detected {
    /// `tls` or `raw_buffer`.
    pub transport: &'static str,
    /// ALPN offered in a TLS ClientHello, or `http/1.1` / `http/1.0` / `h2c` for plaintext HTTP.
    pub application_protocols: Vec<String>,
    /// SNI from a TLS ClientHello.
    pub server_name: Option<String>,
}

/// The most detection reads before giving up on recognising anything.
const MAX_SNIFF: usize = 16 * 1024;

/// A stream whose first bytes were already read; they are returned again first.
pub struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Rewind { prefix, inner }
    }

    pub fn into_parts(self) -> (Bytes, S) {
        (self.prefix, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

enum Verdict {
    NeedMore,
    Done(Detected),
}

const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn raw(alpn: Option<&str>) -> Verdict {
    Verdict::Done(Detected {
        transport: "raw_buffer",
        application_protocols: alpn.map(|a| vec![a.to_string()]).unwrap_or_default(),
        server_name: None,
    })
}

fn classify(buf: &[u8], want_tls: bool, want_http: bool) -> Verdict {
    if buf.is_empty() {
        return Verdict::NeedMore;
    }
    if want_tls && buf[0] == 0x16 {
        if buf.len() < 5 {
            return Verdict::NeedMore;
        }
        if buf[1] != 0x03 {
            return raw(None);
        }
        let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
        if buf.len() < 5 + len {
            return Verdict::NeedMore;
        }
        return match parse_client_hello(&buf[5..5 + len]) {
            Some(d) => Verdict::Done(d),
            None => raw(None),
        };
    }
    if !want_http {
        return raw(None);
    }
    if buf[0] == b'P' && H2_PREFACE.starts_with(&buf[..buf.len().min(H2_PREFACE.len())]) {
        return if buf.len() >= H2_PREFACE.len() {
            raw(Some("h2c"))
        } else {
            Verdict::NeedMore
        };
    }
    // HTTP/1: `METHOD SP target SP HTTP/1.x CRLF`.
    let method_ok = METHODS.iter().any(|m| {
        let n = buf.len().min(m.len() + 1);
        let want = [m.as_bytes(), b" "].concat();
        want[..n] == buf[..n]
    });
    if !method_ok {
        return raw(None);
    }
    match buf.windows(2).position(|w| w == b"\r\n") {
        None => Verdict::NeedMore,
        Some(eol) => {
            let line = &buf[..eol];
            if line.ends_with(b" HTTP/1.1") {
                raw(Some("http/1.1"))
            } else if line.ends_with(b" HTTP/1.0") {
                raw(Some("http/1.0"))
            } else {
                raw(None)
            }
        }
    }
}

/// Reads until the protocol is known, the peer stops sending for `timeout`, or the
/// peer closes. On timeout the connection continues as `raw_buffer` without ALPN (as
/// Envoy's `continue_on_listener_filters_timeout`), so server-first protocols work.
pub async fn sniff(
    stream: &mut TcpStream,
    timeout: Duration,
    want_tls: bool,
    want_http: bool,
) -> io::Result<(Detected, Bytes)> {
    let mut buf = BytesMut::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Verdict::Done(d) = classify(&buf, want_tls, want_http) {
            return Ok((d, buf.freeze()));
        }
        if buf.len() >= MAX_SNIFF {
            return Ok((
                Detected {
                    transport: "raw_buffer",
                    ..Default::default()
                },
                buf.freeze(),
            ));
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => {
                return Ok((
                    Detected {
                        transport: "raw_buffer",
                        ..Default::default()
                    },
                    buf.freeze(),
                ));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// Extracts SNI and ALPN from a TLS ClientHello handshake message.
pub fn parse_client_hello(hs: &[u8]) -> Option<Detected> {
    let mut p = Parser(hs);
    if p.u8()? != 1 {
        return None;
    }
    let len = p.u24()?;
    let mut p = Parser(p.take(len)?);
    p.take(2 + 32)?; // version, random
    let sid = usize::from(p.u8()?);
    p.take(sid)?;
    let cs = usize::from(p.u16()?);
    p.take(cs)?;
    let comp = usize::from(p.u8()?);
    p.take(comp)?;
    let mut out = Detected {
        transport: "tls",
        ..Default::default()
    };
    if p.0.is_empty() {
        return Some(out);
    }
    let ext_len = usize::from(p.u16()?);
    let mut exts = Parser(p.take(ext_len)?);
    while !exts.0.is_empty() {
        let ty = exts.u16()?;
        let len = usize::from(exts.u16()?);
        let mut body = Parser(exts.take(len)?);
        match ty {
            0 => {
                let list = usize::from(body.u16()?);
                let mut l = Parser(body.take(list)?);
                while !l.0.is_empty() {
                    let kind = l.u8()?;
                    let n = usize::from(l.u16()?);
                    let name = l.take(n)?;
                    if kind == 0 {
                        out.server_name = Some(String::from_utf8_lossy(name).to_ascii_lowercase());
                    }
                }
            }
            16 => {
                let list = usize::from(body.u16()?);
                let mut l = Parser(body.take(list)?);
                while !l.0.is_empty() {
                    let n = usize::from(l.u8()?);
                    out.application_protocols
                        .push(String::from_utf8_lossy(l.take(n)?).into_owned());
                }
            }
            _ => {}
        }
    }
    Some(out)
}

struct Parser<'a>(&'a [u8]);

impl<'a> Parser<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> Option<Detected> {
        match classify(buf, true, true) {
            Verdict::Done(d) => Some(d),
            Verdict::NeedMore => None,
        }
    }

    #[test]
    fn http1_needs_the_whole_request_line() {
        assert!(done(b"GET /x HT").is_none());
        let d = done(b"GET /x HTTP/1.1\r\nHost: a\r\n").unwrap();
        assert_eq!(
            (d.transport, d.application_protocols),
            ("raw_buffer", vec!["http/1.1".to_string()])
        );
    }

    #[test]
    fn h2c_preface_and_garbage() {
        assert!(done(b"PRI * HTTP/2.0\r\n").is_none());
        assert_eq!(
            done(H2_PREFACE).unwrap().application_protocols,
            vec!["h2c".to_string()]
        );
        assert!(done(b"\x00\x01binary")
            .unwrap()
            .application_protocols
            .is_empty());
        assert!(done(b"GETX").unwrap().application_protocols.is_empty());
    }

    /// A minimal ClientHello with SNI `foo.example.com` and ALPN `h2`, `http/1.1`.
    fn client_hello() -> Vec<u8> {
        let name = b"foo.example.com";
        let mut sni = vec![];
        sni.extend(((name.len() + 3) as u16).to_be_bytes());
        sni.push(0);
        sni.extend((name.len() as u16).to_be_bytes());
        sni.extend(name);
        let mut alpn_list = vec![];
        for p in [&b"h2"[..], b"http/1.1"] {
            alpn_list.push(p.len() as u8);
            alpn_list.extend(p);
        }
        let mut alpn = (alpn_list.len() as u16).to_be_bytes().to_vec();
        alpn.extend(alpn_list);
        let mut exts = vec![];
        for (ty, body) in [(0u16, sni), (16u16, alpn)] {
            exts.extend(ty.to_be_bytes());
            exts.extend((body.len() as u16).to_be_bytes());
            exts.extend(body);
        }
        let mut hello = vec![3, 3];
        hello.extend([7u8; 32]);
        hello.push(0);
        hello.extend([0, 2, 0x13, 0x01]);
        hello.extend([1, 0]);
        hello.extend((exts.len() as u16).to_be_bytes());
        hello.extend(exts);
        let mut hs = vec![1];
        hs.extend(&(hello.len() as u32).to_be_bytes()[1..]);
        hs.extend(hello);
        let mut rec = vec![0x16, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn tls_client_hello_sni_and_alpn() {
        let rec = client_hello();
        assert!(done(&rec[..rec.len() - 1]).is_none());
        let d = done(&rec).unwrap();
        assert_eq!(d.transport, "tls");
        assert_eq!(d.server_name.as_deref(), Some("foo.example.com"));
        assert_eq!(
            d.application_protocols,
            vec!["h2".to_string(), "http/1.1".to_string()]
        );
    }
}
