//! Field checks shared by the validators. Each returns `Err(message)` with a message
//! that says what is wrong and what is allowed; `Problems::check` records it.
//!
//! The rules follow Istio's `pkg/config/validation` and Kubernetes' name rules.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use regex::Regex;

use crate::path::FieldPath;
use crate::types::{Duration, StringMatch};
use crate::validation::Problems;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// A DNS-1123 label (Istio accepts upper case, as its own regex does).
pub fn is_dns1123_label(s: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    s.len() <= 63 && re(&R, r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$").is_match(s)
}

/// Kubernetes object names: a DNS-1123 subdomain (lower case, ≤ 253).
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    static R: OnceLock<Regex> = OnceLock::new();
    let r = re(
        &R,
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    );
    if s.len() > 253 || !r.is_match(s) {
        return Err(format!(
            "{s:?} is not a valid name: use lower-case letters, digits, '-' and '.', \
             starting and ending with a letter or digit (at most 253 characters)"
        ));
    }
    Ok(())
}

/// Kubernetes namespace names: a lower-case DNS-1123 label.
pub fn namespace_name(s: &str) -> Result<(), String> {
    static R: OnceLock<Regex> = OnceLock::new();
    if s.len() > 63 || !re(&R, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").is_match(s) {
        return Err(format!(
            "{s:?} is not a valid namespace: use lower-case letters, digits and '-', \
             starting and ending with a letter or digit (at most 63 characters)"
        ));
    }
    Ok(())
}

/// Every dot-separated label is a DNS-1123 label (a trailing dot is allowed).
pub fn dns1123_labels(domain: &str) -> Result<(), String> {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    for label in d.split('.') {
        if !is_dns1123_label(label) {
            return Err(format!(
                "domain name {domain:?} invalid (label {label:?} invalid): labels are \
                 letters, digits and '-', 1-63 characters, not starting or ending with '-'"
            ));
        }
    }
    Ok(())
}

fn dns_preconditions(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("empty domain name not allowed".into());
    }
    if domain.len() > 255 {
        return Err(format!("domain name {domain:?} too long (max 255)"));
    }
    Ok(())
}

/// A host name with an optional wildcard in its first label (`*`, `*.example.com`,
/// `*x.example.com`), as Istio's `ValidateWildcardDomain`.
pub fn wildcard_domain(domain: &str) -> Result<(), String> {
    dns_preconditions(domain)?;
    static R: OnceLock<Regex> = OnceLock::new();
    let wildcard_label = re(
        &R,
        r"^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$",
    );
    let (first, rest) = match domain.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (domain, None),
    };
    if first.len() > 63 || !wildcard_label.is_match(first) {
        return Err(format!(
            "domain name {domain:?} invalid (label {first:?} invalid): a wildcard is only \
             allowed at the start of the first label, e.g. \"*.example.com\""
        ));
    }
    match rest {
        Some(r) => dns1123_labels(r),
        None => Ok(()),
    }
}

/// A fully qualified domain name without wildcards.
pub fn fqdn(domain: &str) -> Result<(), String> {
    dns_preconditions(domain)?;
    dns1123_labels(domain)
}

/// `namespace/host` as Gateway servers and Sidecar egress listeners write hosts:
/// namespace is `*`, `.`, `~` or a namespace name; host is a wildcard domain or `*`.
/// `allow_bare` accepts a host without a namespace (Gateway hosts; Istio treats it as
/// `*/host`).
pub fn namespace_slash_host(value: &str, allow_bare: bool) -> Result<(), String> {
    let (ns, host) = match value.split_once('/') {
        Some((ns, host)) => (Some(ns), host),
        None if allow_bare => (None, value),
        None => {
            return Err(format!(
                "host {value:?} must be of the form namespace/dnsName, e.g. \"./*\", \
                 \"istio-system/*\" or \"prod/reviews.prod.svc.cluster.local\""
            ))
        }
    };
    if let Some(ns) = ns {
        if !(ns == "*" || ns == "." || ns == "~" || is_dns1123_label(ns)) {
            return Err(format!(
                "namespace {ns:?} in host {value:?} is invalid: use \"*\", \".\", \"~\" or a namespace name"
            ));
        }
    }
    if ns == Some("~") && host != "*" {
        // `~/` means "no host"; only `~/*` makes sense.
    }
    if host == "*" {
        return Ok(());
    }
    wildcard_domain(host).map_err(|e| format!("host {value:?}: {e}"))
}

/// A port number in 1..=65535.
pub fn port(n: u32) -> Result<(), String> {
    if (1..=65535).contains(&n) {
        Ok(())
    } else {
        Err(format!("port must be between 1-65535 (got {n})"))
    }
}

/// A percentage in 0..=100.
pub fn percentage(v: f64) -> Result<(), String> {
    if (0.0..=100.0).contains(&v) {
        Ok(())
    } else {
        Err(format!(
            "percentage {v} is invalid: must be between 0.0 and 100.0"
        ))
    }
}

/// A regular expression that compiles with RE2's (linear-time) semantics, as Envoy
/// evaluates it. Envoy also caps program size; the `regex` crate's default limit is
/// close enough to reject the pathological ones.
pub fn re2_regex(pattern: &str) -> Result<(), String> {
    match regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "{pattern:?} is not a valid RE2 regular expression: {}",
            first_line(&e.to_string())
        )),
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// A `StringMatch`: exactly one of exact/prefix/regex; the regex must compile.
pub fn string_match(m: &StringMatch, path: &FieldPath, p: &mut Problems) {
    let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    match set {
        0 => p.error(path, "string match must set one of exact, prefix or regex"),
        1 => {}
        _ => p.error(
            path,
            "string match sets more than one of exact, prefix and regex; set exactly one",
        ),
    }
    if let Some(r) = &m.regex {
        p.check(&path.field("regex"), re2_regex(r));
    }
}

/// Duration bounds: at least `min` (Istio uses 1ms for most timeouts).
pub fn duration_at_least(d: &Duration, min: std::time::Duration) -> Result<(), String> {
    if d.as_std() < min {
        Err(format!(
            "duration {} is too short: must be a valid duration greater than or equal to {}",
            d,
            crate::types::format_duration(min)
        ))
    } else {
        Ok(())
    }
}

/// A Kubernetes label key: optional DNS-subdomain prefix, then a name of 1-63
/// characters (alphanumerics, '-', '_', '.').
pub fn label_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("label key must not be empty".into());
    }
    if key.contains('*') {
        return Err(format!("wildcard not allowed in label key match ({key:?})"));
    }
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() || dns1123_subdomain(p).is_err() {
            return Err(format!(
                "label key {key:?} has an invalid prefix: it must be a DNS subdomain such as \"app.kubernetes.io\""
            ));
        }
    }
    label_name(name).map_err(|e| format!("label key {key:?}: {e}"))
}

fn label_name(s: &str) -> Result<(), String> {
    static R: OnceLock<Regex> = OnceLock::new();
    if s.is_empty()
        || s.len() > 63
        || !re(&R, r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$").is_match(s)
    {
        return Err(format!(
            "{s:?} is invalid: use 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A Kubernetes label value: empty, or like a label name.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.contains('*') {
        return Err(format!(
            "wildcard not allowed in label value match ({value:?}): wildcard is not supported in selector"
        ));
    }
    if value.is_empty() {
        return Ok(());
    }
    label_name(value).map_err(|e| format!("label value {e}"))
}

/// Labels used as a selector: valid keys and values, no wildcards.
pub fn selector_labels(labels: &BTreeMap<String, String>, path: &FieldPath, p: &mut Problems) {
    for (k, v) in labels {
        let at = path.key(k);
        p.check(&at, label_key(k));
        p.check(&at, label_value(v));
    }
}

/// An IP address.
pub fn ip(s: &str) -> Result<(), String> {
    s.parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| format!("{s:?} is not a valid IP address"))
}

/// An IP address or a CIDR block.
pub fn ip_or_cidr(s: &str) -> Result<(), String> {
    if s.contains('/') {
        s.parse::<ipnet::IpNet>()
            .map(|_| ())
            .map_err(|_| format!("{s:?} is not a valid CIDR block (e.g. 10.0.0.0/16)"))
    } else {
        ip(s).map_err(|_| format!("{s:?} is not a valid IP address or CIDR block"))
    }
}

/// `exportTo` entries: `.` (this namespace), `*` (all), `~` (none) or a namespace name;
/// `*` and `~` stand alone.
pub fn export_to(values: &[String], path: &FieldPath, p: &mut Problems) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, v) in values.iter().enumerate() {
        let at = path.index(i);
        if v != "." && v != "*" && v != "~" {
            if let Err(e) = namespace_name(v) {
                p.error(&at, format!("exportTo: {e}; or use \".\", \"*\" or \"~\""));
            }
        }
        if !seen.insert(v.as_str()) {
            p.error(&at, format!("exportTo: duplicate entry {v:?}"));
        }
    }
    if values.len() > 1 && (seen.contains("*") || seen.contains("~")) {
        p.error(
            path,
            "exportTo: \"*\" and \"~\" cannot be combined with other entries",
        );
    }
}

/// An HTTP header name (RFC 7230 token, lower or upper case).
pub fn header_name(name: &str) -> Result<(), String> {
    static R: OnceLock<Regex> = OnceLock::new();
    if name.is_empty() {
        return Err("header name must not be empty".into());
    }
    if !re(&R, r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$").is_match(name) {
        return Err(format!(
            "header name {name:?} is invalid: use letters, digits and !#$%&'*+-.^_`|~"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_domains() {
        for ok in [
            "*",
            "*.example.com",
            "example.com",
            "*x",
            "reviews",
            "a-b.c",
            "foo.bar.",
        ] {
            assert!(wildcard_domain(ok).is_ok(), "{ok}");
        }
        for bad in ["", "foo.*.com", "ex ample.com", "-a.com", "a..b", "*.*"] {
            assert!(wildcard_domain(bad).is_err(), "{bad}");
        }
        assert!(wildcard_domain(&"a".repeat(256)).is_err());
    }

    #[test]
    fn namespace_hosts() {
        for ok in [
            "./*",
            "istio-system/*",
            "*/foo.com",
            "~/*",
            "prod/*.example.com",
        ] {
            assert!(namespace_slash_host(ok, false).is_ok(), "{ok}");
        }
        assert!(namespace_slash_host("foo.com", false).is_err());
        assert!(namespace_slash_host("foo.com", true).is_ok());
        assert!(namespace_slash_host("Bad_ns/foo.com", false).is_err());
    }

    #[test]
    fn ports_percent_regex() {
        assert!(port(1).is_ok() && port(65535).is_ok());
        assert!(port(0).is_err() && port(65536).is_err());
        assert!(percentage(0.0).is_ok() && percentage(100.0).is_ok());
        assert!(percentage(-0.1).is_err() && percentage(100.5).is_err());
        assert!(re2_regex("^/api/v[0-9]+").is_ok());
        assert!(re2_regex("(unclosed").is_err());
        // Backreferences are not RE2.
        assert!(re2_regex(r"(a)\1").is_err());
    }

    #[test]
    fn labels() {
        assert!(label_key("app").is_ok());
        assert!(label_key("app.kubernetes.io/name").is_ok());
        assert!(label_key("").is_err());
        assert!(label_key("istio*").is_err());
        assert!(label_value("bar*").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1").is_ok());
    }

    #[test]
    fn export_to_rules() {
        let mut p = Problems::new();
        export_to(&[".".into(), "foo".into()], &FieldPath::spec(), &mut p);
        assert!(p.is_empty());
        export_to(
            &["*".into(), "foo".into(), "foo".into()],
            &FieldPath::spec(),
            &mut p,
        );
        assert_eq!(p.len(), 2);
    }
}
