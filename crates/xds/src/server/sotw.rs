//! State-of-the-world ADS: every response carries all subscribed resources of its type.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::{Status, Streaming};

use super::conn::Conn;
use super::status::{Protocol, Subscription};
use super::{lock, types_to_push, Closed, Generator, Inner, Push};
use crate::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use crate::type_url::is_wildcard_type;

type SotwConn<G> = Conn<G, DiscoveryResponse>;

pub(crate) async fn serve<G: Generator>(
    inner: Arc<Inner<G>>,
    inbound: Streaming<DiscoveryRequest>,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
) {
    serve_stream!(inner, inbound, tx, Protocol::Sotw, on_request, on_push)
}

/// The subscription a request asks for. An empty list keeps a wildcard subscription
/// (and starts one on the first request of LDS/CDS); `*` asks for everything.
fn requested(
    first: bool,
    type_url: &str,
    previous: &Subscription,
    names: &[String],
) -> Subscription {
    let mut names: BTreeSet<String> = names.iter().cloned().collect();
    let star = names.remove("*");
    let legacy = names.is_empty() && (previous.wildcard || (first && is_wildcard_type(type_url)));
    Subscription {
        wildcard: star || legacy,
        names,
    }
}

async fn on_request<G: Generator>(
    conn: &mut SotwConn<G>,
    request: DiscoveryRequest,
) -> Result<(), Closed> {
    let type_url = request.type_url.as_str();
    if type_url.is_empty() {
        conn.fail(Status::invalid_argument(
            "DiscoveryRequest without type_url: on ADS every request must name its type",
        ))
        .await;
        return Err(Closed);
    }
    let first = !conn.knows_type(type_url);
    let respond = if first || request.response_nonce.is_empty() {
        // A new subscription, or the client starting over (reconnect): answer in full.
        conn.with_type(type_url, |t| {
            t.status.subscription = requested(
                first,
                type_url,
                &t.status.subscription,
                &request.resource_names,
            );
        });
        true
    } else {
        let sent_nonce = conn.with_type(type_url, |t| t.status.sent_nonce.clone());
        if sent_nonce.as_deref() != Some(request.response_nonce.as_str()) {
            // Answers a response that a newer one has replaced: the client will answer
            // that one too, with its current subscription.
            tracing::trace!(id = %conn.id(), type_url, "ignoring a stale nonce");
            false
        } else if let Some(error) = &request.error_detail {
            // NACK: keep the subscription as it was and send nothing; the same version
            // would be rejected again. The next push sends a new one.
            conn.record_nack(type_url, &request.response_nonce, &error.message);
            false
        } else {
            conn.record_ack(type_url, request.version_info.clone());
            conn.with_type(type_url, |t| {
                let next = requested(
                    false,
                    type_url,
                    &t.status.subscription,
                    &request.resource_names,
                );
                let changed = next != t.status.subscription;
                t.status.subscription = next;
                changed
            })
        }
    };
    if respond {
        send_type(conn, type_url, None).await?;
    }
    Ok(())
}

async fn on_push<G: Generator>(conn: &mut SotwConn<G>, next: Push) -> Result<(), Closed> {
    let scope = conn.advance(next);
    let types = types_to_push(&lock(&conn.reg.state), &scope);
    if types.is_empty() {
        return Ok(());
    }
    let inner = conn.inner.clone();
    let _permit = inner.push_permits.acquire().await.map_err(|_| Closed)?;
    let started = conn.seen.started;
    for type_url in types {
        send_type(conn, &type_url, Some(started)).await?;
    }
    Ok(())
}

/// Generates `type_url` and sends every subscribed resource of it.
async fn send_type<G: Generator>(
    conn: &SotwConn<G>,
    type_url: &str,
    push_started: Option<Instant>,
) -> Result<(), Closed> {
    let subscription = conn.with_type(type_url, |t| t.status.subscription.clone());
    let start = Instant::now();
    let generated = conn
        .inner
        .generator
        .generate(&conn.proxy, type_url, &conn.seen, &subscription);
    let resources: Vec<_> = match generated {
        Ok(resources) => resources
            .into_iter()
            .filter(|r| subscription.wants(&r.name))
            .map(|r| r.resource)
            .collect(),
        Err(error) => {
            conn.record_generate_error(type_url, error);
            return Ok(());
        }
    };
    let nonce = conn.inner.nonce();
    conn.record_sent(type_url, &nonce, resources.len(), push_started);
    conn.send(DiscoveryResponse {
        version_info: conn.seen.version.to_string(),
        resources,
        type_url: type_url.to_owned(),
        nonce,
        ..Default::default()
    })
    .await?;
    conn.inner
        .metrics
        .pushed(type_url, start.elapsed().as_secs_f64());
    Ok(())
}
