//! Checks shared by the networking kinds (DestinationRule, Gateway, ServiceEntry,
//! Sidecar, WorkloadEntry, WorkloadGroup): port protocols, proxy durations, `exportTo`
//! rules, Unix socket addresses and `workloadSelector.labels`.

use std::collections::BTreeMap;

use crate::path::FieldPath;
use crate::types::Duration;
use crate::validation::{checks, Context, Problems};

/// A port protocol as Istio parses it (case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http,
    Http2,
    HttpProxy,
    Https,
    Grpc,
    GrpcWeb,
    Tcp,
    Udp,
    Tls,
    Mongo,
    Redis,
    Mysql,
}

/// The protocol names Istio accepts, for messages.
pub(crate) const PROTOCOL_NAMES: &str =
    "HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, HTTP_PROXY, MONGO, MYSQL, REDIS, TCP, TLS, UDP";

impl Protocol {
    pub(crate) fn parse(s: &str) -> Option<Protocol> {
        Some(match s.to_ascii_lowercase().as_str() {
            "http" => Protocol::Http,
            "http2" => Protocol::Http2,
            "http_proxy" => Protocol::HttpProxy,
            "https" => Protocol::Https,
            "grpc" => Protocol::Grpc,
            "grpc-web" => Protocol::GrpcWeb,
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "tls" => Protocol::Tls,
            "mongo" => Protocol::Mongo,
            "redis" => Protocol::Redis,
            "mysql" => Protocol::Mysql,
            _ => return None,
        })
    }

    /// Plain-text HTTP family: routed on the Host header.
    pub(crate) fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http
                | Protocol::Http2
                | Protocol::HttpProxy
                | Protocol::Grpc
                | Protocol::GrpcWeb
        )
    }

    /// TLS family: routed on SNI.
    pub(crate) fn is_tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Tls)
    }

    /// Opaque TCP, as Istio's `IsTCP` (TLS counts, the proxy cannot see HTTP).
    pub(crate) fn is_tcp(self) -> bool {
        matches!(
            self,
            Protocol::Tcp
                | Protocol::Https
                | Protocol::Tls
                | Protocol::Mongo
                | Protocol::Redis
                | Protocol::Mysql
        )
    }
}

/// A port protocol that may be empty (protocol sniffing) or one Istio knows.
pub(crate) fn optional_protocol(p: &str, path: &FieldPath, problems: &mut Problems) {
    if !p.is_empty() && Protocol::parse(p).is_none() {
        problems.error(
            path,
            format!("unsupported protocol: {p}: use one of {PROTOCOL_NAMES} (or leave it empty for protocol detection)"),
        );
    }
}

/// A port name: a DNS-1123 label.
pub(crate) fn port_name(name: &str) -> Result<(), String> {
    if checks::is_dns1123_label(name) {
        Ok(())
    } else {
        Err(format!(
            "invalid port name: {name:?}: use letters, digits and '-' (1-63 characters, starting and ending with a letter or digit), e.g. \"http-web\""
        ))
    }
}

/// A proxy timeout or interval: at least 1ms and a whole number of milliseconds, as
/// Envoy takes them.
pub(crate) fn proxy_duration(d: &Duration, path: &FieldPath, problems: &mut Problems) {
    let v = d.as_std();
    if v < std::time::Duration::from_millis(1) {
        problems.error(
            path,
            format!("duration {d} is too short: must be a valid duration greater than 1ms"),
        );
    } else if !v.subsec_nanos().is_multiple_of(1_000_000) {
        problems.error(
            path,
            format!("duration {d} is invalid: only durations to ms precision are supported"),
        );
    }
}

/// A percentage given as an integer (maxEjectionPercent and similar).
pub(crate) fn int_percent(v: i32, path: &FieldPath, problems: &mut Problems) {
    if !(0..=100).contains(&v) {
        problems.error(
            path,
            format!("percentage {v} is not in range 0..100: use a value between 0 and 100"),
        );
    }
}

/// `exportTo` as Istio validates it: the shared entry checks, `.` and the object's own
/// namespace count as duplicates, and `~` (no one) is only meaningful for ServiceEntry.
pub(crate) fn export_to(
    cx: &Context<'_>,
    values: &[String],
    allow_none: bool,
    path: &FieldPath,
    problems: &mut Problems,
) {
    checks::export_to(values, path, problems);
    let dot = values.iter().any(|v| v == ".");
    if dot && values.iter().any(|v| v == cx.namespace) {
        problems.error(
            path,
            format!(
                "duplicate entries in exportTo: . and current namespace {}: \".\" already means this namespace",
                cx.namespace
            ),
        );
    }
    if !allow_none {
        if let Some(i) = values.iter().position(|v| v == "~") {
            problems.error(
                &path.index(i),
                format!(
                    "exportTo ~ (none) is not allowed for {}: use \".\", \"*\" or namespace names (only a ServiceEntry may be hidden from everyone)",
                    cx.kind
                ),
            );
        }
    }
}

/// The address of a Unix domain socket, after `unix://`: an absolute file path or an
/// abstract socket (`@name`).
pub(crate) fn unix_address(addr: &str) -> Result<(), String> {
    if addr.is_empty() {
        return Err(
            "unix address must not be empty: use unix:///absolute/path or unix://@abstract".into(),
        );
    }
    if addr.starts_with('@') {
        return Ok(());
    }
    if !addr.starts_with('/') {
        return Err(format!(
            "UDS must be an absolute path or abstract socket: {addr:?} is relative; use unix:///absolute/path or unix://@name"
        ));
    }
    if addr.ends_with('/') {
        return Err(format!(
            "UDS may not be a dir: {addr:?} ends with '/'; name the socket file, e.g. unix:///var/run/app.sock"
        ));
    }
    Ok(())
}

/// Labels that select workloads or endpoints (subset labels, endpoint labels).
pub(crate) fn labels(labels: &BTreeMap<String, String>, path: &FieldPath, problems: &mut Problems) {
    checks::selector_labels(labels, path, problems);
}

/// networking `workloadSelector` (`labels`), as Sidecar and ServiceEntry use it: labels
/// may not be empty keys or wildcards; an empty selector selects the whole namespace.
pub(crate) fn networking_workload_selector(
    labels: &BTreeMap<String, String>,
    kind_hint: &str,
    path: &FieldPath,
    problems: &mut Problems,
) {
    let at = path.field("labels");
    for (k, v) in labels {
        if k.is_empty() {
            problems.error(
                &at,
                format!("empty key is not supported in selector: \"={v}\": use a label name such as app"),
            );
        }
        if k.contains('*') || v.contains('*') {
            problems.error(
                &at.key(k),
                format!(
                    "wildcard is not supported in selector: \"{k}={v}\": use exact label values"
                ),
            );
        } else if !k.is_empty() {
            problems.check(&at.key(k), checks::label_key(k));
            problems.check(&at.key(k), checks::label_value(v));
        }
    }
    if labels.is_empty() {
        problems.warn(
            path,
            format!("{kind_hint}: workload selector specified without labels, will be applied to all workloads in the namespace"),
        );
    }
}

/// An IP address (no CIDR), as `bind` fields take it.
pub(crate) fn ip(addr: &str) -> Result<(), String> {
    checks::ip(addr)
        .map_err(|_| format!("{addr} is not a valid IP: use an address such as 10.0.0.1 or ::1"))
}

/// A host name with an optional leading wildcard, as Istio's `ValidateWildcardDomain`:
/// the shared check plus Istio's rule that the last label is not all digits (such
/// names look like IP addresses).
pub(crate) fn wildcard_host(host: &str) -> Result<(), String> {
    checks::wildcard_domain(host)?;
    numeric_tld(host)
}

/// A fully qualified host name, as Istio's `ValidateFQDN`.
pub(crate) fn fqdn(host: &str) -> Result<(), String> {
    checks::fqdn(host)?;
    numeric_tld(host)
}

fn numeric_tld(host: &str) -> Result<(), String> {
    let tld = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    if host.contains('.') && !tld.is_empty() && tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "domain name {host:?} invalid (top level domain {tld:?} cannot be all-numeric): use a host name, not an IP address"
        ));
    }
    Ok(())
}

/// A Gateway server host or a Sidecar egress host: `namespace/dnsName` (Gateway also
/// takes a bare `dnsName`, meaning `*/dnsName`). The namespace is `*`, `.` or a
/// namespace name (Sidecar also takes `~`); the name is `*`, a fully qualified name
/// with an optional `*.` prefix, or (Gateway only) an IP address.
pub(crate) fn ns_slash_host(value: &str, gateway: bool) -> Result<(), String> {
    let (ns, host) = match value.split_once('/') {
        Some((ns, host)) => (Some(ns), host),
        None if gateway => (None, value),
        None => {
            return Err(format!(
                "host must be of form namespace/dnsName (got {value:?}), e.g. \"./*\", \"istio-system/*\" or \"prod/reviews.prod.svc.cluster.local\""
            ))
        }
    };
    if let Some(ns) = ns {
        if ns.is_empty() || host.is_empty() {
            return Err(format!(
                "config namespace and dnsName in host entry cannot be empty (got {value:?})"
            ));
        }
        let ok = ns == "*" || ns == "." || (!gateway && ns == "~") || checks::is_dns1123_label(ns);
        if !ok {
            let what = if gateway { "gateway" } else { "sidecar" };
            return Err(format!(
                "invalid namespace value {ns:?} in {what}: use \"*\", \".\"{} or a namespace name",
                if gateway { "" } else { ", \"~\"" }
            ));
        }
    }
    if host == "*" {
        return Ok(());
    }
    if !host.contains('.') {
        return Err(format!(
            "short names (non FQDN) are not allowed: {host:?} in {value:?}; write the full name, e.g. {host}.default.svc.cluster.local"
        ));
    }
    if let Err(e) = wildcard_host(host) {
        if !(gateway && checks::ip(host).is_ok()) {
            return Err(format!("host {value:?}: {e}"));
        }
    }
    if host.contains('*') && !host.starts_with("*.") {
        return Err(format!(
            "partial wildcard {host:?} not allowed: only a leading \"*.\" label may be a wildcard"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_hosts() {
        for ok in [
            "./*",
            "*/foo.com",
            "istio-system/*.example.com",
            "*",
            "foo.example.com",
            "ns/10.0.0.1",
        ] {
            assert!(ns_slash_host(ok, true).is_ok(), "{ok}");
        }
        assert!(ns_slash_host("~/*", false).is_ok());
        assert!(ns_slash_host("~/*", true).is_err());
        assert!(ns_slash_host("foo.com", false)
            .unwrap_err()
            .contains("namespace/dnsName"));
        assert!(ns_slash_host("ns/foo", true)
            .unwrap_err()
            .contains("short names"));
        assert!(ns_slash_host("ns/*foo.com", true)
            .unwrap_err()
            .contains("partial wildcard"));
        assert!(ns_slash_host("Bad_ns/foo.com", true)
            .unwrap_err()
            .contains("invalid namespace"));
        assert!(ns_slash_host("/foo.com", true)
            .unwrap_err()
            .contains("cannot be empty"));
    }

    #[test]
    fn protocols_parse_case_insensitively() {
        assert_eq!(Protocol::parse("http"), Some(Protocol::Http));
        assert_eq!(Protocol::parse("GRPC-Web"), Some(Protocol::GrpcWeb));
        assert!(Protocol::parse("FTP").is_none());
        assert!(Protocol::Https.is_tls() && Protocol::Https.is_tcp());
        assert!(Protocol::Grpc.is_http() && !Protocol::Grpc.is_tcp());
    }

    #[test]
    fn unix_addresses() {
        assert!(unix_address("@foo").is_ok());
        assert!(unix_address("/var/run/a.sock").is_ok());
        assert!(unix_address("relative")
            .unwrap_err()
            .contains("UDS must be an absolute path"));
        assert!(unix_address("/dir/")
            .unwrap_err()
            .contains("UDS may not be a dir"));
        assert!(unix_address("").is_err());
    }

    #[test]
    fn durations_need_ms() {
        let mut p = Problems::new();
        proxy_duration(&"1ms".parse().unwrap(), &FieldPath::spec(), &mut p);
        assert!(p.is_empty());
        proxy_duration(&"100us".parse().unwrap(), &FieldPath::spec(), &mut p);
        proxy_duration(&"1.0005s".parse().unwrap(), &FieldPath::spec(), &mut p);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn export_to_dot_and_namespace() {
        let cx = Context::for_test("DestinationRule");
        let mut p = Problems::new();
        export_to(
            &cx,
            &[".".into(), "default".into()],
            false,
            &FieldPath::spec(),
            &mut p,
        );
        assert_eq!(p.len(), 1);
        let mut p = Problems::new();
        export_to(&cx, &["~".into()], false, &FieldPath::spec(), &mut p);
        assert_eq!(p.len(), 1);
        let mut p = Problems::new();
        export_to(&cx, &["~".into()], true, &FieldPath::spec(), &mut p);
        assert!(p.is_empty());
    }
}
