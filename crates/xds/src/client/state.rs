//! What the client keeps per type across streams: the subscription, the last accepted
//! set (last-known-good) and its version.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use prost::Message;
use prost_reflect::{DynamicMessage, Value};

use super::{ClientStatus, Handler, TypeClientStatus, TypeSubscription, Update, XdsResource};
use crate::hash::content_hash;
use crate::json::descriptor_pool;
use crate::pb::envoy::service::discovery::v3::Resource as WireResource;
use crate::Any;

const WRAPPED: &str = "type.googleapis.com/envoy.service.discovery.v3.Resource";

/// The name of a resource, read from its `name` field (`cluster_name` for a
/// `ClusterLoadAssignment`). SotW responses carry bare `Any`s, so this is how the client
/// keys them. `None` for types unknown to `envoy-types` or without such a field.
pub fn resource_name(any: &Any) -> Option<String> {
    if any.type_url == WRAPPED {
        let wrapped = WireResource::decode(any.value.as_slice()).ok()?;
        return Some(wrapped.name);
    }
    let name = any
        .type_url
        .rsplit_once('/')
        .map_or(&*any.type_url, |(_, n)| n);
    let descriptor = descriptor_pool().ok()?.get_message_by_name(name)?;
    let message = DynamicMessage::decode(descriptor, any.value.as_slice()).ok()?;
    ["name", "cluster_name"].iter().find_map(|field| {
        match message.get_field_by_name(field)?.as_ref() {
            Value::String(s) => Some(s.clone()),
            _ => None,
        }
    })
}

/// Unwraps a SotW resource sent inside `envoy.service.discovery.v3.Resource`.
pub(super) fn unwrap_resource(any: Any) -> Any {
    if any.type_url != WRAPPED {
        return any;
    }
    match WireResource::decode(any.value.as_slice()) {
        Ok(WireResource {
            resource: Some(inner),
            ..
        }) => inner,
        _ => any,
    }
}

pub(super) struct TypeState {
    pub(super) type_url: String,
    pub(super) wildcard: bool,
    /// Names subscribed to on the current stream (non-wildcard types).
    pub(super) names: BTreeSet<String>,
    /// A first request went out on the current stream.
    pub(super) started: bool,
    pub(super) accepted: Arc<BTreeMap<String, XdsResource>>,
    /// Delta: the set the server believes this client holds — every response applied
    /// in order, accepted or not — so that the next diff applies to the right base.
    /// Equal to `accepted` unless the last update was rejected.
    pub(super) received: Arc<BTreeMap<String, XdsResource>>,
    pub(super) version: Option<String>,
    pub(super) accepted_at: Option<SystemTime>,
    pub(super) nonce: Option<String>,
    pub(super) last_nack: Option<String>,
    pub(super) acks: u64,
    pub(super) nacks: u64,
}

impl TypeState {
    /// Whether the type has anything to subscribe to.
    pub(super) fn wants_any(&self) -> bool {
        self.wildcard || !self.names.is_empty()
    }

    pub(super) fn wants(&self, name: &str) -> bool {
        self.wildcard || self.names.contains(name)
    }

    /// The subscribed names as a request lists them.
    pub(super) fn name_list(&self) -> Vec<String> {
        if self.wildcard {
            Vec::new()
        } else {
            self.names.iter().cloned().collect()
        }
    }

    /// Offers `next` to the handler. On success it becomes the accepted set and the
    /// update is returned; on failure the accepted set stays and the reason is returned.
    pub(super) fn offer(
        &mut self,
        handler: &dyn Handler,
        next: Arc<BTreeMap<String, XdsResource>>,
        version_info: String,
        nonce: &str,
    ) -> Result<Update, String> {
        let removed: Vec<String> = self
            .accepted
            .keys()
            .filter(|name| !next.contains_key(*name))
            .cloned()
            .collect();
        let update = Update {
            type_url: self.type_url.clone(),
            version_info,
            resources: next,
            removed,
        };
        let short = crate::type_url::short_name(&self.type_url).unwrap_or(&self.type_url);
        match handler.apply(&update) {
            Ok(()) => {
                tracing::info!(
                    r#type = short,
                    version = %update.version_info,
                    nonce,
                    resources = update.resources.len(),
                    removed = update.removed.len(),
                    "xDS update accepted (ACK)"
                );
                self.accepted = update.resources.clone();
                self.version = Some(update.version_info.clone());
                self.accepted_at = Some(SystemTime::now());
                self.acks += 1;
                Ok(update)
            }
            Err(error) => {
                tracing::warn!(
                    r#type = short,
                    version = %update.version_info,
                    nonce,
                    %error,
                    "xDS update rejected (NACK); keeping the previous config"
                );
                self.last_nack = Some(error.clone());
                self.nacks += 1;
                Err(error)
            }
        }
    }

    /// Records a rejection found before the handler saw the update.
    pub(super) fn reject(&mut self, error: String) -> String {
        tracing::warn!(r#type = %self.type_url, %error, "xDS update rejected (NACK)");
        self.last_nack = Some(error.clone());
        self.nacks += 1;
        error
    }

    /// Drops resources no longer subscribed to: the server forgets them too.
    pub(super) fn prune_unwanted(&mut self) {
        if self.wildcard {
            return;
        }
        for set in [&mut self.accepted, &mut self.received] {
            if set.keys().all(|n| self.names.contains(n)) {
                continue;
            }
            let kept: BTreeMap<_, _> = set
                .iter()
                .filter(|(name, _)| self.names.contains(*name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            *set = Arc::new(kept);
        }
    }

    fn status(&self) -> TypeClientStatus {
        TypeClientStatus {
            type_url: self.type_url.clone(),
            short_name: crate::type_url::short_name(&self.type_url).map(str::to_owned),
            wildcard: self.wildcard,
            names: self.names.iter().cloned().collect(),
            accepted_version: self.version.clone(),
            accepted_at: self.accepted_at,
            resources: self.accepted.len(),
            last_nonce: self.nonce.clone(),
            last_nack: self.last_nack.clone(),
            acks: self.acks,
            nacks: self.nacks,
        }
    }
}

/// Every subscribed type, in subscription order.
pub(super) struct Types {
    pub(super) list: Vec<TypeState>,
}

impl Types {
    pub(super) fn new(subscriptions: &[TypeSubscription]) -> Self {
        let mut seen = BTreeSet::new();
        let list = subscriptions
            .iter()
            .filter(|s| seen.insert(s.type_url.clone()))
            .map(|s| TypeState {
                type_url: s.type_url.clone(),
                wildcard: s.wildcard,
                names: BTreeSet::new(),
                started: false,
                accepted: Arc::new(BTreeMap::new()),
                received: Arc::new(BTreeMap::new()),
                version: None,
                accepted_at: None,
                nonce: None,
                last_nack: None,
                acks: 0,
                nacks: 0,
            })
            .collect();
        Types { list }
    }

    pub(super) fn index(&self, type_url: &str) -> Option<usize> {
        self.list.iter().position(|t| t.type_url == type_url)
    }

    /// A new stream: nothing has been requested or received on it yet.
    pub(super) fn reset_stream(&mut self) {
        for t in &mut self.list {
            t.started = false;
            t.nonce = None;
            // A new stream starts from what the handler has; the server resends the rest.
            t.received = t.accepted.clone();
        }
    }

    /// Asks the handler for the names of every non-wildcard type; returns the indexes
    /// whose names changed, with the names they had (the new ones are already stored,
    /// and resources no longer wanted are dropped).
    pub(super) fn refresh_names(
        &mut self,
        handler: &dyn Handler,
    ) -> Vec<(usize, BTreeSet<String>)> {
        let mut changed = Vec::new();
        for (i, t) in self.list.iter_mut().enumerate() {
            if t.wildcard {
                continue;
            }
            let names = handler.names(&t.type_url);
            if names != t.names {
                let old = std::mem::replace(&mut t.names, names);
                t.prune_unwanted();
                changed.push((i, old));
            }
        }
        changed
    }

    pub(super) fn status(
        &self,
        connected: bool,
        streams: u64,
        last_error: Option<String>,
    ) -> ClientStatus {
        ClientStatus {
            connected,
            streams,
            last_error,
            types: self.list.iter().map(TypeState::status).collect(),
        }
    }
}

/// A version for a Delta update whose server sent no `system_version_info`: a hash of
/// the resource versions, so equal sets get equal versions.
pub(super) fn synthesized_version(resources: &BTreeMap<String, XdsResource>) -> String {
    let mut text = String::new();
    for (name, r) in resources {
        text.push_str(name);
        text.push('\0');
        text.push_str(&r.version);
        text.push('\0');
    }
    let any = Any {
        type_url: String::new(),
        value: text.into_bytes(),
    };
    format!("{:016x}", content_hash(&any))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::envoy::config::cluster::v3::Cluster;
    use crate::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

    #[test]
    fn names_come_from_the_resource() {
        let c = crate::pack(&Cluster {
            name: "outbound|80||a.default.svc.cluster.local".into(),
            ..Default::default()
        });
        assert_eq!(
            resource_name(&c).as_deref(),
            Some("outbound|80||a.default.svc.cluster.local")
        );
        let e = crate::pack(&ClusterLoadAssignment {
            cluster_name: "e".into(),
            ..Default::default()
        });
        assert_eq!(resource_name(&e).as_deref(), Some("e"));
        let wrapped = crate::pack(&WireResource {
            name: "w".into(),
            resource: Some(c.clone()),
            ..Default::default()
        });
        assert_eq!(resource_name(&wrapped).as_deref(), Some("w"));
        assert_eq!(unwrap_resource(wrapped), c);
        let unknown = Any {
            type_url: "type.googleapis.com/example.Unknown".into(),
            value: vec![],
        };
        assert_eq!(resource_name(&unknown), None);
    }
}
