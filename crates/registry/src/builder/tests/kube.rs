use std::collections::BTreeMap;

use ironmesh_config::mesh::MeshConfig;

use super::{addresses, build, objects, pod};
use crate::builder::build_services;
use crate::model::{Locality, Protocol, Resolution, ServiceOrigin, TlsMode};

#[test]
fn kubernetes_service_host_vip_ports_and_protocols() {
    let reg = build(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: bookinfo
  labels: {app: reviews}
spec:
  clusterIP: 10.96.0.20
  selector: {app: reviews}
  ports:
  - {name: http-web, port: 9080, targetPort: 8080}
  - {name: grpc, port: 9090}
  - {name: tcp-db, port: 5432, targetPort: db}
  - {name: web, port: 8000, appProtocol: http2}
  - {name: plain, port: 7000}
  - {name: dns, port: 53, protocol: UDP}
"#,
    );
    let svc = reg.service("reviews.bookinfo.svc.cluster.local").unwrap();
    assert_eq!(svc.name, "reviews");
    assert_eq!(svc.namespace, "bookinfo");
    assert_eq!(svc.vip, Some("10.96.0.20".parse().unwrap()));
    assert_eq!(svc.resolution, Resolution::ClientSideLb);
    assert!(!svc.mesh_external);
    assert_eq!(svc.origin, ServiceOrigin::Kubernetes);
    assert_eq!(svc.export_to, vec!["*"]);
    assert_eq!(svc.labels.get("app").map(String::as_str), Some("reviews"));
    assert_eq!(
        svc.selector,
        Some(BTreeMap::from([("app".into(), "reviews".into())]))
    );
    let ports: Vec<_> = svc
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.port, p.protocol, p.target_port))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("http-web", 9080, Protocol::Http, Some(8080)),
            ("grpc", 9090, Protocol::Grpc, Some(9090)),
            ("tcp-db", 5432, Protocol::Tcp, None),
            ("web", 8000, Protocol::Http2, Some(8000)),
            ("plain", 7000, Protocol::Unsupported, Some(7000)),
            ("dns", 53, Protocol::Udp, Some(53)),
        ]
    );
}

#[test]
fn headless_services_are_passthrough_and_unallocated_ones_get_a_vip() {
    let reg = build(
        r#"
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: tcp, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: cache, namespace: data}
spec:
  selector: {app: cache}
  ports: [{name: tcp, port: 6379}]
"#,
    );
    let db = reg.service("db.data.svc.cluster.local").unwrap();
    assert_eq!(db.vip, None);
    assert_eq!(db.resolution, Resolution::Passthrough);
    // No clusterIP: allocated from 240.240.0.0/16, as the API server would allocate one.
    let cache = reg.service("cache.data.svc.cluster.local").unwrap();
    let vip = cache.vip.expect("allocated VIP");
    assert!(vip.to_string().starts_with("240.240."), "{vip}");
    assert_eq!(cache.resolution, Resolution::ClientSideLb);
}

#[test]
fn export_to_annotation_and_mesh_default() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata:
  name: private
  namespace: team-a
  annotations: {networking.istio.io/exportTo: "."}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata:
  name: hidden
  namespace: team-a
  annotations: {networking.istio.io/exportTo: "~"}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata:
  name: some
  namespace: team-a
  annotations: {networking.istio.io/exportTo: "team-c, ., team-b"}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: team-a}
spec: {ports: [{name: http, port: 80}]}
"#;
    let reg = build(yaml);
    let export = |name: &str| {
        reg.service(&format!("{name}.team-a.svc.cluster.local"))
            .unwrap()
            .export_to
            .clone()
    };
    assert_eq!(export("private"), vec!["team-a"]);
    assert!(export("hidden").is_empty());
    assert_eq!(export("some"), vec!["team-a", "team-b", "team-c"]);
    assert_eq!(export("plain"), vec!["*"]);
    let private = reg.service("private.team-a.svc.cluster.local").unwrap();
    assert!(private.visible_from("team-a") && !private.visible_from("team-b"));

    let mesh = MeshConfig {
        default_service_export_to: vec![".".into()],
        ..Default::default()
    };
    let reg = build_services(&objects(yaml), &mesh, "cluster.local");
    let plain = reg.service("plain.team-a.svc.cluster.local").unwrap();
    assert_eq!(plain.export_to, vec!["team-a"]);
}

#[test]
fn external_name_service_resolves_the_external_host() {
    let reg = build(
        r#"
apiVersion: v1
kind: Service
metadata: {name: search, namespace: default}
spec:
  type: ExternalName
  externalName: www.example.com
  ports: [{name: https, port: 443}, {name: http, port: 80}]
"#,
    );
    let host = "search.default.svc.cluster.local";
    let svc = reg.service(host).unwrap();
    assert_eq!(svc.resolution, Resolution::Dns);
    assert!(svc.mesh_external);
    assert_eq!(svc.vip, None);
    for port in [443, 80] {
        let eps = reg.endpoints(host, port);
        assert_eq!(addresses(eps), vec![("www.example.com", port)]);
        assert!(eps[0].healthy);
        assert_eq!(eps[0].tls_mode, TlsMode::Disabled);
    }
}

/// Service `web.shop` selecting `app: web`: port 80 to 8080, port 81 to the named
/// container port `http-app`.
const WEB_SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.1.1
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: http-named, port: 81, targetPort: http-app}
"#;

#[test]
fn selector_picks_ready_and_unready_pods_of_its_namespace() {
    let mut yaml = String::from(WEB_SERVICE);
    yaml += &pod("web-b", "shop", "10.1.0.12", &[("app", "web")], false);
    yaml += &pod(
        "web-a",
        "shop",
        "10.1.0.2",
        &[("app", "web"), ("version", "v1")],
        true,
    );
    yaml += &pod("other", "shop", "10.1.0.3", &[("app", "other")], true);
    yaml += &pod(
        "web-elsewhere",
        "other-ns",
        "10.1.0.4",
        &[("app", "web")],
        true,
    );
    yaml += r#"---
apiVersion: v1
kind: Pod
metadata: {name: web-pending, namespace: shop, labels: {app: web}}
spec: {containers: [{name: app, image: app}]}
status: {phase: Pending}
"#;
    let reg = build(&yaml);
    let host = "web.shop.svc.cluster.local";
    let eps = reg.endpoints(host, 80);
    // Numeric IP order: .2 before .12.
    assert_eq!(
        addresses(eps),
        vec![("10.1.0.2", 8080), ("10.1.0.12", 8080)]
    );
    assert!(eps[0].healthy);
    assert!(!eps[1].healthy);
    assert_eq!(eps[0].workload_name, "web-a");
    assert_eq!(eps[0].namespace, "shop");
    assert_eq!(eps[0].service_port, 80);
    assert_eq!(eps[0].service_account, "default");
    assert_eq!(eps[0].weight, 1);
    assert_eq!(eps[0].labels.get("version").map(String::as_str), Some("v1"));
    // The named target port resolves through the pod's container ports.
    assert_eq!(
        addresses(reg.endpoints(host, 81)),
        vec![("10.1.0.2", 8080), ("10.1.0.12", 8080)]
    );
}

#[test]
fn pod_readiness_identity_locality_and_sidecar() {
    let reg = build(
        r#"
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  clusterIP: 10.96.2.2
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: web}]
---
apiVersion: v1
kind: Pod
metadata:
  name: api-running
  labels:
    app: api
    topology.kubernetes.io/region: eu-west1
    topology.kubernetes.io/zone: eu-west1-b
    topology.istio.io/subzone: rack7
  annotations: {sidecar.istio.io/status: '{"containers":["istio-proxy"]}'}
spec:
  serviceAccountName: api-sa
  containers: [{name: app, image: app, ports: [{name: web, containerPort: 8000}]}]
status: {phase: Running, podIP: 10.1.1.1}
---
apiVersion: v1
kind: Pod
metadata:
  name: api-labelled
  labels: {app: api, security.istio.io/tlsMode: istio}
spec:
  containers: [{name: app, image: app, ports: [{name: web, containerPort: 8001}]}]
status: {phase: Pending, podIP: 10.1.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: api-noport, labels: {app: api}}
spec:
  containers: [{name: app, image: app}]
status: {phase: Running, podIP: 10.1.1.3}
---
apiVersion: v1
kind: Pod
metadata: {name: api-done, labels: {app: api}}
spec:
  containers: [{name: app, image: app, ports: [{name: web, containerPort: 8000}]}]
status: {phase: Succeeded, podIP: 10.1.1.4}
"#,
    );
    let eps = reg.endpoints("api.default.svc.cluster.local", 80);
    // The pod without the named port is no endpoint of it; a finished pod is none at all.
    assert_eq!(addresses(eps), vec![("10.1.1.1", 8000), ("10.1.1.2", 8001)]);
    let running = &eps[0];
    assert!(
        running.healthy,
        "running without conditions counts as ready"
    );
    assert_eq!(running.service_account, "api-sa");
    assert_eq!(running.tls_mode, TlsMode::Istio);
    assert_eq!(
        running.locality,
        Locality {
            region: "eu-west1".into(),
            zone: "eu-west1-b".into(),
            subzone: "rack7".into()
        }
    );
    assert_eq!(running.locality.to_string(), "eu-west1/eu-west1-b/rack7");
    let labelled = &eps[1];
    assert!(!labelled.healthy, "pending without conditions is not ready");
    assert_eq!(labelled.tls_mode, TlsMode::Istio);
    assert_eq!(labelled.service_account, "default");

    let names: Vec<_> = reg.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, vec!["api-labelled", "api-noport", "api-running"]);
    let w = reg.workload("default", "api-running").unwrap();
    assert_eq!(w.ports.get("web"), Some(&8000));
    assert_eq!(w.service_account, "api-sa");
    assert!(w.ready);
    assert_eq!(
        reg.workload_by_ip("10.1.1.3".parse().unwrap())
            .unwrap()
            .name,
        "api-noport"
    );
}

#[test]
fn pod_without_sidecar_is_plaintext() {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\nspec: {clusterIP: 10.96.0.9, selector: {app: s}, ports: [{name: http, port: 80}]}\n",
    );
    yaml += &pod("s-1", "n", "10.1.9.1", &[("app", "s")], true);
    let reg = build(&yaml);
    let ep = &reg.endpoints("s.n.svc.cluster.local", 80)[0];
    assert_eq!(ep.tls_mode, TlsMode::Disabled);
    assert_eq!(ep.port, 80, "no targetPort: the service port");
}

#[test]
fn workload_entries_join_kubernetes_services() {
    let reg = build(
        r#"
apiVersion: v1
kind: Service
metadata: {name: details, namespace: vm}
spec:
  clusterIP: 10.96.3.3
  selector: {app: details}
  ports:
  - {name: http, port: 9080, targetPort: 9090}
  - {name: metrics, port: 15014}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: details-vm-1, namespace: vm}
spec:
  address: 192.168.10.5
  ports: {http: 7070}
  labels: {app: details, version: v2}
  weight: 3
  locality: us-east1/us-east1-c
  serviceAccount: details-legacy
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: details-vm-2, namespace: vm}
spec:
  address: 192.168.10.6
  labels: {app: details}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: other-ns, namespace: elsewhere}
spec:
  address: 192.168.10.7
  labels: {app: details}
"#,
    );
    let host = "details.vm.svc.cluster.local";
    let http = reg.endpoints(host, 9080);
    assert_eq!(
        addresses(http),
        vec![("192.168.10.5", 7070), ("192.168.10.6", 9090)]
    );
    let vm1 = &http[0];
    assert_eq!(vm1.weight, 3);
    assert_eq!(vm1.workload_name, "details-vm-1");
    assert_eq!(vm1.service_account, "details-legacy");
    assert_eq!(
        vm1.tls_mode,
        TlsMode::Istio,
        "a service account implies a proxy"
    );
    assert_eq!(vm1.locality.to_string(), "us-east1/us-east1-c");
    assert!(vm1.healthy);
    assert_eq!(http[1].tls_mode, TlsMode::Disabled);
    assert_eq!(http[1].weight, 1);
    assert_eq!(
        addresses(reg.endpoints(host, 15014)),
        vec![("192.168.10.5", 15014), ("192.168.10.6", 15014)]
    );
    let w = reg.workload("vm", "details-vm-1").unwrap();
    assert_eq!(w.ip, Some("192.168.10.5".parse().unwrap()));
    assert_eq!(w.ports.get("http"), Some(&7070));
    assert_eq!(reg.workloads.len(), 3);
}

#[test]
fn services_without_selector_use_endpoints_and_slices() {
    let mut yaml = String::from(
        r#"
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: ops}
spec:
  clusterIP: 10.96.4.4
  ports:
  - {name: http, port: 80}
  - {name: admin, port: 9000}
---
apiVersion: v1
kind: Endpoints
metadata: {name: legacy, namespace: ops}
subsets:
- addresses:
  - ip: 10.2.0.1
    targetRef: {kind: Pod, name: legacy-pod, namespace: ops}
  notReadyAddresses:
  - ip: 10.2.0.2
  ports:
  - {name: http, port: 8080}
  - {name: admin, port: 9001}
  - {name: unknown, port: 1234}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: legacy-abc
  namespace: ops
  labels: {kubernetes.io/service-name: legacy}
addressType: IPv4
endpoints:
- addresses: [10.2.0.3]
  conditions: {ready: true}
- addresses: [10.2.0.4]
  conditions: {ready: false}
- addresses: [10.2.0.5]
ports:
- {name: http, port: 8081}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: unrelated
  namespace: ops
  labels: {kubernetes.io/service-name: other}
addressType: IPv4
endpoints:
- addresses: [10.2.0.9]
ports:
- {name: http, port: 8081}
"#,
    );
    yaml += &pod("legacy-pod", "ops", "10.2.0.1", &[("app", "legacy")], true);
    let reg = build(&yaml);
    let host = "legacy.ops.svc.cluster.local";
    let http = reg.endpoints(host, 80);
    let got: Vec<_> = http
        .iter()
        .map(|e| (e.address.as_str(), e.port, e.healthy))
        .collect();
    assert_eq!(
        got,
        vec![
            ("10.2.0.1", 8080, true),
            ("10.2.0.2", 8080, false),
            ("10.2.0.3", 8081, true),
            ("10.2.0.4", 8081, false),
            ("10.2.0.5", 8081, true),
        ]
    );
    // An address that points at a known pod carries the pod's metadata.
    assert_eq!(http[0].workload_name, "legacy-pod");
    assert_eq!(
        http[0].labels.get("app").map(String::as_str),
        Some("legacy")
    );
    assert!(http[1].labels.is_empty());
    assert_eq!(
        addresses(reg.endpoints(host, 9000)),
        vec![("10.2.0.1", 9001), ("10.2.0.2", 9001)]
    );
}

/// A running pod of `web.shop` owned by `owner` (`kind/name`, the controller), with
/// a `pod-template-hash` label when `hash` is given.
fn owned_pod(name: &str, ip: &str, owner: &str, hash: Option<&str>) -> String {
    let (kind, owner_name) = owner.split_once('/').unwrap();
    let mut labels = vec![("app", "web")];
    labels.extend(hash.map(|h| ("pod-template-hash", h)));
    pod(name, "shop", ip, &labels, true).replacen(
        "  namespace: shop\n",
        &format!(
            "  namespace: shop\n  ownerReferences:\n  - {{apiVersion: apps/v1, kind: {kind}, \
             name: {owner_name}, uid: u-{owner_name}, controller: true}}\n"
        ),
        1,
    )
}

#[test]
fn endpoints_name_the_pods_workload_as_istio_does() {
    let mut yaml = String::from(WEB_SERVICE);
    // A Deployment's pod: ReplicaSet `<deployment>-<pod-template-hash>`.
    yaml += &owned_pod(
        "reviews-v1-7f9c4b-x2k9p",
        "10.1.0.1",
        "ReplicaSet/reviews-v1-7f9c4b",
        Some("7f9c4b"),
    );
    // A bare ReplicaSet (no hash label, or one its name does not end with) keeps its name.
    yaml += &owned_pod("rs-only-abcde", "10.1.0.2", "ReplicaSet/rs-only", None);
    yaml += &owned_pod(
        "odd-rs-abcde",
        "10.1.0.3",
        "ReplicaSet/odd-rs",
        Some("ffff"),
    );
    // A CronJob's Job is `<cronjob>-<scheduled time>`; another Job keeps its name.
    yaml += &owned_pod(
        "backup-28930560-q7z",
        "10.1.0.4",
        "Job/backup-28930560",
        None,
    );
    yaml += &owned_pod("migrate-v2-q7z", "10.1.0.5", "Job/migrate-v2", None);
    yaml += &owned_pod("db-0", "10.1.0.6", "StatefulSet/db", None);
    // No owner: the pod is its own workload.
    yaml += &pod("lonely", "shop", "10.1.0.7", &[("app", "web")], true);
    let reg = build(&yaml);
    let names: Vec<(&str, &str)> = reg
        .endpoints("web.shop.svc.cluster.local", 80)
        .iter()
        .map(|e| (e.address.as_str(), e.workload_name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("10.1.0.1", "reviews-v1"),
            ("10.1.0.2", "rs-only"),
            ("10.1.0.3", "odd-rs"),
            ("10.1.0.4", "backup"),
            ("10.1.0.5", "migrate-v2"),
            ("10.1.0.6", "db"),
            ("10.1.0.7", "lonely"),
        ]
    );
}
