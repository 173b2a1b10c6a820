//! The ADS server driven by an in-process tonic client over 127.0.0.1: the protocol
//! rules (ACK/NACK, subscriptions, Delta diffs, push scopes) as a client sees them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironmesh_xds::pb::envoy::config::cluster::v3::Cluster;
use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use ironmesh_xds::pb::envoy::config::listener::v3::Listener;
use ironmesh_xds::pb::envoy::config::route::v3::RouteConfiguration;
use ironmesh_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use ironmesh_xds::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use ironmesh_xds::pb::google::rpc::Status as RpcStatus;
use ironmesh_xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use ironmesh_xds::{
    AdsServer, Generator, Push, PushPublisher, PushScope, Resource, ServerConfig, Subscription,
};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::Channel;
use tonic::Streaming;

/// Serves whatever the test put into `resources`, and remembers what it was asked for.
#[derive(Default)]
struct FakeGenerator {
    resources: Mutex<BTreeMap<String, Vec<Resource>>>,
    calls: Mutex<Vec<String>>,
}

impl FakeGenerator {
    fn set(&self, type_url: &str, resources: Vec<Resource>) {
        self.resources
            .lock()
            .unwrap()
            .insert(type_url.to_owned(), resources);
    }
    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Generator for FakeGenerator {
    type Proxy = String;

    fn connect(&self, node: &Node) -> Result<String, tonic::Status> {
        if node.id.starts_with("bad") {
            return Err(tonic::Status::invalid_argument(
                "node id must not start with bad",
            ));
        }
        Ok(node.id.clone())
    }

    fn generate(
        &self,
        _proxy: &String,
        type_url: &str,
        _push: &Push,
        _subscription: &Subscription,
    ) -> Result<Vec<Resource>, String> {
        self.calls.lock().unwrap().push(type_url.to_owned());
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
    let c = Cluster {
        name: name.into(),
        connect_timeout: Some(ironmesh_xds::pb::google::protobuf::Duration {
            seconds: timeout_s,
            nanos: 0,
        }),
        ..Default::default()
    };
    Resource::new(name, &c)
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

struct Harness {
    generator: Arc<FakeGenerator>,
    publisher: PushPublisher,
    server: AdsServer<FakeGenerator>,
    registry: Registry,
    client: AggregatedDiscoveryServiceClient<Channel>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Harness {
    async fn start() -> Harness {
        let generator = Arc::new(FakeGenerator::default());
        let publisher = PushPublisher::new();
        let mut registry = Registry::default();
        let server = AdsServer::new(
            generator.clone(),
            publisher.subscribe(),
            ServerConfig::default(),
            &mut registry,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = server.clone().into_service();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        let client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        Harness {
            generator,
            publisher,
            server,
            registry,
            client,
            _shutdown: shutdown,
        }
    }

    async fn sotw(&self) -> Sotw {
        let (tx, rx) = mpsc::channel(16);
        let mut client = self.client.clone();
        let call = tokio::spawn(async move {
            client
                .stream_aggregated_resources(ReceiverStream::new(rx))
                .await
        });
        Sotw {
            tx,
            call: Some(call),
            rx: None,
        }
    }

    async fn delta(&self) -> Delta {
        let (tx, rx) = mpsc::channel(16);
        let mut client = self.client.clone();
        let call = tokio::spawn(async move {
            client
                .delta_aggregated_resources(ReceiverStream::new(rx))
                .await
        });
        Delta {
            tx,
            call: Some(call),
            rx: None,
        }
    }

    fn metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    fn type_status(&self, type_url: &str) -> ironmesh_xds::TypeStatus {
        let conns = self.server.connections();
        assert_eq!(conns.len(), 1, "{conns:?}");
        conns[0]
            .types
            .iter()
            .find(|t| t.type_url == type_url)
            .cloned()
            .unwrap()
    }
}

type Call<T> = tokio::task::JoinHandle<Result<tonic::Response<Streaming<T>>, tonic::Status>>;

/// A client stream of either variant: requests go in through `tx`, responses come out
/// of the stream once the call is established.
struct Stream<Req, Resp> {
    tx: mpsc::Sender<Req>,
    call: Option<Call<Resp>>,
    rx: Option<Streaming<Resp>>,
}

type Sotw = Stream<DiscoveryRequest, DiscoveryResponse>;
type Delta = Stream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

const WAIT: Duration = Duration::from_secs(5);
const SILENCE: Duration = Duration::from_millis(300);

impl<Req, Resp> Stream<Req, Resp> {
    async fn send(&self, request: Req) {
        self.tx.send(request).await.ok().unwrap();
    }

    async fn stream(&mut self) -> Result<&mut Streaming<Resp>, tonic::Status> {
        if let Some(call) = self.call.take() {
            let response = tokio::time::timeout(WAIT, call)
                .await
                .expect("the server answers the call")
                .unwrap()?;
            self.rx = Some(response.into_inner());
        }
        Ok(self.rx.as_mut().unwrap())
    }

    async fn recv(&mut self) -> Resp {
        let stream = self.stream().await.expect("stream established");
        tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("a response within 5s")
            .expect("no stream error")
            .expect("stream still open")
    }

    async fn recv_error(&mut self) -> tonic::Status {
        let stream = match self.stream().await {
            Ok(stream) => stream,
            Err(status) => return status,
        };
        match tokio::time::timeout(WAIT, stream.message()).await.unwrap() {
            Err(status) => status,
            Ok(_) => panic!("expected the stream to fail"),
        }
    }

    async fn expect_silence(&mut self) {
        let stream = self.stream().await.expect("stream established");
        if let Ok(message) = tokio::time::timeout(SILENCE, stream.message()).await {
            panic!("expected no response, got {}", message.is_ok());
        }
    }
}

fn node(id: &str) -> Option<Node> {
    Some(Node {
        id: id.into(),
        cluster: "test".into(),
        ..Default::default()
    })
}

fn sotw_request(type_url: &str, names: &[&str]) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: type_url.into(),
        resource_names: names.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

fn ack(response: &DiscoveryResponse, names: &[&str]) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: response.version_info.clone(),
        response_nonce: response.nonce.clone(),
        ..sotw_request(&response.type_url, names)
    }
}

fn names_of(response: &DiscoveryResponse) -> Vec<String> {
    use prost::Message;
    response
        .resources
        .iter()
        .map(|any| match any.type_url.as_str() {
            CLUSTER => Cluster::decode(any.value.as_slice()).unwrap().name,
            ENDPOINT => {
                ClusterLoadAssignment::decode(any.value.as_slice())
                    .unwrap()
                    .cluster_name
            }
            LISTENER => Listener::decode(any.value.as_slice()).unwrap().name,
            ROUTE => {
                RouteConfiguration::decode(any.value.as_slice())
                    .unwrap()
                    .name
            }
            other => panic!("unexpected {other}"),
        })
        .collect()
}

#[tokio::test]
async fn sotw_ack_nack_and_recovery() {
    let h = Harness::start().await;
    h.generator.set(CLUSTER, vec![cluster("a", 1)]);
    let mut s = h.sotw().await;
    s.send(DiscoveryRequest {
        node: node("sidecar~10.0.0.1~a.default~default.svc.cluster.local"),
        ..sotw_request(CLUSTER, &[])
    })
    .await;
    let first = s.recv().await;
    assert_eq!(first.type_url, CLUSTER);
    assert_eq!(first.version_info, "1");
    assert_eq!(names_of(&first), ["a"]);
    assert!(!first.nonce.is_empty());
    s.send(ack(&first, &[])).await;
    s.expect_silence().await;
    let status = h.type_status(CLUSTER);
    assert_eq!(status.acked_version.as_deref(), Some("1"));
    assert!(status.synced());
    assert!(status.subscription.wildcard);
    assert_eq!(
        h.server.connections()[0].node_id,
        "sidecar~10.0.0.1~a.default~default.svc.cluster.local"
    );
    assert!(h.metrics().contains("pilot_xds 1\n"), "{}", h.metrics());

    // A new version is NACKed: recorded, not resent.
    h.generator
        .set(CLUSTER, vec![cluster("a", 1), cluster("b", 1)]);
    h.publisher.publish(PushScope::Full);
    let second = s.recv().await;
    assert_eq!(second.version_info, "2");
    assert_ne!(second.nonce, first.nonce);
    assert_eq!(names_of(&second), ["a", "b"]);
    s.send(DiscoveryRequest {
        version_info: "1".into(),
        response_nonce: second.nonce.clone(),
        error_detail: Some(RpcStatus {
            code: 3,
            message: "cluster b: bad config".into(),
            details: vec![],
        }),
        ..sotw_request(CLUSTER, &[])
    })
    .await;
    s.expect_silence().await;
    let status = h.type_status(CLUSTER);
    let nack = status.last_nack.clone().expect("NACK recorded");
    assert_eq!(nack.message, "cluster b: bad config");
    assert_eq!(nack.version, "2");
    assert_eq!(nack.nonce, second.nonce);
    assert_eq!(status.acked_version.as_deref(), Some("1"));
    assert_eq!(status.sent_version.as_deref(), Some("2"));
    assert!(!status.synced());
    let metrics = h.metrics();
    assert!(
        metrics.contains("pilot_total_xds_rejects_total{type=\"cds\"} 1"),
        "{metrics}"
    );

    // The next push goes out and is ACKed.
    h.generator.set(CLUSTER, vec![cluster("a", 2)]);
    h.publisher.publish(PushScope::Full);
    let third = s.recv().await;
    assert_eq!(third.version_info, "3");
    s.send(ack(&third, &[])).await;
    s.expect_silence().await;
    let status = h.type_status(CLUSTER);
    assert!(status.synced(), "{status:?}");
    assert_eq!(
        status.last_nack.unwrap().version,
        "2",
        "the last NACK stays visible"
    );
    let metrics = h.metrics();
    assert!(
        metrics.contains("pilot_xds_pushes_total{type=\"cds\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pilot_proxy_convergence_time_count 1"),
        "{metrics}"
    );

    // A stale nonce (from before the last response) is ignored.
    s.send(ack(&second, &[])).await;
    s.expect_silence().await;
    drop(s);
    tokio::time::timeout(WAIT, async {
        while !h.server.connections().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the connection is dropped from the status");
    assert!(h.metrics().contains("pilot_xds 0\n"));
}

#[tokio::test]
async fn sotw_wildcard_and_named_subscriptions() {
    let h = Harness::start().await;
    h.generator
        .set(LISTENER, vec![listener("l1"), listener("l2")]);
    h.generator
        .set(ENDPOINT, vec![cla("a"), cla("b"), cla("c")]);
    let mut s = h.sotw().await;
    s.send(DiscoveryRequest {
        node: node("n1"),
        ..sotw_request(LISTENER, &[])
    })
    .await;
    let lds = s.recv().await;
    assert_eq!(names_of(&lds), ["l1", "l2"]);
    s.send(sotw_request(ENDPOINT, &["a"])).await;
    let eds = s.recv().await;
    assert_eq!(names_of(&eds), ["a"], "named: only what was asked");
    assert!(!h.type_status(ENDPOINT).subscription.wildcard);

    // An ACK that adds a name is answered with the new set.
    s.send(ack(&eds, &["a", "b"])).await;
    let eds2 = s.recv().await;
    assert_eq!(names_of(&eds2), ["a", "b"]);
    // An ACK with the same names is not.
    s.send(ack(&eds2, &["b", "a"])).await;
    s.expect_silence().await;
    // A stale nonce never changes the subscription.
    s.send(ack(&eds, &["c"])).await;
    s.expect_silence().await;
    let names: Vec<_> = h
        .type_status(ENDPOINT)
        .subscription
        .names
        .into_iter()
        .collect();
    assert_eq!(names, ["a", "b"]);
    // A named type with an empty first request subscribes to nothing.
    s.send(sotw_request(ROUTE, &[])).await;
    let rds = s.recv().await;
    assert!(rds.resources.is_empty());
    // `*` asks for everything.
    h.generator.set(ROUTE, vec![route("80"), route("8080")]);
    s.send(ack(&rds, &["*"])).await;
    let rds2 = s.recv().await;
    assert_eq!(names_of(&rds2), ["80", "8080"]);
}

#[tokio::test]
async fn pushes_follow_scope_and_order() {
    let h = Harness::start().await;
    h.generator.set(CLUSTER, vec![cluster("a", 1)]);
    h.generator.set(ENDPOINT, vec![cla("a")]);
    h.generator.set(LISTENER, vec![listener("l")]);
    h.generator.set(ROUTE, vec![route("80")]);
    let mut s = h.sotw().await;
    // Subscribe in the "wrong" order.
    s.send(DiscoveryRequest {
        node: node("n1"),
        ..sotw_request(ROUTE, &["80"])
    })
    .await;
    s.send(sotw_request(LISTENER, &[])).await;
    s.send(sotw_request(ENDPOINT, &["a"])).await;
    s.send(sotw_request(CLUSTER, &[])).await;
    // What each type subscribed to, to repeat in ACKs.
    let requested = |type_url: &str| -> &'static [&'static str] {
        match type_url {
            ROUTE => &["80"],
            ENDPOINT => &["a"],
            _ => &[],
        }
    };
    let mut initial = Vec::new();
    for _ in 0..4 {
        let r = s.recv().await;
        s.send(ack(&r, requested(&r.type_url))).await;
        initial.push(r.type_url);
    }
    s.expect_silence().await;
    assert_eq!(initial, [ROUTE, LISTENER, ENDPOINT, CLUSTER]);
    h.generator.take_calls();

    // A full push goes CDS, EDS, LDS, RDS.
    h.publisher.publish(PushScope::Full);
    let mut order = Vec::new();
    for _ in 0..4 {
        let r = s.recv().await;
        order.push(r.type_url.clone());
        s.send(ack(&r, requested(&r.type_url))).await;
    }
    assert_eq!(order, [CLUSTER, ENDPOINT, LISTENER, ROUTE]);
    s.expect_silence().await;
    assert_eq!(
        h.generator.take_calls(),
        [CLUSTER, ENDPOINT, LISTENER, ROUTE]
    );

    // An endpoints push regenerates and sends EDS only.
    h.publisher.publish(PushScope::Endpoints);
    let r = s.recv().await;
    assert_eq!(r.type_url, ENDPOINT);
    assert_eq!(r.version_info, "3");
    s.send(ack(&r, &["a"])).await;
    s.expect_silence().await;
    assert_eq!(h.generator.take_calls(), [ENDPOINT]);

    // A typed push sends just those types.
    h.publisher
        .publish(PushScope::Types([LISTENER.to_owned()].into()));
    let r = s.recv().await;
    assert_eq!(r.type_url, LISTENER);
    s.send(ack(&r, &[])).await;
    s.expect_silence().await;
    assert_eq!(h.generator.take_calls(), [LISTENER]);
    let conns = h.server.connections();
    assert_eq!(conns[0].push_version, 4);
    assert!(conns[0].types.iter().all(|t| t.synced()), "{conns:?}");
    let order: Vec<_> = conns[0]
        .types
        .iter()
        .map(|t| t.short_name.clone().unwrap())
        .collect();
    assert_eq!(order, ["CDS", "EDS", "LDS", "RDS"]);
    let json = serde_json::to_value(&conns).unwrap();
    assert_eq!(json[0]["protocol"], "sotw");
    assert_eq!(json[0]["types"][0]["acked_version"], "2");
    assert_eq!(json[0]["types"][2]["acked_version"], "4");
}

#[tokio::test]
async fn connection_errors_reach_the_client() {
    let h = Harness::start().await;
    let mut s = h.sotw().await;
    s.send(sotw_request(CLUSTER, &[])).await;
    let status = s.recv_error().await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("node"), "{status}");

    let mut s = h.sotw().await;
    s.send(DiscoveryRequest {
        node: node("bad-node"),
        ..sotw_request(CLUSTER, &[])
    })
    .await;
    let status = s.recv_error().await;
    assert!(
        status.message().contains("must not start with bad"),
        "{status}"
    );
    assert!(h.server.connections().is_empty());
}

fn delta_request(
    type_url: &str,
    subscribe: &[&str],
    unsubscribe: &[&str],
) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: type_url.into(),
        resource_names_subscribe: subscribe.iter().map(|s| (*s).to_owned()).collect(),
        resource_names_unsubscribe: unsubscribe.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

fn delta_ack(response: &DeltaDiscoveryResponse) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        response_nonce: response.nonce.clone(),
        ..delta_request(&response.type_url, &[], &[])
    }
}

fn delta_names(response: &DeltaDiscoveryResponse) -> Vec<&str> {
    response.resources.iter().map(|r| r.name.as_str()).collect()
}

#[tokio::test]
async fn delta_wildcard_sends_changes_and_removals() {
    let h = Harness::start().await;
    h.generator.set(
        CLUSTER,
        vec![cluster("a", 1), cluster("b", 1), cluster("c", 1)],
    );
    let mut d = h.delta().await;
    d.send(DeltaDiscoveryRequest {
        node: node("n1"),
        ..delta_request(CLUSTER, &[], &[])
    })
    .await;
    let first = d.recv().await;
    assert_eq!(delta_names(&first), ["a", "b", "c"]);
    assert_eq!(first.system_version_info, "1");
    assert!(first.resources.iter().all(|r| r.version.len() == 16));
    assert!(first.removed_resources.is_empty());
    d.send(delta_ack(&first)).await;
    d.expect_silence().await;
    assert!(h.type_status(CLUSTER).synced());
    assert!(h.type_status(CLUSTER).subscription.wildcard);

    // b changes, c goes away, d appears; a is untouched and not resent.
    h.generator.set(
        CLUSTER,
        vec![cluster("a", 1), cluster("b", 2), cluster("d", 1)],
    );
    h.publisher.publish(PushScope::Full);
    let second = d.recv().await;
    assert_eq!(delta_names(&second), ["b", "d"]);
    assert_eq!(second.removed_resources, ["c"]);
    assert_eq!(second.system_version_info, "2");
    d.send(delta_ack(&second)).await;

    // Nothing changed: no response at all.
    h.publisher.publish(PushScope::Full);
    d.expect_silence().await;

    // A NACK is recorded and nothing is resent.
    h.generator.set(
        CLUSTER,
        vec![cluster("a", 9), cluster("b", 2), cluster("d", 1)],
    );
    h.publisher.publish(PushScope::Full);
    let fourth = d.recv().await;
    assert_eq!(delta_names(&fourth), ["a"]);
    d.send(DeltaDiscoveryRequest {
        error_detail: Some(RpcStatus {
            code: 3,
            message: "a is bad".into(),
            details: vec![],
        }),
        ..delta_ack(&fourth)
    })
    .await;
    d.expect_silence().await;
    let status = h.type_status(CLUSTER);
    assert_eq!(status.last_nack.unwrap().message, "a is bad");
    assert_eq!(status.acked_version.as_deref(), Some("2"));
    assert!(h
        .metrics()
        .contains("pilot_total_xds_rejects_total{type=\"cds\"} 1"));

    // Explicit "*" after the legacy wildcard changes nothing.
    d.send(delta_request(CLUSTER, &["*"], &[])).await;
    d.expect_silence().await;
}

#[tokio::test]
async fn delta_subscribe_and_unsubscribe() {
    let h = Harness::start().await;
    h.generator
        .set(ENDPOINT, vec![cla("a"), cla("b"), cla("c")]);
    let mut d = h.delta().await;
    d.send(DeltaDiscoveryRequest {
        node: node("n1"),
        ..delta_request(ENDPOINT, &["a"], &[])
    })
    .await;
    let first = d.recv().await;
    assert_eq!(delta_names(&first), ["a"]);
    d.send(delta_ack(&first)).await;
    d.expect_silence().await;

    // Subscribing to b and a name that does not exist.
    d.send(delta_request(ENDPOINT, &["b", "missing"], &[]))
        .await;
    let second = d.recv().await;
    assert_eq!(delta_names(&second), ["b"]);
    assert_eq!(second.removed_resources, ["missing"]);
    d.send(delta_ack(&second)).await;

    // After unsubscribing a, changes to a are not sent; changes to b are.
    d.send(delta_request(ENDPOINT, &[], &["a"])).await;
    d.expect_silence().await;
    let changed = |name: &str| {
        Resource::new(
            name,
            &ClusterLoadAssignment {
                cluster_name: format!("{name}-changed"),
                ..Default::default()
            },
        )
    };
    h.generator
        .set(ENDPOINT, vec![changed("a"), cla("b"), cla("c")]);
    h.publisher.publish(PushScope::Endpoints);
    d.expect_silence().await;
    h.generator
        .set(ENDPOINT, vec![changed("a"), changed("b"), cla("c")]);
    h.publisher.publish(PushScope::Endpoints);
    let third = d.recv().await;
    assert_eq!(delta_names(&third), ["b"]);
    let subscribed: Vec<_> = h
        .type_status(ENDPOINT)
        .subscription
        .names
        .into_iter()
        .collect();
    assert_eq!(subscribed, ["b", "missing"]);
}

#[tokio::test]
async fn delta_reconnect_skips_what_the_client_holds() {
    let h = Harness::start().await;
    h.generator.set(
        CLUSTER,
        vec![cluster("a", 1), cluster("b", 1), cluster("c", 1)],
    );
    let mut d = h.delta().await;
    d.send(DeltaDiscoveryRequest {
        node: node("n1"),
        ..delta_request(CLUSTER, &[], &[])
    })
    .await;
    let first = d.recv().await;
    let held: HashMap<String, String> = first
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.version.clone()))
        .collect();
    drop(d);

    // The client comes back holding everything: an empty answer.
    let mut d = h.delta().await;
    d.send(DeltaDiscoveryRequest {
        node: node("n1"),
        initial_resource_versions: held.clone(),
        ..delta_request(CLUSTER, &[], &[])
    })
    .await;
    let again = d.recv().await;
    assert!(again.resources.is_empty(), "{:?}", delta_names(&again));
    assert!(again.removed_resources.is_empty());
    drop(d);

    // Meanwhile b changed and c was deleted: only those are mentioned.
    h.generator
        .set(CLUSTER, vec![cluster("a", 1), cluster("b", 5)]);
    let mut d = h.delta().await;
    d.send(DeltaDiscoveryRequest {
        node: node("n1"),
        initial_resource_versions: held,
        ..delta_request(CLUSTER, &[], &[])
    })
    .await;
    let third = d.recv().await;
    assert_eq!(delta_names(&third), ["b"]);
    assert_eq!(third.removed_resources, ["c"]);
}
