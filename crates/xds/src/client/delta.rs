//! Incremental xDS: responses carry changed resources and removed names; the client
//! keeps the map and tells a new stream which versions it already holds.

use std::collections::BTreeSet;

use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::session::{nack_status, stream_error, Client, Ctx};
use super::state::{resource_name, synthesized_version, TypeState};
use super::XdsResource;
use crate::pb::envoy::config::core::v3::Node;
use crate::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};

/// Requests of one stream; the node goes on the first only.
struct Out {
    tx: mpsc::UnboundedSender<DeltaDiscoveryRequest>,
    node: Option<Node>,
}

impl Out {
    fn send(&mut self, mut request: DeltaDiscoveryRequest) {
        if let Some(node) = self.node.take() {
            request.node = Some(node);
        }
        // A closed channel means the stream ended; the receive side reports why.
        let _ = self.tx.send(request);
    }

    /// The first request of a type on this stream: the subscription (`*` for wildcard)
    /// and the versions held from earlier streams, so the server sends only what
    /// changed.
    fn start(&mut self, t: &mut TypeState) {
        if t.started || !t.wants_any() {
            return;
        }
        t.started = true;
        let subscribe = if t.wildcard {
            vec!["*".to_owned()]
        } else {
            t.names.iter().cloned().collect()
        };
        self.send(DeltaDiscoveryRequest {
            type_url: t.type_url.clone(),
            resource_names_subscribe: subscribe,
            initial_resource_versions: t
                .accepted
                .values()
                .map(|r| (r.name.clone(), r.version.clone()))
                .collect(),
            ..Default::default()
        });
    }

    /// A names change of a type: subscribe the new names, unsubscribe the old ones.
    fn change(&mut self, t: &mut TypeState, old: &BTreeSet<String>) {
        if !t.started {
            self.start(t);
            return;
        }
        let subscribe: Vec<String> = t.names.difference(old).cloned().collect();
        let unsubscribe: Vec<String> = old.difference(&t.names).cloned().collect();
        if subscribe.is_empty() && unsubscribe.is_empty() {
            return;
        }
        self.send(DeltaDiscoveryRequest {
            type_url: t.type_url.clone(),
            resource_names_subscribe: subscribe,
            resource_names_unsubscribe: unsubscribe,
            ..Default::default()
        });
    }
}

pub(super) async fn stream(ctx: &mut Ctx, mut client: Client, refresh: &Notify) -> String {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut out = Out {
        tx,
        node: Some(ctx.config.node.clone()),
    };
    ctx.types.refresh_names(&*ctx.handler);
    for t in &mut ctx.types.list {
        out.start(t);
    }
    let mut inbound = match client
        .delta_aggregated_resources(UnboundedReceiverStream::new(rx))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => return stream_error(Err(status)),
    };
    ctx.connected();
    loop {
        tokio::select! {
            message = inbound.message() => match message {
                Ok(Some(response)) => on_response(ctx, &mut out, response),
                other => return stream_error(other.map(|_| None)),
            },
            _ = refresh.notified() => {
                resubscribe(ctx, &mut out);
                ctx.publish();
            }
        }
    }
}

fn resubscribe(ctx: &mut Ctx, out: &mut Out) {
    for (i, old) in ctx.types.refresh_names(&*ctx.handler) {
        out.change(&mut ctx.types.list[i], &old);
    }
}

fn on_response(ctx: &mut Ctx, out: &mut Out, response: DeltaDiscoveryResponse) {
    let Some(i) = ctx.types.index(&response.type_url) else {
        tracing::warn!(type_url = %response.type_url,
            "ignoring an xDS response for a type this proxy did not subscribe to");
        return;
    };
    ctx.progressed();
    let handler = ctx.handler.clone();
    let t = &mut ctx.types.list[i];
    t.nonce = Some(response.nonce.clone());
    let mut next = (*t.received).clone();
    for r in &response.resources {
        // A resource without a body only refreshes a TTL; nothing to apply.
        let Some(any) = &r.resource else { continue };
        let name = if r.name.is_empty() {
            resource_name(any).unwrap_or_default()
        } else {
            r.name.clone()
        };
        if !t.wants(&name) {
            continue;
        }
        let resource = XdsResource {
            name: name.clone(),
            version: r.version.clone(),
            resource: any.clone(),
        };
        next.insert(name, resource);
    }
    for name in &response.removed_resources {
        next.remove(name);
    }
    let next = std::sync::Arc::new(next);
    t.received = next.clone();
    let result = if t.version.is_some() && next == t.accepted {
        // Nothing new (typically the first response after a reconnect, when the
        // server already had our versions): the handler's state is still current.
        tracing::debug!(type_url = %t.type_url, nonce = %response.nonce, "xDS response without changes");
        Ok(())
    } else {
        let version = if response.system_version_info.is_empty() {
            synthesized_version(&next)
        } else {
            response.system_version_info.clone()
        };
        t.offer(&*handler, next, version, &response.nonce)
            .map(|_| ())
    };
    match result {
        Ok(()) => {
            out.send(DeltaDiscoveryRequest {
                type_url: response.type_url,
                response_nonce: response.nonce,
                ..Default::default()
            });
            resubscribe(ctx, out);
        }
        Err(error) => out.send(DeltaDiscoveryRequest {
            type_url: response.type_url,
            response_nonce: response.nonce,
            error_detail: Some(nack_status(error)),
            ..Default::default()
        }),
    }
    ctx.publish();
}
