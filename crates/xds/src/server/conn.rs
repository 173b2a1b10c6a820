//! What SotW and Delta streams share: accepting the node, the registration that keeps
//! the connection visible in the status, and the push loop's bookkeeping.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

use super::status::{now_rfc3339, Nack, Protocol, TypeState};
use super::{lock, Closed, Generator, Inner, Push, Registration};
use crate::pb::envoy::config::core::v3::Node;

pub(crate) struct Conn<G: Generator, R> {
    pub(crate) inner: Arc<Inner<G>>,
    pub(crate) proxy: G::Proxy,
    pub(crate) reg: Registration<G>,
    pub(crate) tx: mpsc::Sender<Result<R, Status>>,
    /// The push this connection has applied; responses carry its version.
    pub(crate) seen: Push,
    pub(crate) pushes: tokio::sync::watch::Receiver<Push>,
}

impl<G: Generator, R> Conn<G, R> {
    /// Accepts a stream whose first request carried `node`, or ends it with the reason.
    pub(crate) async fn accept(
        inner: Arc<Inner<G>>,
        node: Option<&Node>,
        protocol: Protocol,
        tx: mpsc::Sender<Result<R, Status>>,
    ) -> Option<Self> {
        let Some(node) = node else {
            let status = Status::invalid_argument(
                "the first request of an ADS stream must carry `node`; check the client's \
                 bootstrap",
            );
            let _ = tx.send(Err(status)).await;
            return None;
        };
        let proxy = match inner.generator.connect(node) {
            Ok(proxy) => proxy,
            Err(status) => {
                tracing::warn!(node = %node.id, %status, "rejected an xDS connection");
                let _ = tx.send(Err(status)).await;
                return None;
            }
        };
        let mut pushes = inner.pushes.clone();
        let seen = pushes.borrow_and_update().clone();
        let proxy_id = inner.generator.proxy_id(node, &proxy);
        let reg = inner.register(node, proxy_id, protocol, seen.version);
        tracing::info!(id = %lock(&reg.state).id, ?protocol, "xDS connection accepted");
        Some(Conn {
            inner,
            proxy,
            reg,
            tx,
            seen,
            pushes,
        })
    }

    pub(crate) fn id(&self) -> String {
        lock(&self.reg.state).id.clone()
    }

    /// Applies `f` to the state of `type_url` (creating it) under the connection's lock.
    pub(crate) fn with_type<T>(&self, type_url: &str, f: impl FnOnce(&mut TypeState) -> T) -> T {
        let mut state = lock(&self.reg.state);
        let entry = state
            .types
            .entry(type_url.to_owned())
            .or_insert_with(|| TypeState::new(type_url));
        f(entry)
    }

    pub(crate) fn knows_type(&self, type_url: &str) -> bool {
        lock(&self.reg.state).types.contains_key(type_url)
    }

    /// Records the client's rejection of the response with `nonce`.
    pub(crate) fn record_nack(&self, type_url: &str, nonce: &str, message: &str) {
        let id = self.id();
        let version = self.with_type(type_url, |t| {
            let version = t.status.sent_version.clone().unwrap_or_default();
            t.status.last_nack = Some(Nack {
                message: message.to_owned(),
                version: version.clone(),
                nonce: nonce.to_owned(),
                at: now_rfc3339(),
            });
            version
        });
        self.inner.metrics.rejected(type_url);
        tracing::warn!(%id, type_url, %version, error = message, "config rejected (NACK)");
    }

    /// Records that the client applied `version` (the one it ACKed).
    pub(crate) fn record_ack(&self, type_url: &str, version: String) {
        let converged = self.with_type(type_url, |t| {
            let current = t.status.sent_version.as_deref() == Some(version.as_str());
            t.status.acked_version = Some(version);
            t.status.acked_at = Some(now_rfc3339());
            if current {
                t.converge_from.take()
            } else {
                None
            }
        });
        if let Some(from) = converged {
            self.inner
                .metrics
                .converged(Instant::now().saturating_duration_since(from).as_secs_f64());
        }
    }

    /// Records a response about to be sent.
    pub(crate) fn record_sent(
        &self,
        type_url: &str,
        nonce: &str,
        resources: usize,
        push_started: Option<Instant>,
    ) {
        let version = self.seen.version.to_string();
        self.with_type(type_url, |t| {
            t.status.sent_version = Some(version);
            t.status.sent_nonce = Some(nonce.to_owned());
            t.status.sent_at = Some(now_rfc3339());
            t.status.sent_resources = resources;
            t.status.generate_error = None;
            if push_started.is_some() && t.converge_from.is_none() {
                t.converge_from = push_started;
            }
        });
    }

    pub(crate) fn record_generate_error(&self, type_url: &str, error: String) {
        tracing::error!(id = %self.id(), type_url, %error, "cannot generate xDS resources");
        self.with_type(type_url, |t| t.status.generate_error = Some(error));
    }

    /// Moves to `next`, returning the scope to regenerate.
    pub(crate) fn advance(&mut self, next: Push) -> super::PushScope {
        let scope = super::effective_scope(&self.seen, &next);
        self.seen = next;
        lock(&self.reg.state).push_version = self.seen.version;
        scope
    }

    pub(crate) async fn send(&self, response: R) -> Result<(), Closed> {
        self.tx.send(Ok(response)).await.map_err(|_| Closed)
    }

    /// Closes the stream with an error the client sees.
    pub(crate) async fn fail(&self, status: Status) {
        tracing::warn!(id = %self.id(), %status, "closing xDS stream");
        let _ = self.tx.send(Err(status)).await;
    }
}

impl<G: Generator, R> Drop for Conn<G, R> {
    fn drop(&mut self) {
        tracing::info!(id = %self.id(), "xDS connection closed");
        self.inner.generator.disconnect(&self.proxy);
    }
}
