//! The seams between the agent's state and its neighbours: the ADS client's
//! [`Handler`] (compile each update into the snapshot, NACK on error) and the admin
//! server's [`AdminHooks`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ironmesh_xds::client::{ConnectionState, Handler, Update, XdsResource};
use ironmesh_xds::Any;

use super::state::ProxyState;
use crate::admin::{AdminHooks, AdminState};

/// Feeds ADS updates into the proxy; accepted ones are recorded for `/config_dump`.
pub struct XdsHandler {
    pub state: Arc<ProxyState>,
    pub admin: AdminState,
    /// Where NDS name tables go when the DNS proxy runs (`ISTIO_META_DNS_CAPTURE`).
    pub dns: Option<tokio::sync::watch::Sender<Arc<crate::dns::NameTable>>>,
}

impl XdsHandler {
    /// NDS is not part of the data-plane snapshot: it only feeds the DNS proxy.
    fn apply_name_table(&self, update: &Update) -> Result<(), String> {
        let table = crate::dns::NameTable::from_resources(
            update
                .resources
                .iter()
                .map(|(name, r)| (name.as_str(), &r.resource)),
        )?;
        if let Some(tx) = &self.dns {
            tx.send_replace(Arc::new(table));
        }
        self.admin.record_update(update);
        Ok(())
    }
}

impl Handler for XdsHandler {
    fn apply(&self, update: &Update) -> Result<(), String> {
        if update.type_url == ironmesh_xds::type_url::NAME_TABLE {
            return self.apply_name_table(update).inspect_err(|e| {
                tracing::warn!(version = %update.version_info, error = %e, "name table rejected (NACK); DNS keeps the last good table");
            });
        }
        let resources: BTreeMap<String, Any> = update
            .resources
            .iter()
            .map(|(k, v)| (k.clone(), v.resource.clone()))
            .collect();
        match self
            .state
            .apply(&update.type_url, &update.version_info, Arc::new(resources))
        {
            Ok(()) => {
                self.admin.record_update(update);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(type_url = %update.type_url, version = %update.version_info, error = %e, "config rejected (NACK); the last good config keeps serving");
                println!(
                    "config rejected type={} version={} error={e}",
                    update.type_url.rsplit('.').next().unwrap_or(""),
                    update.version_info
                );
                Err(e)
            }
        }
    }

    fn names(&self, type_url: &str) -> BTreeSet<String> {
        self.state.names(type_url)
    }

    fn connection(&self, state: ConnectionState) {
        match state {
            ConnectionState::Connected => tracing::info!("connected to discovery"),
            ConnectionState::Connecting => tracing::debug!("connecting to discovery"),
            ConnectionState::Disconnected { error } => {
                tracing::warn!(%error, "disconnected from discovery; serving the last good config")
            }
        }
    }
}

/// An update holding `resources` as the complete set of `type_url` (static config).
pub fn update(type_url: &str, version: &str, resources: &BTreeMap<String, Any>) -> Update {
    Update {
        type_url: type_url.to_string(),
        version_info: version.to_string(),
        resources: Arc::new(
            resources
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        XdsResource {
                            name: k.clone(),
                            version: version.to_string(),
                            resource: v.clone(),
                        },
                    )
                })
                .collect(),
        ),
        removed: Vec::new(),
    }
}

impl AdminHooks for ProxyState {
    fn ready(&self) -> Result<(), String> {
        if ProxyState::ready(self) {
            Ok(())
        } else {
            Err("not ready: waiting for the first listeners and clusters from discovery, and for every listener to be bound".into())
        }
    }

    fn stats_prometheus(&self) -> String {
        ProxyState::stats_prometheus(self)
    }

    fn drain_listeners(&self) {
        ProxyState::drain_listeners(self)
    }

    fn quit(&self) {
        ProxyState::quit(self)
    }

    fn clusters_text(&self) -> String {
        ProxyState::clusters_text(self)
    }
}
