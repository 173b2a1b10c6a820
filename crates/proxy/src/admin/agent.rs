//! pilot-agent's duties on the status port: app probes rewritten by the injector
//! (`ISTIO_KUBE_APP_PROBERS`) and the app's metrics merged into the proxy's
//! (`ISTIO_PROMETHEUS_ANNOTATIONS`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::http::{get, text, Resp};

/// Env var the injector sets with the pod's original probes.
pub const APP_PROBERS_ENV: &str = "ISTIO_KUBE_APP_PROBERS";
/// Env var the injector sets with the pod's `prometheus.io/*` annotations.
pub const PROMETHEUS_ANNOTATIONS_ENV: &str = "ISTIO_PROMETHEUS_ANNOTATIONS";

/// Agent settings that come from the pod (through the injector's env vars).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentConfig {
    /// Where to scrape the app's own metrics, when the pod asks for it.
    pub app_metrics: Option<AppScrape>,
    /// `/app-health/<container>/livez|readyz|startupz` → the app's probe.
    pub probers: BTreeMap<String, Prober>,
}

impl AgentConfig {
    /// Reads both env vars; a malformed value is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(
            std::env::var(PROMETHEUS_ANNOTATIONS_ENV).ok().as_deref(),
            std::env::var(APP_PROBERS_ENV).ok().as_deref(),
        )
    }

    /// As [`AgentConfig::from_env`], from the variables' values.
    pub fn from_vars(annotations: Option<&str>, probers: Option<&str>) -> Result<Self, String> {
        Ok(AgentConfig {
            app_metrics: match annotations {
                Some(json) if !json.trim().is_empty() => parse_prometheus_annotations(json)
                    .map_err(|e| format!("{PROMETHEUS_ANNOTATIONS_ENV}: {e}"))?,
                _ => None,
            },
            probers: match probers {
                Some(json) if !json.trim().is_empty() => {
                    parse_probers(json).map_err(|e| format!("{APP_PROBERS_ENV}: {e}"))?
                }
                _ => BTreeMap::new(),
            },
        })
    }
}

/// The app's metrics endpoint on 127.0.0.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppScrape {
    pub port: u16,
    pub path: String,
}

/// Parses `{"scrape":"true","path":"/metrics","port":"8080"}`; `None` unless scrape is
/// `true`.
pub fn parse_prometheus_annotations(json: &str) -> Result<Option<AppScrape>, String> {
    let map: BTreeMap<String, String> = serde_json::from_str(json)
        .map_err(|e| format!("expected a JSON object of strings ({e})"))?;
    if map.get("scrape").map(String::as_str) != Some("true") {
        return Ok(None);
    }
    let port = map
        .get("port")
        .ok_or("scrape is true but no port is given; set the prometheus.io/port annotation")?;
    let port = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a port number"))?;
    let mut path = map
        .get("path")
        .cloned()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/metrics".into());
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Ok(Some(AppScrape { port, path }))
}

/// One app probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prober {
    Http {
        path: String,
        port: u16,
        https: bool,
        headers: Vec<(String, String)>,
        timeout: Duration,
    },
    Tcp {
        port: u16,
        timeout: Duration,
    },
    /// A probe kind the agent does not run (gRPC); answering it fails with the reason.
    Unsupported {
        kind: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProber {
    http_get: Option<RawHttpGet>,
    tcp_socket: Option<RawTcp>,
    grpc: Option<Value>,
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHttpGet {
    #[serde(default)]
    path: String,
    port: Value,
    #[serde(default)]
    scheme: String,
    #[serde(default)]
    http_headers: Vec<RawHeader>,
}

#[derive(Deserialize)]
struct RawHeader {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
struct RawTcp {
    port: Value,
}

/// Kubernetes' IntOrString: the injector resolves named ports, so a number is expected.
fn port(v: &Value) -> Result<u16, String> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n != 0)
        .ok_or_else(|| format!("probe port {v} is not a port number (named ports must be resolved by the injector)"))
}

/// Parses Istio's `ISTIO_KUBE_APP_PROBERS` JSON.
pub fn parse_probers(json: &str) -> Result<BTreeMap<String, Prober>, String> {
    let raw: BTreeMap<String, RawProber> = serde_json::from_str(json).map_err(|e| {
        format!("expected {{\"/app-health/<container>/readyz\": {{\"httpGet\": …}}}} ({e})")
    })?;
    raw.into_iter()
        .map(|(path, p)| {
            if !path.starts_with("/app-health/") {
                return Err(format!("{path:?} does not start with /app-health/"));
            }
            let timeout = Duration::from_secs(p.timeout_seconds.filter(|s| *s > 0).unwrap_or(1));
            let prober = if let Some(h) = p.http_get {
                let mut probe_path = h.path;
                if !probe_path.starts_with('/') {
                    probe_path.insert(0, '/');
                }
                Prober::Http {
                    path: probe_path,
                    port: port(&h.port).map_err(|e| format!("{path}: {e}"))?,
                    https: h.scheme.eq_ignore_ascii_case("https"),
                    headers: h
                        .http_headers
                        .into_iter()
                        .map(|h| (h.name, h.value))
                        .collect(),
                    timeout,
                }
            } else if let Some(t) = p.tcp_socket {
                Prober::Tcp {
                    port: port(&t.port).map_err(|e| format!("{path}: {e}"))?,
                    timeout,
                }
            } else if p.grpc.is_some() {
                Prober::Unsupported {
                    kind: "grpc".into(),
                }
            } else {
                return Err(format!("{path}: neither httpGet, tcpSocket nor grpc"));
            };
            Ok((path, prober))
        })
        .collect()
}

/// Runs a probe against the app on 127.0.0.1: the app's own status for HTTP (2xx/3xx
/// pass, as kubelet judges), 200 for a TCP connect, 500 with the reason otherwise.
pub async fn probe(prober: &Prober) -> Resp {
    let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
    match prober {
        Prober::Http {
            https: true, port, ..
        } => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("HTTPS app probes (port {port}) are not supported by ironmesh-proxy; use an HTTP or tcpSocket probe\n"),
        ),
        Prober::Http {
            path,
            port,
            headers,
            timeout,
            ..
        } => match get(loopback(*port), path, headers, *timeout).await {
            Ok(answer) => text(answer.status, ""),
            Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
        },
        Prober::Tcp { port, timeout } => {
            match tokio::time::timeout(*timeout, tokio::net::TcpStream::connect(loopback(*port)))
                .await
            {
                Ok(Ok(_)) => text(StatusCode::OK, ""),
                Ok(Err(e)) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot connect to the app on port {port}: {e}\n"),
                ),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("no connection to the app on port {port} within {timeout:?}\n"),
                ),
            }
        }
        Prober::Unsupported { kind } => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{kind} app probes are not supported by ironmesh-proxy\n"),
        ),
    }
}

/// Scrapes the app's metrics; `Err` says why (the merged output goes on without them).
pub async fn scrape_app(scrape: &AppScrape) -> Result<String, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], scrape.port));
    let answer = get(
        addr,
        &scrape.path,
        &[(
            "Accept".into(),
            "text/plain;version=0.0.4;q=1,*/*;q=0.1".into(),
        )],
        Duration::from_secs(5),
    )
    .await?;
    if !answer.status.is_success() {
        return Err(format!(
            "the app's metrics at {addr}{} answered {}",
            scrape.path, answer.status
        ));
    }
    String::from_utf8(answer.body.to_vec())
        .map_err(|_| format!("the app's metrics at {addr}{} are not UTF-8", scrape.path))
}

/// Joins Prometheus text expositions into one: each part ends with a newline and
/// OpenMetrics' `# EOF` markers are dropped (only one may end a document, and the
/// classic text format served here needs none).
pub fn merge_expositions(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        for line in part.lines() {
            if line.trim() == "# EOF" {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_istio_probers() {
        let json = r#"{
            "/app-health/httpbin/readyz": {"httpGet": {"path": "/status/200", "port": 80, "scheme": "HTTP",
                "httpHeaders": [{"name": "X-Probe", "value": "1"}]}, "timeoutSeconds": 3},
            "/app-health/httpbin/livez": {"tcpSocket": {"port": "8080"}},
            "/app-health/grpc/livez": {"grpc": {"port": 9090, "service": null}, "timeoutSeconds": 1}
        }"#;
        let p = parse_probers(json).unwrap();
        assert_eq!(
            p["/app-health/httpbin/readyz"],
            Prober::Http {
                path: "/status/200".into(),
                port: 80,
                https: false,
                headers: vec![("X-Probe".into(), "1".into())],
                timeout: Duration::from_secs(3),
            }
        );
        assert_eq!(
            p["/app-health/httpbin/livez"],
            Prober::Tcp {
                port: 8080,
                timeout: Duration::from_secs(1)
            }
        );
        assert_eq!(
            p["/app-health/grpc/livez"],
            Prober::Unsupported {
                kind: "grpc".into()
            }
        );
        assert!(parse_probers(r#"{"/x": {"tcpSocket": {"port": 1}}}"#).is_err());
        assert!(
            parse_probers(r#"{"/app-health/a/livez": {"tcpSocket": {"port": "http"}}}"#)
                .unwrap_err()
                .contains("named ports")
        );
    }

    #[test]
    fn parses_prometheus_annotations() {
        assert_eq!(
            parse_prometheus_annotations(r#"{"scrape":"true","path":"/metrics","port":"8080"}"#)
                .unwrap(),
            Some(AppScrape {
                port: 8080,
                path: "/metrics".into()
            })
        );
        assert_eq!(
            parse_prometheus_annotations(r#"{"scrape":"false","port":"8080"}"#).unwrap(),
            None
        );
        assert!(parse_prometheus_annotations(r#"{"scrape":"true"}"#).is_err());
        let c = AgentConfig::from_vars(Some(r#"{"scrape":"true","port":"9"}"#), None).unwrap();
        assert_eq!(c.app_metrics.unwrap().path, "/metrics");
        assert!(AgentConfig::from_vars(Some("[1]"), None)
            .unwrap_err()
            .starts_with(PROMETHEUS_ANNOTATIONS_ENV));
    }

    #[test]
    fn merges_without_eof_markers() {
        let merged = merge_expositions(&["# TYPE a counter\na_total 1\n# EOF\n", "b 2"]);
        assert_eq!(merged, "# TYPE a counter\na_total 1\nb 2\n");
    }
}
