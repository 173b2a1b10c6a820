//! Unit tests for DestinationRule validation: one test per rule family.

use serde_json::{json, Value};

use super::*;
use crate::validation::{problems_of, Severity};

fn spec(v: Value) -> DestinationRule {
    serde_json::from_value(v).expect("decodes")
}

/// Errors only, as `path: message` lines.
fn errors(v: Value) -> Vec<String> {
    let dr = spec(v);
    let mut p = Problems::new();
    dr.validate(
        &Context::for_test("DestinationRule"),
        &FieldPath::spec(),
        &mut p,
    );
    p.into_vec()
        .into_iter()
        .filter(|x| x.severity == Severity::Error)
        .map(|x| format!("{}: {}", x.path, x.message))
        .collect()
}

fn warnings(v: Value) -> Vec<String> {
    let dr = spec(v);
    let mut p = Problems::new();
    dr.validate(
        &Context::for_test("DestinationRule"),
        &FieldPath::spec(),
        &mut p,
    );
    p.into_vec()
        .into_iter()
        .filter(|x| x.severity == Severity::Warning)
        .map(|x| format!("{}: {}", x.path, x.message))
        .collect()
}

fn has(v: &[String], frag: &str) -> bool {
    v.iter().any(|s| s.contains(frag))
}

fn with_policy(tp: Value) -> Value {
    json!({"host": "reviews.prod.svc.cluster.local", "trafficPolicy": tp})
}

fn with_lb(lb: Value) -> Value {
    with_policy(json!({"loadBalancer": lb}))
}

#[test]
fn a_full_rule_is_valid() {
    let v = json!({
        "host": "reviews.prod.svc.cluster.local",
        "exportTo": ["."],
        "workloadSelector": {"matchLabels": {"app": "ratings"}},
        "trafficPolicy": {
            "loadBalancer": {"simple": "ROUND_ROBIN", "localityLbSetting": {"distribute": [{"from": "us-west/zone1/*", "to": {"us-west/zone1/*": 80, "us-west/zone2/*": 20}}]},
                             "warmup": {"duration": "300s", "minimumPercent": 5.0, "aggression": 5.0}},
            "connectionPool": {"tcp": {"maxConnections": 100, "connectTimeout": "30ms", "tcpKeepalive": {"probes": 3, "time": "7200s", "interval": "75s"},
                                       "maxConnectionDuration": "1h", "idleTimeout": "1h"},
                               "http": {"http1MaxPendingRequests": 1, "http2MaxRequests": 1000, "maxRequestsPerConnection": 10, "maxRetries": 3,
                                        "idleTimeout": "10s", "h2UpgradePolicy": "UPGRADE", "maxConcurrentStreams": 100,
                                        "http2KeepAlive": {"interval": "30s", "timeout": "5s"}}},
            "outlierDetection": {"consecutive5xxErrors": 7, "consecutiveGatewayErrors": 3, "interval": "5m", "baseEjectionTime": "15m",
                                 "maxEjectionPercent": 100, "minHealthPercent": 0, "splitExternalLocalOriginErrors": true,
                                 "consecutiveLocalOriginFailures": 2, "outlierDetectionHttpErrorCodes": [429, 503]},
            "tls": {"mode": "SIMPLE", "sni": "reviews.example.com", "subjectAltNames": ["spiffe://x"], "caCertificates": "/etc/ca.pem"},
            "portLevelSettings": [{"port": {"number": 9080}, "loadBalancer": {"consistentHash": {"httpCookie": {"name": "user", "ttl": "0s", "path": "/",
                                   "attributes": [{"name": "SameSite", "value": "Strict"}]}, "ringHash": {"minimumRingSize": 1024}}}}],
            "retryBudget": {"percent": 25.0, "minRetryConcurrency": 3, "budgetInterval": "10s"},
            "proxyProtocol": {"version": "V2"}
        },
        "subsets": [{"name": "v1", "labels": {"version": "v1"}, "trafficPolicy": {"tunnel": {"protocol": "CONNECT", "targetHost": "10.0.0.1", "targetPort": 8443}}}]
    });
    let e = errors(v.clone());
    assert!(e.is_empty(), "{e:?}");
    let w = warnings(v);
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn host_is_required_and_a_wildcard_domain() {
    assert!(has(&errors(json!({})), "spec.host: Required value"));
    assert!(has(&errors(json!({"host": "foo.*.com"})), "spec.host"));
    assert!(errors(json!({"host": "*.example.com"})).is_empty());
}

#[test]
fn subsets_need_unique_dns_label_names_and_valid_labels() {
    let host = "r.default.svc.cluster.local";
    assert!(has(
        &errors(json!({"host": host, "subsets": [{"labels": {"v": "1"}}]})),
        "subset name cannot be empty"
    ));
    assert!(has(
        &errors(json!({"host": host, "subsets": [{"name": "v1.0"}]})),
        "subset name is invalid"
    ));
    assert!(has(
        &errors(json!({"host": host, "subsets": [{"name": "v1"}, {"name": "v1"}]})),
        "duplicate subset names"
    ));
    assert!(has(
        &errors(json!({"host": host, "subsets": [{"name": "v1", "labels": {"version": "v*"}}]})),
        "wildcard"
    ));
}

#[test]
fn traffic_policy_must_not_be_empty_and_tunnel_excludes_proxy_protocol() {
    assert!(has(
        &errors(with_policy(json!({}))),
        "traffic policy must have at least one field"
    ));
    assert!(has(
        &errors(with_policy(
            json!({"tunnel": {"targetHost": "a.example.com", "targetPort": 80}, "proxyProtocol": {"version": "V1"}})
        )),
        "tunnel and proxyProtocol must not be set together"
    ));
    assert!(has(
        &errors(with_policy(
            json!({"tunnel": {"protocol": "GET", "targetHost": "a.b", "targetPort": 1}})
        )),
        "CONNECT"
    ));
    assert!(has(
        &errors(with_policy(
            json!({"tunnel": {"targetHost": "not valid", "targetPort": 1}})
        )),
        "tunnel target host"
    ));
    assert!(has(
        &errors(with_policy(
            json!({"tunnel": {"targetHost": "a.b", "targetPort": 0}})
        )),
        "tunnel target port is invalid"
    ));
    assert!(has(
        &errors(with_policy(json!({"retryBudget": {"percent": 120.0}}))),
        "retry budget percent"
    ));
}

#[test]
fn port_level_settings_need_a_port_and_a_setting() {
    assert!(has(
        &errors(with_policy(
            json!({"portLevelSettings": [{"tls": {"mode": "ISTIO_MUTUAL"}}]})
        )),
        "portTrafficPolicy must have valid port"
    ));
    assert!(has(
        &errors(with_policy(
            json!({"portLevelSettings": [{"port": {"number": 80}}]})
        )),
        "port traffic policy must have at least one field"
    ));
    assert!(has(
        &errors(with_policy(
            json!({"portLevelSettings": [{"port": {"number": 70000}, "tls": {"mode": "DISABLE"}}]})
        )),
        "port must be between 1-65535"
    ));
    let dup = with_policy(json!({"portLevelSettings": [
        {"port": {"number": 80}, "tls": {"mode": "DISABLE"}},
        {"port": {"number": 80}, "tls": {"mode": "SIMPLE"}}]}));
    assert!(has(&warnings(dup), "more than one portLevelSettings"));
}

#[test]
fn simple_and_consistent_hash_are_exclusive() {
    assert!(has(
        &errors(with_lb(
            json!({"simple": "ROUND_ROBIN", "consistentHash": {"useSourceIp": true}})
        )),
        "only one of simple or consistentHash"
    ));
    assert!(has(
        &warnings(with_lb(json!({"simple": "LEAST_CONN"}))),
        "deprecated"
    ));
}

#[test]
fn consistent_hash_needs_one_key_and_one_algorithm() {
    assert!(has(
        &errors(with_lb(
            json!({"consistentHash": {"useSourceIp": true, "httpHeaderName": "x-user"}})
        )),
        "only one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName"
    ));
    assert!(has(
        &warnings(with_lb(json!({"consistentHash": {}}))),
        "no hash key"
    ));
    assert!(has(
        &errors(with_lb(
            json!({"consistentHash": {"useSourceIp": true, "ringHash": {}, "maglev": {"tableSize": 65537}}})
        )),
        "only one of ringHash or maglev"
    ));
    assert!(has(
        &errors(with_lb(
            json!({"consistentHash": {"httpCookie": {"ttl": "10s"}}})
        )),
        "name required for HttpCookie"
    ));
    assert!(has(
        &errors(with_lb(
            json!({"consistentHash": {"httpHeaderName": "bad header"}})
        )),
        "header name"
    ));
    assert!(has(
        &errors(with_lb(
            json!({"consistentHash": {"httpQueryParameterName": ""}})
        )),
        "must not be empty"
    ));
}

#[test]
fn ring_and_maglev_sizes() {
    let lb = |ch: Value| with_lb(json!({"consistentHash": ch}));
    assert!(has(
        &errors(lb(json!({"useSourceIp": true, "maglev": {}}))),
        "tableSize must be set for maglev"
    ));
    assert!(has(
        &errors(lb(
            json!({"useSourceIp": true, "maglev": {"tableSize": 65536}})
        )),
        "prime"
    ));
    assert!(has(
        &errors(lb(
            json!({"useSourceIp": true, "maglev": {"tableSize": 5000011}})
        )),
        "less than 5000011"
    ));
    assert!(has(
        &errors(lb(
            json!({"useSourceIp": true, "ringHash": {"minimumRingSize": 9000000}})
        )),
        "too large"
    ));
    let both = lb(
        json!({"useSourceIp": true, "minimumRingSize": 1024, "ringHash": {"minimumRingSize": 1024}}),
    );
    assert!(has(
        &errors(both.clone()),
        "only one of MinimumRingSize or Maglev/Ringhash"
    ));
    assert!(has(&warnings(both), "MinimumRingSize is deprecated"));
}

#[test]
fn locality_rules() {
    let loc = |l: Value| {
        with_policy(
            json!({"loadBalancer": {"localityLbSetting": l}, "outlierDetection": {"interval": "1s"}}),
        )
    };
    assert!(has(
        &errors(loc(
            json!({"distribute": [{"from": "a/*", "to": {"b/*": 100}}], "failover": [{"from": "a", "to": "b"}]})
        )),
        "only one of distribute or failover"
    ));
    assert!(has(
        &errors(loc(
            json!({"distribute": [{"from": "a/*", "to": {"b/*": 60, "c/*": 30}}]})
        )),
        "total locality weight 90 != 100"
    ));
    assert!(has(
        &errors(loc(
            json!({"distribute": [{"from": "a/*", "to": {"b/*": 0, "c/*": 100}}]})
        )),
        "locality weight must be in range [1, 100]"
    ));
    assert!(has(
        &errors(loc(
            json!({"distribute": [{"from": "a/*/b", "to": {"b/*": 100}}]})
        )),
        "wildcard"
    ));
    assert!(has(
        &errors(loc(json!({"failover": [{"from": "a", "to": "a"}]}))),
        "different regions"
    ));
    assert!(has(
        &errors(loc(json!({"failover": [{"from": "a/z", "to": "b"}]}))),
        "only specify region"
    ));
    assert!(has(
        &errors(loc(json!({"failover": [{"from": "a*", "to": "b"}]}))),
        "should not contain '*'"
    ));
    assert!(has(
        &errors(loc(
            json!({"failover": [{"from": "a", "to": "b"}], "failoverPriority": ["topology.kubernetes.io/zone"]})
        )),
        "topology label"
    ));
    let no_outlier =
        with_lb(json!({"localityLbSetting": {"failover": [{"from": "a", "to": "b"}]}}));
    assert!(has(
        &warnings(no_outlier),
        "outlier detection policy must be provided for failover"
    ));
}

#[test]
fn zone_aware_excludes_locality() {
    assert!(has(
        &errors(with_lb(
            json!({"localityLbSetting": {"enabled": true}, "zoneAwareLbSetting": {"enabled": true}})
        )),
        "only one of localityLbSetting or zoneAwareLbSetting"
    ));
    assert!(has(
        &errors(with_lb(
            json!({"zoneAwareLbSetting": {"enabled": true, "failoverPriority": ["topology.kubernetes.io/region"]}})
        )),
        "topology label"
    ));
    assert!(errors(with_lb(json!({"zoneAwareLbSetting": {"enabled": true, "minClusterSize": 6, "failoverPriority": ["env"]}}))).is_empty());
}

#[test]
fn warmup_rules() {
    let w = |v: Value| with_lb(json!({"warmup": v}));
    assert!(has(
        &errors(w(json!({"minimumPercent": 5.0}))),
        "warmup.duration: Required value"
    ));
    assert!(has(
        &errors(w(json!({"duration": "300s", "minimumPercent": 150.0}))),
        "spec.trafficPolicy.loadBalancer.warmup.minimumPercent: Invalid value"
    ));
    assert!(has(
        &errors(w(json!({"duration": "300s", "aggression": -0.1}))),
        "warmup.aggression: Invalid value"
    ));
    assert!(errors(w(json!({"duration": "300s", "aggression": 1.0}))).is_empty());
    assert!(has(
        &errors(with_lb(
            json!({"warmup": {"duration": "1s"}, "warmupDurationSecs": "1s"})
        )),
        "only one of warmup or warmupDurationSecs"
    ));
}

#[test]
fn connection_pool_rules() {
    let pool = |v: Value| with_policy(json!({"connectionPool": v}));
    assert!(has(
        &errors(pool(json!({}))),
        "connection pool must have at least one field"
    ));
    assert!(has(
        &errors(pool(json!({"tcp": {"maxConnections": -1}}))),
        "max connections must be non-negative"
    ));
    assert!(has(
        &errors(pool(json!({"http": {"http2MaxRequests": -1}}))),
        "http2 max requests must be non-negative"
    ));
    assert!(has(
        &errors(pool(json!({"http": {"maxRetries": -2}}))),
        "max retries must be non-negative"
    ));
    assert!(has(
        &errors(pool(json!({"tcp": {"connectTimeout": "0s"}}))),
        "greater than 1ms"
    ));
    assert!(has(
        &errors(pool(json!({"tcp": {"tcpKeepalive": {"time": "1.5ms"}}}))),
        "ms precision"
    ));
    assert!(has(
        &errors(pool(
            json!({"http": {"h2UpgradePolicy": "UPGRADE", "useClientProtocol": true}})
        )),
        "use client protocol must not be true"
    ));
    assert!(has(
        &errors(pool(
            json!({"http": {"http2KeepAlive": {"interval": "0s"}}})
        )),
        "http2KeepAlive.interval"
    ));
}

#[test]
fn outlier_detection_rules() {
    let od = |v: Value| with_policy(json!({"outlierDetection": v}));
    assert!(has(
        &errors(od(json!({"maxEjectionPercent": 101}))),
        "not in range 0..100"
    ));
    assert!(has(
        &errors(od(json!({"minHealthPercent": -1}))),
        "not in range 0..100"
    ));
    assert!(has(
        &errors(od(json!({"interval": "0s"}))),
        "outlierDetection.interval"
    ));
    assert!(has(
        &errors(od(json!({"baseEjectionTime": "0.5ms"}))),
        "baseEjectionTime"
    ));
    assert!(has(
        &warnings(od(json!({"consecutiveErrors": 5}))),
        "consecutive errors is deprecated"
    ));
    assert!(has(
        &errors(od(json!({"consecutiveLocalOriginFailures": 3}))),
        "split external local origin errors"
    ));
    assert!(has(
        &errors(od(json!({"outlierDetectionHttpErrorCodes": [99]}))),
        "between 100 and 599"
    ));
}

#[test]
fn client_tls_rules() {
    let tls = |v: Value| with_policy(json!({"tls": v}));
    assert!(has(
        &errors(tls(json!({"mode": "MUTUAL"}))),
        "client certificate required for mutual tls"
    ));
    assert!(has(
        &errors(tls(
            json!({"mode": "MUTUAL", "clientCertificate": "/c.pem"})
        )),
        "private key required"
    ));
    assert!(errors(tls(
        json!({"mode": "MUTUAL", "credentialName": "client-credential"})
    ))
    .is_empty());
    assert!(has(
        &errors(tls(
            json!({"mode": "MUTUAL", "credentialName": "c", "clientCertificate": "/c.pem", "privateKey": "/k.pem"})
        )),
        "If credentialName is set"
    ));
    assert!(has(
        &errors(tls(
            json!({"mode": "SIMPLE", "insecureSkipVerify": true, "caCertificates": "/ca.pem"})
        )),
        "InsecureSkipVerify is set true"
    ));
    assert!(has(
        &errors(tls(
            json!({"mode": "MUTUAL", "insecureSkipVerify": true, "credentialName": "c", "subjectAltNames": ["a"]})
        )),
        "InsecureSkipVerify is set true"
    ));
    assert!(has(
        &warnings(tls(
            json!({"mode": "ISTIO_MUTUAL", "clientCertificate": "/c.pem"})
        )),
        "ISTIO_MUTUAL uses the mesh's own certificates"
    ));
    assert!(errors(tls(
        json!({"mode": "ISTIO_MUTUAL", "sni": "a.b", "subjectAltNames": ["x"]})
    ))
    .is_empty());
    assert!(serde_json::from_value::<ClientTlsSettings>(json!({"mode": "STRICT"})).is_err());
}

#[test]
fn export_to_and_workload_selector() {
    let host = "r.default.svc.cluster.local";
    assert!(has(
        &errors(
            json!({"host": host, "workloadSelector": {"matchLabels": {"app": "a"}}, "exportTo": ["other"]})
        ),
        "cannot have exportTo beyond current namespace"
    ));
    assert!(has(
        &errors(
            json!({"host": host, "workloadSelector": {"matchLabels": {"app": "a"}}, "exportTo": [".", "other"]})
        ),
        "cannot have multiple entries in exportTo"
    ));
    assert!(errors(json!({"host": host, "workloadSelector": {"matchLabels": {"app": "a"}}, "exportTo": ["default"]})).is_empty());
    assert!(has(
        &warnings(json!({"host": host, "workloadSelector": {}})),
        "without labels"
    ));
    assert!(has(
        &errors(json!({"host": host, "workloadSelector": {"matchLabels": {"app": "*"}}})),
        "wildcard"
    ));
    assert!(has(
        &errors(json!({"host": host, "exportTo": ["~"]})),
        "exportTo ~ (none) is not allowed"
    ));
    assert!(has(
        &errors(json!({"host": host, "exportTo": ["Bad_NS"]})),
        "exportTo"
    ));
}

#[test]
fn problems_of_prints_paths() {
    let lines = problems_of(
        &spec(json!({"host": "a.b", "subsets": [{"name": "x", "trafficPolicy": {}}]})),
        &Context::for_test("DestinationRule"),
    );
    assert!(
        has(
            &lines,
            "spec.subsets[0].trafficPolicy: traffic policy must have at least one field"
        ),
        "{lines:?}"
    );
}
