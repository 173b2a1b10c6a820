//! `LoadBalancerSettings` and its parts: simple algorithms, consistent hashing (ring
//! hash / Maglev), locality and zone-aware load balancing, and warmup.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::net_checks;
use crate::path::FieldPath;
use crate::types::Duration;
use crate::validation::{checks, Context, Problems, Validate};

crate::string_enum! {
    /// `LoadBalancerSettings.SimpleLB`.
    pub enum SimpleLb {
        Unspecified = "UNSPECIFIED",
        LeastConn = "LEAST_CONN",
        Random = "RANDOM",
        Passthrough = "PASSTHROUGH",
        RoundRobin = "ROUND_ROBIN",
        LeastRequest = "LEAST_REQUEST",
    }
}

/// `LoadBalancerSettings`: `simple` or `consistentHash`, plus locality, zone-aware and
/// warmup settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple: Option<SimpleLb>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_hash: Option<ConsistentHashLb>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality_lb_setting: Option<LocalityLoadBalancerSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_aware_lb_setting: Option<ZoneAwareLbSetting>,
    /// Deprecated form of `warmup.duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_duration_secs: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<WarmupConfiguration>,
}

/// `LoadBalancerSettings.ConsistentHashLB`: one hash key and one hash algorithm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsistentHashLb {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_header_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_cookie: Option<HttpCookie>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_source_ip: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_query_parameter_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_hash: Option<RingHashLb>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maglev: Option<MaglevLb>,
    /// Deprecated: use `ringHash.minimumRingSize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_ring_size: Option<u64>,
}

/// `ConsistentHashLB.HTTPCookie`: hash on a cookie, generated when missing if `ttl` is
/// set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCookie {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<CookieAttribute>,
}

/// `HTTPCookie.Attribute`: an extra attribute of a generated cookie.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CookieAttribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `ConsistentHashLB.RingHash`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RingHashLb {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_ring_size: Option<u64>,
}

/// `ConsistentHashLB.MagLev`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaglevLb {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_size: Option<u64>,
}

/// `LocalityLoadBalancerSetting`: `distribute` weights or `failover` rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityLoadBalancerSetting {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distribute: Vec<Distribute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<Failover>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_priority: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `LocalityLoadBalancerSetting.Distribute`: weights by destination locality for
/// traffic from `from`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Distribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub to: BTreeMap<String, u32>,
}

/// `LocalityLoadBalancerSetting.Failover`: the region to fail over to from `from`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Failover {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// `ZoneAwareLbSetting`: Envoy's zone-aware routing (exclusive with
/// `localityLbSetting`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneAwareLbSetting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<Failover>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_priority: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cluster_size: Option<u64>,
}

/// `WarmupConfiguration`: slow start for new endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarmupConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggression: Option<f64>,
}

const TOPOLOGY_LABELS: [&str; 3] = [
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// Envoy's upper bound for `minimum_ring_size`.
const MAX_RING_SIZE: u64 = 8_388_608;
/// Envoy's upper bound (exclusive) for the Maglev table size.
const MAX_MAGLEV_TABLE: u64 = 5_000_011;

impl Validate for LoadBalancerSettings {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        self.validate_with_outlier(true, path, p);
    }
}

impl LoadBalancerSettings {
    /// Validates, knowing whether the surrounding policy sets outlier detection
    /// (locality failover needs it to notice unhealthy endpoints).
    pub(crate) fn validate_with_outlier(
        &self,
        has_outlier: bool,
        path: &FieldPath,
        p: &mut Problems,
    ) {
        if self.simple.is_some() && self.consistent_hash.is_some() {
            p.error(
                path,
                "only one of simple or consistentHash can be set: pick one load balancing algorithm",
            );
        }
        if self.simple == Some(SimpleLb::LeastConn) {
            p.warn(
                &path.field("simple"),
                "LEAST_CONN is deprecated: use LEAST_REQUEST, which behaves the same",
            );
        }
        if let Some(ch) = &self.consistent_hash {
            ch.validate_at(&path.field("consistentHash"), p);
        }
        if self.locality_lb_setting.is_some() && self.zone_aware_lb_setting.is_some() {
            p.error(
                path,
                "only one of localityLbSetting or zoneAwareLbSetting can be set",
            );
        }
        if let Some(l) = &self.locality_lb_setting {
            l.validate_at(has_outlier, &path.field("localityLbSetting"), p);
        }
        if let Some(z) = &self.zone_aware_lb_setting {
            z.validate_at(&path.field("zoneAwareLbSetting"), p);
        }
        if self.warmup.is_some() && self.warmup_duration_secs.is_some() {
            p.error(
                path,
                "only one of warmup or warmupDurationSecs can be set: use warmup.duration",
            );
        }
        if let Some(d) = &self.warmup_duration_secs {
            net_checks::proxy_duration(d, &path.field("warmupDurationSecs"), p);
        }
        if let Some(w) = &self.warmup {
            w.validate_at(&path.field("warmup"), p);
        }
    }
}

impl ConsistentHashLb {
    fn validate_at(&self, path: &FieldPath, p: &mut Problems) {
        let keys = [
            self.http_header_name.is_some(),
            self.http_cookie.is_some(),
            self.use_source_ip.is_some(),
            self.http_query_parameter_name.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        match keys {
            0 => p.warn(
                path,
                "consistentHash sets no hash key: set one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName",
            ),
            1 => {}
            _ => p.error(
                path,
                "only one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName can be set as the hash key",
            ),
        }
        if let Some(h) = self.http_header_name.as_deref() {
            p.check(&path.field("httpHeaderName"), checks::header_name(h));
        }
        if self.http_query_parameter_name.as_deref() == Some("") {
            p.error(
                &path.field("httpQueryParameterName"),
                "httpQueryParameterName must not be empty: name the query parameter to hash on",
            );
        }
        if let Some(c) = &self.http_cookie {
            let at = path.field("httpCookie");
            if c.name.as_deref().is_none_or(str::is_empty) {
                p.error(
                    &at.field("name"),
                    "name required for HttpCookie: Required value; name the cookie to hash on",
                );
            }
            for (i, a) in c.attributes.iter().enumerate() {
                if a.name.as_deref().is_none_or(str::is_empty) {
                    p.error(
                        &at.field("attributes").index(i).field("name"),
                        "Required value: a cookie attribute needs a name, e.g. SameSite",
                    );
                }
            }
        }
        if self.ring_hash.is_some() && self.maglev.is_some() {
            p.error(
                path,
                "only one of ringHash or maglev can be set as the hash algorithm",
            );
        }
        if let Some(n) = self.minimum_ring_size.filter(|n| *n != 0) {
            p.warn(
                &path.field("minimumRingSize"),
                "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead",
            );
            if self.ring_hash.is_some() || self.maglev.is_some() {
                p.error(
                    &path.field("minimumRingSize"),
                    "only one of MinimumRingSize or Maglev/Ringhash can be specified: move it to ringHash.minimumRingSize",
                );
            }
            ring_size(n, &path.field("minimumRingSize"), p);
        }
        if let Some(n) = self.ring_hash.as_ref().and_then(|r| r.minimum_ring_size) {
            ring_size(n, &path.field("ringHash").field("minimumRingSize"), p);
        }
        if let Some(m) = &self.maglev {
            let at = path.field("maglev").field("tableSize");
            match m.table_size.unwrap_or(0) {
                0 => p.error(
                    &at,
                    "tableSize must be set for maglev: use a prime number below 5000011, e.g. 65537",
                ),
                n if n >= MAX_MAGLEV_TABLE => p.error(
                    &at,
                    format!("tableSize must be less than 5000011 for maglev (got {n})"),
                ),
                n if !is_prime(n) => p.error(
                    &at,
                    format!("tableSize must be a prime number for maglev (got {n}), e.g. 65537"),
                ),
                _ => {}
            }
        }
    }
}

fn ring_size(n: u64, path: &FieldPath, p: &mut Problems) {
    if n > MAX_RING_SIZE {
        p.error(
            path,
            format!("minimumRingSize {n} is too large: the ring may have at most 8388608 entries"),
        );
    }
}

/// Trial division, enough for table sizes below 5000011.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n < 4 {
        return true;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let mut f = 3;
    while f * f <= n {
        if n.is_multiple_of(f) {
            return false;
        }
        f += 2;
    }
    true
}

impl Validate for LocalityLoadBalancerSetting {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        self.validate_at(true, path, p);
    }
}

impl LocalityLoadBalancerSetting {
    fn validate_at(&self, has_outlier: bool, path: &FieldPath, p: &mut Problems) {
        if !self.distribute.is_empty() && !self.failover.is_empty() {
            p.error(
                path,
                "can not simultaneously specify 'distribute' and 'failover': only one of distribute or failover can be set",
            );
            return;
        }
        if !self.failover.is_empty() {
            for (i, l) in self.failover_priority.iter().enumerate() {
                if TOPOLOGY_LABELS.contains(&l.as_str()) {
                    p.error(
                        &path.field("failoverPriority").index(i),
                        format!("can not simultaneously set 'failover' and topology label '{l}' in 'failover_priority'"),
                    );
                    return;
                }
            }
        }

        let mut sources = Vec::new();
        for (i, d) in self.distribute.iter().enumerate() {
            let at = path.field("distribute").index(i);
            sources.push(d.from.clone().unwrap_or_default());
            let mut total: u64 = 0;
            for (loc, w) in &d.to {
                if *w == 0 || *w > 100 {
                    p.error(
                        &at.field("to").key(loc),
                        format!("locality weight must be in range [1, 100] (got {w})"),
                    );
                }
                total += u64::from(*w);
            }
            if total != 100 {
                p.error(
                    &at.field("to"),
                    format!("total locality weight {total} != 100: the weights of one distribute entry must add up to 100"),
                );
            }
            let dests: Vec<String> = d.to.keys().cloned().collect();
            p.check(&at.field("to"), localities(&dests));
        }
        p.check(&path.field("distribute"), localities(&sources));

        if (!self.failover.is_empty() || !self.failover_priority.is_empty()) && !has_outlier {
            p.warn(
                path,
                "outlier detection policy must be provided for failover: without outlierDetection unhealthy endpoints are never detected",
            );
        }
        failovers(&self.failover, &path.field("failover"), p);
    }
}

fn failovers(list: &[Failover], path: &FieldPath, p: &mut Problems) {
    for (i, f) in list.iter().enumerate() {
        let at = path.index(i);
        let from = f.from.as_deref().unwrap_or("");
        let to = f.to.as_deref().unwrap_or("");
        if from == to {
            p.error(
                &at,
                "locality lb failover settings must specify different regions for from and to",
            );
        }
        if from.contains('/') || to.contains('/') {
            p.error(
                &at,
                "locality lb failover only specify region: use region names without '/'",
            );
        }
        if from.contains('*') || to.contains('*') {
            p.error(
                &at,
                "locality lb failover region should not contain '*' wildcard",
            );
        }
    }
}

/// Localities `region[/zone[/subzone]]`, a single trailing `*` allowed, none overlapping.
fn localities(list: &[String]) -> Result<(), String> {
    let mut seen: Vec<Vec<&str>> = Vec::new();
    for loc in list {
        let stars = loc.matches('*').count();
        if stars > 1 || (stars == 1 && !loc.ends_with('*')) {
            return Err(format!(
                "locality {loc} wildcard '*' number can not exceed 1 and must be in the end"
            ));
        }
        let parts: Vec<&str> = loc.splitn(3, '/').collect();
        if parts.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "locality {loc} must not contain empty region/zone/subzone info"
            ));
        }
        // Two localities overlap when one is a prefix of the other (a `*` part matches
        // everything below it).
        let overlaps = seen.iter().any(|other| {
            let n = other.len().min(parts.len());
            (0..n).all(|i| other[i] == parts[i] || other[i] == "*" || parts[i] == "*")
        });
        if overlaps {
            return Err(format!(
                "locality {loc} overlap with previous specified ones"
            ));
        }
        seen.push(parts);
    }
    Ok(())
}

impl ZoneAwareLbSetting {
    fn validate_at(&self, path: &FieldPath, p: &mut Problems) {
        for (i, l) in self.failover_priority.iter().enumerate() {
            if TOPOLOGY_LABELS.contains(&l.as_str()) {
                p.error(
                    &path.field("failoverPriority").index(i),
                    format!("zone aware load balancing always partitions by region and zone: topology label '{l}' is not allowed in failoverPriority"),
                );
            }
        }
        failovers(&self.failover, &path.field("failover"), p);
    }
}

impl WarmupConfiguration {
    fn validate_at(&self, path: &FieldPath, p: &mut Problems) {
        match &self.duration {
            None => p.error(
                &path.field("duration"),
                "Required value: warmup needs a duration, e.g. 300s",
            ),
            Some(d) => net_checks::proxy_duration(d, &path.field("duration"), p),
        }
        if let Some(v) = self.minimum_percent {
            if !(0.0..=100.0).contains(&v) {
                p.error(
                    &path.field("minimumPercent"),
                    format!("Invalid value: {v}: minimumPercent must be between 0 and 100"),
                );
            }
        }
        if let Some(v) = self.aggression {
            if v < 1.0 {
                p.error(
                    &path.field("aggression"),
                    format!("Invalid value: {v}: aggression must be greater than or equal to 1 (1 ramps up linearly, higher values faster)"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_and_localities() {
        assert!(is_prime(65537) && is_prime(2) && !is_prime(65536) && !is_prime(1));
        assert!(localities(&["us-west/zone1/*".into(), "us-west/zone2/*".into()]).is_ok());
        assert!(localities(&["us-west/*".into(), "us-west/zone2".into()])
            .unwrap_err()
            .contains("overlap"));
        assert!(localities(&["*/zone".into()])
            .unwrap_err()
            .contains("wildcard"));
        assert!(localities(&["us-west//a".into()])
            .unwrap_err()
            .contains("empty"));
    }
}
