//! EnvoyFilter validation: Istio's webhook rules (applyTo, match and patch must line
//! up; a value for every operation but REMOVE; a compiling proxy version regex) and its
//! CRD rules (waypoint matches only in the WAYPOINT context, port ranges, at most one
//! object match, targetRefs), plus warnings for patches that have no effect.

use super::{ApplyTo, EnvoyConfigObjectMatch, EnvoyConfigObjectPatch, EnvoyFilter, FilterMatch};
use super::{Operation, PatchContext};
use crate::path::FieldPath;
use crate::types::PolicyTargetReference;
use crate::validation::{checks, Context, Problems, Validate};

/// The HTTP connection manager, the only network filter with sub-filters.
const HCM: &str = "envoy.filters.network.http_connection_manager";

/// Filter names Envoy dropped, with their replacements.
const DEPRECATED_FILTER_NAMES: &[(&str, &str)] = &[
    ("envoy.http_connection_manager", HCM),
    ("envoy.tcp_proxy", "envoy.filters.network.tcp_proxy"),
    ("envoy.router", "envoy.filters.http.router"),
    ("envoy.cors", "envoy.filters.http.cors"),
    ("envoy.fault", "envoy.filters.http.fault"),
    ("envoy.lua", "envoy.filters.http.lua"),
    ("envoy.ext_authz", "envoy.filters.http.ext_authz"),
    ("envoy.grpc_web", "envoy.filters.http.grpc_web"),
    ("envoy.gzip", "envoy.filters.http.compressor"),
    ("envoy.health_check", "envoy.filters.http.health_check"),
    ("envoy.rate_limit", "envoy.filters.http.ratelimit"),
    (
        "envoy.listener.tls_inspector",
        "envoy.filters.listener.tls_inspector",
    ),
    (
        "envoy.listener.original_dst",
        "envoy.filters.listener.original_dst",
    ),
    (
        "envoy.listener.proxy_protocol",
        "envoy.filters.listener.proxy_protocol",
    ),
    (
        "envoy.listener.http_inspector",
        "envoy.filters.listener.http_inspector",
    ),
];

const TARGET_KINDS: &[(&str, &str)] = &[
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("", "Service"),
    ("networking.istio.io", "ServiceEntry"),
];

impl Validate for EnvoyFilter {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        p.warn(
            path,
            "EnvoyFilter exposes internal implementation details that may change at any time. \
             Prefer other APIs if possible, and exercise extreme caution, especially around upgrades. \
             ironmesh keeps this EnvoyFilter, but its own proxy does not apply EnvoyFilters (only an Envoy data plane would)",
        );
        if let Some(ws) = &self.workload_selector {
            let at = path.field("workloadSelector");
            if ws.labels.is_empty() {
                p.warn(&at, "Envoy filter: workload selector specified without labels, will be applied to all services in namespace");
            }
            checks::selector_labels(&ws.labels, &at.field("labels"), p);
        }
        if self.workload_selector.is_some() && !self.target_refs.is_empty() {
            p.error(
                path,
                "only one of targetRefs or workloadSelector can be set",
            );
        }
        let refs = path.field("targetRefs");
        if self.target_refs.len() > 16 {
            p.error(
                &refs,
                format!(
                    "Too many: {}: must have at most 16 items",
                    self.target_refs.len()
                ),
            );
        }
        for (i, r) in self.target_refs.iter().enumerate() {
            target_ref(r, &refs.index(i), p);
        }
        for (i, cp) in self.config_patches.iter().enumerate() {
            config_patch(cp, &path.field("configPatches").index(i), p);
        }
    }
}

fn target_ref(r: &PolicyTargetReference, at: &FieldPath, p: &mut Problems) {
    let kind = r.kind.as_deref().unwrap_or("");
    let group = r.group.as_deref().unwrap_or("");
    if kind.is_empty() {
        p.error(
            &at.field("kind"),
            "kind: Required value: e.g. Gateway or Service",
        );
    } else if !kind.starts_with(|c: char| c.is_ascii_alphabetic())
        || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        || kind.len() > 63
    {
        p.error(
            &at.field("kind"),
            format!("kind {kind:?} is invalid: must be a kind name such as Gateway"),
        );
    }
    match r.name.as_deref() {
        None | Some("") => p.error(
            &at.field("name"),
            "name: Required value: the name of the target resource",
        ),
        Some(n) if n.len() > 253 => p.error(
            &at.field("name"),
            "name is too long: at most 253 characters",
        ),
        _ => {}
    }
    if r.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
        p.error(
            &at.field("namespace"),
            "cross namespace referencing is not currently supported: leave namespace empty",
        );
    }
    if !group.is_empty() {
        p.check(&at.field("group"), checks::dns1123_subdomain(group));
    }
    if !kind.is_empty() && !TARGET_KINDS.iter().any(|(g, k)| *g == group && *k == kind) {
        p.warn(
            at,
            format!("targetRef to {group}/{kind} is not one Istio applies EnvoyFilters to: use a Gateway (gateway.networking.k8s.io), GatewayClass, Service or ServiceEntry"),
        );
    }
}

fn filter_name_warning(name: &str, at: &FieldPath, p: &mut Problems) {
    if let Some((_, new)) = DEPRECATED_FILTER_NAMES.iter().find(|(old, _)| *old == name) {
        p.warn(
            at,
            format!("using deprecated filter name {name:?}; use {new:?} instead"),
        );
    }
}

/// The filter / sub-filter part of a listener or waypoint match.
fn filter_match(f: &FilterMatch, apply: ApplyTo, at: &FieldPath, p: &mut Problems) {
    if matches!(apply, ApplyTo::Listener | ApplyTo::FilterChain) {
        p.warn(
            at,
            format!("Envoy filter: filter match has no effect when used with {apply}"),
        );
    }
    let name = f.name.as_deref().unwrap_or("");
    if name.is_empty() {
        p.error(
            &at.field("name"),
            "Envoy filter: filter match has no name to match on",
        );
        return;
    }
    filter_name_warning(name, &at.field("name"), p);
    if let Some(sub) = &f.sub_filter {
        let sat = at.field("subFilter");
        if apply != ApplyTo::HttpFilter {
            p.error(
                &sat,
                "Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only",
            );
            return;
        }
        if name != HCM && name != "envoy.http_connection_manager" {
            p.error(
                &sat,
                format!("Envoy filter: subfilter match requires filter match with {HCM}"),
            );
            return;
        }
        match sub.name.as_deref() {
            None | Some("") => p.error(
                &sat.field("name"),
                "Envoy filter: subfilter match has no name to match on",
            ),
            Some(n) => filter_name_warning(n, &sat.field("name"), p),
        }
    }
}

fn port_warning(n: Option<u32>, at: &FieldPath, p: &mut Problems) {
    if let Some(n) = n.filter(|n| *n > 65535) {
        p.warn(
            at,
            format!("port {n} can never match: ports are between 1-65535"),
        );
    }
}

/// The CRD schema's rules on a match: waypoint matches only with the WAYPOINT context,
/// at most one object match, waypoint port range.
fn match_schema(m: &EnvoyConfigObjectMatch, at: &FieldPath, p: &mut Problems) {
    let waypoint_ctx = m.context == Some(PatchContext::Waypoint);
    let others = m.listener.is_some() || m.route_configuration.is_some() || m.cluster.is_some();
    if (m.waypoint.is_some() && !waypoint_ctx) || (waypoint_ctx && others) {
        p.error(
            at,
            "Invalid value: \"object\": only support waypointMatch when context is WAYPOINT \
             (a WAYPOINT patch matches with waypoint; other contexts match with listener, routeConfiguration or cluster)",
        );
    }
    let set = [
        m.listener.is_some(),
        m.route_configuration.is_some(),
        m.cluster.is_some(),
        m.waypoint.is_some(),
    ];
    if set.iter().filter(|b| **b).count() > 1 {
        p.error(at, "match sets more than one of listener, routeConfiguration, cluster and waypoint; set at most one");
    }
    if let Some(n) = m.waypoint.as_ref().and_then(|w| w.port_number) {
        if let Err(e) = checks::port(n) {
            p.error(
                &at.field("waypoint").field("portNumber"),
                format!("Invalid value: \"integer\": {e}"),
            );
        }
    }
}

/// The webhook's rules on a match: a compiling proxy version regex and the object kind
/// lining up with `applyTo`.
fn object_match(m: &EnvoyConfigObjectMatch, apply: ApplyTo, at: &FieldPath, p: &mut Problems) {
    let set = [
        m.listener.is_some(),
        m.route_configuration.is_some(),
        m.cluster.is_some(),
        m.waypoint.is_some(),
    ];
    if set.iter().filter(|b| **b).count() > 1 {
        return;
    }
    if let Some(proxy) = &m.proxy {
        if let Some(v) = proxy.proxy_version.as_deref().filter(|v| !v.is_empty()) {
            if let Err(e) = checks::re2_regex(v) {
                p.error(
                    &at.field("proxy").field("proxyVersion"),
                    format!("Envoy filter: invalid regex for proxy version, [{e}]"),
                );
            }
        }
    }
    if let Some(w) = &m.waypoint {
        let wat = at.field("waypoint");
        if let Some(f) = &w.filter {
            filter_match(f, apply, &wat.field("filter"), p);
        }
        return;
    }
    let listener_class = matches!(
        apply,
        ApplyTo::Listener | ApplyTo::FilterChain | ApplyTo::NetworkFilter | ApplyTo::HttpFilter
    );
    let route_class = matches!(
        apply,
        ApplyTo::RouteConfiguration | ApplyTo::VirtualHost | ApplyTo::HttpRoute
    );
    let has_object = set.iter().any(|b| *b);
    if listener_class && has_object && m.listener.is_none() {
        p.error(at, format!("Envoy filter: applyTo for listener class objects cannot have non listener match (applyTo is {apply}; use match.listener)"));
    }
    if route_class && has_object && m.route_configuration.is_none() {
        p.error(at, format!("Envoy filter: applyTo for http route class objects cannot have non route configuration match (applyTo is {apply}; use match.routeConfiguration)"));
    }
    if apply == ApplyTo::Cluster && has_object && m.cluster.is_none() {
        p.error(at, "Envoy filter: applyTo for cluster class objects cannot have non cluster match (use match.cluster)");
    }
    let sidecar = matches!(
        m.context,
        Some(PatchContext::SidecarInbound | PatchContext::SidecarOutbound)
    );
    if let Some(l) = &m.listener {
        let lat = at.field("listener");
        port_warning(l.port_number, &lat.field("portNumber"), p);
        if l.port_name.as_deref().is_some_and(|n| !n.is_empty()) {
            p.warn(
                &lat.field("portName"),
                "listener portName matching is not implemented by Istio; use portNumber",
            );
        }
        if let Some(fc) = &l.filter_chain {
            let fat = lat.field("filterChain");
            port_warning(fc.destination_port, &fat.field("destinationPort"), p);
            if let Some(tp) = fc.transport_protocol.as_deref().filter(|t| !t.is_empty()) {
                if tp != "raw_buffer" && tp != "tls" {
                    p.warn(&fat.field("transportProtocol"), format!("transportProtocol {tp:?} never matches: Istio's filter chains use \"raw_buffer\" or \"tls\""));
                }
            }
            if listener_class {
                if let Some(f) = &fc.filter {
                    filter_match(f, apply, &fat.field("filter"), p);
                }
            }
        }
    }
    if let Some(r) = &m.route_configuration {
        let rat = at.field("routeConfiguration");
        port_warning(r.port_number, &rat.field("portNumber"), p);
        if let Some(g) = r.gateway.as_deref().filter(|g| !g.is_empty()) {
            if !g.contains('/') {
                p.warn(
                    &rat.field("gateway"),
                    format!("gateway {g:?} never matches: use the namespace/name format"),
                );
            }
        }
        if sidecar && (r.gateway.is_some() || r.port_name.is_some()) {
            p.warn(
                &rat,
                "routeConfiguration gateway and portName apply only in the GATEWAY context",
            );
        }
    }
    if let Some(c) = &m.cluster {
        port_warning(c.port_number, &at.field("cluster").field("portNumber"), p);
    }
}

/// Walks a patch value for `@type` URLs: v2 (removed) types are errors.
fn type_urls(v: &serde_json::Value, at: &FieldPath, p: &mut Problems) {
    match v {
        serde_json::Value::Object(o) => {
            if let Some(serde_json::Value::String(t)) = o.get("@type") {
                let name = t.rsplit('/').next().unwrap_or(t);
                if !t.contains('/') || name.is_empty() {
                    p.error(
                        at,
                        format!("invalid type URL {t:?}: use type.googleapis.com/<message>"),
                    );
                } else if name.starts_with("envoy.") && name.contains(".v2.") {
                    p.error(
                        at,
                        format!("referenced type unknown (hint: try using the v3 XDS API): {t}"),
                    );
                }
            }
            for x in o.values() {
                type_urls(x, at, p);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| type_urls(x, at, p)),
        _ => {}
    }
}

fn config_patch(cp: &EnvoyConfigObjectPatch, at: &FieldPath, p: &mut Problems) {
    // The schema's rules on the match hold whatever else is wrong with the patch.
    if let Some(m) = &cp.match_ {
        match_schema(m, &at.field("match"), p);
    }
    let apply = match cp.apply_to {
        None | Some(ApplyTo::Invalid) => {
            let valid: Vec<&str> = ApplyTo::ALL
                .iter()
                .copied()
                .filter(|v| *v != "INVALID")
                .collect();
            p.error(
                &at.field("applyTo"),
                format!(
                    "Envoy filter: missing applyTo: set one of {}",
                    valid.join(", ")
                ),
            );
            return;
        }
        Some(a) => a,
    };
    let Some(patch) = &cp.patch else {
        p.error(&at.field("patch"), "Envoy filter: missing patch");
        return;
    };
    let pat = at.field("patch");
    let op = match patch.operation {
        None | Some(Operation::Invalid) => {
            p.error(
                &pat.field("operation"),
                "Envoy filter: missing patch operation",
            );
            return;
        }
        Some(o) => o,
    };
    match (&patch.value, op) {
        (None, Operation::Remove) => {}
        (None, _) => {
            p.error(
                &pat.field("value"),
                format!("Envoy filter: missing patch value for non-remove operation {op}"),
            );
            return;
        }
        (Some(_), Operation::Remove) => {
            p.warn(&pat.field("value"), "patch value is ignored by REMOVE")
        }
        (Some(v), _) => {
            if !v.is_object() {
                p.error(
                    &pat.field("value"),
                    "value in body must be of type object: the Envoy configuration as a map",
                );
            } else {
                type_urls(v, &pat.field("value"), p);
                missing_typed_config(v, apply, op, &pat.field("value"), p);
            }
        }
    }
    if let Some(m) = &cp.match_ {
        object_match(m, apply, &at.field("match"), p);
    }
    if patch.filter_class.is_some() && apply != ApplyTo::HttpFilter {
        p.warn(
            &pat.field("filterClass"),
            format!("filterClass only applies to HTTP_FILTER patches (applyTo is {apply})"),
        );
    }
    let ineffective = match apply {
        ApplyTo::RouteConfiguration | ApplyTo::Bootstrap => op != Operation::Merge,
        _ => {
            op == Operation::Replace
                && !matches!(apply, ApplyTo::HttpFilter | ApplyTo::NetworkFilter)
        }
    };
    if ineffective {
        p.warn(
            &pat.field("operation"),
            format!("operation {op} has no effect on {apply}"),
        );
    }
}

/// Filters added by name only (no `typed_config`) rely on a lookup Envoy removed.
fn missing_typed_config(
    v: &serde_json::Value,
    apply: ApplyTo,
    op: Operation,
    at: &FieldPath,
    p: &mut Problems,
) {
    let adds = matches!(
        op,
        Operation::Add
            | Operation::InsertBefore
            | Operation::InsertAfter
            | Operation::InsertFirst
            | Operation::Replace
    );
    let filter = matches!(
        apply,
        ApplyTo::HttpFilter | ApplyTo::NetworkFilter | ApplyTo::ListenerFilter
    );
    if !(adds && filter) {
        return;
    }
    let o = v.as_object().expect("caller checked");
    let typed = [
        "typed_config",
        "typedConfig",
        "config_discovery",
        "configDiscovery",
    ];
    if !typed.iter().any(|k| o.contains_key(*k)) {
        let name = o.get("name").and_then(|n| n.as_str()).unwrap_or("");
        p.warn(
            at,
            format!("using deprecated types by name without typed_config; {name}"),
        );
    }
}
