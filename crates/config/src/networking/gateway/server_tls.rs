//! `ServerTLSSettings`: TLS termination on a Gateway server or a Sidecar ingress
//! listener.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::path::FieldPath;
use crate::validation::{Context, Problems, Validate};

crate::string_enum! {
    /// `ServerTLSSettings.TLSmode`.
    pub enum ServerTlsMode {
        Passthrough = "PASSTHROUGH",
        Simple = "SIMPLE",
        Mutual = "MUTUAL",
        AutoPassthrough = "AUTO_PASSTHROUGH",
        IstioMutual = "ISTIO_MUTUAL",
        OptionalMutual = "OPTIONAL_MUTUAL",
    }
}

crate::string_enum! {
    /// `ServerTLSSettings.TLSProtocol`.
    pub enum TlsProtocol {
        TlsAuto = "TLS_AUTO",
        Tlsv1_0 = "TLSV1_0",
        Tlsv1_1 = "TLSV1_1",
        Tlsv1_2 = "TLSV1_2",
        Tlsv1_3 = "TLSV1_3",
    }
}

/// `ServerTLSSettings`: how a server terminates (or passes through) TLS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerTlsSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect: Option<bool>,
    /// Defaults to `PASSTHROUGH` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ServerTlsMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_crl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<String>,
    /// Up to two secrets (e.g. an RSA and an ECDSA certificate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credential_names: Vec<String>,
    /// A separate secret holding the CA bundle for client certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_credential_name: Option<String>,
    /// Up to two file-based certificate/key pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_certificates: Vec<TlsCertificate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_certificate_spki: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_certificate_hash: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_protocol_version: Option<TlsProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_protocol_version: Option<TlsProtocol>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
}

/// `ServerTLSSettings.TLSCertificate`: one file-based certificate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsCertificate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
}

/// Cipher suite names Envoy (BoringSSL) accepts.
const CIPHER_SUITES: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-PSK-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-PSK-AES128-CBC-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-PSK-AES256-CBC-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "AES256-SHA",
    "PSK-AES128-CBC-SHA",
    "PSK-AES256-CBC-SHA",
    "DES-CBC3-SHA",
];

fn set(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty())
}

impl ServerTlsSettings {
    /// Whether file-based certificate paths are set.
    pub fn has_file_certificates(&self) -> bool {
        set(&self.ca_certificates) || set(&self.private_key) || set(&self.server_certificate)
    }

    /// Whether certificates come from Kubernetes secrets.
    pub fn has_credential(&self) -> bool {
        set(&self.credential_name) || !self.credential_names.is_empty()
    }

    fn ciphers(&self, path: &FieldPath, p: &mut Problems) {
        if matches!(
            self.min_protocol_version,
            Some(TlsProtocol::Tlsv1_0 | TlsProtocol::Tlsv1_1)
        ) && self.cipher_suites.is_empty()
        {
            p.warn(
                &path.field("minProtocolVersion"),
                "TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers: set cipherSuites",
            );
        }
        let mut seen = BTreeSet::new();
        for (i, c) in self.cipher_suites.iter().enumerate() {
            let at = path.field("cipherSuites").index(i);
            if !CIPHER_SUITES.contains(&c.as_str()) {
                p.warn(
                    &at,
                    format!("ignoring invalid cipher suite {c:?}: it is not a cipher Envoy knows"),
                );
            } else if !seen.insert(c.as_str()) {
                p.warn(&at, format!("ignoring duplicate cipher suite {c:?}"));
            }
        }
        if let (Some(min), Some(max)) = (self.min_protocol_version, self.max_protocol_version) {
            if min != TlsProtocol::TlsAuto && max != TlsProtocol::TlsAuto && min > max {
                p.error(
                    path,
                    format!("minProtocolVersion {min} is above maxProtocolVersion {max}: no TLS version could be negotiated"),
                );
            }
        }
    }

    fn sources(&self, path: &FieldPath, p: &mut Problems) {
        let name = set(&self.credential_name);
        let names = !self.credential_names.is_empty();
        let certs = !self.tls_certificates.is_empty();
        if name && names {
            p.error(
                path,
                "only one of credentialName or credentialNames can be set",
            );
        }
        if name && certs {
            p.error(
                path,
                "only one of credentialName or tlsCertificates can be set",
            );
        }
        if names && certs {
            p.error(
                path,
                "only one of credentialNames or tlsCertificates can be set",
            );
        }
        if self.credential_names.len() > 2 {
            p.error(
                &path.field("credentialNames"),
                format!("Too many: {}: credentialNames may list at most 2 secrets (e.g. one RSA and one ECDSA)", self.credential_names.len()),
            );
        }
        if self.tls_certificates.len() > 2 {
            p.error(
                &path.field("tlsCertificates"),
                format!(
                    "Too many: {}: tlsCertificates may list at most 2 certificates",
                    self.tls_certificates.len()
                ),
            );
        }
        for (i, c) in self.tls_certificates.iter().enumerate() {
            let at = path.field("tlsCertificates").index(i);
            if !set(&c.server_certificate) {
                p.error(
                    &at.field("serverCertificate"),
                    "Required value: each tlsCertificates entry needs serverCertificate",
                );
            }
            if !set(&c.private_key) {
                p.error(
                    &at.field("privateKey"),
                    "Required value: each tlsCertificates entry needs privateKey",
                );
            }
        }
        if (names || certs) && (set(&self.server_certificate) || set(&self.private_key)) {
            p.warn(
                path,
                "serverCertificate/privateKey are ignored when credentialNames or tlsCertificates is set",
            );
        }
    }
}

impl Validate for ServerTlsSettings {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let mode = self.mode.unwrap_or(ServerTlsMode::Passthrough);
        self.ciphers(path, p);
        self.sources(path, p);

        if mode == ServerTlsMode::IstioMutual {
            for (v, field, what) in [
                (
                    &self.server_certificate,
                    "serverCertificate",
                    "server certificate",
                ),
                (&self.private_key, "privateKey", "private key"),
                (&self.ca_certificates, "caCertificates", "CA bundle"),
                (&self.credential_name, "credentialName", "credentialName"),
            ] {
                if set(v) {
                    p.error(
                        &path.field(field),
                        format!("ISTIO_MUTUAL TLS cannot have associated {what}: the mesh's own certificates are used"),
                    );
                }
            }
            return;
        }
        if matches!(
            mode,
            ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
        ) && (set(&self.ca_crl)
            || self.has_file_certificates()
            || self.has_credential()
            || !self.tls_certificates.is_empty())
        {
            p.warn(
                path,
                format!("{mode} mode does not use certificates, they will be ignored"),
            );
        }
        let terminating = matches!(
            mode,
            ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
        );
        if terminating && self.has_credential() {
            if set(&self.ca_crl) {
                p.error(
                    &path.field("caCrl"),
                    "CRL is not supported with credentialName. CRL has to be specified in the credential",
                );
            }
            return;
        }
        let has_key_pair = !self.tls_certificates.is_empty()
            || (set(&self.server_certificate) && set(&self.private_key));
        match mode {
            ServerTlsMode::Simple if !has_key_pair => {
                if !set(&self.server_certificate) {
                    p.error(
                        path,
                        "SIMPLE TLS requires a server certificate: set credentialName (a Kubernetes secret) or serverCertificate and privateKey",
                    );
                }
                if !set(&self.private_key) {
                    p.error(
                        path,
                        "SIMPLE TLS requires a private key: set credentialName (a Kubernetes secret) or serverCertificate and privateKey",
                    );
                }
            }
            ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {
                if !has_key_pair {
                    if !set(&self.server_certificate) {
                        p.error(
                            path,
                            "MUTUAL TLS requires a server certificate: set credentialName (a Kubernetes secret) or serverCertificate, privateKey and caCertificates",
                        );
                    }
                    if !set(&self.private_key) {
                        p.error(
                            path,
                            "MUTUAL TLS requires a private key: set credentialName (a Kubernetes secret) or serverCertificate, privateKey and caCertificates",
                        );
                    }
                }
                let ca = set(&self.ca_certificates)
                    || set(&self.ca_cert_credential_name)
                    || self
                        .tls_certificates
                        .iter()
                        .any(|c| set(&c.ca_certificates));
                if !ca {
                    p.error(
                        path,
                        "MUTUAL TLS requires a client CA bundle: set caCertificates, caCertCredentialName or credentialName",
                    );
                }
            }
            _ => {}
        }
        if set(&self.ca_crl) && mode == ServerTlsMode::Simple {
            p.error(
                &path.field("caCrl"),
                "CRL is not supported with SIMPLE TLS: client certificates are only checked in MUTUAL mode",
            );
        }
    }
}
