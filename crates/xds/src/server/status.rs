//! Per-connection protocol state, and the serializable view of it that discovery serves
//! as `/debug/syncz` (and `ironmesh proxy-status` reads back).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Which variant of ADS a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// State of the world (`StreamAggregatedResources`).
    Sotw,
    /// Incremental (`DeltaAggregatedResources`).
    Delta,
}

/// What a client subscribed to for one type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Everything of the type (`*`, or an empty first request for LDS/CDS).
    pub wildcard: bool,
    /// Names asked for explicitly (alongside the wildcard in Delta).
    pub names: BTreeSet<String>,
}

impl Subscription {
    /// Whether the client wants the resource called `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    /// Whether the client wants nothing at all.
    pub fn is_empty(&self) -> bool {
        !self.wildcard && self.names.is_empty()
    }
}

/// A rejected response, as the client reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nack {
    /// `error_detail.message` from the client: why it rejected the config.
    pub message: String,
    /// The version the client rejected.
    pub version: String,
    /// The nonce of the rejected response.
    pub nonce: String,
    /// When the NACK arrived (RFC 3339, UTC).
    pub at: String,
}

/// The sync state of one resource type on one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeStatus {
    pub type_url: String,
    /// `LDS`, `CDS`, … when the type has one.
    pub short_name: Option<String>,
    pub subscription: Subscription,
    pub sent_version: Option<String>,
    pub sent_nonce: Option<String>,
    pub sent_at: Option<String>,
    /// How many resources the last response carried.
    pub sent_resources: usize,
    /// The version the client last said it applied (SotW: its `version_info`; Delta:
    /// the `system_version_info` of the response it ACKed).
    pub acked_version: Option<String>,
    pub acked_at: Option<String>,
    /// The last rejection, kept after later ACKs so an operator can see what happened.
    pub last_nack: Option<Nack>,
    /// The control plane's own failure to build this type, if the last attempt failed.
    pub generate_error: Option<String>,
}

impl TypeStatus {
    /// The client has applied the latest version sent: Istio's `SYNCED`.
    pub fn synced(&self) -> bool {
        self.sent_version.is_some() && self.acked_version == self.sent_version
    }
}

/// One ADS stream, as `/debug/syncz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    /// `<proxy id>-<counter>`, unique for the server's lifetime.
    pub id: String,
    /// The proxy id the generator reported (by default the node id).
    pub proxy_id: String,
    /// `node.id` from the first request.
    pub node_id: String,
    pub protocol: Protocol,
    pub connected_at: String,
    /// The push version the connection has caught up with.
    pub push_version: u64,
    /// One entry per requested type, in push order (CDS, EDS, LDS, RDS, SDS, others).
    pub types: Vec<TypeStatus>,
}

/// Protocol state of one type; `status` is the part shown to operators.
#[derive(Debug)]
pub(crate) struct TypeState {
    pub(crate) status: TypeStatus,
    /// Delta: what the client holds, name → version.
    pub(crate) held: BTreeMap<String, String>,
    /// When the oldest push not yet ACKed started (for convergence time).
    pub(crate) converge_from: Option<Instant>,
}

impl TypeState {
    pub(crate) fn new(type_url: &str) -> Self {
        TypeState {
            status: TypeStatus {
                type_url: type_url.to_owned(),
                short_name: crate::type_url::short_name(type_url).map(str::to_owned),
                subscription: Subscription::default(),
                sent_version: None,
                sent_nonce: None,
                sent_at: None,
                sent_resources: 0,
                acked_version: None,
                acked_at: None,
                last_nack: None,
                generate_error: None,
            },
            held: BTreeMap::new(),
            converge_from: None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct ConnState {
    pub(crate) id: String,
    pub(crate) proxy_id: String,
    pub(crate) node_id: String,
    pub(crate) protocol: Protocol,
    pub(crate) connected_at: String,
    pub(crate) push_version: u64,
    pub(crate) types: BTreeMap<String, TypeState>,
}

impl ConnState {
    pub(crate) fn status(&self) -> ConnectionStatus {
        let mut types: Vec<TypeStatus> = self.types.values().map(|t| t.status.clone()).collect();
        types.sort_by_key(|t| (crate::type_url::push_order(&t.type_url), t.type_url.clone()));
        ConnectionStatus {
            id: self.id.clone(),
            proxy_id: self.proxy_id.clone(),
            node_id: self.node_id.clone(),
            protocol: self.protocol,
            connected_at: self.connected_at.clone(),
            push_version: self.push_version,
            types,
        }
    }
}

/// The current wall-clock time as RFC 3339 in UTC with millisecond precision.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn subscription_wants() {
        let mut s = Subscription::default();
        assert!(s.is_empty() && !s.wants("a"));
        s.names.insert("a".into());
        assert!(s.wants("a") && !s.wants("b"));
        s.wildcard = true;
        assert!(s.wants("b"));
    }
}
