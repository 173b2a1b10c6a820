//! Support for proxy_cli.rs: a loopback HTTP server standing in for the control plane
//! and a proxy admin port, and helpers to run the `ironmesh` binary.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_ironmesh");
pub const PRODUCTPAGE: &str = "productpage-v1-6b7f6db5c4-x2x9k.default";
pub const PRODUCTPAGE_ID: &str =
    "sidecar~10.244.0.11~productpage-v1-6b7f6db5c4-x2x9k.default~default.svc.cluster.local";

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

pub fn read(name: &str) -> String {
    std::fs::read_to_string(testdata(name)).unwrap_or_else(|e| panic!("testdata/{name}: {e}"))
}

// ---------------------------------------------------------------- fake HTTP server

/// A loopback HTTP/1.1 server answering GETs from a fixed table of `path?query` →
/// body; anything else is a 404. Stops (and joins its thread) on drop.
pub struct FakeServer {
    pub addr: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub fn start(routes: Vec<(String, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                serve(conn, &routes, &seen2);
            }
        });
        FakeServer {
            addr,
            stop,
            seen,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, routes: &[(String, String)], seen: &Mutex<Vec<String>>) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    seen.lock().unwrap().push(target.clone());
    let (status, body) = match routes.iter().find(|(p, _)| *p == target) {
        Some((_, body)) => ("200 OK", body.clone()),
        None => ("404 Not Found", format!("unknown proxy or path {target}\n")),
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
}

/// The fake control plane: `/debug/syncz` (ages filled in relative to now) and
/// productpage's config dump.
pub fn control_plane() -> FakeServer {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // 3m05s and 2h01m ago: far enough from a unit boundary that a slow test run still
    // prints `3m` and `2h`.
    let syncz = read("syncz.json")
        .replace("${AGO_3M}", &rfc3339(now - 185))
        .replace("${AGO_2H}", &rfc3339(now - 7260));
    FakeServer::start(vec![
        ("/debug/syncz".into(), syncz),
        (
            format!("/debug/config_dump?proxyID={PRODUCTPAGE_ID}"),
            read("config_dump_sidecar.json"),
        ),
    ])
}

/// A fake proxy admin port serving the config dump captured from Envoy 1.40.
pub fn envoy_admin() -> FakeServer {
    FakeServer::start(vec![(
        "/config_dump?include_eds".into(),
        read("envoy_admin_config_dump.json"),
    )])
}

pub fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------- running the CLI

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn ironmesh(args: &[&str]) -> Out {
    ironmesh_env(args, &[])
}

pub fn ironmesh_env(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("IRONMESH_DISCOVERY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run ironmesh");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Out {
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Lines with runs of whitespace collapsed, so assertions do not depend on column
    /// widths.
    pub fn rows(&self) -> Vec<String> {
        self.stdout.lines().map(norm).collect()
    }

    #[track_caller]
    pub fn has_row(&self, row: &str) {
        let want = norm(row);
        assert!(
            self.rows().contains(&want),
            "no row {want:?} in\n{}",
            self.stdout
        );
    }
}

pub fn norm(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[track_caller]
pub fn assert_golden(got: &str, name: &str) {
    let want = read(name);
    assert!(
        got == want,
        "output differs from testdata/{name}\n--- got\n{got}\n--- want\n{want}"
    );
}

/// A loopback address nothing listens on.
pub fn dead_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    format!("http://{addr}")
}

/// The Envoy binary the project's tests use, when installed (see
/// shared/reference/xds-clients.md): `IRONMESH_ENVOY`, else the cached venv.
/// Real Envoy, installed into the cache by the testkit when missing (never skipped).
pub fn envoy_binary() -> PathBuf {
    ironmesh_testkit::envoy::envoy_binary()
}

pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_helper_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_714_557_600), "2024-05-01T10:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
