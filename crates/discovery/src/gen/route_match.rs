//! The pieces of an HTTP route that are pure translations of VirtualService fields:
//! matches, header operations, fault injection, CORS and direct-response bodies.

use envoy_types::pb::envoy::config::core::v3::{
    data_source, header_value_option::HeaderAppendAction, DataSource, HeaderValue,
    HeaderValueOption, RuntimeFractionalPercent,
};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher, query_parameter_matcher, route_match, HeaderMatcher, QueryParameterMatcher,
    RouteMatch,
};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{fault_delay, FaultDelay};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy as EnvoyCors;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    fault_abort, FaultAbort, HttpFault,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, RegexMatcher, StringMatcher};
use ironmesh_config::networking::virtual_service::{
    CorsPolicy, HeaderOperations, HttpBody, HttpFaultInjection, HttpMatchRequest,
    UnmatchedPreflights,
};
use ironmesh_config::types::StringMatch;

use super::util::{boolv, duration, integer_percent, percent_to_fraction};

pub fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.to_string(),
        ..Default::default()
    }
}

/// `exact`/`prefix`/`regex` as an Envoy string matcher; `None` for an empty match.
pub fn string_matcher(m: &StringMatch) -> Option<StringMatcher> {
    let pattern = if let Some(e) = &m.exact {
        string_matcher::MatchPattern::Exact(e.clone())
    } else if let Some(p) = &m.prefix {
        string_matcher::MatchPattern::Prefix(p.clone())
    } else if let Some(r) = &m.regex {
        string_matcher::MatchPattern::SafeRegex(regex(r))
    } else {
        return None;
    };
    Some(StringMatcher {
        match_pattern: Some(pattern),
        ..Default::default()
    })
}

/// An empty match, or the regex `*` (not RE2, but users write it), means "present".
fn is_presence(m: &StringMatch) -> bool {
    m.regex.as_deref() == Some("*") || string_matcher(m).is_none()
}

fn header(name: &str, m: &StringMatch) -> HeaderMatcher {
    let spec = if is_presence(m) {
        header_matcher::HeaderMatchSpecifier::PresentMatch(true)
    } else {
        header_matcher::HeaderMatchSpecifier::StringMatch(
            string_matcher(m).expect("non-empty match"),
        )
    };
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(spec),
        ..Default::default()
    }
}

/// `HTTPMatchRequest` → `RouteMatch`; `None` is the catch-all `/`.
pub fn route_match(m: Option<&HttpMatchRequest>) -> RouteMatch {
    let mut out = RouteMatch {
        path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
        ..Default::default()
    };
    let Some(m) = m else { return out };
    // JWT-claim pseudo headers are matched by the authentication filter's metadata,
    // which ironmesh does not produce yet; they are left out rather than never matching.
    let real = |(name, _): &(&String, &StringMatch)| !name.starts_with("@request.auth.claims");
    for (name, sm) in m.headers.iter().filter(real) {
        out.headers.push(header(name, sm));
    }
    for (name, sm) in m.without_headers.iter().filter(real) {
        let mut h = header(name, sm);
        h.invert_match = true;
        h.treat_missing_header_as_empty = !is_presence(sm);
        out.headers.push(h);
    }
    out.headers.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(uri) = &m.uri {
        if let Some(e) = &uri.exact {
            out.path_specifier = Some(route_match::PathSpecifier::Path(e.clone()));
        } else if let Some(p) = &uri.prefix {
            out.path_specifier = Some(route_match::PathSpecifier::Prefix(p.clone()));
        } else if let Some(r) = &uri.regex {
            out.path_specifier = Some(route_match::PathSpecifier::SafeRegex(regex(r)));
        }
    }
    out.case_sensitive = Some(boolv(m.ignore_uri_case != Some(true)));
    for (name, sm) in [
        (":method", &m.method),
        (":authority", &m.authority),
        (":scheme", &m.scheme),
    ] {
        if let Some(sm) = sm {
            out.headers.push(header(name, sm));
        }
    }
    for (name, sm) in &m.query_params {
        let spec = if is_presence(sm) {
            query_parameter_matcher::QueryParameterMatchSpecifier::PresentMatch(true)
        } else {
            query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(
                string_matcher(sm).expect("non-empty match"),
            )
        };
        out.query_parameters.push(QueryParameterMatcher {
            name: name.clone(),
            query_parameter_match_specifier: Some(spec),
        });
    }
    out
}

/// A catch-all route ends the route list: nothing after it can match.
pub fn is_catch_all(m: &RouteMatch) -> bool {
    let all = match &m.path_specifier {
        Some(route_match::PathSpecifier::Prefix(p)) => p == "/",
        Some(route_match::PathSpecifier::SafeRegex(r)) => r.regex == ".*",
        _ => false,
    };
    all && m.headers.is_empty() && m.query_parameters.is_empty() && m.dynamic_metadata.is_empty()
}

/// Header operations of a VirtualService, as Envoy header lists, plus the authority a
/// `Host`/`:authority` header sets (Envoy rewrites the host instead).
#[derive(Debug, Default)]
pub struct HeaderOps {
    pub request_add: Vec<HeaderValueOption>,
    pub request_remove: Vec<String>,
    pub response_add: Vec<HeaderValueOption>,
    pub response_remove: Vec<String>,
    pub authority: Option<String>,
}

fn internal(name: &str) -> bool {
    name.starts_with(':') || name.eq_ignore_ascii_case("host")
}

fn authority_header(name: &str) -> bool {
    name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host")
}

fn header_values(ops: &HeaderOperations) -> (Vec<HeaderValueOption>, Option<String>) {
    let mut out = Vec::new();
    let mut authority = None;
    // `set` before `add`, each sorted by name (BTreeMap order), as Istio emits them.
    for (map, action) in [
        (&ops.set, HeaderAppendAction::OverwriteIfExistsOrAdd),
        (&ops.add, HeaderAppendAction::AppendIfExistsOrAdd),
    ] {
        for (k, v) in map {
            if authority_header(k)
                && (authority.is_none() || action == HeaderAppendAction::OverwriteIfExistsOrAdd)
            {
                authority = Some(v.clone());
            }
            if internal(k) {
                continue;
            }
            out.push(HeaderValueOption {
                header: Some(HeaderValue {
                    key: k.clone(),
                    value: v.clone(),
                    ..Default::default()
                }),
                append_action: action as i32,
                ..Default::default()
            });
        }
    }
    (out, authority)
}

pub fn header_ops(h: Option<&ironmesh_config::networking::virtual_service::Headers>) -> HeaderOps {
    let Some(h) = h else {
        return HeaderOps::default();
    };
    let mut out = HeaderOps::default();
    if let Some(req) = &h.request {
        let (add, authority) = header_values(req);
        out.request_add = add;
        out.authority = authority;
        out.request_remove = req
            .remove
            .iter()
            .filter(|k| !internal(k))
            .cloned()
            .collect();
    }
    if let Some(resp) = &h.response {
        out.response_add = header_values(resp).0;
        out.response_remove = resp
            .remove
            .iter()
            .filter(|k| !internal(k))
            .cloned()
            .collect();
    }
    out
}

/// gRPC status names (as VirtualService `grpcStatus` spells them) to codes.
fn grpc_code(name: &str) -> Option<u32> {
    const NAMES: [&str; 17] = [
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
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map(|i| i as u32)
        .or_else(|| name.parse().ok())
}

/// The per-route `HTTPFault` config; `None` when nothing Envoy supports is set.
pub fn fault(f: &HttpFaultInjection) -> Option<HttpFault> {
    let mut out = HttpFault::default();
    if let Some(d) = &f.delay {
        if let Some(fixed) = &d.fixed_delay {
            out.delay = Some(FaultDelay {
                percentage: Some(match &d.percentage {
                    Some(p) => percent_to_fraction(p.value),
                    #[allow(deprecated)]
                    None => integer_percent(d.percent.unwrap_or(0).max(0) as u32),
                }),
                fault_delay_secifier: Some(fault_delay::FaultDelaySecifier::FixedDelay(duration(
                    fixed.as_std(),
                ))),
            });
        }
    }
    if let Some(a) = &f.abort {
        let error = if let Some(s) = a.http_status {
            Some(fault_abort::ErrorType::HttpStatus(s as u32))
        } else {
            a.grpc_status
                .as_deref()
                .and_then(grpc_code)
                .map(fault_abort::ErrorType::GrpcStatus)
        };
        if let Some(error) = error {
            out.abort = Some(FaultAbort {
                percentage: a.percentage.map(|p| percent_to_fraction(p.value)),
                error_type: Some(error),
                ..Default::default()
            });
        }
    }
    (out.delay.is_some() || out.abort.is_some()).then_some(out)
}

/// The per-route CORS policy.
pub fn cors(c: &CorsPolicy) -> EnvoyCors {
    let origins: Vec<StringMatcher> = if !c.allow_origins.is_empty() {
        c.allow_origins.iter().filter_map(string_matcher).collect()
    } else {
        c.allow_origin
            .iter()
            .map(|o| StringMatcher {
                match_pattern: Some(string_matcher::MatchPattern::Exact(o.clone())),
                ..Default::default()
            })
            .collect()
    };
    EnvoyCors {
        allow_origin_string_match: origins,
        allow_methods: c.allow_methods.join(","),
        allow_headers: c.allow_headers.join(","),
        expose_headers: c.expose_headers.join(","),
        max_age: c
            .max_age
            .as_ref()
            .map(|d| d.as_std().as_secs().to_string())
            .unwrap_or_default(),
        allow_credentials: c.allow_credentials.map(boolv),
        filter_enabled: Some(RuntimeFractionalPercent {
            default_value: Some(integer_percent(100)),
            ..Default::default()
        }),
        forward_not_matching_preflights: Some(boolv(
            c.unmatched_preflights != Some(UnmatchedPreflights::Ignore),
        )),
        ..Default::default()
    }
}

/// A direct-response body: text, or base64-decoded bytes.
pub fn body(b: &HttpBody) -> Option<DataSource> {
    let spec = if let Some(s) = &b.string {
        data_source::Specifier::InlineString(s.clone())
    } else {
        data_source::Specifier::InlineBytes(base64_decode(b.bytes.as_deref()?)?)
    };
    Some(DataSource {
        specifier: Some(spec),
        ..Default::default()
    })
}

/// Standard base64 (padding optional); validation already rejected bad input.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_bodies() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8gd29ybGQ").unwrap(), b"hello world");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a$b=").is_none());
    }

    #[test]
    fn grpc_status_names() {
        assert_eq!(grpc_code("UNAVAILABLE"), Some(14));
        assert_eq!(grpc_code("unauthenticated"), Some(16));
        assert_eq!(grpc_code("7"), Some(7));
        assert_eq!(grpc_code("NOPE"), None);
    }
}
