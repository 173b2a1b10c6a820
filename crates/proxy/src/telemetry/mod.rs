//! Telemetry: access logs (Istio's TEXT default, JSON, custom `accessLogFormat`),
//! Envoy response flags, and Istio's standard metrics with their labels.
//!
//! CONTRACT between the data-plane core (which fills a [`StreamInfo`] per request or
//! TCP connection and calls [`Telemetry::record`]) and the telemetry module (which
//! formats and counts). Fields may be ADDED; existing names and meanings stay.
//!
//! Layout: `flags` (response flags), `format` (Envoy's command-operator engine),
//! `access_log` (xDS loggers and their writers), `metrics` (Istio's standard metrics),
//! `peer` (workload metadata and Istio's metadata exchange).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod access_log;
pub mod exchange;
mod flags;
pub mod format;
mod metrics;
mod peer;
mod time;

pub use access_log::{reopen_all as reopen_access_logs, AccessLogs};
pub use flags::ResponseFlags;
pub use format::{FormatError, LogFormat};
pub use metrics::MAX_SERIES;
pub use peer::{PeerCache, PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER};

/// Which side of the proxy saw the stream: `reporter=source` for outbound (the client
/// sidecar / gateway), `reporter=destination` for inbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Client side: sidecar outbound and gateways (`reporter="source"`).
    #[default]
    Outbound,
    /// Server side: sidecar inbound (`reporter="destination"`).
    Inbound,
}

/// Text a stream's record holds: mostly constants (methods, schemes, response code
/// details), which then cost no allocation per request.
pub type Text = Cow<'static, str>;

/// A method as [`Text`], borrowed for the standard ones.
pub fn method_text(m: &http::Method) -> Text {
    // A static, so that `as_str` of an element is `'static`.
    static STANDARD: [http::Method; 9] = [
        http::Method::GET,
        http::Method::POST,
        http::Method::PUT,
        http::Method::DELETE,
        http::Method::HEAD,
        http::Method::OPTIONS,
        http::Method::PATCH,
        http::Method::CONNECT,
        http::Method::TRACE,
    ];
    match STANDARD.iter().find(|s| *s == m) {
        Some(s) => Cow::Borrowed(s.as_str()),
        None => Cow::Owned(m.as_str().to_string()),
    }
}

/// Everything known about one HTTP request or one TCP connection when it ends; what
/// Envoy's `StreamInfo` is to its access loggers and stats filters.
#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    pub direction: Direction,
    /// Wall-clock start (`%START_TIME%`).
    pub start_time: Option<SystemTime>,
    /// Whole stream duration (`%DURATION%`).
    pub duration: Duration,
    /// Start → last request byte received (`%REQUEST_DURATION%`).
    pub request_duration: Option<Duration>,
    /// Start → first upstream response byte (`%RESPONSE_DURATION%`).
    pub response_duration: Option<Duration>,
    /// First → last response byte sent downstream (`%RESPONSE_TX_DURATION%`).
    pub response_tx_duration: Option<Duration>,
    /// `HTTP/1.1`, `HTTP/2`, … ; `None` for TCP.
    pub protocol: Option<&'static str>,
    /// Request headers as received (after the proxy's own additions such as
    /// x-request-id); `None` for TCP.
    pub request_headers: Option<Arc<http::HeaderMap>>,
    pub method: Option<Text>,
    /// `x-envoy-original-path` if set, else `:path`.
    pub path: Option<String>,
    pub authority: Option<String>,
    /// 0 when no response was sent (TCP, or the downstream went away first).
    pub response_code: u16,
    /// `via_upstream`, `route_not_found`, `no_healthy_upstream`, `upstream_reset_before_response_started{connection_failure}`, …
    pub response_code_details: Option<Text>,
    pub response_headers: Option<Arc<http::HeaderMap>>,
    pub response_trailers: Option<Arc<http::HeaderMap>>,
    pub grpc_status: Option<i32>,
    pub flags: ResponseFlags,
    /// Body bytes received from downstream (`%BYTES_RECEIVED%`).
    pub bytes_received: u64,
    /// Body bytes sent downstream (`%BYTES_SENT%`).
    pub bytes_sent: u64,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_cluster: Option<String>,
    pub upstream_local_address: Option<SocketAddr>,
    pub upstream_transport_failure_reason: Option<String>,
    /// `%UPSTREAM_SERVICE_TIME%` (ms), as `x-envoy-upstream-service-time`.
    pub upstream_service_time: Option<Duration>,
    pub downstream_local_address: Option<SocketAddr>,
    pub downstream_remote_address: Option<SocketAddr>,
    /// SNI the downstream sent.
    pub requested_server_name: Option<String>,
    pub route_name: Option<String>,
    pub connection_termination_details: Option<String>,
    /// The destination service's fqdn (`destination_service` label); for outbound the
    /// cluster's service, for inbound the local service.
    pub destination_service: Option<String>,
    /// Peer workload, when known: for outbound the chosen endpoint's metadata, for
    /// inbound what the client's proxy sent (metadata exchange).
    pub peer: Option<Arc<PeerMetadata>>,
    /// `mutual_tls` when the connection to the peer was mTLS, else `none`.
    pub mutual_tls: bool,
    /// Peer principal (`spiffe://…`) when mTLS.
    pub peer_principal: Option<String>,
    /// This proxy's own principal on that connection (`spiffe://…`) when mTLS; the
    /// `source_principal` of outbound and `destination_principal` of inbound metrics.
    pub local_principal: Option<String>,
    /// Protocol spoken to the upstream when it differs from `protocol`
    /// (`%UPSTREAM_PROTOCOL%`; only shown once an upstream connection exists).
    pub upstream_protocol: Option<&'static str>,
    /// `%STREAM_ID%` when not the request's `x-request-id` (Envoy gives TCP
    /// connections a random UUID).
    pub stream_id: Option<String>,
    /// `:scheme` of the request (`%REQ(:SCHEME)%`).
    pub scheme: Option<Text>,
    /// Downstream connection id (`%CONNECTION_ID%`).
    pub connection_id: u64,
    /// Upstream attempts made (`%UPSTREAM_REQUEST_ATTEMPT_COUNT%`).
    pub attempt_count: Option<u32>,
    /// gRPC messages received from downstream (`istio_request_messages_total`).
    pub request_messages: Option<u64>,
    /// gRPC messages sent downstream (`istio_response_messages_total`).
    pub response_messages: Option<u64>,
    /// For TCP: the open was already counted by [`Telemetry::record_tcp_open`], so the
    /// closing [`Telemetry::record`] must not count it again.
    pub tcp_open_reported: bool,
}

impl StreamInfo {
    /// The request-side fields from a received request: method, path (the
    /// `x-envoy-original-path` if set), authority (URI authority, else `Host`), scheme,
    /// protocol and the headers. The rest is the core's to fill as the stream goes.
    pub fn for_request(
        direction: Direction,
        start_time: SystemTime,
        parts: &http::request::Parts,
    ) -> StreamInfo {
        let headers = &parts.headers;
        let path = headers
            .get("x-envoy-original-path")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| parts.uri.path_and_query().map(|p| p.as_str().to_string()));
        let authority = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                headers
                    .get(http::header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            });
        StreamInfo {
            direction,
            start_time: Some(start_time),
            protocol: Some(protocol_name(parts.version)),
            method: Some(method_text(&parts.method)),
            path,
            authority,
            scheme: Some(Cow::Owned(
                parts.uri.scheme_str().unwrap_or("http").to_string(),
            )),
            request_headers: Some(Arc::new(headers.clone())),
            ..Default::default()
        }
    }
}

/// The request headers to keep in a [`StreamInfo`]: all of them when an access log
/// may print any, else only what the metrics read (a gRPC `content-type`). Copying the
/// whole map was a measurable share of a proxied request's cost.
pub fn request_headers_for(logs: &AccessLogs, h: &http::HeaderMap) -> Option<Arc<http::HeaderMap>> {
    if !logs.is_empty() {
        return Some(Arc::new(h.clone()));
    }
    let ct = h.get(http::header::CONTENT_TYPE)?;
    if !ct.as_bytes().starts_with(b"application/grpc") {
        return None;
    }
    let mut only = http::HeaderMap::with_capacity(1);
    only.insert(http::header::CONTENT_TYPE, ct.clone());
    Some(Arc::new(only))
}

/// The response headers to keep in a [`StreamInfo`]: only access logs read them (the
/// metrics take `grpc-status` from [`StreamInfo::grpc_status`], which the core sets).
pub fn response_headers_for(
    logs: &AccessLogs,
    h: &http::HeaderMap,
) -> Option<Arc<http::HeaderMap>> {
    (!logs.is_empty()).then(|| Arc::new(h.clone()))
}

/// `%PROTOCOL%` for an HTTP version, as Envoy spells it.
pub fn protocol_name(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// A workload's identity labels: the proxy's own (from node metadata) and its peers'.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PeerMetadata {
    pub workload: String,
    pub namespace: String,
    pub app: String,
    pub version: String,
    pub canonical_service: String,
    pub canonical_revision: String,
    pub cluster: String,
    pub service_account: String,
    /// The pod's labels.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The proxy's telemetry sink: one per process, shared by every listener.
#[derive(Debug, Default)]
pub struct Telemetry {
    local: PeerMetadata,
    metrics: metrics::Metrics,
    peers: PeerCache,
}

impl Telemetry {
    /// `local` is this proxy's own workload (from node metadata); canonical
    /// service/revision, app and version left empty are derived from its labels.
    pub fn new(local: PeerMetadata) -> Self {
        Self {
            local: local.with_derived_labels(),
            metrics: metrics::Metrics::default(),
            peers: PeerCache::default(),
        }
    }

    /// The peer named by Istio's metadata-exchange headers (`x-envoy-peer-metadata`),
    /// decoded once per distinct value; set it as `StreamInfo::peer`.
    pub fn peer_from_headers(&self, headers: &http::HeaderMap) -> Option<Arc<PeerMetadata>> {
        self.peers.from_headers(headers)
    }

    /// The peer named by `x-envoy-peer-metadata` and `-id` values.
    pub fn peer_from_raw(&self, metadata: &[u8], id: Option<&[u8]>) -> Option<Arc<PeerMetadata>> {
        self.peers.from_raw(metadata, id)
    }

    /// Like [`Telemetry::new`] with at most `max` metric label sets per table (the
    /// default is [`MAX_SERIES`]).
    pub fn with_series_limit(local: PeerMetadata, max: usize) -> Self {
        Self {
            metrics: metrics::Metrics::with_limit(max),
            ..Self::new(local)
        }
    }

    /// This proxy's own workload.
    pub fn local(&self) -> &PeerMetadata {
        &self.local
    }

    /// Counts the stream in the standard metrics and writes its access-log lines.
    /// For TCP (`protocol == None`) this is the close: bytes, `closed`, and `opened`
    /// unless [`Telemetry::record_tcp_open`] already counted it.
    pub fn record(&self, info: &StreamInfo, logs: &AccessLogs) {
        self.metrics.record(&self.local, info);
        logs.log(info);
    }

    /// Counts a TCP connection as opened as soon as the upstream is chosen (Envoy
    /// counts at open, so long-lived connections show up before they close). Set
    /// `tcp_open_reported` on the closing record afterwards.
    pub fn record_tcp_open(&self, info: &StreamInfo) {
        self.metrics.record_tcp_open(&self.local, info);
    }

    /// Records not counted because the series limit was reached
    /// ([`MAX_SERIES`] label sets per table).
    pub fn metrics_overflow(&self) -> u64 {
        self.metrics.overflow()
    }

    /// Prometheus text exposition of every metric (`/stats/prometheus`), shaped like
    /// Envoy's (`# TYPE` lines, no `# EOF`).
    pub fn render_prometheus(&self) -> String {
        self.metrics.render()
    }
}
