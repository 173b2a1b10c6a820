//! TLS termination for filter chains with a `DownstreamTlsContext` (gateway `SIMPLE`
//! and `MUTUAL` servers). The certificate is looked up in the snapshot at handshake
//! time, so an SDS rotation takes effect for the next connection without rebinding.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

use crate::model::tls::{DownstreamTls, Secret};
use crate::model::{NetworkFilter, Snapshot};

/// Bound on the handshake, so a client that stalls mid-handshake does not hold a task.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Chain settings a rustls config is built from (secret names, ALPN, client auth).
type Key = (String, Option<String>, Vec<String>, bool, bool);

struct Cached {
    cert: Arc<CertifiedKey>,
    ca: Option<Arc<rustls::RootCertStore>>,
    cfg: Arc<ServerConfig>,
}

/// Built configs, reused while their secrets are the same objects: building one per
/// handshake would cost the client-verifier setup and, worse, lose rustls's session
/// cache, so no client could resume. A rotated secret is a new `Arc`, which rebuilds.
static CONFIGS: LazyLock<Mutex<HashMap<Key, Cached>>> = LazyLock::new(Default::default);

/// Distinct chains a process may see before the cache starts over (it only grows with
/// differently configured chains, not with connections).
const MAX_CACHED: usize = 1024;

/// The rustls config for one chain from the current secrets; `Err` says which secret
/// is missing or unusable (logged; the connection is closed, as Envoy fails handshakes
/// on a listener whose SDS secret has not arrived).
pub fn server_config(
    snap: &Snapshot,
    tls: &DownstreamTls,
    filter: &NetworkFilter,
) -> Result<Arc<ServerConfig>, String> {
    let cert = match snap.secrets.get(&tls.cert_secret) {
        Some(Secret::Certificate(c)) => c.clone(),
        Some(Secret::Ca(_)) => {
            return Err(format!(
                "secret {} holds a CA, not a certificate and key",
                tls.cert_secret
            ))
        }
        None => {
            return Err(format!(
                "secret {} has not arrived from discovery (is there a Kubernetes Secret of that name in the gateway's namespace?)",
                tls.cert_secret
            ))
        }
    };
    let ca = match &tls.ca_secret {
        None => None,
        Some(name) => match snap.secrets.get(name) {
            Some(Secret::Ca(roots)) => Some(roots.clone()),
            _ => {
                return Err(format!(
                    "client CA secret {name} has not arrived from discovery (create the Secret with ca.crt, or NAME-cacert)"
                ))
            }
        },
    };
    let http = matches!(filter, NetworkFilter::Http(_));
    let key: Key = (
        tls.cert_secret.clone(),
        tls.ca_secret.clone(),
        tls.alpn.clone(),
        tls.require_client_certificate,
        http,
    );
    let mut cache = CONFIGS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = cache.get(&key) {
        let same_ca = match (&c.ca, &ca) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if Arc::ptr_eq(&c.cert, &cert) && same_ca {
            return Ok(c.cfg.clone());
        }
    }
    let cfg = build(tls, cert.clone(), ca.clone(), http)?;
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(
        key,
        Cached {
            cert,
            ca,
            cfg: cfg.clone(),
        },
    );
    Ok(cfg)
}

fn build(
    tls: &DownstreamTls,
    cert: Arc<CertifiedKey>,
    ca: Option<Arc<rustls::RootCertStore>>,
    http: bool,
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match ca {
        None => builder.with_no_client_auth(),
        Some(roots) => {
            let v = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let v = if tls.require_client_certificate {
                v
            } else {
                v.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
        }
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(Fixed(cert)));
    cfg.alpn_protocols = if !tls.alpn.is_empty() {
        tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect()
    } else if http {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        Vec::new()
    };
    Ok(Arc::new(cfg))
}

/// Terminates TLS on `io`. `None` when the handshake failed or timed out (logged at
/// debug: bad clients are not the operator's problem) or the chain has no usable secret.
pub async fn accept<I>(
    snap: &Snapshot,
    tls: &DownstreamTls,
    filter: &NetworkFilter,
    io: I,
) -> Option<TlsStream<I>>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let cfg = match server_config(snap, tls, filter) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "TLS filter chain cannot serve; closing the connection");
            return None;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}
