//! Real Envoy against the real `ironmesh-discovery` binary: every resource the control
//! plane generates for the seeds' scenarios is ACKed over SotW and Delta by sidecar and
//! gateway nodes, requests flow through Envoy the way the VirtualServices say, a config
//! change reaches Envoy within two seconds, a NACK is recorded and recovered from, and
//! Envoy reconnects to a restarted control plane.
//!
//! Each test starts its own discovery process (temporary config directory, OS-chosen
//! ports) and Envoy(s) with `--concurrency 1`; everything listens on 127.0.0.x and is
//! killed on drop, also when an assertion fails. Envoy is installed on first use (see
//! `ironmesh_testkit::envoy`). Failures print both sides' view (syncz, Envoy's stats and
//! log tail, discovery's log); `IRONMESH_TEST_DISCOVERY_LOG=debug` raises discovery's
//! log level.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ironmesh_testkit::envoy::{AdsApi, Envoy};
use serde_json::Value;

use support::envoy::{self as e, dump, rejections, stats, syncz_types, tail, wait_converged, Node};
use support::http;
use support::mesh::{template, Bookinfo, Canary};
use support::{loopback, wait_until, Discovery};

const CONVERGE: Duration = Duration::from_secs(20);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------
// 1. Every type ACKed, for sidecar and router nodes over SotW and Delta.

#[test]
fn sidecar_over_sotw_acks_every_type() {
    sidecar_acks_every_type(AdsApi::Sotw);
}

#[test]
fn sidecar_over_delta_acks_every_type() {
    sidecar_acks_every_type(AdsApi::Delta);
}

#[test]
fn router_over_sotw_acks_every_type() {
    router_acks_every_type(AdsApi::Sotw);
}

#[test]
fn router_over_delta_acks_every_type() {
    router_acks_every_type(AdsApi::Delta);
}

fn sidecar_acks_every_type(api: AdsApi) {
    let b = Bookinfo::start();
    let node = Bookinfo::sidecar();
    let envoy = e::start(&node, b.discovery.xds.port(), api);
    wait_converged(&envoy, &b.discovery, &node, CONVERGE);
    assert_every_update_accepted(&envoy, &b.discovery, &node);

    let d = dump(&envoy);
    for l in ["virtualOutbound", "virtualInbound", "0.0.0.0_9080"] {
        assert!(
            d.listeners.contains(l),
            "listener {l} missing: {:?}",
            d.listeners
        );
    }
    let reviews = "outbound|9080||reviews.default.svc.cluster.local";
    for c in [
        reviews,
        "outbound|9080|v1|reviews.default.svc.cluster.local",
        "outbound|9080|v2|reviews.default.svc.cluster.local",
        "outbound|9080|v3|reviews.default.svc.cluster.local",
        "outbound|9080||productpage.default.svc.cluster.local",
        "outbound|9080||details.default.svc.cluster.local",
        "outbound|9080||ratings.default.svc.cluster.local",
    ] {
        assert!(
            d.clusters.contains(c),
            "cluster {c} missing: {:?}",
            d.clusters
        );
    }
    // EDS reached Envoy: each subset has exactly its pod.
    for (version, ip) in [
        ("v1", "127.0.0.14"),
        ("v2", "127.0.0.15"),
        ("v3", "127.0.0.16"),
    ] {
        let c = format!("outbound|9080|{version}|reviews.default.svc.cluster.local");
        assert_eq!(
            d.endpoints.get(&c),
            Some(&vec![format!("{ip}:9080")]),
            "endpoints of {c}"
        );
    }
    let mut all_reviews = d.endpoints.get(reviews).cloned().unwrap_or_default();
    all_reviews.sort();
    assert_eq!(
        all_reviews,
        ["127.0.0.14:9080", "127.0.0.15:9080", "127.0.0.16:9080"]
    );

    // RDS `9080`: the reviews VirtualService of seed 004 (50% v1, 50% v3).
    let route = d.routes.get("9080").unwrap_or_else(|| {
        panic!(
            "route 9080 missing: {:?}",
            d.routes.keys().collect::<Vec<_>>()
        )
    });
    let weights = weighted_clusters(route, "reviews.default.svc.cluster.local");
    assert_eq!(
        weights,
        BTreeMap::from([
            (
                "outbound|9080|v1|reviews.default.svc.cluster.local".to_string(),
                50
            ),
            (
                "outbound|9080|v3|reviews.default.svc.cluster.local".to_string(),
                50
            ),
        ]),
        "reviews route: {route:#}"
    );
    assert_subscribed(&b.discovery, &node, &["CDS", "EDS", "LDS", "RDS"]);
}

fn router_acks_every_type(api: AdsApi) {
    let b = Bookinfo::start();
    let node = Bookinfo::router();
    let envoy = e::start(&node, b.discovery.xds.port(), api);
    wait_converged(&envoy, &b.discovery, &node, CONVERGE);
    assert_every_update_accepted(&envoy, &b.discovery, &node);

    let d = dump(&envoy);
    let listener = format!("0.0.0.0_{}", b.gateway_port);
    assert!(
        d.listeners.contains(&listener),
        "gateway listener {listener} missing: {:?} (warming: {:?})",
        d.listeners,
        d.warming_listeners
    );
    assert!(
        !d.listeners.contains("virtualOutbound"),
        "a gateway has no sidecar listeners: {:?}",
        d.listeners
    );
    let route_name = format!("http.{}", b.gateway_port);
    let route = d.routes.get(&route_name).unwrap_or_else(|| {
        panic!(
            "route {route_name} missing: {:?}",
            d.routes.keys().collect::<Vec<_>>()
        )
    });
    assert!(
        route
            .to_string()
            .contains("outbound|9080||productpage.default.svc.cluster.local"),
        "bookinfo's VirtualService routes to productpage: {route:#}"
    );
    let productpage = "outbound|9080||productpage.default.svc.cluster.local";
    assert!(d.clusters.contains(productpage), "{:?}", d.clusters);
    assert_eq!(
        d.endpoints.get(productpage),
        Some(&vec!["127.0.0.13:9080".to_string()])
    );
    assert_subscribed(&b.discovery, &node, &["CDS", "EDS", "LDS", "RDS"]);
}

/// No `*.update_rejected` anywhere, at least one accepted LDS, CDS and RDS update (each
/// RDS subscription included), and discovery sees the same: acked == sent, no NACK.
fn assert_every_update_accepted(envoy: &Envoy, discovery: &Discovery, node: &Node) {
    let rejected = rejections(envoy);
    assert!(
        rejected.is_empty(),
        "Envoy rejected updates: {rejected:?}\nsyncz: {:#}\nenvoy log:\n{}",
        discovery.syncz_of(&node.id).unwrap_or_default(),
        tail(&envoy.logs(), 40)
    );
    for s in [
        "listener_manager.lds.update_success",
        "cluster_manager.cds.update_success",
    ] {
        assert!(envoy.stat(s).unwrap_or(0) >= 1, "{s} is 0");
    }
    // Every EDS cluster took its ClusterLoadAssignment.
    let successes = stats(envoy, "update_success$");
    let eds_clusters = dump(envoy).eds_clusters;
    assert!(
        !eds_clusters.is_empty(),
        "no EDS cluster in Envoy's config dump"
    );
    for c in &eds_clusters {
        let n = successes
            .get(&format!("cluster.{c}.update_success"))
            .copied();
        assert!(n.unwrap_or(0) >= 1, "EDS for {c}: update_success {n:?}");
    }
    let rds = stats(envoy, "\\.rds\\..*\\.update_success$");
    assert!(!rds.is_empty(), "no RDS subscription in Envoy's stats");
    // Envoy may still be fetching a route it just learned of; give it the usual bound.
    let all_rds_ok = envoy.wait_for(
        |e| {
            stats(e, "\\.rds\\..*\\.update_success$")
                .values()
                .all(|v| *v >= 1)
        },
        Duration::from_secs(5),
    );
    assert!(
        all_rds_ok,
        "an RDS subscription got no update: {:?}",
        stats(envoy, "\\.rds\\.")
    );
    for (name, t) in syncz_types(discovery, node) {
        if t["subscribed"] == true {
            assert_eq!(t["nack"], Value::Null, "{name} was NACKed: {t:#}");
            assert!(t["sentVersion"].is_string(), "{name} never sent: {t:#}");
            assert_eq!(t["ackedVersion"], t["sentVersion"], "{name}: {t:#}");
        }
    }
}

fn assert_subscribed(discovery: &Discovery, node: &Node, want: &[&str]) {
    let types = syncz_types(discovery, node);
    for t in want {
        assert_eq!(
            types.get(*t).map(|v| &v["subscribed"]),
            Some(&Value::Bool(true)),
            "{} did not subscribe to {t}: {types:#?}",
            node.id
        );
    }
    let entry = discovery.syncz_of(&node.id).expect("in syncz");
    assert_eq!(
        entry["proxy"],
        node.pod_id.as_str(),
        "syncz proxy of {}",
        node.id
    );
}

/// Cluster → weight of the route of the virtual host named like `host` (`host:port`).
fn weighted_clusters(route: &Value, host: &str) -> BTreeMap<String, u64> {
    let vhosts = route["virtual_hosts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let vh = vhosts
        .iter()
        .find(|v| v["name"].as_str().is_some_and(|n| n.starts_with(host)))
        .unwrap_or_else(|| panic!("no virtual host for {host} in {route:#}"));
    let action = &vh["routes"][0]["route"];
    action["weighted_clusters"]["clusters"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_string(),
                c["weight"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// 2. Real HTTP through a gateway Envoy.

#[test]
fn gateway_routes_real_requests_by_header_weight_and_host() {
    let c = Canary::start();
    let node = Canary::router();
    let envoy = e::start(&node, c.discovery.xds.port(), AdsApi::Delta);
    wait_converged(&envoy, &c.discovery, &node, CONVERGE);
    let gw = loopback(c.http_port);
    wait_serving(&envoy, &c.discovery, gw, "v1");

    for i in 0..20 {
        let r = http::get(
            gw,
            "canary.example.com",
            "/",
            &[("user", "zhongmingmao")],
            REQUEST_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("request {i} with the header: {e}"));
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "v2"),
            "request {i} with the header"
        );
    }
    for i in 0..20 {
        let r = http::get(
            gw,
            "canary.example.com",
            "/",
            &[("user", "someone-else")],
            REQUEST_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("request {i} without the header: {e}"));
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "v1"),
            "request {i} without the header"
        );
    }

    let mut counts = BTreeMap::<String, u32>::new();
    let total = 400;
    let started = Instant::now();
    for i in 0..total {
        let r = http::get(gw, "split.example.com", "/", &[], REQUEST_TIMEOUT)
            .unwrap_or_else(|e| panic!("split request {i}: {e}"));
        assert_eq!(r.status, 200, "split request {i}: {}", r.body);
        *counts.entry(r.body).or_default() += 1;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "400 requests took over 30s"
        );
    }
    let v1 = counts.get("v1").copied().unwrap_or(0);
    let v2 = counts.get("v2").copied().unwrap_or(0);
    assert_eq!(v1 + v2, total, "answers other than v1/v2: {counts:?}");
    let share = f64::from(v1) / f64::from(total);
    assert!(
        (0.40..=0.60).contains(&share),
        "50/50 split gave {counts:?} (v1 share {share:.2})"
    );

    // The port-81 gateway only has only.example.com: any other Host is Envoy's 404.
    let specific = loopback(c.specific_port);
    let r = http::get(specific, "only.example.com", "/", &[], REQUEST_TIMEOUT)
        .expect("only.example.com");
    assert_eq!((r.status, r.body.as_str()), (200, "v1"));
    let r =
        http::get(specific, "other.example.com", "/", &[], REQUEST_TIMEOUT).expect("other host");
    assert_eq!(
        r.status, 404,
        "unknown Host on a host-specific gateway: {}",
        r.body
    );
}

/// Waits until the gateway listener answers a plain request with `body` (the listener
/// is active and the backends' endpoints arrived).
fn wait_serving(envoy: &Envoy, discovery: &Discovery, gw: std::net::SocketAddr, body: &str) {
    let mut last = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        match http::get(gw, "canary.example.com", "/", &[], REQUEST_TIMEOUT) {
            Ok(r) if r.status == 200 && r.body == body => true,
            Ok(r) => {
                last = format!("{} {}", r.status, r.body);
                false
            }
            Err(e) => {
                last = e;
                false
            }
        }
    });
    assert!(
        ok,
        "gateway {gw} does not answer {body:?}; last: {last}\ndump: {:?}\nsyncz: {:#}\nenvoy log:\n{}",
        dump(envoy),
        Value::Array(discovery.syncz()),
        tail(&envoy.logs(), 40)
    );
}

// ---------------------------------------------------------------------------------
// 3. A change in --config-dir reaches Envoy quickly.

#[test]
fn config_dir_change_reaches_envoy_within_two_seconds() {
    let c = Canary::start();
    let node = Canary::router();
    let envoy = e::start(&node, c.discovery.xds.port(), AdsApi::Sotw);
    wait_converged(&envoy, &c.discovery, &node, CONVERGE);
    let gw = loopback(c.http_port);
    wait_serving(&envoy, &c.discovery, gw, "v1");

    let started = Instant::now();
    c.set_default_subset("v2");
    let mut answers = Vec::new();
    let flipped = wait_until(Duration::from_secs(10), || {
        let r = http::get(gw, "canary.example.com", "/", &[], REQUEST_TIMEOUT);
        let v2 = matches!(&r, Ok(r) if r.status == 200 && r.body == "v2");
        answers.push(r.map(|r| format!("{} {}", r.status, r.body)));
        v2
    });
    let took = started.elapsed();
    assert!(
        flipped,
        "the default route still is not v2 after 10s; answers: {:?}\nsyncz: {:#}",
        &answers[answers.len().saturating_sub(5)..],
        Value::Array(c.discovery.syncz())
    );
    eprintln!("config change reached Envoy's traffic in {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "the change took {took:?} to reach Envoy"
    );
    // No request failed during the switch: every answer was v1 or v2.
    for a in &answers {
        assert!(
            matches!(a.as_deref(), Ok("200 v1") | Ok("200 v2")),
            "a request during the switch failed: {a:?}"
        );
    }
    for _ in 0..10 {
        let r = http::get(gw, "canary.example.com", "/", &[], REQUEST_TIMEOUT)
            .expect("after the switch");
        assert_eq!(r.body, "v2");
    }
    wait_converged(&envoy, &c.discovery, &node, CONVERGE);
    assert!(rejections(&envoy).is_empty(), "{:?}", rejections(&envoy));
}

// ---------------------------------------------------------------------------------
// 4. A config Istio accepts but Envoy rejects: the NACK is recorded, then recovered.

#[test]
fn nack_is_recorded_and_the_fix_is_acked() {
    let b = Bookinfo::start();
    let sidecar = Bookinfo::sidecar();
    let router = Bookinfo::router();
    let sidecar_envoy = e::start(&sidecar, b.discovery.xds.port(), AdsApi::Delta);
    let router_envoy = e::start(&router, b.discovery.xds.port(), AdsApi::Sotw);
    let proxies = [(&sidecar, &sidecar_envoy), (&router, &router_envoy)];
    for (node, envoy) in proxies {
        wait_converged(envoy, &b.discovery, node, CONVERGE);
    }
    let details = "outbound|9080||details.default.svc.cluster.local";

    let missing_ca = b.ws.config_dir().with_file_name("no-such-ca.pem");
    b.ws.write(
        "details-tls.yaml",
        &template(
            "details-tls.yaml",
            &[(
                "TLS",
                format!("{{mode: SIMPLE, caCertificates: {}}}", missing_ca.display()),
            )],
        ),
    );
    wait_config_applied(&b.discovery, "DestinationRule", "default", "details");
    for (node, envoy) in proxies {
        let rejected = envoy.wait_for(
            |e| e.stat("cluster_manager.cds.update_rejected").unwrap_or(0) >= 1,
            Duration::from_secs(10),
        );
        assert!(
            rejected,
            "{} did not reject a cluster whose CA file is missing; its details cluster: {:#}\nsyncz: {:#}\nenvoy log:\n{}",
            node.id,
            find_cluster(&envoy.config_dump(), details).unwrap_or_default(),
            b.discovery.syncz_of(&node.id).unwrap_or_default(),
            tail(&envoy.logs(), 30)
        );
        // Discovery records the NACK with Envoy's message.
        let mut cds = Value::Null;
        let recorded = wait_until(Duration::from_secs(5), || {
            cds = syncz_types(&b.discovery, node)["CDS"].clone();
            cds["nack"].is_object()
        });
        assert!(recorded, "{}: no NACK in syncz: {cds:#}", node.id);
        let message = cds["nack"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains(&missing_ca.display().to_string()),
            "{}: the NACK should carry Envoy's message naming the missing file: {cds:#}",
            node.id
        );
        assert_ne!(
            cds["ackedVersion"], cds["sentVersion"],
            "{}: {cds:#}",
            node.id
        );
    }
    let rejects = b.discovery.metric("pilot_total_xds_rejects{type=\"cds\"}");
    assert!(
        rejects.unwrap_or(0.0) >= 2.0,
        "pilot_total_xds_rejects{{type=\"cds\"}} = {rejects:?}\n{}",
        b.discovery.metrics()
    );

    // The fix: the next version is ACKed and Envoy has the cluster as configured.
    let before: Vec<u64> = proxies
        .iter()
        .map(|(_, e)| e.stat("cluster_manager.cds.update_success").unwrap_or(0))
        .collect();
    b.ws.write(
        "details-tls.yaml",
        &template(
            "details-tls.yaml",
            &[("TLS", "{mode: SIMPLE, sni: details.example.com}".into())],
        ),
    );
    for ((node, envoy), before) in proxies.iter().zip(before) {
        let taken = envoy.wait_for(
            |e| e.stat("cluster_manager.cds.update_success").unwrap_or(0) > before,
            Duration::from_secs(10),
        );
        assert!(taken, "{}: the fixed CDS was not accepted", node.id);
        wait_converged(envoy, &b.discovery, node, CONVERGE);
        let cds = syncz_types(&b.discovery, node)["CDS"].clone();
        assert_eq!(
            cds["ackedVersion"], cds["sentVersion"],
            "{}: {cds:#}",
            node.id
        );
        let cluster = find_cluster(&envoy.config_dump(), details)
            .unwrap_or_else(|| panic!("{}: no details cluster", node.id));
        assert!(
            cluster["transport_socket"]
                .to_string()
                .contains("details.example.com"),
            "{}: the fixed TLS settings (sni) are not in Envoy: {cluster:#}",
            node.id
        );
    }
}

/// Waits until discovery holds the object `kind ns/name` from the config directory;
/// panics with discovery's diagnostics if a file was rejected.
fn wait_config_applied(discovery: &Discovery, kind: &str, ns: &str, name: &str) {
    let mut configz = Value::Null;
    let ok = wait_until(Duration::from_secs(10), || {
        configz = discovery.get_json("/debug/configz");
        let rejected = configz["rejected"]
            .as_array()
            .is_some_and(|r| !r.is_empty());
        assert!(
            !rejected,
            "discovery rejected the config: {:#}",
            configz["rejected"]
        );
        configz["objects"].as_array().is_some_and(|objects| {
            objects
                .iter()
                .any(|o| o["kind"] == kind && o["namespace"] == ns && o["name"] == name)
        })
    });
    assert!(
        ok,
        "{kind} {ns}/{name} not in /debug/configz after 10s: {configz:#}"
    );
}

// ---------------------------------------------------------------------------------
// 4b. A changed cluster finishes warming (Envoy re-creates an updated EDS cluster and
// waits for its ClusterLoadAssignment before using it or ACKing CDS).

#[test]
fn changed_cluster_finishes_warming_over_sotw_and_delta() {
    let b = Bookinfo::start();
    let sidecar = Bookinfo::sidecar();
    let router = Bookinfo::router();
    let sidecar_envoy = e::start(&sidecar, b.discovery.xds.port(), AdsApi::Delta);
    let router_envoy = e::start(&router, b.discovery.xds.port(), AdsApi::Sotw);
    let proxies = [(&sidecar, &sidecar_envoy), (&router, &router_envoy)];
    for (node, envoy) in proxies {
        wait_converged(envoy, &b.discovery, node, CONVERGE);
    }
    let ratings = "outbound|9080||ratings.default.svc.cluster.local";
    b.ws.write(
        "ratings-random.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n\
         metadata: {name: ratings, namespace: default}\n\
         spec:\n  host: ratings\n  trafficPolicy:\n    loadBalancer: {simple: RANDOM}\n",
    );
    wait_config_applied(&b.discovery, "DestinationRule", "default", "ratings");
    for (node, envoy) in proxies {
        let updated = envoy.wait_for(
            |e| find_cluster(&e.config_dump(), ratings).is_some_and(|c| c["lb_policy"] == "RANDOM"),
            Duration::from_secs(10),
        );
        assert!(
            updated,
            "{}: the RANDOM ratings cluster never became active (warming clusters: {:?})\n\
             syncz: {:#}",
            node.id,
            envoy.stat("cluster_manager.warming_clusters"),
            b.discovery.syncz_of(&node.id).unwrap_or_default()
        );
        wait_converged(envoy, &b.discovery, node, Duration::from_secs(10));
        assert_eq!(
            dump(envoy).endpoints.get(ratings),
            Some(&vec!["127.0.0.12:9080".to_string()]),
            "{}: the re-created cluster has its endpoints",
            node.id
        );
        assert!(
            rejections(envoy).is_empty(),
            "{}: {:?}",
            node.id,
            rejections(envoy)
        );
    }
}

fn find_cluster(config_dump: &Value, name: &str) -> Option<Value> {
    config_dump["configs"]
        .as_array()?
        .iter()
        .filter_map(|s| s["dynamic_active_clusters"].as_array())
        .flatten()
        .map(|c| &c["cluster"])
        .find(|c| c["name"] == name)
        .cloned()
}

// ---------------------------------------------------------------------------------
// 5. Envoy reconnects to a restarted control plane.

#[test]
fn envoy_reconnects_to_a_restarted_discovery() {
    let mut b = Bookinfo::start();
    let sidecar = Bookinfo::sidecar();
    let router = Bookinfo::router();
    let sidecar_envoy = e::start(&sidecar, b.discovery.xds.port(), AdsApi::Delta);
    let router_envoy = e::start(&router, b.discovery.xds.port(), AdsApi::Sotw);
    let proxies = [(&sidecar, &sidecar_envoy), (&router, &router_envoy)];
    for (node, envoy) in proxies {
        wait_converged(envoy, &b.discovery, node, CONVERGE);
    }
    let listeners_before: Vec<_> = proxies.iter().map(|(_, e)| dump(e).listeners).collect();

    let old_xds = b.discovery.xds;
    b.discovery.kill();
    // Envoy notices the stream is gone.
    for (node, envoy) in proxies {
        let lost = envoy.wait_for(
            |e| e.stat("control_plane.connected_state") == Some(0),
            Duration::from_secs(10),
        );
        assert!(lost, "{} still reports a control plane connection", node.id);
    }
    let started = Instant::now();
    b.discovery.restart();
    assert_eq!(
        b.discovery.xds, old_xds,
        "restarted on the same xDS address"
    );
    for (node, envoy) in proxies {
        wait_converged(envoy, &b.discovery, node, Duration::from_secs(30));
        assert_eq!(
            envoy.stat("control_plane.connected_state"),
            Some(1),
            "{}",
            node.id
        );
        let rejected = rejections(envoy);
        assert!(rejected.is_empty(), "{}: {rejected:?}", node.id);
        let entry = b.discovery.syncz_of(&node.id).expect("reconnected");
        assert!(
            support::discovery::out_of_sync(&entry).is_empty(),
            "{}: {entry:#}",
            node.id
        );
    }
    eprintln!(
        "both proxies re-synced {:?} after the restart",
        started.elapsed()
    );
    let listeners_after: Vec<_> = proxies.iter().map(|(_, e)| dump(e).listeners).collect();
    assert_eq!(
        listeners_before, listeners_after,
        "same config after the restart"
    );
}

// ---------------------------------------------------------------------------------
// 6. `ironmesh proxy-status` against the running discovery.

#[test]
fn proxy_status_shows_both_proxies_synced() {
    let cli = ironmesh_cli_binary();
    let b = Bookinfo::start();
    let sidecar = Bookinfo::sidecar();
    let router = Bookinfo::router();
    let sidecar_envoy = e::start(&sidecar, b.discovery.xds.port(), AdsApi::Delta);
    let router_envoy = e::start(&router, b.discovery.xds.port(), AdsApi::Sotw);
    for (node, envoy) in [(&sidecar, &sidecar_envoy), (&router, &router_envoy)] {
        wait_converged(envoy, &b.discovery, node, CONVERGE);
    }
    let out = Command::new(&cli)
        .args(["proxy-status", "-v", "--discovery"])
        .arg(format!("http://{}", b.discovery.http))
        .env_remove("IRONMESH_DISCOVERY")
        .output()
        .expect("run ironmesh proxy-status");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "proxy-status failed\n{stdout}{stderr}"
    );
    let table = parse_table(&stdout);
    for node in [&sidecar, &router] {
        let row = table
            .iter()
            .find(|r| r.get("NAME").map(String::as_str) == Some(node.pod_id.as_str()))
            .unwrap_or_else(|| panic!("{} not in proxy-status:\n{stdout}{stderr}", node.pod_id));
        for col in ["CDS", "LDS", "EDS", "RDS"] {
            let cell = row.get(col).map(String::as_str).unwrap_or("");
            assert!(
                cell.starts_with("SYNCED"),
                "{} {col} is {cell:?}:\n{stdout}{stderr}",
                node.pod_id
            );
        }
        assert_eq!(row.get("CLUSTER").map(String::as_str), Some("Kubernetes"));
    }
}

/// `ironmesh` next to `ironmesh-discovery` in the target directory (binaries of other
/// crates are not built for this crate's tests: the workspace build makes it).
fn ironmesh_cli_binary() -> PathBuf {
    let discovery = support::discovery::binary();
    let cli = discovery.with_file_name(format!("ironmesh{}", std::env::consts::EXE_SUFFIX));
    assert!(
        cli.exists(),
        "{} is missing: run `cargo build -p ironmesh-cli` (or build the whole workspace) first",
        cli.display()
    );
    cli
}

/// A column-aligned table (header first) as one map per row, cells cut at the header's
/// column starts (cells may contain spaces, e.g. `SYNCED (2s)`).
fn parse_table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let mut starts = Vec::new();
    let mut prev_space = true;
    for (i, ch) in header.char_indices() {
        if prev_space && ch != ' ' {
            starts.push(i);
        }
        prev_space = ch == ' ';
    }
    let names: Vec<String> = starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let end = starts.get(k + 1).copied().unwrap_or(header.len());
            header[s..end].trim().to_string()
        })
        .collect();
    lines
        .map(|line| {
            names
                .iter()
                .enumerate()
                .map(|(k, name)| {
                    let s = starts[k].min(line.len());
                    let end = starts
                        .get(k + 1)
                        .copied()
                        .unwrap_or(line.len())
                        .min(line.len());
                    (
                        name.clone(),
                        line.get(s..end).unwrap_or("").trim().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}
