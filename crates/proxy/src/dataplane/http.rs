//! The HTTP connection manager: one hyper server connection per downstream connection
//! (HTTP/1.1 and h2c, auto-detected), routing each request to an upstream pool.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::Rng;
use tokio::io::{AsyncRead, AsyncWrite};

use super::body::{Finish, ReqBody, RespBody};
use super::headers::*;
use super::rawreq::RawRequest;
use super::retry;
use super::upstream::{ConnectError, HostPool, PoolKey, SendError, Sender};
use super::Runtime;
use crate::lb::{self, ActiveGuard};
use crate::model::listener::{RouteSource, TrafficDirection};
use crate::model::route::{
    Action, Forward, HostRewrite, PathMatch, Redirect, RetryOn, RetryPolicy, Route, WeightedTarget,
};
use crate::model::{ClusterSpec, HttpManager, RouteConfig, UpstreamProtocol};
use crate::routing::{self, RequestView};
use crate::telemetry::{Direction, ResponseFlags, StreamInfo};

/// One downstream connection's context.
pub struct HttpConn {
    pub rt: Arc<Runtime>,
    pub hcm: Arc<HttpManager>,
    /// The (original) destination the client connected to.
    pub dst: SocketAddr,
    pub peer: SocketAddr,
    pub sni: Option<String>,
    /// `x-envoy-external-address` and the `x-forwarded-for` element for `peer`,
    /// formatted once per connection rather than per request.
    peer_ip: HeaderValue,
    xff_ip: HeaderValue,
}

impl HttpConn {
    pub fn new(
        rt: Arc<Runtime>,
        hcm: Arc<HttpManager>,
        dst: SocketAddr,
        peer: SocketAddr,
        sni: Option<String>,
    ) -> HttpConn {
        let value = |ip: std::net::IpAddr| {
            HeaderValue::from_str(&ip.to_string()).expect("an IP address is a header value")
        };
        HttpConn {
            peer_ip: value(peer.ip()),
            xff_ip: value(super::headers::xff_address(peer.ip())),
            rt,
            hcm,
            dst,
            peer,
            sni,
        }
    }
}

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge) on `io` until the client closes.
pub async fn serve<I>(conn: Arc<HttpConn>, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    super::h1server::serve(conn, io).await
}

/// Serves `io` with hyper: HTTP/2, and HTTP/1.1 from the first request the fast path
/// (`h1server`) leaves to it.
pub(super) async fn serve_hyper<I>(conn: Arc<HttpConn>, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let drain = super::Drained::new(conn.rt.clone());
    let svc = hyper::service::service_fn(move |req| handle(conn.clone(), req));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        // Envoy has no request-header timeout by default (`request_headers_timeout: 0`),
        // and hyper's 30 s one would arm a timer for every request.
        .header_read_timeout(None)
        .keep_alive(true);
    builder.http2().timer(hyper_util::rt::TokioTimer::new());
    let c = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(c);
    tokio::select! {
        biased;
        _ = c.as_mut() => {}
        _ = drain => {
            // Let in-flight requests finish; idle keep-alive connections close now.
            c.as_mut().graceful_shutdown();
            let _ = c.await;
        }
    }
}

fn protocol_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// An HTTP/1.1 connection to return to its pool when the response ends.
type H1Return = (
    hyper::client::conn::http1::SendRequest<ReqBody>,
    Arc<HostPool>,
    SocketAddr,
);

/// A request's telemetry and bookkeeping, allocated once: it goes from the request's
/// future into the response body, which finishes it when the body ends.
struct Stream {
    /// The connection's, not the runtime's or the listener's: those are shared by every
    /// worker, and a reference count written by two cores costs a cross-core transfer.
    conn: Arc<HttpConn>,
    info: StreamInfo,
    start: Instant,
    /// Request body bytes, counted as hyper's client sends them (no body otherwise).
    received: Option<Arc<AtomicU64>>,
    h1: Option<H1Return>,
    _active: Option<ActiveGuard>,
}

impl Finish for Stream {
    fn finish(mut self: Box<Self>, bytes_sent: u64, complete: bool, trailers: Option<&HeaderMap>) {
        // In place: the stream is large, and moving it out of its box costs a copy.
        let this = &mut *self;
        this.info.duration = this.start.elapsed();
        this.info.bytes_sent = bytes_sent;
        this.info.bytes_received = this
            .received
            .as_ref()
            .map_or(0, |r| r.load(Ordering::Relaxed));
        if let Some(t) = trailers {
            if let Some(s) = t
                .get(&GRPC_STATUS)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
            {
                this.info.grpc_status = Some(s);
            }
            this.info.response_trailers = Some(Arc::new(t.clone()));
        }
        if !complete {
            this.info.flags.set(ResponseFlags::DC);
        }
        if let (true, Some((s, pool, local))) = (complete, this.h1.take()) {
            pool.give_back(s, local);
        }
        let conn = &this.conn;
        conn.rt.telemetry.record(&this.info, &conn.hcm.access_logs);
    }
}

impl Stream {
    /// Keeps the request headers the access logs (or metrics) will read.
    fn keep_request_headers(&mut self, h: &HeaderMap) {
        self.info.request_headers =
            crate::telemetry::request_headers_for(&self.conn.hcm.access_logs, h);
    }
}

struct Ctx {
    s: Box<Stream>,
    /// Response header operations to apply, most specific first.
    resp_ops: Vec<Arc<crate::model::route::HeaderOps>>,
    /// The request's authority (`:authority` or Host), for `StreamInfo::authority` when
    /// the stream ends; held here so that routing borrows it instead of a copy.
    authority: String,
    /// Local replies after upstream attempts carry `x-envoy-attempt-count`
    /// (`include_attempt_count_in_response`), as Envoy's router adds it to its own.
    attempt_header: bool,
}

impl Ctx {
    fn finish(
        self,
        mut resp: Response<RespBody>,
        h1: Option<H1Return>,
        active: Option<ActiveGuard>,
    ) -> Response<RespBody> {
        let mut s = self.s;
        let hcm = &s.conn.hcm;
        resp.headers_mut()
            .insert(header::SERVER, hcm.server_name.clone());
        if s.conn.rt.is_draining() && resp.version() != Version::HTTP_2 {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        s.info.response_code = resp.status().as_u16();
        if let Some(g) = resp
            .headers()
            .get(&GRPC_STATUS)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
        {
            s.info.grpc_status = Some(g);
        }
        if s.info.response_duration.is_none() {
            s.info.response_duration = Some(s.start.elapsed());
        }
        s.info.response_headers =
            crate::telemetry::response_headers_for(&hcm.access_logs, resp.headers());
        s.info.authority = Some(self.authority);
        s.h1 = h1;
        s._active = active;
        resp.body_mut().on_finish(s);
        resp
    }

    /// A local reply to a request the proxy did not send upstream: the request headers
    /// are kept for telemetry first (sent requests have kept theirs already).
    fn reject(
        mut self,
        request_headers: &HeaderMap,
        status: StatusCode,
        body: &'static str,
        flag: u32,
        details: &'static str,
    ) -> Response<RespBody> {
        self.s.keep_request_headers(request_headers);
        self.local_reply(status, body, flag, details)
    }

    fn local_reply(
        self,
        status: StatusCode,
        body: &'static str,
        flag: u32,
        details: impl Into<crate::telemetry::Text>,
    ) -> Response<RespBody> {
        let mut ctx = self;
        if flag != 0 {
            ctx.s.info.flags.set(flag);
        }
        ctx.s.info.response_code_details = Some(details.into());
        let mut resp = Response::new(RespBody::full(Bytes::from_static(body.as_bytes())));
        *resp.status_mut() = status;
        if !body.is_empty() {
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        }
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        if ctx.attempt_header {
            let n = ctx.s.info.attempt_count.unwrap_or(1);
            resp.headers_mut()
                .insert(ATTEMPT_COUNT, int_value(u64::from(n)));
        }
        for ops in ctx.resp_ops.iter() {
            ops.apply(resp.headers_mut());
        }
        ctx.finish(resp, None, None)
    }
}

/// Istio's sidecars always exchange peer metadata (the `istio.metadata_exchange` filter
/// is in every sidecar HCM Istio generates). ironmesh-discovery leaves that filter out,
/// because upstream Envoy does not know it, so a sidecar exchanges regardless; a
/// gateway only when its HCM asks for it, as Envoy would.
fn exchanges_metadata(conn: &HttpConn, hcm: &HttpManager) -> bool {
    hcm.metadata_exchange || conn.rt.options.sidecar
}

fn authority_of<B>(req: &Request<B>) -> String {
    if let Some(a) = req.uri().authority() {
        return a.as_str().to_string();
    }
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().get(header::UPGRADE).is_some()
        && req
            .headers()
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

fn is_hop_by_hop(name: &header::HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::UPGRADE
        || name == header::TRANSFER_ENCODING
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    // One scan of the (few) names, then removals only of what is there: most messages
    // carry none of these, or only `connection`.
    let (mut connection, mut others) = (false, false);
    for name in h.keys() {
        if name == header::CONNECTION {
            connection = true;
        } else if is_hop_by_hop(name) {
            others = true;
        }
    }
    if connection && !keep_upgrade {
        let named: Vec<String> = h
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|n| {
                !n.is_empty()
                    && !n.eq_ignore_ascii_case("close")
                    && !n.eq_ignore_ascii_case("keep-alive")
            })
            .map(str::to_string)
            .collect();
        for name in named {
            h.remove(name.as_str());
        }
        h.remove(header::CONNECTION);
    }
    if !others {
        return;
    }
    if !keep_upgrade {
        h.remove(header::UPGRADE);
    }
    h.remove(KEEP_ALIVE);
    h.remove(PROXY_CONNECTION);
    h.remove(header::TRANSFER_ENCODING);
}

fn rewrite_path(fwd: &Forward, route: &Route, path_and_query: &str) -> Option<String> {
    if fwd.prefix_rewrite.is_none() && fwd.regex_rewrite.is_none() {
        return None;
    }
    let (path, query) = match path_and_query.find('?') {
        Some(i) => (&path_and_query[..i], &path_and_query[i..]),
        None => (path_and_query, ""),
    };
    if let Some(p) = &fwd.prefix_rewrite {
        let matched = match &route.matcher.path {
            PathMatch::Prefix(x) | PathMatch::SeparatedPrefix(x) | PathMatch::Exact(x) => x.len(),
            PathMatch::Regex(_) => path.len(),
        };
        let rest = path.get(matched..).unwrap_or("");
        let mut new = String::with_capacity(p.len() + rest.len() + query.len());
        new.push_str(p);
        // A plain replacement of the matched prefix, as Envoy does.
        new.push_str(rest);
        if new.is_empty() {
            new.push('/');
        }
        new.push_str(query);
        return Some(new);
    }
    if let Some((re, sub)) = &fwd.regex_rewrite {
        let replaced = re.replace_all(path, sub.as_str());
        return Some(format!("{replaced}{query}"));
    }
    None
}

fn redirect_location(
    r: &Redirect,
    route: &Route,
    scheme: &str,
    authority: &str,
    pq: &str,
) -> String {
    let (path, query) = match pq.find('?') {
        Some(i) => (&pq[..i], &pq[i..]),
        None => (pq, ""),
    };
    let scheme = r.scheme.as_deref().unwrap_or(scheme);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (authority, None),
    };
    let host = r.host.as_deref().unwrap_or(host);
    let port = match (r.port, port) {
        (Some(p), _) => Some(p.to_string()),
        // A scheme change drops the old port, as Envoy does.
        (None, Some(p)) if r.scheme.is_none() => Some(p.to_string()),
        _ => None,
    };
    let mut new_path = if let Some(p) = &r.path {
        p.clone()
    } else if let Some(pre) = &r.prefix_rewrite {
        let matched = match &route.matcher.path {
            PathMatch::Prefix(x) | PathMatch::SeparatedPrefix(x) | PathMatch::Exact(x) => x.len(),
            PathMatch::Regex(_) => path.len(),
        };
        format!("{pre}{}", path.get(matched..).unwrap_or(""))
    } else if let Some((re, sub)) = &r.regex_rewrite {
        re.replace_all(path, sub.as_str()).into_owned()
    } else {
        path.to_string()
    };
    if !r.strip_query && !new_path.contains('?') {
        new_path.push_str(query);
    }
    match port {
        Some(p) => format!("{scheme}://{host}:{p}{new_path}"),
        None => format!("{scheme}://{host}{new_path}"),
    }
}

fn pick_cluster(spec: &ClusterSpec) -> (&Arc<str>, Option<&WeightedTarget>) {
    match spec {
        ClusterSpec::Single(c) => (c, None),
        ClusterSpec::Weighted { clusters, total } => {
            let t = lb::pick_weighted(clusters, |c| c.weight, *total, &mut rand::rng())
                .expect("weighted clusters are never empty");
            (&t.name, Some(t))
        }
    }
}

/// The route timeout after client overrides. `x-envoy-upstream-rq-timeout-ms` is taken
/// out of the request (it is not passed on).
fn effective_timeout(fwd: &Forward, h: &mut HeaderMap) -> Option<Duration> {
    if let Some(ms) = h
        .remove(&UPSTREAM_RQ_TIMEOUT)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        return (ms > 0).then(|| Duration::from_millis(ms));
    }
    if let Some(max) = fwd.grpc_timeout_header_max {
        if let Some(t) = h.get(&GRPC_TIMEOUT).and_then(grpc_timeout) {
            return Some(if max.is_zero() { t } else { t.min(max) });
        }
    }
    fwd.timeout.or(fwd.max_stream_duration)
}

/// The snapshot as this worker thread's requests hold it: one reference to the shared
/// snapshot per worker, renewed when discovery swaps in a new one, so that requests
/// clone a reference count only their own core writes. (An idle worker keeps the last
/// snapshot it served until its next request.)
struct WorkerSnapshot(Arc<crate::model::Snapshot>);

fn worker_snapshot(rt: &Runtime) -> Arc<WorkerSnapshot> {
    thread_local! {
        static HELD: std::cell::RefCell<Option<Arc<WorkerSnapshot>>> =
            const { std::cell::RefCell::new(None) };
    }
    let current = rt.snapshot.load();
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        match held.as_ref() {
            Some(h) if Arc::ptr_eq(&h.0, &current) => h.clone(),
            _ => {
                let h = Arc::new(WorkerSnapshot(arc_swap::Guard::into_inner(current)));
                *held = Some(h.clone());
                h
            }
        }
    })
}

async fn handle(
    conn: Arc<HttpConn>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let mut timer = super::deadline::RouteTimer::new();
    Ok(route_request(conn, req.map(Some), None, &mut timer, false).await)
}

/// Routes one request (its body, if any, still to come from hyper) and returns the
/// response to send downstream. `timer` bounds it by the route timeout; a connection
/// serving its requests one at a time passes the same one to each. `raw_head_ok`: the
/// caller writes the response itself and takes an upstream head passed through as
/// bytes (`RespBody::take_head`); hyper's server would not. A plain HTTP/1.1 request
/// comes with its fields as received in `raw` and an empty header map (`rawreq`); they
/// become a map only where something below edits or logs them.
pub(super) async fn route_request(
    conn: Arc<HttpConn>,
    mut req: Request<Option<Incoming>>,
    mut raw: Option<RawRequest>,
    timer: &mut super::deadline::RouteTimer,
    raw_head_ok: bool,
) -> Response<RespBody> {
    let start = Instant::now();
    let hcm = &conn.hcm;
    let mut info = StreamInfo {
        direction: if hcm.direction == TrafficDirection::Inbound {
            Direction::Inbound
        } else {
            Direction::Outbound
        },
        // Only access logs print it (a clock read per request otherwise).
        start_time: (!hcm.access_logs.is_empty()).then(SystemTime::now),
        protocol: Some(protocol_name(req.version())),
        downstream_local_address: Some(conn.dst),
        downstream_remote_address: Some(conn.peer),
        requested_server_name: conn.sni.clone(),
        ..Default::default()
    };
    let authority = match &raw {
        Some(r) => r.host().unwrap_or("").to_string(),
        None => authority_of(&req),
    };
    let scheme = if conn.sni.is_some() { "https" } else { "http" };
    let xfp = HeaderValue::from_static(if scheme == "https" { "https" } else { "http" });
    // Request headers the proxy always sets, before routing (they are matchable).
    if let Some(r) = &mut raw {
        // A plain request has none of these yet (`rawreq::classify`).
        if hcm.generate_request_id {
            r.set(X_REQUEST_ID, uuid_v4());
        }
        if hcm.use_remote_address {
            r.set(EXTERNAL_ADDRESS, conn.peer_ip.clone());
            if !hcm.skip_xff_append {
                r.set(XFF, conn.xff_ip.clone());
            }
        }
        r.set(XFP, xfp);
    } else {
        let h = req.headers_mut();
        if hcm.generate_request_id {
            h.entry(X_REQUEST_ID).or_insert_with(uuid_v4);
        }
        if hcm.use_remote_address {
            // Envoy (1.33+) treats no address as internal unless `internal_address_config`
            // says so, so every client is external and named in this header.
            h.insert(EXTERNAL_ADDRESS, conn.peer_ip.clone());
            if !hcm.skip_xff_append {
                let v = match h.get(&XFF).map(HeaderValue::as_bytes) {
                    Some(old) => {
                        let mut v = Vec::with_capacity(old.len() + 1 + conn.xff_ip.len());
                        v.extend_from_slice(old);
                        v.push(b',');
                        v.extend_from_slice(conn.xff_ip.as_bytes());
                        HeaderValue::from_bytes(&v).ok()
                    }
                    None => Some(conn.xff_ip.clone()),
                };
                if let Some(v) = v {
                    h.insert(XFF, v);
                }
            }
            h.insert(XFP, xfp);
        } else if !h.contains_key(&XFP) {
            h.insert(XFP, xfp);
        }
    }
    info.method = Some(crate::telemetry::method_text(req.method()));
    // Shares the request's buffer; only access logs print it.
    let pq = req.uri().path_and_query().cloned();
    let pq: &str = pq.as_ref().map_or("/", |p| p.as_str());
    let logged = !hcm.access_logs.is_empty();
    if logged {
        info.path = Some(pq.to_string());
    }
    info.scheme = Some(scheme.into());
    let mut ctx = Ctx {
        s: Box::new(Stream {
            conn: conn.clone(),
            info,
            start,
            received: None,
            h1: None,
            _active: None,
        }),
        resp_ops: Vec::new(),
        attempt_header: false,
        authority,
    };

    let held = worker_snapshot(&conn.rt);
    let snap = &held.0;
    let rc: &RouteConfig = match &hcm.routes {
        RouteSource::Inline(rc) => rc,
        RouteSource::Rds(name) => match snap.routes.get(name) {
            Some(rc) => rc,
            None => {
                return ctx.reject(
                    req.headers(),
                    StatusCode::NOT_FOUND,
                    "",
                    ResponseFlags::NR,
                    "route_not_found",
                );
            }
        },
    };
    let authority: &str = &ctx.authority;
    let route_and_vh = routing::select_vhost(rc, authority).and_then(|vh| {
        let view = RequestView {
            authority,
            path_and_query: pq,
            method: req.method().as_str(),
            scheme,
            headers: match &raw {
                Some(r) => routing::Fields::Raw(r),
                None => routing::Fields::Map(req.headers()),
            },
        };
        routing::select_route(vh, &view).map(|r| (vh, r))
    });
    let Some((vh, route)) = route_and_vh else {
        return ctx.reject(
            req.headers(),
            StatusCode::NOT_FOUND,
            "",
            ResponseFlags::NR,
            "route_not_found",
        );
    };
    ctx.s.info.route_name = (!route.name.is_empty()).then(|| route.name.clone());
    // Response header operations, Envoy's default order: most specific applied first,
    // so the route configuration's own ops win on conflicts.
    if !route.response_headers.is_empty() {
        ctx.resp_ops.push(Arc::new(route.response_headers.clone()));
    }
    if !vh.response_headers.is_empty() {
        ctx.resp_ops.push(Arc::new(vh.response_headers.clone()));
    }
    if !rc.response_headers.is_empty() {
        ctx.resp_ops.push(Arc::new(rc.response_headers.clone()));
    }

    let mut delayed = false;
    if let (true, Some(f)) = (hcm.fault_filter, &route.fault) {
        if let Some((delay, pct)) = f.delay {
            if rand::rng().random_range(0..1_000_000) < pct {
                ctx.s.info.flags.set(ResponseFlags::DI);
                tokio::time::sleep(delay).await;
                delayed = true;
            }
        }
        if let Some((status, grpc, pct)) = f.abort {
            if rand::rng().random_range(0..1_000_000) < pct {
                ctx.s.keep_request_headers(req.headers());
                if let Some(g) = grpc {
                    let mut resp = Response::new(RespBody::empty());
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/grpc"),
                    );
                    resp.headers_mut().insert(GRPC_STATUS, HeaderValue::from(g));
                    ctx.s.info.flags.set(ResponseFlags::FI);
                    ctx.s.info.response_code_details = Some("fault_filter_abort".into());
                    return ctx.finish(resp, None, None);
                }
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return ctx.local_reply(
                    status,
                    "fault filter abort",
                    ResponseFlags::FI,
                    "fault_filter_abort",
                );
            }
        }
    }

    let fwd = match &route.action {
        Action::Direct { status, body } => {
            ctx.s.keep_request_headers(req.headers());
            ctx.s.info.response_code_details = Some("direct_response".into());
            let mut resp = Response::new(match body {
                Some(b) => RespBody::full(b.clone()),
                None => RespBody::empty(),
            });
            *resp.status_mut() = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
            if let Some(b) = body {
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                resp.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
            } else {
                resp.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
            for ops in &ctx.resp_ops {
                ops.apply(resp.headers_mut());
            }
            return ctx.finish(resp, None, None);
        }
        Action::Redirect(r) => {
            ctx.s.keep_request_headers(req.headers());
            ctx.s.info.response_code_details = Some("direct_response".into());
            let loc = redirect_location(r, route, scheme, &ctx.authority, pq);
            let mut resp = Response::new(RespBody::empty());
            *resp.status_mut() =
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            if let Ok(v) = HeaderValue::from_str(&loc) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            for ops in &ctx.resp_ops {
                ops.apply(resp.headers_mut());
            }
            return ctx.finish(resp, None, None);
        }
        Action::Forward(f) => f,
    };

    let (cluster_name, weighted) = pick_cluster(&fwd.clusters);
    if let Some(w) = weighted {
        if !w.response_headers.is_empty() {
            ctx.resp_ops.insert(0, w.response_headers.clone());
        }
    }
    if logged {
        ctx.s.info.upstream_cluster = Some(cluster_name.to_string());
    }
    let Some(cluster) = snap.clusters.get(&**cluster_name) else {
        return ctx.reject(
            req.headers(),
            StatusCode::SERVICE_UNAVAILABLE,
            "",
            ResponseFlags::NC,
            "cluster_not_found",
        );
    };
    if let Some(s) = &cluster.service {
        ctx.s.info.destination_service = Some(s.host.clone());
    }
    let (mut addr, mut active, peer) = match snap.endpoints_of(cluster) {
        None => (conn.dst, None, None),
        Some(eps) => match lb::pick(eps, cluster.lb, &mut rand::rng()) {
            Some(h) => (h.addr, lb::count_active(eps, cluster.lb, h), h.peer.clone()),
            None => {
                return ctx.reject(
                    req.headers(),
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no healthy upstream",
                    ResponseFlags::UH,
                    "no_healthy_upstream",
                );
            }
        },
    };
    ctx.s.info.upstream_host = Some(addr);
    if ctx.s.info.direction == Direction::Outbound {
        ctx.s.info.peer = peer;
    }

    let upgrade = hcm.websocket && is_upgrade(&req);
    let down_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let timeout = effective_timeout(fwd, req.headers_mut());
    let h2 = !upgrade
        && match cluster.protocol {
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::Downstream => req.version() == Version::HTTP_2,
        };

    // Build the upstream request.
    let (mut parts, body) = req.into_parts();
    // Bodiless HTTP/1.1 requests (most traffic) go through the inline client; the rest
    // through hyper's (see `h1client`).
    let inline = !h2 && !upgrade && body.as_ref().is_none_or(|b| b.is_end_stream());
    // A plain request keeps its fields as received unless header operations edit them
    // or hyper's client sends it.
    let ops = [
        weighted.map(|w| &*w.request_headers),
        Some(&route.request_headers),
        Some(&vh.request_headers),
        Some(&rc.request_headers),
    ];
    let mut up = match raw {
        Some(r) if inline && ops.iter().flatten().all(|o| o.is_empty()) => UpFields::Raw(r),
        r => {
            if let Some(r) = r {
                parts.headers = r.to_header_map();
            }
            UpFields::Map(&mut parts.headers)
        }
    };
    if let Some(h) = up.map() {
        strip_hop_by_hop(h, upgrade);
        // HTTP/2 allows only `te: trailers` (gRPC); HTTP/1.1 upstreams get no `te`.
        if !h2 || h.get(header::TE).is_some_and(|v| v != "trailers") {
            h.remove(header::TE);
        }
    }
    if let Some(t) = timeout {
        up.insert(EXPECTED_RQ_TIMEOUT, int_value(t.as_millis() as u64));
    }
    let new_path = rewrite_path(fwd, route, pq);
    if new_path.is_some() {
        // With the query, as Envoy keeps it.
        if let Ok(v) = HeaderValue::from_str(pq) {
            up.insert(ORIGINAL_PATH, v);
        }
    }
    let mut new_authority = match &fwd.host_rewrite {
        HostRewrite::None => None,
        HostRewrite::Literal(v) => Some(v.to_str().unwrap_or("").to_string()),
        HostRewrite::Auto => Some(addr.to_string()),
    };
    if new_authority.is_some() {
        // Envoy tells the upstream what the client asked for before a host rewrite.
        if let Ok(v) = HeaderValue::from_str(&ctx.authority) {
            up.insert(super::headers::ORIGINAL_HOST, v);
        }
    }
    if let Some(h) = up.map() {
        for o in ops.into_iter().flatten() {
            o.apply(h);
        }
    }
    // A header op may target the Host header. When Host already carries the authority
    // to send, it stays as it is.
    let mut host_set = false;
    if new_authority.is_none() && parts.version != Version::HTTP_2 {
        if let Some(differs) = up.host_differs(&ctx.authority) {
            if differs {
                new_authority = up.host().map(str::to_string);
            }
            host_set = true;
        }
    }
    if vh.include_request_attempt_count {
        up.insert(ATTEMPT_COUNT, HeaderValue::from_static("1"));
    }
    let inbound = ctx.s.info.direction == Direction::Inbound;
    // A plain request carries no trace context and no peer metadata, and no access log
    // reads its fields.
    if let Some(h) = up.map() {
        propagate_trace(h, false);
        if inbound {
            if let Some(peer) = conn.rt.telemetry.peer_from_headers(h) {
                ctx.s.info.peer = Some(peer);
            }
            if exchanges_metadata(&conn, hcm) {
                crate::telemetry::PeerMetadata::strip_headers(h);
            }
        }
    }
    if let Some(ph) = conn
        .rt
        .peer_headers
        .as_ref()
        .filter(|_| !inbound && exchanges_metadata(&conn, hcm))
    {
        for (k, v) in ph {
            up.insert(k.clone(), v.clone());
        }
    }
    if let Some(h) = up.map() {
        ctx.s.keep_request_headers(h);
    }
    let authority: &str = new_authority.as_deref().unwrap_or(&ctx.authority);
    let path: &str = new_path.as_deref().unwrap_or(pq);
    let mut key = PoolKey {
        addr,
        h2,
        bind: cluster.bind,
    };
    ctx.attempt_header = vh.include_attempt_count_in_response;
    // The last attempt ended on its per-try timeout (not the route's).
    let mut per_try_timed_out = false;
    ctx.s.info.attempt_count = Some(1);
    // Routing takes microseconds, which the millisecond service time cannot show: the
    // request's start stands in for the upstream's unless a fault delay came between
    // (a clock read fewer per request).
    let upstream_start = if delayed { Instant::now() } else { start };
    if !h2 && !host_set {
        if let Ok(v) = HeaderValue::from_str(authority) {
            up.insert(header::HOST, v);
        }
    }
    // What a retry moves on, in either client's loop below.
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut retrying = Retrying {
        info: &mut ctx.s.info,
        tried: &mut tried,
        addr: &mut addr,
        active: &mut active,
    };
    let result = if inline {
        let is_head = parts.method == Method::HEAD;
        let idempotent = matches!(
            parts.method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );
        // Only the inline client's exchanges are retried: their request is a head that
        // can be sent again (docs/proxy.md says what makes one attempt).
        let retry = fwd
            .retry
            .as_ref()
            .filter(|r| r.num_retries > 0 && r.on != RetryOn::default());
        let route_deadline = timeout.map(|t| upstream_start + t);
        let mut head = up.encode(&parts.method, path);
        let sent = loop {
            let per_try = retry
                .and_then(|r| r.per_try_timeout)
                .map(|t| Instant::now() + t);
            let deadline = match (route_deadline, per_try) {
                (Some(r), Some(p)) => Some(r.min(p)),
                (r, p) => r.or(p),
            };
            let sent = {
                // Pinned where it is made: moving its (large) state into the timer
                // costs copies.
                let send = std::pin::pin!(super::h1client::send(
                    key,
                    cluster.connect_timeout,
                    &head,
                    is_head,
                    idempotent
                ));
                match deadline {
                    Some(d) => timer
                        .run(d.into(), send)
                        .await
                        .unwrap_or(Err(SendError::Timeout)),
                    None => send.await,
                }
            };
            let Some(p) = retry else { break sent };
            let per_try_expired = matches!(sent, Err(SendError::Timeout))
                && route_deadline.is_none_or(|d| Instant::now() < d);
            per_try_timed_out = per_try_expired;
            match retry::Outcome::of(&sent, per_try_expired) {
                Some(o) if retry::retriable(p, &o) => {}
                _ => break sent,
            }
            match retrying.next(timer, route_deadline, p, snap, cluster).await {
                Next::Exhausted => break sent,
                Next::TimedOut => break Err(SendError::Timeout),
                Next::Go => key.addr = *retrying.addr,
            }
            // The head names the attempt, and the host under `auto_host_rewrite`.
            if vh.include_request_attempt_count {
                up.insert(ATTEMPT_COUNT, int_value(u64::from(retrying.attempt())));
            }
            if matches!(fwd.host_rewrite, HostRewrite::Auto) {
                if let Ok(v) = HeaderValue::from_str(&retrying.addr.to_string()) {
                    up.insert(header::HOST, v);
                }
            }
            head = up.encode(&parts.method, path);
        };
        // Passed through as bytes when nothing below edits the upstream's fields
        // beyond what the writer drops (hop-by-hop fields, `server`): no response
        // header operations, no access log reading them, none of the fields the proxy
        // reads or replaces.
        let passthrough = raw_head_ok && ctx.resp_ops.is_empty() && hcm.access_logs.is_empty();
        sent.map(|mut a| {
            let local = a.local;
            // Outbound, the proxy only reads the upstream peer's metadata (and drops it
            // where it exchanges metadata): that needs no header map either.
            let resp = if passthrough && passes_through(&a.head, !inbound) {
                if !inbound {
                    if ctx.s.info.peer.is_none() {
                        let mut meta = a.head.values(crate::telemetry::PEER_METADATA_HEADER);
                        let mut id = a.head.values(crate::telemetry::PEER_METADATA_ID_HEADER);
                        ctx.s.info.peer = meta
                            .next()
                            .and_then(|m| conn.rt.telemetry.peer_from_raw(m, id.next()));
                    }
                    if exchanges_metadata(&conn, hcm) {
                        a.head.remove(&[
                            crate::telemetry::PEER_METADATA_HEADER,
                            crate::telemetry::PEER_METADATA_ID_HEADER,
                        ]);
                    }
                }
                a.into_passthrough_response()
            } else {
                a.into_response()
            };
            (resp.map(RespBody::inline), None, local, None)
        })
    } else {
        // The map path's (`up` borrows the map in `parts`).
        drop(up);
        let received = ctx.s.received.insert(Arc::default()).clone();
        let mut up_req = hyper_request(parts, body, h2, authority, path, received);
        // Here only connect failures are retried: the request, body included, was not
        // sent, so it goes to the next host as it is (no buffering). Other failures
        // make one attempt (docs/proxy.md).
        let retry = fwd
            .retry
            .as_ref()
            .filter(|r| r.num_retries > 0 && retry::retriable(r, &retry::Outcome::ConnectFailed));
        let route_deadline = timeout.map(|t| upstream_start + t);
        loop {
            let left = route_deadline.map(|d| d.saturating_duration_since(Instant::now()));
            // Boxed: its state (hyper's checkout and handshake futures) would otherwise
            // be part of every request's future, which is moved whole on creation.
            let (e, req) = match Box::pin(send_hyper(up_req, key, cluster, left)).await {
                Ok(sent) => break Ok(sent),
                Err(HyperFailure::Other(e)) => break Err(e),
                Err(HyperFailure::Connect(e, req)) => (e, req),
            };
            let Some(p) = retry else {
                break Err(SendError::Connect(e));
            };
            match retrying.next(timer, route_deadline, p, snap, cluster).await {
                Next::Exhausted => break Err(SendError::Connect(e)),
                Next::TimedOut => break Err(SendError::Timeout),
                Next::Go => key.addr = *retrying.addr,
            }
            up_req = *req;
            if vh.include_request_attempt_count {
                up_req
                    .headers_mut()
                    .insert(ATTEMPT_COUNT, int_value(u64::from(retrying.attempt())));
            }
            if matches!(fwd.host_rewrite, HostRewrite::Auto) {
                retarget_authority(&mut up_req, h2, *retrying.addr);
            }
        }
    };
    let attempts = ctx.s.info.attempt_count.unwrap_or(1);
    let (resp, h1, up_local, on_upgrade) = match result {
        Ok(r) => r,
        Err(SendError::Connect(c)) => {
            ctx.s.info.upstream_transport_failure_reason = Some(c.reason());
            let details = c.details();
            return ctx.local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                retry::reset_body(Some(&c), attempts > 1),
                ResponseFlags::UF,
                details,
            );
        }
        Err(SendError::Reset(e)) => {
            tracing::debug!(error = %e, upstream = %addr, "upstream reset before response");
            return ctx.local_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                retry::reset_body(None, attempts > 1),
                ResponseFlags::UC,
                "upstream_reset_before_response_started{connection_termination}",
            );
        }
        Err(SendError::Timeout) => {
            return ctx.local_reply(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream request timeout",
                ResponseFlags::UT,
                if per_try_timed_out {
                    "upstream_per_try_timeout"
                } else {
                    "upstream_response_timeout"
                },
            );
        }
    };
    // One clock read for both.
    let answered = Instant::now();
    let service_time = answered - upstream_start;
    ctx.s.info.response_duration = Some(answered - ctx.s.start);
    ctx.s.info.upstream_local_address = Some(up_local);
    ctx.s.info.upstream_protocol = Some(if h2 { "HTTP/2" } else { "HTTP/1.1" });
    ctx.s.info.upstream_service_time = Some(service_time);
    ctx.s.info.response_code_details = Some("via_upstream".into());

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let (Some(down), Some(up)) = (down_upgrade, on_upgrade) {
            tokio::spawn(async move {
                if let (Ok(d), Ok(u)) = (down.await, up.await) {
                    let mut d = TokioIo::new(d);
                    let mut u = TokioIo::new(u);
                    let _ = tokio::io::copy_bidirectional(&mut d, &mut u).await;
                }
            });
        }
        let (mut parts, _body) = resp.into_parts();
        parts
            .headers
            .insert(SERVICE_TIME, int_value(service_time.as_millis() as u64));
        let resp = Response::from_parts(parts, RespBody::empty());
        return ctx.finish(resp, None, active);
    }

    let (mut parts, body) = resp.into_parts();
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers, false);
    if inbound {
        if let Some(ph) = conn
            .rt
            .peer_headers
            .as_ref()
            .filter(|_| exchanges_metadata(&conn, hcm))
        {
            for (k, v) in ph {
                parts.headers.insert(k.clone(), v.clone());
            }
        }
    } else {
        if ctx.s.info.peer.is_none() {
            if let Some(peer) = conn.rt.telemetry.peer_from_headers(&parts.headers) {
                ctx.s.info.peer = Some(peer);
            }
        }
        if exchanges_metadata(&conn, hcm) {
            crate::telemetry::PeerMetadata::strip_headers(&mut parts.headers);
        }
    }
    parts
        .headers
        .insert(SERVICE_TIME, int_value(service_time.as_millis() as u64));
    if vh.include_attempt_count_in_response {
        parts
            .headers
            .insert(ATTEMPT_COUNT, int_value(u64::from(attempts)));
    }
    for ops in &ctx.resp_ops {
        ops.apply(&mut parts.headers);
    }
    let resp = Response::from_parts(parts, body);
    ctx.finish(resp, h1, active)
}

/// The upstream request's fields: the request's header map, or a plain request's
/// fields as received plus the proxy's (`rawreq`), which only the inline client sends.
enum UpFields<'a> {
    Map(&'a mut HeaderMap),
    Raw(RawRequest),
}

impl UpFields<'_> {
    /// Sets a field the proxy manages (Host or one of its own).
    fn insert(&mut self, name: header::HeaderName, value: HeaderValue) {
        match self {
            UpFields::Map(h) => {
                h.insert(name, value);
            }
            UpFields::Raw(r) => r.set(name, value),
        }
    }

    /// The map, for the edits a plain request never needs.
    fn map(&mut self) -> Option<&mut HeaderMap> {
        match self {
            UpFields::Map(h) => Some(h),
            UpFields::Raw(_) => None,
        }
    }

    fn host(&self) -> Option<&str> {
        match self {
            UpFields::Map(h) => h.get(header::HOST).and_then(|v| v.to_str().ok()),
            UpFields::Raw(r) => r.host(),
        }
    }

    /// Whether the Host to send differs from `authority`; `None` without one (or with
    /// one that is not text, which the map path reads as none).
    fn host_differs(&self, authority: &str) -> Option<bool> {
        match self {
            UpFields::Map(_) => self.host().map(|h| h != authority),
            UpFields::Raw(r) => r.host_differs(authority),
        }
    }

    fn encode(&self, method: &Method, path: &str) -> Vec<u8> {
        match self {
            UpFields::Map(h) => super::h1client::encode_head(method, path, h),
            UpFields::Raw(r) => r.encode(method, path),
        }
    }
}

/// What ends or continues a request after an attempt failed in a way its policy retries.
enum Next {
    /// No retries left: the last outcome stands (flagged `URX`).
    Exhausted,
    /// The route's deadline passed during the back-off.
    TimedOut,
    /// The next attempt's host is chosen.
    Go,
}

/// What moving to the next attempt updates: the stream's telemetry (its attempt count
/// included), the hosts tried, the address and the in-flight count (LEAST_REQUEST).
struct Retrying<'a> {
    info: &'a mut StreamInfo,
    tried: &'a mut Vec<SocketAddr>,
    addr: &'a mut SocketAddr,
    active: &'a mut Option<ActiveGuard>,
}

impl Retrying<'_> {
    /// The attempt under way (1 for the first).
    fn attempt(&self) -> u32 {
        self.info.attempt_count.unwrap_or(1)
    }

    /// After a retriable failure: `URX` when the retries are used up; otherwise Envoy's
    /// back-off, then the next host (see [`retry_host`]; a cluster without endpoints,
    /// the original destination, keeps its one address).
    async fn next(
        &mut self,
        timer: &mut super::deadline::RouteTimer,
        route_deadline: Option<Instant>,
        p: &RetryPolicy,
        snap: &crate::model::Snapshot,
        cluster: &crate::model::Cluster,
    ) -> Next {
        let attempt = self.attempt();
        let info = &mut *self.info;
        if attempt > p.num_retries {
            info.flags.set(ResponseFlags::URX);
            return Next::Exhausted;
        }
        let wait = retry::backoff(p, attempt, &mut rand::rng());
        let waited = match route_deadline {
            Some(d) => timer
                .run(d.into(), tokio::time::sleep(wait))
                .await
                .is_some(),
            None => {
                tokio::time::sleep(wait).await;
                true
            }
        };
        if !waited {
            return Next::TimedOut;
        }
        info.attempt_count = Some(attempt + 1);
        if let Some(eps) = snap.endpoints_of(cluster) {
            self.tried.push(*self.addr);
            if let Some(host) = retry_host(eps, cluster.lb, p, self.tried) {
                *self.addr = host.addr;
                *self.active = lb::count_active(eps, cluster.lb, host);
                info.upstream_host = Some(host.addr);
                if info.direction == Direction::Outbound {
                    info.peer = host.peer.clone();
                }
            }
        }
        Next::Go
    }
}

/// Points a request at `addr` under `auto_host_rewrite`: Host for HTTP/1.1, the URI's
/// authority for HTTP/2.
fn retarget_authority(req: &mut Request<ReqBody>, h2: bool, addr: SocketAddr) {
    let authority = addr.to_string();
    if h2 {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        *req.uri_mut() = h2_uri(&authority, path);
    } else if let Ok(v) = HeaderValue::from_str(&authority) {
        req.headers_mut().insert(header::HOST, v);
    }
}

/// An HTTP/2 request's URI: the authority travels in it (`:authority`), not in Host.
fn h2_uri(authority: &str, path: &str) -> Uri {
    Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path)
        .build()
        .unwrap_or_default()
}

/// A host for a retry: with `previous_hosts`, up to `host_selection_max_attempts` picks
/// looking for one not tried yet (the last pick when every one was); `None` when no
/// host is healthy.
fn retry_host<'a>(
    eps: &'a crate::model::Endpoints,
    policy: crate::model::LbPolicy,
    p: &RetryPolicy,
    tried: &[SocketAddr],
) -> Option<&'a Arc<crate::model::Host>> {
    let mut rng = rand::rng();
    let mut pick = None;
    for _ in 0..p.host_selection_max_attempts {
        let Some(h) = lb::pick(eps, policy, &mut rng) else {
            break;
        };
        pick = Some(h);
        if !p.avoid_previous_hosts || !tried.contains(&h.addr) {
            break;
        }
    }
    pick
}

/// Whether an upstream head may go downstream as received, minus its hop-by-hop fields
/// and `server`: it carries none of the fields the proxy reads from a response
/// (`grpc-status`; peer metadata unless `peer_ok`, where the caller reads and drops it
/// from the head itself), sets itself (`x-envoy-upstream-service-time`,
/// `x-envoy-attempt-count`, peer metadata inbound), or removes because `connection`
/// names them.
fn passes_through(head: &super::h1client::RawHead, peer_ok: bool) -> bool {
    let (grpc, time, attempts) = (GRPC_STATUS, SERVICE_TIME, ATTEMPT_COUNT);
    let special = [
        grpc.as_str(),
        time.as_str(),
        attempts.as_str(),
        crate::telemetry::PEER_METADATA_HEADER,
        crate::telemetry::PEER_METADATA_ID_HEADER,
    ];
    let special = if peer_ok { &special[..3] } else { &special[..] };
    head.fields().all(|(name, value)| {
        if name.eq_ignore_ascii_case(b"connection") {
            // `close` and `keep-alive` name no other field.
            return value.eq_ignore_ascii_case(b"close")
                || value.eq_ignore_ascii_case(b"keep-alive");
        }
        // (`eq_ignore_ascii_case` compares lengths first: most names stop there.)
        !special
            .iter()
            .any(|s| name.eq_ignore_ascii_case(s.as_bytes()))
    })
}

/// What an upstream exchange yields: the response, the HTTP/1.1 connection to pool
/// when it ends (hyper's client), the local address, and the upgrade for a 101.
type Sent = (
    Response<RespBody>,
    Option<H1Return>,
    SocketAddr,
    Option<hyper::upgrade::OnUpgrade>,
);

/// The request for hyper's client (HTTP/2, upgrades and requests with a body).
fn hyper_request(
    mut parts: http::request::Parts,
    body: Option<Incoming>,
    h2: bool,
    authority: &str,
    path: &str,
    received: Arc<AtomicU64>,
) -> Request<ReqBody> {
    // HTTP/1.1 carries the authority in Host (set by the caller), HTTP/2 in the URI.
    if h2 {
        parts.headers.remove(header::HOST);
        parts.uri = h2_uri(authority, path);
        parts.version = Version::HTTP_2;
    } else {
        parts.uri = Uri::try_from(path).unwrap_or_else(|_| Uri::from_static("/"));
        parts.version = Version::HTTP_11;
    }
    Request::from_parts(parts, ReqBody::new(body, received))
}

/// How an exchange through hyper's client failed. When no connection could be made,
/// nothing of the request was sent and it comes back, body untouched, for another host.
enum HyperFailure {
    Connect(ConnectError, Box<Request<ReqBody>>),
    Other(SendError),
}

/// Sends through hyper's client, within `timeout`.
async fn send_hyper(
    up_req: Request<ReqBody>,
    key: PoolKey,
    cluster: &crate::model::Cluster,
    timeout: Option<Duration>,
) -> Result<Sent, HyperFailure> {
    let pools = super::upstream::pools();
    let send = async {
        let mut up_req = up_req;
        // A pooled connection the upstream closed meanwhile fails before the request is
        // written; hyper hands the request back and it goes out on another connection.
        for attempt in 0..3 {
            let sender = match pools.checkout(key, cluster.connect_timeout).await {
                Ok(s) => s,
                Err(e) => return Err(HyperFailure::Connect(e, Box::new(up_req))),
            };
            let err = match sender {
                Sender::H1(mut s, pool, local) => match s.try_send_request(up_req).await {
                    Ok(r) => return Ok((r, Some((s, pool, local)), local)),
                    Err(e) => e,
                },
                Sender::H2(mut s, local) => match s.try_send_request(up_req).await {
                    Ok(r) => return Ok((r, None, local)),
                    Err(e) => e,
                },
            };
            let mut err = err;
            match err.take_message() {
                Some(req) if attempt < 2 => up_req = req,
                _ => {
                    return Err(HyperFailure::Other(SendError::Reset(
                        err.into_error().to_string(),
                    )))
                }
            }
        }
        unreachable!("the loop returns on its last attempt")
    };
    let (mut resp, h1, local) = match timeout {
        Some(t) => match tokio::time::timeout(t, send).await {
            Ok(r) => r?,
            Err(_) => return Err(HyperFailure::Other(SendError::Timeout)),
        },
        None => send.await?,
    };
    let on_upgrade =
        (resp.status() == StatusCode::SWITCHING_PROTOCOLS).then(|| hyper::upgrade::on(&mut resp));
    Ok((resp.map(RespBody::upstream), h1, local, on_upgrade))
}
