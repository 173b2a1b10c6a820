//! State of the world: every response carries the whole set of its type.

use std::collections::BTreeMap;

use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::session::{nack_status, stream_error, Client, Ctx};
use super::state::{resource_name, unwrap_resource, TypeState};
use super::XdsResource;
use crate::pb::envoy::config::core::v3::Node;
use crate::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

/// Requests of one stream; the node goes on the first only.
struct Out {
    tx: mpsc::UnboundedSender<DiscoveryRequest>,
    node: Option<Node>,
}

impl Out {
    fn send(&mut self, mut request: DiscoveryRequest) {
        if let Some(node) = self.node.take() {
            request.node = Some(node);
        }
        // A closed channel means the stream ended; the receive side reports why.
        let _ = self.tx.send(request);
    }

    /// (Re)states the subscription of `t` with its last accepted version and the last
    /// nonce seen, which is both the reconnect request and a names change.
    fn subscribe(&mut self, t: &mut TypeState) {
        if !t.started && !t.wants_any() {
            return;
        }
        t.started = true;
        self.send(DiscoveryRequest {
            version_info: t.version.clone().unwrap_or_default(),
            resource_names: t.name_list(),
            type_url: t.type_url.clone(),
            response_nonce: t.nonce.clone().unwrap_or_default(),
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
        out.subscribe(t);
    }
    let mut inbound = match client
        .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
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
            _ = refresh.notified() => resubscribe(ctx, &mut out),
        }
    }
}

/// Re-reads the handler's names and re-requests every type whose names changed.
fn resubscribe(ctx: &mut Ctx, out: &mut Out) {
    for (i, _) in ctx.types.refresh_names(&*ctx.handler) {
        out.subscribe(&mut ctx.types.list[i]);
    }
    ctx.publish();
}

fn on_response(ctx: &mut Ctx, out: &mut Out, response: DiscoveryResponse) {
    let Some(i) = ctx.types.index(&response.type_url) else {
        tracing::warn!(type_url = %response.type_url,
            "ignoring an xDS response for a type this proxy did not subscribe to");
        return;
    };
    ctx.progressed();
    let handler = ctx.handler.clone();
    let t = &mut ctx.types.list[i];
    t.nonce = Some(response.nonce.clone());
    let result = collect(t, &response).and_then(|next| {
        t.offer(
            &*handler,
            std::sync::Arc::new(next),
            response.version_info.clone(),
            &response.nonce,
        )
        .map(|_| ())
    });
    match result {
        Ok(()) => {
            // Accepted config may change the names of any type (CDS → EDS names). The
            // ACK carries this type's current names; other types re-request after it.
            let changed = ctx.types.refresh_names(&*handler);
            out.send(DiscoveryRequest {
                version_info: response.version_info,
                resource_names: ctx.types.list[i].name_list(),
                type_url: response.type_url,
                response_nonce: response.nonce,
                ..Default::default()
            });
            for (j, _) in changed {
                if j != i {
                    out.subscribe(&mut ctx.types.list[j]);
                }
            }
        }
        Err(error) => {
            let t = &ctx.types.list[i];
            out.send(DiscoveryRequest {
                version_info: t.version.clone().unwrap_or_default(),
                resource_names: t.name_list(),
                type_url: response.type_url,
                response_nonce: response.nonce,
                error_detail: Some(nack_status(error)),
                ..Default::default()
            });
        }
    }
    ctx.publish();
}

/// The response's resources by name: the complete new set. A name given twice is an
/// error, as in Envoy.
fn collect(
    t: &mut TypeState,
    response: &DiscoveryResponse,
) -> Result<BTreeMap<String, XdsResource>, String> {
    let mut next = BTreeMap::new();
    for (index, any) in response.resources.iter().enumerate() {
        // Types without a name field (Istio's NDS) are keyed by position.
        let name = resource_name(any).unwrap_or_else(|| index.to_string());
        if !t.wants(&name) {
            continue;
        }
        let resource = unwrap_resource(any.clone());
        if next.contains_key(&name) {
            return Err(t.reject(format!(
                "duplicate {} resource {name:?} in one response",
                crate::type_url::short_name(&t.type_url).unwrap_or(&t.type_url)
            )));
        }
        next.insert(
            name.clone(),
            XdsResource {
                name,
                version: response.version_info.clone(),
                resource,
            },
        );
    }
    Ok(next)
}
