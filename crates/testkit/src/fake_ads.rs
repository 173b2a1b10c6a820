//! A fake control plane: the real `ironmesh_xds::AdsServer` (SotW and Delta) serving a
//! static set of resources the test replaces at will, on its own runtime so that
//! stopping it closes every socket as a restarting control plane does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::{
    AdsServer, Generator, Push, PushPublisher, PushScope, Resource, ServerConfig, Subscription,
};
use serde_json::Value;
use tokio_stream::wrappers::TcpListenerStream;

/// Serves whatever resources were last set, per type URL.
#[derive(Default)]
pub struct StaticGenerator {
    resources: Mutex<BTreeMap<String, Vec<Resource>>>,
    nodes: Mutex<Vec<String>>,
}

impl Generator for StaticGenerator {
    type Proxy = ();

    fn connect(&self, node: &Node) -> Result<(), tonic::Status> {
        self.nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(node.id.clone());
        Ok(())
    }

    fn generate(
        &self,
        _: &(),
        type_url: &str,
        _: &Push,
        _: &Subscription,
    ) -> Result<Vec<Resource>, String> {
        Ok(self
            .resources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(type_url)
            .cloned()
            .unwrap_or_default())
    }
}

/// A running fake control plane.
pub struct FakeAds {
    pub addr: SocketAddr,
    pub generator: Arc<StaticGenerator>,
    publisher: PushPublisher,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Converts golden-shaped JSON (`{"listeners":[…],"routes":[…],"clusters":[…],"endpoints":[…]}`)
/// into resources per type URL.
pub fn resources_from_json(config: &Value) -> BTreeMap<String, Vec<Resource>> {
    use ironmesh_xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
    let mut out = BTreeMap::new();
    for (key, url, name_field) in [
        ("listeners", LISTENER, "name"),
        ("routes", ROUTE, "name"),
        ("clusters", CLUSTER, "name"),
        ("endpoints", ENDPOINT, "clusterName"),
    ] {
        let mut list = Vec::new();
        for r in config
            .get(key)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let name = r
                .get(name_field)
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            let any =
                ironmesh_xds::json_to_any(url, r).unwrap_or_else(|e| panic!("{key} {name}: {e}"));
            list.push(Resource {
                name,
                resource: any,
            });
        }
        out.insert(url.to_string(), list);
    }
    out
}

impl FakeAds {
    /// Starts on `addr` (port 0 picks one), serving `config` (golden-shaped JSON).
    pub fn start(addr: SocketAddr, config: &Value) -> FakeAds {
        let generator = Arc::new(StaticGenerator::default());
        *generator
            .resources
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = resources_from_json(config);
        Self::serve(addr, generator)
    }

    fn serve(addr: SocketAddr, generator: Arc<StaticGenerator>) -> FakeAds {
        let publisher = PushPublisher::new();
        let server = AdsServer::new(
            generator.clone(),
            publisher.subscribe(),
            ServerConfig::default(),
            &mut prometheus_client::registry::Registry::default(),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (tx, rx) = std::sync::mpsc::channel();
        let service = server.into_service();
        runtime.spawn(async move {
            // A restarted server rebinds the same port; the old sockets close asynchronously.
            let mut attempts = 0;
            let listener = loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(e) if attempts < 100 => {
                        attempts += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("fake ADS cannot bind {addr}: {e}"),
                }
            };
            let _ = tx.send(listener.local_addr().expect("addr"));
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fake ADS bound");
        FakeAds {
            addr,
            generator,
            publisher,
            runtime: Some(runtime),
        }
    }

    /// Replaces every resource with `config` and pushes.
    pub fn set(&self, config: &Value) {
        *self
            .generator
            .resources
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = resources_from_json(config);
        self.publisher.publish(PushScope::Full);
    }

    /// Node ids that connected so far.
    pub fn nodes(&self) -> Vec<String> {
        self.generator
            .nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops serving and closes every connection (a control plane going away).
    pub fn stop(mut self) -> Arc<StaticGenerator> {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        self.generator.clone()
    }

    /// Starts again on the same address with the same resources.
    pub fn restart(addr: SocketAddr, generator: Arc<StaticGenerator>) -> FakeAds {
        Self::serve(addr, generator)
    }
}

impl Drop for FakeAds {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
