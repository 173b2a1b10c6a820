//! Runs the real `ironmesh-sample` binary and talks raw HTTP/1.1 to it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ironmesh-sample");

/// A running role; killed on drop so a failing test leaves nothing behind.
pub struct Sample {
    pub child: Child,
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Sample {
    /// Starts `ironmesh-sample <args> --port 0 --bind 127.0.0.1` with `env` and waits for
    /// its `listening on` line.
    pub fn start(args: &[&str], env: &[(&str, String)]) -> Sample {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env_remove("SERVICE_VERSION")
            .env_remove("HOSTNAME")
            .env_remove("POD_NAME");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ironmesh-sample");
        let stdout = child.stdout.take().expect("stdout piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.parse::<SocketAddr>().expect("address in log line"));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("{args:?} printed no `listening on` line within 20s");
            }
        };
        Sample { child, addr, lines }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The request log so far (the `listening on` line included).
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until a log line contains `needle` (log lines are written after responses).
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(l) = self.log().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} in {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], b"")
    }
}

impl Drop for Sample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Lower-cased names; repeated headers keep the last value.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse(&raw, method == "HEAD")
}

fn parse(raw: &[u8], head_only: bool) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = HashMap::new();
    for line in lines {
        let (k, v) = line.split_once(':').unwrap();
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let body = raw[split + 4..].to_vec();
    assert!(
        !headers.contains_key("transfer-encoding"),
        "the samples send Content-Length, got chunked"
    );
    if !head_only {
        if let Some(len) = headers.get("content-length") {
            assert_eq!(
                len.parse::<usize>().unwrap(),
                body.len(),
                "Content-Length matches body"
            );
        }
    }
    Response {
        status,
        headers,
        body,
    }
}

/// A stand-in upstream that records each request head and answers a fixed JSON body.
pub struct Recorder {
    pub addr: SocketAddr,
    pub heads: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn start(body: &'static str) -> Recorder {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let sink = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => raw.extend_from_slice(&buf[..n]),
                    }
                }
                sink.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&raw).into_owned());
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes());
            }
        });
        Recorder { addr, heads }
    }

    /// Header values of `name` in the recorded requests, lower-cased names compared.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.heads
            .lock()
            .unwrap()
            .iter()
            .flat_map(|h| h.split("\r\n").map(str::to_string).collect::<Vec<_>>())
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim().to_ascii_lowercase() == name).then(|| v.trim().to_string())
            })
            .collect()
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `NAME_HOSTNAME`/`NAME_SERVICE_PORT` pointing a bookinfo service at a loopback port.
pub fn upstream_env(name: &str, port: u16) -> Vec<(&'static str, String)> {
    let (host, port_key) = match name {
        "details" => ("DETAILS_HOSTNAME", "DETAILS_SERVICE_PORT"),
        "reviews" => ("REVIEWS_HOSTNAME", "REVIEWS_SERVICE_PORT"),
        "ratings" => ("RATINGS_HOSTNAME", "RATINGS_SERVICE_PORT"),
        other => panic!("unknown bookinfo service {other}"),
    };
    vec![
        (host, "127.0.0.1".to_string()),
        (port_key, port.to_string()),
    ]
}
