use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{secret, Secret};

use super::unpack;
use crate::gen::sds;
use crate::testutil::{router, sidecar, World};

const SECRETS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: web-cert, namespace: istio-system}
type: kubernetes.io/tls
data:
  tls.crt: Q0VSVA==
  tls.key: S0VZ
---
apiVersion: v1
kind: Secret
metadata: {name: generic, namespace: istio-system}
stringData:
  cert: C2
  key: K2
  cacert: CA2
---
apiVersion: v1
kind: Secret
metadata: {name: web-cert-cacert, namespace: istio-system}
stringData:
  ca.crt: CA1
---
apiVersion: v1
kind: Secret
metadata: {name: other-team, namespace: prod}
stringData:
  tls.crt: X
  tls.key: Y
"#;

fn bytes(ds: &Option<envoy_types::pb::envoy::config::core::v3::DataSource>) -> Vec<u8> {
    match ds.as_ref().and_then(|d| d.specifier.as_ref()) {
        Some(Specifier::InlineBytes(b)) => b.clone(),
        other => panic!("expected inline bytes, got {other:?}"),
    }
}

fn gateway_secrets() -> Vec<(String, Secret)> {
    let push = World::new().config(SECRETS).push();
    let gw = router(
        "ingress-1",
        "istio-system",
        "10.213.0.9",
        &[("istio", "ingressgateway")],
    );
    crate::generate(&push, &gw, crate::SECRET_TYPE)
        .unwrap()
        .into_iter()
        .map(|(n, a)| {
            (
                n,
                unpack::<Secret>(&envoy_types::pb::google::protobuf::Any {
                    type_url: a.type_url,
                    value: a.value,
                }),
            )
        })
        .collect()
}

fn get<'a>(all: &'a [(String, Secret)], name: &str) -> &'a Secret {
    &all.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| {
            panic!(
                "no secret {name}: {:?}",
                all.iter().map(|(n, _)| n).collect::<Vec<_>>()
            )
        })
        .1
}

#[test]
fn tls_secret_becomes_an_inline_certificate() {
    let all = gateway_secrets();
    let s = get(&all, "kubernetes://web-cert");
    assert_eq!(s.name, "kubernetes://web-cert");
    let Some(secret::Type::TlsCertificate(c)) = &s.r#type else {
        panic!("not a certificate: {s:?}");
    };
    assert_eq!(bytes(&c.certificate_chain), b"CERT");
    assert_eq!(bytes(&c.private_key), b"KEY");
    // The namespaced spelling names the same Secret.
    assert_eq!(
        get(&all, "kubernetes://istio-system/web-cert").r#type,
        s.r#type
    );
}

#[test]
fn cacert_prefers_the_separate_secret_then_the_generic_key() {
    let all = gateway_secrets();
    let ca = |name: &str| match &get(&all, name).r#type {
        Some(secret::Type::ValidationContext(v)) => bytes(&v.trusted_ca),
        other => panic!("not a validation context: {other:?}"),
    };
    assert_eq!(ca("kubernetes://web-cert-cacert"), b"CA1");
    assert_eq!(ca("kubernetes://generic-cacert"), b"CA2");
    let Some(secret::Type::TlsCertificate(c)) = &get(&all, "kubernetes://generic").r#type else {
        panic!("generic cert/key not read");
    };
    assert_eq!(bytes(&c.certificate_chain), b"C2");
    assert_eq!(bytes(&c.private_key), b"K2");
}

#[test]
fn other_namespaces_and_sidecars_get_nothing() {
    let all = gateway_secrets();
    assert!(
        all.iter().all(|(n, _)| !n.contains("other-team")),
        "{all:?}"
    );
    let push = World::new().config(SECRETS).push();
    let gw = router("ingress-1", "istio-system", "10.213.0.9", &[]);
    assert!(sds::secret_for(&push, &gw, "kubernetes://prod/other-team").is_none());
    let sc = sidecar("app-1", "istio-system", "10.213.0.10", &[]);
    assert!(crate::generate(&push, &sc, crate::SECRET_TYPE)
        .unwrap()
        .is_empty());
}

#[test]
fn names_parse_like_istio() {
    let p = sds::parse("kubernetes://ns/web-cacert").unwrap();
    assert_eq!((p.namespace, p.name, p.ca), (Some("ns"), "web", true));
    assert!(sds::parse("default").is_none());
    assert!(sds::parse("kubernetes://").is_none());
}
