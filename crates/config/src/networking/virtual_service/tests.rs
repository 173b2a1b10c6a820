//! Unit tests for VirtualService validation: one test (or more) per rule.

use serde_json::{json, Value};

use super::validate::{host_matches, host_subset_of, is_jwt_claim};
use super::validate_fields::header_value;
use super::validate_http::is_base64;
use super::VirtualService;
use crate::path::FieldPath;
use crate::validation::{Context, Problems, Severity, Validate};

fn run(v: Value) -> (Vec<String>, Vec<String>) {
    let spec: VirtualService = serde_json::from_value(v).expect("spec decodes");
    let mut p = Problems::new();
    spec.validate(
        &Context::for_test("VirtualService"),
        &FieldPath::spec(),
        &mut p,
    );
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for x in p.into_vec() {
        let line = format!("{}: {}", x.path, x.message);
        match x.severity {
            Severity::Error => errors.push(line),
            Severity::Warning => warnings.push(line),
        }
    }
    (errors, warnings)
}

fn errors(v: Value) -> Vec<String> {
    run(v).0
}

/// A valid VirtualService with one HTTP route; `route` fields are merged into it.
fn with_route(route: Value) -> Value {
    let mut r = json!({"route": [{"destination": {"host": "reviews"}}]});
    for (k, v) in route.as_object().unwrap() {
        r[k] = v.clone();
    }
    json!({"hosts": ["reviews"], "http": [r]})
}

#[track_caller]
fn expect_error(v: Value, fragment: &str) {
    let e = errors(v);
    assert!(
        e.iter().any(|m| m.contains(fragment)),
        "expected an error containing {fragment:?}, got {e:?}"
    );
}

#[track_caller]
fn expect_clean(v: Value) {
    let e = errors(v);
    assert!(e.is_empty(), "expected no errors, got {e:?}");
}

#[test]
fn full_valid_spec() {
    expect_clean(json!({
        "hosts": ["reviews.prod.svc.cluster.local", "*.bookinfo.com"],
        "gateways": ["istio-system/ingress", "mesh"],
        "http": [{
            "name": "v2",
            "match": [{"uri": {"prefix": "/api"}, "headers": {"x-user": {"exact": "jason"}, "x-any": {}},
                       "method": {"exact": "GET"}, "port": 8080, "sourceLabels": {"app": "web"},
                       "queryParams": {"q": {"regex": "^a.*"}}, "ignoreUriCase": true,
                       "withoutHeaders": {"x-skip": {"regex": "*"}}, "sourceNamespace": "web"}],
            "route": [
                {"destination": {"host": "reviews", "subset": "v2", "port": {"number": 9080}}, "weight": 75,
                 "headers": {"response": {"remove": ["foo"]}}},
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": 25}
            ],
            "timeout": "5s",
            "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,gateway-error,503", "backoff": "25ms"},
            "fault": {"delay": {"fixedDelay": "1s", "percentage": {"value": 0.5}}},
            "mirror": {"host": "mirror"},
            "mirrorPercentage": {"value": 10},
            "corsPolicy": {"allowOrigins": [{"exact": "https://a.com"}], "allowMethods": ["GET", "POST"],
                           "allowHeaders": ["x-foo", "*"], "maxAge": "24h", "allowCredentials": true,
                           "unmatchedPreflights": "IGNORE"},
            "headers": {"request": {"set": {"x-a": "b", ":authority": "new.host"}, "add": {"x-time": "%START_TIME%"}}},
            "rewrite": {"uri": "/v2"}
        }],
        "exportTo": ["."]
    }));
}

#[test]
fn hosts_and_wildcards() {
    expect_error(
        json!({"hosts": ["bad_host"], "http": [{"route": [{"destination": {"host": "a"}}]}]}),
        "invalid",
    );
    expect_error(
        json!({"hosts": ["*"], "http": [{"route": [{"destination": {"host": "a"}}]}]}),
        "wildcard host * is not allowed for virtual services bound to the mesh gateway",
    );
    expect_error(
        json!({"hosts": ["*"], "gateways": ["gw", "mesh"], "http": [{"route": [{"destination": {"host": "a"}}]}]}),
        "wildcard host * is not allowed",
    );
    expect_clean(
        json!({"hosts": ["*"], "gateways": ["gw"], "http": [{"route": [{"destination": {"host": "a"}}]}]}),
    );
    // IP addresses are accepted as hosts.
    expect_clean(
        json!({"hosts": ["10.0.0.1", "2001:db8::1"], "http": [{"route": [{"destination": {"host": "a"}}]}]}),
    );
    expect_error(
        json!({"hosts": ["*.foo.com", "a.foo.com"], "http": [{"route": [{"destination": {"host": "a"}}]}]}),
        "duplicate hosts in virtual service",
    );
}

#[test]
fn host_matching_helpers() {
    assert!(host_matches("*.foo.com", "*.com"));
    assert!(host_matches("a.foo.com", "*.foo.com"));
    assert!(!host_matches("a.foo.com", "b.foo.com"));
    assert!(host_subset_of("a.foo.com", "*.foo.com"));
    assert!(host_subset_of("*.a.foo.com", "*.foo.com"));
    assert!(!host_subset_of("*.foo.com", "a.foo.com"));
}

#[test]
fn delegate_virtual_service() {
    // No hosts: a delegate. Gateways, TLS and TCP are not allowed there.
    expect_clean(json!({"http": [{"route": [{"destination": {"host": "a"}}]}]}));
    expect_error(
        json!({"gateways": ["gw"], "http": [{"route": [{"destination": {"host": "a"}}]}]}),
        "delegate virtual service must have no gateways specified",
    );
    expect_error(
        json!({"tcp": [{"route": [{"destination": {"host": "a"}}]}]}),
        "delegate virtual service must have no tcp route specified",
    );
    expect_error(
        json!({"http": [{"delegate": {"name": "x"}}]}),
        "delegate HTTP route cannot contain delegate",
    );
}

#[test]
fn root_routes_with_delegate() {
    let root = |extra: Value| {
        let mut r = json!({"delegate": {"name": "productpage", "namespace": "nsa"}});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({"hosts": ["bookinfo.com"], "gateways": ["gw"], "http": [r]})
    };
    expect_clean(root(json!({})));
    expect_error(
        root(json!({"route": [{"destination": {"host": "a"}}]})),
        "must not specify route",
    );
    expect_error(
        root(json!({"redirect": {"uri": "/x"}})),
        "must not specify redirect",
    );
    expect_error(
        json!({"hosts": ["a.com"], "gateways": ["gw"], "http": [{"delegate": {}}]}),
        "delegate name: Required value",
    );
}

#[test]
fn gateways_names() {
    let vs = |gws: Value| json!({"hosts": ["a.com"], "gateways": gws, "http": [{"route": [{"destination": {"host": "a"}}]}]});
    expect_clean(vs(json!(["mesh", "ns/gw", "gw"])));
    expect_error(vs(json!(["Bad_NS/gw"])), "invalid value for namespace");
    expect_error(vs(json!(["ns/"])), "cannot be empty");
    expect_error(vs(json!(["gw_1"])), "is invalid");
    let (e, w) = run(vs(json!(["gw.istio-system"])));
    assert!(e.is_empty(), "{e:?}");
    assert!(
        w.iter().any(|m| m.contains("legacy gatewayName format")),
        "{w:?}"
    );
}

#[test]
fn routes_need_an_action() {
    expect_error(
        json!({"hosts": ["a"], "http": [{"name": "x"}]}),
        "HTTP route, redirect or direct_response is required",
    );
    expect_error(json!({"hosts": ["a"]}), "http, tcp or tls must be provided");
    expect_error(
        with_route(json!({"redirect": {"uri": "/x"}})),
        "both route and redirect",
    );
    expect_error(
        with_route(json!({"directResponse": {"status": 200}})),
        "both route and direct_response",
    );
    expect_error(
        json!({"hosts": ["a"], "http": [{"redirect": {"uri": "/x"}, "rewrite": {"uri": "/y"}}]}),
        "cannot contain both rewrite and redirect",
    );
    expect_error(
        json!({"hosts": ["a"], "http": [{"redirect": {"uri": "/x"}, "fault": {"abort": {"httpStatus": 500}}}]}),
        "both fault and redirect",
    );
    expect_error(
        json!({"hosts": ["a"], "http": [{"directResponse": {"status": 200}, "rewrite": {"uri": "/y"}}]}),
        "both rewrite and direct_response",
    );
}

#[test]
fn destinations_and_weights() {
    let two = |w1: Value, w2: Value| {
        json!({"hosts": ["a"], "http": [{"route": [
            {"destination": {"host": "a", "subset": "v1"}, "weight": w1},
            {"destination": {"host": "a", "subset": "v2"}, "weight": w2}]}]})
    };
    expect_clean(two(json!(90), json!(10)));
    expect_error(two(json!(-5), json!(105)), "weight -5 < 0");
    expect_error(two(json!(0), json!(0)), "total destination weight = 0");
    expect_error(
        json!({"hosts": ["a"], "http": [{"route": [{"weight": 100}]}]}),
        "destination is required",
    );
    expect_error(
        json!({"hosts": ["a"], "http": [{"route": [{"destination": {}}]}]}),
        "destination host: Required value",
    );
    expect_error(
        json!({"hosts": ["a"], "http": [{"route": [{"destination": {"host": "*"}}]}]}),
        "invalid destination host *",
    );
    expect_error(
        json!({"hosts": ["a"], "http": [{"route": [{"destination": {"host": "a", "subset": "V_1"}}]}]}),
        "subset name is invalid",
    );
    expect_error(
        json!({"hosts": ["a"], "http": [{"route": [{"destination": {"host": "a", "port": {"number": 70000}}}]}]}),
        "port must be between 1-65535",
    );
}

#[test]
fn string_matches() {
    let m = |mv: Value| with_route(json!({"match": [mv]}));
    expect_clean(m(json!({"uri": {"prefix": ""}})));
    expect_error(
        m(json!({"uri": {"exact": "/a", "prefix": "/b"}})),
        "more than one of exact, prefix and regex",
    );
    expect_error(m(json!({"uri": {"regex": "(unclosed"}})), "RE2");
    expect_error(
        m(json!({"uri": {"regex": ""}})),
        "regex string match should not be empty",
    );
    expect_error(
        m(json!({"uri": {"regex": "a".repeat(1025)}})),
        "regex is too large",
    );
    expect_error(
        m(json!({"method": {"prefix": ""}})),
        "prefix string match should not be empty",
    );
    expect_error(m(json!({"authority": {"regex": "(a)\\1"}})), "RE2");
    expect_error(
        m(json!({"scheme": {"prefix": ""}})),
        "\"scheme\": prefix string match should not be empty",
    );
    expect_error(
        m(json!({"queryParams": {"q": {"prefix": ""}}})),
        "\"queryParams\"",
    );
    expect_error(
        m(json!({"withoutHeaders": {"x": {"regex": "[z-a]"}}})),
        "RE2",
    );
}

#[test]
fn match_headers_ports_labels() {
    let m = |mv: Value| with_route(json!({"match": [mv]}));
    expect_error(
        m(json!({"headers": {"bad header": {"exact": "x"}}})),
        "is not a valid header name",
    );
    expect_clean(m(json!({"headers": {":authority": {"exact": "x"}}})));
    expect_error(m(json!({"port": 70000})), "port must be between 1-65535");
    expect_error(m(json!({"sourceLabels": {"app": "a*"}})), "wildcard");
    expect_error(
        m(json!({"sourceNamespace": "Bad_NS"})),
        "sourceNamespace match Bad_NS is invalid",
    );
    expect_error(
        m(json!({"gateways": ["a/b/c"]})),
        "invalid value for gateway name",
    );
}

#[test]
fn jwt_claim_routing_only_on_gateways() {
    assert!(is_jwt_claim("@request.auth.claims.groups"));
    assert!(is_jwt_claim("@request.auth.claims[nested][key]"));
    assert!(!is_jwt_claim("@request.auth.claims."));
    let mesh = with_route(
        json!({"match": [{"headers": {"@request.auth.claims.group": {"exact": "admin"}}}]}),
    );
    expect_error(
        mesh,
        "JWT claim based routing (key: @request.auth.claims.group) is only supported for gateway",
    );
    let mut gw = with_route(
        json!({"match": [{"headers": {"@request.auth.claims.group": {"exact": "admin"}}}]}),
    );
    gw["gateways"] = json!(["gw"]);
    expect_clean(gw);
}

#[test]
fn header_operations() {
    let h = |hv: Value| with_route(json!({"headers": hv}));
    expect_error(
        h(json!({"request": {"set": {":path": "/x"}}})),
        "header cannot have \":\" prefix",
    );
    expect_error(
        h(json!({"request": {"remove": ["host"]}})),
        "cannot set Host header",
    );
    expect_error(
        h(json!({"response": {"set": {":status": "200"}}})),
        "header cannot have \":\" prefix",
    );
    expect_error(
        h(json!({"response": {"add": {"": "x"}}})),
        "header name cannot be empty",
    );
    expect_error(
        h(json!({"request": {"set": {"x-a": "100%"}}})),
        "un-escaped %",
    );
    expect_error(
        h(json!({"request": {"set": {"x-a": "%START_TIME"}}})),
        "un-terminated variable",
    );
    expect_error(
        h(json!({"request": {"set": {"x-a": "a\nb"}}})),
        "control characters",
    );
    expect_error(
        with_route(
            json!({"rewrite": {"authority": "a"}, "headers": {"request": {"set": {"host": "b"}}}}),
        ),
        "authority header cannot be set multiple times",
    );
    // Destination-level operations are checked too.
    expect_error(
        json!({"hosts": ["a"], "http": [{"route": [{"destination": {"host": "a"}, "headers": {"request": {"set": {":method": "GET"}}}}]}]}),
        "header cannot have \":\" prefix",
    );
    assert!(header_value("100%%").is_ok());
    assert!(header_value("%REQ(x-foo)% and %UPSTREAM_METADATA([\"a\", \"b\"])%").is_ok());
    assert!(header_value("abc%123").is_err());
}

#[test]
fn retries() {
    let r = |rv: Value| with_route(json!({"retries": rv}));
    expect_clean(r(json!({"attempts": 0})));
    expect_error(r(json!({"attempts": -1})), "attempts cannot be negative");
    expect_error(
        r(json!({"retryOn": "5xx"})),
        "http retry policy configured when attempts are set to 0",
    );
    expect_error(
        r(json!({"attempts": 2, "perTryTimeout": "0.5ms"})),
        "greater than 1ms",
    );
    expect_error(
        r(json!({"attempts": 2, "perTryTimeout": "1.5ms"})),
        "ms precision",
    );
    expect_error(
        r(json!({"attempts": 2, "retryOn": "5xx,bogus"})),
        "\"bogus\" is not a valid retryOn policy",
    );
    expect_error(
        r(json!({"attempts": 2, "retryOn": "5xx, reset"})),
        "\" reset\" is not a valid retryOn policy",
    );
    expect_error(
        r(json!({"attempts": 2, "retryOn": "999"})),
        "\"999\" is not a valid retryOn policy",
    );
    expect_clean(r(
        json!({"attempts": 2, "retryOn": "cancelled,unavailable,429,retriable-status-codes"}),
    ));
    expect_error(
        r(json!({"attempts": 2, "backoff": "0s"})),
        "greater than 1ms",
    );
}

#[test]
fn timeouts() {
    expect_error(with_route(json!({"timeout": "0s"})), "greater than 1ms");
    expect_clean(with_route(json!({"timeout": "1.5s"})));
}

#[test]
fn faults() {
    let f = |fv: Value| with_route(json!({"fault": fv}));
    expect_error(
        f(json!({})),
        "HTTP fault injection must have an abort and/or a delay",
    );
    expect_error(
        f(json!({"abort": {"httpStatus": 700}})),
        "HTTP status 700 is not in range 200-599",
    );
    expect_error(
        f(json!({"abort": {"grpcStatus": "NOPE"}})),
        "gRPC status \"NOPE\" is not supported",
    );
    expect_clean(f(
        json!({"abort": {"grpcStatus": "UNAVAILABLE", "percentage": {"value": 10}}}),
    ));
    expect_error(
        f(json!({"abort": {"http2Error": "CANCEL"}})),
        "HTTP/2 abort fault injection not supported yet",
    );
    expect_error(
        f(json!({"abort": {"httpStatus": 500, "grpcStatus": "INTERNAL"}})),
        "more than one of httpStatus",
    );
    expect_error(
        f(json!({"abort": {"httpStatus": 500, "percentage": {"value": 120}}})),
        "percentage 120 is neither 0.0",
    );
    expect_error(
        f(json!({"abort": {"httpStatus": 500, "percentage": {"value": 0.00001}}})),
        "[0.0001, 100.0]",
    );
    let (e, w) = run(f(json!({"abort": {"percentage": {"value": 10}}})));
    assert!(
        e.is_empty() && w.iter().any(|m| m.contains("error type not set")),
        "{e:?} {w:?}"
    );
    expect_error(
        f(json!({"delay": {"fixedDelay": "0s"}})),
        "greater than 1ms",
    );
    expect_error(
        f(json!({"delay": {"exponentialDelay": "1s"}})),
        "exponentialDelay not supported yet",
    );
    expect_error(
        f(json!({"delay": {"percentage": {"value": 1}}})),
        "delay must set fixedDelay",
    );
    expect_error(
        f(json!({"delay": {"fixedDelay": "1s", "percent": 101}})),
        "percentage 101 is not in range 0..100",
    );
}

#[test]
fn mirrors() {
    expect_error(
        with_route(json!({"mirror": {"host": "m"}, "mirrors": [{"destination": {"host": "n"}}]})),
        "both mirror and mirrors",
    );
    expect_error(
        with_route(json!({"mirror": {"host": "m"}, "mirrorPercentage": {"value": 101}})),
        "mirror_percentage must have a max value of 100",
    );
    expect_error(
        with_route(json!({"mirror": {"host": "m"}, "mirrorPercentage": {"value": -1}})),
        "mirror_percentage must have a min value of 0",
    );
    expect_error(
        with_route(json!({"mirror": {"host": "m"}, "mirrorPercent": 150})),
        "mirror_percent must have a max value of 100",
    );
    let (_, w) = run(with_route(
        json!({"mirror": {"host": "m"}, "mirror_percent": 50}),
    ));
    assert!(
        w.iter()
            .any(|m| m.contains("deprecated setting \"mirrorPercent\"")),
        "{w:?}"
    );
    expect_error(
        with_route(json!({"mirrors": [{"percentage": {"value": 5}}]})),
        "destination is required for mirrors",
    );
    expect_error(
        with_route(
            json!({"mirrors": [{"destination": {"host": "m"}, "percentage": {"value": 500}}]}),
        ),
        "mirror percentage 500",
    );
    expect_error(
        with_route(json!({"mirror": {"subset": "v1"}})),
        "destination host: Required value",
    );
}

#[test]
fn redirects() {
    let r = |rv: Value| json!({"hosts": ["a"], "http": [{"redirect": rv}]});
    expect_clean(r(
        json!({"uri": "/new", "redirectCode": 308, "derivePort": "FROM_REQUEST_PORT", "scheme": "https"}),
    ));
    expect_error(
        r(json!({})),
        "redirect must specify URI, authority, scheme, or port",
    );
    expect_error(
        r(json!({"uri": "/x", "redirectCode": 200})),
        "200 is not a valid redirect code, must be 3xx",
    );
    expect_error(r(json!({"scheme": "ftp"})), "invalid redirect scheme");
    expect_error(r(json!({"port": 70000})), "port must be between 1-65535");
    expect_error(
        r(json!({"port": 8080, "derivePort": "FROM_PROTOCOL_DEFAULT"})),
        "both port and derivePort",
    );
}

#[test]
fn direct_responses() {
    let d = |dv: Value| json!({"hosts": ["a"], "http": [{"directResponse": dv}]});
    expect_clean(d(json!({"status": 503, "body": {"string": "unavailable"}})));
    expect_clean(d(json!({"status": 200, "body": {"bytes": "aGVsbG8="}})));
    expect_error(
        d(json!({"status": 100})),
        "HTTP status 100 is not in range 200-599",
    );
    expect_error(
        d(json!({"body": {"string": "x"}})),
        "status: Required value",
    );
    expect_error(
        d(json!({"status": 200, "body": {"string": "x", "bytes": "eA=="}})),
        "both string and bytes",
    );
    expect_error(
        d(json!({"status": 200, "body": {"bytes": "not base64!"}})),
        "base64",
    );
    expect_error(
        d(json!({"status": 200, "body": {"string": "x".repeat(1024 * 1024 + 1)}})),
        "must be less than 1MB",
    );
    let (_, w) = run(d(
        json!({"status": 200, "body": {"string": "x".repeat(200 * 1024)}}),
    ));
    assert!(
        w.iter().any(|m| m.contains("large direct_responses")),
        "{w:?}"
    );
    assert!(is_base64("") && is_base64("YQ") && is_base64("YWI=") && !is_base64("Y"));
}

#[test]
fn rewrites() {
    let w = |rv: Value| with_route(json!({"rewrite": rv}));
    expect_error(
        w(json!({"uri": "/a", "uriRegexRewrite": {"match": "^/a", "rewrite": "/b"}})),
        "only contain one of URI or UriRegexRewrite",
    );
    expect_error(
        w(json!({})),
        "rewrite must specify at least one of URI, UriRegexRewrite, or authority",
    );
    expect_error(
        w(json!({"uriRegexRewrite": {"match": "^/a"}})),
        "requires both Rewrite and Match",
    );
    expect_error(
        w(json!({"uriRegexRewrite": {"match": "(", "rewrite": "/b"}})),
        "RE2",
    );
    expect_clean(w(
        json!({"uriRegexRewrite": {"match": "^/service/([^/]+)(/.*)$", "rewrite": "\\2/instance/\\1"}}),
    ));
}

#[test]
fn cors_policies() {
    let c = |cv: Value| with_route(json!({"corsPolicy": cv}));
    expect_error(
        c(json!({"allowOrigins": [{"exact": ""}]})),
        "is not a valid match type for CORS allow origins",
    );
    expect_error(c(json!({"allowOrigins": [{"regex": "("}]})), "RE2");
    expect_error(
        c(json!({"allowMethods": ["FETCH"]})),
        "\"FETCH\" is not a supported HTTP method",
    );
    expect_error(
        c(json!({"allowHeaders": ["bad header"]})),
        "is not a valid header name",
    );
    expect_error(
        c(json!({"exposeHeaders": [""]})),
        "header name cannot be empty",
    );
    expect_error(
        c(json!({"maxAge": "1.5s"})),
        "max_age duration is accurate only to seconds precision",
    );
    expect_error(c(json!({"maxAge": "0s"})), "greater than 1ms");
    let (e, w) = run(c(json!({"allowOrigin": ["*"]})));
    assert!(
        e.is_empty() && w.iter().any(|m| m.contains("allowOrigin is deprecated")),
        "{e:?} {w:?}"
    );
}

#[test]
fn tls_routes() {
    let tls = |m: Value, route: Value| json!({"hosts": ["*.bookinfo.com"], "gateways": ["gw"], "tls": [{"match": m, "route": route}]});
    let dest = json!([{"destination": {"host": "login"}}]);
    expect_clean(tls(
        json!([{"sniHosts": ["login.bookinfo.com"], "port": 443}]),
        dest.clone(),
    ));
    expect_error(
        tls(json!([]), dest.clone()),
        "TLS route must have at least one match condition",
    );
    expect_error(
        tls(json!([{"port": 443}]), dest.clone()),
        "TLS match must have at least one SNI host",
    );
    expect_error(
        tls(json!([{"sniHosts": ["a.other.com"]}]), dest.clone()),
        "is not a compatible subset of any of the virtual service hosts",
    );
    expect_error(
        tls(
            json!([{"sniHosts": ["a.bookinfo.com"], "destinationSubnets": ["10.0.0.0/33"]}]),
            dest.clone(),
        ),
        "not a valid CIDR",
    );
    expect_error(
        tls(json!([{"sniHosts": ["a.bookinfo.com"]}]), json!([])),
        "TLS route is required",
    );
    let (_, w) = run(tls(json!([{"sniHosts": ["2001:db8::1"]}]), dest));
    assert!(
        w.iter().any(|m| m.contains("goes against SNI spec")),
        "{w:?}"
    );
}

#[test]
fn tcp_routes() {
    let tcp =
        |m: Value, route: Value| json!({"hosts": ["mongo"], "tcp": [{"match": m, "route": route}]});
    let dest = json!([{"destination": {"host": "mongo", "port": {"number": 5555}}}]);
    expect_clean(tcp(
        json!([{"port": 27017, "destinationSubnets": ["10.0.0.0/8", "10.1.2.3"]}]),
        dest.clone(),
    ));
    expect_error(tcp(json!([]), json!([])), "TCP route is required");
    expect_error(
        tcp(json!([{"destinationSubnets": ["bogus"]}]), dest.clone()),
        "not a valid IP address",
    );
    expect_error(
        tcp(
            json!([{"port": 0}]),
            json!([{"destination": {"host": "a"}}, {"destination": {"host": "b"}}]),
        ),
        "total destination weight = 0",
    );
    let (e, w) = run(tcp(json!([{"sourceSubnet": "10.0.0.0/8"}]), dest));
    assert!(
        e.is_empty() && w.iter().any(|m| m.contains("sourceSubnet")),
        "{e:?} {w:?}"
    );
}

#[test]
fn export_to_is_checked() {
    let mut v = with_route(json!({}));
    v["exportTo"] = json!(["*", "foo"]);
    expect_error(v, "cannot be combined");
}

#[test]
fn unreachable_rules_are_warned() {
    let (e, w) = run(json!({"hosts": ["a"], "http": [
        {"route": [{"destination": {"host": "a"}}]},
        {"match": [{"uri": {"prefix": "/x"}}], "route": [{"destination": {"host": "a"}}]}
    ]}));
    assert!(e.is_empty(), "{e:?}");
    assert!(
        w.iter()
            .any(|m| m.contains("route without matches defined before")),
        "{w:?}"
    );
    let (_, w) = run(json!({"hosts": ["a"], "http": [
        {"match": [{"name": "one", "uri": {"exact": "/x"}}], "route": [{"destination": {"host": "a"}}]},
        {"match": [{"name": "two", "uri": {"exact": "/x"}}], "route": [{"destination": {"host": "b"}}]}
    ]}));
    assert!(
        w.iter()
            .any(|m| m.contains("all matches used by prior rules")),
        "{w:?}"
    );
}

#[test]
fn unknown_fields_and_enums_are_rejected() {
    assert!(serde_json::from_value::<VirtualService>(json!({"host": ["a"]})).is_err());
    let bad = json!({"hosts": ["a"], "http": [{"corsPolicy": {"unmatchedPreflights": "DROP"}}]});
    let err = serde_json::from_value::<VirtualService>(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Unsupported value: \"DROP\""), "{err}");
    let bad = json!({"hosts": ["a"], "http": [{"redirect": {"derivePort": "X"}}]});
    assert!(serde_json::from_value::<VirtualService>(bad).is_err());
}
