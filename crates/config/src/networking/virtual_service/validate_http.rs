//! Validation of HTTP routes: the one-action rule, matches, CORS, faults, mirrors,
//! redirects, direct responses, retries and rewrites.

use super::http::{
    Abort, CorsPolicy, Delay, HttpDirectResponse, HttpFaultInjection, HttpMatchRequest,
    HttpRedirect, HttpRetry, HttpRewrite, HttpRoute,
};
use super::validate::{gateway_names, is_jwt_claim, match_port, source_namespace};
use super::validate_fields::*;
use crate::path::FieldPath;
use crate::validation::{checks, Problems};

pub(super) fn http_route(r: &HttpRoute, delegate_vs: bool, at: &FieldPath, p: &mut Problems) {
    let name = r.name.as_deref().unwrap_or("");
    if delegate_vs && r.delegate.is_some() {
        p.error(&at.field("delegate"), "delegate HTTP route cannot contain delegate: only one level of delegation is supported");
    }
    if !delegate_vs && r.delegate.is_some() {
        // A root route hands everything to the delegate.
        let hint = "a route with delegate takes its destinations from the delegate VirtualService";
        if r.redirect.is_some() {
            p.error(
                &at.field("redirect"),
                format!("root HTTP route {name} must not specify redirect: {hint}"),
            );
        }
        if !r.route.is_empty() {
            p.error(
                &at.field("route"),
                format!("root HTTP route {name} must not specify route: {hint}"),
            );
        }
        if r.direct_response.is_some() {
            p.error(
                &at.field("directResponse"),
                format!("root HTTP route {name} must not specify directResponse: {hint}"),
            );
        }
        if let Some(d) = &r.delegate {
            let dat = at.field("delegate");
            if !nonempty(&d.name) {
                p.error(
                    &dat.field("name"),
                    "delegate name: Required value: name the delegate VirtualService",
                );
            } else if let Some(n) = &d.name {
                p.check(&dat.field("name"), checks::dns1123_subdomain(n));
            }
            if let Some(ns) = d.namespace.as_deref().filter(|n| !n.is_empty()) {
                p.check(&dat.field("namespace"), checks::namespace_name(ns));
            }
        }
    } else if r.redirect.is_some() {
        let rat = at.field("redirect");
        if !r.route.is_empty() {
            p.error(&rat, "HTTP route cannot contain both route and redirect");
        }
        if r.fault.is_some() {
            p.error(&rat, "HTTP route cannot contain both fault and redirect");
        }
        if r.rewrite.is_some() {
            p.error(
                &rat,
                "HTTP route rule cannot contain both rewrite and redirect",
            );
        }
        if r.direct_response.is_some() {
            p.error(
                &rat,
                "HTTP route rule cannot contain both direct_response and redirect",
            );
        }
    } else if r.direct_response.is_some() {
        let dat = at.field("directResponse");
        if !r.route.is_empty() {
            p.error(
                &dat,
                "HTTP route cannot contain both route and direct_response",
            );
        }
        if r.fault.is_some() {
            p.error(
                &dat,
                "HTTP route cannot contain both fault and direct_response",
            );
        }
        if r.rewrite.is_some() {
            p.error(
                &dat,
                "HTTP route rule cannot contain both rewrite and direct_response",
            );
        }
    } else if r.route.is_empty() {
        p.error(at, "HTTP route, redirect or direct_response is required: set route, redirect, directResponse or delegate");
    }
    if r.mirror.is_some() && !r.mirrors.is_empty() {
        p.error(
            &at.field("mirrors"),
            "HTTP route cannot contain both mirror and mirrors: move mirror into the mirrors list",
        );
    }

    for (j, m) in r.match_.iter().enumerate() {
        http_match(m, &at.field("match").index(j), p);
    }
    if let Some(h) = &r.headers {
        headers(h, &at.field("headers"), p);
    }
    if let Some(c) = &r.cors_policy {
        cors(c, &at.field("corsPolicy"), p);
    }
    if let Some(f) = &r.fault {
        fault(f, &at.field("fault"), p);
    }
    if let Some(v) = r.mirror_percent {
        let mat = at.field("mirrorPercent");
        if v > 100 {
            p.error(
                &mat,
                format!("mirror_percent must have a max value of 100 (it has {v})"),
            );
        }
        p.warn(
            &mat,
            "using deprecated setting \"mirrorPercent\", use \"mirrorPercentage\" instead",
        );
    }
    if let Some(v) = r.mirror_percentage.map(|x| x.value) {
        let mat = at.field("mirrorPercentage").field("value");
        if v > 100.0 {
            p.error(
                &mat,
                format!("mirror_percentage must have a max value of 100 (it has {v})"),
            );
        }
        if v < 0.0 {
            p.error(
                &mat,
                format!("mirror_percentage must have a min value of 0 (it has {v})"),
            );
        }
    }
    if (r.mirror_percent.is_some() || r.mirror_percentage.is_some()) && r.mirror.is_none() {
        p.warn(
            at,
            "mirrorPercentage has no effect without mirror (use mirrors[].percentage with mirrors)",
        );
    }
    if let Some(m) = &r.mirror {
        destination(m, &at.field("mirror"), p);
    }
    for (i, m) in r.mirrors.iter().enumerate() {
        let here = at.field("mirrors").index(i);
        match &m.destination {
            Some(d) => destination(d, &here.field("destination"), p),
            None => p.error(
                &here.field("destination"),
                "destination is required for mirrors",
            ),
        }
        if let Some(v) = m.percentage.map(|x| x.value) {
            if !(0.0..=100.0).contains(&v) {
                p.error(
                    &here.field("percentage").field("value"),
                    format!("mirror percentage {v} is invalid: must be between 0 and 100"),
                );
            }
        }
    }
    if let Some(rd) = &r.redirect {
        redirect(rd, &at.field("redirect"), p);
    }
    if let Some(d) = &r.direct_response {
        direct_response(d, &at.field("directResponse"), p);
    }
    if let Some(rt) = &r.retries {
        retries(rt, &at.field("retries"), p);
    }
    if let Some(rw) = &r.rewrite {
        rewrite(rw, &at.field("rewrite"), p);
    }
    authority_rewrite(r, at, p);

    let rat = at.field("route");
    let mut total = 0;
    for (i, d) in r.route.iter().enumerate() {
        let here = rat.index(i);
        match &d.destination {
            Some(dest) => destination(dest, &here.field("destination"), p),
            None => p.error(&here.field("destination"), "destination is required"),
        }
        if let Some(h) = &d.headers {
            headers(h, &here.field("headers"), p);
        }
        total += weight(d.weight, &here, p);
    }
    total_weight(r.route.len(), total, &rat, p);

    if let Some(t) = &r.timeout {
        p.check(&at.field("timeout"), ms_duration(t));
    }
}

pub(super) fn http_match(m: &HttpMatchRequest, at: &FieldPath, p: &mut Problems) {
    for (k, sm) in &m.headers {
        let here = at.field("headers").key(k);
        p.check(&here, header_match_name(k));
        string_match(sm, "headers", Sm::Strict, &here, p);
    }
    for (k, sm) in &m.without_headers {
        let here = at.field("withoutHeaders").key(k);
        p.check(&here, header_match_name(k));
        string_match(sm, "withoutHeaders", Sm::Without, &here, p);
    }
    let singles = [
        ("uri", &m.uri, Sm::Uri),
        ("scheme", &m.scheme, Sm::Strict),
        ("method", &m.method, Sm::Strict),
        ("authority", &m.authority, Sm::Strict),
    ];
    for (field, sm, kind) in singles {
        if let Some(sm) = sm {
            string_match(sm, field, kind, &at.field(field), p);
        }
    }
    for (k, sm) in &m.query_params {
        string_match(
            sm,
            "queryParams",
            Sm::Strict,
            &at.field("queryParams").key(k),
            p,
        );
    }
    match_port(m.port, &at.field("port"), p);
    checks::selector_labels(&m.source_labels, &at.field("sourceLabels"), p);
    gateway_names(&m.gateways, &at.field("gateways"), p);
    source_namespace(&m.source_namespace, &at.field("sourceNamespace"), p);
}

/// Header names in matches: an RFC 7230 token, an HTTP/2 pseudo-header or a JWT claim
/// key.
pub(super) fn header_match_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".into());
    }
    if is_jwt_claim(name)
        || [":method", ":scheme", ":authority", ":path", ":status"].contains(&name)
    {
        return Ok(());
    }
    checks::header_name(name).map_err(|_| {
        format!("header name {name} is not a valid header name: use letters, digits and !#$%&'*+-.^_`|~, a pseudo-header such as :authority, or @request.auth.claims.<claim>")
    })
}

pub(super) const CORS_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

pub(super) fn cors(c: &CorsPolicy, at: &FieldPath, p: &mut Problems) {
    if !c.allow_origin.is_empty() {
        p.warn(
            &at.field("allowOrigin"),
            "allowOrigin is deprecated: use allowOrigins (a list of exact/prefix/regex matches)",
        );
    }
    for (i, o) in c.allow_origins.iter().enumerate() {
        let here = at.field("allowOrigins").index(i);
        let value = o
            .exact
            .as_deref()
            .or(o.prefix.as_deref())
            .or(o.regex.as_deref())
            .unwrap_or("");
        if value.is_empty() {
            p.error(&here, "'' is not a valid match type for CORS allow origins: set exact, prefix or regex to a non-empty origin");
            continue;
        }
        string_match(o, "corsPolicy.allowOrigins", Sm::Strict, &here, p);
    }
    for (i, m) in c.allow_methods.iter().enumerate() {
        if !CORS_METHODS.contains(&m.as_str()) {
            p.error(
                &at.field("allowMethods").index(i),
                format!(
                    "{m:?} is not a supported HTTP method: use one of {}",
                    CORS_METHODS.join(", ")
                ),
            );
        }
    }
    for (field, list) in [
        ("allowHeaders", &c.allow_headers),
        ("exposeHeaders", &c.expose_headers),
    ] {
        for (i, h) in list.iter().enumerate() {
            let here = at.field(field).index(i);
            if h.is_empty() {
                p.error(&here, "header name cannot be empty");
            } else if h != "*" && checks::header_name(h).is_err() {
                p.error(&here, format!("header name {h} is not a valid header name: use \"*\" or letters, digits and !#$%&'*+-.^_`|~"));
            }
        }
    }
    if let Some(d) = &c.max_age {
        let here = at.field("maxAge");
        p.check(&here, ms_duration(d));
        if d.as_std().subsec_nanos() > 0 {
            p.error(&here, format!("max_age duration is accurate only to seconds precision (got {d}): use whole seconds, e.g. 24h or 3600s"));
        }
    }
}

/// gRPC status names Envoy's fault filter accepts.
pub(super) const GRPC_STATUS: &[&str] = &[
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

pub(super) fn http_status(status: i64) -> Result<(), String> {
    if (200..=599).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP status {status} is not in range 200-599"))
    }
}

pub(super) fn fault(f: &HttpFaultInjection, at: &FieldPath, p: &mut Problems) {
    if f.abort.is_none() && f.delay.is_none() {
        p.error(at, "HTTP fault injection must have an abort and/or a delay");
    }
    if let Some(a) = &f.abort {
        abort(a, &at.field("abort"), p);
    }
    if let Some(d) = &f.delay {
        delay(d, &at.field("delay"), p);
    }
}

pub(super) fn abort(a: &Abort, at: &FieldPath, p: &mut Problems) {
    percentage(&a.percentage, &at.field("percentage"), p);
    let set = [
        a.http_status.is_some(),
        a.grpc_status.is_some(),
        a.http2_error.is_some(),
    ];
    match set.iter().filter(|b| **b).count() {
        0 => p.warn(
            at,
            "abort configured, but error type not set: set httpStatus or grpcStatus",
        ),
        1 => {}
        _ => {
            p.error(at, "abort sets more than one of httpStatus, grpcStatus and http2Error; set exactly one");
            return;
        }
    }
    if let Some(s) = a.http_status {
        p.check(&at.field("httpStatus"), http_status(i64::from(s)));
    }
    if let Some(g) = &a.grpc_status {
        if !GRPC_STATUS.contains(&g.as_str()) {
            p.error(
                &at.field("grpcStatus"),
                format!("gRPC status {g:?} is not supported: use a name from https://github.com/grpc/grpc/blob/master/doc/statuscodes.md, for example 'NOT_FOUND'"),
            );
        }
    }
    if a.http2_error.is_some() {
        p.error(
            &at.field("http2Error"),
            "HTTP/2 abort fault injection not supported yet: use httpStatus or grpcStatus",
        );
    }
}

pub(super) fn delay(d: &Delay, at: &FieldPath, p: &mut Problems) {
    percentage(&d.percentage, &at.field("percentage"), p);
    if let Some(pc) = d.percent {
        let here = at.field("percent");
        p.warn(&here, "percent is deprecated: use percentage.value");
        if !(0..=100).contains(&pc) {
            p.error(&here, format!("percentage {pc} is not in range 0..100"));
        }
    }
    match (&d.fixed_delay, &d.exponential_delay) {
        (Some(_), Some(_)) => p.error(
            at,
            "delay sets both fixedDelay and exponentialDelay; set exactly one",
        ),
        (Some(f), None) => p.check(&at.field("fixedDelay"), ms_duration(f)),
        (None, Some(e)) => {
            let here = at.field("exponentialDelay");
            p.check(&here, ms_duration(e));
            p.error(&here, "exponentialDelay not supported yet: use fixedDelay");
        }
        (None, None) => p.error(
            at,
            "delay must set fixedDelay (Envoy rejects a delay without one)",
        ),
    }
}

pub(super) fn redirect(r: &HttpRedirect, at: &FieldPath, p: &mut Problems) {
    if !nonempty(&r.uri)
        && !nonempty(&r.authority)
        && r.port.is_none()
        && r.derive_port.is_none()
        && !nonempty(&r.scheme)
    {
        p.error(at, "redirect must specify URI, authority, scheme, or port");
    }
    if r.port.is_some() && r.derive_port.is_some() {
        p.error(
            at,
            "redirect sets both port and derivePort; set at most one",
        );
    }
    if let Some(code) = r.redirect_code.filter(|c| *c != 0) {
        if !(300..=399).contains(&code) {
            p.error(&at.field("redirectCode"), format!("{code} is not a valid redirect code, must be 3xx (e.g. 301, 302, 303, 307 or 308)"));
        }
    }
    if let Some(s) = r.scheme.as_deref().filter(|s| !s.is_empty()) {
        if s != "http" && s != "https" {
            p.error(
                &at.field("scheme"),
                format!("invalid redirect scheme {s:?}, must be \"http\" or \"https\""),
            );
        }
    }
    if let Some(port) = r.port.filter(|n| *n > 0) {
        p.check(&at.field("port"), checks::port(port));
    }
}

/// Whether `s` is standard base64 (what protobuf JSON expects for `bytes`; the URL-safe
/// alphabet is accepted too, as protobuf's decoders do).
pub(super) fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    let pad = s.len() - body.len();
    pad <= 2
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_'))
        && (pad == 0 || s.len().is_multiple_of(4))
        && body.len() % 4 != 1
}

pub(super) fn direct_response(d: &HttpDirectResponse, at: &FieldPath, p: &mut Problems) {
    match d.status {
        None => p.error(
            &at.field("status"),
            "status: Required value: set an HTTP status between 200 and 599",
        ),
        Some(s) => p.check(&at.field("status"), http_status(i64::from(s))),
    }
    let Some(body) = &d.body else { return };
    let bat = at.field("body");
    let size = match (&body.string, &body.bytes) {
        (Some(_), Some(_)) => {
            p.error(&bat, "body sets both string and bytes; set exactly one");
            return;
        }
        (Some(s), None) => s.len(),
        (None, Some(b)) => {
            if !is_base64(b) {
                p.error(
                    &bat.field("bytes"),
                    "bytes must be base64-encoded (use string for a text body)",
                );
            }
            b.len() / 4 * 3
        }
        (None, None) => 0,
    };
    if size > 1024 * 1024 {
        p.error(
            &bat,
            "large direct_responses may impact control plane performance, must be less than 1MB",
        );
    } else if size > 100 * 1024 {
        p.warn(
            &bat,
            "large direct_responses may impact control plane performance (body is over 100KB)",
        );
    }
}

/// Envoy's `x-envoy-retry-on` and `x-envoy-retry-grpc-on` conditions.
pub(super) const RETRY_ON: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Registered HTTP status codes (a bare code in `retryOn` means "retry on this status").
pub(super) fn known_http_status(code: u32) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429
        | 431 | 451 | 500..=508 | 510 | 511)
}

pub(super) fn retries(r: &HttpRetry, at: &FieldPath, p: &mut Problems) {
    let attempts = r.attempts.unwrap_or(0);
    if attempts < 0 {
        p.error(
            &at.field("attempts"),
            format!("attempts cannot be negative (got {attempts})"),
        );
    }
    if attempts == 0
        && (r.per_try_timeout.is_some()
            || nonempty(&r.retry_on)
            || r.retry_remote_localities.is_some())
    {
        p.error(at, "http retry policy configured when attempts are set to 0 (disabled): set attempts to a positive number, or remove the policy");
    }
    if let Some(d) = &r.per_try_timeout {
        p.check(&at.field("perTryTimeout"), ms_duration(d));
    }
    if let Some(on) = r.retry_on.as_deref().filter(|s| !s.is_empty()) {
        for token in on.split(',') {
            let is_code = token.parse::<u32>().is_ok_and(known_http_status);
            if !is_code && !RETRY_ON.contains(&token) {
                p.error(
                    &at.field("retryOn"),
                    format!(
                        "{token:?} is not a valid retryOn policy: use comma-separated (no spaces) HTTP status codes or {}",
                        RETRY_ON.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(d) = &r.backoff {
        p.check(&at.field("backoff"), ms_duration(d));
    }
}

pub(super) fn rewrite(r: &HttpRewrite, at: &FieldPath, p: &mut Problems) {
    if nonempty(&r.uri) && r.uri_regex_rewrite.is_some() {
        p.error(at, "rewrite may only contain one of URI or UriRegexRewrite");
        return;
    }
    if !nonempty(&r.uri) && r.uri_regex_rewrite.is_none() && !nonempty(&r.authority) {
        p.error(at, "rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or UriRegexRewrite may be specified");
        return;
    }
    if let Some(rr) = &r.uri_regex_rewrite {
        let here = at.field("uriRegexRewrite");
        if !nonempty(&rr.match_) || !nonempty(&rr.rewrite) {
            p.error(
                &here,
                "UriRegexRewrite requires both Rewrite and Match fields to be specified",
            );
        } else if let Some(m) = &rr.match_ {
            regex(
                m,
                "HTTPRewrite.UriRegexRewrite.Match",
                &here.field("match"),
                p,
            );
        }
    }
}
