//! Incremental ADS: responses carry only what changed, plus `removed_resources`.
//!
//! The server remembers, per type, which version of each resource the client holds
//! (seeded from `initial_resource_versions` on reconnect) and sends a resource only
//! when its content hash differs.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::{Status, Streaming};

use super::conn::Conn;
use super::status::Protocol;
use super::{lock, types_to_push, Closed, Generator, Inner, Push};
use crate::hash::resource_version;
use crate::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource as WireResource,
};
use crate::type_url::{is_wildcard_type, CLUSTER, ENDPOINT};

type DeltaConn<G> = Conn<G, DeltaDiscoveryResponse>;

pub(crate) async fn serve<G: Generator>(
    inner: Arc<Inner<G>>,
    inbound: Streaming<DeltaDiscoveryRequest>,
    tx: mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>,
) {
    serve_stream!(inner, inbound, tx, Protocol::Delta, on_request, on_push)
}

async fn on_request<G: Generator>(
    conn: &mut DeltaConn<G>,
    request: DeltaDiscoveryRequest,
) -> Result<(), Closed> {
    let type_url = request.type_url.as_str();
    if type_url.is_empty() {
        conn.fail(Status::invalid_argument(
            "DeltaDiscoveryRequest without type_url: on ADS every request must name its type",
        ))
        .await;
        return Err(Closed);
    }
    let first = !conn.knows_type(type_url);
    if !first && !request.response_nonce.is_empty() {
        let (nonce, version) = conn.with_type(type_url, |t| {
            (t.status.sent_nonce.clone(), t.status.sent_version.clone())
        });
        // A stale nonce answers a response a newer one replaced; only the subscription
        // changes below still count.
        if nonce.as_deref() == Some(request.response_nonce.as_str()) {
            match &request.error_detail {
                Some(error) => conn.record_nack(type_url, &request.response_nonce, &error.message),
                None => conn.record_ack(type_url, version.unwrap_or_default()),
            }
        }
    }
    let (respond, announce) = conn.with_type(type_url, |t| {
        let subscription = &mut t.status.subscription;
        let mut widened = false;
        let mut added = BTreeSet::new();
        if first {
            t.held.extend(request.initial_resource_versions.clone());
            if request.resource_names_subscribe.is_empty() && is_wildcard_type(type_url) {
                subscription.wildcard = true;
            }
        }
        for name in &request.resource_names_subscribe {
            if name == "*" {
                widened |= !subscription.wildcard;
                subscription.wildcard = true;
            } else if subscription.names.insert(name.clone()) {
                added.insert(name.clone());
            }
        }
        for name in &request.resource_names_unsubscribe {
            if name == "*" {
                subscription.wildcard = false;
            } else {
                subscription.names.remove(name);
            }
        }
        // The client drops what it no longer subscribes to; forget we sent it.
        let subscription = subscription.clone();
        t.held.retain(|name, _| subscription.wants(name));
        (first || widened || !added.is_empty(), added)
    });
    if respond {
        send_type(conn, type_url, true, &announce, None).await?;
    }
    Ok(())
}

async fn on_push<G: Generator>(conn: &mut DeltaConn<G>, next: Push) -> Result<(), Closed> {
    let scope = conn.advance(next);
    let types = types_to_push(&lock(&conn.reg.state), &scope);
    if types.is_empty() {
        return Ok(());
    }
    let inner = conn.inner.clone();
    let _permit = inner.push_permits.acquire().await.map_err(|_| Closed)?;
    let started = conn.seen.started;
    let mut types = types;
    let mut i = 0;
    while i < types.len() {
        let type_url = types[i].clone();
        let rewarm = send_type(conn, &type_url, false, &BTreeSet::new(), Some(started)).await?;
        // Envoy warms a re-sent EDS cluster until its endpoints arrive again, and holds
        // its CDS ACK until then, without asking for them (its watch already covers
        // the name). So endpoints of re-sent clusters must follow in this push.
        if rewarm && !types.iter().any(|t| t == ENDPOINT) {
            types.push(ENDPOINT.to_owned());
        }
        i += 1;
    }
    Ok(())
}

/// The EDS names of the EDS clusters among `clusters` (a cluster's `service_name`,
/// or its own name when that is empty).
fn eds_names(clusters: &[WireResource]) -> Vec<String> {
    use crate::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
    use crate::pb::envoy::config::cluster::v3::Cluster;
    use prost::Message;
    clusters
        .iter()
        .filter_map(|r| {
            let any = r.resource.as_ref()?;
            let c = Cluster::decode(any.value.as_slice()).ok()?;
            let eds = matches!(
                c.cluster_discovery_type,
                Some(ClusterDiscoveryType::Type(t)) if t == DiscoveryType::Eds as i32
            );
            eds.then(|| {
                c.eds_cluster_config
                    .map(|e| e.service_name)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(c.name)
            })
        })
        .collect()
}

/// Generates `type_url` and sends what the client does not hold yet and what it must
/// remove. `announce` lists newly subscribed names: those that do not exist are put in
/// `removed_resources`, Delta's way to say "no such resource". Sends nothing when
/// nothing changed, unless `always` (the client waits for an answer). Returns whether
/// EDS clusters were re-sent, whose endpoints then must be re-sent too.
async fn send_type<G: Generator>(
    conn: &DeltaConn<G>,
    type_url: &str,
    always: bool,
    announce: &BTreeSet<String>,
    push_started: Option<Instant>,
) -> Result<bool, Closed> {
    let subscription = conn.with_type(type_url, |t| t.status.subscription.clone());
    let start = Instant::now();
    let generated = conn
        .inner
        .generator
        .generate(&conn.proxy, type_url, &conn.seen, &subscription);
    let generated = match generated {
        Ok(resources) => resources,
        Err(error) => {
            conn.record_generate_error(type_url, error);
            return Ok(false);
        }
    };
    let (resources, removed) = conn.with_type(type_url, |t| {
        let mut present = BTreeSet::new();
        let mut changed = Vec::new();
        for resource in generated {
            if !subscription.wants(&resource.name) || present.contains(&resource.name) {
                continue;
            }
            present.insert(resource.name.clone());
            let version = resource_version(&resource.resource);
            if t.held.get(&resource.name) != Some(&version) {
                t.held.insert(resource.name.clone(), version.clone());
                changed.push(WireResource {
                    name: resource.name,
                    version,
                    resource: Some(resource.resource),
                    ..Default::default()
                });
            }
        }
        let mut removed: Vec<String> = t
            .held
            .keys()
            .filter(|name| !present.contains(*name))
            .cloned()
            .collect();
        for name in &removed {
            t.held.remove(name);
        }
        for name in announce {
            if !present.contains(name) && !removed.contains(name) {
                removed.push(name.clone());
            }
        }
        (changed, removed)
    });
    if resources.is_empty() && removed.is_empty() && !always {
        return Ok(false);
    }
    let mut rewarm = false;
    if type_url == CLUSTER && conn.knows_type(ENDPOINT) {
        let names = eds_names(&resources);
        if !names.is_empty() {
            conn.with_type(ENDPOINT, |t| {
                for n in &names {
                    t.held.remove(n);
                }
            });
            rewarm = true;
        }
    }
    let nonce = conn.inner.nonce();
    conn.record_sent(type_url, &nonce, resources.len(), push_started);
    conn.send(DeltaDiscoveryResponse {
        system_version_info: conn.seen.version.to_string(),
        resources,
        type_url: type_url.to_owned(),
        removed_resources: removed,
        nonce,
        ..Default::default()
    })
    .await?;
    conn.inner
        .metrics
        .pushed(type_url, start.elapsed().as_secs_f64());
    Ok(rewarm)
}
