use serde_json::json;

use super::super::AuthorizationPolicy;
use crate::validation::{problems_of, Context};

fn spec(v: serde_json::Value) -> AuthorizationPolicy {
    serde_json::from_value(v).unwrap()
}

fn problems(v: serde_json::Value) -> Vec<String> {
    problems_of(&spec(v), &Context::for_test("AuthorizationPolicy"))
}

fn has(v: serde_json::Value, fragment: &str) {
    let got = problems(v);
    assert!(
        got.iter().any(|m| m.contains(fragment)),
        "expected {fragment:?} in {got:?}"
    );
}

fn clean(v: serde_json::Value) {
    let got = problems(v);
    assert!(got.is_empty(), "expected no problems, got {got:?}");
}

#[test]
fn empty_and_simple_policies_are_valid() {
    clean(json!({}));
    clean(json!({"action": "ALLOW", "rules": [{}]}));
    clean(json!({"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]}]}));
    clean(json!({"rules": [{"from": [{"source": {"serviceAccounts": ["baz/sa", "sa"]}}]}]}));
}

#[test]
fn action_and_provider() {
    let e = serde_json::from_value::<AuthorizationPolicy>(json!({"action": "BLOCK"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("Unsupported value: \"BLOCK\""), "{e}");
    has(json!({"action": "DENY"}), "DENY action without `rules`");
    has(
        json!({"action": "CUSTOM", "provider": {"name": "x"}}),
        "CUSTOM action without `rules`",
    );
    has(
        json!({"action": "CUSTOM", "rules": [{}]}),
        "`provider.name` must not be empty",
    );
    has(
        json!({"action": "ALLOW", "provider": {"name": "x"}}),
        "`provider` must not be with non CUSTOM action",
    );
    clean(
        json!({"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{"to": [{"operation": {"paths": ["/admin/*"]}}]}]}),
    );
    has(
        json!({"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{"from": [{"source": {"principals": ["a"]}}]}]}),
        "principals is currently not supported with CUSTOM action",
    );
    has(
        json!({"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{"when": [{"key": "request.auth.claims[iss]", "values": ["a"]}]}]}),
        "is currently not supported with CUSTOM action",
    );
}

#[test]
fn sources_and_operations() {
    has(
        json!({"rules": [{"from": [{}]}]}),
        "`from.source` must not be nil",
    );
    has(
        json!({"rules": [{"from": [{"source": {}}]}]}),
        "`from.source` must not be empty",
    );
    has(
        json!({"rules": [{"to": [{}]}]}),
        "`to.operation` must not be nil",
    );
    has(
        json!({"rules": [{"to": [{"operation": {}}]}]}),
        "`to.operation` must not be empty",
    );
    has(
        json!({"rules": [{"from": [{"source": {"serviceAccounts": ["a/b"], "namespaces": ["a"]}}]}]}),
        "Cannot set serviceAccounts with namespaces or principals",
    );
    has(
        json!({"rules": [{"from": [{"source": {"notServiceAccounts": ["a/b"], "notPrincipals": ["a"]}}]}]}),
        "Cannot set serviceAccounts with namespaces or principals",
    );
    has(
        json!({"rules": [{"from": [{"source": {"serviceAccounts": ["a/b/c"]}}]}]}),
        "invalid service account",
    );
    has(
        json!({"rules": [{"from": [{"source": {"principals": [""]}}]}]}),
        "empty value not allowed, found in principals",
    );
    has(
        json!({"rules": [{"from": [{"source": {"ipBlocks": ["1.2.3.4/40"]}}]}]}),
        "not a valid CIDR",
    );
    has(
        json!({"rules": [{"from": [{"source": {"notRemoteIpBlocks": ["abc"]}}]}]}),
        "not a valid IP",
    );
    has(
        json!({"rules": [{"to": [{"operation": {"ports": ["http"]}}]}]}),
        "bad port (http)",
    );
    has(
        json!({"rules": [{"to": [{"operation": {"notPorts": ["70000"]}}]}]}),
        "bad port (70000)",
    );
    has(
        json!({"rules": [{"to": [{"operation": {"paths": ["/{name}/x/{*}"]}}]}]}),
        "invalid or unsupported path template",
    );
    has(
        json!({"rules": [{"to": [{"operation": {"notPaths": ["/a/*/{**}"]}}]}]}),
        "invalid or unsupported path template",
    );
    has(
        json!({"rules": [{"to": [{"operation": {"methods": [""]}}]}]}),
        "empty value not allowed, found in methods",
    );
    // Warnings, not errors.
    has(
        json!({"rules": [{"to": [{"operation": {"paths": ["api/v1"]}}]}]}),
        "does not start with '/'",
    );
    has(
        json!({"rules": [{"from": [{"source": {"principals": ["a*b"]}}]}]}),
        "matched literally",
    );
}

#[test]
fn conditions() {
    has(
        json!({"rules": [{"when": [{"values": ["a"]}]}]}),
        "key: Required value",
    );
    has(
        json!({"rules": [{"when": [{"key": "", "values": ["a"]}]}]}),
        "`key` must not be empty",
    );
    has(
        json!({"rules": [{"when": [{"key": "source.ip"}]}]}),
        "at least one of `values` or `notValues`",
    );
    has(
        json!({"rules": [{"when": [{"key": "source.ip", "values": ["x"]}]}]}),
        "invalid `value` for `key` source.ip",
    );
    has(
        json!({"rules": [{"when": [{"key": "destination.port", "notValues": ["x"]}]}]}),
        "invalid `notValue` for `key` destination.port",
    );
    has(
        json!({"rules": [{"when": [{"key": "request.headers", "values": ["x"]}]}]}),
        "should have format a[b]",
    );
    has(
        json!({"rules": [{"when": [{"key": "request.headers[]", "values": ["x"]}]}]}),
        "should have format a[b]",
    );
    has(
        json!({"rules": [{"when": [{"key": "foo.bar", "values": ["x"]}]}]}),
        "unknown attribute: foo.bar",
    );
    has(
        json!({"rules": [{"when": [{"key": "destination.namespace", "values": ["x"]}]}]}),
        "replaced by the metadata.namespace",
    );
    has(
        json!({"rules": [{"when": [{"key": "destination.labels[app]", "values": ["x"]}]}]}),
        "replaced by the workload selector",
    );
    has(
        json!({"rules": [{"when": [{"key": "destination.user", "values": ["x"]}]}]}),
        "deprecated attribute",
    );
    has(
        json!({"rules": [{"when": [{"key": "connection.sni", "values": [""]}]}]}),
        "empty value not allowed",
    );
    clean(json!({"rules": [{"when": [
        {"key": "request.auth.claims[a][b]", "values": ["x"]},
        {"key": "experimental.envoy.filters.a.b[c]", "notValues": ["x"]},
        {"key": "destination.port", "values": ["80"]},
        {"key": "remote.ip", "values": ["10.0.0.0/8"]},
        {"key": "source.serviceAccount", "values": ["ns/sa"]}
    ]}]}));
}

#[test]
fn deny_with_only_http_attributes_warns() {
    has(
        json!({"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]}),
        "will deny all traffic to TCP ports",
    );
    clean(
        json!({"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["GET"], "ports": ["80"]}}]}]}),
    );
}

#[test]
fn null_rules_are_rejected_when_decoding() {
    let e = serde_json::from_value::<AuthorizationPolicy>(json!({"rules": [{"from": [null]}]}))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("spec.rules[0].from[0] in body must be of type object"),
        "{e}"
    );
}

#[test]
fn attachment_is_checked() {
    has(
        json!({"selector": {"matchLabels": {"a": "b"}}, "targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]}),
        "only one of targetRefs or selector can be set",
    );
    clean(
        json!({"targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]}),
    );
    has(
        json!({"targetRef": {"kind": "Service", "name": "s", "namespace": "other"}}),
        "cross namespace referencing",
    );
}
