//! Value checks shared by the VirtualService validators: durations, percentages,
//! regexes, string matches, destinations and weights, and header operations.

use super::http::{HeaderOperations, Headers, HttpRoute};
use super::{Destination, RouteDestination};
use crate::path::FieldPath;
use crate::types::{Duration, Percent, StringMatch};
use crate::validation::{checks, Problems};

pub(super) fn nonempty(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|v| !v.is_empty())
}

/// Istio's duration rule for timeouts, delays, max ages: at least 1ms, whole ms.
pub(super) fn ms_duration(d: &Duration) -> Result<(), String> {
    let v = d.as_std();
    if v < std::time::Duration::from_millis(1) {
        return Err(format!(
            "duration {d} is too short: must be a valid duration greater than 1ms"
        ));
    }
    if !v.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(format!(
            "duration {d} is invalid: only durations to ms precision are supported"
        ));
    }
    Ok(())
}

/// `Percent`: 0, or 0.0001..=100.
pub(super) fn percentage(pc: &Option<Percent>, at: &FieldPath, p: &mut Problems) {
    if let Some(v) = pc.map(|x| x.value) {
        if !(0.0..=100.0).contains(&v) || (v > 0.0 && v < 0.0001) {
            p.error(
                &at.field("value"),
                format!("percentage {v} is neither 0.0, nor in range [0.0001, 100.0]"),
            );
        }
    }
}

pub(super) fn regex(re: &str, where_: &str, at: &FieldPath, p: &mut Problems) {
    if re.is_empty() {
        p.error(
            at,
            format!("{where_:?}: regex string match should not be empty"),
        );
    } else if re.len() > 1024 {
        p.error(
            at,
            format!("{where_:?}: regex is too large, max length allowed is 1024"),
        );
    } else if let Err(e) = checks::re2_regex(re) {
        p.error(at, format!("{where_:?}: {e}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)"));
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Sm {
    /// `uri`: an empty prefix is allowed.
    Uri,
    /// Everything else: prefixes must not be empty.
    Strict,
    /// `withoutHeaders`: like `Strict`, and the regex `*` means "present".
    Without,
}

/// A `StringMatch`: at most one of exact/prefix/regex (none is a presence match for
/// headers); prefixes non-empty where Envoy requires it; regexes compile.
pub(super) fn string_match(
    m: &StringMatch,
    where_: &str,
    kind: Sm,
    at: &FieldPath,
    p: &mut Problems,
) {
    let n = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if n > 1 {
        p.error(at, format!("{where_:?}: string match sets more than one of exact, prefix and regex; set exactly one"));
        return;
    }
    if let Some(pre) = &m.prefix {
        if pre.is_empty() && kind != Sm::Uri {
            p.error(
                &at.field("prefix"),
                format!("{where_:?}: prefix string match should not be empty"),
            );
        }
    }
    if let Some(re) = &m.regex {
        if !(kind == Sm::Without && re == "*") {
            regex(re, where_, &at.field("regex"), p);
        }
    }
}

pub(super) fn destination(d: &Destination, at: &FieldPath, p: &mut Problems) {
    match d.host.as_deref() {
        None | Some("") => p.error(
            &at.field("host"),
            "destination host: Required value: name a service, e.g. reviews.default.svc.cluster.local or reviews",
        ),
        Some("*") => p.error(&at.field("host"), "invalid destination host *: a destination names one service"),
        Some(h) => p.check(&at.field("host"), checks::wildcard_domain(h)),
    }
    if let Some(s) = &d.subset {
        if s.is_empty() {
            p.error(&at.field("subset"), "subset name cannot be empty");
        } else if !checks::is_dns1123_label(s) {
            p.error(
                &at.field("subset"),
                format!(
                    "subset name is invalid: {s}: must be a DNS-1123 label (letters, digits, '-')"
                ),
            );
        }
    }
    if let Some(port) = &d.port {
        p.check(
            &at.field("port").field("number"),
            checks::port(port.number.unwrap_or(0)),
        );
    }
}

pub(super) fn weight(w: Option<i32>, at: &FieldPath, p: &mut Problems) -> i64 {
    let w = w.unwrap_or(0);
    if w < 0 {
        p.error(
            &at.field("weight"),
            format!("weight {w} < 0: weights are relative shares and must not be negative"),
        );
    }
    i64::from(w.max(0))
}

pub(super) fn total_weight(count: usize, total: i64, at: &FieldPath, p: &mut Problems) {
    if count > 1 && total == 0 {
        p.error(at, "total destination weight = 0: with several destinations, give at least one a positive weight");
    } else if count > 1 && total != 100 {
        // Istio (and Envoy) treat weights as relative shares, so this is accepted; a sum
        // other than 100 is still usually a typo, so say what split it really gives.
        p.warn(
            at,
            format!(
                "total destination weight {total} != 100: weights are relative shares, so the split is by weight/{total}; make them add up to 100 to say what you mean"
            ),
        );
    }
}

pub(super) fn route_destinations(routes: &[RouteDestination], at: &FieldPath, p: &mut Problems) {
    let mut total = 0;
    for (i, r) in routes.iter().enumerate() {
        let here = at.index(i);
        match &r.destination {
            Some(d) => destination(d, &here.field("destination"), p),
            None => p.error(&here.field("destination"), "destination is required"),
        }
        total += weight(r.weight, &here, p);
    }
    total_weight(routes.len(), total, at, p);
}

// ---------------------------------------------------------------------------
// Headers

pub(super) fn is_internal_header(h: &str) -> bool {
    h.starts_with(':') || h.eq_ignore_ascii_case("host")
}

pub(super) fn is_authority_header(h: &str) -> bool {
    h.eq_ignore_ascii_case(":authority") || h.eq_ignore_ascii_case("host")
}

/// Header names for request `set`/`add`: no pseudo-headers except `:authority` (and
/// `host`), which rewrite the authority.
pub(super) fn header_name_request_set(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".into());
    }
    if is_internal_header(name) && !is_authority_header(name) {
        return Err(format!(
            "invalid header {name:?}: header cannot have \":\" prefix (only :authority may be set)"
        ));
    }
    Ok(())
}

/// Header names for request `remove` and every response operation.
pub(super) fn header_name_op(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".into());
    }
    if name.eq_ignore_ascii_case("host") {
        return Err(format!("invalid header {name:?}: cannot set Host header"));
    }
    if is_internal_header(name) {
        return Err(format!(
            "invalid header {name:?}: header cannot have \":\" prefix"
        ));
    }
    Ok(())
}

/// Header values as Envoy parses them: no control characters, `%` either doubled or
/// opening a `%VARIABLE%` / `%VARIABLE(args)%` expression.
pub(super) fn header_value(v: &str) -> Result<(), String> {
    if v.chars()
        .any(|c| (c.is_control() && c != '\t') || c == '\u{7f}')
    {
        return Err(format!(
            "header value configuration {v:?} is invalid: control characters are not allowed"
        ));
    }
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
        if i + 1 >= b.len() {
            return Err(format!(
                "header value configuration {v:?}: un-escaped % (write %% for a literal %)"
            ));
        }
        if b[i + 1] == b'%' {
            i += 2;
            continue;
        }
        // A variable: find its closing %, skipping a parenthesised argument list
        // (which may hold quoted strings containing % or parentheses).
        let mut j = i + 1;
        let mut closed = false;
        while j < b.len() {
            match b[j] {
                b'%' => {
                    closed = true;
                    break;
                }
                b'(' => match args_end(b, j + 1) {
                    Some(k) => j = k,
                    None => break,
                },
                _ => {}
            }
            j += 1;
        }
        if !closed {
            return Err(format!(
                "header value configuration {v:?}: un-terminated variable expression (use %VARIABLE% or %% for a literal %)"
            ));
        }
        i = j + 1;
    }
    Ok(())
}

/// Index of the `)` closing an argument list that starts at `from`, skipping quoted
/// strings.
pub(super) fn args_end(b: &[u8], from: usize) -> Option<usize> {
    let mut k = from;
    let mut in_str = false;
    while k < b.len() {
        match (in_str, b[k]) {
            (true, b'\\') => k += 1,
            (true, b'"') => in_str = false,
            (false, b'"') => in_str = true,
            (false, b')') => return Some(k),
            _ => {}
        }
        k += 1;
    }
    None
}

pub(super) fn header_operations(
    ops: &HeaderOperations,
    request: bool,
    at: &FieldPath,
    p: &mut Problems,
) {
    for (field, map) in [("set", &ops.set), ("add", &ops.add)] {
        for (k, v) in map {
            let here = at.field(field).key(k);
            let name_check = if request {
                header_name_request_set(k)
            } else {
                header_name_op(k)
            };
            p.check(&here, name_check);
            p.check(&here, header_value(v));
        }
    }
    for (i, k) in ops.remove.iter().enumerate() {
        p.check(&at.field("remove").index(i), header_name_op(k));
    }
}

pub(super) fn headers(h: &Headers, at: &FieldPath, p: &mut Problems) {
    if let Some(r) = &h.request {
        header_operations(r, true, &at.field("request"), p);
    }
    if let Some(r) = &h.response {
        header_operations(r, false, &at.field("response"), p);
    }
}

/// The authority may be rewritten in one place only: `rewrite.authority` or one
/// `:authority`/`host` request header operation.
pub(super) fn authority_rewrite(r: &HttpRoute, at: &FieldPath, p: &mut Problems) {
    let mut current = r
        .rewrite
        .as_ref()
        .and_then(|w| w.authority.clone())
        .filter(|a| !a.is_empty());
    let Some(req) = r.headers.as_ref().and_then(|h| h.request.as_ref()) else {
        return;
    };
    for (field, map) in [("set", &req.set), ("add", &req.add)] {
        for (k, v) in map.iter().filter(|(k, _)| is_authority_header(k)) {
            if let Some(have) = &current {
                p.error(
                    &at.field("headers").field("request").field(field).key(k),
                    format!("authority header cannot be set multiple times: have {have:?}, attempting to set {v:?}"),
                );
                return;
            }
            current = Some(v.clone());
        }
    }
}
