//! The `ironmesh-proxy` data plane for tests: `ironmesh-proxy proxy sidecar|router`
//! started with an Istio pod identity in its environment, every port 0, and its output
//! read for the bound addresses and the `ready` line. Killed on drop.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::node::Node;

/// The `ironmesh-proxy` binary beside the test executable (`$IRONMESH_PROXY` first),
/// built with cargo when missing. Tests inside the proxy crate pass
/// `env!("CARGO_BIN_EXE_ironmesh-proxy")` instead.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("IRONMESH_PROXY") {
        return PathBuf::from(p);
    }
    crate::bins::binary("ironmesh-proxy", "ironmesh-proxy")
}

/// How to start one proxy.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub binary: PathBuf,
    pub node: Node,
    pub discovery: SocketAddr,
    pub concurrency: usize,
    /// Extra arguments after the standard ones.
    pub extra_args: Vec<String>,
    /// How long to wait for the `ready` line.
    pub ready_timeout: Duration,
}

impl ProxyOptions {
    pub fn new(binary: &Path, node: Node, discovery: SocketAddr) -> Self {
        ProxyOptions {
            binary: binary.to_path_buf(),
            node,
            discovery,
            concurrency: 2,
            extra_args: Vec::new(),
            ready_timeout: Duration::from_secs(30),
        }
    }
}

/// A running ironmesh-proxy.
pub struct Proxy {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Starts the proxy and waits for its `ready` line. `Err` carries why it did not
    /// get there (exit status or timeout) and everything it printed.
    pub fn start(opts: &ProxyOptions) -> Result<Proxy, String> {
        let mut cmd = Command::new(&opts.binary);
        cmd.args(["proxy", &opts.node.role])
            .args(["--discovery-address", &opts.discovery.to_string()])
            .args(["--concurrency", &opts.concurrency.to_string()])
            .args(["--admin-addr", "127.0.0.1:0"])
            .args(["--status-port", "0"])
            .args(["--readiness-port", "0"])
            .args(["--prometheus-port", "0"])
            .args(["--agent-bind", "127.0.0.1"])
            .args(&opts.extra_args)
            .envs(opts.node.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", opts.binary.display()))?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        drain(stdout, output.clone(), tx.clone());
        drain(stderr, output.clone(), tx);
        let mut proxy = Proxy { child, output };
        let deadline = Instant::now() + opts.ready_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) if is_ready_line(&line) => return Ok(proxy),
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {}
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                // Let the drain threads catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "{} exited ({status}) before `ready`\n{}",
                    opts.binary.display(),
                    proxy.logs()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} printed no `ready` line within {:?}\n{}",
                    opts.binary.display(),
                    opts.ready_timeout,
                    proxy.logs()
                ));
            }
        }
    }

    /// Everything the proxy printed so far (stdout and stderr interleaved).
    pub fn logs(&self) -> String {
        self.output.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address logged for `what` (e.g. `admin`): the first address on a line that
    /// mentions `what`.
    pub fn logged_addr(&self, what: &str) -> Option<SocketAddr> {
        let lines = self.output.lock().ok()?.clone();
        lines
            .iter()
            .filter(|l| l.contains(what))
            .find_map(|l| first_addr(l))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain<R: Read + Send + 'static>(
    from: R,
    into: Arc<Mutex<Vec<String>>>,
    tx: mpsc::Sender<String>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if let Ok(mut l) = into.lock() {
                l.push(line.clone());
            }
            let _ = tx.send(line);
        }
    });
}

/// A line announcing readiness: the word `ready` on its own or as a message, not a
/// port line for the readiness port.
fn is_ready_line(line: &str) -> bool {
    line.split(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-')
        .any(|w| w == "ready")
        && first_addr(line).is_none()
}

/// The first `ip:port` token of `line`.
pub fn first_addr(line: &str) -> Option<SocketAddr> {
    line.split(|c: char| c.is_whitespace() || matches!(c, '=' | '"' | ',' | '{' | '}'))
        .find_map(|t| t.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ready_and_address_lines() {
        assert!(is_ready_line("ready"));
        assert!(is_ready_line("2026-01-01T00:00:00Z INFO ready version=3"));
        assert!(!is_ready_line("listening readiness=127.0.0.1:15021"));
        assert!(!is_ready_line("already there"));
        assert_eq!(
            first_addr("listening admin=127.0.0.1:4000"),
            Some("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(first_addr("no address"), None);
    }
}
