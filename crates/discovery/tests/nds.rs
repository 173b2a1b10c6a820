//! NDS from the real `ironmesh-discovery` binary: a raw ADS client subscribing to Istio's
//! NameTable type gets the mesh's names, and a new Service is pushed to it.

// Only the process and workspace helpers are used here.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use ironmesh_xds::nds::NameTable;
use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use ironmesh_xds::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use ironmesh_xds::pb::google::protobuf::{value::Kind, Struct, Value};
use prost::Message as _;
use support::Workspace;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: istio-demo}
spec:
  clusterIP: 240.240.0.7
  selector: {app: httpbin}
  ports:
  - {name: http, port: 8000, targetPort: 80}
---
apiVersion: v1
kind: Service
metadata: {name: sleep, namespace: istio-demo}
spec:
  selector: {app: sleep}
  ports:
  - {name: http, port: 80, targetPort: 80}
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: external-api, namespace: istio-demo}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 443, name: tls, protocol: TLS}
"#;

const LATER: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: bookinfo}
spec:
  clusterIP: 240.240.3.3
  selector: {app: ratings}
  ports:
  - {name: http, port: 9080}
"#;

fn node() -> Node {
    Node {
        id: "sidecar~10.213.0.9~sleep-1.istio-demo~istio-demo.svc.cluster.local".into(),
        metadata: Some(Struct {
            fields: [(
                "NAMESPACE".to_string(),
                Value {
                    kind: Some(Kind::StringValue("istio-demo".into())),
                },
            )]
            .into(),
        }),
        ..Default::default()
    }
}

fn table(resp: &DiscoveryResponse) -> NameTable {
    assert_eq!(resp.type_url, ironmesh_xds::nds::TYPE_URL);
    assert_eq!(resp.resources.len(), 1, "one NameTable");
    assert_eq!(resp.resources[0].type_url, ironmesh_xds::nds::TYPE_URL);
    NameTable::decode(resp.resources[0].value.as_slice()).expect("a NameTable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nds_subscriber_gets_the_name_table_and_its_updates() {
    let ws = Workspace::new();
    ws.write("mesh.yaml", MESH);
    let discovery = ws.start_discovery();

    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{}", discovery.xds))
        .await
        .expect("connect to discovery's xDS port");
    let (tx, rx) = mpsc::channel(8);
    tx.send(DiscoveryRequest {
        node: Some(node()),
        type_url: ironmesh_xds::nds::TYPE_URL.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut stream = client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("ADS stream")
        .into_inner();
    let first = next(&mut stream, "first NDS response").await;
    let t = table(&first);

    let httpbin = &t.table["httpbin.istio-demo.svc.cluster.local"];
    assert_eq!(httpbin.ips, vec!["240.240.0.7"]);
    assert_eq!(httpbin.shortname, "httpbin");
    assert_eq!(httpbin.namespace, "istio-demo");
    assert_eq!(httpbin.registry, "Kubernetes");
    // No clusterIP in the manifest: the registry's VIP from 240.240.0.0/16.
    let sleep = &t.table["sleep.istio-demo.svc.cluster.local"];
    assert!(sleep.ips[0].starts_with("240.240."), "{sleep:?}");
    // No address on the ServiceEntry: auto-allocated.
    let api = &t.table["api.example.com"];
    assert!(api.ips[0].starts_with("240.240."), "{api:?}");
    assert_ne!(api.ips, sleep.ips);
    assert!(!t.table.contains_key("ratings.bookinfo.svc.cluster.local"));

    // ACK, then change the mesh: the new name is pushed.
    tx.send(DiscoveryRequest {
        node: Some(node()),
        type_url: ironmesh_xds::nds::TYPE_URL.into(),
        version_info: first.version_info.clone(),
        response_nonce: first.nonce.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    ws.write("later.yaml", LATER);
    let mut latest = first;
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let resp = next(&mut stream, "NDS push after the new Service").await;
            let t = table(&resp);
            tx.send(DiscoveryRequest {
                node: Some(node()),
                type_url: ironmesh_xds::nds::TYPE_URL.into(),
                version_info: resp.version_info.clone(),
                response_nonce: resp.nonce.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
            latest = resp;
            if let Some(r) = t.table.get("ratings.bookinfo.svc.cluster.local") {
                return r.clone();
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("ratings never appeared; last table: {:?}", table(&latest)));
    assert_eq!(found.ips, vec!["240.240.3.3"]);
    assert_eq!(
        (found.shortname.as_str(), found.namespace.as_str()),
        ("ratings", "bookinfo")
    );
    drop(discovery);
}

async fn next(stream: &mut tonic::Streaming<DiscoveryResponse>, what: &str) -> DiscoveryResponse {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .unwrap_or_else(|_| panic!("no {what} within 20s"))
        .expect("stream error")
        .unwrap_or_else(|| panic!("stream closed before {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nds_over_delta_ads() {
    use ironmesh_xds::pb::envoy::service::discovery::v3::{
        DeltaDiscoveryRequest, DeltaDiscoveryResponse,
    };
    let ws = Workspace::new();
    ws.write("mesh.yaml", MESH);
    let discovery = ws.start_discovery();
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{}", discovery.xds))
        .await
        .expect("connect to discovery's xDS port");
    let (tx, rx) = mpsc::channel(8);
    tx.send(DeltaDiscoveryRequest {
        node: Some(node()),
        type_url: ironmesh_xds::nds::TYPE_URL.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut stream = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("delta ADS stream")
        .into_inner();
    let resp: DeltaDiscoveryResponse =
        tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("a delta NDS response within 20s")
            .expect("stream error")
            .expect("stream open");
    assert_eq!(resp.type_url, ironmesh_xds::nds::TYPE_URL);
    assert_eq!(resp.resources.len(), 1, "{resp:?}");
    let r = &resp.resources[0];
    assert_eq!(r.name, "");
    let t = NameTable::decode(r.resource.as_ref().unwrap().value.as_slice()).unwrap();
    assert_eq!(
        t.table["httpbin.istio-demo.svc.cluster.local"].ips,
        vec!["240.240.0.7"]
    );
    drop(discovery);
}
