//! Route selection: virtual host by domain, then the first matching route.

use http::{HeaderMap, HeaderName};

use crate::dataplane::rawreq::{self, RawRequest};

use crate::model::route::{Domain, HeaderKind, HeaderRef, PathMatch, Route, RouteMatch};
use crate::model::{RouteConfig, VirtualHost};

/// What route matching looks at in a request.
pub struct RequestView<'a> {
    /// Host / :authority as received (may carry a port).
    pub authority: &'a str,
    /// Path and query as received.
    pub path_and_query: &'a str,
    pub method: &'a str,
    pub scheme: &'a str,
    pub headers: Fields<'a>,
}

/// A request's fields as routing reads them: a header map, or a plain request's fields
/// as received (`dataplane::rawreq`).
#[derive(Clone, Copy)]
pub enum Fields<'a> {
    Map(&'a HeaderMap),
    Raw(&'a RawRequest),
}

impl<'a> Fields<'a> {
    /// Every value of `name` as text; `""` for one that is not visible ASCII (on which
    /// `HeaderValue::to_str` fails).
    fn values(self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        let (map, raw) = match self {
            Fields::Map(m) => (Some(m.get_all(name).iter().map(|v| v.as_bytes())), None),
            Fields::Raw(r) => (None, Some(r.values(name))),
        };
        map.into_iter()
            .flatten()
            .chain(raw.into_iter().flatten())
            .map(|v| rawreq::text(v).unwrap_or(""))
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rfind(':') {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
        _ => host,
    }
}

/// Envoy's virtual host choice: exact domain, then the longest `*.suffix`, then the
/// longest `prefix.*`, then `*`. Domains are compared case-insensitively; the port is
/// part of the host unless `ignore_port_in_host_matching` (Istio lists each domain with
/// and without its port).
pub fn select_vhost<'a>(rc: &'a RouteConfig, authority: &str) -> Option<&'a VirtualHost> {
    let lowered;
    let mut host = authority;
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        lowered = host.to_ascii_lowercase();
        host = lowered.as_str();
    }
    if rc.ignore_port_in_host_matching {
        host = strip_port(host);
    }
    best(rc, host)
}

fn best<'a>(rc: &'a RouteConfig, host: &str) -> Option<&'a VirtualHost> {
    if let Some(&i) = rc.exact_domains.get(host) {
        return rc.vhosts.get(i);
    }
    let mut suffix: Option<(&VirtualHost, usize)> = None;
    let mut prefix: Option<(&VirtualHost, usize)> = None;
    let mut any = None;
    for vh in &rc.vhosts {
        for d in &vh.domains {
            match d {
                Domain::Exact(e) if e == host => return Some(vh),
                Domain::Suffix(s)
                    if host.len() > s.len()
                        && host.ends_with(s.as_str())
                        && suffix.is_none_or(|(_, l)| s.len() > l) =>
                {
                    suffix = Some((vh, s.len()));
                }
                Domain::Prefix(p)
                    if host.len() > p.len()
                        && host.starts_with(p.as_str())
                        && prefix.is_none_or(|(_, l)| p.len() > l) =>
                {
                    prefix = Some((vh, p.len()));
                }
                Domain::Any if any.is_none() => any = Some(vh),
                _ => {}
            }
        }
    }
    suffix.or(prefix).map(|(v, _)| v).or(any)
}

/// The first route of `vh` that matches.
pub fn select_route<'a>(vh: &'a VirtualHost, req: &RequestView<'_>) -> Option<&'a Route> {
    vh.routes.iter().find(|r| route_matches(&r.matcher, req))
}

fn split_query(pq: &str) -> (&str, &str) {
    match pq.find('?') {
        Some(i) => (&pq[..i], &pq[i + 1..]),
        None => (pq, ""),
    }
}

pub fn route_matches(m: &RouteMatch, req: &RequestView<'_>) -> bool {
    let (path, query) = split_query(req.path_and_query);
    let owned;
    let p = if m.case_sensitive {
        path
    } else {
        owned = path.to_ascii_lowercase();
        owned.as_str()
    };
    let path_ok = match &m.path {
        PathMatch::Prefix(x) => p.starts_with(x.as_str()),
        PathMatch::Exact(x) => p == x,
        PathMatch::Regex(r) => r.is_match(path),
        PathMatch::SeparatedPrefix(x) => {
            p.starts_with(x.as_str()) && (p.len() == x.len() || p.as_bytes()[x.len()] == b'/')
        }
    };
    if !path_ok {
        return false;
    }
    if m.grpc
        && !req
            .headers
            .values(&http::header::CONTENT_TYPE)
            .next()
            .is_some_and(|v| v.starts_with("application/grpc"))
    {
        return false;
    }
    for h in &m.headers {
        let value: Option<&str> = match &h.name {
            HeaderRef::Authority => Some(req.authority),
            HeaderRef::Method => Some(req.method),
            HeaderRef::Path => Some(req.path_and_query),
            HeaderRef::Scheme => Some(req.scheme),
            HeaderRef::Name(n) => {
                let mut vals = req.headers.values(n);
                match (vals.next(), vals.next()) {
                    (None, _) => None,
                    (Some(v), None) => Some(v),
                    // Envoy matches multi-valued headers joined by commas.
                    (Some(_), Some(_)) => {
                        let joined: Vec<&str> = req.headers.values(n).collect();
                        let j = joined.join(",");
                        let ok = header_value_matches(&h.kind, Some(&j), h.treat_missing_as_empty);
                        if ok == h.invert {
                            return false;
                        }
                        continue;
                    }
                }
            }
        };
        if header_value_matches(&h.kind, value, h.treat_missing_as_empty) == h.invert {
            return false;
        }
    }
    for q in &m.query {
        let found = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
            .find(|(k, _)| *k == q.name);
        match (found, &q.matcher) {
            (None, _) => return false,
            (Some(_), None) => {}
            (Some((_, v)), Some(m)) => {
                if !m.matches(v) {
                    return false;
                }
            }
        }
    }
    true
}

fn header_value_matches(kind: &HeaderKind, value: Option<&str>, missing_as_empty: bool) -> bool {
    let value = match value {
        Some(v) => v,
        None if missing_as_empty => "",
        None => return matches!(kind, HeaderKind::Present(false)),
    };
    match kind {
        HeaderKind::Present(p) => *p,
        HeaderKind::String(m) => m.matches(value),
        HeaderKind::Range(lo, hi) => value.parse::<i64>().is_ok_and(|v| v >= *lo && v < *hi),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::route::domain;
    use ironmesh_xds::pb::envoy::config::route::v3 as rpb;

    fn rc(json: serde_json::Value) -> RouteConfig {
        let any = ironmesh_xds::json_to_any(ironmesh_xds::type_url::ROUTE, &json).unwrap();
        let pb: rpb::RouteConfiguration = prost::Message::decode(any.value.as_slice()).unwrap();
        RouteConfig::compile(&pb).unwrap()
    }

    fn vh_names(rc: &RouteConfig, host: &str) -> Option<String> {
        select_vhost(rc, host).map(|v| v.name.clone())
    }

    #[test]
    fn domain_parsing() {
        assert_eq!(domain("*"), Domain::Any);
        assert_eq!(
            domain("*.Example.com"),
            Domain::Suffix(".example.com".into())
        );
        assert_eq!(domain("foo.*"), Domain::Prefix("foo.".into()));
    }

    #[test]
    fn vhost_precedence_and_ports() {
        let r = rc(serde_json::json!({"name":"80","virtualHosts":[
            {"name":"any","domains":["*"]},
            {"name":"exact","domains":["reviews","reviews:9080"]},
            {"name":"suffix","domains":["*.example.com"]},
            {"name":"longsuffix","domains":["*.api.example.com"]},
            {"name":"prefix","domains":["api.*"]}]}));
        assert_eq!(vh_names(&r, "reviews").as_deref(), Some("exact"));
        assert_eq!(vh_names(&r, "REVIEWS:9080").as_deref(), Some("exact"));
        // The port is part of the host: no domain names port 80.
        assert_eq!(vh_names(&r, "reviews:80").as_deref(), Some("any"));
        assert_eq!(vh_names(&r, "a.example.com").as_deref(), Some("suffix"));
        assert_eq!(
            vh_names(&r, "v.api.example.com").as_deref(),
            Some("longsuffix")
        );
        assert_eq!(vh_names(&r, "api.other").as_deref(), Some("prefix"));
        assert_eq!(vh_names(&r, "nothing").as_deref(), Some("any"));
        let r = rc(serde_json::json!({"name":"x","virtualHosts":[{"name":"a","domains":["a"]}]}));
        assert_eq!(vh_names(&r, "b"), None);
        // A domain listed twice (Envoy NACKs it): the first virtual host keeps it.
        let r = rc(serde_json::json!({"name":"x","virtualHosts":[
            {"name":"first","domains":["a","*.b"]},{"name":"second","domains":["a"]}]}));
        assert_eq!(vh_names(&r, "a").as_deref(), Some("first"));
        assert_eq!(vh_names(&r, "x.b").as_deref(), Some("first"));
    }

    fn matches(route: serde_json::Value, path: &str, headers: &[(&str, &str)]) -> bool {
        let r = rc(
            serde_json::json!({"name":"r","virtualHosts":[{"name":"v","domains":["*"],
            "routes":[{"match": route, "directResponse":{"status":200}}]}]}),
        );
        let mut hm = HeaderMap::new();
        for (k, v) in headers {
            hm.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let view = RequestView {
            authority: "h",
            path_and_query: path,
            method: "GET",
            scheme: "http",
            headers: Fields::Map(&hm),
        };
        select_route(&r.vhosts[0], &view).is_some()
    }

    #[test]
    fn path_matches() {
        assert!(matches(
            serde_json::json!({"prefix":"/api"}),
            "/api/x?q=1",
            &[]
        ));
        assert!(!matches(serde_json::json!({"prefix":"/api"}), "/ap", &[]));
        assert!(matches(serde_json::json!({"path":"/a"}), "/a?x", &[]));
        assert!(!matches(serde_json::json!({"path":"/a"}), "/a/", &[]));
        assert!(matches(
            serde_json::json!({"path":"/A","caseSensitive":false}),
            "/a",
            &[]
        ));
        assert!(matches(
            serde_json::json!({"safeRegex":{"regex":"/v[0-9]+/.*"}}),
            "/v1/x",
            &[]
        ));
        assert!(!matches(
            serde_json::json!({"safeRegex":{"regex":"/v[0-9]+"}}),
            "/v1/x",
            &[]
        ));
        assert!(matches(
            serde_json::json!({"pathSeparatedPrefix":"/api"}),
            "/api/x",
            &[]
        ));
        assert!(matches(
            serde_json::json!({"pathSeparatedPrefix":"/api"}),
            "/api",
            &[]
        ));
        assert!(!matches(
            serde_json::json!({"pathSeparatedPrefix":"/api"}),
            "/apix",
            &[]
        ));
    }

    #[test]
    fn header_and_query_matches() {
        let h = serde_json::json!({"prefix":"/","headers":[{"name":"end-user","stringMatch":{"exact":"jason"}}]});
        assert!(matches(h.clone(), "/", &[("end-user", "jason")]));
        assert!(!matches(h.clone(), "/", &[("end-user", "bob")]));
        assert!(!matches(h, "/", &[]));
        let inv = serde_json::json!({"prefix":"/","headers":[{"name":"x","presentMatch":true,"invertMatch":true}]});
        assert!(matches(inv.clone(), "/", &[]));
        assert!(!matches(inv, "/", &[("x", "1")]));
        let re = serde_json::json!({"prefix":"/","headers":[{"name":"x","stringMatch":{"safeRegex":{"regex":"a.c"}}}]});
        assert!(matches(re.clone(), "/", &[("x", "abc")]));
        assert!(!matches(re, "/", &[("x", "abcd")]));
        let q = serde_json::json!({"prefix":"/","queryParameters":[{"name":"v","stringMatch":{"exact":"2"}}]});
        assert!(matches(q.clone(), "/?a=1&v=2", &[]));
        assert!(!matches(q, "/?v=3", &[]));
        let auth = serde_json::json!({"prefix":"/","headers":[{"name":":authority","stringMatch":{"exact":"h"}}]});
        assert!(matches(auth, "/", &[]));
    }
}
