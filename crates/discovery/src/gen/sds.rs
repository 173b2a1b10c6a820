//! SDS: gateway certificates from Kubernetes Secrets, under the names istiod serves
//! them (`kubernetes://NAME`, `kubernetes://NS/NAME`, and `…-cacert` for the CA a
//! `MUTUAL` server verifies clients with).
//!
//! Only routers (gateways) get secrets, and only from their own namespace unless the
//! name spells one out: a sidecar must never be able to read a gateway's private key by
//! asking for it. Both the `kubernetes.io/tls` keys (`tls.crt`, `tls.key`, `ca.crt`) and
//! Istio's generic ones (`cert`, `key`, `cacert`) are read, from `data` or `stringData`.

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    secret, CertificateValidationContext, Secret, TlsCertificate,
};
use ironmesh_config::object::Resource;

use crate::proxy::Proxy;
use crate::push_context::PushContext;

const PREFIX: &str = "kubernetes://";
const CACERT_SUFFIX: &str = "-cacert";

/// A parsed SDS resource name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretName<'a> {
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    /// `…-cacert`: the CA bundle, not the key pair.
    pub ca: bool,
}

/// Parses `kubernetes://[NS/]NAME[-cacert]`; other schemes (`default`, `ROOTCA`, files)
/// are not served from Secrets.
pub fn parse(resource: &str) -> Option<SecretName<'_>> {
    let rest = resource.strip_prefix(PREFIX)?;
    let (namespace, name) = match rest.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, rest),
    };
    let (name, ca) = match name.strip_suffix(CACERT_SUFFIX) {
        Some(base) => (base, true),
        None => (name, false),
    };
    (!name.is_empty()).then_some(SecretName {
        namespace,
        name,
        ca,
    })
}

/// The value of the first of `keys` present in the Secret, `stringData` winning over
/// `data` as the API server merges them.
fn value(s: &k8s_openapi::api::core::v1::Secret, keys: &[&str]) -> Option<Vec<u8>> {
    for k in keys {
        if let Some(v) = s.string_data.as_ref().and_then(|d| d.get(*k)) {
            return Some(v.clone().into_bytes());
        }
        if let Some(v) = s.data.as_ref().and_then(|d| d.get(*k)) {
            return Some(v.0.clone());
        }
    }
    None
}

fn find<'a>(
    push: &'a PushContext,
    namespace: &str,
    name: &str,
) -> Option<&'a k8s_openapi::api::core::v1::Secret> {
    push.snapshot()
        .of_kind("Secret")
        .find(|o| o.namespace() == namespace && o.name() == name)
        .and_then(|o| match &o.resource {
            Resource::Secret(s) => Some(&**s),
            _ => None,
        })
}

fn inline(bytes: Vec<u8>) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(bytes)),
        ..Default::default()
    }
}

const CERT_KEYS: &[&str] = &["tls.crt", "cert"];
const KEY_KEYS: &[&str] = &["tls.key", "key"];
const CA_KEYS: &[&str] = &["ca.crt", "cacert"];

/// The envoy Secret for one requested name, or `None` when there is no such Kubernetes
/// Secret (Envoy then keeps the listener warming, failing handshakes).
pub fn secret_for(push: &PushContext, proxy: &Proxy, resource: &str) -> Option<Secret> {
    let wanted = parse(resource)?;
    let ns = proxy.namespace.as_str();
    if wanted.namespace.is_some_and(|n| n != ns) {
        return None;
    }
    let r#type = if wanted.ca {
        // Istio looks for a separate `NAME-cacert` Secret first, then `ca.crt` in NAME.
        let ca = find(push, ns, &format!("{}{CACERT_SUFFIX}", wanted.name))
            .and_then(|s| value(s, CA_KEYS))
            .or_else(|| find(push, ns, wanted.name).and_then(|s| value(s, CA_KEYS)))?;
        secret::Type::ValidationContext(CertificateValidationContext {
            trusted_ca: Some(inline(ca)),
            ..Default::default()
        })
    } else {
        let s = find(push, ns, wanted.name)?;
        let (cert, key) = (value(s, CERT_KEYS)?, value(s, KEY_KEYS)?);
        secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline(cert)),
            private_key: Some(inline(key)),
            ..Default::default()
        })
    };
    Some(Secret {
        name: resource.to_string(),
        r#type: Some(r#type),
    })
}

/// Every Secret the router may read, under every name it could ask for it by. SDS is a
/// named subscription, so the ADS server filters this down to what was requested. Only
/// the proxy's own namespace is served: `kubernetes://NS/NAME` for another namespace
/// would hand one team's private key to another team's gateway.
pub fn generate(push: &PushContext, proxy: &Proxy) -> Vec<Secret> {
    if !proxy.is_router() {
        return Vec::new();
    }
    let ns = proxy.namespace.as_str();
    let mut names: Vec<String> = push
        .snapshot()
        .of_kind("Secret")
        .filter(|o| o.namespace() == ns)
        .flat_map(|o| {
            let n = o.name();
            [
                format!("{PREFIX}{n}"),
                format!("{PREFIX}{n}{CACERT_SUFFIX}"),
                format!("{PREFIX}{ns}/{n}"),
                format!("{PREFIX}{ns}/{n}{CACERT_SUFFIX}"),
            ]
        })
        .collect();
    names.sort();
    names.dedup();
    names
        .iter()
        .filter_map(|n| secret_for(push, proxy, n))
        .collect()
}
