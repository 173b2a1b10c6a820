//! TLS contexts: upstream TLS from a DestinationRule (`SIMPLE`, `MUTUAL`) and downstream
//! TLS for gateway servers. Certificates come from files (data sources) or, with
//! `credentialName`, from SDS as `kubernetes://<secret>` (and `<secret>-cacert` for the
//! CA), the names istiod serves secrets under.

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    subject_alt_name_matcher::SanType,
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    SubjectAltNameMatcher, TlsCertificate, UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, StringMatcher};
use ironmesh_config::networking::destination_rule::{ClientTlsMode, ClientTlsSettings};
use ironmesh_config::networking::gateway::{ServerTlsMode, ServerTlsSettings};

use super::util::{boolv, sds_config_source};

pub const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";

/// The SDS resource name for a Kubernetes secret.
pub fn credential_name(secret: &str) -> String {
    if secret.contains("://") {
        secret.to_string()
    } else {
        format!("kubernetes://{secret}")
    }
}

fn sds(name: String) -> SdsSecretConfig {
    SdsSecretConfig {
        name,
        sds_config: Some(sds_config_source()),
    }
}

fn file(path: &str) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    }
}

fn exact(s: &str) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::Exact(s.to_string())),
        ..Default::default()
    }
}

/// SAN matchers: `spiffe://…` names are URIs, anything else a DNS name.
fn san_matchers(sans: &[String]) -> Vec<SubjectAltNameMatcher> {
    sans.iter()
        .map(|s| SubjectAltNameMatcher {
            san_type: if s.contains("://") {
                SanType::Uri as i32
            } else {
                SanType::Dns as i32
            },
            matcher: Some(exact(s)),
            ..Default::default()
        })
        .collect()
}

/// The upstream TLS context for a DestinationRule `tls` block, or `None` when the proxy
/// should send plaintext. `h2` advertises
/// HTTP/2 by ALPN.
pub fn upstream_tls(tls: &ClientTlsSettings, h2: bool) -> Option<UpstreamTlsContext> {
    let mode = tls.mode.unwrap_or(ClientTlsMode::Disable);
    let mutual = match mode {
        ClientTlsMode::Disable => return None,
        // seam: ISTIO_MUTUAL needs the workload certificate (SDS `default` and
        // `ROOTCA`) from the security issue; until then such clusters stay plaintext.
        ClientTlsMode::IstioMutual => return None,
        ClientTlsMode::Simple => false,
        ClientTlsMode::Mutual => true,
    };
    let mut common = CommonTlsContext::default();
    let skip_verify = tls.insecure_skip_verify == Some(true);
    let default_vc = CertificateValidationContext {
        match_typed_subject_alt_names: san_matchers(&tls.subject_alt_names),
        crl: tls.ca_crl.as_deref().map(file),
        ..Default::default()
    };
    if let Some(secret) = tls.credential_name.as_deref().filter(|s| !s.is_empty()) {
        if mutual {
            common.tls_certificate_sds_secret_configs = vec![sds(credential_name(secret))];
        }
        if !skip_verify {
            common.validation_context_type =
                Some(ValidationContextType::CombinedValidationContext(
                    CombinedCertificateValidationContext {
                        default_validation_context: Some(default_vc),
                        validation_context_sds_secret_config: Some(sds(format!(
                            "{}-cacert",
                            credential_name(secret)
                        ))),
                        ..Default::default()
                    },
                ));
        }
    } else {
        if mutual {
            common.tls_certificates = vec![TlsCertificate {
                certificate_chain: tls.client_certificate.as_deref().map(file),
                private_key: tls.private_key.as_deref().map(file),
                ..Default::default()
            }];
        }
        if !skip_verify {
            if let Some(ca) = tls.ca_certificates.as_deref().filter(|c| !c.is_empty()) {
                common.validation_context_type = Some(ValidationContextType::ValidationContext(
                    CertificateValidationContext {
                        trusted_ca: Some(file(ca)),
                        ..default_vc
                    },
                ));
            }
        }
    }
    if h2 {
        common.alpn_protocols = vec!["h2".to_string()];
    }
    Some(UpstreamTlsContext {
        common_tls_context: Some(common),
        sni: tls.sni.clone().unwrap_or_default(),
        ..Default::default()
    })
}

/// The downstream TLS context of a gateway server that terminates TLS (`SIMPLE`,
/// `MUTUAL`, `OPTIONAL_MUTUAL`). `None` for passthrough modes.
pub fn downstream_tls(tls: &ServerTlsSettings, http: bool) -> Option<DownstreamTlsContext> {
    let mode = tls.mode.unwrap_or(ServerTlsMode::Passthrough);
    let (mutual, optional) = match mode {
        ServerTlsMode::Simple => (false, false),
        ServerTlsMode::Mutual => (true, false),
        ServerTlsMode::OptionalMutual => (true, true),
        // seam: ISTIO_MUTUAL gateways need the workload certificate from the security
        // issue; passthrough modes do not terminate TLS.
        ServerTlsMode::IstioMutual
        | ServerTlsMode::Passthrough
        | ServerTlsMode::AutoPassthrough => return None,
    };
    let mut common = CommonTlsContext {
        alpn_protocols: if http {
            vec!["h2".into(), "http/1.1".into()]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    let secrets: Vec<&String> = tls
        .credential_name
        .iter()
        .chain(tls.credential_names.iter())
        .filter(|s| !s.is_empty())
        .collect();
    let vc = CertificateValidationContext {
        match_typed_subject_alt_names: san_matchers(&tls.subject_alt_names),
        verify_certificate_spki: tls.verify_certificate_spki.clone(),
        verify_certificate_hash: tls.verify_certificate_hash.clone(),
        crl: tls.ca_crl.as_deref().map(file),
        ..Default::default()
    };
    if !secrets.is_empty() {
        common.tls_certificate_sds_secret_configs =
            secrets.iter().map(|s| sds(credential_name(s))).collect();
        if mutual {
            let ca = tls
                .ca_cert_credential_name
                .as_deref()
                .map(credential_name)
                .unwrap_or_else(|| format!("{}-cacert", credential_name(secrets[0])));
            common.validation_context_type =
                Some(ValidationContextType::CombinedValidationContext(
                    CombinedCertificateValidationContext {
                        default_validation_context: Some(vc),
                        validation_context_sds_secret_config: Some(sds(ca)),
                        ..Default::default()
                    },
                ));
        }
    } else {
        let mut certs: Vec<TlsCertificate> = tls
            .tls_certificates
            .iter()
            .map(|c| TlsCertificate {
                certificate_chain: c.server_certificate.as_deref().map(file),
                private_key: c.private_key.as_deref().map(file),
                ..Default::default()
            })
            .collect();
        if certs.is_empty() {
            certs.push(TlsCertificate {
                certificate_chain: tls.server_certificate.as_deref().map(file),
                private_key: tls.private_key.as_deref().map(file),
                ..Default::default()
            });
        }
        common.tls_certificates = certs;
        if mutual {
            if let Some(ca) = tls.ca_certificates.as_deref() {
                common.validation_context_type = Some(ValidationContextType::ValidationContext(
                    CertificateValidationContext {
                        trusted_ca: Some(file(ca)),
                        ..vc
                    },
                ));
            }
        }
    }
    Some(DownstreamTlsContext {
        common_tls_context: Some(common),
        require_client_certificate: Some(boolv(mutual && !optional)),
        ..Default::default()
    })
}
