//! Mirror backends: HTTP/1.1 echo servers (keep-alive) that answer every request with `200`
//! (`NNN` for a path under `/status/NNN`, for retry tests) and a JSON description of what
//! they received — their own name, the method, the
//! path with query, and every header — so a test can see exactly what a proxy sent
//! upstream and which backend it chose.
//!
//! Every answer also carries `x-echo-backend: <name>` and `x-echo-drop: yes` (a header
//! for response-header removal to act on).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::net::BoundPort;

/// A running echo server; stops accepting on drop.
pub struct Echo {
    name: String,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    accept: Option<JoinHandle<()>>,
}

impl Echo {
    /// Binds `addr` (its port may be 0) and answers as `name`.
    pub fn start(addr: SocketAddr, name: &str) -> std::io::Result<Echo> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let accept = std::thread::spawn({
            let stop = stop.clone();
            let served = served.clone();
            let name = name.to_string();
            move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let name = name.clone();
                    let served = served.clone();
                    std::thread::spawn(move || serve(conn, &name, &served));
                }
            }
        });
        Ok(Echo {
            name: name.to_string(),
            addr,
            stop,
            served,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Requests answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
}

impl BoundPort for Echo {
    fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// What an echo backend reported about one request (parsed from its JSON answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub backend: String,
    pub method: String,
    pub path: String,
    /// Lower-cased header names → values in arrival order.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// Parses an echo body; `None` when `body` is not one (a proxy's own answer).
    pub fn parse(body: &str) -> Option<Seen> {
        let v: Value = serde_json::from_str(body).ok()?;
        let headers = v["headers"]
            .as_array()?
            .iter()
            .filter_map(|h| Some((h[0].as_str()?.to_string(), h[1].as_str()?.to_string())))
            .collect();
        Some(Seen {
            backend: v["backend"].as_str()?.to_string(),
            method: v["method"].as_str()?.to_string(),
            path: v["path"].as_str()?.to_string(),
            headers,
        })
    }

    /// Every value of header `name`.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Answers requests on one connection until the peer closes it or it idles for 30 s.
fn serve(conn: TcpStream, name: &str, served: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = conn.set_nodelay(true);
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        // Skip blank lines between requests (RFC 9112 §2.2 allows them).
        loop {
            request_line.clear();
            match reader.read_line(&mut request_line) {
                Ok(0) | Err(_) => return,
                Ok(_) if request_line.trim().is_empty() => continue,
                Ok(_) => break,
            }
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        let mut content_length = 0usize;
        let mut close = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                content_length = v.parse().unwrap_or(0);
            }
            if k == "connection" && v.to_ascii_lowercase().contains("close") {
                close = true;
            }
            headers.push(json!([k, v]));
        }
        let mut discard = vec![0u8; content_length];
        if reader.read_exact(&mut discard).is_err() {
            return;
        }
        let mut body = Map::new();
        body.insert("backend".into(), json!(name));
        body.insert("method".into(), json!(method));
        body.insert("path".into(), json!(path));
        body.insert("headers".into(), Value::Array(headers));
        let body = Value::Object(body).to_string();
        served.fetch_add(1, Ordering::SeqCst);
        let status = path
            .strip_prefix("/status/")
            .and_then(|s| s.get(..3)?.parse::<u16>().ok())
            .filter(|c| (200..600).contains(c))
            .unwrap_or(200);
        let answer = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nX-Echo-Backend: {name}\r\n\
             X-Echo-Drop: yes\r\nContent-Length: {}\r\n\r\n{body}",
            if status == 200 { "OK" } else { "Status" },
            body.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() || close {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http;

    #[test]
    fn echoes_what_it_received() {
        let e = Echo::start("127.0.0.1:0".parse().unwrap(), "one").unwrap();
        let r = http::get(
            e.addr(),
            "h.example",
            "/a?b=1",
            &[("X-Test", "v")],
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-echo-backend"), Some("one"));
        let seen = Seen::parse(&r.body).unwrap();
        assert_eq!(
            (
                seen.backend.as_str(),
                seen.method.as_str(),
                seen.path.as_str()
            ),
            ("one", "GET", "/a?b=1")
        );
        assert_eq!(seen.header_values("host"), ["h.example"]);
        assert_eq!(seen.header_values("x-test"), ["v"]);
        assert_eq!(e.served(), 1);
        assert!(Seen::parse("not json").is_none());
    }
}
