//! The admin API and the agent's ports over real sockets on 127.0.0.1, with fake hooks,
//! a fake app (metrics and probe targets) and xDS updates built from Envoy's protos.
//! `config_dump_matches_real_envoy` runs a real Envoy (SLOW / EXTERNAL: installed by
//! `ironmesh_testkit::envoy` on first use) against the repo's ADS server next to our
//! ADS client, and compares the two `/config_dump`s.

#[path = "admin/common.rs"]
mod common;
#[path = "admin/envoy_compare.rs"]
mod envoy_compare;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::{cla, eds_cluster, http, listener, route, update, FakeHooks, CLUSTER_NAME};
use ironmesh_proxy::admin::{
    reloadable_filter, serve_admin, serve_prometheus, serve_readiness, serve_status, AdminOptions,
    AdminState, AgentConfig,
};
use ironmesh_xds::pb::envoy::config::cluster::v3::Cluster;
use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use prost::Message;
use serde_json::Value;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn node() -> Node {
    Node {
        id: "sidecar~10.213.0.5~reviews-v1-abc.default~default.svc.cluster.local".into(),
        cluster: "reviews.default".into(),
        ..Default::default()
    }
}

fn section<'a>(dump: &'a Value, kind: &str) -> &'a Value {
    dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["@type"].as_str().unwrap().ends_with(&format!(".{kind}")))
        .unwrap_or_else(|| panic!("no {kind} in {dump:#}"))
}

fn state_with_config(hooks: Arc<FakeHooks>, options: AdminOptions) -> AdminState {
    let state = AdminState::with_options(node(), hooks, options);
    state.record_update(&update(
        CLUSTER,
        "7",
        vec![(CLUSTER_NAME, ironmesh_xds::pack(&eds_cluster()))],
    ));
    state.record_update(&update(
        ENDPOINT,
        "7",
        vec![(CLUSTER_NAME, ironmesh_xds::pack(&cla(9080)))],
    ));
    state.record_update(&update(
        LISTENER,
        "8",
        vec![("127.0.0.1_0", ironmesh_xds::pack(&listener()))],
    ));
    state.record_update(&update(
        ROUTE,
        "8",
        vec![("9080", ironmesh_xds::pack(&route()))],
    ));
    state
}

#[tokio::test]
async fn config_dump_has_envoys_shape_and_round_trips() {
    let hooks = Arc::new(FakeHooks::default());
    let state = state_with_config(hooks, AdminOptions::default());
    let (addr, _task) = serve_admin(any_port(), state.clone()).await.unwrap();

    let (code, body, ctype) = http(addr, "GET", "/config_dump").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(ctype, "application/json");
    let dump: Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<&str> = dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["@type"].as_str().unwrap().rsplit('.').next().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "BootstrapConfigDump",
            "ClustersConfigDump",
            "ListenersConfigDump",
            "ScopedRoutesConfigDump",
            "RoutesConfigDump",
            "SecretsConfigDump"
        ],
        "no endpoints without include_eds, as Envoy"
    );
    assert_eq!(
        section(&dump, "BootstrapConfigDump")["bootstrap"]["node"]["id"],
        node().id
    );

    let clusters = section(&dump, "ClustersConfigDump");
    assert_eq!(clusters["version_info"], "7");
    let c = &clusters["dynamic_active_clusters"][0];
    assert_eq!(c["version_info"], "7");
    assert!(c["last_updated"].as_str().unwrap().ends_with('Z'));
    let cluster_json = &c["cluster"];
    assert_eq!(
        cluster_json["@type"],
        "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    );
    assert_eq!(cluster_json["name"], CLUSTER_NAME);
    // Envoy's spelling: proto field names, enums by name, durations as strings.
    assert_eq!(cluster_json["type"], "EDS");
    assert_eq!(cluster_json["connect_timeout"], "10s");
    assert_eq!(
        cluster_json["circuit_breakers"]["thresholds"][0]["max_connections"],
        4294967295u64
    );
    assert_eq!(
        cluster_json["metadata"]["filter_metadata"]["istio"]["services"][0]["host"],
        "reviews.default.svc.cluster.local"
    );
    // The JSON parses back into the same cluster.
    let back = ironmesh_xds::json_to_any(CLUSTER, cluster_json).unwrap();
    assert_eq!(
        Cluster::decode(back.value.as_slice()).unwrap(),
        eds_cluster()
    );

    let listeners = section(&dump, "ListenersConfigDump");
    let l = &listeners["dynamic_listeners"][0];
    assert_eq!(l["name"], "127.0.0.1_0");
    assert_eq!(l["active_state"]["version_info"], "8");
    assert_eq!(l["active_state"]["listener"]["name"], "127.0.0.1_0");
    let hcm = &l["active_state"]["listener"]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["rds"]["route_config_name"], "9080");
    let routes = section(&dump, "RoutesConfigDump");
    assert_eq!(
        routes["dynamic_route_configs"][0]["route_config"]["name"],
        "9080"
    );

    let (_, body, _) = http(addr, "GET", "/config_dump?include_eds").await;
    let dump: Value = serde_json::from_str(&body).unwrap();
    let eds = &section(&dump, "EndpointsConfigDump")["dynamic_endpoint_configs"][0];
    assert_eq!(eds["endpoint_config"]["cluster_name"], CLUSTER_NAME);
    assert_eq!(
        eds["endpoint_config"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"]["address"],
        "10.213.0.1"
    );

    // A removal shows up in the next dump.
    state.record_update(&update(ROUTE, "9", vec![]));
    let dump = state.config_dump(false);
    assert_eq!(
        section(&dump, "RoutesConfigDump")["dynamic_route_configs"],
        Value::Array(vec![])
    );

    let (code, body, _) = http(addr, "GET", "/listeners").await;
    assert_eq!((code, body.as_str()), (200, "127.0.0.1_0::127.0.0.1:0\n"));
    let (_, body, _) = http(addr, "GET", "/listeners?format=json").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["listener_statuses"][0]["name"], "127.0.0.1_0");
}

#[tokio::test]
async fn admin_endpoints() {
    let hooks = Arc::new(FakeHooks::default());
    let (filter, log) = reloadable_filter("info").unwrap();
    // The reload handle works while its subscriber lives (not installed globally, so
    // parallel tests are unaffected).
    let _subscriber = {
        use tracing_subscriber::prelude::*;
        tracing_subscriber::registry().with(filter)
    };
    let options = AdminOptions {
        log: Some(log),
        ..Default::default()
    };
    let state = state_with_config(hooks.clone(), options);
    let (addr, _task) = serve_admin(any_port(), state.clone()).await.unwrap();

    let (code, body, _) = http(addr, "GET", "/clusters").await;
    assert_eq!(code, 200);
    assert!(body.contains("::health_flags::healthy"), "{body}");
    let (code, _, _) = http(addr, "GET", "/clusters?format=json").await;
    assert_eq!(code, 501);

    let (code, body, ctype) = http(addr, "GET", "/stats/prometheus").await;
    assert_eq!(code, 200);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    assert!(body.contains("envoy_cluster_upstream_cx_total{cluster_name=\"a\"} 7"));
    assert!(!body.contains("# EOF"));
    let (_, body, _) = http(addr, "GET", "/stats").await;
    assert!(
        body.contains("envoy_cluster_upstream_cx_total{cluster_name=\"a\"}: 7\n"),
        "{body}"
    );
    assert!(body.contains("istio_requests_total: 3\n"), "{body}");
    let (_, body, _) = http(addr, "GET", "/stats?filter=^istio_").await;
    assert_eq!(body, "istio_requests_total: 3\n");
    let (code, _, _) = http(addr, "GET", "/stats?filter=(").await;
    assert_eq!(code, 400);

    let (code, body, _) = http(addr, "GET", "/ready").await;
    assert_eq!((code, body.as_str()), (200, "LIVE\n"));
    *hooks.ready.lock().unwrap() = Err("waiting for the first LDS update".into());
    let (code, body, _) = http(addr, "GET", "/ready").await;
    assert_eq!(code, 503);
    assert!(body.contains("waiting for the first LDS"));
    let (_, body, _) = http(addr, "GET", "/server_info").await;
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["state"], "PRE_INITIALIZING");
    assert_eq!(info["node"]["id"], node().id);
    *hooks.ready.lock().unwrap() = Ok(());

    let (code, body, _) = http(addr, "GET", "/logging").await;
    assert_eq!(code, 200);
    assert_eq!(body, "active loggers:\n  default: info\n");
    let (code, _, _) = http(addr, "GET", "/logging?level=debug").await;
    assert_eq!(code, 405, "changing state needs POST");
    let (code, body, _) = http(addr, "POST", "/logging?level=debug").await;
    assert_eq!(code, 200, "{body}");
    let (code, body, _) = http(addr, "POST", "/logging?ironmesh_xds=trace").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body, "active loggers:\n  default: debug\n  ironmesh_xds: trace\n",
        "{body}"
    );
    let (code, body, _) = http(addr, "POST", "/logging?level=shouting").await;
    assert_eq!(code, 400);
    assert!(body.contains("unknown log level"));

    let (code, _, _) = http(addr, "GET", "/quitquitquit").await;
    assert_eq!(code, 405);
    assert_eq!(hooks.quits.load(Ordering::SeqCst), 0);
    let (code, _, _) = http(addr, "POST", "/quitquitquit").await;
    assert_eq!(code, 200);
    assert_eq!(hooks.quits.load(Ordering::SeqCst), 1);

    let (code, _, _) = http(addr, "POST", "/drain_listeners").await;
    assert_eq!(code, 200);
    assert_eq!(hooks.drains.load(Ordering::SeqCst), 1);
    let (code, body, _) = http(addr, "GET", "/ready").await;
    assert_eq!((code, body.as_str()), (503, "DRAINING\n"));

    let (code, body, _) = http(addr, "GET", "/nope").await;
    assert_eq!(code, 404);
    assert!(
        body.contains("/config_dump"),
        "the help lists the endpoints"
    );
}

#[tokio::test]
async fn agent_ports_probe_and_merge() {
    let app = common::FakeApp::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let probers = format!(
        r#"{{
        "/app-health/reviews/readyz": {{"httpGet": {{"path": "/status/200", "port": {app}, "scheme": "HTTP",
            "httpHeaders": [{{"name": "X-Probe", "value": "yes"}}]}}, "timeoutSeconds": 2}},
        "/app-health/reviews/livez": {{"httpGet": {{"path": "/status/503", "port": {app}}}}},
        "/app-health/tcp/readyz": {{"tcpSocket": {{"port": {app}}}}},
        "/app-health/tcp/livez": {{"tcpSocket": {{"port": {closed}}}}},
        "/app-health/secure/readyz": {{"httpGet": {{"path": "/", "port": {app}, "scheme": "HTTPS"}}}}
    }}"#,
        app = app.port
    );
    let annotations = format!(
        r#"{{"scrape":"true","path":"/metrics","port":"{}"}}"#,
        app.port
    );
    let agent = AgentConfig::from_vars(Some(&annotations), Some(&probers)).unwrap();
    let hooks = Arc::new(FakeHooks::default());
    let state = state_with_config(
        hooks.clone(),
        AdminOptions {
            agent,
            ..Default::default()
        },
    );
    let (status, _t1) = serve_status(any_port(), state.clone()).await.unwrap();
    let (readiness, _t2) = serve_readiness(any_port(), state.clone()).await.unwrap();
    let (prom, _t3) = serve_prometheus(any_port(), state.clone()).await.unwrap();

    for addr in [status, readiness] {
        let (code, _, _) = http(addr, "GET", "/healthz/ready").await;
        assert_eq!(code, 200);
    }
    *hooks.ready.lock().unwrap() = Err("config not received from discovery".into());
    for addr in [status, readiness] {
        let (code, body, _) = http(addr, "GET", "/healthz/ready").await;
        assert_eq!(code, 503);
        assert!(body.contains("config not received"), "{body}");
    }

    let (code, body, _) = http(status, "GET", "/stats/prometheus").await;
    assert_eq!(code, 200);
    assert!(
        body.contains("envoy_cluster_upstream_cx_total{cluster_name=\"a\"} 7"),
        "{body}"
    );
    assert!(
        body.contains("app_requests_total 42"),
        "app metrics merged: {body}"
    );
    assert!(
        body.contains("istio_agent_scrape_failures_total 0"),
        "{body}"
    );
    let (_, body, _) = http(prom, "GET", "/stats/prometheus").await;
    assert!(body.contains("envoy_cluster_upstream_cx_total"));
    assert!(
        !body.contains("app_requests_total"),
        "15090 is the proxy's own"
    );

    let (code, _, _) = http(status, "GET", "/app-health/reviews/readyz").await;
    assert_eq!(code, 200);
    assert!(
        app.requests()
            .iter()
            .any(|r| r.contains("GET /status/200")
                && r.to_ascii_lowercase().contains("x-probe: yes")),
        "the probe reached the app with its headers: {:?}",
        app.requests()
    );
    let (code, _, _) = http(status, "GET", "/app-health/reviews/livez").await;
    assert_eq!(code, 503, "the app's failure status is passed on");
    let (code, _, _) = http(status, "GET", "/app-health/tcp/readyz").await;
    assert_eq!(code, 200);
    let (code, body, _) = http(status, "GET", "/app-health/tcp/livez").await;
    assert_eq!(code, 500, "{body}");
    let (code, body, _) = http(status, "GET", "/app-health/secure/readyz").await;
    assert_eq!(code, 500);
    assert!(body.contains("HTTPS"), "{body}");
    let (code, _, _) = http(status, "GET", "/app-health/unknown/livez").await;
    assert_eq!(code, 404);

    let (code, _, _) = http(status, "POST", "/quitquitquit").await;
    assert_eq!(code, 200);
    assert_eq!(hooks.quits.load(Ordering::SeqCst), 1);

    // The app goes away: the proxy's metrics are still served, the failure counted.
    let app_port = app.port;
    app.stop().await;
    assert!(std::net::TcpStream::connect(("127.0.0.1", app_port)).is_err());
    let (code, body, _) = http(status, "GET", "/stats/prometheus").await;
    assert_eq!(code, 200);
    assert!(body.contains("envoy_cluster_upstream_cx_total"), "{body}");
    assert!(
        body.contains("istio_agent_scrape_failures_total 1"),
        "{body}"
    );
}

/// `AdminState` records only what it is given; the handler decides (accepted only).
#[test]
fn accepted_versions_are_tracked() {
    let state = AdminState::new(node(), Arc::new(FakeHooks::default()));
    assert_eq!(state.accepted_version(CLUSTER), None);
    state.record_update(&update(CLUSTER, "3", vec![]));
    assert_eq!(state.accepted_version(CLUSTER).as_deref(), Some("3"));
    let dump = state.config_dump(true);
    let by_kind: BTreeMap<String, Value> = dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["@type"].as_str().unwrap().to_owned(), c.clone()))
        .collect();
    assert_eq!(by_kind.len(), 7);
}

/// Only updates the proxy accepted reach the dump.
#[test]
fn record_accepted_skips_rejected_updates() {
    use ironmesh_proxy::admin::RecordAccepted;
    use ironmesh_xds::Handler;

    struct RejectOdd;
    impl Handler for RejectOdd {
        fn apply(&self, update: &ironmesh_xds::Update) -> Result<(), String> {
            match update.version_info.parse::<u32>() {
                Ok(v) if v % 2 == 0 => Ok(()),
                _ => Err(format!("version {} rejected", update.version_info)),
            }
        }
        fn names(&self, _type_url: &str) -> std::collections::BTreeSet<String> {
            ["x".to_owned()].into()
        }
    }
    let state = AdminState::new(node(), Arc::new(FakeHooks::default()));
    let handler = RecordAccepted::new(RejectOdd, state.clone());
    let cluster = || vec![(CLUSTER_NAME, ironmesh_xds::pack(&eds_cluster()))];
    assert!(handler.apply(&update(CLUSTER, "2", cluster())).is_ok());
    assert!(handler.apply(&update(CLUSTER, "3", vec![])).is_err());
    assert_eq!(state.accepted_version(CLUSTER).as_deref(), Some("2"));
    let dump = state.config_dump(false);
    assert_eq!(
        section(&dump, "ClustersConfigDump")["dynamic_active_clusters"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the rejected empty set did not replace the accepted one"
    );
    assert_eq!(handler.names(ENDPOINT).len(), 1);
}
