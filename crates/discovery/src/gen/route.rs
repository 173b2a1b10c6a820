//! VirtualService HTTP routes → Envoy routes, for sidecars, gateways and proxyless gRPC:
//! one Envoy route per applicable match (first match wins), destinations as a cluster or
//! weighted clusters, rewrites, redirects, direct responses, header operations,
//! timeouts, retries (Istio's default policy when unset), faults, mirrors, CORS and
//! consistent-hash policies from DestinationRules.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3::DirectResponseAction;
use envoy_types::pb::envoy::config::route::v3::{
    redirect_action, retry_policy, route, route_action, weighted_cluster, Decorator,
    RedirectAction, RetryPolicy, Route, RouteAction, WeightedCluster,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::extensions::retry::priority::previous_priorities::v3::PreviousPrioritiesConfig;
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;
use ironmesh_config::networking::destination_rule::ConsistentHashLb;
use ironmesh_config::networking::virtual_service::{
    Destination, HttpMatchRequest, HttpRedirect, HttpRetry, HttpRoute, HttpRouteDestination,
    RedirectPortSelection,
};

use super::policy::Policy;
use super::route_match::{self, header_ops, is_catch_all};
use super::util::{
    any, boolv, duration, integer_percent, metadata, percent_to_fraction, string_value, u32v,
    zero_duration,
};
use crate::proxy::Proxy;
use crate::push_context::{labels_subset, qualify_gateway, PushContext, VsConfig};

pub const FAULT_FILTER: &str = "envoy.filters.http.fault";
pub const CORS_FILTER: &str = "envoy.filters.http.cors";
const PREVIOUS_HOSTS: &str = "envoy.retry_host_predicates.previous_hosts";
const PREVIOUS_PRIORITIES: &str = "envoy.retry_priorities.previous_priorities";
/// Retry conditions proxyless gRPC understands.
const GRPC_RETRY_ON: &[&str] = &[
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Where routes are being built: for which proxy, on which port, on behalf of which
/// gateways (`mesh` for sidecars).
pub struct RouteCtx<'a> {
    pub push: &'a PushContext,
    pub proxy: &'a Proxy,
    /// The listener (service or gateway server) port; destinations without a port on
    /// multi-port services use it.
    pub port: u16,
    pub gateways: Vec<String>,
}

impl RouteCtx<'_> {
    fn grpc(&self) -> bool {
        self.proxy.is_proxyless_grpc()
    }

    /// `outbound|port|subset|host` for a destination named in a VirtualService of
    /// `namespace`, with the host's consistent-hash policy if its DestinationRule has one.
    fn destination(&self, d: &Destination, namespace: &str) -> (String, Option<ConsistentHashLb>) {
        let host = self
            .push
            .qualify(d.host.as_deref().unwrap_or(""), namespace);
        let svc = self.push.service(&host);
        let port = d
            .port
            .as_ref()
            .and_then(|p| p.number)
            .map(|n| n as u16)
            .or_else(|| svc.filter(|s| s.ports.len() == 1).map(|s| s.ports[0].port))
            .unwrap_or(self.port);
        let subset = d.subset.as_deref().unwrap_or("");
        (
            super::cds::outbound_name(port, subset, &host),
            self.hash(&host, d.subset.as_deref(), port),
        )
    }

    /// The consistent hash of a host's DestinationRule (subset and port aware).
    pub fn hash(&self, host: &str, subset: Option<&str>, port: u16) -> Option<ConsistentHashLb> {
        let dr = self.push.destination_rule(self.proxy, host)?;
        let subset = subset.and_then(|n| {
            dr.spec
                .subsets
                .iter()
                .find(|s| s.name.as_deref() == Some(n))
        });
        Policy::effective(Some(&dr.spec), subset, port)
            .consistent_hash()
            .cloned()
    }

    /// Istio's retry policy: the mesh default when the route has none, none at all
    /// when `attempts` is 0.
    fn retry(&self, r: Option<&HttpRetry>, consistent_hash: bool) -> Option<RetryPolicy> {
        let mesh = self.push.mesh();
        let (attempts, retry_on) = match r {
            Some(r) => (r.attempts.unwrap_or(0), r.retry_on.clone()),
            None => (
                mesh.default_retry_attempts(),
                Some(mesh.default_retry_on().to_string()),
            ),
        };
        if attempts <= 0 {
            return None;
        }
        if self.grpc() && r.is_none() {
            return None;
        }
        let mut out = RetryPolicy {
            num_retries: Some(u32v(attempts as u32)),
            retry_on: ironmesh_config::mesh::mesh_config::DEFAULT_RETRY_ON.to_string(),
            host_selection_retry_max_attempts: 5,
            ..Default::default()
        };
        if !consistent_hash {
            out.retry_host_predicate = vec![previous_hosts()];
        }
        if let Some(on) = retry_on.filter(|s| !s.is_empty()) {
            let (conditions, codes): (Vec<&str>, Vec<&str>) = on
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .partition(|p| {
                    p.parse::<u16>()
                        .map(|c| !(100..=599).contains(&c))
                        .unwrap_or(true)
                });
            out.retriable_status_codes = codes.iter().filter_map(|c| c.parse().ok()).collect();
            out.retry_on = conditions.join(",");
            if !out.retriable_status_codes.is_empty()
                && !out.retry_on.contains("retriable-status-codes")
            {
                out.retry_on.push_str(",retriable-status-codes");
            }
        }
        if let Some(r) = r {
            if let Some(t) = &r.per_try_timeout {
                out.per_try_timeout = Some(duration(t.as_std()));
            }
            match r.retry_ignore_previous_hosts {
                Some(true) => out.retry_host_predicate = vec![previous_hosts()],
                Some(false) => out.retry_host_predicate.clear(),
                None => {}
            }
            if r.retry_remote_localities == Some(true) {
                out.retry_priority = Some(retry_policy::RetryPriority {
                    name: PREVIOUS_PRIORITIES.into(),
                    config_type: Some(retry_policy::retry_priority::ConfigType::TypedConfig(any(
                        &PreviousPrioritiesConfig {
                            update_frequency: 2,
                        },
                    ))),
                });
            }
            if let Some(b) = &r.backoff {
                out.retry_back_off = Some(retry_policy::RetryBackOff {
                    base_interval: Some(duration(b.as_std())),
                    ..Default::default()
                });
            }
        }
        if self.grpc() {
            out.retry_on = out
                .retry_on
                .split(',')
                .filter(|c| GRPC_RETRY_ON.contains(c))
                .collect::<Vec<_>>()
                .join(",");
            out.retriable_status_codes.clear();
            out.retry_host_predicate.clear();
            if out.retry_on.is_empty() {
                return None;
            }
        }
        Some(out)
    }

    /// The route timeout (0: none). Envoy also honours `grpc-timeout` up to the same
    /// bound; Istio expresses that with the deprecated `max_grpc_timeout`, ironmesh with
    /// its replacement. Proxyless gRPC reads only `max_stream_duration`.
    fn set_timeout(&self, action: &mut RouteAction, timeout: Option<std::time::Duration>) {
        let t = timeout.map(duration).unwrap_or_else(zero_duration);
        if self.grpc() {
            action.max_stream_duration = Some(route_action::MaxStreamDuration {
                max_stream_duration: Some(t),
                ..Default::default()
            });
        } else {
            action.timeout = Some(t);
            action.max_stream_duration = Some(route_action::MaxStreamDuration {
                grpc_timeout_header_max: Some(t),
                ..Default::default()
            });
        }
    }
}

fn previous_hosts() -> retry_policy::RetryHostPredicate {
    retry_policy::RetryHostPredicate {
        name: PREVIOUS_HOSTS.into(),
        config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(
            any(&PreviousHostsPredicate {}),
        )),
    }
}

/// Envoy's hash policy for a DestinationRule consistent hash.
pub fn hash_policy(h: &ConsistentHashLb) -> Option<route_action::HashPolicy> {
    use route_action::hash_policy::{
        ConnectionProperties, Cookie, Header, PolicySpecifier, QueryParameter,
    };
    let spec = if let Some(name) = &h.http_header_name {
        PolicySpecifier::Header(Header {
            header_name: name.clone(),
            ..Default::default()
        })
    } else if let Some(c) = &h.http_cookie {
        PolicySpecifier::Cookie(Cookie {
            name: c.name.clone().unwrap_or_default(),
            path: c.path.clone().unwrap_or_default(),
            ttl: c.ttl.as_ref().map(|d| duration(d.as_std())),
            ..Default::default()
        })
    } else if h.use_source_ip == Some(true) {
        PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip: true })
    } else if let Some(q) = &h.http_query_parameter_name {
        PolicySpecifier::QueryParameter(QueryParameter { name: q.clone() })
    } else {
        return None;
    };
    Some(route_action::HashPolicy {
        policy_specifier: Some(spec),
        ..Default::default()
    })
}

/// `<host>:<port><path>` for one destination, else `<vs>:<port><path>`: the span name.
fn operation(r: &Route, vs_name: &str, port: u16) -> String {
    let path = match r.r#match.as_ref().and_then(|m| m.path_specifier.as_ref()) {
        Some(envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier::Prefix(p)) => {
            format!("{p}*")
        }
        Some(envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier::Path(p)) => {
            p.clone()
        }
        Some(envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier::SafeRegex(
            r,
        )) => r.regex.clone(),
        _ => "/*".to_string(),
    };
    if let Some(route::Action::Route(RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(c)),
        ..
    })) = &r.action
    {
        let parts: Vec<&str> = c.split('|').collect();
        if parts.len() == 4 && parts[0] == "outbound" {
            return format!("{}:{}{path}", parts[3], parts[1]);
        }
    }
    format!("{vs_name}:{port}{path}")
}

/// The route a service gets without a VirtualService: `/` to its cluster with the
/// default retry policy.
pub fn default_route(
    ctx: &RouteCtx<'_>,
    cluster: &str,
    operation: &str,
    hash: Option<&ConsistentHashLb>,
) -> Route {
    let mut action = RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.to_string())),
        retry_policy: ctx.retry(None, hash.is_some()),
        ..Default::default()
    };
    ctx.set_timeout(&mut action, None);
    if let Some(hp) = hash.and_then(hash_policy) {
        action.hash_policy = vec![hp];
    }
    Route {
        name: "default".into(),
        r#match: Some(route_match::route_match(None)),
        decorator: Some(Decorator {
            operation: operation.to_string(),
            ..Default::default()
        }),
        action: Some(route::Action::Route(action)),
        ..Default::default()
    }
}

/// Whether a match applies to this proxy: its gateways (or, without gateways, its
/// source labels and namespace).
fn source_matches(ctx: &RouteCtx<'_>, m: &HttpMatchRequest, vs_ns: &str) -> bool {
    if !m.gateways.is_empty() {
        return m
            .gateways
            .iter()
            .any(|g| ctx.gateways.contains(&qualify_gateway(g, vs_ns)));
    }
    labels_subset(&m.source_labels, &ctx.proxy.labels)
        && m.source_namespace
            .as_deref()
            .is_none_or(|ns| ns == ctx.proxy.namespace)
}

/// The Envoy routes of a VirtualService on this port, in order; empty when no rule
/// applies here.
pub fn vs_routes(ctx: &RouteCtx<'_>, vs: &VsConfig) -> Vec<Route> {
    let mut out = Vec::new();
    for http in &vs.spec.http {
        // Delegation is resolved by merging the delegate's routes, which is not mapped;
        // such rules are skipped rather than half-applied.
        if http.delegate.is_some() {
            continue;
        }
        if http.match_.is_empty() {
            if let Some(r) = translate(ctx, vs, http, None) {
                out.push(r);
            }
            break;
        }
        let mut catch_all = false;
        for m in &http.match_ {
            if let Some(r) = translate(ctx, vs, http, Some(m)) {
                catch_all = r.r#match.as_ref().is_some_and(is_catch_all);
                out.push(r);
                if catch_all {
                    break;
                }
            }
        }
        if catch_all {
            break;
        }
    }
    out
}

fn translate(
    ctx: &RouteCtx<'_>,
    vs: &VsConfig,
    http: &HttpRoute,
    m: Option<&HttpMatchRequest>,
) -> Option<Route> {
    if let Some(m) = m {
        if m.port.is_some_and(|p| p != u32::from(ctx.port))
            || !source_matches(ctx, m, &vs.namespace)
        {
            return None;
        }
    }
    let mut name = http.name.clone().unwrap_or_default();
    if let Some(mn) = m.and_then(|m| m.name.as_deref()) {
        name = format!("{name}.{mn}");
    }
    let ops = header_ops(http.headers.as_ref());
    let mut out = Route {
        name,
        r#match: Some(route_match::route_match(m)),
        metadata: Some(metadata(
            "istio",
            vec![("config", string_value(&vs.config_path()))],
        )),
        request_headers_to_add: ops.request_add,
        request_headers_to_remove: ops.request_remove,
        response_headers_to_add: ops.response_add,
        response_headers_to_remove: ops.response_remove,
        stat_prefix: m.and_then(|m| m.stat_prefix.clone()).unwrap_or_default(),
        ..Default::default()
    };
    if let Some(r) = &http.redirect {
        out.action = Some(route::Action::Redirect(redirect(ctx, r)?));
    } else if let Some(d) = &http.direct_response {
        out.action = Some(route::Action::DirectResponse(DirectResponseAction {
            status: d.status.unwrap_or(200),
            body: d.body.as_ref().and_then(route_match::body),
            ..Default::default()
        }));
    } else {
        out.action = Some(route::Action::Route(route_action(
            ctx,
            vs,
            http,
            ops.authority,
            &mut out,
        )));
    }
    out.decorator = Some(Decorator {
        operation: operation(&out, &vs.name, ctx.port),
        ..Default::default()
    });
    let mut per_filter = HashMap::new();
    if let Some(f) = http.fault.as_ref().and_then(route_match::fault) {
        per_filter.insert(FAULT_FILTER.to_string(), any(&f));
    }
    if let Some(c) = &http.cors_policy {
        per_filter.insert(CORS_FILTER.to_string(), any(&route_match::cors(c)));
    }
    out.typed_per_filter_config = per_filter;
    Some(out)
}

fn redirect(ctx: &RouteCtx<'_>, r: &HttpRedirect) -> Option<RedirectAction> {
    use redirect_action::RedirectResponseCode as Code;
    let code = match r.redirect_code.unwrap_or(301) {
        301 => Code::MovedPermanently,
        302 => Code::Found,
        303 => Code::SeeOther,
        307 => Code::TemporaryRedirect,
        308 => Code::PermanentRedirect,
        // Validation rejects other codes; a route with one is dropped, as Istio does.
        _ => return None,
    };
    let mut out = RedirectAction {
        host_redirect: r.authority.clone().unwrap_or_default(),
        response_code: code as i32,
        path_rewrite_specifier: r
            .uri
            .clone()
            .map(redirect_action::PathRewriteSpecifier::PathRedirect),
        scheme_rewrite_specifier: r
            .scheme
            .clone()
            .map(redirect_action::SchemeRewriteSpecifier::SchemeRedirect),
        ..Default::default()
    };
    let port = match (r.port, r.derive_port) {
        (Some(p), _) => Some(p),
        (None, Some(RedirectPortSelection::FromRequestPort)) => Some(u32::from(ctx.port)),
        _ => None,
    };
    if let Some(p) = port {
        let scheme = r.scheme.as_deref().unwrap_or("http");
        // No explicit :80 or :443 for their own schemes.
        if !((p == 80 && scheme == "http") || (p == 443 && scheme == "https")) {
            out.port_redirect = p;
        }
    }
    Some(out)
}

fn route_action(
    ctx: &RouteCtx<'_>,
    vs: &VsConfig,
    http: &HttpRoute,
    mut authority: Option<String>,
    out: &mut Route,
) -> RouteAction {
    let mut action = RouteAction::default();
    ctx.set_timeout(&mut action, http.timeout.as_ref().map(|t| t.as_std()));
    if let Some(rw) = &http.rewrite {
        if let Some(rr) = &rw.uri_regex_rewrite {
            action.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(route_match::regex(rr.match_.as_deref().unwrap_or(""))),
                substitution: rr.rewrite.clone().unwrap_or_default(),
            });
        } else if let Some(uri) = rw.uri.as_deref().filter(|u| !u.is_empty()) {
            action.prefix_rewrite = uri.to_string();
        }
        if let Some(a) = rw.authority.as_deref().filter(|a| !a.is_empty()) {
            authority = Some(a.to_string());
        }
    }
    let mirrors = http
        .mirror
        .iter()
        .map(|d| {
            (
                d,
                mirror_fraction(http.mirror_percentage.map(|p| p.value), http.mirror_percent),
            )
        })
        .chain(http.mirrors.iter().filter_map(|m| {
            Some((
                m.destination.as_ref()?,
                mirror_fraction(m.percentage.map(|p| p.value), None),
            ))
        }));
    for (dest, fraction) in mirrors {
        let Some(fraction) = fraction else { continue };
        action
            .request_mirror_policies
            .push(route_action::RequestMirrorPolicy {
                cluster: ctx.destination(dest, &vs.namespace).0,
                runtime_fraction: Some(fraction),
                trace_sampled: Some(boolv(false)),
                ..Default::default()
            });
    }

    let mut hashed = false;
    let dests: Vec<&HttpRouteDestination> = if http.route.len() == 1 {
        http.route.iter().collect()
    } else {
        http.route
            .iter()
            .filter(|d| d.weight.unwrap_or(0) != 0)
            .collect()
    };
    if dests.len() == 1 && http.route.len() == 1 {
        let d = dests[0];
        let dest = d.destination.clone().unwrap_or_default();
        let (cluster, hash) = ctx.destination(&dest, &vs.namespace);
        action.cluster_specifier = Some(route_action::ClusterSpecifier::Cluster(cluster));
        let ops = header_ops(d.headers.as_ref());
        out.request_headers_to_add.extend(ops.request_add);
        out.request_headers_to_remove.extend(ops.request_remove);
        out.response_headers_to_add.extend(ops.response_add);
        out.response_headers_to_remove.extend(ops.response_remove);
        if authority.is_none() {
            authority = ops.authority;
        }
        if let Some(hp) = hash.as_ref().and_then(hash_policy) {
            action.hash_policy.push(hp);
            hashed = true;
        }
    } else {
        let mut clusters = Vec::new();
        for d in dests {
            let dest = d.destination.clone().unwrap_or_default();
            let (name, hash) = ctx.destination(&dest, &vs.namespace);
            let ops = header_ops(d.headers.as_ref());
            clusters.push(weighted_cluster::ClusterWeight {
                name,
                weight: Some(u32v(d.weight.unwrap_or(0).max(0) as u32)),
                request_headers_to_add: ops.request_add,
                request_headers_to_remove: ops.request_remove,
                response_headers_to_add: ops.response_add,
                response_headers_to_remove: ops.response_remove,
                host_rewrite_specifier: ops.authority.map(
                    weighted_cluster::cluster_weight::HostRewriteSpecifier::HostRewriteLiteral,
                ),
                ..Default::default()
            });
            if let Some(hp) = hash.as_ref().and_then(hash_policy) {
                action.hash_policy.push(hp);
                hashed = true;
            }
        }
        action.cluster_specifier = Some(route_action::ClusterSpecifier::WeightedClusters(
            WeightedCluster {
                clusters,
                ..Default::default()
            },
        ));
    }
    if let Some(a) = authority {
        action.host_rewrite_specifier =
            Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(a));
    }
    action.retry_policy = ctx.retry(http.retries.as_ref(), hashed);
    action
}

/// The share of traffic a mirror gets: `mirrorPercentage`, else the deprecated integer
/// `mirrorPercent`, else 100%. An explicit 0 disables the mirror.
fn mirror_fraction(
    percentage: Option<f64>,
    percent: Option<u32>,
) -> Option<RuntimeFractionalPercent> {
    let value = match (percentage, percent) {
        (Some(p), _) if p > 0.0 => percent_to_fraction(p),
        (Some(_), _) => return None,
        (None, Some(p)) if p > 0 => integer_percent(p),
        (None, Some(_)) => return None,
        (None, None) => integer_percent(100),
    };
    Some(RuntimeFractionalPercent {
        default_value: Some(value),
        ..Default::default()
    })
}
