//! Istio's standard metrics, labelled like Istio's stats filter and rendered like
//! Envoy's `/stats/prometheus`.
//!
//! Hot path: a record hashes its borrowed label inputs and finds its series in its
//! worker's own cache of the table without allocating; only a new label combination
//! builds strings. Every series keeps one set of counters per worker (summed when
//! rendered), so workers never write the same cache line.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasher, Hash};

// Seeded per process; hashing the label key is on every request's path, where SipHash
// showed in profiles.
use foldhash::fast::RandomState;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use crate::dataplane::workers;

use super::format::ops::grpc_status;
use super::{Direction, PeerMetadata, StreamInfo};

/// Envoy's default histogram buckets, which Istio's histograms use.
pub const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Label names in Istio's order; TCP metrics lack `response_code` and
/// `grpc_response_status`.
pub const HTTP_LABELS: [&str; 25] = [
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; 19],
    count: AtomicU64,
    sum: AtomicU64,
}

impl Histogram {
    fn observe(&self, v: u64) {
        // Buckets are stored non-cumulatively; rendering accumulates.
        let f = v as f64;
        if let Some(i) = BUCKETS.iter().position(|b| f <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum.fetch_add(v, Relaxed);
    }
}

#[derive(Debug, Default)]
struct HttpSeries {
    requests: AtomicU64,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
    request_messages: AtomicU64,
    response_messages: AtomicU64,
}

#[derive(Debug, Default)]
struct TcpSeries {
    sent: AtomicU64,
    received: AtomicU64,
    opened: AtomicU64,
    closed: AtomicU64,
}

/// A peer as far as metric labels go: pod labels such as `pod-template-hash` differ
/// between replicas but are not labels, so they must not split series (two series with
/// the same label string would be an invalid exposition).
#[derive(Debug, Clone, Copy)]
struct PeerKey<'a>(&'a PeerMetadata);

impl PeerKey<'_> {
    fn fields(&self) -> [&str; 7] {
        let p = self.0;
        [
            &p.workload,
            &p.namespace,
            &p.app,
            &p.version,
            &p.canonical_service,
            &p.canonical_revision,
            &p.cluster,
        ]
    }
}

impl PartialEq for PeerKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

impl Eq for PeerKey<'_> {}

impl Hash for PeerKey<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.fields().hash(state);
    }
}

/// What decides a series' labels, borrowed from the record.
#[derive(Debug, PartialEq, Eq, Hash)]
struct KeyRef<'a> {
    inbound: bool,
    peer: Option<PeerKey<'a>>,
    destination_service: Option<&'a str>,
    peer_principal: Option<&'a str>,
    local_principal: Option<&'a str>,
    protocol: &'static str,
    response_code: u16,
    grpc: Option<i32>,
    /// `ResponseFlags`, with the order the flags were set in (it shows in the label).
    flags: u64,
    mtls: bool,
}

#[derive(Debug)]
struct Key {
    inbound: bool,
    peer: Option<Arc<PeerMetadata>>,
    destination_service: Option<String>,
    peer_principal: Option<String>,
    local_principal: Option<String>,
    protocol: &'static str,
    response_code: u16,
    grpc: Option<i32>,
    /// `ResponseFlags`, with the order the flags were set in (it shows in the label).
    flags: u64,
    mtls: bool,
}

impl Key {
    fn matches(&self, k: &KeyRef<'_>) -> bool {
        self.inbound == k.inbound
            && self.peer.as_deref().map(PeerKey) == k.peer
            && self.destination_service.as_deref() == k.destination_service
            && self.peer_principal.as_deref() == k.peer_principal
            && self.local_principal.as_deref() == k.local_principal
            && self.protocol == k.protocol
            && self.response_code == k.response_code
            && self.grpc == k.grpc
            && self.flags == k.flags
            && self.mtls == k.mtls
    }
}

/// One worker's counters, on cache lines of their own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

#[derive(Debug)]
struct Entry<S> {
    /// `name="value",…` already escaped, in Istio's order.
    labels: String,
    /// `grpc` series also expose the message counters.
    grpc: bool,
    /// Per worker slot (`workers::slot()`); rendering sums them.
    series: Box<[Padded<S>]>,
}

impl<S> Entry<S> {
    fn mine(&self) -> &S {
        &self.series[workers::slot() % self.series.len()].0
    }

    fn sum(&self, get: impl Fn(&S) -> u64) -> u64 {
        self.series.iter().map(|s| get(&s.0)).sum()
    }
}

/// A key and the entry it counts into.
type Alias<S> = Arc<(Key, Arc<Entry<S>>)>;

/// A worker's copy of the table's lookup (entries are never removed, so copies stay
/// valid): finding a series touches no lock another worker uses.
type LocalIndex<S> = Mutex<HashMap<u64, Vec<Alias<S>>, RandomState>>;

#[derive(Debug)]
struct Maps<S> {
    /// Lookup by key hash; several keys may alias one entry when they render the same
    /// labels (e.g. principals that only show under mTLS).
    by_key: HashMap<u64, Vec<Alias<S>>>,
    /// One entry per distinct label string: an exposition never repeats a series.
    by_labels: HashMap<String, Arc<Entry<S>>>,
    keys: usize,
}

impl<S> Default for Maps<S> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            by_labels: HashMap::new(),
            keys: 0,
        }
    }
}

/// Series per table beyond which new label sets are not counted: label values such as
/// the Host-header fallback of `destination_service` come from clients, and memory
/// must stay bounded whatever they send.
pub const MAX_SERIES: usize = 20_000;

#[derive(Debug)]
struct Table<S> {
    hasher: RandomState,
    maps: RwLock<Maps<S>>,
    /// Per worker slot.
    local: Box<[Padded<LocalIndex<S>>]>,
    overflow: AtomicU64,
    max: usize,
}

impl<S> Table<S> {
    fn new(max: usize) -> Self {
        Self {
            hasher: RandomState::default(),
            maps: RwLock::default(),
            local: (0..workers::SLOTS)
                .map(|_| Padded(Mutex::new(HashMap::default())))
                .collect(),
            overflow: AtomicU64::new(0),
            max,
        }
    }
}

impl<S: Default> Table<S> {
    /// Runs `count` on the key's series, creating it unless the table is full. A known
    /// series is counted under the read lock, without touching the entry's refcount
    /// (every worker thread counts into the same few series).
    fn count(
        &self,
        key: &KeyRef<'_>,
        tcp: bool,
        local: &PeerMetadata,
        peer: Option<&Arc<PeerMetadata>>,
        count: impl FnOnce(&S),
    ) {
        let hash = self.hasher.hash_one(key);
        let mut index = self.local[workers::slot() % self.local.len()]
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(a) = index
            .get(&hash)
            .and_then(|v| v.iter().find(|a| a.0.matches(key)))
        {
            count(a.1.mine());
            return;
        }
        let found = self.maps.read().ok().and_then(|maps| {
            maps.by_key
                .get(&hash)
                .and_then(|v| v.iter().find(|a| a.0.matches(key)).cloned())
        });
        let Some(alias) = found.or_else(|| self.create(hash, key, tcp, local, peer)) else {
            return;
        };
        count(alias.1.mine());
        index.entry(hash).or_default().push(alias);
    }

    fn create(
        &self,
        hash: u64,
        key: &KeyRef<'_>,
        tcp: bool,
        local: &PeerMetadata,
        peer: Option<&Arc<PeerMetadata>>,
    ) -> Option<Alias<S>> {
        let labels = render_labels(key, tcp, local);
        let owned = Key {
            inbound: key.inbound,
            peer: peer.cloned(),
            destination_service: key.destination_service.map(str::to_string),
            peer_principal: key.peer_principal.map(str::to_string),
            local_principal: key.local_principal.map(str::to_string),
            protocol: key.protocol,
            response_code: key.response_code,
            grpc: key.grpc,
            flags: key.flags,
            mtls: key.mtls,
        };
        let mut maps = self.maps.write().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = maps
            .by_key
            .get(&hash)
            .and_then(|v| v.iter().find(|a| a.0.matches(key)))
        {
            return Some(a.clone());
        }
        if maps.keys >= self.max {
            drop(maps);
            if self.overflow.fetch_add(1, Relaxed) == 0 {
                tracing::warn!(
                    max = self.max,
                    "too many distinct metric label sets; new ones are not counted (often many Host headers for unknown services)"
                );
            }
            return None;
        }
        let entry = match maps.by_labels.get(&labels) {
            Some(e) => e.clone(),
            None => {
                let e = Arc::new(Entry {
                    grpc: key.protocol == "grpc",
                    labels: labels.clone(),
                    series: (0..workers::slots_in_use())
                        .map(|_| Padded::default())
                        .collect(),
                });
                maps.by_labels.insert(labels, e.clone());
                e
            }
        };
        let alias = Arc::new((owned, entry));
        maps.by_key.entry(hash).or_default().push(alias.clone());
        maps.keys += 1;
        Some(alias)
    }

    fn entries(&self) -> Vec<Arc<Entry<S>>> {
        let maps = self.maps.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = maps.by_labels.values().cloned().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }
}

/// The standard metrics of one proxy.
#[derive(Debug)]
pub struct Metrics {
    http: Table<HttpSeries>,
    tcp: Table<TcpSeries>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::with_limit(MAX_SERIES)
    }
}

fn key_of<'a>(info: &'a StreamInfo) -> KeyRef<'a> {
    let tcp = info.protocol.is_none();
    let grpc = if tcp { None } else { grpc_status(info) };
    let inbound = info.direction == Direction::Inbound;
    // Principals only show under mTLS; the policy label only at the destination.
    let principal =
        |p: &'a Option<String>| p.as_deref().filter(|s| info.mutual_tls && !s.is_empty());
    KeyRef {
        inbound,
        peer: info.peer.as_deref().map(PeerKey),
        destination_service: info
            .destination_service
            .as_deref()
            .or(if tcp { None } else { info.authority.as_deref() })
            .filter(|s| !s.is_empty()),
        peer_principal: principal(&info.peer_principal),
        local_principal: principal(&info.local_principal),
        protocol: if tcp {
            "tcp"
        } else if grpc.is_some() {
            "grpc"
        } else {
            "http"
        },
        response_code: if tcp { 0 } else { info.response_code },
        grpc,
        flags: info.flags.0,
        mtls: info.mutual_tls && inbound,
    }
}

impl Metrics {
    /// Metrics that keep at most `max` label sets per table.
    pub fn with_limit(max: usize) -> Self {
        Self {
            http: Table::new(max),
            tcp: Table::new(max),
        }
    }

    /// Counts one finished request or TCP connection.
    pub fn record(&self, local: &PeerMetadata, info: &StreamInfo) {
        let key = key_of(info);
        if info.protocol.is_none() {
            self.tcp.count(&key, true, local, info.peer.as_ref(), |s| {
                s.sent.fetch_add(info.bytes_sent, Relaxed);
                s.received.fetch_add(info.bytes_received, Relaxed);
                if !info.tcp_open_reported {
                    s.opened.fetch_add(1, Relaxed);
                }
                s.closed.fetch_add(1, Relaxed);
            });
            return;
        }
        self.http
            .count(&key, false, local, info.peer.as_ref(), |s| {
                s.requests.fetch_add(1, Relaxed);
                s.duration
                    .observe(u64::try_from(info.duration.as_millis()).unwrap_or(u64::MAX));
                s.request_bytes.observe(info.bytes_received);
                s.response_bytes.observe(info.bytes_sent);
                if let Some(n) = info.request_messages {
                    s.request_messages.fetch_add(n, Relaxed);
                }
                if let Some(n) = info.response_messages {
                    s.response_messages.fetch_add(n, Relaxed);
                }
            });
    }

    /// Counts a TCP connection opened (before its close record).
    pub fn record_tcp_open(&self, local: &PeerMetadata, info: &StreamInfo) {
        let key = key_of(info);
        self.tcp.count(&key, true, local, info.peer.as_ref(), |s| {
            s.opened.fetch_add(1, Relaxed);
        });
    }

    /// Records not counted because [`MAX_SERIES`] was reached.
    pub fn overflow(&self) -> u64 {
        self.http.overflow.load(Relaxed) + self.tcp.overflow.load(Relaxed)
    }

    /// Envoy-shaped Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let http = self.http.entries();
        let tcp = self.tcp.entries();
        counter(&mut out, "istio_requests_total", &http, |s| {
            s.requests.load(Relaxed)
        });
        histogram(
            &mut out,
            "istio_request_duration_milliseconds",
            &http,
            |s| &s.duration,
        );
        histogram(&mut out, "istio_request_bytes", &http, |s| &s.request_bytes);
        histogram(&mut out, "istio_response_bytes", &http, |s| {
            &s.response_bytes
        });
        // Istio counts messages for gRPC streams only.
        let grpc: Vec<_> = http.iter().filter(|e| e.grpc).cloned().collect();
        counter(&mut out, "istio_request_messages_total", &grpc, |s| {
            s.request_messages.load(Relaxed)
        });
        counter(&mut out, "istio_response_messages_total", &grpc, |s| {
            s.response_messages.load(Relaxed)
        });
        counter(&mut out, "istio_tcp_sent_bytes_total", &tcp, |s| {
            s.sent.load(Relaxed)
        });
        counter(&mut out, "istio_tcp_received_bytes_total", &tcp, |s| {
            s.received.load(Relaxed)
        });
        counter(&mut out, "istio_tcp_connections_opened_total", &tcp, |s| {
            s.opened.load(Relaxed)
        });
        counter(&mut out, "istio_tcp_connections_closed_total", &tcp, |s| {
            s.closed.load(Relaxed)
        });
        // Istio's build-info gauge; the tag is ironmesh's version.
        let _ = writeln!(out, "# TYPE istio_build gauge");
        let _ = writeln!(
            out,
            "istio_build{{component=\"proxy\",tag=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

fn counter<S>(out: &mut String, name: &str, entries: &[Arc<Entry<S>>], get: impl Fn(&S) -> u64) {
    if entries.is_empty() {
        return;
    }
    let _ = writeln!(out, "# TYPE {name} counter");
    for e in entries {
        let _ = writeln!(out, "{name}{{{}}} {}", e.labels, e.sum(&get));
    }
}

fn histogram<S>(
    out: &mut String,
    name: &str,
    entries: &[Arc<Entry<S>>],
    get: impl Fn(&S) -> &Histogram,
) {
    if entries.is_empty() {
        return;
    }
    let _ = writeln!(out, "# TYPE {name} histogram");
    for e in entries {
        let each = |f: &dyn Fn(&Histogram) -> u64| e.sum(|s| f(get(s)));
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += each(&|h| h.buckets[i].load(Relaxed));
            let _ = writeln!(
                out,
                "{name}_bucket{{{},le=\"{}\"}} {cumulative}",
                e.labels,
                envoy_double(*b)
            );
        }
        let count = each(&|h| h.count.load(Relaxed));
        let _ = writeln!(out, "{name}_bucket{{{},le=\"+Inf\"}} {count}", e.labels);
        let sum = each(&|h| h.sum.load(Relaxed));
        let _ = writeln!(out, "{name}_sum{{{}}} {sum}", e.labels);
        let _ = writeln!(out, "{name}_count{{{}}} {count}", e.labels);
    }
}

/// A bucket bound as Envoy 1.40 prints it: shortest decimal, no exponent (`0.5`,
/// `300000`, `3600000`), as checked against Envoy's own histograms.
pub fn envoy_double(v: f64) -> String {
    format!("{v}")
}

fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

/// `name.namespace.svc…` → (name, namespace); other hosts (the Host-header fallback)
/// keep their whole value, port included, as Istio reports them.
fn service_name_ns(fqdn: &str) -> (&str, Option<&str>) {
    let host = fqdn
        .rsplit_once(':')
        .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        .map_or(fqdn, |(h, _)| h);
    let mut parts = host.splitn(4, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(ns), Some("svc")) => (name, Some(ns)),
        _ => (fqdn, None),
    }
}

fn render_labels(k: &KeyRef<'_>, tcp: bool, local: &PeerMetadata) -> String {
    // reporter=source: local is the source, the peer the destination; inverse inbound.
    let (src, dst) = if k.inbound {
        (k.peer.map(|p| p.0), Some(local))
    } else {
        (Some(local), k.peer.map(|p| p.0))
    };
    // key_of keeps principals only under mTLS.
    let (src_principal, dst_principal) = if k.inbound {
        (k.peer_principal, k.local_principal)
    } else {
        (k.local_principal, k.peer_principal)
    };
    let field = |p: Option<&PeerMetadata>, f: fn(&PeerMetadata) -> &str| {
        p.map_or("unknown", |p| or_unknown(f(p))).to_string()
    };
    let revision = |p: Option<&PeerMetadata>| match p {
        Some(p) if p.canonical_revision.is_empty() => "latest".to_string(),
        p => field(p, |p| &p.canonical_revision),
    };
    let (svc_name, svc_ns) = match k.destination_service {
        Some(s) => {
            let (n, ns) = service_name_ns(s);
            (
                n.to_string(),
                ns.map(str::to_string)
                    .unwrap_or_else(|| field(dst, |p| &p.namespace)),
            )
        }
        None => ("unknown".to_string(), field(dst, |p| &p.namespace)),
    };
    let policy = match (k.inbound, k.mtls) {
        (false, _) => "unknown",
        (true, true) => "mutual_tls",
        (true, false) => "none",
    };
    let grpc = k.grpc.map(|g| g.to_string()).unwrap_or_default();
    let values: [String; 25] = [
        if k.inbound { "destination" } else { "source" }.to_string(),
        field(src, |p| &p.workload),
        field(src, |p| &p.canonical_service),
        revision(src),
        field(src, |p| &p.namespace),
        src_principal.unwrap_or("unknown").to_string(),
        field(src, |p| &p.app),
        field(src, |p| &p.version),
        field(src, |p| &p.cluster),
        field(dst, |p| &p.workload),
        field(dst, |p| &p.namespace),
        dst_principal.unwrap_or("unknown").to_string(),
        field(dst, |p| &p.app),
        field(dst, |p| &p.version),
        k.destination_service.unwrap_or("unknown").to_string(),
        field(dst, |p| &p.canonical_service),
        revision(dst),
        svc_name,
        svc_ns,
        field(dst, |p| &p.cluster),
        k.protocol.to_string(),
        k.response_code.to_string(),
        grpc,
        super::ResponseFlags(k.flags).to_string(),
        policy.to_string(),
    ];
    let mut out = String::with_capacity(700);
    for (i, (name, value)) in HTTP_LABELS.iter().zip(values.iter()).enumerate() {
        if tcp && (*name == "response_code" || *name == "grpc_response_status") {
            continue;
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_into(&mut out, value);
        out.push('"');
    }
    out
}

#[cfg(test)]
mod tests;
