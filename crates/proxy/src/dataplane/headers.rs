//! Request ids, trace context propagation and small header helpers.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_B3_TRACEID: HeaderName = HeaderName::from_static("x-b3-traceid");
pub const X_B3_SPANID: HeaderName = HeaderName::from_static("x-b3-spanid");
pub const X_B3_PARENTSPANID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
pub const X_B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
pub const B3: HeaderName = HeaderName::from_static("b3");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const EXTERNAL_ADDRESS: HeaderName = HeaderName::from_static("x-envoy-external-address");
pub const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const UPSTREAM_RQ_TIMEOUT: HeaderName =
    HeaderName::from_static("x-envoy-upstream-rq-timeout-ms");
pub const EXPECTED_RQ_TIMEOUT: HeaderName =
    HeaderName::from_static("x-envoy-expected-rq-timeout-ms");
pub const SERVICE_TIME: HeaderName = HeaderName::from_static("x-envoy-upstream-service-time");
pub const ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");
pub const ORIGINAL_PATH: HeaderName = HeaderName::from_static("x-envoy-original-path");
/// The authority the client sent, when a route rewrote it.
pub const ORIGINAL_HOST: HeaderName = HeaderName::from_static("x-envoy-original-host");
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
pub const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_into(out: &mut [u8], v: u128, digits: usize) {
    for (i, b) in out.iter_mut().take(digits).enumerate() {
        let shift = (digits - 1 - i) * 4;
        *b = HEX[((v >> shift) & 0xf) as usize];
    }
}

fn hex_value(v: u128, digits: usize) -> HeaderValue {
    let mut buf = [0u8; 32];
    hex_into(&mut buf, v, digits);
    HeaderValue::from_bytes(&buf[..digits]).expect("hex is a valid header value")
}

/// Every byte's two hex digits: a UUID is formatted a byte, not a digit, at a time.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};

/// A random UUID v4 in its canonical text form, as Envoy generates `x-request-id`.
pub fn uuid_v4() -> HeaderValue {
    let mut v: u128 = rand::random();
    v = (v & !(0xf << 76)) | (0x4 << 76);
    v = (v & !(0x3 << 62)) | (0x2 << 62);
    let mut out = [0u8; 36];
    let mut j = 0;
    for (i, b) in v.to_be_bytes().iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[j] = b'-';
            j += 1;
        }
        out[j..j + 2].copy_from_slice(&HEX_PAIRS[*b as usize]);
        j += 2;
    }
    HeaderValue::from_bytes(&out).expect("uuid is a valid header value")
}

fn new_span_id() -> u64 {
    loop {
        let v: u64 = rand::random();
        if v != 0 {
            return v;
        }
    }
}

/// Continues an incoming trace with a new span for this hop: B3 multi-header
/// (`x-b3-spanid` becomes `x-b3-parentspanid`), B3 single (`b3`) and W3C `traceparent`
/// (parent-id replaced). Starts a new trace (both formats) only when `start` is set and
/// the request carries none.
pub fn propagate_trace(h: &mut HeaderMap, start: bool) {
    let span = new_span_id();
    let mut had = false;
    if h.contains_key(&X_B3_TRACEID) {
        had = true;
        if let Some(old) = h.remove(&X_B3_SPANID) {
            h.insert(X_B3_PARENTSPANID, old);
        }
        h.insert(X_B3_SPANID, hex_value(u128::from(span), 16));
    }
    if let Some(tp) = h.get(&TRACEPARENT).and_then(|v| v.to_str().ok()) {
        // version-traceid(32)-parentid(16)-flags
        let parts: Vec<&str> = tp.split('-').collect();
        if parts.len() >= 4 && parts[1].len() == 32 && parts[2].len() == 16 {
            had = true;
            let v = format!("{}-{}-{:016x}-{}", parts[0], parts[1], span, parts[3]);
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(TRACEPARENT, v);
            }
        }
    }
    if let Some(b3) = h.get(&B3).and_then(|v| v.to_str().ok()) {
        let parts: Vec<&str> = b3.split('-').collect();
        if parts.len() >= 2 {
            had = true;
            let sampled = parts.get(2).map(|s| format!("-{s}")).unwrap_or_default();
            let v = format!("{}-{:016x}{}-{}", parts[0], span, sampled, parts[1]);
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(B3, v);
            }
        }
    }
    if !had && start {
        let trace: u128 = rand::random();
        h.insert(X_B3_TRACEID, hex_value(trace, 32));
        h.insert(X_B3_SPANID, hex_value(u128::from(span), 16));
        h.insert(X_B3_SAMPLED, HeaderValue::from_static("0"));
        let v = format!("00-{trace:032x}-{span:016x}-00");
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(TRACEPARENT, v);
        }
    }
}

/// Parses gRPC's `grpc-timeout` (`<digits><unit>`, unit one of H M S m u n).
pub fn grpc_timeout(v: &HeaderValue) -> Option<Duration> {
    let s = v.to_str().ok()?;
    if s.len() < 2 || s.len() > 9 {
        return None;
    }
    let (n, unit) = s.split_at(s.len() - 1);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A decimal header value, mostly without allocating.
///
/// The values the proxy sets on every request (`x-envoy-upstream-service-time`, the
/// route's `x-envoy-expected-rq-timeout-ms`) repeat: numbers below 1000 come from a
/// table of static values, made once, and a thread reuses its last larger one.
pub fn int_value(n: u64) -> HeaderValue {
    static SMALL: std::sync::OnceLock<Box<[HeaderValue]>> = std::sync::OnceLock::new();
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u64, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    if n < 1000 {
        let table = SMALL.get_or_init(|| {
            (0..1000u64)
                .map(|i| HeaderValue::from_static(Box::leak(i.to_string().into_boxed_str())))
                .collect()
        });
        return table[n as usize].clone();
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((m, v)) if *m == n => v.clone(),
            _ => {
                let v = HeaderValue::from(n);
                *last = Some((n, v.clone()));
                v
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_values_from_the_tables_and_not() {
        for n in [0, 7, 999, 1000, 15000, 15000, 16000, u64::MAX] {
            assert_eq!(int_value(n).to_str().unwrap(), n.to_string());
        }
    }

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        let s = u.to_str().unwrap();
        assert_eq!(s.len(), 36);
        let groups: Vec<usize> = s.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{s}");
        assert!(s
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        assert_ne!(uuid_v4(), uuid_v4());
    }

    #[test]
    fn b3_and_w3c_new_span_per_hop() {
        let mut h = HeaderMap::new();
        h.insert(
            X_B3_TRACEID,
            HeaderValue::from_static("463ac35c9f6413ad48485a3953bb6124"),
        );
        h.insert(X_B3_SPANID, HeaderValue::from_static("a2fb4a1d1a96d312"));
        h.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        propagate_trace(&mut h, false);
        assert_eq!(h[&X_B3_PARENTSPANID], "a2fb4a1d1a96d312");
        assert_ne!(h[&X_B3_SPANID], "a2fb4a1d1a96d312");
        assert_eq!(h[&X_B3_TRACEID], "463ac35c9f6413ad48485a3953bb6124");
        let tp = h[&TRACEPARENT].to_str().unwrap();
        assert!(
            tp.starts_with("00-0af7651916cd43dd8448eb211c80319c-") && tp.ends_with("-01"),
            "{tp}"
        );
        assert!(!tp.contains("b7ad6b7169203331"));
        let mut none = HeaderMap::new();
        propagate_trace(&mut none, false);
        assert!(none.is_empty());
        propagate_trace(&mut none, true);
        assert_eq!(none[&X_B3_TRACEID].len(), 32);
    }

    #[test]
    fn grpc_timeouts() {
        assert_eq!(
            grpc_timeout(&HeaderValue::from_static("100m")),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            grpc_timeout(&HeaderValue::from_static("2S")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(grpc_timeout(&HeaderValue::from_static("x")), None);
    }
}

/// The address a `use_remote_address` listener appends to `x-forwarded-for` for a
/// client at `peer`. Like Envoy, a loopback client is named by this host's own address
/// (the first non-loopback address of the same family on an interface), because
/// "127.0.0.1" tells the upstream nothing about where the request came from.
pub fn xff_address(peer: std::net::IpAddr) -> std::net::IpAddr {
    if !peer.is_loopback() {
        return peer;
    }
    static V4: std::sync::OnceLock<Option<std::net::IpAddr>> = std::sync::OnceLock::new();
    static V6: std::sync::OnceLock<Option<std::net::IpAddr>> = std::sync::OnceLock::new();
    let cell = if peer.is_ipv4() { &V4 } else { &V6 };
    cell.get_or_init(|| local_address(peer.is_ipv4()))
        .unwrap_or(peer)
}

fn local_address(v4: bool) -> Option<std::net::IpAddr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        let addr = ifa.address?;
        let ip = if v4 {
            std::net::IpAddr::V4(addr.as_sockaddr_in()?.ip())
        } else {
            std::net::IpAddr::V6(addr.as_sockaddr_in6()?.ip())
        };
        (!ip.is_loopback()).then_some(ip)
    })
}

#[cfg(test)]
mod xff_tests {
    use super::xff_address;

    #[test]
    fn only_loopback_clients_are_replaced() {
        let pod: std::net::IpAddr = "10.213.0.7".parse().unwrap();
        assert_eq!(xff_address(pod), pod);
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let got = xff_address(lo);
        // On a host with only loopback there is nothing better to say.
        let has_other = nix::ifaddrs::getifaddrs().unwrap().any(|i| {
            i.address
                .and_then(|a| a.as_sockaddr_in().map(|s| !s.ip().is_loopback()))
                == Some(true)
        });
        assert_eq!(got.is_loopback(), !has_other, "{got}");
    }
}
