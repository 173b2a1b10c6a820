//! Unit tests of MeshConfig validation, defaults and loading.

use super::*;
use crate::validation::problems_of;
use serde_json::json;

fn problems(v: serde_json::Value) -> Vec<String> {
    let mc: MeshConfig = serde_json::from_value(v).expect("decodes");
    let mut p = Problems::new();
    mc.validate(&Context::for_test("MeshConfig"), &FieldPath::root(), &mut p);
    p.into_vec()
        .into_iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect()
}

fn has(v: serde_json::Value, fragment: &str) {
    let got = problems(v);
    assert!(
        got.iter().any(|p| p.contains(fragment)),
        "expected {fragment:?} in {got:?}"
    );
}

fn clean(v: serde_json::Value) {
    let got = problems(v);
    assert!(got.is_empty(), "unexpected problems {got:?}");
}

#[test]
fn seed_snippet_and_empty_are_valid() {
    clean(json!({}));
    clean(json!({"accessLogEncoding": "JSON", "accessLogFile": "/dev/stdout"}));
    let defaults = MeshConfig::istio_defaults();
    let got = problems_of(&defaults, &Context::for_test("MeshConfig"));
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn defaults_and_round_trip() {
    let mc = MeshConfig::default();
    assert_eq!(mc.root_namespace(), "istio-system");
    assert_eq!(mc.trust_domain(), "cluster.local");
    assert_eq!(mc.connect_timeout(), StdDuration::from_secs(10));
    assert!(mc.enable_auto_mtls() && mc.enable_tracing() && mc.enable_prometheus_merge());
    assert_eq!(
        mc.access_log_encoding(),
        super::super::AccessLogEncoding::Text
    );
    assert_eq!(
        mc.outbound_traffic_policy_mode(),
        OutboundTrafficPolicyMode::AllowAny
    );
    assert_eq!(mc.dns_refresh_rate(), StdDuration::from_secs(60));
    assert_eq!(mc.ingress_class(), "istio");
    assert_eq!(mc.ingress_service(), "istio-ingressgateway");
    assert_eq!(
        mc.default_config().drain_duration(),
        StdDuration::from_secs(45)
    );
    assert_eq!(mc.default_service_export_to(), vec!["*".to_string()]);
    assert!(mc.locality_lb_enabled());
    assert_eq!(serde_json::to_value(&mc).unwrap(), json!({}));
    let written = json!({"accessLogEncoding": "JSON", "accessLogFile": "/dev/stdout",
                          "defaultConfig": {"holdApplicationUntilProxyStarts": true}});
    let mc: MeshConfig = serde_json::from_value(written.clone()).unwrap();
    assert_eq!(serde_json::to_value(&mc).unwrap(), written);
}

#[test]
fn effective_merges_like_istiod() {
    let mc: MeshConfig = serde_json::from_value(json!({
        "accessLogFile": "/dev/stdout",
        "defaultConfig": {"proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}},
        "extensionProviders": [
            {"name": "envoy", "envoyFileAccessLog": {"path": "/dev/stderr"}},
            {"name": "otel", "opentelemetry": {"service": "otel.observability.svc.cluster.local", "port": 4317}}
        ],
        "trustDomainAliases": ["b", "a", "b"]
    }))
    .unwrap();
    let e = mc.effective();
    assert_eq!(e.access_log_file.as_deref(), Some("/dev/stdout"));
    assert_eq!(e.root_namespace.as_deref(), Some("istio-system"));
    let pc = e.default_config.as_ref().unwrap();
    assert_eq!(pc.drain_duration(), StdDuration::from_secs(45));
    assert_eq!(pc.proxy_metadata["ISTIO_META_DNS_CAPTURE"], "true");
    let names: Vec<_> = e
        .extension_providers
        .iter()
        .map(|p| p.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["prometheus", "stackdriver", "envoy", "otel"]);
    assert_eq!(
        e.extension_providers[2]
            .envoy_file_access_log
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/dev/stderr")
    );
    assert_eq!(e.trust_domain_aliases, ["a", "b"]);
}

#[test]
fn snake_case_and_mesh_mtls_names() {
    let mc: MeshConfig = serde_json::from_value(json!({
        "access_log_file": "/dev/stdout",
        "meshMTLS": {"minProtocolVersion": "TLSV1_3"},
        "serviceSettings": [{"settings": {"cluster_local": true}, "hosts": ["*.foo.svc.cluster.local"]}]
    }))
    .unwrap();
    assert_eq!(mc.access_log_file(), "/dev/stdout");
    assert!(mc.mesh_mtls.is_some());
    let v = serde_json::to_value(&mc).unwrap();
    assert!(v.get("meshMTLS").is_some() && v.get("accessLogFile").is_some());
}

#[test]
fn top_level_rules() {
    has(
        json!({"proxyListenPort": 0}),
        "port must be between 1-65535",
    );
    has(
        json!({"proxyInboundListenPort": 70000}),
        "port must be between 1-65535",
    );
    has(
        json!({"proxyHttpPort": 70000}),
        "port must be between 1-65535",
    );
    has(json!({"connectTimeout": "0s"}), "greater than 1ms");
    has(json!({"connectTimeout": "2h"}), "<1h");
    has(
        json!({"protocolDetectionTimeout": "0.0001s"}),
        "ms precision",
    );
    has(json!({"dnsRefreshRate": "0s"}), "greater than 1ms");
    has(json!({"trustDomain": ""}), "empty domain name");
    has(json!({"trustDomain": "bad_domain"}), "trust domain name");
    has(
        json!({"trustDomainAliases": ["ok.local", "-bad"]}),
        "trustDomainAliases[1]",
    );
    has(
        json!({"rootNamespace": "Istio_System"}),
        "not a valid namespace",
    );
    has(
        json!({"defaultServiceExportTo": ["*", "foo"]}),
        "cannot be combined",
    );
    has(
        json!({"defaultVirtualServiceExportTo": ["Bad"]}),
        "exportTo",
    );
    has(json!({"ingressSelector": "bad*"}), "ingressSelector");
    has(
        json!({"meshNetworks": {"networks": {}}}),
        "not a MeshConfig field",
    );
    has(json!({"tcpKeepalive": {"time": "0s"}}), "greater than 1ms");
    has(
        json!({"defaultConfig": {"drainDuration": "0s"}}),
        "defaultConfig.drainDuration",
    );
    has(json!({"thriftConfig": {}}), "removed");
}

#[test]
fn provider_rules() {
    has(
        json!({"extensionProviders": [{"name": "a", "prometheus": {}}, {"name": "a", "prometheus": {}}]}),
        "duplicate extension provider name a",
    );
    has(
        json!({"extensionProviders": [{"prometheus": {}}]}),
        "empty extension provider name",
    );
    has(
        json!({"extensionProviders": [{"name": "x"}]}),
        "has no provider",
    );
    has(
        json!({"extensionProviders": [{"name": "x", "prometheus": {}, "stackdriver": {}}]}),
        "set exactly one",
    );
    has(
        json!({"extensionProviders": [{"name": "z", "zipkin": {"service": "zipkin.istio-system.svc.cluster.local", "port": 0}}]}),
        "extensionProviders[0].zipkin.port: port must be between 1-65535",
    );
    has(
        json!({"extensionProviders": [{"name": "z", "zipkin": {"service": "bad_host", "port": 9411}}]}),
        "invalid service fmt",
    );
    has(
        json!({"extensionProviders": [{"name": "z", "zipkin": {"service": "ns/short", "port": 9411}}]}),
        "short names",
    );
    has(
        json!({"extensionProviders": [{"name": "a", "envoyExtAuthzHttp": {"service": "authz.foo.svc.cluster.local", "port": 80, "pathPrefix": "check"}}]}),
        "pathPrefix should begin with `/`",
    );
    has(
        json!({"extensionProviders": [{"name": "a", "envoyExtAuthzGrpc": {"service": "authz.foo.svc.cluster.local", "port": 80, "statusOnError": "abc"}}]}),
        "invalid statusOnError",
    );
    has(
        json!({"extensionProviders": [{"name": "l", "lightstep": {"service": "ls.foo.svc.cluster.local", "port": 8080}}]}),
        "access token is required",
    );
    has(
        json!({"extensionProviders": [{"name": "o", "opentelemetry": {"service": "otel.foo.svc.cluster.local", "port": 4317, "grpc": {}, "http": {"path": "/v1/traces"}}}]}),
        "cannot specify both grpc and http",
    );
    has(
        json!({"extensionProviders": [{"name": "o", "opentelemetry": {"service": "otel.foo.svc.cluster.local", "port": 4317, "http": {}}}]}),
        "http.path",
    );
    has(
        json!({"extensionProviders": [{"name": "f", "envoyFileAccessLog": {"logFormat": {"text": "x", "labels": {}}}}]}),
        "set at most one",
    );
    clean(json!({"extensionProviders": [
        {"name": "f", "envoyFileAccessLog": {"path": "/dev/stdout", "logFormat": {"labels": {}}}},
        {"name": "ip", "envoyHttpAls": {"service": "10.0.0.1", "port": 9000}},
        {"name": "ns", "skywalking": {"service": "obs/skywalking.example.com", "port": 11800}}
    ]}));
}

#[test]
fn default_provider_references() {
    clean(
        json!({"defaultProviders": {"metrics": ["prometheus"], "accessLogging": ["envoy"], "tracing": ["stackdriver"]}}),
    );
    has(
        json!({"defaultProviders": {"tracing": ["zipkin"]}}),
        "default tracing provider \"zipkin\" is not defined",
    );
    clean(json!({
        "extensionProviders": [{"name": "zipkin", "zipkin": {"service": "zipkin.istio-system.svc.cluster.local", "port": 9411}}],
        "defaultProviders": {"tracing": ["zipkin"]}
    }));
    has(
        json!({"defaultProviders": {"tracing": ["prometheus"]}}),
        "cannot be used for tracing",
    );
}

#[test]
fn security_rules() {
    has(
        json!({"caCertificates": [{}]}),
        "needs pem or spiffeBundleUrl",
    );
    has(
        json!({"caCertificates": [{"pem": "x", "spiffeBundleUrl": "https://a"}]}),
        "exactly one",
    );
    has(
        json!({"caCertificates": [{"pem": "not pem"}]}),
        "PEM certificates",
    );
    has(
        json!({"caCertificates": [{"spiffeBundleUrl": "http://x"}]}),
        "https://",
    );
    has(
        json!({"meshMTLS": {"ecdhCurves": ["P-256"]}}),
        "mesh TLS does not support ECDH curves",
    );
    has(
        json!({"tlsDefaults": {"ecdhCurves": ["P-999"]}}),
        "unrecognized ECDH curve",
    );
    has(
        json!({"tlsDefaults": {"ecdhCurves": ["P-256", "P-256"]}}),
        "duplicate ECDH curve",
    );
    has(json!({"compliancePolicy": "fips"}), "Unsupported value");
    has(json!({"ca": {}}), "ca.address");
    has(json!({"ca": {"address": "ca"}}), "invalid CA address");
    has(
        json!({"ca": {"address": "ca:1", "requestTimeout": "0s"}}),
        "greater than 1ms",
    );
    has(json!({"verifyCertificateAtClient": true}), "deprecated");
    has(
        json!({"certificates": [{"dnsNames": ["bad_name"]}]}),
        "dnsNames[0]",
    );
}

#[test]
fn traffic_rules() {
    has(
        json!({"serviceSettings": [{"hosts": ["foo.*.com"]}]}),
        "serviceSettings[0], host",
    );
    has(
        json!({"discoverySelectors": [{"matchExpressions": [{"key": "app", "operator": "In"}]}]}),
        "values: Required value",
    );
    has(
        json!({"discoverySelectors": [{"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["a"]}]}]}),
        "Forbidden",
    );
    has(
        json!({"discoverySelectors": [{"matchLabels": {"bad key": "x"}}]}),
        "label key",
    );
    has(
        json!({"discoverySelectors": [{"matchExpressions": [{"operator": "Exists"}]}]}),
        "key: Required",
    );
    has(
        json!({"serviceScopeConfigs": [{"scope": "GLOBAL"}]}),
        "needs namespaceSelector",
    );
    has(json!({"configSources": [{}]}), "address: Required value");
    has(
        json!({"defaultHttpRetryPolicy": {"attempts": -1}}),
        "cannot be negative",
    );
    has(
        json!({"defaultHttpRetryPolicy": {"retryOn": "5xx,bogus"}}),
        "\"bogus\" is not a valid retryOn",
    );
    has(
        json!({"defaultHttpRetryPolicy": {"perTryTimeout": "1s"}}),
        "not applied",
    );
    has(
        json!({"accessLogEncoding": "JSON", "accessLogFormat": "[%START_TIME%]"}),
        "JSON object",
    );
    clean(json!({"defaultHttpRetryPolicy": {"attempts": 3, "retryOn": "5xx,503,gateway-error"}}));
    clean(json!({
        "discoverySelectors": [
            {"matchLabels": {"env": "prod"}},
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["cassandra", "spark"]}]}
        ],
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        "serviceScopeConfigs": [{"servicesSelector": {"matchLabels": {"istio.io/global": "true"}}, "scope": "GLOBAL"}]
    }));
}

/// The seed's edit of `kubectl -n istio-system edit configmap istio`.
const SEED_CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio\n  \
    namespace: istio-system\ndata:\n  mesh: |-\n    accessLogEncoding: JSON\n    \
    accessLogFile: /dev/stdout\n";

#[test]
fn seed_configmap_loads_as_mesh_config() {
    let loaded = crate::load_str("istio.yaml", SEED_CONFIGMAP, &Default::default());
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.mesh_configs.len(), 1);
    let mc = &loaded.mesh_configs[0].1;
    assert_eq!(
        mc.access_log_encoding(),
        super::super::AccessLogEncoding::Json
    );
    assert_eq!(mc.access_log_file(), "/dev/stdout");
    assert_eq!(mc.root_namespace(), "istio-system");
}

#[test]
fn errors_in_mesh_text_point_at_the_configmap_line() {
    let cases = [
        // (text, expected line, fragment)
        (
            "data:\n  mesh: |-\n    accessLogFile: /dev/stdout\n    defaultConfig:\n      drainDuration: 0s\n",
            9,
            "data[mesh].defaultConfig.drainDuration",
        ),
        (
            "data:\n  mesh: |\n\n    # comment\n    accessLogEncoding: XML\n",
            9,
            "Unsupported value",
        ),
        (
            "data:\n  mesh: \"accessLogEncoding: XML\"\n",
            6,
            "Unsupported value",
        ),
        (
            "data:\n  mesh: |-\n    accessLogFile: /dev/stdout\n    bogusField: 1\n",
            8,
            "unknown field \"bogusField\"",
        ),
    ];
    for (data, line, fragment) in cases {
        let text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: istio\n{data}");
        let loaded = crate::load_str("cm.yaml", &text, &Default::default());
        let d = loaded
            .diagnostics
            .iter()
            .find(|d| d.to_string().contains(fragment))
            .unwrap_or_else(|| panic!("no {fragment:?} in {:?}", loaded.diagnostics));
        assert_eq!(d.line, line, "{text}\n{d}");
    }
}

#[test]
fn bare_mesh_config_document_is_read() {
    let loaded = crate::load_str(
        "mesh.yaml",
        "# a MeshConfig file\naccessLogFile: /dev/stdout\nconnectTimeout: 0s\n",
        &Default::default(),
    );
    assert_eq!(loaded.error_count(), 1);
    let d = &loaded.diagnostics[0];
    assert_eq!(d.line, 3);
    assert!(d.to_string().contains("connectTimeout"), "{d}");
}

#[test]
fn enum_values_are_checked_when_decoding() {
    for (field, value) in [
        ("accessLogEncoding", json!("XML")),
        ("outboundTrafficPolicy", json!({"mode": "DENY"})),
        ("h2UpgradePolicy", json!("ALWAYS")),
    ] {
        let err = serde_json::from_value::<MeshConfig>(json!({ field: value }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Unsupported value"), "{field}: {err}");
    }
}
