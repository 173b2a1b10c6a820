//! RouteConfiguration → [`RouteConfig`]: virtual hosts, route matches and actions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use ironmesh_xds::pb::envoy::config::core::v3::{
    data_source, header_value_option::HeaderAppendAction, HeaderValueOption,
};
use ironmesh_xds::pb::envoy::config::route::v3 as rpb;
use ironmesh_xds::pb::envoy::extensions::filters::common::fault::v3::fault_delay;
use ironmesh_xds::pb::envoy::extensions::filters::http::fault::v3::{fault_abort, HttpFault};
use ironmesh_xds::pb::envoy::r#type::matcher::v3::{string_matcher, StringMatcher};
use ironmesh_xds::pb::envoy::r#type::v3::FractionalPercent;
use regex::Regex;

use super::{decode, duration, CompileError};

/// Envoy's default retry back-off base interval.
const DEFAULT_RETRY_BASE_INTERVAL: Duration = Duration::from_millis(25);
/// The host predicate Istio names for `retryIgnorePreviousHosts`.
const PREVIOUS_HOSTS_PREDICATE: &str = "envoy.retry_host_predicates.previous_hosts";

const KIND: &str = "RouteConfiguration";
/// Envoy's route timeout when the route sets none.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

/// One compiled RouteConfiguration.
#[derive(Debug)]
pub struct RouteConfig {
    pub name: String,
    pub vhosts: Vec<VirtualHost>,
    /// Exact domains → index in `vhosts` (the first virtual host listing one wins). A
    /// sidecar's route for a port lists every service's names (1 000 services: ~8 000
    /// domains), so exact lookups must not scan them.
    /// Looked up per request with the Host header: a fast hash (lookups never insert,
    /// so client-chosen keys cannot degrade the table).
    pub exact_domains: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
    pub ignore_port_in_host_matching: bool,
    pub request_headers: HeaderOps,
    pub response_headers: HeaderOps,
}

/// A virtual host and its domain patterns.
#[derive(Debug)]
pub struct VirtualHost {
    pub name: String,
    /// The wildcard patterns only; its exact domains are in
    /// [`RouteConfig::exact_domains`].
    pub domains: Vec<Domain>,
    pub routes: Vec<Route>,
    pub request_headers: HeaderOps,
    pub response_headers: HeaderOps,
    pub include_request_attempt_count: bool,
    pub include_attempt_count_in_response: bool,
}

/// A domain pattern, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    Any,
    Exact(String),
    /// `*.example.com` → `.example.com`
    Suffix(String),
    /// `example.*` → `example.`
    Prefix(String),
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub matcher: RouteMatch,
    pub action: Action,
    pub request_headers: HeaderOps,
    pub response_headers: HeaderOps,
    pub fault: Option<Fault>,
}

#[derive(Debug)]
pub struct RouteMatch {
    pub path: PathMatch,
    pub case_sensitive: bool,
    pub headers: Vec<HeaderMatch>,
    pub query: Vec<QueryMatch>,
    /// `grpc: {}`: only requests with `content-type: application/grpc…`.
    pub grpc: bool,
}

#[derive(Debug)]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(Regex),
    /// Prefix that must end at a `/` boundary (or the end of the path).
    SeparatedPrefix(String),
}

#[derive(Debug)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
}

/// A string matcher with Envoy's `ignore_case` (not applied to regexes).
#[derive(Debug)]
pub struct Matcher {
    pub kind: StringMatch,
    pub ignore_case: bool,
}

#[derive(Debug)]
pub enum HeaderKind {
    String(Matcher),
    Present(bool),
    Range(i64, i64),
}

/// A header or pseudo-header a route can match.
#[derive(Debug)]
pub enum HeaderRef {
    Authority,
    Method,
    Path,
    Scheme,
    Name(HeaderName),
}

#[derive(Debug)]
pub struct HeaderMatch {
    pub name: HeaderRef,
    pub kind: HeaderKind,
    pub invert: bool,
    pub treat_missing_as_empty: bool,
}

#[derive(Debug)]
pub struct QueryMatch {
    pub name: String,
    /// `None` = present match.
    pub matcher: Option<Matcher>,
}

#[derive(Debug)]
pub enum Action {
    Forward(Box<Forward>),
    Redirect(Redirect),
    Direct {
        status: u16,
        body: Option<bytes::Bytes>,
    },
}

/// Which cluster(s) a route or TCP proxy sends to.
#[derive(Debug, Clone)]
pub enum ClusterSpec {
    Single(Arc<str>),
    Weighted {
        clusters: Arc<[WeightedTarget]>,
        total: u64,
    },
}

#[derive(Debug, Clone)]
pub struct WeightedTarget {
    pub name: Arc<str>,
    pub weight: u32,
    pub request_headers: Arc<HeaderOps>,
    pub response_headers: Arc<HeaderOps>,
}

#[derive(Debug)]
pub enum HostRewrite {
    None,
    Literal(HeaderValue),
    /// Rewrite to the chosen upstream host's address.
    Auto,
}

#[derive(Debug)]
pub struct Forward {
    pub clusters: ClusterSpec,
    pub prefix_rewrite: Option<String>,
    pub regex_rewrite: Option<(Regex, String)>,
    pub host_rewrite: HostRewrite,
    /// `None` = no timeout (Envoy's `0s`).
    pub timeout: Option<Duration>,
    pub retry: Option<RetryPolicy>,
    /// Cap on `grpc-timeout` honoured as the route timeout (`max_stream_duration.grpc_timeout_header_max`).
    pub grpc_timeout_header_max: Option<Duration>,
    pub max_stream_duration: Option<Duration>,
}

/// A route's retry policy (Envoy's `RouteAction.retry_policy`, which Istio fills from a
/// VirtualService's `retries` or the mesh default). See `dataplane::retry`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub retry_on: String,
    /// `retry_on` as flags ([`RetryOn`]); conditions ironmesh does not know are ignored,
    /// as Envoy ignores them.
    pub on: RetryOn,
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    pub retriable_status_codes: Vec<u32>,
    /// `previous_hosts` among `retry_host_predicate`: a retry avoids hosts tried before.
    pub avoid_previous_hosts: bool,
    /// Host picks per retry while looking for one not tried before (at least 1).
    pub host_selection_max_attempts: u32,
    /// Jittered exponential back-off between attempts (Envoy: 25 ms, cap 10× that).
    pub base_interval: Duration,
    pub max_interval: Duration,
}

/// Envoy's `retry_on` conditions, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn(pub u16);

impl RetryOn {
    pub const FIVE_XX: u16 = 1;
    pub const GATEWAY_ERROR: u16 = 1 << 1;
    pub const RESET: u16 = 1 << 2;
    pub const CONNECT_FAILURE: u16 = 1 << 3;
    pub const RETRIABLE_4XX: u16 = 1 << 4;
    pub const REFUSED_STREAM: u16 = 1 << 5;
    pub const RETRIABLE_STATUS_CODES: u16 = 1 << 6;
    pub const GRPC_CANCELLED: u16 = 1 << 7;
    pub const GRPC_DEADLINE_EXCEEDED: u16 = 1 << 8;
    pub const GRPC_INTERNAL: u16 = 1 << 9;
    pub const GRPC_RESOURCE_EXHAUSTED: u16 = 1 << 10;
    pub const GRPC_UNAVAILABLE: u16 = 1 << 11;

    /// `5xx,connect-failure,...` (HTTP and gRPC conditions alike).
    pub fn parse(s: &str) -> RetryOn {
        let mut bits = 0;
        for c in s.split(',').map(str::trim) {
            bits |= match c {
                "5xx" => Self::FIVE_XX,
                "gateway-error" => Self::GATEWAY_ERROR,
                "reset" => Self::RESET,
                "connect-failure" => Self::CONNECT_FAILURE,
                "retriable-4xx" => Self::RETRIABLE_4XX,
                "refused-stream" => Self::REFUSED_STREAM,
                "retriable-status-codes" => Self::RETRIABLE_STATUS_CODES,
                "cancelled" => Self::GRPC_CANCELLED,
                "deadline-exceeded" => Self::GRPC_DEADLINE_EXCEEDED,
                "internal" => Self::GRPC_INTERNAL,
                "resource-exhausted" => Self::GRPC_RESOURCE_EXHAUSTED,
                "unavailable" => Self::GRPC_UNAVAILABLE,
                _ => 0,
            };
        }
        RetryOn(bits)
    }

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

#[derive(Debug)]
pub struct Redirect {
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub prefix_rewrite: Option<String>,
    pub regex_rewrite: Option<(Regex, String)>,
    pub status: u16,
    pub strip_query: bool,
}

/// `envoy.filters.http.fault` per-route config.
#[derive(Debug, Clone)]
pub struct Fault {
    pub delay: Option<(Duration, u32)>,
    /// (HTTP status, grpc status, percentage in millionths)
    pub abort: Option<(u16, Option<u32>, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Append {
    AppendOrAdd,
    AddIfAbsent,
    OverwriteOrAdd,
    OverwriteIfExists,
}

/// Header additions and removals, in Envoy's order (remove, then add).
#[derive(Debug, Clone, Default)]
pub struct HeaderOps {
    pub add: Vec<(HeaderName, HeaderValue, Append)>,
    pub remove: Vec<HeaderName>,
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    pub fn apply(&self, headers: &mut http::HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value, append) in &self.add {
            match append {
                Append::AppendOrAdd => {
                    headers.append(name.clone(), value.clone());
                }
                Append::AddIfAbsent => {
                    if !headers.contains_key(name) {
                        headers.insert(name.clone(), value.clone());
                    }
                }
                Append::OverwriteOrAdd => {
                    headers.insert(name.clone(), value.clone());
                }
                Append::OverwriteIfExists => {
                    if headers.contains_key(name) {
                        headers.insert(name.clone(), value.clone());
                    }
                }
            }
        }
    }
}

type R<T> = Result<T, String>;

#[allow(deprecated)]
pub(crate) fn header_ops(add: &[HeaderValueOption], remove: &[String], what: &str) -> R<HeaderOps> {
    let mut ops = HeaderOps::default();
    for opt in add {
        let Some(h) = &opt.header else { continue };
        let name = HeaderName::from_bytes(h.key.to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("{what}: invalid header name {:?}", h.key))?;
        let raw = if h.raw_value.is_empty() {
            h.value.as_bytes()
        } else {
            &h.raw_value
        };
        if raw.windows(2).any(|w| w[0] == b'%' && w[1] != b'%')
            && raw.iter().filter(|b| **b == b'%').count() >= 2
        {
            return Err(format!(
                "{what}: header {:?} uses a %COMMAND% substitution, which is not supported",
                h.key
            ));
        }
        let value = HeaderValue::from_bytes(raw)
            .map_err(|_| format!("{what}: invalid value for header {:?}", h.key))?;
        if value.is_empty() && !opt.keep_empty_value {
            continue;
        }
        let append = match opt.append {
            Some(b) if b.value => Append::AppendOrAdd,
            Some(_) => Append::OverwriteOrAdd,
            None => match HeaderAppendAction::try_from(opt.append_action) {
                Ok(HeaderAppendAction::AppendIfExistsOrAdd) => Append::AppendOrAdd,
                Ok(HeaderAppendAction::AddIfAbsent) => Append::AddIfAbsent,
                Ok(HeaderAppendAction::OverwriteIfExistsOrAdd) => Append::OverwriteOrAdd,
                Ok(HeaderAppendAction::OverwriteIfExists) => Append::OverwriteIfExists,
                Err(_) => {
                    return Err(format!(
                        "{what}: unknown append_action {}",
                        opt.append_action
                    ))
                }
            },
        };
        ops.add.push((name, value, append));
    }
    for r in remove {
        ops.remove.push(
            HeaderName::from_bytes(r.to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("{what}: invalid header name {r:?}"))?,
        );
    }
    Ok(ops)
}

fn regex(pattern: &str, what: &str) -> R<Regex> {
    // Envoy's RE2 matches the whole value for route/header regexes.
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("{what}: invalid regex {pattern:?}: {e}"))
}

fn unanchored(pattern: &str, what: &str) -> R<Regex> {
    Regex::new(pattern).map_err(|e| format!("{what}: invalid regex {pattern:?}: {e}"))
}

pub(crate) fn string_matcher(m: &StringMatcher, what: &str) -> R<Matcher> {
    use string_matcher::MatchPattern as P;
    let ic = m.ignore_case;
    let lc = |s: &String| {
        if ic {
            s.to_ascii_lowercase()
        } else {
            s.clone()
        }
    };
    let kind = match &m.match_pattern {
        Some(P::Exact(s)) => StringMatch::Exact(lc(s)),
        Some(P::Prefix(s)) => StringMatch::Prefix(lc(s)),
        Some(P::Suffix(s)) => StringMatch::Suffix(lc(s)),
        Some(P::Contains(s)) => StringMatch::Contains(lc(s)),
        Some(P::SafeRegex(r)) => StringMatch::Regex(regex(&r.regex, what)?),
        Some(P::Custom(_)) => {
            return Err(format!("{what}: custom string matchers are not supported"))
        }
        None => return Err(format!("{what}: string matcher without a pattern")),
    };
    Ok(Matcher {
        kind,
        ignore_case: ic,
    })
}

impl Matcher {
    pub fn matches(&self, value: &str) -> bool {
        let owned;
        let v = if self.ignore_case && !matches!(self.kind, StringMatch::Regex(_)) {
            owned = value.to_ascii_lowercase();
            owned.as_str()
        } else {
            value
        };
        match &self.kind {
            StringMatch::Exact(s) => v == s,
            StringMatch::Prefix(s) => v.starts_with(s.as_str()),
            StringMatch::Suffix(s) => v.ends_with(s.as_str()),
            StringMatch::Contains(s) => v.contains(s.as_str()),
            StringMatch::Regex(r) => r.is_match(v),
        }
    }
}

#[allow(deprecated)]
fn header_match(h: &rpb::HeaderMatcher, what: &str) -> R<HeaderMatch> {
    use rpb::header_matcher::HeaderMatchSpecifier as S;
    let name = match h.name.as_str() {
        ":authority" | "host" => HeaderRef::Authority,
        ":method" => HeaderRef::Method,
        ":path" => HeaderRef::Path,
        ":scheme" => HeaderRef::Scheme,
        other if other.starts_with(':') => {
            return Err(format!("{what}: pseudo-header {other} cannot be matched"))
        }
        other => HeaderRef::Name(
            HeaderName::from_bytes(other.to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("{what}: invalid header name {other:?}"))?,
        ),
    };
    let kind = match &h.header_match_specifier {
        Some(S::ExactMatch(s)) => HeaderKind::String(Matcher {
            kind: StringMatch::Exact(s.clone()),
            ignore_case: false,
        }),
        Some(S::PrefixMatch(s)) => HeaderKind::String(Matcher {
            kind: StringMatch::Prefix(s.clone()),
            ignore_case: false,
        }),
        Some(S::SuffixMatch(s)) => HeaderKind::String(Matcher {
            kind: StringMatch::Suffix(s.clone()),
            ignore_case: false,
        }),
        Some(S::ContainsMatch(s)) => HeaderKind::String(Matcher {
            kind: StringMatch::Contains(s.clone()),
            ignore_case: false,
        }),
        Some(S::SafeRegexMatch(r)) => HeaderKind::String(Matcher {
            kind: StringMatch::Regex(regex(&r.regex, what)?),
            ignore_case: false,
        }),
        Some(S::StringMatch(m)) => HeaderKind::String(string_matcher(m, what)?),
        Some(S::PresentMatch(b)) => HeaderKind::Present(*b),
        Some(S::RangeMatch(r)) => HeaderKind::Range(r.start, r.end),
        None => HeaderKind::Present(true),
    };
    Ok(HeaderMatch {
        name,
        kind,
        invert: h.invert_match,
        treat_missing_as_empty: h.treat_missing_header_as_empty,
    })
}

fn percent(p: &Option<FractionalPercent>) -> u32 {
    // In millionths.
    let Some(p) = p else { return 1_000_000 };
    let scale = match p.denominator {
        0 => 10_000,
        1 => 100,
        _ => 1,
    };
    p.numerator.saturating_mul(scale).min(1_000_000)
}

fn fault(any: &ironmesh_xds::Any, what: &str) -> R<Fault> {
    let f: HttpFault = decode(any).map_err(|e| format!("{what}: {e}"))?;
    if !f.headers.is_empty() || !f.downstream_nodes.is_empty() || f.response_rate_limit.is_some() {
        return Err(format!(
            "{what}: fault headers/downstream_nodes/response_rate_limit are not supported"
        ));
    }
    let delay = match f.delay {
        None => None,
        Some(d) => match d.fault_delay_secifier {
            Some(fault_delay::FaultDelaySecifier::FixedDelay(ref fd)) => Some((
                duration(&Some(*fd)).unwrap_or_default(),
                percent(&d.percentage),
            )),
            _ => return Err(format!("{what}: only fixed fault delays are supported")),
        },
    };
    let abort = match f.abort {
        None => None,
        Some(a) => {
            let pct = percent(&a.percentage);
            match a.error_type {
                Some(fault_abort::ErrorType::HttpStatus(s)) => Some((s as u16, None, pct)),
                Some(fault_abort::ErrorType::GrpcStatus(g)) => Some((200, Some(g), pct)),
                _ => {
                    return Err(format!(
                        "{what}: header-controlled fault aborts are not supported"
                    ))
                }
            }
        }
    };
    Ok(Fault { delay, abort })
}

fn path_rewrite(
    r: &Option<ironmesh_xds::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute>,
    what: &str,
) -> R<Option<(Regex, String)>> {
    let Some(r) = r else { return Ok(None) };
    let pat = r.pattern.as_ref().map(|p| p.regex.as_str()).unwrap_or("");
    // Envoy substitution uses \1; the regex crate uses ${1}.
    let mut sub = String::with_capacity(r.substitution.len());
    let mut chars = r.substitution.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| n.is_ascii_digit()) {
            let d = chars.next().unwrap_or('0');
            sub.push_str(&format!("${{{d}}}"));
        } else if c == '$' {
            sub.push_str("$$");
        } else {
            sub.push(c);
        }
    }
    Ok(Some((unanchored(pat, what)?, sub)))
}

fn cluster_spec(spec: &Option<rpb::route_action::ClusterSpecifier>, what: &str) -> R<ClusterSpec> {
    use rpb::route_action::ClusterSpecifier as C;
    match spec {
        Some(C::Cluster(c)) => Ok(ClusterSpec::Single(c.as_str().into())),
        Some(C::WeightedClusters(w)) => {
            let mut clusters = Vec::with_capacity(w.clusters.len());
            for c in &w.clusters {
                if !c.cluster_header.is_empty() {
                    return Err(format!("{what}: weighted cluster_header is not supported"));
                }
                clusters.push(WeightedTarget {
                    name: c.name.as_str().into(),
                    weight: c.weight.map(|w| w.value).unwrap_or(0),
                    request_headers: Arc::new(header_ops(
                        &c.request_headers_to_add,
                        &c.request_headers_to_remove,
                        what,
                    )?),
                    response_headers: Arc::new(header_ops(
                        &c.response_headers_to_add,
                        &c.response_headers_to_remove,
                        what,
                    )?),
                });
            }
            let total: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
            if total == 0 {
                return Err(format!("{what}: weighted clusters sum to zero"));
            }
            Ok(ClusterSpec::Weighted {
                clusters: clusters.into(),
                total,
            })
        }
        Some(C::ClusterHeader(_)) => Err(format!("{what}: cluster_header is not supported")),
        Some(_) => Err(format!(
            "{what}: cluster specifier plugins are not supported"
        )),
        None => Err(format!("{what}: route action without a cluster")),
    }
}

fn forward(a: &rpb::RouteAction, what: &str) -> R<Forward> {
    use rpb::route_action::HostRewriteSpecifier as H;
    if !a.request_mirror_policies.is_empty() {
        return Err(format!(
            "{what}: request_mirror_policies (traffic mirroring) are not supported"
        ));
    }
    if a.path_rewrite_policy.is_some() || !a.path_rewrite.is_empty() {
        return Err(format!("{what}: path_rewrite_policy is not supported"));
    }
    let host_rewrite = match &a.host_rewrite_specifier {
        None => HostRewrite::None,
        Some(H::HostRewriteLiteral(h)) => HostRewrite::Literal(
            HeaderValue::from_str(h)
                .map_err(|_| format!("{what}: invalid host_rewrite_literal"))?,
        ),
        Some(H::AutoHostRewrite(b)) if b.value => HostRewrite::Auto,
        Some(H::AutoHostRewrite(_)) => HostRewrite::None,
        Some(_) => {
            return Err(format!(
                "{what}: host rewrite by header/regex is not supported"
            ))
        }
    };
    let timeout = match duration(&a.timeout) {
        None => Some(DEFAULT_ROUTE_TIMEOUT),
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
    };
    let retry = a.retry_policy.as_ref().map(|r| {
        let base_interval = r
            .retry_back_off
            .as_ref()
            .and_then(|b| duration(&b.base_interval))
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_RETRY_BASE_INTERVAL);
        let max_interval = r
            .retry_back_off
            .as_ref()
            .and_then(|b| duration(&b.max_interval))
            .filter(|d| !d.is_zero())
            .unwrap_or(base_interval * 10)
            .max(base_interval);
        RetryPolicy {
            retry_on: r.retry_on.clone(),
            on: RetryOn::parse(&r.retry_on),
            num_retries: r.num_retries.map(|n| n.value).unwrap_or(1),
            per_try_timeout: duration(&r.per_try_timeout).filter(|d| !d.is_zero()),
            retriable_status_codes: r.retriable_status_codes.clone(),
            avoid_previous_hosts: r
                .retry_host_predicate
                .iter()
                .any(|p| p.name == PREVIOUS_HOSTS_PREDICATE),
            host_selection_max_attempts: u32::try_from(r.host_selection_retry_max_attempts)
                .unwrap_or(0)
                .max(1),
            base_interval,
            max_interval,
        }
    });
    let msd = a.max_stream_duration.as_ref();
    Ok(Forward {
        clusters: cluster_spec(&a.cluster_specifier, what)?,
        prefix_rewrite: (!a.prefix_rewrite.is_empty()).then(|| a.prefix_rewrite.clone()),
        regex_rewrite: path_rewrite(&a.regex_rewrite, what)?,
        host_rewrite,
        timeout,
        retry,
        grpc_timeout_header_max: msd.and_then(|m| duration(&m.grpc_timeout_header_max)),
        max_stream_duration: msd
            .and_then(|m| duration(&m.max_stream_duration))
            .filter(|d| !d.is_zero()),
    })
}

fn redirect(r: &rpb::RedirectAction, what: &str) -> R<Redirect> {
    use rpb::redirect_action::{PathRewriteSpecifier as P, SchemeRewriteSpecifier as S};
    let status = match r.response_code {
        0 => 301,
        1 => 302,
        2 => 303,
        3 => 307,
        4 => 308,
        n => return Err(format!("{what}: unknown redirect response_code {n}")),
    };
    let scheme = match &r.scheme_rewrite_specifier {
        Some(S::HttpsRedirect(true)) => Some("https".to_string()),
        Some(S::HttpsRedirect(false)) | None => None,
        Some(S::SchemeRedirect(s)) => Some(s.clone()),
    };
    let (mut path, mut prefix_rewrite, mut regex_rewrite) = (None, None, None);
    match &r.path_rewrite_specifier {
        None => {}
        Some(P::PathRedirect(p)) => path = Some(p.clone()),
        Some(P::PrefixRewrite(p)) => prefix_rewrite = Some(p.clone()),
        Some(P::RegexRewrite(rr)) => regex_rewrite = path_rewrite(&Some(rr.clone()), what)?,
        Some(_) => {
            return Err(format!(
                "{what}: redirect path_rewrite policy is not supported"
            ))
        }
    }
    Ok(Redirect {
        scheme,
        host: (!r.host_redirect.is_empty()).then(|| r.host_redirect.clone()),
        port: (r.port_redirect != 0).then_some(r.port_redirect as u16),
        path,
        prefix_rewrite,
        regex_rewrite,
        status,
        strip_query: r.strip_query,
    })
}

fn route(r: &rpb::Route, vh: &str) -> R<Route> {
    use rpb::route_match::PathSpecifier as PS;
    let what = format!("virtual host {vh:?} route {:?}", r.name);
    let what = what.as_str();
    let m = r
        .r#match
        .as_ref()
        .ok_or_else(|| format!("{what}: no match"))?;
    let case_sensitive = m.case_sensitive.map(|b| b.value).unwrap_or(true);
    let cs = |s: &String| {
        if case_sensitive {
            s.clone()
        } else {
            s.to_ascii_lowercase()
        }
    };
    let path = match &m.path_specifier {
        Some(PS::Prefix(p)) => PathMatch::Prefix(cs(p)),
        Some(PS::Path(p)) => PathMatch::Exact(cs(p)),
        Some(PS::SafeRegex(re)) => PathMatch::Regex(regex(&re.regex, what)?),
        Some(PS::PathSeparatedPrefix(p)) => PathMatch::SeparatedPrefix(cs(p)),
        Some(_) => {
            return Err(format!(
                "{what}: CONNECT and path_match_policy matchers are not supported"
            ))
        }
        None => return Err(format!("{what}: match without a path specifier")),
    };
    if m.runtime_fraction.is_some()
        || !m.cookies.is_empty()
        || m.tls_context.is_some()
        || !m.dynamic_metadata.is_empty()
    {
        return Err(format!("{what}: runtime_fraction/cookie/tls_context/dynamic_metadata matches are not supported"));
    }
    let headers = m
        .headers
        .iter()
        .map(|h| header_match(h, what))
        .collect::<R<Vec<_>>>()?;
    let mut query = Vec::new();
    for q in &m.query_parameters {
        use rpb::query_parameter_matcher::QueryParameterMatchSpecifier as Q;
        let matcher = match &q.query_parameter_match_specifier {
            Some(Q::StringMatch(s)) => Some(string_matcher(s, what)?),
            Some(Q::PresentMatch(_)) | None => None,
        };
        query.push(QueryMatch {
            name: q.name.clone(),
            matcher,
        });
    }
    let action = match &r.action {
        Some(rpb::route::Action::Route(a)) => Action::Forward(Box::new(forward(a, what)?)),
        Some(rpb::route::Action::Redirect(rd)) => Action::Redirect(redirect(rd, what)?),
        Some(rpb::route::Action::DirectResponse(d)) => {
            let body = match d.body.as_ref().and_then(|b| b.specifier.as_ref()) {
                None => None,
                Some(data_source::Specifier::InlineString(s)) => {
                    Some(bytes::Bytes::from(s.clone()))
                }
                Some(data_source::Specifier::InlineBytes(b)) => Some(bytes::Bytes::from(b.clone())),
                Some(_) => {
                    return Err(format!(
                        "{what}: direct_response body from a file or env is not supported"
                    ))
                }
            };
            Action::Direct {
                status: d.status as u16,
                body,
            }
        }
        Some(_) => {
            return Err(format!(
                "{what}: filter_action/non_forwarding_action are not supported"
            ))
        }
        None => return Err(format!("{what}: route without an action")),
    };
    let mut fault_cfg = None;
    for (name, any) in &r.typed_per_filter_config {
        match name.as_str() {
            "envoy.filters.http.fault" => fault_cfg = Some(fault(any, what)?),
            // CORS policies ride here in newer Istio; browsers' preflights are answered by the app.
            "envoy.filters.http.cors" => {}
            other => {
                return Err(format!(
                    "{what}: typed_per_filter_config for {other} is not supported"
                ))
            }
        }
    }
    Ok(Route {
        name: r.name.clone(),
        matcher: RouteMatch {
            path,
            case_sensitive,
            headers,
            query,
            grpc: m.grpc.is_some(),
        },
        action,
        request_headers: header_ops(
            &r.request_headers_to_add,
            &r.request_headers_to_remove,
            what,
        )?,
        response_headers: header_ops(
            &r.response_headers_to_add,
            &r.response_headers_to_remove,
            what,
        )?,
        fault: fault_cfg,
    })
}

pub(crate) fn domain(d: &str) -> Domain {
    let d = d.to_ascii_lowercase();
    if d == "*" {
        Domain::Any
    } else if let Some(rest) = d.strip_prefix('*') {
        Domain::Suffix(rest.to_string())
    } else if let Some(rest) = d.strip_suffix('*') {
        Domain::Prefix(rest.to_string())
    } else {
        Domain::Exact(d)
    }
}

impl RouteConfig {
    /// Compiles a RouteConfiguration.
    pub fn compile(rc: &rpb::RouteConfiguration) -> Result<RouteConfig, CompileError> {
        Self::compile_inner(rc).map_err(|m| CompileError::new(KIND, &rc.name, m))
    }

    fn compile_inner(rc: &rpb::RouteConfiguration) -> R<RouteConfig> {
        let mut vhosts = Vec::with_capacity(rc.virtual_hosts.len());
        let mut exact_domains = HashMap::default();
        if rc.vhds.is_some() {
            return Err("vhds is not supported".into());
        }
        for vh in &rc.virtual_hosts {
            let what = format!("virtual host {:?}", vh.name);
            if !vh.request_mirror_policies.is_empty() {
                return Err(format!("{what}: request_mirror_policies are not supported"));
            }
            let mut patterns = Vec::new();
            for d in &vh.domains {
                match domain(d) {
                    Domain::Exact(e) => {
                        exact_domains
                            .entry(e.into_boxed_str())
                            .or_insert(vhosts.len());
                    }
                    p => patterns.push(p),
                }
            }
            vhosts.push(VirtualHost {
                name: vh.name.clone(),
                domains: patterns,
                routes: vh
                    .routes
                    .iter()
                    .map(|r| route(r, &vh.name))
                    .collect::<R<Vec<_>>>()?,
                request_headers: header_ops(
                    &vh.request_headers_to_add,
                    &vh.request_headers_to_remove,
                    &what,
                )?,
                response_headers: header_ops(
                    &vh.response_headers_to_add,
                    &vh.response_headers_to_remove,
                    &what,
                )?,
                include_request_attempt_count: vh.include_request_attempt_count,
                include_attempt_count_in_response: vh.include_attempt_count_in_response,
            });
        }
        Ok(RouteConfig {
            name: rc.name.clone(),
            vhosts,
            exact_domains,
            ignore_port_in_host_matching: rc.ignore_port_in_host_matching,
            request_headers: header_ops(
                &rc.request_headers_to_add,
                &rc.request_headers_to_remove,
                "route configuration",
            )?,
            response_headers: header_ops(
                &rc.response_headers_to_add,
                &rc.response_headers_to_remove,
                "route configuration",
            )?,
        })
    }
}
