//! A small blocking HTTP client for the control plane's debug API
//! (`/debug/syncz`, `/debug/config_dump`) and for a proxy's Envoy-style admin port
//! (`/config_dump?include_eds`).
//!
//! The wire shapes live here: `SyncStatus` is the `/debug/syncz` contract; config dumps
//! stay `serde_json::Value` because `-o json` must print them exactly as served.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// Where `--discovery` points when neither the flag nor `IRONMESH_DISCOVERY` is set:
/// `ironmesh-discovery`'s debug port.
pub const DEFAULT_DISCOVERY: &str = "http://127.0.0.1:8080";

/// Config dumps of a large mesh run to tens of megabytes; ureq's default cap is 10 MB.
const BODY_LIMIT: u64 = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the control plane at {url}: {reason} \
         (is ironmesh-discovery running? set --discovery or IRONMESH_DISCOVERY)"
    )]
    DiscoveryUnreachable { url: String, reason: String },
    #[error(
        "cannot reach the proxy admin port at {url}: {reason} \
         (is the proxy running? check --proxy-admin, usually 127.0.0.1:15000)"
    )]
    AdminUnreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url} returned something that is not the expected JSON: {reason}")]
    BadBody { url: String, reason: String },
}

/// One connected proxy as `/debug/syncz` reports it (the fields the tables use; `-o
/// json` prints the server's objects whole, `version` and `sentNonce` included).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// The node id (`sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local`).
    pub id: String,
    /// `pod.ns`; empty when the node id carries no pod name.
    #[serde(default)]
    pub proxy: String,
    #[serde(default)]
    pub cluster_id: String,
    #[serde(default)]
    pub istiod_version: String,
    #[serde(default)]
    pub discovery_id: String,
    /// Per xDS type (`CDS`, `LDS`, `EDS`, `RDS`, `ECDS`, …); absent means never subscribed.
    #[serde(default)]
    pub types: BTreeMap<String, TypeStatus>,
}

impl SyncStatus {
    /// The name proxy-status shows and sorts by: `pod.ns`, else the node id.
    pub fn display_name(&self) -> &str {
        if self.proxy.is_empty() {
            &self.id
        } else {
            &self.proxy
        }
    }

    /// The state of one type, looked up by its short name (`CDS`) whatever spelling
    /// the server used for the key (short name or full type URL).
    pub fn type_status(&self, short: &str) -> Option<&TypeStatus> {
        self.types
            .iter()
            .find(|(k, _)| short_type_name(k) == short)
            .map(|(_, v)| v)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeStatus {
    #[serde(default = "yes")]
    pub subscribed: bool,
    #[serde(default)]
    pub sent_version: Option<String>,
    #[serde(default)]
    pub acked_version: Option<String>,
    #[serde(default)]
    pub nack: Option<Nack>,
    #[serde(default)]
    pub sent_at: Option<String>,
    #[serde(default)]
    pub acked_at: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
pub struct Nack {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub message: String,
}

/// Maps a type key to its short name: `CDS` stays `CDS`, and a full type URL
/// (`type.googleapis.com/envoy.config.cluster.v3.Cluster`) becomes `CDS`.
pub fn short_type_name(key: &str) -> &str {
    let tail = key.rsplit(['/', '.']).next().unwrap_or(key);
    match tail {
        "Cluster" => "CDS",
        "Listener" => "LDS",
        "ClusterLoadAssignment" => "EDS",
        "RouteConfiguration" => "RDS",
        "TypedExtensionConfig" => "ECDS",
        "Secret" => "SDS",
        _ => key,
    }
}

/// Talks to one `ironmesh-discovery` debug endpoint.
pub struct DiscoveryClient {
    base: String,
    agent: ureq::Agent,
}

impl DiscoveryClient {
    pub fn new(base: &str) -> Self {
        DiscoveryClient {
            base: with_scheme(base).trim_end_matches('/').to_string(),
            agent: agent(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /debug/syncz`: every connected proxy, unsorted.
    pub fn syncz(&self) -> Result<(Vec<SyncStatus>, Vec<Value>), ClientError> {
        let url = format!("{}/debug/syncz", self.base);
        let raw = self.get_json(&url)?;
        let Value::Array(items) = raw else {
            return Err(ClientError::BadBody {
                url,
                reason: "expected a JSON array of proxies".into(),
            });
        };
        let mut typed = Vec::with_capacity(items.len());
        for item in &items {
            let s: SyncStatus =
                serde_json::from_value(item.clone()).map_err(|e| ClientError::BadBody {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
            typed.push(s);
        }
        Ok((typed, items))
    }

    /// `GET /debug/config_dump?proxyID=ID`: the Envoy-shaped config dump the control
    /// plane built for one proxy.
    pub fn config_dump(&self, proxy_id: &str) -> Result<Value, ClientError> {
        let url = format!(
            "{}/debug/config_dump?proxyID={}",
            self.base,
            percent_encode(proxy_id)
        );
        self.get_json(&url)
    }

    fn get_json(&self, url: &str) -> Result<Value, ClientError> {
        fetch_json(&self.agent, url).map_err(|e| match e {
            Fetch::Unreachable(reason) => ClientError::DiscoveryUnreachable {
                url: self.base.clone(),
                reason,
            },
            Fetch::Other(e) => e,
        })
    }
}

/// `GET http://ADDR/config_dump?include_eds` straight from a proxy's admin port.
pub fn admin_config_dump(addr: &str) -> Result<Value, ClientError> {
    let base = with_scheme(addr).trim_end_matches('/').to_string();
    let url = format!("{base}/config_dump?include_eds");
    fetch_json(&agent(), &url).map_err(|e| match e {
        Fetch::Unreachable(reason) => ClientError::AdminUnreachable { url: base, reason },
        Fetch::Other(e) => e,
    })
}

enum Fetch {
    Unreachable(String),
    Other(ClientError),
}

fn fetch_json(agent: &ureq::Agent, url: &str) -> Result<Value, Fetch> {
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| Fetch::Unreachable(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(BODY_LIMIT)
        .read_to_string()
        .map_err(|e| {
            Fetch::Other(ClientError::BadBody {
                url: url.to_string(),
                reason: e.to_string(),
            })
        })?;
    if status != 200 {
        return Err(Fetch::Other(ClientError::Status {
            url: url.to_string(),
            status,
            body: body.trim().to_string(),
        }));
    }
    serde_json::from_str(&body).map_err(|e| {
        Fetch::Other(ClientError::BadBody {
            url: url.to_string(),
            reason: e.to_string(),
        })
    })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        // The debug API is reached directly; an HTTP_PROXY meant for the internet must
        // not swallow requests to a local control plane.
        .proxy(None)
        .build()
        .into()
}

fn with_scheme(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// Node ids carry `~` and dots (safe) but may carry anything a pod name allows; encode
/// everything outside RFC 3986's unreserved set.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_keys_accept_short_names_and_type_urls() {
        assert_eq!(short_type_name("CDS"), "CDS");
        assert_eq!(
            short_type_name("type.googleapis.com/envoy.config.cluster.v3.Cluster"),
            "CDS"
        );
        assert_eq!(
            short_type_name("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"),
            "EDS"
        );
        assert_eq!(short_type_name("WDS"), "WDS");
    }

    #[test]
    fn node_ids_are_encoded_for_the_query_string() {
        assert_eq!(
            percent_encode("sidecar~10.0.0.1~a.b~b.svc.cluster.local"),
            "sidecar~10.0.0.1~a.b~b.svc.cluster.local"
        );
        assert_eq!(percent_encode("a b&c"), "a%20b%26c");
    }

    #[test]
    fn addresses_without_scheme_get_http() {
        assert_eq!(with_scheme("127.0.0.1:15000"), "http://127.0.0.1:15000");
        assert_eq!(with_scheme("http://x:1"), "http://x:1");
    }
}
