//! The ADS server's view of discovery: the current PushContext, swapped whole on every
//! applied snapshot, and the proxies connected right now (for the debug API).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use ironmesh_discovery::{generate, Proxy, PushContext};
use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::{Any, Generator, Push, Resource, Subscription};

/// A connected proxy as the debug API shows it.
#[derive(Debug, Clone)]
pub struct Connected {
    pub proxy: Arc<Proxy>,
    pub node: Node,
    /// Open streams from this node (a reconnect briefly overlaps the old stream).
    pub streams: usize,
}

pub struct MeshGenerator {
    push: ArcSwap<PushContext>,
    /// Snapshot version the current push context was built from.
    snapshot_version: std::sync::atomic::AtomicU64,
    proxies: Mutex<BTreeMap<String, Connected>>,
}

impl MeshGenerator {
    pub fn new(domain: &str) -> Self {
        let empty = PushContext::new(Arc::new(ironmesh_registry::Snapshot::empty()), domain);
        MeshGenerator {
            push: ArcSwap::from_pointee(empty),
            snapshot_version: Default::default(),
            proxies: Mutex::new(BTreeMap::new()),
        }
    }

    /// Publishes a new push context; generation after this call sees it.
    pub fn swap(&self, push: Arc<PushContext>, snapshot_version: u64) {
        self.push.store(push);
        self.snapshot_version
            .store(snapshot_version, std::sync::atomic::Ordering::Release);
    }

    pub fn snapshot_version(&self) -> u64 {
        self.snapshot_version
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Connected proxies by node id.
    pub fn connected(&self) -> BTreeMap<String, Connected> {
        self.proxies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every resource of `type_url` for `proxy` from the current push context.
    pub fn resources(&self, proxy: &Proxy, type_url: &str) -> Result<Vec<Resource>, String> {
        let push = self.push.load();
        let generated = generate(&push, proxy, type_url).map_err(|e| e.to_string())?;
        Ok(generated
            .into_iter()
            .map(|(name, any)| Resource {
                name,
                resource: Any {
                    type_url: any.type_url,
                    value: any.value,
                },
            })
            .collect())
    }
}

impl Generator for MeshGenerator {
    type Proxy = Arc<Proxy>;

    fn connect(&self, node: &Node) -> Result<Self::Proxy, tonic::Status> {
        let proxy = Arc::new(Proxy::from_node(node).map_err(|e| {
            tonic::Status::invalid_argument(format!(
                "cannot accept node {:?}: {e} (node ids look like sidecar~10.1.0.5~pod.ns~ns.svc.cluster.local)",
                node.id
            ))
        })?);
        let mut proxies = self.proxies.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = proxies.entry(node.id.clone()).or_insert_with(|| Connected {
            proxy: proxy.clone(),
            node: node.clone(),
            streams: 0,
        });
        entry.proxy = proxy.clone();
        entry.node = node.clone();
        entry.streams += 1;
        tracing::info!(node = %node.id, "proxy connected");
        Ok(proxy)
    }

    fn generate(
        &self,
        proxy: &Self::Proxy,
        type_url: &str,
        _push: &Push,
        _subscription: &Subscription,
    ) -> Result<Vec<Resource>, String> {
        self.resources(proxy, type_url)
    }

    fn disconnect(&self, proxy: &Self::Proxy) {
        let mut proxies = self.proxies.lock().unwrap_or_else(PoisonError::into_inner);
        let id = proxy.id.clone();
        if let Some(c) = proxies.get_mut(&id) {
            c.streams = c.streams.saturating_sub(1);
            if c.streams == 0 {
                proxies.remove(&id);
            }
        }
        tracing::info!(node = %id, "proxy disconnected");
    }
}
