//! The ADS client against the repo's own ADS server over 127.0.0.1: ACK/NACK in both
//! protocols, names that follow the handler, removals, reconnects that keep the last
//! accepted config, and bounded backoff.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironmesh_xds::pb::envoy::config::cluster::v3::Cluster;
use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use ironmesh_xds::pb::envoy::config::listener::v3::Listener;
use ironmesh_xds::pb::envoy::config::route::v3::RouteConfiguration;
use ironmesh_xds::type_url::{CLUSTER, ENDPOINT, LISTENER, NAME_TABLE, ROUTE};
use ironmesh_xds::{
    AdsClient, AdsServer, ClientConfig, ClientHandle, ConnectionState, Generator, Handler,
    Protocol, Push, PushPublisher, PushScope, Resource, ServerConfig, Subscription,
    TypeSubscription, Update,
};
use prometheus_client::registry::Registry;
use tokio_stream::wrappers::TcpListenerStream;

/// Serves whatever the test put in, per type.
#[derive(Default)]
struct FakeGenerator {
    resources: Mutex<BTreeMap<String, Vec<Resource>>>,
}

impl FakeGenerator {
    fn set(&self, type_url: &str, resources: Vec<Resource>) {
        self.resources
            .lock()
            .unwrap()
            .insert(type_url.to_owned(), resources);
    }
}

impl Generator for FakeGenerator {
    type Proxy = ();

    fn connect(&self, _node: &Node) -> Result<(), tonic::Status> {
        Ok(())
    }

    fn generate(
        &self,
        _proxy: &(),
        type_url: &str,
        _push: &Push,
        _subscription: &Subscription,
    ) -> Result<Vec<Resource>, String> {
        Ok(self
            .resources
            .lock()
            .unwrap()
            .get(type_url)
            .cloned()
            .unwrap_or_default())
    }
}

fn cluster(name: &str, timeout_s: i64) -> Resource {
    Resource::new(
        name,
        &Cluster {
            name: name.into(),
            connect_timeout: Some(ironmesh_xds::pb::google::protobuf::Duration {
                seconds: timeout_s,
                nanos: 0,
            }),
            ..Default::default()
        },
    )
}

fn cla(name: &str) -> Resource {
    Resource::new(
        name,
        &ClusterLoadAssignment {
            cluster_name: name.into(),
            ..Default::default()
        },
    )
}

fn listener(name: &str) -> Resource {
    Resource::new(
        name,
        &Listener {
            name: name.into(),
            ..Default::default()
        },
    )
}

fn route(name: &str) -> Resource {
    Resource::new(
        name,
        &RouteConfiguration {
            name: name.into(),
            ..Default::default()
        },
    )
}

/// An ADS server on its own runtime, so that stopping it really closes every socket,
/// as a control-plane restart does.
struct TestServer {
    server: AdsServer<FakeGenerator>,
    publisher: PushPublisher,
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestServer {
    /// Serves `generator` on `addr` (port 0 picks one).
    async fn start(generator: Arc<FakeGenerator>, addr: SocketAddr) -> TestServer {
        let publisher = PushPublisher::new();
        let server = AdsServer::new(
            generator,
            publisher.subscribe(),
            ServerConfig::default(),
            &mut Registry::default(),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let service = server.clone().into_service();
        runtime.spawn(async move {
            // The old server's sockets close asynchronously; retry the port briefly.
            let mut attempts = 0;
            let listener = loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(listener) => break listener,
                    Err(e) if attempts < 100 => {
                        attempts += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("cannot bind {addr}: {e}"),
                }
            };
            let _ = bound_tx.send(listener.local_addr().unwrap());
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        let addr = tokio::time::timeout(Duration::from_secs(10), bound_rx)
            .await
            .expect("server bound within 10s")
            .expect("server task alive");
        TestServer {
            server,
            publisher,
            addr,
            runtime: Some(runtime),
        }
    }

    fn push(&self) {
        self.publisher.publish(PushScope::Full);
    }

    fn type_status(&self, type_url: &str) -> Option<ironmesh_xds::TypeStatus> {
        let conns = self.server.connections();
        let conn = conns.last()?;
        conn.types.iter().find(|t| t.type_url == type_url).cloned()
    }

    fn stop(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Records updates; rejects any resource whose name starts with `bad`; subscribes EDS
/// to the accepted clusters and RDS to `routes`.
#[derive(Default)]
struct Recorder {
    updates: Mutex<Vec<Update>>,
    current: Mutex<BTreeMap<String, BTreeSet<String>>>,
    routes: Mutex<BTreeSet<String>>,
    states: Mutex<Vec<ConnectionState>>,
}

impl Recorder {
    fn current(&self, type_url: &str) -> BTreeSet<String> {
        self.current
            .lock()
            .unwrap()
            .get(type_url)
            .cloned()
            .unwrap_or_default()
    }

    fn applies(&self, type_url: &str) -> usize {
        self.updates
            .lock()
            .unwrap()
            .iter()
            .filter(|u| u.type_url == type_url)
            .count()
    }

    fn connecting(&self) -> usize {
        self.states
            .lock()
            .unwrap()
            .iter()
            .filter(|s| **s == ConnectionState::Connecting)
            .count()
    }
}

impl Handler for Recorder {
    fn apply(&self, update: &Update) -> Result<(), String> {
        if let Some(bad) = update.resources.keys().find(|n| n.starts_with("bad")) {
            return Err(format!("{bad}: rejected because its name starts with bad"));
        }
        self.updates.lock().unwrap().push(update.clone());
        self.current.lock().unwrap().insert(
            update.type_url.clone(),
            update.resources.keys().cloned().collect(),
        );
        Ok(())
    }

    fn names(&self, type_url: &str) -> BTreeSet<String> {
        match type_url {
            ENDPOINT => self.current(CLUSTER),
            ROUTE => self.routes.lock().unwrap().clone(),
            _ => BTreeSet::new(),
        }
    }

    fn connection(&self, state: ConnectionState) {
        self.states.lock().unwrap().push(state);
    }
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn start_client(addr: SocketAddr, protocol: Protocol, handler: Arc<Recorder>) -> ClientHandle {
    start_client_with(addr, protocol, handler, &[])
}

fn start_client_with(
    addr: SocketAddr,
    protocol: Protocol,
    handler: Arc<Recorder>,
    extra_types: &[&str],
) -> ClientHandle {
    let node = Node {
        id: "sidecar~10.213.0.5~app.default~default.svc.cluster.local".into(),
        ..Default::default()
    };
    let mut config = ClientConfig::new(addr.to_string(), node);
    config.protocol = protocol;
    config.backoff_initial = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(200);
    for t in extra_types {
        config.types.push(TypeSubscription::wildcard(*t));
    }
    AdsClient::spawn(config, handler)
}

fn mesh(generator: &FakeGenerator) {
    generator.set(CLUSTER, vec![cluster("a", 1), cluster("b", 1)]);
    generator.set(ENDPOINT, vec![cla("a"), cla("b"), cla("c")]);
    generator.set(LISTENER, vec![listener("l1")]);
    generator.set(ROUTE, vec![route("r1"), route("r2")]);
}

fn any_addr() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// ACKs every type, subscribes EDS to the accepted clusters and RDS to the handler's
/// routes, follows a removal, and the server sees every type synced.
async fn acks_follow_names_and_removal(protocol: Protocol) {
    let generator = Arc::new(FakeGenerator::default());
    mesh(&generator);
    let server = TestServer::start(generator.clone(), any_addr()).await;
    let handler = Arc::new(Recorder::default());
    *handler.routes.lock().unwrap() = names(&["r1"]);
    let client = start_client_with(server.addr, protocol, handler.clone(), &[NAME_TABLE]);

    eventually("endpoints of both clusters", || {
        handler.current(ENDPOINT) == names(&["a", "b"])
    })
    .await;
    eventually("every type synced on the server", || {
        [CLUSTER, ENDPOINT, LISTENER, ROUTE, NAME_TABLE]
            .iter()
            .all(|t| server.type_status(t).is_some_and(|s| s.synced()))
    })
    .await;
    // Wildcard types subscribe to everything, named ones to the handler's names.
    assert!(server.type_status(CLUSTER).unwrap().subscription.wildcard);
    assert!(
        server
            .type_status(NAME_TABLE)
            .unwrap()
            .subscription
            .wildcard
    );
    let eds = server.type_status(ENDPOINT).unwrap().subscription;
    assert!(!eds.wildcard && eds.names == names(&["a", "b"]), "{eds:?}");
    // A type with nothing in it is still applied once (the proxy learns it is empty).
    assert_eq!(handler.applies(NAME_TABLE), 1);
    assert!(handler.current(NAME_TABLE).is_empty());
    assert_eq!(handler.current(CLUSTER), names(&["a", "b"]));
    assert_eq!(handler.current(LISTENER), names(&["l1"]));
    assert_eq!(
        handler.current(ROUTE),
        names(&["r1"]),
        "only the named route"
    );
    let status = client.status();
    assert!(status.connected && status.synced(), "{status:?}");
    let cds = status.get(CLUSTER).unwrap();
    assert_eq!(cds.resources, 2);
    assert_eq!(cds.last_nack, None);
    assert_eq!(
        cds.accepted_version,
        server.type_status(CLUSTER).unwrap().acked_version,
        "client and server agree on the CDS version"
    );

    // The handler asks for another route; the client re-subscribes on request.
    *handler.routes.lock().unwrap() = names(&["r1", "r2"]);
    client.refresh_names();
    eventually("both routes", || {
        handler.current(ROUTE) == names(&["r1", "r2"])
    })
    .await;

    // Cluster b goes away: CDS reports it removed and EDS drops its name.
    generator.set(CLUSTER, vec![cluster("a", 1)]);
    server.push();
    eventually("cluster b removed", || {
        handler.current(CLUSTER) == names(&["a"])
    })
    .await;
    let last_cds = handler
        .updates
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|u| u.type_url == CLUSTER)
        .cloned()
        .unwrap();
    assert_eq!(last_cds.removed, vec!["b".to_owned()]);
    eventually("EDS subscription follows CDS", || {
        server
            .type_status(ENDPOINT)
            .is_some_and(|s| s.subscription.names == names(&["a"]))
    })
    .await;
    assert_eq!(client.status().get(ENDPOINT).unwrap().names, vec!["a"]);

    client.shutdown().await;
    eventually("stream closed on the server", || {
        server.server.connections().is_empty()
    })
    .await;
    server.stop();
}

#[tokio::test]
async fn sotw_acks_follow_names_and_removal() {
    acks_follow_names_and_removal(Protocol::Sotw).await;
}

#[tokio::test]
async fn delta_acks_follow_names_and_removal() {
    acks_follow_names_and_removal(Protocol::Delta).await;
}

/// A rejected update is NACKed with the handler's reason, which the server shows;
/// the previous set stays; a fixed update is accepted again.
async fn nack_keeps_last_good(protocol: Protocol) {
    let generator = Arc::new(FakeGenerator::default());
    mesh(&generator);
    let server = TestServer::start(generator.clone(), any_addr()).await;
    let handler = Arc::new(Recorder::default());
    let client = start_client(server.addr, protocol, handler.clone());
    eventually("clusters", || {
        handler.current(CLUSTER) == names(&["a", "b"])
    })
    .await;
    let good_version = client
        .status()
        .get(CLUSTER)
        .unwrap()
        .accepted_version
        .clone();

    generator.set(CLUSTER, vec![cluster("a", 2), cluster("bad-1", 1)]);
    server.push();
    eventually("the server records the NACK", || {
        server
            .type_status(CLUSTER)
            .and_then(|s| s.last_nack)
            .is_some_and(|n| n.message.contains("bad-1: rejected"))
    })
    .await;
    let status = client.status();
    let cds = status.get(CLUSTER).unwrap();
    assert!(
        cds.last_nack.as_deref().unwrap().contains("bad-1"),
        "{cds:?}"
    );
    assert_eq!(cds.nacks, 1);
    assert_eq!(
        cds.accepted_version, good_version,
        "version of the good set kept"
    );
    assert_eq!(cds.resources, 2);
    assert_eq!(handler.current(CLUSTER), names(&["a", "b"]));
    assert!(!server.type_status(CLUSTER).unwrap().synced());

    generator.set(CLUSTER, vec![cluster("a", 3), cluster("c", 1)]);
    server.push();
    eventually("fixed config accepted", || {
        handler.current(CLUSTER) == names(&["a", "c"])
    })
    .await;
    eventually("server synced again", || {
        server.type_status(CLUSTER).is_some_and(|s| s.synced())
    })
    .await;
    assert!(client.status().get(CLUSTER).unwrap().last_nack.is_some());
    client.shutdown().await;
}

#[tokio::test]
async fn sotw_nack_keeps_last_good() {
    nack_keeps_last_good(Protocol::Sotw).await;
}

#[tokio::test]
async fn delta_nack_keeps_last_good() {
    nack_keeps_last_good(Protocol::Delta).await;
}

/// The control plane restarts: the client keeps its config (no apply while down),
/// reconnects on the same address, and resumes.
async fn survives_server_restart(protocol: Protocol) {
    let generator = Arc::new(FakeGenerator::default());
    mesh(&generator);
    let server = TestServer::start(generator.clone(), any_addr()).await;
    let addr = server.addr;
    let handler = Arc::new(Recorder::default());
    let client = start_client(addr, protocol, handler.clone());
    eventually("synced", || {
        client.status().synced() && handler.applies(ENDPOINT) > 0
    })
    .await;
    eventually("server synced", || {
        server.type_status(CLUSTER).is_some_and(|s| s.synced())
    })
    .await;
    let applies_before = handler.updates.lock().unwrap().len();
    let cds_applies = handler.applies(CLUSTER);

    server.stop();
    eventually("client notices", || !client.status().connected).await;
    assert!(client.status().last_error.is_some_and(|e| !e.is_empty()));
    // Let it fail a few reconnects against the closed port.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        handler.updates.lock().unwrap().len(),
        applies_before,
        "no handler call while disconnected"
    );
    assert_eq!(handler.current(CLUSTER), names(&["a", "b"]));

    let server = TestServer::start(generator.clone(), addr).await;
    eventually("reconnected and synced", || {
        let s = client.status();
        s.connected && s.streams == 2
    })
    .await;
    eventually("server sees the CDS ACK", || {
        server.type_status(CLUSTER).is_some_and(|s| s.synced())
    })
    .await;
    let updates = handler.updates.lock().unwrap().clone();
    assert!(
        updates.iter().all(|u| !u.resources.is_empty()),
        "never an empty set: {:?}",
        updates
            .iter()
            .map(|u| (&u.type_url, u.resources.len()))
            .collect::<Vec<_>>()
    );
    if protocol == Protocol::Delta {
        // The server already knew our versions, so nothing was re-sent or re-applied.
        assert_eq!(server.type_status(CLUSTER).unwrap().sent_resources, 0);
        assert_eq!(handler.applies(CLUSTER), cds_applies);
        let eds = server.type_status(ENDPOINT).unwrap();
        assert_eq!(eds.subscription.names, names(&["a", "b"]));
    }

    generator.set(
        CLUSTER,
        vec![cluster("a", 7), cluster("b", 1), cluster("d", 1)],
    );
    server.push();
    eventually("new config after reconnect", || {
        handler.current(CLUSTER) == names(&["a", "b", "d"])
    })
    .await;
    let cds = handler
        .updates
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|u| u.type_url == CLUSTER)
        .cloned()
        .unwrap();
    assert_eq!(
        cds.resources.len(),
        3,
        "the complete set, not just the change"
    );
    client.shutdown().await;
}

#[tokio::test]
async fn sotw_survives_server_restart() {
    survives_server_restart(Protocol::Sotw).await;
}

#[tokio::test]
async fn delta_survives_server_restart() {
    survives_server_restart(Protocol::Delta).await;
}

/// Against a port nobody listens on, the client retries forever at a rate bounded by
/// the backoff, and stops promptly.
#[tokio::test]
async fn backoff_is_bounded() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let handler = Arc::new(Recorder::default());
    let node = Node {
        id: "router~10.213.0.9~gw.default~default.svc.cluster.local".into(),
        ..Default::default()
    };
    let mut config = ClientConfig::new(addr.to_string(), node);
    config.backoff_initial = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(40);
    let client = AdsClient::spawn(config, handler.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let attempts = handler.connecting();
    // Delays are at least 5ms (half the first) and at most 40ms.
    assert!(
        (5..=200).contains(&attempts),
        "{attempts} attempts in 1s with 10ms..40ms backoff"
    );
    let status = client.status();
    assert!(!status.connected && status.streams == 0);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("cannot connect")),
        "{status:?}"
    );
    assert!(handler.updates.lock().unwrap().is_empty());
    tokio::time::timeout(Duration::from_secs(2), client.shutdown())
        .await
        .expect("shutdown is prompt");
}
