//! Downstream TLS (gateway HTTPS termination): the `DownstreamTlsContext` of a filter
//! chain and the SDS `Secret`s it names, compiled into rustls types.
//!
//! Certificates only ever arrive by SDS name (`kubernetes://NAME`), as Istio's gateways
//! get them; a chain whose secret has not arrived yet still binds (the listener does not
//! wait for it, unlike Envoy's warming) and fails its handshakes until it does.

use std::sync::Arc;

use ironmesh_xds::pb::envoy::config::core::v3::{data_source::Specifier, DataSource};
use ironmesh_xds::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, secret, CertificateValidationContext,
    DownstreamTlsContext, Secret as SecretPb,
};
use ironmesh_xds::Any;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{decode, CompileError};

/// What a filter chain's `DownstreamTlsContext` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownstreamTls {
    /// SDS name of the server certificate.
    pub cert_secret: String,
    /// ALPN offered to clients, in preference order (`h2`, `http/1.1`).
    pub alpn: Vec<String>,
    pub require_client_certificate: bool,
    /// SDS name of the CA bundle client certificates are verified with (`MUTUAL`).
    pub ca_secret: Option<String>,
}

impl DownstreamTls {
    /// Every SDS name this context needs.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.cert_secret.as_str()).chain(self.ca_secret.as_deref())
    }
}

/// Compiles the transport socket's typed config. Inline certificates (`tls_certificates`)
/// are refused: discovery sends gateways SDS names only.
pub fn downstream(any: &Any) -> Result<DownstreamTls, String> {
    let ctx: DownstreamTlsContext = decode(any)?;
    let common = ctx.common_tls_context.unwrap_or_default();
    if !common.tls_certificates.is_empty() {
        return Err("inline tls_certificates are not supported; serve the certificate by SDS (Gateway credentialName)".into());
    }
    let cert_secret = match common.tls_certificate_sds_secret_configs.as_slice() {
        [one] => one.name.clone(),
        [] => return Err("DownstreamTlsContext has no tls_certificate_sds_secret_configs: set credentialName on the Gateway server".into()),
        _ => return Err("more than one server certificate per filter chain is not supported".into()),
    };
    let ca_secret = match common.validation_context_type {
        None => None,
        Some(ValidationContextType::ValidationContextSdsSecretConfig(s)) => Some(s.name),
        Some(ValidationContextType::CombinedValidationContext(c)) => {
            if let Some(v) = &c.default_validation_context {
                restrictive_fields(v)?;
            }
            c.validation_context_sds_secret_config.map(|s| s.name)
        }
        Some(ValidationContextType::ValidationContext(v)) => {
            restrictive_fields(&v)?;
            if v.trusted_ca.is_some() {
                return Err("a validation context with file/inline trusted_ca is not supported; use an SDS `-cacert` secret".into());
            }
            None
        }
        Some(_) => return Err("unsupported validation context type".into()),
    };
    let require_client_certificate = ctx.require_client_certificate.is_some_and(|b| b.value);
    if require_client_certificate && ca_secret.is_none() {
        return Err(
            "require_client_certificate without a CA (validation context) to verify clients with"
                .into(),
        );
    }
    Ok(DownstreamTls {
        cert_secret,
        alpn: common.alpn_protocols,
        require_client_certificate,
        ca_secret,
    })
}

/// Client-certificate restrictions the handshake does not check: accepting the update
/// would let in clients the Gateway (`subjectAltNames`, `verifyCertificateSpki`,
/// `verifyCertificateHash`, `caCrl`) means to refuse, so it is NACKed instead.
fn restrictive_fields(v: &CertificateValidationContext) -> Result<(), String> {
    let unsupported = [
        (
            !v.match_typed_subject_alt_names.is_empty(),
            "subject alt name matchers (subjectAltNames)",
        ),
        (
            !v.verify_certificate_spki.is_empty(),
            "verify_certificate_spki (verifyCertificateSpki)",
        ),
        (
            !v.verify_certificate_hash.is_empty(),
            "verify_certificate_hash (verifyCertificateHash)",
        ),
        (v.crl.is_some(), "crl (caCrl)"),
    ];
    match unsupported.iter().find(|(set, _)| *set) {
        Some((_, what)) => Err(format!(
            "client certificate {what} are not checked by this proxy; remove them from the Gateway server's tls settings"
        )),
        None => Ok(()),
    }
}

/// A compiled SDS secret.
#[derive(Debug, Clone)]
pub enum Secret {
    Certificate(Arc<CertifiedKey>),
    /// Client CA roots (`…-cacert`).
    Ca(Arc<rustls::RootCertStore>),
}

fn bytes<'a>(d: &'a Option<DataSource>, field: &str) -> Result<&'a [u8], String> {
    match d.as_ref().and_then(|d| d.specifier.as_ref()) {
        Some(Specifier::InlineBytes(b)) => Ok(b),
        Some(Specifier::InlineString(s)) => Ok(s.as_bytes()),
        Some(Specifier::Filename(f)) => Err(format!(
            "{field} from file {f} is not supported; SDS secrets must carry inline PEM"
        )),
        _ => Err(format!("{field} is empty")),
    }
}

fn certs(pem: &[u8], field: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!("{field}: bad PEM ({e}); expected -----BEGIN CERTIFICATE----- blocks")
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{field}: no PEM CERTIFICATE block; the Secret's tls.crt must hold the PEM chain"
        ));
    }
    Ok(certs)
}

/// Compiles one SDS resource; `Err` names the secret and what is wrong (the NACK).
pub fn compile_secret(name: &str, any: &Any) -> Result<Secret, CompileError> {
    let err = |m: String| CompileError::new("Secret", name, m);
    let pb: SecretPb = decode(any).map_err(err)?;
    match pb.r#type {
        Some(secret::Type::TlsCertificate(c)) => {
            let chain = certs(
                bytes(&c.certificate_chain, "certificate_chain").map_err(err)?,
                "certificate_chain",
            )
            .map_err(err)?;
            let key_pem = bytes(&c.private_key, "private_key").map_err(err)?;
            let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
                err(format!(
                    "private_key: bad PEM ({e}); expected a PKCS#8, PKCS#1 or SEC1 private key"
                ))
            })?;
            let provider = rustls::crypto::ring::default_provider();
            let ck = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
                err(format!(
                    "certificate and key do not form a usable pair: {e}"
                ))
            })?;
            Ok(Secret::Certificate(Arc::new(ck)))
        }
        Some(secret::Type::ValidationContext(v)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(
                bytes(&v.trusted_ca, "trusted_ca").map_err(err)?,
                "trusted_ca",
            )
            .map_err(err)?
            {
                roots
                    .add(c)
                    .map_err(|e| err(format!("trusted_ca: not a usable CA certificate: {e}")))?;
            }
            Ok(Secret::Ca(Arc::new(roots)))
        }
        _ => Err(err(
            "only tls_certificate and validation_context secrets are supported".into(),
        )),
    }
}

#[cfg(test)]
mod tests;
