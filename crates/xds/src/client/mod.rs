//! The ADS client: one stream (Delta by default, SotW on request) to the control plane,
//! kept up forever with jittered exponential backoff.
//!
//! The client owns the protocol — subscriptions, nonces, ACK/NACK, Delta's resource
//! map, known versions on reconnect — and hands every update to a [`Handler`] as the
//! COMPLETE current set of its type. A rejected update is NACKed with the handler's
//! reason and the previous set stays current (last-known-good); a lost connection
//! changes nothing the handler sees until new updates arrive.

mod backoff;
mod delta;
mod session;
mod sotw;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::pb::envoy::config::core::v3::Node;
use crate::{Any, Protocol};

pub use backoff::Backoff;
pub use state::resource_name;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of the control plane (`http://` is added when no scheme is given).
    pub address: String,
    /// Sent on the first request of every stream.
    pub node: Node,
    pub protocol: Protocol,
    /// Types in subscription order (CDS, EDS, LDS, RDS, then anything else).
    pub types: Vec<TypeSubscription>,
    /// First reconnect delay; doubles per failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl ClientConfig {
    /// Delta ADS for the four Envoy types (CDS and LDS wildcard, EDS and RDS by name),
    /// backing off from 100ms to 15s.
    pub fn new(address: impl Into<String>, node: Node) -> Self {
        use crate::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
        ClientConfig {
            address: address.into(),
            node,
            protocol: Protocol::Delta,
            types: vec![
                TypeSubscription::wildcard(CLUSTER),
                TypeSubscription::named(ENDPOINT),
                TypeSubscription::wildcard(LISTENER),
                TypeSubscription::named(ROUTE),
            ],
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(15),
        }
    }

    /// The address as a URI tonic accepts.
    pub fn uri(&self) -> String {
        if self.address.contains("://") {
            self.address.clone()
        } else {
            format!("http://{}", self.address)
        }
    }
}

/// One type the client subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeSubscription {
    pub type_url: String,
    /// Everything of the type (LDS, CDS, NDS); otherwise the names
    /// [`Handler::names`] returns (EDS, RDS).
    pub wildcard: bool,
}

impl TypeSubscription {
    pub fn wildcard(type_url: impl Into<String>) -> Self {
        TypeSubscription {
            type_url: type_url.into(),
            wildcard: true,
        }
    }

    pub fn named(type_url: impl Into<String>) -> Self {
        TypeSubscription {
            type_url: type_url.into(),
            wildcard: false,
        }
    }
}

/// One resource as the client holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct XdsResource {
    pub name: String,
    /// Delta: the resource's own version; SotW: the `version_info` it came with.
    pub version: String,
    pub resource: Any,
}

/// A new set of one type, offered to [`Handler::apply`].
#[derive(Clone, Debug)]
pub struct Update {
    pub type_url: String,
    /// SotW: the response's `version_info`. Delta: `system_version_info`, or a hash of
    /// the resource versions when the server sends none.
    pub version_info: String,
    /// The complete set of this type after the update, by name.
    pub resources: Arc<BTreeMap<String, XdsResource>>,
    /// Names present before and absent now.
    pub removed: Vec<String>,
}

/// The stream's state, reported to [`Handler::connection`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Connected,
    Disconnected { error: String },
}

/// What the consumer of xDS (the proxy) plugs into the client.
pub trait Handler: Send + Sync + 'static {
    /// Applies the complete new set for a type. `Err(detail)` NACKs with that
    /// `error_detail` (name the resource and the reason); the previous set stays
    /// current.
    fn apply(&self, update: &Update) -> Result<(), String>;

    /// For non-wildcard types (EDS, RDS): the names to subscribe to now. Called after
    /// every accepted update of any type and on [`ClientHandle::refresh_names`]; the
    /// client re-subscribes when the set changes.
    fn names(&self, type_url: &str) -> BTreeSet<String>;

    fn connection(&self, _state: ConnectionState) {}
}

/// A shared handler (the proxy keeps an `Arc` of its own to read state).
impl<H: Handler + ?Sized> Handler for Arc<H> {
    fn apply(&self, update: &Update) -> Result<(), String> {
        (**self).apply(update)
    }

    fn names(&self, type_url: &str) -> BTreeSet<String> {
        (**self).names(type_url)
    }

    fn connection(&self, state: ConnectionState) {
        (**self).connection(state)
    }
}

/// The client's view of one type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TypeClientStatus {
    pub type_url: String,
    pub short_name: Option<String>,
    pub wildcard: bool,
    /// The names subscribed to (non-wildcard types).
    pub names: Vec<String>,
    /// The version of the set currently applied; `None` before the first accepted update.
    pub accepted_version: Option<String>,
    #[serde(skip)]
    pub accepted_at: Option<SystemTime>,
    /// Resources in the applied set.
    pub resources: usize,
    /// The nonce of the last response on the current stream.
    pub last_nonce: Option<String>,
    /// The reason of the last rejection (kept after later ACKs).
    pub last_nack: Option<String>,
    pub acks: u64,
    pub nacks: u64,
}

/// The client's state as [`ClientHandle::status`] returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClientStatus {
    pub connected: bool,
    /// Streams opened so far (1 after the first connect, +1 per reconnect).
    pub streams: u64,
    /// Why the last stream ended or the last attempt failed.
    pub last_error: Option<String>,
    pub types: Vec<TypeClientStatus>,
}

impl ClientStatus {
    /// Every type with something to subscribe to has an accepted update: the proxy may
    /// report ready. Named types with no names yet (no clusters need endpoints) do not
    /// hold it back.
    pub fn synced(&self) -> bool {
        self.types
            .iter()
            .all(|t| t.accepted_version.is_some() || (!t.wildcard && t.names.is_empty()))
    }

    pub fn get(&self, type_url: &str) -> Option<&TypeClientStatus> {
        self.types.iter().find(|t| t.type_url == type_url)
    }
}

/// The ADS client.
pub struct AdsClient;

impl AdsClient {
    /// Starts the client on the current tokio runtime; it runs until
    /// [`ClientHandle::shutdown`] or until the handle is dropped.
    pub fn spawn(config: ClientConfig, handler: Arc<dyn Handler>) -> ClientHandle {
        let types = state::Types::new(&config.types);
        let (status_tx, status_rx) = watch::channel(types.status(false, 0, None));
        let (stop_tx, stop_rx) = watch::channel(false);
        let refresh = Arc::new(Notify::new());
        let task = tokio::spawn(session::run(
            config,
            handler,
            types,
            status_tx,
            stop_rx,
            refresh.clone(),
        ));
        ClientHandle {
            status: status_rx,
            stop: stop_tx,
            refresh,
            task: Some(task),
        }
    }
}

/// Controls a running client.
pub struct ClientHandle {
    status: watch::Receiver<ClientStatus>,
    stop: watch::Sender<bool>,
    refresh: Arc<Notify>,
    task: Option<JoinHandle<()>>,
}

impl ClientHandle {
    pub fn status(&self) -> ClientStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change (for readiness, tests).
    pub fn watch_status(&self) -> watch::Receiver<ClientStatus> {
        self.status.clone()
    }

    /// Waits until [`ClientStatus::synced`].
    pub async fn wait_synced(&self) {
        let mut rx = self.status.clone();
        let _ = rx.wait_for(ClientStatus::synced).await;
    }

    /// Asks the handler for its names again (something other than xDS changed them).
    pub fn refresh_names(&self) {
        self.refresh.notify_one();
    }

    /// Closes the stream and waits for the client task to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Handler for Fixed {
        fn apply(&self, update: &Update) -> Result<(), String> {
            Err(update.version_info.clone())
        }
        fn names(&self, type_url: &str) -> BTreeSet<String> {
            [type_url.to_owned()].into()
        }
    }

    #[test]
    fn shared_handlers_delegate() {
        let shared = Arc::new(Fixed);
        let wrapped: Arc<dyn Handler> = Arc::new(shared.clone());
        assert_eq!(wrapped.names("x"), ["x".to_owned()].into());
        let update = Update {
            type_url: "t".into(),
            version_info: "v9".into(),
            resources: Arc::default(),
            removed: vec![],
        };
        assert_eq!(wrapped.apply(&update), Err("v9".into()));
    }

    #[test]
    fn uri_gets_a_scheme() {
        let c = ClientConfig::new("127.0.0.1:15010", Node::default());
        assert_eq!(c.uri(), "http://127.0.0.1:15010");
        let c = ClientConfig::new("http://[::1]:15010", Node::default());
        assert_eq!(c.uri(), "http://[::1]:15010");
        assert_eq!(c.protocol, Protocol::Delta);
    }
}
