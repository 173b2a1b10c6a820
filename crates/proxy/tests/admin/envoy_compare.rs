//! A real Envoy and our ADS client + admin API, both fed by the repo's ADS server with
//! the same resources: the two `/config_dump`s must agree on sections, entry shapes,
//! resource JSON and per-resource versions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironmesh_proxy::admin::{serve_admin, AdminState, RecordAccepted};
use ironmesh_testkit::envoy::{AdsApi, Envoy, EnvoyConfig};
use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use ironmesh_xds::{
    AdsClient, AdsServer, ClientConfig, Generator, Handler, Push, PushPublisher, Resource,
    ServerConfig, Subscription, Update,
};
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio_stream::wrappers::TcpListenerStream;

use super::common::{cla, eds_cluster, http, listener, route, FakeHooks, CLUSTER_NAME};

struct Fixed;

impl Generator for Fixed {
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
            CLUSTER => vec![Resource::new(CLUSTER_NAME, &eds_cluster())],
            ENDPOINT => vec![Resource::new(CLUSTER_NAME, &cla(9080))],
            LISTENER => vec![Resource::new("127.0.0.1_0", &listener())],
            ROUTE => vec![Resource::new("9080", &route())],
            _ => vec![],
        })
    }
}

/// Stands in for the proxy's handler: accepts everything, subscribes to the names
/// Envoy would.
struct Recording {
    applied: Arc<Mutex<BTreeSet<String>>>,
}

impl Handler for Recording {
    fn apply(&self, update: &Update) -> Result<(), String> {
        if !update.resources.is_empty() {
            self.applied.lock().unwrap().insert(update.type_url.clone());
        }
        Ok(())
    }

    fn names(&self, type_url: &str) -> BTreeSet<String> {
        match type_url {
            ENDPOINT => [CLUSTER_NAME.to_owned()].into(),
            ROUTE => ["9080".to_owned()].into(),
            _ => BTreeSet::new(),
        }
    }
}

fn sections(dump: &Value) -> BTreeMap<String, Value> {
    dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let kind = c["@type"].as_str().unwrap().rsplit('.').next().unwrap();
            (kind.to_owned(), c.clone())
        })
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The entries of a section's dynamic list, by resource name.
fn entries(
    section: &Value,
    list: &str,
    name: impl Fn(&Value) -> String,
) -> BTreeMap<String, Value> {
    section[list]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (name(e), e.clone()))
        .collect()
}

/// Reads an entry's resource name.
type NameOf = Box<dyn Fn(&Value) -> String>;

#[test]
fn config_dump_matches_real_envoy() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let publisher = PushPublisher::new();
    let server = AdsServer::new(
        Arc::new(Fixed),
        publisher.subscribe(),
        ServerConfig::default(),
        &mut Registry::default(),
    );
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let xds = listener.local_addr().unwrap();
    let service = server.clone().into_service();
    runtime.spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });

    let envoy = Envoy::start(&EnvoyConfig::new(xds.port(), AdsApi::Delta));
    let node = Node {
        id: "sidecar~127.0.0.1~ours.default~default.svc.cluster.local".into(),
        ..Default::default()
    };
    let admin = AdminState::new(node.clone(), Arc::new(FakeHooks::default()));
    let applied = Arc::new(Mutex::new(BTreeSet::new()));
    let handler = RecordAccepted::new(
        Recording {
            applied: applied.clone(),
        },
        admin.clone(),
    );
    let _guard = runtime.enter();
    let client = AdsClient::spawn(ClientConfig::new(xds.to_string(), node), Arc::new(handler));
    let (admin_addr, _task) = runtime
        .block_on(serve_admin("127.0.0.1:0".parse().unwrap(), admin))
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let envoy_dump = loop {
        let dump = envoy.config_dump();
        let s = sections(&dump);
        let done = s.get("RoutesConfigDump").is_some_and(|r| {
            r["dynamic_route_configs"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        }) && s.get("EndpointsConfigDump").is_some_and(|e| {
            e["dynamic_endpoint_configs"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        });
        if done && applied.lock().unwrap().len() == 4 {
            break dump;
        }
        assert!(
            Instant::now() < deadline,
            "Envoy and our client did not get every type within 30s: ours {:?}\n{}",
            applied.lock().unwrap(),
            envoy.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (code, body, _) = runtime.block_on(http(admin_addr, "GET", "/config_dump?include_eds"));
    assert_eq!(code, 200);
    let ours: Value = serde_json::from_str(&body).unwrap();

    // Same sections in the same order (Envoy may list more, e.g. for extensions).
    let order = |d: &Value| -> Vec<String> {
        d["configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["@type"].as_str().unwrap().to_owned())
            .collect()
    };
    let envoy_order = order(&envoy_dump);
    let our_order = order(&ours);
    let envoy_common: Vec<&String> = envoy_order
        .iter()
        .filter(|t| our_order.contains(t))
        .collect();
    assert_eq!(
        envoy_common,
        our_order.iter().collect::<Vec<_>>(),
        "sections: Envoy {envoy_order:?}, ours {our_order:?}"
    );

    let theirs = sections(&envoy_dump);
    let mine = sections(&ours);
    let name_of = |field: &'static str, inner: &'static str| {
        move |e: &Value| {
            let r = if inner.is_empty() {
                &e[field]
            } else {
                &e[inner][field]
            };
            r["name"].as_str().unwrap_or_default().to_owned()
        }
    };
    let checks: [(&str, &str, NameOf, &str); 3] = [
        (
            "ClustersConfigDump",
            "dynamic_active_clusters",
            Box::new(name_of("cluster", "")),
            "cluster",
        ),
        (
            "RoutesConfigDump",
            "dynamic_route_configs",
            Box::new(name_of("route_config", "")),
            "route_config",
        ),
        (
            "ListenersConfigDump",
            "dynamic_listeners",
            Box::new(|e: &Value| e["name"].as_str().unwrap().to_owned()),
            "",
        ),
    ];
    for (kind, list, name, resource) in checks {
        let t = entries(&theirs[kind], list, &name);
        let m = entries(&mine[kind], list, &name);
        assert_eq!(
            t.keys().collect::<Vec<_>>(),
            m.keys().collect::<Vec<_>>(),
            "{kind}: resource names"
        );
        for (n, te) in &t {
            let me = &m[n];
            assert_eq!(keys(te), keys(me), "{kind} {n}: entry fields");
            if resource.is_empty() {
                // Listeners nest the resource in active_state.
                let (ta, ma) = (&te["active_state"], &me["active_state"]);
                assert_eq!(keys(ta), keys(ma), "{kind} {n}: active_state fields");
                assert_eq!(ta["listener"], ma["listener"], "{kind} {n}: listener JSON");
                assert_eq!(
                    ta["version_info"], ma["version_info"],
                    "{kind} {n}: version"
                );
            } else {
                assert_eq!(te[resource], me[resource], "{kind} {n}: resource JSON");
                assert_eq!(
                    te["version_info"], me["version_info"],
                    "{kind} {n}: version"
                );
            }
        }
    }
    // Envoy renders endpoints from its host set (adding defaults), so compare shape
    // and addresses rather than the whole JSON.
    let endpoint = |d: &BTreeMap<String, Value>| {
        d["EndpointsConfigDump"]["dynamic_endpoint_configs"][0].clone()
    };
    let (te, me) = (endpoint(&theirs), endpoint(&mine));
    assert_eq!(
        te["endpoint_config"]["cluster_name"],
        me["endpoint_config"]["cluster_name"]
    );
    let addr = |e: &Value| {
        e["endpoint_config"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"].clone()
    };
    assert_eq!(addr(&te), addr(&me));
    // Envoy fills only endpoint_config; we add the proto's version_info and
    // last_updated, which readers of Envoy's dump accept.
    let proto_fields: BTreeSet<String> = ["version_info", "endpoint_config", "last_updated"]
        .map(str::to_owned)
        .into();
    assert!(
        keys(&te).is_subset(&keys(&me)) && keys(&me).is_subset(&proto_fields),
        "endpoint entry fields: ours {:?}, Envoy {:?}",
        keys(&me),
        keys(&te)
    );
    runtime.block_on(client.shutdown());
}
