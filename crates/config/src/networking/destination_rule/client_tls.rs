//! `ClientTLSSettings`: TLS towards upstream hosts (DestinationRule `tls`, also used by
//! MeshConfig's tracing and egress settings).

use serde::{Deserialize, Serialize};

use crate::path::FieldPath;
use crate::validation::{Context, Problems, Validate};

crate::string_enum! {
    /// `ClientTLSSettings.TLSmode`.
    pub enum ClientTlsMode {
        Disable = "DISABLE",
        Simple = "SIMPLE",
        Mutual = "MUTUAL",
        IstioMutual = "ISTIO_MUTUAL",
    }
}

/// `ClientTLSSettings`: how the proxy originates TLS to the upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTlsSettings {
    /// Defaults to `DISABLE` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ClientTlsMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_crl: Option<String>,
}

fn set(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| !s.is_empty())
}

impl Validate for ClientTlsSettings {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let mode = self.mode.unwrap_or(ClientTlsMode::Disable);
        let credential = set(&self.credential_name);
        let sans = !self.subject_alt_names.is_empty();

        if self.insecure_skip_verify == Some(true) {
            match mode {
                ClientTlsMode::Simple if set(&self.ca_certificates) || credential || sans => {
                    p.error(
                        path,
                        "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true: drop them or turn insecureSkipVerify off",
                    )
                }
                ClientTlsMode::Mutual if set(&self.ca_certificates) || sans => p.error(
                    path,
                    "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true: drop them or turn insecureSkipVerify off",
                ),
                _ => {}
            }
        }

        match mode {
            ClientTlsMode::Simple | ClientTlsMode::Mutual if credential => {
                if set(&self.client_certificate)
                    || set(&self.ca_certificates)
                    || set(&self.private_key)
                    || set(&self.ca_crl)
                {
                    p.error(
                        path,
                        "cannot specify client certificates or CA certificate or CA CRL If credentialName is set: the secret named by credentialName provides them",
                    );
                }
            }
            ClientTlsMode::Mutual => {
                if !set(&self.client_certificate) {
                    p.error(
                        &path.field("clientCertificate"),
                        "client certificate required for mutual tls: set clientCertificate and privateKey, or credentialName",
                    );
                }
                if !set(&self.private_key) {
                    p.error(
                        &path.field("privateKey"),
                        "private key required for mutual tls: set clientCertificate and privateKey, or credentialName",
                    );
                }
            }
            ClientTlsMode::IstioMutual => {
                if set(&self.client_certificate)
                    || set(&self.private_key)
                    || set(&self.ca_certificates)
                    || credential
                {
                    p.warn(
                        path,
                        "ISTIO_MUTUAL uses the mesh's own certificates: clientCertificate, privateKey, caCertificates and credentialName are ignored (use MUTUAL to present your own)",
                    );
                }
            }
            ClientTlsMode::Disable => {
                if set(&self.client_certificate)
                    || set(&self.private_key)
                    || set(&self.ca_certificates)
                    || credential
                {
                    p.warn(
                        path,
                        "tls mode is DISABLE: the certificate settings are ignored (set mode SIMPLE or MUTUAL to use them)",
                    );
                }
            }
            ClientTlsMode::Simple => {}
        }
    }
}
