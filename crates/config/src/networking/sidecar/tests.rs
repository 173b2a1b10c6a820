//! Unit tests for Sidecar validation.

use serde_json::{json, Value};

use super::*;
use crate::validation::Severity;

fn run(v: Value, sev: Severity) -> Vec<String> {
    let sc: Sidecar = serde_json::from_value(v).expect("decodes");
    let mut p = Problems::new();
    sc.validate(&Context::for_test("Sidecar"), &FieldPath::spec(), &mut p);
    p.into_vec()
        .into_iter()
        .filter(|x| x.severity == sev)
        .map(|x| format!("{}: {}", x.path, x.message))
        .collect()
}

fn errors(v: Value) -> Vec<String> {
    run(v, Severity::Error)
}

fn warnings(v: Value) -> Vec<String> {
    run(v, Severity::Warning)
}

fn has(v: &[String], frag: &str) -> bool {
    v.iter().any(|s| s.contains(frag))
}

fn ingress(l: Value) -> Value {
    json!({"ingress": [l]})
}

fn egress(l: Value) -> Value {
    json!({"egress": [l]})
}

#[test]
fn full_sidecar_is_valid() {
    let v = json!({
        "workloadSelector": {"labels": {"app": "ratings"}},
        "ingress": [
            {"port": {"number": 9080, "protocol": "HTTP", "name": "somename"}, "defaultEndpoint": "127.0.0.1:8080", "captureMode": "IPTABLES",
             "connectionPool": {"http": {"http1MaxPendingRequests": 10}, "tcp": {"maxConnections": 5}}},
            {"port": {"number": 9443, "protocol": "HTTPS", "name": "tls"}, "defaultEndpoint": "[::1]:8443", "bind": "0.0.0.0",
             "tls": {"mode": "SIMPLE", "serverCertificate": "/c.pem", "privateKey": "/k.pem"}},
            {"port": {"number": 9000, "protocol": "TCP", "name": "uds"}, "defaultEndpoint": "unix:///var/run/app.sock"}
        ],
        "egress": [
            {"port": {"number": 3306, "protocol": "MYSQL", "name": "mysql"}, "bind": "127.0.0.1", "captureMode": "NONE", "hosts": ["*/mysql.example.com"]},
            {"port": {"number": 0, "protocol": "HTTP", "name": "uds"}, "bind": "unix:///var/run/egress.sock", "hosts": ["istio-system/*"]},
            {"hosts": ["./*", "istio-system/*", "~/*"]}
        ],
        "inboundConnectionPool": {"http": {"http1MaxPendingRequests": 1024, "idleTimeout": "5m"}},
        "outboundTrafficPolicy": {"mode": "ALLOW_ANY", "egressProxy": {"host": "foo.bar", "subset": "shiny", "port": {"number": 443}}}
    });
    let e = errors(v.clone());
    assert!(e.is_empty(), "{e:?}");
    let w = warnings(v);
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn empty_sidecar_is_rejected() {
    assert!(has(
        &errors(json!({})),
        "sidecar: empty configuration provided"
    ));
    assert!(errors(json!({"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}})).is_empty());
    assert!(has(
        &warnings(json!({"workloadSelector": {}, "egress": [{"hosts": ["./*"]}]})),
        "without labels"
    ));
    assert!(has(
        &errors(
            json!({"workloadSelector": {"labels": {"app": "*"}}, "egress": [{"hosts": ["./*"]}]})
        ),
        "wildcard is not supported in selector"
    ));
}

#[test]
fn egress_hosts_are_namespace_slash_dns_name() {
    assert!(has(
        &errors(egress(json!({}))),
        "egress listener must contain at least one host"
    ));
    assert!(has(
        &errors(egress(json!({"hosts": ["foo.com"]}))),
        "host must be of form namespace/dnsName"
    ));
    assert!(has(
        &errors(egress(json!({"hosts": ["Bad_NS/foo.com"]}))),
        "invalid namespace value"
    ));
    assert!(has(
        &errors(egress(json!({"hosts": ["ns/10.0.0.1"]}))),
        "spec.egress[0].hosts[0]"
    ));
    assert!(has(
        &warnings(egress(json!({"hosts": ["ns/*", "ns/a.example.com"]}))),
        "duplicated egress host"
    ));
    assert!(has(
        &warnings(egress(json!({"hosts": ["*/*", "ns/a.example.com"]}))),
        "`*/*` host select all resources"
    ));
}

#[test]
fn one_catch_all_egress_listener_and_last() {
    let v = json!({"egress": [{"hosts": ["./*"]}, {"hosts": ["istio-system/*"]}]});
    assert!(has(&errors(v), "should be the last listener"));
    let v = json!({"egress": [{"port": {"number": 80, "protocol": "HTTP", "name": "a"}, "hosts": ["./*"]},
                              {"port": {"number": 80, "protocol": "HTTP", "name": "b"}, "hosts": ["./*"]}]});
    assert!(has(
        &errors(v),
        "ports on IP bound listeners must be unique"
    ));
}

#[test]
fn egress_ports_binds_and_capture_modes() {
    let l = |port: Value, bind: &str, mode: &str| {
        let mut v = json!({"port": port, "hosts": ["./*"]});
        if !bind.is_empty() {
            v["bind"] = json!(bind);
        }
        if !mode.is_empty() {
            v["captureMode"] = json!(mode);
        }
        errors(egress(v))
    };
    assert!(has(
        &l(json!({"number": 0, "protocol": "HTTP"}), "", ""),
        "ports with 0 value must have a unix domain socket bind address"
    ));
    assert!(has(
        &l(
            json!({"number": 0, "protocol": "HTTP"}),
            "unix:///a.sock",
            "IPTABLES"
        ),
        "captureMode must be DEFAULT/NONE"
    ));
    assert!(has(
        &l(json!({"number": 80, "protocol": "HTTP"}), "1.2.3", ""),
        "not a valid IP"
    ));
    assert!(has(
        &l(json!({"number": 80, "protocol": "FTP"}), "", ""),
        "unsupported protocol"
    ));
    assert!(has(
        &l(
            json!({"number": 80, "protocol": "HTTP", "name": "Bad_Name"}),
            "",
            ""
        ),
        "invalid port name"
    ));
    assert!(has(
        &l(json!({"number": 80, "targetPort": 90}), "", ""),
        "targetPort has no impact on Sidecars"
    ));
    assert!(has(
        &l(json!({"number": 70000}), "", ""),
        "port must be between 1-65535"
    ));
    assert!(serde_json::from_value::<EgressListener>(json!({"captureMode": "TPROXY"})).is_err());
}

#[test]
fn ingress_listeners() {
    assert!(has(
        &errors(ingress(json!({"defaultEndpoint": "127.0.0.1:80"}))),
        "port is required for ingress listeners"
    ));
    let ep = |e: &str| {
        errors(ingress(
            json!({"port": {"number": 80, "protocol": "HTTP", "name": "h"}, "defaultEndpoint": e}),
        ))
    };
    assert!(ep("0.0.0.0:8080").is_empty());
    assert!(ep("[::]:8080").is_empty());
    assert!(ep(":8080").is_empty());
    assert!(has(&ep("10.0.0.1:8080"), "defaultEndpoint must be of form"));
    assert!(has(&ep("127.0.0.1"), "defaultEndpoint must be of form"));
    assert!(has(&ep("127.0.0.1:http"), "is not a number"));
    assert!(has(&ep("127.0.0.1:0"), "port must be between 1-65535"));
    assert!(has(&ep("unix://rel"), "UDS must be an absolute path"));
    let dup = json!({"ingress": [
        {"port": {"number": 80, "protocol": "HTTP", "name": "a"}},
        {"port": {"number": 80, "protocol": "HTTP", "name": "b"}}]});
    assert!(has(
        &errors(dup),
        "ports on IP bound listeners must be unique"
    ));
    let w = warnings(ingress(
        json!({"port": {"number": 80, "protocol": "TCP", "name": "t"}, "connectionPool": {"http": {"maxRetries": 1}}}),
    ));
    assert!(has(&w, "only TCP settings will apply"), "{w:?}");
    assert!(has(
        &errors(ingress(
            json!({"port": {"number": 80, "protocol": "TCP", "name": "t"}, "connectionPool": {}})
        )),
        "connection pool must have at least one field"
    ));
}

#[test]
fn ingress_tls() {
    let t = |tls: Value| {
        errors(ingress(
            json!({"port": {"number": 443, "protocol": "HTTPS", "name": "s"}, "tls": tls}),
        ))
    };
    assert!(has(
        &t(json!({"mode": "ISTIO_MUTUAL"})),
        "cannot set mode to ISTIO_MUTUAL in sidecar ingress tls"
    ));
    assert!(has(
        &t(json!({"mode": "SIMPLE", "credentialName": "x"})),
        "credentialName is not currently supported"
    ));
    assert!(has(
        &t(
            json!({"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k", "subjectAltNames": ["a"]})
        ),
        "subjectAltNames is not supported"
    ));
    assert!(has(
        &t(
            json!({"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k", "httpsRedirect": true})
        ),
        "httpsRedirect is not supported"
    ));
    assert!(has(
        &t(json!({"mode": "MUTUAL", "serverCertificate": "/c", "privateKey": "/k"})),
        "MUTUAL TLS requires a client CA bundle"
    ));
}

#[test]
fn outbound_traffic_policy() {
    let o = |v: Value| errors(json!({"outboundTrafficPolicy": v}));
    assert!(has(
        &o(
            json!({"mode": "REGISTRY_ONLY", "egressProxy": {"host": "a.b", "port": {"number": 80}}})
        ),
        "egress_proxy must be set only with ALLOW_ANY"
    ));
    assert!(has(
        &o(json!({"mode": "ALLOW_ANY", "egressProxy": {"host": "a.b"}})),
        "egress_proxy port must be non-nil"
    ));
    assert!(has(
        &o(json!({"mode": "ALLOW_ANY", "egressProxy": {"port": {"number": 80}}})),
        "Required value"
    ));
    assert!(has(
        &o(
            json!({"mode": "ALLOW_ANY", "egressProxy": {"host": "a.b", "subset": "v.1", "port": {"number": 80}}})
        ),
        "subset name is invalid"
    ));
    assert!(serde_json::from_value::<OutboundTrafficPolicy>(json!({"mode": "DENY"})).is_err());
}
