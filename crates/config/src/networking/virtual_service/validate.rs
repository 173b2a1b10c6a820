//! VirtualService validation (top level, hosts, gateways, TLS and TCP routes): the rules of Istio's admission webhook
//! (`pkg/config/validation`) and of the CRD schema (oneOf groups, required fields,
//! CEL duration bounds), plus its "unreachable rule" warnings.

use std::collections::BTreeMap;

use super::validate_fields::route_destinations;
use super::validate_http::http_route;
use super::{L4MatchAttributes, TcpRoute, TlsMatchAttributes, TlsRoute, VirtualService};
use crate::path::FieldPath;
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

pub(super) fn source_namespace(ns: &Option<String>, at: &FieldPath, p: &mut Problems) {
    if let Some(ns) = ns.as_deref().filter(|n| !n.is_empty()) {
        if !checks::is_dns1123_label(ns) {
            p.error(at, format!("sourceNamespace match {ns} is invalid: must be a namespace name (DNS-1123 label)"));
        }
    }
}

pub(super) fn match_port(port: Option<u32>, at: &FieldPath, p: &mut Problems) {
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
