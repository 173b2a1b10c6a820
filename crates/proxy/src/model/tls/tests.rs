use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use ironmesh_xds::pb::envoy::config::core::v3::{data_source::Specifier, DataSource};
use ironmesh_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    secret, CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    Secret as SecretPb, TlsCertificate,
};
use ironmesh_xds::Any;
use prost::{Message, Name};

use super::{compile_secret, downstream, Secret};
use crate::model::Snapshot;

fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

/// A fresh self-signed (cert, key) PEM pair from the openssl CLI.
fn pair(tag: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("ironmesh-tls-unit-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (crt, key) = (dir.join("c.pem"), dir.join("k.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "1", "-newkey", "ec"])
        .args([
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-subj",
            "/CN=unit.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = (std::fs::read(&crt).unwrap(), std::fs::read(&key).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn inline(b: &[u8]) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::InlineBytes(b.to_vec())),
        ..Default::default()
    })
}

fn cert_secret(name: &str, crt: &[u8], key: &[u8]) -> Any {
    any(&SecretPb {
        name: name.into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(crt),
            private_key: inline(key),
            ..Default::default()
        })),
    })
}

#[test]
fn a_pem_pair_compiles_into_a_certified_key() {
    let (crt, key) = pair("good");
    match compile_secret(
        "kubernetes://web",
        &cert_secret("kubernetes://web", &crt, &key),
    ) {
        Ok(Secret::Certificate(ck)) => assert_eq!(ck.cert.len(), 1),
        other => panic!("{other:?}"),
    }
    let ca = any(&SecretPb {
        name: "kubernetes://web-cacert".into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: inline(&crt),
                ..Default::default()
            },
        )),
    });
    assert!(matches!(
        compile_secret("kubernetes://web-cacert", &ca),
        Ok(Secret::Ca(r)) if r.len() == 1
    ));
}

#[test]
fn bad_pem_and_mismatched_keys_are_rejected_with_the_reason() {
    let (crt, key) = pair("a");
    let (_, other_key) = pair("b");
    let e = compile_secret(
        "kubernetes://web",
        &cert_secret("kubernetes://web", b"junk", &key),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("kubernetes://web") && e.contains("certificate_chain"),
        "{e}"
    );
    let e = compile_secret(
        "kubernetes://web",
        &cert_secret("kubernetes://web", &crt, b"junk"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("private_key"), "{e}");
    let e = compile_secret(
        "kubernetes://web",
        &cert_secret("kubernetes://web", &crt, &other_key),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("usable pair"), "{e}");
    // A bad secret NACKs the whole SDS update; the snapshot keeps the old set.
    let mut set = BTreeMap::new();
    set.insert(
        "kubernetes://web".to_string(),
        cert_secret("kubernetes://web", &crt, b"junk"),
    );
    assert!(Snapshot::default()
        .apply(ironmesh_xds::type_url::SECRET, "1", Arc::new(set))
        .is_err());
}

fn sds(name: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.into(),
        sds_config: None,
    }
}

#[test]
fn downstream_context_names_its_secrets_and_alpn() {
    let simple = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds("kubernetes://web")],
            alpn_protocols: vec!["h2".into(), "http/1.1".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let t = downstream(&any(&simple)).unwrap();
    assert_eq!(t.cert_secret, "kubernetes://web");
    assert_eq!(t.alpn, ["h2", "http/1.1"]);
    assert_eq!(t.secret_names().collect::<Vec<_>>(), ["kubernetes://web"]);

    let mut mutual = simple.clone();
    mutual.require_client_certificate =
        Some(ironmesh_xds::pb::google::protobuf::BoolValue { value: true });
    mutual
        .common_tls_context
        .as_mut()
        .unwrap()
        .validation_context_type = Some(ValidationContextType::CombinedValidationContext(
        CombinedCertificateValidationContext {
            validation_context_sds_secret_config: Some(sds("kubernetes://web-cacert")),
            ..Default::default()
        },
    ));
    let t = downstream(&any(&mutual)).unwrap();
    assert!(t.require_client_certificate);
    assert_eq!(
        t.secret_names().collect::<Vec<_>>(),
        ["kubernetes://web", "kubernetes://web-cacert"]
    );

    let none = DownstreamTlsContext::default();
    let e = downstream(&any(&none)).unwrap_err();
    assert!(e.contains("credentialName"), "{e}");
}

#[test]
fn client_certificate_restrictions_it_cannot_check_are_refused() {
    let ctx = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds("kubernetes://web")],
            validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                CombinedCertificateValidationContext {
                    default_validation_context: Some(CertificateValidationContext {
                        verify_certificate_hash: vec!["ab:cd".into()],
                        ..Default::default()
                    }),
                    validation_context_sds_secret_config: Some(sds("kubernetes://web-cacert")),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = downstream(&any(&ctx)).unwrap_err();
    assert!(e.contains("verifyCertificateHash"), "{e}");
}
