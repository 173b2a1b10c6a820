//! A Delta ADS client that behaves like Envoy's: it asks for every Listener and Cluster,
//! subscribes to the RouteConfigurations the listeners name and the load assignments of
//! the EDS clusters, and ACKs every response. It reports when it first holds a complete
//! config, and when an EDS response carries the endpoint the benchmark is waiting for.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use ironmesh_xds::pb::envoy::config::cluster::v3::{cluster, Cluster};
use ironmesh_xds::pb::envoy::config::core::v3::{address, Node};
use ironmesh_xds::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};
use ironmesh_xds::pb::envoy::config::listener::v3::{filter, Listener};
use ironmesh_xds::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, HttpConnectionManager,
};
use ironmesh_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use ironmesh_xds::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse,
};
use ironmesh_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use ironmesh_xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// The endpoint change the benchmark waits for: `ip` appears in `cluster`.
#[derive(Debug)]
pub struct Expect {
    pub seq: usize,
    pub cluster: String,
    pub ip: String,
}

/// What every client shares with the benchmark.
#[derive(Clone)]
pub struct Shared {
    /// Clients that hold a complete config.
    pub synced: Arc<AtomicUsize>,
    pub expect: watch::Receiver<Option<Arc<Expect>>>,
    /// `(seq, when)`: this client received the change `seq`.
    pub seen: mpsc::UnboundedSender<(usize, Instant)>,
}

fn node(index: usize) -> Node {
    // Distinct pods of one client deployment; the IP is data only.
    let n = index + 1;
    let ip = format!("10.244.{}.{}", 252 + (n >> 8), n & 0xff);
    Node {
        id: format!("sidecar~{ip}~client-{index}.default~default.svc.cluster.local"),
        metadata: Some(Struct {
            fields: [(
                "NAMESPACE".to_string(),
                Value {
                    kind: Some(Kind::StringValue("default".to_string())),
                },
            )]
            .into(),
        }),
        ..Default::default()
    }
}

#[derive(Default)]
struct State {
    got_lds: bool,
    got_cds: bool,
    eds_wanted: BTreeSet<String>,
    eds_answered: BTreeSet<String>,
    rds_wanted: BTreeSet<String>,
    rds_answered: BTreeSet<String>,
}

impl State {
    fn complete(&self) -> bool {
        self.got_lds
            && self.got_cds
            && self.eds_wanted.is_subset(&self.eds_answered)
            && self.rds_wanted.is_subset(&self.rds_answered)
    }
}

fn eds_clusters(resp: &DeltaDiscoveryResponse) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for r in &resp.resources {
        let any = r.resource.as_ref().context("CDS resource without a body")?;
        let c = Cluster::decode(any.value.as_slice()).context("CDS resource does not decode")?;
        if c.cluster_discovery_type
            == Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32,
            ))
        {
            out.push(c.name);
        }
    }
    Ok(out)
}

fn route_names(resp: &DeltaDiscoveryResponse) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for r in &resp.resources {
        let any = r.resource.as_ref().context("LDS resource without a body")?;
        let l = Listener::decode(any.value.as_slice()).context("LDS resource does not decode")?;
        let chains = l.filter_chains.iter().chain(l.default_filter_chain.iter());
        for f in chains.flat_map(|c| &c.filters) {
            let Some(filter::ConfigType::TypedConfig(tc)) = &f.config_type else {
                continue;
            };
            if !tc.type_url.ends_with(".HttpConnectionManager") {
                continue;
            }
            let hcm = HttpConnectionManager::decode(tc.value.as_slice())
                .context("HttpConnectionManager does not decode")?;
            if let Some(http_connection_manager::RouteSpecifier::Rds(rds)) = hcm.route_specifier {
                out.push(rds.route_config_name);
            }
        }
    }
    Ok(out)
}

fn has_endpoint(cla: &ClusterLoadAssignment, ip: &str) -> bool {
    cla.endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|e| match &e.host_identifier {
            Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => ep.address.as_ref(),
            _ => None,
        })
        .any(|a| matches!(&a.address, Some(address::Address::SocketAddress(s)) if s.address == ip))
}

/// Runs one client until the stream ends or fails.
pub async fn run(index: usize, uri: String, shared: Shared) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(uri)?
        .connect()
        .await
        .context("cannot connect to discovery's xDS port")?;
    // 10 000 services make CDS responses larger than tonic's 4 MiB default.
    let mut ads = AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(1 << 30);
    let (tx, rx) = mpsc::channel::<DeltaDiscoveryRequest>(64);
    let request = |type_url: &str| DeltaDiscoveryRequest {
        type_url: type_url.to_string(),
        ..Default::default()
    };
    tx.send(DeltaDiscoveryRequest {
        node: Some(node(index)),
        ..request(CLUSTER)
    })
    .await?;
    tx.send(request(LISTENER)).await?;
    let mut inbound = ads
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .context("discovery refused the Delta ADS stream")?
        .into_inner();

    let mut state = State::default();
    let mut synced = false;
    let mut last_seen = None;
    let mut expect = shared.expect.clone();
    while let Some(resp) = inbound.message().await? {
        let received = Instant::now();
        let answered = resp
            .resources
            .iter()
            .map(|r| r.name.clone())
            .chain(resp.removed_resources.iter().cloned());
        let subscribe = match resp.type_url.as_str() {
            CLUSTER => {
                state.got_cds = true;
                let new: Vec<_> = eds_clusters(&resp)?
                    .into_iter()
                    .filter(|n| state.eds_wanted.insert(n.clone()))
                    .collect();
                (!new.is_empty()).then_some((ENDPOINT, new))
            }
            LISTENER => {
                state.got_lds = true;
                let new: Vec<_> = route_names(&resp)?
                    .into_iter()
                    .filter(|n| state.rds_wanted.insert(n.clone()))
                    .collect();
                (!new.is_empty()).then_some((ROUTE, new))
            }
            ROUTE => {
                state.rds_answered.extend(answered);
                None
            }
            ENDPOINT => {
                state.eds_answered.extend(answered);
                let current = expect.borrow_and_update().clone();
                if let Some(e) = current.filter(|e| last_seen != Some(e.seq)) {
                    for r in resp.resources.iter().filter(|r| r.name == e.cluster) {
                        let any = r.resource.as_ref().context("EDS resource without a body")?;
                        let cla = ClusterLoadAssignment::decode(any.value.as_slice())?;
                        if has_endpoint(&cla, &e.ip) {
                            last_seen = Some(e.seq);
                            let _ = shared.seen.send((e.seq, received));
                        }
                    }
                }
                None
            }
            other => anyhow::bail!("discovery sent an unexpected type {other}"),
        };
        if let Some((type_url, names)) = subscribe {
            tx.send(DeltaDiscoveryRequest {
                resource_names_subscribe: names,
                ..request(type_url)
            })
            .await?;
        }
        tx.send(DeltaDiscoveryRequest {
            response_nonce: resp.nonce.clone(),
            ..request(&resp.type_url)
        })
        .await?;
        if !synced && state.complete() {
            synced = true;
            shared.synced.fetch_add(1, Ordering::SeqCst);
        }
    }
    Ok(())
}
