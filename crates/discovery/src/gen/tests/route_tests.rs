//! Every VirtualService HTTP feature → its Envoy route field.

use envoy_types::pb::envoy::config::core::v3::{
    data_source, header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    redirect_action, route, route_action, route_match::PathSpecifier, Route,
};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::fault_delay;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{fault_abort, HttpFault};
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::v3::fractional_percent::DenominatorType;

use super::{action, route_config, unpack, vhost};
use crate::testutil::{bookinfo, sidecar};

fn ratings_routes(http: &str) -> Vec<Route> {
    ratings_routes_for(http, &[("app", "productpage"), ("version", "v1")])
}

fn ratings_routes_for(http: &str, labels: &[(&str, &str)]) -> Vec<Route> {
    let yaml = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: ratings, namespace: default}}\nspec:\n  hosts: [ratings]\n  http:\n{http}"
    );
    let push = bookinfo().config(&yaml).push();
    let p = sidecar("productpage-v1-1", "default", "10.244.0.10", labels);
    let rc = route_config(&push, &p, "9080");
    vhost(&rc, "ratings.default.svc.cluster.local:9080")
        .routes
        .clone()
}

const TO_RATINGS: &str = "    route:\n    - destination: {host: ratings}\n";

#[test]
fn match_fields() {
    let http = format!(
        r#"  - name: all
    match:
    - name: m1
      uri: {{prefix: /api}}
      ignoreUriCase: true
      method: {{exact: GET}}
      scheme: {{exact: https}}
      authority: {{prefix: ratings}}
      headers:
        x-version: {{regex: "v[0-9]+"}}
        x-present: {{}}
      withoutHeaders:
        x-debug: {{exact: "1"}}
      queryParams:
        user: {{exact: jason}}
        any: {{}}
    - uri: {{exact: /health}}
      port: 9080
    - uri: {{regex: "/v[12]/.*"}}
      port: 8080
{TO_RATINGS}"#
    );
    let routes = ratings_routes(&http);
    // The port-8080 match does not apply on 9080; each other match is its own route.
    assert_eq!(routes.len(), 2, "{routes:#?}");
    let r = &routes[0];
    assert_eq!(r.name, "all.m1");
    let m = r.r#match.as_ref().unwrap();
    assert_eq!(m.path_specifier, Some(PathSpecifier::Prefix("/api".into())));
    assert!(!m.case_sensitive.unwrap().value);
    let names: Vec<&str> = m.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "x-debug",
            "x-present",
            "x-version",
            ":method",
            ":authority",
            ":scheme"
        ]
    );
    let debug = &m.headers[0];
    assert!(debug.invert_match && debug.treat_missing_header_as_empty);
    assert_eq!(
        m.headers[1].header_match_specifier,
        Some(HeaderMatchSpecifier::PresentMatch(true))
    );
    match &m.headers[2].header_match_specifier {
        Some(HeaderMatchSpecifier::StringMatch(s)) => match &s.match_pattern {
            Some(MatchPattern::SafeRegex(re)) => assert_eq!(re.regex, "v[0-9]+"),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert!(format!("{:?}", m.headers[3]).contains("Exact(\"GET\")"));
    assert!(format!("{:?}", m.headers[4]).contains("Prefix(\"ratings\")"));
    let q: Vec<(&str, bool)> = m
        .query_parameters
        .iter()
        .map(|q| {
            (
                q.name.as_str(),
                matches!(
                    q.query_parameter_match_specifier,
                    Some(QueryParameterMatchSpecifier::PresentMatch(true))
                ),
            )
        })
        .collect();
    assert_eq!(q, [("any", true), ("user", false)]);
    assert_eq!(
        r.decorator.as_ref().unwrap().operation,
        "ratings.default.svc.cluster.local:9080/api*"
    );

    let exact = routes[1].r#match.as_ref().unwrap();
    assert_eq!(
        exact.path_specifier,
        Some(PathSpecifier::Path("/health".into()))
    );
    assert_eq!(
        routes[1].decorator.as_ref().unwrap().operation,
        "ratings.default.svc.cluster.local:9080/health"
    );
}

#[test]
fn source_labels_and_namespace_select_proxies() {
    let http = format!(
        "  - match:\n    - sourceLabels: {{app: reviews}}\n{TO_RATINGS}  - match:\n    - sourceNamespace: other\n{TO_RATINGS}  - match:\n    - sourceLabels: {{app: productpage}}\n      sourceNamespace: default\n      uri: {{prefix: /pp}}\n{TO_RATINGS}"
    );
    let routes = ratings_routes(&http);
    // Only the third rule applies to productpage in default; the catch-all default is not added.
    assert_eq!(routes.len(), 1);
    assert_eq!(
        routes[0].r#match.as_ref().unwrap().path_specifier,
        Some(PathSpecifier::Prefix("/pp".into()))
    );
    // When no rule applies, the service keeps its default route.
    let none = ratings_routes_for(
        &format!("  - match:\n    - sourceLabels: {{app: reviews}}\n{TO_RATINGS}"),
        &[("app", "x")],
    );
    assert_eq!(none[0].name, "default");
}

#[test]
fn catch_all_ends_the_list() {
    let http = format!("  - route:\n    - destination: {{host: ratings}}\n  - match:\n    - uri: {{prefix: /never}}\n{TO_RATINGS}");
    assert_eq!(ratings_routes(&http).len(), 1);
}

#[test]
fn rewrite_timeout_and_headers() {
    let http = r#"  - match:
    - uri: {prefix: /old}
    rewrite: {uri: /new, authority: ratings.internal}
    timeout: 2.5s
    headers:
      request:
        set: {x-set: a}
        add: {x-add: b}
        remove: [x-drop]
      response:
        set: {x-resp: c}
        remove: [server]
    route:
    - destination: {host: ratings, port: {number: 9080}}
      headers:
        request: {set: {x-dest: d}}
  - match:
    - uri: {prefix: /re}
    rewrite:
      uriRegexRewrite: {match: "^/re/(.*)$", rewrite: '/\1'}
    route:
    - destination: {host: ratings}
"#;
    let routes = ratings_routes(http);
    let r = &routes[0];
    let a = action(r);
    assert_eq!(a.prefix_rewrite, "/new");
    assert_eq!(
        a.host_rewrite_specifier,
        Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(
            "ratings.internal".into()
        ))
    );
    assert_eq!(a.timeout.unwrap().seconds, 2);
    assert_eq!(a.timeout.unwrap().nanos, 500_000_000);
    let adds: Vec<(&str, i32)> = r
        .request_headers_to_add
        .iter()
        .map(|h| (h.header.as_ref().unwrap().key.as_str(), h.append_action))
        .collect();
    assert_eq!(
        adds,
        [
            ("x-set", HeaderAppendAction::OverwriteIfExistsOrAdd as i32),
            ("x-add", HeaderAppendAction::AppendIfExistsOrAdd as i32),
            ("x-dest", HeaderAppendAction::OverwriteIfExistsOrAdd as i32)
        ]
    );
    assert_eq!(r.request_headers_to_remove, ["x-drop"]);
    assert_eq!(
        r.response_headers_to_add[0].header.as_ref().unwrap().key,
        "x-resp"
    );
    assert_eq!(r.response_headers_to_remove, ["server"]);
    let rr = action(&routes[1]).regex_rewrite.as_ref().unwrap();
    assert_eq!(rr.pattern.as_ref().unwrap().regex, "^/re/(.*)$");
    assert_eq!(rr.substitution, "/\\1");
}

#[test]
fn redirect_and_direct_response() {
    let http = r#"  - match:
    - uri: {exact: /moved}
    redirect: {uri: /new, authority: new.example.com, redirectCode: 308, scheme: https, port: 8443}
  - match:
    - uri: {exact: /same-port}
    redirect: {uri: /x, derivePort: FROM_REQUEST_PORT}
  - match:
    - uri: {exact: /teapot}
    directResponse: {status: 418, body: {string: "short and stout"}}
  - match:
    - uri: {exact: /bytes}
    directResponse: {status: 200, body: {bytes: aGVsbG8=}}
"#;
    let routes = ratings_routes(http);
    match &routes[0].action {
        Some(route::Action::Redirect(r)) => {
            assert_eq!(r.host_redirect, "new.example.com");
            assert_eq!(r.port_redirect, 8443);
            assert_eq!(
                r.response_code,
                redirect_action::RedirectResponseCode::PermanentRedirect as i32
            );
            assert_eq!(
                r.path_rewrite_specifier,
                Some(redirect_action::PathRewriteSpecifier::PathRedirect(
                    "/new".into()
                ))
            );
            assert_eq!(
                r.scheme_rewrite_specifier,
                Some(redirect_action::SchemeRewriteSpecifier::SchemeRedirect(
                    "https".into()
                ))
            );
        }
        other => panic!("{other:?}"),
    }
    match &routes[1].action {
        Some(route::Action::Redirect(r)) => {
            assert_eq!(r.port_redirect, 9080);
            assert_eq!(
                r.response_code,
                redirect_action::RedirectResponseCode::MovedPermanently as i32
            );
        }
        other => panic!("{other:?}"),
    }
    match &routes[2].action {
        Some(route::Action::DirectResponse(d)) => {
            assert_eq!(d.status, 418);
            assert_eq!(
                d.body.as_ref().unwrap().specifier,
                Some(data_source::Specifier::InlineString(
                    "short and stout".into()
                ))
            );
        }
        other => panic!("{other:?}"),
    }
    match &routes[3].action {
        Some(route::Action::DirectResponse(d)) => assert_eq!(
            d.body.as_ref().unwrap().specifier,
            Some(data_source::Specifier::InlineBytes(b"hello".to_vec()))
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn retries() {
    let http = r#"  - match:
    - uri: {prefix: /a}
    retries: {attempts: 4, perTryTimeout: 1s, retryOn: "gateway-error,503,connect-failure", retryRemoteLocalities: true, backoff: 50ms}
    route:
    - destination: {host: ratings}
  - match:
    - uri: {prefix: /b}
    retries: {attempts: 0}
    route:
    - destination: {host: ratings}
  - match:
    - uri: {prefix: /c}
    retries: {attempts: 3, retryIgnorePreviousHosts: false}
    route:
    - destination: {host: ratings}
"#;
    let routes = ratings_routes(http);
    let rp = action(&routes[0]).retry_policy.clone().unwrap();
    assert_eq!(rp.num_retries.unwrap().value, 4);
    assert_eq!(rp.per_try_timeout.unwrap().seconds, 1);
    assert_eq!(
        rp.retry_on,
        "gateway-error,connect-failure,retriable-status-codes"
    );
    assert_eq!(rp.retriable_status_codes, [503]);
    assert_eq!(
        rp.retry_priority.as_ref().unwrap().name,
        "envoy.retry_priorities.previous_priorities"
    );
    assert_eq!(
        rp.retry_back_off.unwrap().base_interval.unwrap().nanos,
        50_000_000
    );
    assert_eq!(rp.host_selection_retry_max_attempts, 5);
    assert!(action(&routes[1]).retry_policy.is_none());
    let c = action(&routes[2]).retry_policy.clone().unwrap();
    assert!(c.retry_host_predicate.is_empty());
    // retryOn unset keeps the default conditions.
    assert_eq!(
        c.retry_on,
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    );
}

#[test]
fn fault_mirror_and_cors() {
    let http = r#"  - match:
    - uri: {prefix: /f}
    fault:
      delay: {fixedDelay: 7s, percentage: {value: 12.5}}
      abort: {httpStatus: 503, percentage: {value: 100}}
    mirror: {host: details}
    mirrorPercentage: {value: 25}
    corsPolicy:
      allowOrigins: [{exact: "https://a.example"}, {regex: ".*\\.b\\.example"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-a]
      exposeHeaders: [x-b]
      maxAge: 24h
      allowCredentials: true
      unmatchedPreflights: IGNORE
    route:
    - destination: {host: ratings}
  - match:
    - uri: {prefix: /g}
    fault:
      abort: {grpcStatus: UNAVAILABLE}
    mirrors:
    - destination: {host: details, subset: v1}
    route:
    - destination: {host: ratings}
"#;
    let routes = ratings_routes(http);
    let r = &routes[0];
    let fault: HttpFault = unpack(&r.typed_per_filter_config["envoy.filters.http.fault"]);
    let d = fault.delay.unwrap();
    assert_eq!(
        d.fault_delay_secifier,
        Some(fault_delay::FaultDelaySecifier::FixedDelay(
            super::super::util::seconds(7)
        ))
    );
    let pct = d.percentage.unwrap();
    assert_eq!(
        (pct.numerator, pct.denominator),
        (125_000, DenominatorType::Million as i32)
    );
    let abort = fault.abort.unwrap();
    assert_eq!(
        abort.error_type,
        Some(fault_abort::ErrorType::HttpStatus(503))
    );
    assert_eq!(abort.percentage.unwrap().numerator, 1_000_000);
    let m = &action(r).request_mirror_policies[0];
    assert_eq!(
        m.cluster,
        "outbound|9080||details.default.svc.cluster.local"
    );
    assert_eq!(
        m.runtime_fraction
            .as_ref()
            .unwrap()
            .default_value
            .unwrap()
            .numerator,
        250_000
    );
    assert!(!m.trace_sampled.unwrap().value);
    let cors: CorsPolicy = unpack(&r.typed_per_filter_config["envoy.filters.http.cors"]);
    assert_eq!(cors.allow_origin_string_match.len(), 2);
    assert_eq!(cors.allow_methods, "GET,POST");
    assert_eq!(cors.allow_headers, "x-a");
    assert_eq!(cors.expose_headers, "x-b");
    assert_eq!(cors.max_age, "86400");
    assert!(cors.allow_credentials.unwrap().value);
    assert!(!cors.forward_not_matching_preflights.unwrap().value);
    assert_eq!(
        cors.filter_enabled
            .unwrap()
            .default_value
            .unwrap()
            .numerator,
        100
    );

    let g = &routes[1];
    let fault: HttpFault = unpack(&g.typed_per_filter_config["envoy.filters.http.fault"]);
    assert_eq!(
        fault.abort.unwrap().error_type,
        Some(fault_abort::ErrorType::GrpcStatus(14))
    );
    let m = &action(g).request_mirror_policies[0];
    assert_eq!(
        m.cluster,
        "outbound|9080|v1|details.default.svc.cluster.local"
    );
    let f = m.runtime_fraction.as_ref().unwrap().default_value.unwrap();
    assert_eq!(
        (f.numerator, f.denominator),
        (100, DenominatorType::Hundred as i32)
    );
}

#[test]
fn weighted_destinations_carry_their_headers_and_skip_zero_weights() {
    let http = r#"  - route:
    - destination: {host: ratings, subset: v1}
      weight: 90
      headers:
        request: {set: {x-w: one}}
        response: {add: {x-r: two}}
    - destination: {host: ratings, subset: v2}
      weight: 10
    - destination: {host: ratings, subset: v3}
      weight: 0
"#;
    let routes = ratings_routes(http);
    match &action(&routes[0]).cluster_specifier {
        Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
            assert_eq!(w.clusters.len(), 2);
            assert_eq!(
                w.clusters[0].request_headers_to_add[0]
                    .header
                    .as_ref()
                    .unwrap()
                    .value,
                "one"
            );
            assert_eq!(
                w.clusters[0].response_headers_to_add[0]
                    .header
                    .as_ref()
                    .unwrap()
                    .key,
                "x-r"
            );
        }
        other => panic!("{other:?}"),
    }
}
