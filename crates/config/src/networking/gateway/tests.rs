//! Unit tests for Gateway validation.

use serde_json::{json, Value};

use super::*;
use crate::validation::Severity;

fn run(v: Value, name: &'static str, sev: Severity) -> Vec<String> {
    let gw: Gateway = serde_json::from_value(v).expect("decodes");
    let mut cx = Context::for_test("Gateway");
    cx.name = name;
    let mut p = Problems::new();
    gw.validate(&cx, &FieldPath::spec(), &mut p);
    p.into_vec()
        .into_iter()
        .filter(|x| x.severity == sev)
        .map(|x| format!("{}: {}", x.path, x.message))
        .collect()
}

fn errors(v: Value) -> Vec<String> {
    run(v, "gw", Severity::Error)
}

fn warnings(v: Value) -> Vec<String> {
    run(v, "gw", Severity::Warning)
}

fn has(v: &[String], frag: &str) -> bool {
    v.iter().any(|s| s.contains(frag))
}

fn server(s: Value) -> Value {
    json!({"selector": {"istio": "ingressgateway"}, "servers": [s]})
}

fn https(tls: Value) -> Value {
    server(
        json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*/example.com"], "tls": tls}),
    )
}

#[test]
fn typical_gateways_are_valid() {
    let v = json!({
        "selector": {"istio": "ingressgateway"},
        "servers": [
            {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"], "tls": {"httpsRedirect": true}},
            {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["prod/*.example.com", "./a.example.com"],
             "tls": {"mode": "SIMPLE", "credentialName": "cert", "minProtocolVersion": "TLSV1_2", "maxProtocolVersion": "TLSV1_3",
                     "cipherSuites": ["ECDHE-RSA-AES128-GCM-SHA256"]}, "name": "main"},
            {"port": {"number": 8443, "name": "mtls", "protocol": "HTTPS"}, "hosts": ["*.example.com"],
             "tls": {"mode": "MUTUAL", "serverCertificate": "/c.pem", "privateKey": "/k.pem", "caCertificates": "/ca.pem", "caCrl": "/crl.pem",
                     "subjectAltNames": ["a"], "verifyCertificateSpki": ["x"], "verifyCertificateHash": ["y"]}},
            {"port": {"number": 15443, "name": "tls", "protocol": "TLS"}, "hosts": ["*.local"], "tls": {"mode": "AUTO_PASSTHROUGH"}},
            {"port": {"number": 9443, "name": "multi", "protocol": "HTTPS"}, "hosts": ["b.example.com"],
             "tls": {"mode": "OPTIONAL_MUTUAL", "credentialNames": ["rsa", "ecdsa"]}},
            {"port": {"number": 9444, "name": "files", "protocol": "HTTPS"}, "hosts": ["c.example.com"],
             "tls": {"mode": "SIMPLE", "tlsCertificates": [{"serverCertificate": "/a.pem", "privateKey": "/a.key"}]}},
            {"port": {"number": 31400, "name": "tcp", "protocol": "TCP"}, "hosts": ["*"], "bind": "10.0.0.1"},
            {"port": {"number": 0, "name": "uds", "protocol": "HTTP"}, "hosts": ["*"], "bind": "unix:///var/run/gw.sock"}
        ]
    });
    let e = errors(v.clone());
    assert!(e.is_empty(), "{e:?}");
    assert!(warnings(v).is_empty());
}

#[test]
fn servers_hosts_and_names() {
    assert!(has(
        &errors(json!({"selector": {"a": "b"}})),
        "gateway must have at least one server"
    ));
    assert!(has(
        &errors(server(
            json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"}})
        )),
        "server config must contain at least one host"
    ));
    let host = |h: &str| {
        errors(server(
            json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [h]}),
        ))
    };
    assert!(has(&host("bad_ns!/a.example.com"), "invalid namespace"));
    assert!(has(&host("ns/foo"), "short names"));
    assert!(has(&host("ns/*foo.example.com"), "partial wildcard"));
    assert!(has(&host("~/*"), "invalid namespace"));
    assert!(host("ns/10.1.2.3").is_empty());
    let gw = json!({"servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]});
    assert!(has(
        &run(gw, "my.gateway", Severity::Error),
        "invalid gateway name"
    ));
}

#[test]
fn ports_are_checked() {
    let port = |p: Value| errors(server(json!({"port": p, "hosts": ["*"]})));
    assert!(has(
        &errors(server(json!({"hosts": ["*"]}))),
        "port is required"
    ));
    assert!(has(
        &port(json!({"number": 80, "name": "x", "protocol": "FTP"})),
        "invalid protocol \"FTP\""
    ));
    assert!(has(
        &port(json!({"number": 80, "name": "x"})),
        "invalid protocol"
    ));
    assert!(has(
        &port(json!({"number": 70000, "name": "x", "protocol": "HTTP"})),
        "port must be between 1-65535"
    ));
    assert!(has(
        &port(json!({"number": 80, "protocol": "HTTP"})),
        "port name must be set"
    ));
    assert!(has(
        &port(json!({"number": 80, "name": "x", "protocol": "HTTP", "targetPort": 8080})),
        "targetPort has no impact on Gateways"
    ));
    assert!(port(json!({"number": 80, "name": "x", "protocol": "grpc-web"})).is_empty());
    let dup = json!({"servers": [
        {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["a.example.com"]},
        {"port": {"number": 81, "name": "http", "protocol": "HTTP"}, "hosts": ["b.example.com"]}]});
    assert!(has(&errors(dup), "port names in servers must be unique"));
}

#[test]
fn bind_addresses() {
    let s = |bind: &str, n: u32| {
        errors(server(
            json!({"port": {"number": n, "name": "h", "protocol": "HTTP"}, "hosts": ["*"], "bind": bind}),
        ))
    };
    assert!(has(&s("not-an-ip", 80), "not a valid IP"));
    assert!(has(
        &s("unix:///a.sock", 80),
        "port number must be 0 for unix domain socket"
    ));
    assert!(has(
        &s("unix://relative", 0),
        "UDS must be an absolute path"
    ));
}

#[test]
fn tls_is_required_for_https_and_tls() {
    let e = errors(server(
        json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"]}),
    ));
    assert!(
        has(&e, "server must have TLS settings for HTTPS/TLS protocols"),
        "{e:?}"
    );
    let e = errors(server(
        json!({"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"], "tls": {"mode": "SIMPLE", "credentialName": "x"}}),
    ));
    assert!(
        has(
            &e,
            "server cannot have TLS settings for plain text HTTP ports"
        ),
        "{e:?}"
    );
    let e = errors(server(
        json!({"port": {"number": 31400, "name": "tcp", "protocol": "TCP"}, "hosts": ["*"], "tls": {"httpsRedirect": true}}),
    ));
    assert!(
        has(
            &e,
            "server cannot have TLS settings for non HTTPS/TLS ports"
        ),
        "{e:?}"
    );
    let w = run(
        server(
            json!({"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"], "tls": {"httpsRedirect": true, "mode": "SIMPLE", "credentialName": "c"}}),
        ),
        "gw",
        Severity::Warning,
    );
    assert!(
        has(&w, "httpsRedirect should only be used with http servers"),
        "{w:?}"
    );
}

#[test]
fn simple_and_mutual_need_certificates() {
    assert!(has(
        &errors(https(json!({"mode": "SIMPLE"}))),
        "SIMPLE TLS requires a server certificate"
    ));
    assert!(has(
        &errors(https(json!({"mode": "SIMPLE", "serverCertificate": "/c"}))),
        "SIMPLE TLS requires a private key"
    ));
    assert!(has(
        &errors(https(
            json!({"mode": "MUTUAL", "serverCertificate": "/c", "privateKey": "/k"})
        )),
        "MUTUAL TLS requires a client CA bundle"
    ));
    assert!(errors(https(json!({"mode": "MUTUAL", "serverCertificate": "/c", "privateKey": "/k", "caCertCredentialName": "ca"}))).is_empty());
    assert!(has(
        &errors(https(json!({"mode": "OPTIONAL_MUTUAL"}))),
        "MUTUAL TLS requires a server certificate"
    ));
    assert!(errors(https(json!({"mode": "MUTUAL", "credentialName": "c"}))).is_empty());
    assert!(has(
        &errors(https(
            json!({"mode": "SIMPLE", "serverCertificate": "/c", "privateKey": "/k", "caCrl": "/crl"})
        )),
        "CRL is not supported with SIMPLE TLS"
    ));
    assert!(has(
        &errors(https(
            json!({"mode": "MUTUAL", "credentialName": "c", "caCrl": "/crl"})
        )),
        "CRL is not supported with credentialName"
    ));
}

#[test]
fn credential_sources_are_exclusive() {
    assert!(has(
        &errors(https(
            json!({"mode": "SIMPLE", "credentialName": "a", "credentialNames": ["b"]})
        )),
        "only one of credentialName or credentialNames"
    ));
    assert!(has(
        &errors(https(
            json!({"mode": "SIMPLE", "credentialNames": ["a"], "tlsCertificates": [{"serverCertificate": "/c", "privateKey": "/k"}]})
        )),
        "only one of credentialNames or tlsCertificates"
    ));
    assert!(has(
        &errors(https(
            json!({"mode": "SIMPLE", "credentialNames": ["a", "b", "c"]})
        )),
        "at most 2"
    ));
    assert!(has(
        &errors(https(
            json!({"mode": "SIMPLE", "tlsCertificates": [{"serverCertificate": "/c"}]})
        )),
        "needs privateKey"
    ));
}

#[test]
fn istio_mutual_and_passthrough() {
    assert!(has(
        &errors(https(
            json!({"mode": "ISTIO_MUTUAL", "credentialName": "x"})
        )),
        "ISTIO_MUTUAL TLS cannot have associated credentialName"
    ));
    assert!(has(
        &errors(https(
            json!({"mode": "ISTIO_MUTUAL", "serverCertificate": "/c"})
        )),
        "ISTIO_MUTUAL TLS cannot have associated server certificate"
    ));
    assert!(errors(https(json!({"mode": "ISTIO_MUTUAL"}))).is_empty());
    assert!(has(
        &warnings(https(json!({"mode": "PASSTHROUGH", "credentialName": "x"}))),
        "does not use certificates"
    ));
}

#[test]
fn tls_versions_and_ciphers() {
    let base = |extra: Value| {
        let mut t = json!({"mode": "SIMPLE", "credentialName": "c"});
        t.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        https(t)
    };
    assert!(has(
        &warnings(base(json!({"minProtocolVersion": "TLSV1_1"}))),
        "below TLSV1_2"
    ));
    assert!(has(
        &warnings(base(json!({"cipherSuites": ["NOT-A-CIPHER"]}))),
        "invalid cipher suite"
    ));
    assert!(has(
        &warnings(base(json!({"cipherSuites": ["AES128-SHA", "AES128-SHA"]}))),
        "duplicate cipher suite"
    ));
    assert!(has(
        &errors(base(
            json!({"minProtocolVersion": "TLSV1_3", "maxProtocolVersion": "TLSV1_2"})
        )),
        "above maxProtocolVersion"
    ));
    assert!(
        serde_json::from_value::<ServerTlsSettings>(json!({"minProtocolVersion": "TLSV9"}))
            .is_err()
    );
}

#[test]
fn selector_labels_are_checked() {
    let e = errors(
        json!({"selector": {"istio": "ingress*"}, "servers": [{"port": {"number": 80, "name": "h", "protocol": "HTTP"}, "hosts": ["*"]}]}),
    );
    assert!(has(&e, "spec.selector[istio]"), "{e:?}");
}
