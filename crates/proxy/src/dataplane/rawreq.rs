//! A downstream HTTP/1.1 request head kept as the bytes it arrived in, for the
//! common request whose fields the proxy only adds to.
//!
//! The proxy reads or edits a known set of request fields: its own (`x-envoy-*`,
//! `x-request-id`, `x-forwarded-*`), trace context, hop-by-hop fields, timeouts. A
//! request carrying none of them ("plain": most traffic from outside the mesh) has its
//! fields passed on untouched, with the proxy's own appended. For such a request the
//! fast path keeps the field offsets into the read buffer instead of a header map:
//! building a map costs a hashed insert and a reference count per field, and the map
//! was then only walked again to write the upstream head. Anything that edits fields
//! (route header operations, an access log reading them, a hyper-driven upstream) asks
//! for the map ([`RawRequest::to_header_map`]), which holds what the map path would
//! hold at that point.

use bytes::Bytes;

use super::h1client::{self, map_entry, span};
use http::header::{self, HeaderName, HeaderValue};
use http::HeaderMap;

/// A request field: where its name and value start and end in the head's buffer.
#[derive(Clone, Copy)]
struct Field {
    name: (u32, u32),
    value: (u32, u32),
    /// Where its line ends (after CRLF) when it reads exactly `name: value\r\n`, so that
    /// it can be copied as it is but for the name's case; 0 otherwise.
    line_end: u32,
}

/// What the fast path does with a request field, by its name.
#[derive(Debug, PartialEq)]
pub enum Class {
    /// Passed on as it is.
    Plain,
    Host,
    /// `connection: close` / `keep-alive`: read, not passed on (hop-by-hop).
    Connection,
    /// The proxy reads or edits it: the request takes the header-map path.
    Managed,
    /// Not served on the fast path at all (bodies, upgrades, `Expect`, `TE`): hyper's.
    Hyper,
}

/// The class of a field, by its name as received (any case) and its value.
pub fn classify(name: &[u8], value: &[u8]) -> Class {
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    let starts =
        |p: &str| name.len() > p.len() && name[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    match name.len() {
        2 if is("te") => return Class::Hyper,
        2 if is("b3") => return Class::Managed,
        4 if is("host") => return Class::Host,
        6 if is("expect") => return Class::Hyper,
        7 if is("upgrade") => return Class::Hyper,
        10 if is("connection") => return Class::Connection,
        10 if is("keep-alive") => return Class::Managed,
        11 if is("traceparent") => return Class::Managed,
        12 if is("x-request-id") || is("grpc-timeout") => return Class::Managed,
        // Metrics read a gRPC content type off the request.
        12 if is("content-type") => {
            return if value.starts_with(b"application/grpc") {
                Class::Managed
            } else {
                Class::Plain
            };
        }
        14 if is("content-length") => {
            return if value == b"0" {
                Class::Plain
            } else {
                Class::Hyper
            };
        }
        16 if is("proxy-connection") => return Class::Managed,
        17 if is("transfer-encoding") => return Class::Hyper,
        _ => {}
    }
    if name.first().is_some_and(|b| b | 0x20 == b'x')
        && (starts("x-envoy-") || starts("x-b3-") || starts("x-forwarded-"))
    {
        return Class::Managed;
    }
    Class::Plain
}

/// A field value as text where `HeaderValue::to_str` gives it: visible ASCII and tabs.
pub fn text(v: &[u8]) -> Option<&str> {
    is_text(v).then(|| std::str::from_utf8(v).ok()).flatten()
}

fn is_text(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (32..127).contains(&b))
}

/// A plain request's fields (see the module doc), plus what the proxy adds.
pub struct RawRequest {
    buf: Bytes,
    fields: Vec<Field>,
    /// Index of the Host field in `fields`, when its value is text.
    host: Option<usize>,
    /// The Host to send instead of the received one (a rewrite), or where there was none.
    host_override: Option<HeaderValue>,
    /// Fields the proxy adds, in the order added; none share a name with a received
    /// field (a plain request has none of the proxy's).
    added: Vec<(HeaderName, HeaderValue)>,
}

impl RawRequest {
    /// An empty one over the head in `buf`; fields are pushed as the parser finds them.
    pub fn new(buf: Bytes, capacity: usize) -> RawRequest {
        RawRequest {
            buf,
            fields: Vec::with_capacity(capacity),
            host: None,
            host_override: None,
            added: Vec::with_capacity(6),
        }
    }

    /// Adds a received field; `name` and `value` are slices of the buffer. `false` when
    /// it makes the request not plain (a second Host, or one that is not text: the map
    /// path reads such a Host as absent).
    pub fn push(&mut self, name: &[u8], value: &[u8], class: &Class) -> bool {
        if *class == Class::Host {
            if self.host.is_some() || !is_text(value) {
                return false;
            }
            self.host = Some(self.fields.len());
        }
        let (name, value) = (span(&self.buf, name), span(&self.buf, value));
        let end = value.1 as usize;
        let canonical = value.0 == name.1 + 2
            && self.buf[name.1 as usize..value.0 as usize] == *b": "
            && self.buf.get(end..end + 2) == Some(b"\r\n");
        self.fields.push(Field {
            name,
            value,
            line_end: if canonical { value.1 + 2 } else { 0 },
        });
        true
    }

    fn slice(&self, range: (u32, u32)) -> &[u8] {
        h1client::at(&self.buf, range)
    }

    /// The Host to send (as received unless set since), when it is text.
    pub fn host(&self) -> Option<&str> {
        if let Some(v) = &self.host_override {
            return v.to_str().ok();
        }
        let f = self.fields[self.host?];
        // Checked to be text when pushed.
        std::str::from_utf8(self.slice(f.value)).ok()
    }

    /// Whether the Host to send differs from `authority`; `None` without one.
    pub fn host_differs(&self, authority: &str) -> Option<bool> {
        let host = match &self.host_override {
            Some(v) => v.as_bytes(),
            None => self.slice(self.fields[self.host?].value),
        };
        Some(host != authority.as_bytes())
    }

    /// Sets a field the proxy manages: Host, or one of its own (replaced if added
    /// already, else appended).
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) {
        if name == header::HOST {
            self.host_override = Some(value);
        } else if let Some(slot) = self.added.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        } else {
            self.added.push((name, value));
        }
    }

    /// Every value of `name`, received ones first, as a header map would give them.
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
        // A Host override stands in for the received Host.
        let host = (*name == header::HOST)
            .then_some(self.host_override.as_ref())
            .flatten();
        let received = self
            .fields
            .iter()
            .filter(move |f| {
                host.is_none()
                    && self
                        .slice(f.name)
                        .eq_ignore_ascii_case(name.as_str().as_bytes())
            })
            .map(move |f| self.slice(f.value));
        let added = self
            .added
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_bytes());
        host.map(HeaderValue::as_bytes)
            .into_iter()
            .chain(received)
            .chain(added)
    }

    /// The fields as the header-map path holds them at the same point: received ones,
    /// then the proxy's, the Host override in place of the received Host.
    pub fn to_header_map(&self) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(self.fields.len() + self.added.len() + 8);
        for (i, f) in self.fields.iter().enumerate() {
            if Some(i) == self.host {
                if let Some(v) = &self.host_override {
                    h.append(header::HOST, v.clone());
                    continue;
                }
            }
            if let Some((n, v)) = map_entry(&self.buf, f.name, f.value) {
                h.append(n, v);
            }
        }
        if self.host.is_none() {
            if let Some(v) = &self.host_override {
                h.insert(header::HOST, v.clone());
            }
        }
        for (n, v) in &self.added {
            h.insert(n.clone(), v.clone());
        }
        h
    }

    /// The upstream request head: the request line, the received fields (names in
    /// lower case, as the map path and Envoy write them), then the proxy's.
    pub fn encode(&self, method: &http::Method, path: &str) -> Vec<u8> {
        let host_line = |v: &HeaderValue| 6 + v.len() + 2;
        let size = method.as_str().len()
            + path.len()
            + 14
            + self
                .fields
                .iter()
                .map(|f| (f.name.1 - f.name.0) + (f.value.1 - f.value.0) + 4)
                .sum::<u32>() as usize
            + self.host_override.as_ref().map_or(0, host_line)
            + self
                .added
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 4)
                .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        // `name` in lower case already.
        let line = |out: &mut Vec<u8>, name: &[u8], value: &[u8]| {
            out.extend_from_slice(name);
            out.push(b':');
            out.push(b' ');
            out.extend_from_slice(value);
            out.push(b'\r');
            out.push(b'\n');
        };
        let replaced = |i: usize| self.host_override.is_some() && Some(i) == self.host;
        let mut i = 0;
        while i < self.fields.len() {
            let f = self.fields[i];
            if replaced(i) {
                line(
                    &mut out,
                    b"host",
                    self.host_override.as_ref().map_or(b"", |v| v.as_bytes()),
                );
                i += 1;
                continue;
            }
            if f.line_end == 0 {
                let at = out.len();
                line(&mut out, self.slice(f.name), self.slice(f.value));
                out[at..at + (f.name.1 - f.name.0) as usize].make_ascii_lowercase();
                i += 1;
                continue;
            }
            // A run of lines that follow each other in the buffer goes in one copy.
            let start = f.name.0;
            let mut end = f.line_end;
            let mut j = i + 1;
            while j < self.fields.len()
                && self.fields[j].line_end != 0
                && self.fields[j].name.0 == end
                && !replaced(j)
            {
                end = self.fields[j].line_end;
                j += 1;
            }
            let at = out.len();
            out.extend_from_slice(&self.buf[start as usize..end as usize]);
            for g in &self.fields[i..j] {
                let n = at + (g.name.0 - start) as usize;
                out[n..n + (g.name.1 - g.name.0) as usize].make_ascii_lowercase();
            }
            i = j;
        }
        for (n, v) in &self.added {
            line(&mut out, n.as_str().as_bytes(), v.as_bytes());
        }
        // Last, where the map path inserts a Host the client did not send.
        if let (None, Some(v)) = (self.host, &self.host_override) {
            line(&mut out, b"host", v.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request over `head`'s fields, pushed as `h1server` does.
    fn raw(head: &'static [u8]) -> RawRequest {
        let buf = Bytes::from_static(head);
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Request::new(&mut fields);
        parsed.parse(&buf).unwrap();
        let mut r = RawRequest::new(buf.clone(), parsed.headers.len());
        for f in parsed.headers.iter() {
            let class = classify(f.name.as_bytes(), f.value);
            assert!(r.push(f.name.as_bytes(), f.value, &class));
        }
        r
    }

    #[test]
    fn the_proxys_own_fields_and_framing_are_not_plain() {
        for (name, value, class) in [
            ("Host", "a", Class::Host),
            ("User-Agent", "x", Class::Plain),
            ("content-type", "text/plain", Class::Plain),
            ("Content-Type", "application/grpc+proto", Class::Managed),
            ("content-length", "0", Class::Plain),
            ("content-length", "3", Class::Hyper),
            ("Connection", "close", Class::Connection),
            ("X-Request-Id", "1", Class::Managed),
            ("X-Envoy-Upstream-Rq-Timeout-Ms", "5", Class::Managed),
            ("x-envoy-peer-metadata", "m", Class::Managed),
            ("X-Forwarded-For", "1.2.3.4", Class::Managed),
            ("x-forwarded-client-cert", "c", Class::Managed),
            ("X-B3-TraceId", "1", Class::Managed),
            ("b3", "1-2", Class::Managed),
            ("traceparent", "00-1-2-01", Class::Managed),
            ("grpc-timeout", "1S", Class::Managed),
            ("keep-alive", "5", Class::Managed),
            ("proxy-connection", "x", Class::Managed),
            ("x-envoy", "no dash after: plain", Class::Plain),
            ("x-b3", "x", Class::Plain),
            ("TE", "trailers", Class::Hyper),
            ("upgrade", "websocket", Class::Hyper),
            ("Expect", "100-continue", Class::Hyper),
            ("transfer-encoding", "chunked", Class::Hyper),
        ] {
            assert_eq!(classify(name.as_bytes(), value.as_bytes()), class, "{name}");
        }
    }

    #[test]
    fn lookups_encoding_and_the_map_agree() {
        let mut r =
            raw(b"GET / HTTP/1.1\r\nHOST: a:80\r\nX-Dup: 1\r\nAccept: */*\r\nx-dup: 2\r\n\r\n");
        assert_eq!(r.host(), Some("a:80"));
        assert_eq!(r.host_differs("a:80"), Some(false));
        assert_eq!(r.host_differs("a"), Some(true));
        let dup = HeaderName::from_static("x-dup");
        assert_eq!(r.values(&dup).collect::<Vec<_>>(), [b"1", b"2"]);
        r.set(header::HOST, HeaderValue::from_static("b"));
        r.set(
            HeaderName::from_static("x-mine"),
            HeaderValue::from_static("1"),
        );
        r.set(
            HeaderName::from_static("x-mine"),
            HeaderValue::from_static("2"),
        );
        assert_eq!(r.host(), Some("b"));
        assert_eq!(r.host_differs("b"), Some(false));
        assert_eq!(r.values(&header::HOST).collect::<Vec<_>>(), [b"b"]);
        assert_eq!(
            String::from_utf8(r.encode(&http::Method::GET, "/p")).unwrap(),
            "GET /p HTTP/1.1\r\nhost: b\r\nx-dup: 1\r\naccept: */*\r\nx-dup: 2\r\nx-mine: 2\r\n\r\n"
        );
        let m = r.to_header_map();
        assert_eq!(m["host"], "b");
        assert_eq!(m.get_all("x-dup").iter().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(m["x-mine"], "2");
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn only_visible_ascii_is_text() {
        assert_eq!(text(b"a b\tc"), Some("a b\tc"));
        assert_eq!(text("caf\u{e9}".as_bytes()), None);
    }
}
