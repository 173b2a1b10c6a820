//! VirtualService validation: the rules of Istio's admission webhook
//! (`pkg/config/validation`) and of the CRD schema (oneOf groups, required fields,
//! CEL duration bounds), plus its "unreachable rule" warnings.

use std::collections::BTreeMap;

use super::http::{
    Abort, CorsPolicy, Delay, HeaderOperations, Headers, HttpDirectResponse, HttpFaultInjection,
    HttpMatchRequest, HttpRedirect, HttpRetry, HttpRewrite, HttpRoute,
};
use super::{Destination, L4MatchAttributes, RouteDestination, TlsMatchAttributes};
use super::{TcpRoute, TlsRoute, VirtualService};
use crate::path::FieldPath;
use crate::types::{Duration, Percent, StringMatch};
use crate::validation::{checks, Context, Problems, Validate};

/// The reserved gateway name for "all sidecars".
const MESH: &str = "mesh";

impl Validate for VirtualService {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let delegate_vs = self.hosts.is_empty();
        if delegate_vs {
            let why = "a VirtualService without hosts is a delegate (add hosts if this one is a root or stand-alone VirtualService)";
            if !self.gateways.is_empty() {
                p.error(
                    &path.field("gateways"),
                    format!("delegate virtual service must have no gateways specified: {why}"),
                );
            }
            if !self.tls.is_empty() {
                p.error(
                    &path.field("tls"),
                    format!("delegate virtual service must have no tls route specified: {why}"),
                );
            }
            if !self.tcp.is_empty() {
                p.error(
                    &path.field("tcp"),
                    format!("delegate virtual service must have no tcp route specified: {why}"),
                );
            }
        }

        gateway_names(&self.gateways, &path.field("gateways"), p);
        let to_gateway = !self.gateways.is_empty() && !self.gateways.iter().any(|g| g == MESH);
        let to_mesh = !to_gateway;

        if !to_gateway {
            for (i, route) in self.http.iter().enumerate() {
                for (j, m) in route.match_.iter().enumerate() {
                    let at = path.field("http").index(i).field("match").index(j);
                    for (field, map) in [
                        ("headers", &m.headers),
                        ("withoutHeaders", &m.without_headers),
                    ] {
                        for key in map.keys().filter(|k| is_jwt_claim(k)) {
                            p.error(
                                &at.field(field).key(key),
                                format!(
                                    "JWT claim based routing (key: {key}) is only supported for gateway, but this VirtualService applies to the mesh \
                                     (gateways: {:?}); bind it to ingress gateways only (with a RequestAuthentication) to route on claims",
                                    self.gateways
                                ),
                            );
                        }
                    }
                }
            }
        }

        let sni = self
            .tls
            .iter()
            .any(|t| t.match_.iter().any(|m| !m.sni_hosts.is_empty()));
        let mut hosts_valid = true;
        for (i, h) in self.hosts.iter().enumerate() {
            let at = path.field("hosts").index(i);
            let res = if to_gateway {
                gateway_host(sni, h)
            } else {
                checks::wildcard_domain(h)
            };
            match res {
                Err(e) if checks::ip(h).is_err() => {
                    p.error(&at, format!("{e}; hosts are DNS names (optionally \"*.\"-prefixed), short names or IP addresses"));
                    hosts_valid = false;
                }
                Err(_) => {}
                Ok(()) if to_mesh && h == "*" => {
                    p.error(
                        &at,
                        "wildcard host * is not allowed for virtual services bound to the mesh gateway; \
                         name the hosts, or bind the VirtualService to gateways only",
                    );
                    hosts_valid = false;
                }
                Ok(()) => {}
            }
        }
        if hosts_valid {
            for i in 0..self.hosts.len() {
                for j in i + 1..self.hosts.len() {
                    let (a, b) = (&self.hosts[i], &self.hosts[j]);
                    if host_matches(a, b) {
                        p.error(
                            &path.field("hosts").index(j),
                            format!("duplicate hosts in virtual service: {a} & {b}; each host (or wildcard) may appear once"),
                        );
                    }
                }
            }
        }

        if self.http.is_empty() && self.tcp.is_empty() && self.tls.is_empty() {
            p.error(
                path,
                "http, tcp or tls must be provided in virtual service: add at least one route rule",
            );
        }
        for (i, r) in self.http.iter().enumerate() {
            http_route(r, delegate_vs, &path.field("http").index(i), p);
        }
        for (i, r) in self.tls.iter().enumerate() {
            tls_route(r, self, to_gateway, &path.field("tls").index(i), p);
        }
        for (i, r) in self.tcp.iter().enumerate() {
            tcp_route(r, &path.field("tcp").index(i), p);
        }
        checks::export_to(&self.export_to, &path.field("exportTo"), p);

        unreachable_rules(self, path, p);
    }
}

// ---------------------------------------------------------------------------
// Hosts and gateways

/// Istio's `host.Name.Matches`: equal, or one wildcard covers the other.
pub(super) fn host_matches(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => sa.ends_with(sb) || sb.ends_with(sa),
        (Some(sa), None) => b.ends_with(sa),
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

/// Istio's `host.Name.SubsetOf`: every name `sub` matches is also matched by `sup`.
pub(super) fn host_subset_of(sub: &str, sup: &str) -> bool {
    match (sub.strip_prefix('*'), sup.strip_prefix('*')) {
        (Some(s), Some(t)) => s.ends_with(t),
        (Some(_), None) => false,
        (None, Some(t)) => sub.ends_with(t),
        (None, None) => sub == sup,
    }
}

/// Hosts of a VirtualService bound to gateways: wildcard domains, plus the
/// `outbound_.<port>_._.<host>` SNI names AUTO_PASSTHROUGH gateways see.
fn gateway_host(sni: bool, host: &str) -> Result<(), String> {
    if sni && host.starts_with("outbound_") {
        let parts: Vec<&str> = host.split('_').collect();
        let form = "outbound_.<port>_._.<hostname>";
        if parts.len() < 4 {
            return Err(format!(
                "domain name {host} invalid, should follow '{form}' format"
            ));
        }
        let port = parts[1].trim_matches('.');
        let name = parts[3].trim_matches('.');
        if !port.chars().any(|c| c.is_ascii_digit()) {
            return Err(format!("domain name {host:?} invalid (label {port:?} invalid). should follow {form} format"));
        }
        if !name.chars().any(|c| c.is_ascii_alphabetic()) {
            return Err(format!("domain name {host:?} invalid (label {name:?} invalid). should follow {form} format"));
        }
        return Ok(());
    }
    checks::wildcard_domain(host)
}

/// `gateways` lists: `mesh`, a gateway name, `namespace/name`, or the legacy
/// `name.namespace` form (warned).
pub(super) fn gateway_names(names: &[String], at: &FieldPath, p: &mut Problems) {
    for (i, g) in names.iter().enumerate() {
        let here = at.index(i);
        match g.split_once('/') {
            None => {
                if let Some((name, ns)) = g.split_once('.') {
                    let ns = ns.split('.').next().unwrap_or(ns);
                    p.warn(
                        &here,
                        format!("using legacy gatewayName format {g:?}; prefer the <namespace>/<name> format: \"{ns}/{name}\""),
                    );
                }
                if let Err(e) = checks::fqdn(g) {
                    p.error(&here, format!("gateway {g:?} is invalid: {e}; use \"mesh\", a gateway name or \"namespace/name\""));
                }
            }
            Some((ns, name)) => {
                if ns.is_empty() || name.is_empty() {
                    p.error(&here, format!("config namespace and gateway name cannot be empty in {g:?}: use \"namespace/name\""));
                    continue;
                }
                if !checks::is_dns1123_label(ns) {
                    p.error(&here, format!("invalid value for namespace: {ns:?}: must be a namespace name (DNS-1123 label)"));
                }
                if !checks::is_dns1123_label(name) {
                    p.error(
                        &here,
                        format!(
                            "invalid value for gateway name: {name:?}: must be a DNS-1123 label"
                        ),
                    );
                }
            }
        }
    }
}

fn source_namespace(ns: &Option<String>, at: &FieldPath, p: &mut Problems) {
    if let Some(ns) = ns.as_deref().filter(|n| !n.is_empty()) {
        if !checks::is_dns1123_label(ns) {
            p.error(at, format!("sourceNamespace match {ns} is invalid: must be a namespace name (DNS-1123 label)"));
        }
    }
}

fn match_port(port: Option<u32>, at: &FieldPath, p: &mut Problems) {
    if let Some(n) = port.filter(|n| *n != 0) {
        p.check(at, checks::port(n));
    }
}

/// `@request.auth.claims.<a>.<b>` or `@request.auth.claims[<a>][<b>]`.
pub(super) fn is_jwt_claim(key: &str) -> bool {
    const PREFIX: &str = "@request.auth.claims";
    if key.len() < PREFIX.len() || !key[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return false;
    }
    let rest = &key[PREFIX.len()..];
    (rest.starts_with('.') && rest.len() > 1)
        || (rest.starts_with('[') && rest.ends_with(']') && rest.len() > 2)
}

// ---------------------------------------------------------------------------
// Small value checks

fn nonempty(s: &Option<String>) -> bool {
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
    if v.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!(
            "duration {d} is invalid: only durations to ms precision are supported"
        ));
    }
    Ok(())
}

/// `Percent`: 0, or 0.0001..=100.
fn percentage(pc: &Option<Percent>, at: &FieldPath, p: &mut Problems) {
    if let Some(v) = pc.map(|x| x.value) {
        if !(0.0..=100.0).contains(&v) || (v > 0.0 && v < 0.0001) {
            p.error(
                &at.field("value"),
                format!("percentage {v} is neither 0.0, nor in range [0.0001, 100.0]"),
            );
        }
    }
}

fn regex(re: &str, where_: &str, at: &FieldPath, p: &mut Problems) {
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
enum Sm {
    /// `uri`: an empty prefix is allowed.
    Uri,
    /// Everything else: prefixes must not be empty.
    Strict,
    /// `withoutHeaders`: like `Strict`, and the regex `*` means "present".
    Without,
}

/// A `StringMatch`: at most one of exact/prefix/regex (none is a presence match for
/// headers); prefixes non-empty where Envoy requires it; regexes compile.
fn string_match(m: &StringMatch, where_: &str, kind: Sm, at: &FieldPath, p: &mut Problems) {
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

fn destination(d: &Destination, at: &FieldPath, p: &mut Problems) {
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

fn weight(w: Option<i32>, at: &FieldPath, p: &mut Problems) -> i64 {
    let w = w.unwrap_or(0);
    if w < 0 {
        p.error(
            &at.field("weight"),
            format!("weight {w} < 0: weights are relative shares and must not be negative"),
        );
    }
    i64::from(w.max(0))
}

fn total_weight(count: usize, total: i64, at: &FieldPath, p: &mut Problems) {
    if count > 1 && total == 0 {
        p.error(at, "total destination weight = 0: with several destinations, give at least one a positive weight");
    }
}

fn route_destinations(routes: &[RouteDestination], at: &FieldPath, p: &mut Problems) {
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

fn is_internal_header(h: &str) -> bool {
    h.starts_with(':') || h.eq_ignore_ascii_case("host")
}

fn is_authority_header(h: &str) -> bool {
    h.eq_ignore_ascii_case(":authority") || h.eq_ignore_ascii_case("host")
}

/// Header names for request `set`/`add`: no pseudo-headers except `:authority` (and
/// `host`), which rewrite the authority.
fn header_name_request_set(name: &str) -> Result<(), String> {
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
fn header_name_op(name: &str) -> Result<(), String> {
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
fn args_end(b: &[u8], from: usize) -> Option<usize> {
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

fn header_operations(ops: &HeaderOperations, request: bool, at: &FieldPath, p: &mut Problems) {
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

fn headers(h: &Headers, at: &FieldPath, p: &mut Problems) {
    if let Some(r) = &h.request {
        header_operations(r, true, &at.field("request"), p);
    }
    if let Some(r) = &h.response {
        header_operations(r, false, &at.field("response"), p);
    }
}

/// The authority may be rewritten in one place only: `rewrite.authority` or one
/// `:authority`/`host` request header operation.
fn authority_rewrite(r: &HttpRoute, at: &FieldPath, p: &mut Problems) {
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

// ---------------------------------------------------------------------------
// HTTP routes

fn http_route(r: &HttpRoute, delegate_vs: bool, at: &FieldPath, p: &mut Problems) {
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

fn http_match(m: &HttpMatchRequest, at: &FieldPath, p: &mut Problems) {
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
fn header_match_name(name: &str) -> Result<(), String> {
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

const CORS_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

fn cors(c: &CorsPolicy, at: &FieldPath, p: &mut Problems) {
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
const GRPC_STATUS: &[&str] = &[
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

fn http_status(status: i64) -> Result<(), String> {
    if (200..=599).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP status {status} is not in range 200-599"))
    }
}

fn fault(f: &HttpFaultInjection, at: &FieldPath, p: &mut Problems) {
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

fn abort(a: &Abort, at: &FieldPath, p: &mut Problems) {
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

fn delay(d: &Delay, at: &FieldPath, p: &mut Problems) {
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

fn redirect(r: &HttpRedirect, at: &FieldPath, p: &mut Problems) {
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
        && (pad == 0 || s.len() % 4 == 0)
        && body.len() % 4 != 1
}

fn direct_response(d: &HttpDirectResponse, at: &FieldPath, p: &mut Problems) {
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
const RETRY_ON: &[&str] = &[
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
fn known_http_status(code: u32) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429
        | 431 | 451 | 500..=508 | 510 | 511)
}

fn retries(r: &HttpRetry, at: &FieldPath, p: &mut Problems) {
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

fn rewrite(r: &HttpRewrite, at: &FieldPath, p: &mut Problems) {
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

// ---------------------------------------------------------------------------
// TLS and TCP routes

fn tls_route(
    r: &TlsRoute,
    vs: &VirtualService,
    to_gateway: bool,
    at: &FieldPath,
    p: &mut Problems,
) {
    if r.match_.is_empty() {
        p.error(
            &at.field("match"),
            "TLS route must have at least one match condition (with sniHosts)",
        );
    }
    for (i, m) in r.match_.iter().enumerate() {
        tls_match(m, vs, to_gateway, &at.field("match").index(i), p);
    }
    if r.route.is_empty() {
        p.error(
            &at.field("route"),
            "TLS route is required: add at least one destination",
        );
    }
    route_destinations(&r.route, &at.field("route"), p);
}

fn tls_match(
    m: &TlsMatchAttributes,
    vs: &VirtualService,
    to_gateway: bool,
    at: &FieldPath,
    p: &mut Problems,
) {
    if m.sni_hosts.is_empty() {
        p.error(
            &at.field("sniHosts"),
            "TLS match must have at least one SNI host",
        );
    }
    for (i, sni) in m.sni_hosts.iter().enumerate() {
        let here = at.field("sniHosts").index(i);
        let res = if to_gateway {
            gateway_host(true, sni)
        } else {
            checks::wildcard_domain(sni)
        };
        if let Err(e) = res {
            if checks::ip(sni).is_ok() {
                p.warn(&here, format!("using an IP address ({sni:?}) goes against SNI spec and most clients do not support this"));
            } else {
                p.error(&here, e);
            }
            continue;
        }
        if !vs.hosts.iter().any(|h| host_subset_of(sni, h)) {
            p.error(
                &here,
                format!(
                    "SNI host {sni:?} is not a compatible subset of any of the virtual service hosts: [{}]",
                    vs.hosts.join(", ")
                ),
            );
        }
    }
    l4_common(
        &m.destination_subnets,
        m.port,
        &m.source_labels,
        &m.gateways,
        &m.source_namespace,
        at,
        p,
    );
}

fn l4_common(
    subnets: &[String],
    port: Option<u32>,
    labels: &BTreeMap<String, String>,
    gateways: &[String],
    ns: &Option<String>,
    at: &FieldPath,
    p: &mut Problems,
) {
    for (i, s) in subnets.iter().enumerate() {
        p.check(
            &at.field("destinationSubnets").index(i),
            checks::ip_or_cidr(s),
        );
    }
    match_port(port, &at.field("port"), p);
    checks::selector_labels(labels, &at.field("sourceLabels"), p);
    gateway_names(gateways, &at.field("gateways"), p);
    source_namespace(ns, &at.field("sourceNamespace"), p);
}

fn tcp_match(m: &L4MatchAttributes, at: &FieldPath, p: &mut Problems) {
    l4_common(
        &m.destination_subnets,
        m.port,
        &m.source_labels,
        &m.gateways,
        &m.source_namespace,
        at,
        p,
    );
    if let Some(s) = &m.source_subnet {
        let here = at.field("sourceSubnet");
        p.check(&here, checks::ip_or_cidr(s));
        p.warn(
            &here,
            "sourceSubnet is not implemented by Istio and is ignored",
        );
    }
}

fn tcp_route(r: &TcpRoute, at: &FieldPath, p: &mut Problems) {
    for (i, m) in r.match_.iter().enumerate() {
        tcp_match(m, &at.field("match").index(i), p);
    }
    if r.route.is_empty() {
        p.error(
            &at.field("route"),
            "TCP route is required: add at least one destination",
        );
    }
    route_destinations(&r.route, &at.field("route"), p);
}

// ---------------------------------------------------------------------------
// Unreachable rules (warnings, as Istio's webhook gives them)

struct RuleView {
    name: String,
    matches: Vec<(String, String)>, // (display name, canonical JSON)
}

fn unreachable_rules(vs: &VirtualService, path: &FieldPath, p: &mut Problems) {
    let json = |v: serde_json::Value| v.to_string();
    let http: Vec<RuleView> = vs
        .http
        .iter()
        .enumerate()
        .map(|(i, r)| RuleView {
            name: r
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .map(|n| format!("{n:?}"))
                .unwrap_or(format!("#{i}")),
            matches: r
                .match_
                .iter()
                .enumerate()
                .map(|(j, m)| {
                    let display = m
                        .name
                        .clone()
                        .filter(|n| !n.is_empty())
                        .map(|n| format!("{n:?}"))
                        .unwrap_or(format!("#{j}"));
                    let mut anon = m.clone();
                    anon.name = None;
                    (
                        display,
                        json(serde_json::to_value(&anon).unwrap_or_default()),
                    )
                })
                .collect(),
        })
        .collect();
    let l4 = |ms: Vec<String>, i: usize| RuleView {
        name: format!("#{i}"),
        matches: ms
            .into_iter()
            .enumerate()
            .map(|(j, m)| (format!("#{j}"), m))
            .collect(),
    };
    let tcp: Vec<RuleView> = vs
        .tcp
        .iter()
        .enumerate()
        .map(|(i, r)| {
            l4(
                r.match_
                    .iter()
                    .map(|m| json(serde_json::to_value(m).unwrap_or_default()))
                    .collect(),
                i,
            )
        })
        .collect();
    let tls: Vec<RuleView> = vs
        .tls
        .iter()
        .enumerate()
        .map(|(i, r)| {
            l4(
                r.match_
                    .iter()
                    .map(|m| json(serde_json::to_value(m).unwrap_or_default()))
                    .collect(),
                i,
            )
        })
        .collect();
    analyze(&http, &path.field("http"), p);
    analyze(&tcp, &path.field("tcp"), p);
    analyze(&tls, &path.field("tls"), p);
}

fn analyze(rules: &[RuleView], at: &FieldPath, p: &mut Problems) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut catch_all: Option<usize> = None;
    for (i, rule) in rules.iter().enumerate() {
        let here = at.index(i);
        if rule.matches.is_empty() {
            if catch_all.is_some() {
                p.warn(
                    &here,
                    format!(
                        "virtualService rule {} not used (only the last rule can have no matches)",
                        rule.name
                    ),
                );
            }
            catch_all = Some(i);
            continue;
        }
        let mut dups = 0;
        for (j, (mname, key)) in rule.matches.iter().enumerate() {
            if catch_all.is_some() {
                p.warn(
                    &here,
                    format!(
                        "virtualService rule {} not used (route without matches defined before)",
                        rule.name
                    ),
                );
                break;
            }
            if let Some(&prev) = seen.get(key.as_str()) {
                p.warn(
                    &here.field("match").index(j),
                    format!(
                        "virtualService rule {} match {mname} is not used (duplicate/overlapping match in rule {})",
                        rule.name, rules[prev].name
                    ),
                );
                dups += 1;
            } else {
                seen.insert(key, i);
            }
        }
        if dups == rule.matches.len() {
            p.warn(
                &here,
                format!(
                    "virtualService rule {} not used (all matches used by prior rules)",
                    rule.name
                ),
            );
        }
    }
}
