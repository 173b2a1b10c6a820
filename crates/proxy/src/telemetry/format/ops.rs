//! The command operators: parsing `NAME(arg)` and reading each from a [`StreamInfo`].

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use super::{FormatError, Value};
use crate::telemetry::{time, StreamInfo};

/// Which part of a socket address an operator prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrPart {
    Full,
    WithoutPort,
    Port,
}

/// `%GRPC_STATUS(...)%` rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcFormat {
    Camel,
    Snake,
    Number,
}

/// Where `%PATH%` reads the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSource {
    Orig,
    Path,
    OrigOrPath,
}

/// Which stream address an address operator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr {
    UpstreamHost,
    /// The connected upstream peer: like the host, but only once a connection exists
    /// (Envoy leaves it empty after a connect failure).
    UpstreamRemote,
    UpstreamLocal,
    DownstreamLocal,
    DownstreamRemote,
}

/// One Envoy command operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    StartTime(Option<String>),
    Duration,
    RequestDuration,
    ResponseDuration,
    ResponseTxDuration,
    Protocol,
    UpstreamProtocol,
    ResponseCode,
    ResponseCodeDetails,
    ConnectionTerminationDetails,
    ResponseFlags,
    ResponseFlagsLong,
    BytesReceived,
    BytesSent,
    UpstreamCluster,
    UpstreamTransportFailureReason,
    Address(Addr, AddrPart),
    DownstreamPeerUriSan,
    DownstreamLocalUriSan,
    UpstreamPeerUriSan,
    RequestedServerName,
    RouteName,
    GrpcStatus(GrpcFormat),
    /// `%REQ(A?B)%`: header names, lower-cased; the second is the fallback.
    Req(String, Option<String>),
    /// `%REQ_WITHOUT_QUERY(A?B)%`.
    ReqWithoutQuery(String, Option<String>),
    Resp(String, Option<String>),
    Trailer(String, Option<String>),
    Hostname(String),
    ConnectionId,
    AttemptCount,
    /// `%PATH(WQ|NQ:ORIG|PATH|ORIG_OR_PATH)%`: with or without the query, from
    /// `x-envoy-original-path`, `:path`, or the first of them.
    Path {
        query: bool,
        source: PathSource,
    },
    /// `%ENVIRONMENT(X)%`, read once at config time.
    Environment(Option<String>),
    /// `%TRACE_ID%`: from `traceparent` or `x-b3-traceid`.
    TraceId,
    /// `%STREAM_ID%`: the request id for HTTP.
    StreamId,
    /// `%ACCESS_LOG_TYPE%`.
    AccessLogType,
    /// `%DYNAMIC_METADATA(...)%` and `%FILTER_STATE(...)%`: ironmesh sets none, so
    /// these are always missing (documented in docs/telemetry.md).
    AlwaysMissing,
}

/// Envoy accepts `:N` only on these operators and rejects the config otherwise.
pub fn allows_length(name: &str) -> bool {
    matches!(
        name,
        "REQ"
            | "REQUEST_HEADER"
            | "RESP"
            | "RESPONSE_HEADER"
            | "TRAILER"
            | "RESPONSE_TRAILER"
            | "REQ_WITHOUT_QUERY"
            | "PATH"
            | "ENVIRONMENT"
            | "DYNAMIC_METADATA"
            | "FILTER_STATE"
            | "UPSTREAM_FILTER_STATE"
    )
}

fn header_args(name: &str, arg: Option<&str>) -> Result<(String, Option<String>), FormatError> {
    let arg = arg.filter(|a| !a.is_empty()).ok_or_else(|| {
        FormatError(format!(
            "access log format: %{name}(...)% needs a header name, e.g. %{name}(X-REQUEST-ID)%"
        ))
    })?;
    let mut parts = arg.splitn(3, '?');
    let main = parts.next().unwrap_or_default().to_ascii_lowercase();
    let alt = parts.next().map(str::to_ascii_lowercase);
    if parts.next().is_some() {
        return Err(FormatError(format!(
            "access log format: %{name}({arg})% has more than one '?' alternative"
        )));
    }
    Ok((main, alt))
}

fn no_arg(name: &str, arg: Option<&str>, op: Op) -> Result<Op, FormatError> {
    match arg {
        None | Some("") => Ok(op),
        Some(a) => Err(FormatError(format!(
            "access log format: %{name}% takes no argument, got ({a})"
        ))),
    }
}

impl Op {
    /// Compiles operator `name` with its parenthesised argument.
    pub fn parse(name: &str, arg: Option<&str>) -> Result<Op, FormatError> {
        use Addr::*;
        use AddrPart::*;
        let simple = |op: Op| no_arg(name, arg, op);
        match name {
            "START_TIME" => {
                if let Some(f) = arg {
                    time::validate(f).map_err(|e| FormatError(format!("access log format: {e}")))?;
                }
                Ok(Op::StartTime(arg.filter(|a| !a.is_empty()).map(str::to_string)))
            }
            "DURATION" => simple(Op::Duration),
            "REQUEST_DURATION" => simple(Op::RequestDuration),
            "RESPONSE_DURATION" => simple(Op::ResponseDuration),
            "RESPONSE_TX_DURATION" => simple(Op::ResponseTxDuration),
            "PROTOCOL" => simple(Op::Protocol),
            "UPSTREAM_PROTOCOL" => simple(Op::UpstreamProtocol),
            "RESPONSE_CODE" => simple(Op::ResponseCode),
            "RESPONSE_CODE_DETAILS" => simple(Op::ResponseCodeDetails),
            "CONNECTION_TERMINATION_DETAILS" => simple(Op::ConnectionTerminationDetails),
            "RESPONSE_FLAGS" => simple(Op::ResponseFlags),
            "RESPONSE_FLAGS_LONG" => simple(Op::ResponseFlagsLong),
            "BYTES_RECEIVED" => simple(Op::BytesReceived),
            "BYTES_SENT" => simple(Op::BytesSent),
            "UPSTREAM_CLUSTER" | "UPSTREAM_CLUSTER_RAW" => simple(Op::UpstreamCluster),
            "UPSTREAM_TRANSPORT_FAILURE_REASON" => simple(Op::UpstreamTransportFailureReason),
            "UPSTREAM_HOST" => simple(Op::Address(UpstreamHost, Full)),
            "UPSTREAM_REMOTE_ADDRESS" => simple(Op::Address(UpstreamRemote, Full)),
            "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => simple(Op::Address(UpstreamRemote, WithoutPort)),
            "UPSTREAM_REMOTE_PORT" => simple(Op::Address(UpstreamRemote, Port)),
            "UPSTREAM_LOCAL_ADDRESS" => simple(Op::Address(UpstreamLocal, Full)),
            "UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => simple(Op::Address(UpstreamLocal, WithoutPort)),
            "UPSTREAM_LOCAL_PORT" => simple(Op::Address(UpstreamLocal, Port)),
            "DOWNSTREAM_LOCAL_ADDRESS" => simple(Op::Address(DownstreamLocal, Full)),
            "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => simple(Op::Address(DownstreamLocal, WithoutPort)),
            "DOWNSTREAM_LOCAL_PORT" => simple(Op::Address(DownstreamLocal, Port)),
            // No PROXY protocol: the direct and the "remote" peer are the same socket.
            "DOWNSTREAM_REMOTE_ADDRESS" | "DOWNSTREAM_DIRECT_REMOTE_ADDRESS" => {
                simple(Op::Address(DownstreamRemote, Full))
            }
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" | "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT" => {
                simple(Op::Address(DownstreamRemote, WithoutPort))
            }
            "DOWNSTREAM_REMOTE_PORT" | "DOWNSTREAM_DIRECT_REMOTE_PORT" => {
                simple(Op::Address(DownstreamRemote, Port))
            }
            "DOWNSTREAM_PEER_URI_SAN" => simple(Op::DownstreamPeerUriSan),
            "DOWNSTREAM_LOCAL_URI_SAN" => simple(Op::DownstreamLocalUriSan),
            "UPSTREAM_PEER_URI_SAN" => simple(Op::UpstreamPeerUriSan),
            "REQUESTED_SERVER_NAME" => simple(Op::RequestedServerName),
            "ROUTE_NAME" => simple(Op::RouteName),
            "CONNECTION_ID" => simple(Op::ConnectionId),
            "UPSTREAM_REQUEST_ATTEMPT_COUNT" => simple(Op::AttemptCount),
            "HOSTNAME" => simple(Op::Hostname(hostname())),
            "GRPC_STATUS" => Ok(Op::GrpcStatus(match arg {
                None | Some("") | Some("CAMEL_STRING") => GrpcFormat::Camel,
                Some("SNAKE_STRING") => GrpcFormat::Snake,
                Some("NUMBER") => GrpcFormat::Number,
                Some(other) => {
                    return Err(FormatError(format!(
                        "access log format: %GRPC_STATUS({other})%: use CAMEL_STRING, SNAKE_STRING or NUMBER"
                    )))
                }
            })),
            "REQ" | "REQUEST_HEADER" => {
                let (a, b) = header_args(name, arg)?;
                Ok(Op::Req(a, b))
            }
            "REQ_WITHOUT_QUERY" => {
                let (a, b) = header_args(name, arg)?;
                Ok(Op::ReqWithoutQuery(a, b))
            }
            "RESP" | "RESPONSE_HEADER" => {
                let (a, b) = header_args(name, arg)?;
                Ok(Op::Resp(a, b))
            }
            "TRAILER" | "RESPONSE_TRAILER" => {
                let (a, b) = header_args(name, arg)?;
                Ok(Op::Trailer(a, b))
            }
            "DYNAMIC_METADATA" | "FILTER_STATE" | "UPSTREAM_FILTER_STATE" => Ok(Op::AlwaysMissing),
            // No virtual clusters in Istio's routes.
            "VIRTUAL_CLUSTER_NAME" => simple(Op::AlwaysMissing),
            "TRACE_ID" => simple(Op::TraceId),
            "STREAM_ID" => simple(Op::StreamId),
            "ACCESS_LOG_TYPE" => simple(Op::AccessLogType),
            "ENVIRONMENT" => {
                let var = arg.filter(|a| !a.is_empty()).ok_or_else(|| {
                    FormatError("access log format: %ENVIRONMENT(NAME)% needs a variable name".into())
                })?;
                Ok(Op::Environment(std::env::var(var).ok()))
            }
            "PATH" => {
                let mut parts = arg.unwrap_or_default().split(':');
                let query = match parts.next().unwrap_or_default() {
                    "" | "WQ" => true,
                    "NQ" => false,
                    other => {
                        return Err(FormatError(format!(
                            "access log format: %PATH({other})%: use WQ or NQ"
                        )))
                    }
                };
                let source = match parts.next().unwrap_or_default() {
                    "" | "ORIG_OR_PATH" => PathSource::OrigOrPath,
                    "ORIG" => PathSource::Orig,
                    "PATH" => PathSource::Path,
                    other => {
                        return Err(FormatError(format!(
                            "access log format: %PATH(...:{other})%: use ORIG, PATH or ORIG_OR_PATH"
                        )))
                    }
                };
                Ok(Op::Path { query, source })
            }
            _ => Err(FormatError(format!(
                "access log format: command operator %{name}% is not supported by ironmesh-proxy (see docs/telemetry.md for the supported list)"
            ))),
        }
    }

    /// This operator's value for one stream.
    pub fn value<'a>(&self, info: &'a StreamInfo) -> Value<'a> {
        match self {
            Op::StartTime(fmt) => match info.start_time {
                Some(t) => Value::Str(Cow::Owned(time::format(
                    t,
                    fmt.as_deref().unwrap_or(time::DEFAULT_START_TIME),
                ))),
                None => Value::Missing,
            },
            Op::Duration => Value::Num(ms(info.duration)),
            Op::RequestDuration => opt_ms(info.request_duration),
            Op::ResponseDuration => opt_ms(info.response_duration),
            Op::ResponseTxDuration => opt_ms(info.response_tx_duration),
            Op::Protocol => info
                .protocol
                .map_or(Value::Missing, |p| Value::Str(Cow::Borrowed(p))),
            Op::UpstreamProtocol => info
                .upstream_local_address
                .and(info.upstream_protocol.or(info.protocol))
                .map_or(Value::Missing, |p| Value::Str(Cow::Borrowed(p))),
            Op::ResponseCode => Value::Num(u64::from(info.response_code)),
            Op::ResponseCodeDetails => opt_str(info.response_code_details.as_deref()),
            Op::ConnectionTerminationDetails => {
                opt_str(info.connection_termination_details.as_deref())
            }
            Op::ResponseFlags => super::flags_value(info.flags),
            Op::ResponseFlagsLong => Value::Str(Cow::Owned(info.flags.to_long_string())),
            Op::BytesReceived => Value::Num(info.bytes_received),
            Op::BytesSent => Value::Num(info.bytes_sent),
            Op::UpstreamCluster => opt_str(info.upstream_cluster.as_deref()),
            Op::UpstreamTransportFailureReason => {
                opt_str(info.upstream_transport_failure_reason.as_deref())
            }
            Op::Address(which, part) => {
                let addr = match which {
                    Addr::UpstreamHost => info.upstream_host,
                    Addr::UpstreamRemote => info.upstream_local_address.and(info.upstream_host),
                    Addr::UpstreamLocal => info.upstream_local_address,
                    Addr::DownstreamLocal => info.downstream_local_address,
                    Addr::DownstreamRemote => info.downstream_remote_address,
                };
                addr_value(addr, *part)
            }
            Op::DownstreamPeerUriSan => match info.direction {
                super::super::Direction::Inbound => opt_str(info.peer_principal.as_deref()),
                super::super::Direction::Outbound => Value::Missing,
            },
            Op::DownstreamLocalUriSan => match info.direction {
                super::super::Direction::Inbound => opt_str(info.local_principal.as_deref()),
                super::super::Direction::Outbound => Value::Missing,
            },
            Op::UpstreamPeerUriSan => match info.direction {
                super::super::Direction::Outbound => opt_str(info.peer_principal.as_deref()),
                super::super::Direction::Inbound => Value::Missing,
            },
            Op::RequestedServerName => opt_str(info.requested_server_name.as_deref()),
            Op::RouteName => opt_str(info.route_name.as_deref()),
            Op::ConnectionId => Value::Num(info.connection_id),
            Op::AttemptCount => info
                .attempt_count
                .map_or(Value::Missing, |n| Value::Num(u64::from(n))),
            Op::Hostname(h) => Value::Str(Cow::Owned(h.clone())),
            Op::GrpcStatus(f) => grpc_value(info, *f),
            Op::Req(a, b) => first_of(a, b.as_deref(), |h| request_header(info, h)),
            Op::ReqWithoutQuery(a, b) => {
                match first_of(a, b.as_deref(), |h| request_header(info, h)) {
                    Value::Str(p) => Value::Str(strip_query(p)),
                    v => v,
                }
            }
            Op::Resp(a, b) => first_of(a, b.as_deref(), |h| response_header(info, h)),
            Op::Trailer(a, b) => first_of(a, b.as_deref(), |h| {
                info.response_trailers
                    .as_ref()
                    .and_then(|m| m.get(h))
                    .map(lossy)
            }),
            Op::Path { query, source } => {
                let orig = || request_header(info, "x-envoy-original-path");
                let path = || request_header(info, ":path");
                let v = match source {
                    PathSource::Orig => orig(),
                    PathSource::Path => path(),
                    PathSource::OrigOrPath => orig().or_else(path),
                };
                match v {
                    Some(p) if !*query => Value::Str(strip_query(p)),
                    Some(p) => Value::Str(p),
                    None => Value::Missing,
                }
            }
            Op::Environment(v) => match v.as_deref() {
                Some(v) if !v.is_empty() => Value::Str(Cow::Owned(v.to_string())),
                _ => Value::Missing,
            },
            Op::TraceId => trace_id(info).map_or(Value::Missing, Value::Str),
            Op::StreamId => match info.stream_id.as_deref() {
                Some(id) => Value::Str(Cow::Borrowed(id)),
                None => request_header(info, "x-request-id").map_or(Value::Missing, Value::Str),
            },
            Op::AccessLogType => Value::Str(Cow::Borrowed(if info.protocol.is_some() {
                "DownstreamEnd"
            } else {
                "TcpConnectionEnd"
            })),
            Op::AlwaysMissing => Value::Missing,
        }
    }
}

fn strip_query(p: Cow<'_, str>) -> Cow<'_, str> {
    match p {
        Cow::Borrowed(s) => Cow::Borrowed(s.split('?').next().unwrap_or(s)),
        Cow::Owned(s) => Cow::Owned(s.split('?').next().unwrap_or(&s).to_string()),
    }
}

/// The W3C or B3 trace id the request carries (this proxy's span shares it).
fn trace_id(info: &StreamInfo) -> Option<Cow<'_, str>> {
    if let Some(tp) = request_header(info, "traceparent") {
        let id = tp
            .split('-')
            .nth(1)
            .filter(|id| id.len() == 32)?
            .to_string();
        return Some(Cow::Owned(id));
    }
    request_header(info, "x-b3-traceid")
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "-".to_string())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn opt_ms(d: Option<Duration>) -> Value<'static> {
    d.map_or(Value::Missing, |d| Value::Num(ms(d)))
}

fn opt_str(s: Option<&str>) -> Value<'_> {
    match s {
        Some(s) if !s.is_empty() => Value::Str(Cow::Borrowed(s)),
        _ => Value::Missing,
    }
}

fn addr_value(addr: Option<SocketAddr>, part: AddrPart) -> Value<'static> {
    match (addr, part) {
        (None, _) => Value::Missing,
        (Some(a), AddrPart::Full) => Value::Str(Cow::Owned(a.to_string())),
        (Some(a), AddrPart::WithoutPort) => Value::Str(Cow::Owned(a.ip().to_string())),
        (Some(a), AddrPart::Port) => Value::Num(u64::from(a.port())),
    }
}

fn first_of<'a>(a: &str, b: Option<&str>, get: impl Fn(&str) -> Option<Cow<'a, str>>) -> Value<'a> {
    get(a)
        .or_else(|| b.and_then(&get))
        .map_or(Value::Missing, Value::Str)
}

fn request_header<'a>(info: &'a StreamInfo, name: &str) -> Option<Cow<'a, str>> {
    let headers = info.request_headers.as_deref();
    let header = |n: &str| headers.and_then(|m| m.get(n)).map(lossy);
    match name {
        ":method" => info.method.as_deref().map(Cow::Borrowed),
        ":path" => info.path.as_deref().map(Cow::Borrowed),
        ":authority" => info
            .authority
            .as_deref()
            .map(Cow::Borrowed)
            .or_else(|| header("host")),
        ":scheme" => info.scheme.as_deref().map(Cow::Borrowed),
        n if n.starts_with(':') => None,
        n => header(n),
    }
}

fn response_header<'a>(info: &'a StreamInfo, name: &str) -> Option<Cow<'a, str>> {
    if name == ":status" {
        return (info.response_code != 0).then(|| Cow::Owned(info.response_code.to_string()));
    }
    info.response_headers
        .as_ref()
        .and_then(|m| m.get(name))
        .map(lossy)
}

/// Header bytes as text; Envoy logs raw bytes, so non-ASCII values are kept.
fn lossy(v: &http::HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(v.as_bytes())
}

const GRPC_CAMEL: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

const GRPC_SNAKE: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Whether the request is gRPC (`content-type: application/grpc[+…]`).
pub fn is_grpc(info: &StreamInfo) -> bool {
    info.request_headers
        .as_deref()
        .and_then(|h| h.get(http::header::CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct == "application/grpc"
                || ct.starts_with("application/grpc+")
                || ct.starts_with("application/grpc;")
        })
}

/// The gRPC status of a gRPC stream: the recorded one, else `grpc-status` from the
/// trailers or headers, else mapped from the HTTP status as gRPC clients do.
pub fn grpc_status(info: &StreamInfo) -> Option<i32> {
    if !is_grpc(info) {
        return None;
    }
    let from = |m: &Option<std::sync::Arc<http::HeaderMap>>| {
        m.as_deref()
            .and_then(|h| h.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse::<i32>().ok())
    };
    info.grpc_status
        .or_else(|| from(&info.response_trailers))
        .or_else(|| from(&info.response_headers))
        .or(match info.response_code {
            0 => None,
            400 => Some(13),
            401 => Some(16),
            403 => Some(7),
            404 => Some(12),
            429 | 502 | 503 | 504 => Some(14),
            _ => Some(2),
        })
}

fn grpc_value(info: &StreamInfo, f: GrpcFormat) -> Value<'static> {
    let Some(code) = grpc_status(info) else {
        return Value::Missing;
    };
    let idx = usize::try_from(code).ok().filter(|&i| i < GRPC_CAMEL.len());
    match (f, idx) {
        (GrpcFormat::Number, _) => Value::Num(u64::try_from(code).unwrap_or(0)),
        (GrpcFormat::Camel, Some(i)) => Value::Str(Cow::Borrowed(GRPC_CAMEL[i])),
        (GrpcFormat::Snake, Some(i)) => Value::Str(Cow::Borrowed(GRPC_SNAKE[i])),
        (_, None) => Value::Str(Cow::Owned(code.to_string())),
    }
}
