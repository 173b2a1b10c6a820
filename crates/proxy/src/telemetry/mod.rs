//! Telemetry: access logs (Istio's TEXT default, JSON, custom `accessLogFormat`),
//! Envoy response flags, and Istio's standard metrics with their labels.
//!
//! CONTRACT between the data-plane core (which fills a [`StreamInfo`] per request or
//! TCP connection and calls [`Telemetry::record`]) and the telemetry module (which
//! formats and counts). Fields may be ADDED; existing names and meanings stay.
//! PLACEHOLDER bodies — the telemetry work fills them in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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

/// Envoy's response flags (`%RESPONSE_FLAGS%`), as a bit set. The short names are
/// Envoy's (`UH`, `UF`, `UO`, `NR`, `URX`, `UC`, `UT`, `DC`, `FI`, `DI`, `LR`, `RL`,
/// `UAEX`, `RLSE`, `IH`, `SI`, `DPE`, `UPE`, `UMSDR`, `OM`, `DF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseFlags(pub u32);

impl ResponseFlags {
    /// Failed local health check.
    pub const LH: u32 = 1 << 0;
    /// No healthy upstream hosts (`UH`).
    pub const UH: u32 = 1 << 1;
    /// Upstream request timeout (`UT`).
    pub const UT: u32 = 1 << 2;
    /// Local reset (`LR`).
    pub const LR: u32 = 1 << 3;
    /// Upstream remote reset (`UR`).
    pub const UR: u32 = 1 << 4;
    /// Upstream connection failure (`UF`).
    pub const UF: u32 = 1 << 5;
    /// Upstream connection termination (`UC`).
    pub const UC: u32 = 1 << 6;
    /// Upstream overflow / circuit breaking (`UO`).
    pub const UO: u32 = 1 << 7;
    /// No route configured (`NR`).
    pub const NR: u32 = 1 << 8;
    /// Delay injected (`DI`).
    pub const DI: u32 = 1 << 9;
    /// Fault injected (`FI`).
    pub const FI: u32 = 1 << 10;
    /// Rate limited (`RL`).
    pub const RL: u32 = 1 << 11;
    /// Unauthorized external service (`UAEX`).
    pub const UAEX: u32 = 1 << 12;
    /// Rate limit service error (`RLSE`).
    pub const RLSE: u32 = 1 << 13;
    /// Downstream connection termination (`DC`).
    pub const DC: u32 = 1 << 14;
    /// Upstream retry limit exceeded (`URX`).
    pub const URX: u32 = 1 << 15;
    /// Stream idle timeout (`SI`).
    pub const SI: u32 = 1 << 16;
    /// Invalid Envoy request headers (`IH`).
    pub const IH: u32 = 1 << 17;
    /// Downstream protocol error (`DPE`).
    pub const DPE: u32 = 1 << 18;
    /// Upstream max stream duration reached (`UMSDR`).
    pub const UMSDR: u32 = 1 << 19;
    /// Upstream protocol error (`UPE`).
    pub const UPE: u32 = 1 << 20;
    /// No cluster found (`NC`).
    pub const NC: u32 = 1 << 21;
    /// Overload manager (`OM`).
    pub const OM: u32 = 1 << 22;
    /// DNS resolution failed (`DF`).
    pub const DF: u32 = 1 << 23;

    /// Adds a flag.
    pub fn set(&mut self, flag: u32) {
        self.0 |= flag;
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
    pub method: Option<String>,
    /// `x-envoy-original-path` if set, else `:path`.
    pub path: Option<String>,
    pub authority: Option<String>,
    /// 0 when no response was sent (TCP, or the downstream went away first).
    pub response_code: u16,
    /// `via_upstream`, `route_not_found`, `no_healthy_upstream`, `upstream_reset_before_response_started{connection_failure}`, …
    pub response_code_details: Option<String>,
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
}

/// A workload's identity labels: the proxy's own (from node metadata) and its peers'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// The access loggers of one listener filter (HCM or TCP proxy), compiled from the
/// xDS `access_log` list (`envoy.access_loggers.file` with `text_format_source` or
/// `json_format`, as discovery emits from MeshConfig `accessLogFile` /
/// `accessLogEncoding` / `accessLogFormat`). Empty = no access log.
#[derive(Debug, Clone, Default)]
pub struct AccessLogs {}

impl AccessLogs {
    /// Compiles the xDS access-log list; `Err` names the unsupported part (the proxy
    /// NACKs the listener with that text).
    pub fn from_xds(
        _logs: &[ironmesh_xds::pb::envoy::config::accesslog::v3::AccessLog],
    ) -> Result<AccessLogs, String> {
        Ok(AccessLogs {})
    }
}

/// The proxy's telemetry sink: one per process, shared by every listener.
#[derive(Debug, Default)]
pub struct Telemetry {}

impl Telemetry {
    /// `local` is this proxy's own workload (from node metadata).
    pub fn new(_local: PeerMetadata) -> Self {
        Self {}
    }

    /// Counts the stream in the standard metrics and writes its access-log lines.
    pub fn record(&self, _info: &StreamInfo, _logs: &AccessLogs) {}

    /// Prometheus text exposition of every metric (`/stats/prometheus`).
    pub fn render_prometheus(&self) -> String {
        String::new()
    }
}
