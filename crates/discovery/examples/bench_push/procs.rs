//! The processes the push benchmark starts (the real `ironmesh-discovery` binary and,
//! optionally, a real Envoy), each killed when its guard drops, and a minimal HTTP GET
//! for their admin/debug ports.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A running discovery, killed on drop.
pub struct Discovery {
    child: Child,
    pub xds: SocketAddr,
    pub http: SocketAddr,
    pub monitoring: SocketAddr,
    pub log: PathBuf,
}

impl Discovery {
    pub fn start(
        bin: &Path,
        config_dir: &Path,
        debounce: &str,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(bin)
            .arg("--config-dir")
            .arg(config_dir)
            .args([
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--monitoring-addr",
                "127.0.0.1:0",
                "--debounce-after",
                debounce,
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        // Guard first, so a failure below still kills the child.
        let mut d = Discovery {
            child,
            xds: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            monitoring: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        // The binary prints `listening xds=…`, `listening http=…`, `listening
        // monitoring=…` once its sockets are bound (it loads the directory first).
        let mut lines = BufReader::new(stdout).lines();
        let mut found = 0;
        while found < 3 {
            let Some(line) = lines.next() else {
                bail!(
                    "discovery exited before announcing its ports; see {}",
                    d.log.display()
                );
            };
            let line = line?;
            let Some(rest) = line.strip_prefix("listening ") else {
                continue;
            };
            let (what, addr) = rest.split_once('=').context("odd listening line")?;
            let addr: SocketAddr = addr.parse()?;
            match what {
                "xds" => d.xds = addr,
                "http" => d.http = addr,
                "monitoring" => d.monitoring = addr,
                _ => {}
            }
            found += 1;
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(d)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Discovery {
    /// `pilot_xds_pushes` by xDS type (`lds`, `cds`, …), summed over other labels.
    pub async fn pushes(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let (_, body) = http_get(self.monitoring, "/metrics").await?;
        let mut out = BTreeMap::new();
        for line in body.lines() {
            let Some(rest) = line.strip_prefix("pilot_xds_pushes{") else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let Some(kind) = labels
                .split(',')
                .find_map(|l| l.strip_prefix("type=\""))
                .map(|t| t.trim_end_matches('"'))
            else {
                continue;
            };
            let n: f64 = value.trim().parse().unwrap_or(0.0);
            *out.entry(kind.to_string()).or_default() += n as u64;
        }
        Ok(out)
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Envoy, killed on drop.
pub struct Envoy {
    child: Child,
    pub admin: SocketAddr,
    pub log: PathBuf,
}

impl Envoy {
    /// Starts Envoy as a sidecar of a client pod in `default`, on Delta ADS to `xds`
    /// (as Istio's sidecars do), with Istio's default of 2 worker threads.
    pub fn start(bin: &Path, xds: SocketAddr, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let bootstrap = serde_json::json!({
            "node": {
                "id": "sidecar~10.244.0.5~envoy-bench.default~default.svc.cluster.local",
                "cluster": "envoy-bench.default",
                "metadata": {"NAMESPACE": "default"},
            },
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "dynamic_resources": {
                "ads_config": {
                    "api_type": "DELTA_GRPC",
                    "transport_api_version": "V3",
                    "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}],
                    "set_node_on_first_message_only": true
                },
                "lds_config": {"ads": {}, "resource_api_version": "V3"},
                "cds_config": {"ads": {}, "resource_api_version": "V3"}
            },
            "static_resources": {"clusters": [{
                "name": "xds-grpc",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": "xds-grpc",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                        "socket_address": {"address": "127.0.0.1", "port_value": xds.port()}
                    }}}]}]
                },
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}}
                    }
                }
            }]}
        });
        let config = dir.join("envoy-bootstrap.json");
        let admin_path = dir.join("envoy-admin-address");
        let log = dir.join("envoy.log");
        let _ = std::fs::remove_file(&admin_path);
        std::fs::write(&config, bootstrap.to_string())?;
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .args([
                "--disable-hot-restart",
                "--concurrency",
                "2",
                "-l",
                "warning",
            ])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut envoy = Envoy {
            child,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(addr) = std::fs::read_to_string(&admin_path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                envoy.admin = addr;
                return Ok(envoy);
            }
            if let Ok(Some(status)) = envoy.child.try_wait() {
                bail!("envoy exited ({status}); see {}", envoy.log.display());
            }
            if Instant::now() > deadline {
                bail!(
                    "envoy's admin API did not come up within 30 s; see {}",
                    envoy.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Counters and gauges from `/stats`, by exact name.
    pub async fn stat(&self, name: &str) -> Option<u64> {
        let (_, body) = http_get(self.admin, &format!("/stats?filter=^{name}$"))
            .await
            .ok()?;
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.1; the status code and the (de-chunked) body.
pub async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        anyhow::Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .context("HTTP request timed out")??;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("bad HTTP status line")?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let (Some(chunk), Some(after)) = (tail.get(..n), tail.get(n..)) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.push_str(chunk);
        rest = after.strip_prefix("\r\n").unwrap_or(after);
    }
    out
}
