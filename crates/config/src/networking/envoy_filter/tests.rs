//! Unit tests for EnvoyFilter validation: one test (or more) per rule.

use serde_json::{json, Value};

use super::EnvoyFilter;
use crate::path::FieldPath;
use crate::validation::{Context, Problems, Severity, Validate};

fn run(v: Value) -> (Vec<String>, Vec<String>) {
    let spec: EnvoyFilter = serde_json::from_value(v).expect("spec decodes");
    let mut p = Problems::new();
    spec.validate(
        &Context::for_test("EnvoyFilter"),
        &FieldPath::spec(),
        &mut p,
    );
    let (mut e, mut w) = (Vec::new(), Vec::new());
    for x in p.into_vec() {
        let line = format!("{}: {}", x.path, x.message);
        match x.severity {
            Severity::Error => e.push(line),
            Severity::Warning => w.push(line),
        }
    }
    (e, w)
}

fn patch(cp: Value) -> Value {
    json!({"configPatches": [cp]})
}

#[track_caller]
fn expect_error(v: Value, fragment: &str) {
    let (e, _) = run(v);
    assert!(
        e.iter().any(|m| m.contains(fragment)),
        "expected an error containing {fragment:?}, got {e:?}"
    );
}

#[track_caller]
fn expect_clean(v: Value) -> Vec<String> {
    let (e, w) = run(v);
    assert!(e.is_empty(), "expected no errors, got {e:?}");
    w
}

fn hcm_listener() -> Value {
    json!({"listener": {"filterChain": {"filter": {"name": "envoy.filters.network.http_connection_manager",
        "subFilter": {"name": "envoy.filters.http.router"}}}}})
}

#[test]
fn every_filter_is_warned_about() {
    let w = expect_clean(json!({}));
    assert!(
        w.iter()
            .any(|m| m.contains("internal implementation details")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|m| m.contains("does not apply EnvoyFilters")),
        "{w:?}"
    );
}

#[test]
fn valid_http_filter_insert() {
    let mut m = hcm_listener();
    m["context"] = json!("SIDECAR_INBOUND");
    m["proxy"] = json!({"proxyVersion": "^1\\.2[0-9].*", "metadata": {"ISTIO_VERSION": "1.24"}});
    expect_clean(json!({
        "workloadSelector": {"labels": {"app": "reviews"}},
        "priority": -1,
        "configPatches": [{"applyTo": "HTTP_FILTER", "match": m, "patch": {"operation": "INSERT_BEFORE", "filterClass": "AUTHZ",
            "value": {"name": "envoy.filters.http.lua", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"}}}}]
    }));
}

#[test]
fn required_parts_of_a_patch() {
    expect_error(
        patch(json!({"patch": {"operation": "REMOVE"}})),
        "Envoy filter: missing applyTo",
    );
    expect_error(
        patch(json!({"applyTo": "INVALID", "patch": {"operation": "REMOVE"}})),
        "missing applyTo",
    );
    expect_error(
        patch(json!({"applyTo": "CLUSTER"})),
        "Envoy filter: missing patch",
    );
    expect_error(
        patch(json!({"applyTo": "CLUSTER", "patch": {}})),
        "Envoy filter: missing patch operation",
    );
    expect_error(
        patch(json!({"applyTo": "CLUSTER", "patch": {"operation": "MERGE"}})),
        "missing patch value for non-remove operation",
    );
    expect_clean(patch(
        json!({"applyTo": "CLUSTER", "patch": {"operation": "REMOVE"}}),
    ));
    let w = expect_clean(patch(
        json!({"applyTo": "CLUSTER", "patch": {"operation": "REMOVE", "value": {"name": "x"}}}),
    ));
    assert!(w.iter().any(|m| m.contains("ignored by REMOVE")), "{w:?}");
    expect_error(
        patch(json!({"applyTo": "CLUSTER", "patch": {"operation": "ADD", "value": "text"}})),
        "must be of type object",
    );
}

#[test]
fn enums_are_checked_when_decoding() {
    let err = serde_json::from_value::<EnvoyFilter>(patch(json!({"applyTo": "SOMETHING"})))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Unsupported value: \"SOMETHING\""), "{err}");
    assert!(
        serde_json::from_value::<EnvoyFilter>(patch(json!({"match": {"context": "SIDECAR"}})))
            .is_err()
    );
    assert!(serde_json::from_value::<EnvoyFilter>(patch(
        json!({"patch": {"operation": "DELETE"}})
    ))
    .is_err());
    assert!(serde_json::from_value::<EnvoyFilter>(json!({"workloadLabels": {"a": "b"}})).is_err());
}

#[test]
fn proxy_version_regex() {
    expect_error(
        patch(
            json!({"applyTo": "CLUSTER", "match": {"proxy": {"proxyVersion": "(1.2"}}, "patch": {"operation": "REMOVE"}}),
        ),
        "Envoy filter: invalid regex for proxy version",
    );
}

#[test]
fn waypoint_matches() {
    expect_clean(patch(
        json!({"applyTo": "CLUSTER", "match": {"context": "WAYPOINT", "waypoint": {}}, "patch": {"operation": "REMOVE"}}),
    ));
    expect_error(
        patch(
            json!({"applyTo": "HTTP_FILTER", "match": {"context": "SIDECAR_INBOUND", "waypoint": {"portNumber": 80}}}),
        ),
        "only support waypointMatch when context is WAYPOINT",
    );
    expect_error(
        patch(
            json!({"applyTo": "HTTP_FILTER", "match": {"context": "WAYPOINT", "listener": {"portNumber": 80}}}),
        ),
        "only support waypointMatch when context is WAYPOINT",
    );
    expect_error(
        patch(
            json!({"applyTo": "HTTP_FILTER", "match": {"context": "WAYPOINT", "waypoint": {"portNumber": 65536}}}),
        ),
        "Invalid value: \"integer\": port must be between 1-65535",
    );
    expect_error(
        patch(
            json!({"applyTo": "HTTP_FILTER", "match": {"context": "WAYPOINT", "waypoint": {"portNumber": 0}}, "patch": {"operation": "REMOVE"}}),
        ),
        "port must be between 1-65535",
    );
}

#[test]
fn at_most_one_object_match() {
    expect_error(
        patch(
            json!({"applyTo": "CLUSTER", "match": {"cluster": {}, "listener": {}}, "patch": {"operation": "REMOVE"}}),
        ),
        "set at most one",
    );
}

#[test]
fn apply_to_and_match_line_up() {
    expect_error(
        patch(
            json!({"applyTo": "HTTP_FILTER", "match": {"cluster": {"name": "x"}}, "patch": {"operation": "REMOVE"}}),
        ),
        "applyTo for listener class objects cannot have non listener match",
    );
    expect_error(
        patch(
            json!({"applyTo": "HTTP_ROUTE", "match": {"listener": {}}, "patch": {"operation": "MERGE", "value": {}}}),
        ),
        "applyTo for http route class objects cannot have non route configuration match",
    );
    expect_error(
        patch(
            json!({"applyTo": "CLUSTER", "match": {"routeConfiguration": {}}, "patch": {"operation": "REMOVE"}}),
        ),
        "applyTo for cluster class objects cannot have non cluster match",
    );
}

#[test]
fn filter_and_sub_filter_matches() {
    let lf = |apply: &str, filter: Value| {
        patch(
            json!({"applyTo": apply, "match": {"listener": {"filterChain": {"filter": filter}}}, "patch": {"operation": "REMOVE"}}),
        )
    };
    expect_error(
        lf("NETWORK_FILTER", json!({})),
        "filter match has no name to match on",
    );
    expect_error(
        lf(
            "NETWORK_FILTER",
            json!({"name": "envoy.filters.network.http_connection_manager", "subFilter": {"name": "x"}}),
        ),
        "subfilter match can be used with applyTo HTTP_FILTER only",
    );
    expect_error(
        lf(
            "HTTP_FILTER",
            json!({"name": "envoy.filters.network.tcp_proxy", "subFilter": {"name": "x"}}),
        ),
        "subfilter match requires filter match with envoy.filters.network.http_connection_manager",
    );
    expect_error(
        lf(
            "HTTP_FILTER",
            json!({"name": "envoy.filters.network.http_connection_manager", "subFilter": {}}),
        ),
        "subfilter match has no name to match on",
    );
    let w = expect_clean(lf(
        "LISTENER",
        json!({"name": "envoy.filters.network.tcp_proxy"}),
    ));
    assert!(
        w.iter()
            .any(|m| m.contains("filter match has no effect when used with LISTENER")),
        "{w:?}"
    );
    let w = expect_clean(lf(
        "HTTP_FILTER",
        json!({"name": "envoy.http_connection_manager", "subFilter": {"name": "envoy.router"}}),
    ));
    assert!(
        w.iter()
            .filter(|m| m.contains("using deprecated filter name"))
            .count()
            == 2,
        "{w:?}"
    );
}

#[test]
fn patch_values() {
    expect_error(
        patch(
            json!({"applyTo": "HTTP_FILTER", "patch": {"operation": "ADD", "value": {"name": "x",
            "typed_config": {"@type": "type.googleapis.com/envoy.config.filter.http.lua.v2.Lua"}}}}),
        ),
        "referenced type unknown (hint: try using the v3 XDS API)",
    );
    expect_error(
        patch(
            json!({"applyTo": "CLUSTER", "patch": {"operation": "ADD", "value": {"transport_socket": {"typed_config": {"@type": "UpstreamTlsContext"}}}}}),
        ),
        "invalid type URL",
    );
    let (_, w) = run(patch(
        json!({"applyTo": "HTTP_FILTER", "patch": {"operation": "ADD", "value": {"name": "envoy.filters.http.cors"}}}),
    ));
    assert!(
        w.iter().any(|m| m.contains("without typed_config")),
        "{w:?}"
    );
}

#[test]
fn ineffective_combinations_warn() {
    let (_, w) = run(patch(
        json!({"applyTo": "ROUTE_CONFIGURATION", "patch": {"operation": "ADD", "value": {}}}),
    ));
    assert!(
        w.iter()
            .any(|m| m.contains("operation ADD has no effect on ROUTE_CONFIGURATION")),
        "{w:?}"
    );
    let (_, w) = run(patch(
        json!({"applyTo": "CLUSTER", "patch": {"operation": "MERGE", "value": {}, "filterClass": "STATS"}}),
    ));
    assert!(
        w.iter()
            .any(|m| m.contains("filterClass only applies to HTTP_FILTER")),
        "{w:?}"
    );
    let (_, w) = run(patch(
        json!({"applyTo": "LISTENER", "match": {"listener": {"portNumber": 70000, "portName": "http"}}, "patch": {"operation": "MERGE", "value": {}}}),
    ));
    assert!(w.iter().any(|m| m.contains("can never match")), "{w:?}");
    assert!(
        w.iter()
            .any(|m| m.contains("portName matching is not implemented")),
        "{w:?}"
    );
    let (_, w) = run(patch(
        json!({"applyTo": "VIRTUAL_HOST", "match": {"routeConfiguration": {"gateway": "gw"}}, "patch": {"operation": "MERGE", "value": {}}}),
    ));
    assert!(w.iter().any(|m| m.contains("namespace/name")), "{w:?}");
}

#[test]
fn selectors_and_target_refs() {
    let (e, w) = run(json!({"workloadSelector": {}}));
    assert!(
        e.is_empty()
            && w.iter()
                .any(|m| m.contains("will be applied to all services in namespace")),
        "{e:?} {w:?}"
    );
    expect_error(
        json!({"workloadSelector": {"labels": {"app": "a*"}}}),
        "wildcard",
    );
    expect_error(
        json!({"workloadSelector": {"labels": {"": "a"}}}),
        "key must not be empty",
    );
    expect_error(
        json!({"workloadSelector": {"labels": {"app": "a"}}, "targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]}),
        "only one of targetRefs or workloadSelector can be set",
    );
    expect_clean(
        json!({"targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]}),
    );
    expect_error(
        json!({"targetRefs": [{"kind": "Gateway", "name": "gw", "namespace": "other"}]}),
        "cross namespace referencing is not currently supported",
    );
    expect_error(
        json!({"targetRefs": [{"name": "gw"}]}),
        "kind: Required value",
    );
    expect_error(
        json!({"targetRefs": [{"kind": "Service"}]}),
        "name: Required value",
    );
    let many: Vec<Value> = (0..17)
        .map(|i| json!({"kind": "Service", "name": format!("s{i}")}))
        .collect();
    expect_error(json!({"targetRefs": many}), "must have at most 16 items");
}
