//! TCP proxying through the real binary: half-close, idle timeout, TLS passthrough by SNI.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

#[test]
fn tcp_half_close_keeps_the_other_direction_open() {
    let echo = EchoServer::tcp("t");
    let cfg = config(
        vec![tcp_listener(9000, "t", json!({}))],
        vec![],
        vec![eds_cluster("t", "ROUND_ROBIN", false)],
        vec![endpoints("t", &[echo.addr])],
    );
    let p = Proxy::with_config("router", &cfg, &["--bind-port", "9000=127.0.0.1:0"]);
    p.wait_ready();
    let addr = p.addr("0.0.0.0_9000");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"hello ").unwrap();
    s.write_all(b"world").unwrap();
    // The backend answers only after it sees EOF: the answer arriving proves the write
    // side was shut down through the proxy while the read side stayed open.
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(out, "t got 11 bytes: hello world");
}

#[test]
fn tcp_idle_timeout_closes_quiet_connections() {
    let echo = EchoServer::tcp("t");
    let cfg = config(
        vec![tcp_listener(9000, "t", json!({"idleTimeout": "0.5s"}))],
        vec![],
        vec![eds_cluster("t", "ROUND_ROBIN", false)],
        vec![endpoints("t", &[echo.addr])],
    );
    let p = Proxy::with_config("router", &cfg, &["--bind-port", "9000=127.0.0.1:0"]);
    p.wait_ready();
    let mut s = TcpStream::connect(p.addr("0.0.0.0_9000")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"x").unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without data");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
}

/// A minimal TLS ClientHello record carrying `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = vec![0, 0];
    let list_len = name.len() + 3;
    ext.extend(((list_len + 2) as u16).to_be_bytes());
    ext.extend((list_len as u16).to_be_bytes());
    ext.push(0);
    ext.extend((name.len() as u16).to_be_bytes());
    ext.extend(name);
    let mut hello = vec![3, 3];
    hello.extend([1u8; 32]);
    hello.push(0);
    hello.extend([0, 2, 0x13, 0x01, 1, 0]);
    hello.extend((ext.len() as u16).to_be_bytes());
    hello.extend(ext);
    let mut hs = vec![1];
    hs.extend(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend(hello);
    let mut rec = vec![0x16, 3, 1];
    rec.extend((hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

#[test]
fn tls_passthrough_by_sni_at_a_gateway() {
    let a = EchoServer::tcp("a");
    let b = EchoServer::tcp("b");
    let chain = |names: &[&str], cluster: &str| {
        json!({"filterChainMatch": {"serverNames": names},
        "filters": [{"name": "envoy.filters.network.tcp_proxy", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "statPrefix": cluster, "cluster": cluster}}]})
    };
    let listener = json!({"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "0.0.0.0_8443",
        "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 8443}},
        "listenerFilters": [{"name": "envoy.filters.listener.tls_inspector", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}}],
        "filterChains": [chain(&["a.example.com"], "a"), chain(&["*.example.com"], "b")]});
    let cfg = config(
        vec![listener],
        vec![],
        vec![
            eds_cluster("a", "ROUND_ROBIN", false),
            eds_cluster("b", "ROUND_ROBIN", false),
        ],
        vec![endpoints("a", &[a.addr]), endpoints("b", &[b.addr])],
    );
    let p = Proxy::with_config("router", &cfg, &["--bind-port", "8443=127.0.0.1:0"]);
    p.wait_ready();
    let addr = p.addr("0.0.0.0_8443");
    for (sni, want) in [("a.example.com", "a"), ("z.example.com", "b")] {
        let hello = client_hello(sni);
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&hello).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let prefix = format!("{want} got {} bytes: ", hello.len());
        assert!(
            out.starts_with(prefix.as_bytes()),
            "{sni}: {:?}",
            String::from_utf8_lossy(&out)
        );
        assert!(out.ends_with(&hello), "ClientHello forwarded byte for byte");
    }
    // No chain for this name: the connection is closed.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&client_hello("other.org")).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(out.is_empty());
}
