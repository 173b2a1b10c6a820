//! The ADS server: `StreamAggregatedResources` (state of the world) and
//! `DeltaAggregatedResources` (incremental) over one tonic service, generic over a
//! [`Generator`] that the control plane implements.
//!
//! The server owns the protocol — subscriptions, versions, nonces, ACK/NACK, diffs for
//! Delta, push ordering and throttling — and nothing about what the resources mean.
//! Pushes arrive on a `watch` channel of [`Push`]; each connection regenerates the types
//! a push touches and sends them.

/// The loop both ADS variants run per stream: accept the first request (which carries
/// the node), then serve requests and pushes in arrival order until either side ends.
/// A macro rather than a generic function because each variant's handlers are plain
/// `async fn`s over its own connection type, and the spawned future must stay `Send`.
macro_rules! serve_stream {
    ($inner:expr, $inbound:expr, $tx:expr, $protocol:expr, $on_request:ident, $on_push:ident) => {{
        let mut inbound = $inbound;
        let first = match inbound.message().await {
            Ok(Some(request)) => request,
            _ => return,
        };
        let Some(mut conn) =
            $crate::server::conn::Conn::accept($inner, first.node.as_ref(), $protocol, $tx).await
        else {
            return;
        };
        let mut pending = Some(first);
        let mut pushes_open = true;
        loop {
            let request = match pending.take() {
                Some(request) => request,
                None => tokio::select! {
                    message = inbound.message() => match message {
                        Ok(Some(request)) => request,
                        Ok(None) => break,
                        Err(status) => {
                            tracing::debug!(id = %conn.id(), %status, "xDS stream ended");
                            break;
                        }
                    },
                    changed = conn.pushes.changed(), if pushes_open => {
                        if changed.is_err() {
                            pushes_open = false;
                            continue;
                        }
                        let next = conn.pushes.borrow_and_update().clone();
                        if $on_push(&mut conn, next).await.is_err() {
                            break;
                        }
                        continue;
                    }
                },
            };
            if $on_request(&mut conn, request).await.is_err() {
                break;
            }
        }
    }};
}

mod conn;
mod delta;
mod metrics;
mod sotw;
mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::pb::envoy::config::core::v3::Node;
use crate::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use crate::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use crate::Any;

pub use status::{ConnectionStatus, Nack, Protocol, Subscription, TypeStatus};

use metrics::Metrics;
use status::ConnState;

/// What the control plane plugs into the server.
pub trait Generator: Send + Sync + 'static {
    /// Per-connection data the generator derives from the node (its model of the proxy).
    type Proxy: Send + Sync + 'static;

    /// Called with the node of the stream's first request. An error closes the stream
    /// with that status (say what the proxy should fix, e.g. a malformed node id).
    fn connect(&self, node: &Node) -> Result<Self::Proxy, Status>;

    /// The resources of `type_url` for this proxy at `push`. Returning every resource of
    /// the type is always correct: the server keeps only what `subscription` wants (and
    /// diffs for Delta). A generator may use `subscription` to skip work, e.g. build only
    /// the subscribed EDS clusters. An error is logged and shown in the status; the
    /// client keeps what it has.
    fn generate(
        &self,
        proxy: &Self::Proxy,
        type_url: &str,
        push: &Push,
        subscription: &Subscription,
    ) -> Result<Vec<Resource>, String>;

    /// The id shown in `/debug/syncz` and logs; the node id unless overridden.
    fn proxy_id(&self, node: &Node, _proxy: &Self::Proxy) -> String {
        node.id.clone()
    }

    /// Called once when the stream of a connected proxy ends.
    fn disconnect(&self, _proxy: &Self::Proxy) {}
}

/// One named resource, packed.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub name: String,
    pub resource: Any,
}

impl Resource {
    /// Packs `message` under `name`.
    pub fn new<M: prost::Name + prost::Message>(name: impl Into<String>, message: &M) -> Self {
        Resource {
            name: name.into(),
            resource: crate::pack(message),
        }
    }
}

/// Which types a push regenerates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushScope {
    /// Every type every connection subscribes to.
    Full,
    /// Only these type URLs.
    Types(BTreeSet<String>),
    /// Only endpoints (EDS): a workload came or went, no config changed.
    Endpoints,
}

impl PushScope {
    /// The scope covering both: any `Full` makes `Full`; types are united.
    pub fn merge(self, other: PushScope) -> PushScope {
        use PushScope::*;
        match (self, other) {
            (Full, _) | (_, Full) => Full,
            (Endpoints, Endpoints) => Endpoints,
            (Types(mut a), Types(b)) => {
                a.extend(b);
                Types(a)
            }
            (Types(mut a), Endpoints) | (Endpoints, Types(mut a)) => {
                a.insert(crate::type_url::ENDPOINT.to_owned());
                Types(a)
            }
        }
    }

    /// Whether the push regenerates `type_url`.
    pub fn includes(&self, type_url: &str) -> bool {
        match self {
            PushScope::Full => true,
            PushScope::Types(types) => types.contains(type_url),
            PushScope::Endpoints => type_url == crate::type_url::ENDPOINT,
        }
    }
}

/// One push: a version of the control plane's state and what changed since the
/// previous one.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// Increases by exactly one per push. A connection that sees a gap (it was busy
    /// while several pushes were published) treats the push as `Full`, since it cannot
    /// know the scopes it missed.
    pub version: u64,
    pub scope: PushScope,
    /// When the first change behind this push happened (for convergence time).
    pub started: Instant,
}

/// Publishes pushes with consecutive versions, as [`Push::version`] requires.
#[derive(Debug)]
pub struct PushPublisher {
    tx: watch::Sender<Push>,
}

impl Default for PushPublisher {
    fn default() -> Self {
        Self::new()
    }
}

impl PushPublisher {
    /// Starts at version 1 with a full scope: the state the control plane has now.
    pub fn new() -> Self {
        let (tx, _) = watch::channel(Push {
            version: 1,
            scope: PushScope::Full,
            started: Instant::now(),
        });
        PushPublisher { tx }
    }

    /// A receiver for [`AdsServer::new`].
    pub fn subscribe(&self) -> watch::Receiver<Push> {
        self.tx.subscribe()
    }

    /// The latest push.
    pub fn current(&self) -> Push {
        self.tx.borrow().clone()
    }

    /// Publishes a push of `scope` whose change happened now; returns its version.
    pub fn publish(&self, scope: PushScope) -> u64 {
        self.publish_since(scope, Instant::now())
    }

    /// Publishes a push whose first change happened at `started`; returns its version.
    pub fn publish_since(&self, scope: PushScope, started: Instant) -> u64 {
        let mut version = 0;
        self.tx.send_modify(|push| {
            push.version += 1;
            push.scope = scope;
            push.started = started;
            version = push.version;
        });
        version
    }
}

/// Tuning knobs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Connections pushing at once (Istio's `PILOT_PUSH_THROTTLE`, default 100).
    pub max_concurrent_pushes: usize,
    /// Responses queued per connection before the push waits for the client.
    pub response_buffer: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_concurrent_pushes: 100,
            response_buffer: 16,
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the debug endpoints down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) struct Inner<G: Generator> {
    pub(crate) generator: Arc<G>,
    pub(crate) pushes: watch::Receiver<Push>,
    pub(crate) push_permits: Semaphore,
    pub(crate) metrics: Metrics,
    pub(crate) config: ServerConfig,
    connections: Mutex<BTreeMap<u64, Arc<Mutex<ConnState>>>>,
    next_connection: AtomicU64,
    next_nonce: AtomicU64,
}

impl<G: Generator> Inner<G> {
    pub(crate) fn nonce(&self) -> String {
        format!("{:x}", self.next_nonce.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Records a new connection; the guard removes it again.
    pub(crate) fn register(
        self: &Arc<Self>,
        node: &Node,
        proxy_id: String,
        protocol: Protocol,
        push_version: u64,
    ) -> Registration<G> {
        let key = self.next_connection.fetch_add(1, Ordering::Relaxed) + 1;
        let state = Arc::new(Mutex::new(ConnState {
            id: format!("{proxy_id}-{key}"),
            proxy_id,
            node_id: node.id.clone(),
            protocol,
            connected_at: status::now_rfc3339(),
            push_version,
            types: BTreeMap::new(),
        }));
        lock(&self.connections).insert(key, state.clone());
        self.metrics.connected();
        Registration {
            inner: self.clone(),
            key,
            state,
        }
    }
}

/// Keeps a connection listed while its stream lives.
pub(crate) struct Registration<G: Generator> {
    inner: Arc<Inner<G>>,
    key: u64,
    pub(crate) state: Arc<Mutex<ConnState>>,
}

impl<G: Generator> Drop for Registration<G> {
    fn drop(&mut self) {
        lock(&self.inner.connections).remove(&self.key);
        self.inner.metrics.disconnected();
    }
}

/// The ADS server. Cheap to clone; serve it with [`AdsServer::into_service`].
pub struct AdsServer<G: Generator> {
    inner: Arc<Inner<G>>,
}

impl<G: Generator> Clone for AdsServer<G> {
    fn clone(&self) -> Self {
        AdsServer {
            inner: self.inner.clone(),
        }
    }
}

impl<G: Generator> AdsServer<G> {
    /// A server that generates with `generator`, pushes on every change of `pushes`, and
    /// registers its metrics into `registry`.
    pub fn new(
        generator: Arc<G>,
        pushes: watch::Receiver<Push>,
        config: ServerConfig,
        registry: &mut Registry,
    ) -> Self {
        AdsServer {
            inner: Arc::new(Inner {
                generator,
                pushes,
                push_permits: Semaphore::new(config.max_concurrent_pushes.max(1)),
                metrics: Metrics::new(registry),
                config,
                connections: Mutex::new(BTreeMap::new()),
                next_connection: AtomicU64::new(0),
                next_nonce: AtomicU64::new(0),
            }),
        }
    }

    /// The tonic service to add to a `tonic::transport::Server`.
    pub fn into_service(self) -> AggregatedDiscoveryServiceServer<Self> {
        AggregatedDiscoveryServiceServer::new(self)
    }

    /// The generator the server was built with.
    pub fn generator(&self) -> &Arc<G> {
        &self.inner.generator
    }

    /// Every open stream with its sync state, oldest first.
    pub fn connections(&self) -> Vec<ConnectionStatus> {
        let states: Vec<_> = lock(&self.inner.connections).values().cloned().collect();
        states.iter().map(|s| lock(s).status()).collect()
    }
}

type ResponseStream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl<G: Generator> AggregatedDiscoveryService for AdsServer<G> {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(self.inner.config.response_buffer.max(1));
        tokio::spawn(sotw::serve(self.inner.clone(), request.into_inner(), tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(self.inner.config.response_buffer.max(1));
        tokio::spawn(delta::serve(self.inner.clone(), request.into_inner(), tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// The scope a connection must apply when it moves from `seen` to `next`.
pub(crate) fn effective_scope(seen: &Push, next: &Push) -> PushScope {
    if next.version == seen.version + 1 {
        next.scope.clone()
    } else {
        PushScope::Full
    }
}

/// Types to regenerate for a push, in the order Istio sends them.
pub(crate) fn types_to_push(state: &ConnState, scope: &PushScope) -> Vec<String> {
    let mut types: Vec<String> = state
        .types
        .iter()
        .filter(|(t, s)| scope.includes(t) && !s.status.subscription.is_empty())
        .map(|(t, _)| t.clone())
        .collect();
    types.sort_by_key(|t| crate::type_url::push_order(t));
    types
}

/// The stream ended because the client went away or the stream was closed.
#[derive(Debug)]
pub(crate) struct Closed;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::type_url::{CLUSTER, ENDPOINT, LISTENER};

    fn types(urls: &[&str]) -> PushScope {
        PushScope::Types(urls.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn scopes_merge() {
        assert_eq!(
            PushScope::Endpoints.merge(PushScope::Endpoints),
            PushScope::Endpoints
        );
        assert_eq!(types(&[CLUSTER]).merge(PushScope::Full), PushScope::Full);
        assert_eq!(
            types(&[CLUSTER]).merge(types(&[LISTENER])),
            types(&[CLUSTER, LISTENER])
        );
        assert_eq!(
            PushScope::Endpoints.merge(types(&[CLUSTER])),
            types(&[CLUSTER, ENDPOINT])
        );
        assert!(PushScope::Endpoints.includes(ENDPOINT));
        assert!(!PushScope::Endpoints.includes(CLUSTER));
    }

    #[test]
    fn gaps_in_versions_mean_full() {
        let p = |version, scope| Push {
            version,
            scope,
            started: Instant::now(),
        };
        let seen = p(3, PushScope::Full);
        assert_eq!(
            effective_scope(&seen, &p(4, PushScope::Endpoints)),
            PushScope::Endpoints
        );
        assert_eq!(
            effective_scope(&seen, &p(6, PushScope::Endpoints)),
            PushScope::Full
        );
    }

    #[test]
    fn publisher_counts_up() {
        let publisher = PushPublisher::new();
        let mut rx = publisher.subscribe();
        assert_eq!(rx.borrow_and_update().version, 1);
        assert_eq!(publisher.publish(PushScope::Endpoints), 2);
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow().scope, PushScope::Endpoints);
        assert_eq!(publisher.current().version, 2);
    }
}
