use std::collections::BTreeSet;

use ironmesh_config::mesh::MeshConfig;
use ironmesh_config::Severity;

use super::{FileChange, FileOutcome, Store};
use crate::snapshot::Change;

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#;

const VIRTUAL_SERVICE: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - route:
    - destination: {host: web}
      weight: 100
"#;

/// The same VirtualService with an error: a timeout that is no duration.
const VIRTUAL_SERVICE_BAD: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - timeout: not-a-duration
    route:
    - destination: {host: web}
"#;

fn pod(name: &str, ip: &str, version: &str, ready: bool) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: shop
  labels: {{app: web, version: {version}}}
spec:
  containers: [{{name: app, image: app}}]
status:
  phase: Running
  podIP: {ip}
  conditions: [{{type: Ready, status: "{}"}}]
"#,
        if ready { "True" } else { "False" }
    )
}

fn store() -> Store {
    Store::new("cluster.local", None)
}

fn assert_applied(o: &FileOutcome) {
    assert!(matches!(o, FileOutcome::Applied { .. }), "{o:#?}");
}

fn hosts(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn applying_files_publishes_versioned_snapshots() {
    let mut s = store();
    let rx = s.subscribe();
    assert_eq!(rx.borrow().version, 0);
    assert_applied(&s.apply_file("svc.yaml", SERVICE));
    let snap = s.snapshot();
    assert_eq!(snap.version, 1);
    assert_eq!(snap.change, Change::Full);
    assert_eq!(snap.objects.len(), 1);
    assert!(snap
        .services
        .service("web.shop.svc.cluster.local")
        .is_some());
    assert!(rx.has_changed().unwrap());

    assert_applied(&s.apply_file("vs.yaml", VIRTUAL_SERVICE));
    let snap = s.snapshot();
    assert_eq!(snap.version, 2);
    assert_eq!(snap.change, Change::Full);
    let kinds: Vec<_> = snap.objects.iter().map(|o| o.kind()).collect();
    assert_eq!(kinds, vec!["Service", "VirtualService"]);

    // The same text again changes nothing and publishes nothing.
    assert_eq!(
        s.apply_file("vs.yaml", VIRTUAL_SERVICE),
        FileOutcome::Unchanged
    );
    assert_eq!(s.snapshot().version, 2);

    assert_eq!(
        s.remove_file("vs.yaml"),
        FileOutcome::Removed { objects: 1 }
    );
    assert_eq!(s.snapshot().version, 3);
    assert_eq!(s.snapshot().of_kind("VirtualService").count(), 0);
    assert_eq!(s.remove_file("vs.yaml"), FileOutcome::Unchanged);
    assert_eq!(s.snapshot().version, 3);
}

#[test]
fn a_bad_edit_keeps_the_last_good_objects_until_fixed() {
    let mut s = store();
    assert_applied(&s.apply_file("vs.yaml", VIRTUAL_SERVICE));
    let good = s.snapshot();

    // A second document that is fine does not get in either: nothing half-applied.
    let bad = format!("{VIRTUAL_SERVICE_BAD}---\n{SERVICE}");
    let outcome = s.apply_file("vs.yaml", &bad);
    let FileOutcome::Rejected { diagnostics, kept } = &outcome else {
        panic!("expected a rejection: {outcome:#?}");
    };
    assert_eq!(*kept, 1);
    assert!(
        diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error && d.message.contains("not-a-duration")),
        "{diagnostics:#?}"
    );

    let snap = s.snapshot();
    assert_eq!(snap.version, good.version + 1, "the rejection is published");
    assert_eq!(snap.change, Change::Endpoints(BTreeSet::new()));
    assert_eq!(snap.objects.len(), 1);
    assert!(std::sync::Arc::ptr_eq(&snap.objects[0], &good.objects[0]));
    assert!(
        snap.services.services.is_empty(),
        "the Service did not get in"
    );
    assert_eq!(snap.rejected.len(), 1);
    assert_eq!(snap.rejected[0].file, "vs.yaml");

    // Saving the same broken text again publishes nothing new.
    assert!(matches!(
        s.apply_file("vs.yaml", &bad),
        FileOutcome::Unchanged
    ));
    assert_eq!(s.snapshot().version, snap.version);

    let fixed = format!("{VIRTUAL_SERVICE}---\n{SERVICE}");
    assert_applied(&s.apply_file("vs.yaml", &fixed));
    let snap = s.snapshot();
    assert!(snap.rejected.is_empty());
    assert_eq!(snap.objects.len(), 2);
    assert_eq!(snap.change, Change::Full);
}

#[test]
fn unreadable_file_is_rejected_and_keeps_its_objects() {
    let mut s = store();
    assert_applied(&s.apply_file("svc.yaml", SERVICE));
    let out = s.apply(vec![FileChange::Unreadable {
        path: "svc.yaml".into(),
        error: "permission denied".into(),
    }]);
    let FileOutcome::Rejected {
        diagnostics,
        kept: 1,
    } = &out[0].1
    else {
        panic!("{out:#?}");
    };
    assert!(diagnostics[0].message.contains("permission denied"));
    let snap = s.snapshot();
    assert_eq!(snap.objects.len(), 1);
    assert_eq!(snap.rejected.len(), 1);
    // Readable again with the same text: applied (and the rejection cleared).
    assert_applied(&s.apply_file("svc.yaml", SERVICE));
    assert!(s.snapshot().rejected.is_empty());
}

#[test]
fn the_same_object_in_two_files_rejects_the_second() {
    let mut s = store();
    assert_applied(&s.apply_file("a.yaml", SERVICE));
    let outcome = s.apply_file("b.yaml", &format!("{VIRTUAL_SERVICE}---{SERVICE}"));
    let FileOutcome::Rejected {
        diagnostics,
        kept: 0,
    } = &outcome
    else {
        panic!("{outcome:#?}");
    };
    let msg = diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)
        .map(ToString::to_string)
        .unwrap();
    assert!(
        msg.contains("Service shop/web is already defined in a.yaml:2"),
        "{msg}"
    );
    let snap = s.snapshot();
    assert_eq!(snap.of_kind("VirtualService").count(), 0);
    assert_eq!(snap.rejected[0].file, "b.yaml");

    // Removing the first copy lets the second file in.
    let outcomes = s.apply(vec![FileChange::Removed {
        path: "a.yaml".into(),
    }]);
    assert!(outcomes
        .iter()
        .any(|(p, o)| p == "b.yaml" && matches!(o, FileOutcome::Applied { objects: 2, .. })));
    let snap = s.snapshot();
    assert!(snap.rejected.is_empty());
    assert_eq!(snap.objects.len(), 2);
    assert!(snap.objects.iter().all(|o| &*o.source.file == "b.yaml"));
}

#[test]
fn an_object_twice_in_one_file_is_rejected() {
    let mut s = store();
    let outcome = s.apply_file("dup.yaml", &format!("{SERVICE}---{SERVICE}"));
    let FileOutcome::Rejected { diagnostics, .. } = &outcome else {
        panic!("{outcome:#?}");
    };
    assert!(diagnostics[0]
        .message
        .contains("defined twice in this file"));
}

#[test]
fn endpoint_only_changes_name_their_hosts() {
    let mut s = store();
    assert_applied(&s.apply_file("svc.yaml", SERVICE));
    assert_applied(&s.apply_file("vs.yaml", VIRTUAL_SERVICE));
    assert_applied(&s.apply_file("pod-a.yaml", &pod("web-a", "10.1.0.1", "v1", true)));
    assert_eq!(
        s.snapshot().change,
        Change::Endpoints(hosts(&["web.shop.svc.cluster.local"]))
    );
    let eps = s
        .snapshot()
        .services
        .endpoints("web.shop.svc.cluster.local", 80)
        .to_vec();
    assert_eq!(eps.len(), 1);
    assert!(eps[0].healthy);

    // Readiness flips: endpoints only.
    assert_applied(&s.apply_file("pod-a.yaml", &pod("web-a", "10.1.0.1", "v1", false)));
    let snap = s.snapshot();
    assert_eq!(
        snap.change,
        Change::Endpoints(hosts(&["web.shop.svc.cluster.local"]))
    );
    assert!(!snap.services.endpoints("web.shop.svc.cluster.local", 80)[0].healthy);

    // A second pod (scale up) and its removal: endpoints only.
    assert_applied(&s.apply_file("pod-b.yaml", &pod("web-b", "10.1.0.2", "v2", true)));
    assert!(matches!(s.snapshot().change, Change::Endpoints(_)));
    assert_eq!(
        s.remove_file("pod-b.yaml"),
        FileOutcome::Removed { objects: 1 }
    );
    assert!(matches!(s.snapshot().change, Change::Endpoints(_)));

    // A pod's labels change: its proxy's policies may change, so everything is pushed.
    assert_applied(&s.apply_file("pod-a.yaml", &pod("web-a", "10.1.0.1", "v9", false)));
    assert_eq!(s.snapshot().change, Change::Full);

    // Config other than endpoints: a full push even though services are the same.
    let edited = VIRTUAL_SERVICE.replace("weight: 100", "weight: 100\n    timeout: 5s");
    assert_applied(&s.apply_file("vs.yaml", &edited));
    assert_eq!(s.snapshot().change, Change::Full);

    // A comment moves every line: a new snapshot (lines are current) but nothing to push.
    let before = s.snapshot().version;
    assert_applied(&s.apply_file("vs.yaml", &format!("# moved\n{edited}")));
    let snap = s.snapshot();
    assert_eq!(snap.version, before + 1);
    assert_eq!(snap.change, Change::Endpoints(BTreeSet::new()));
}

#[test]
fn service_change_is_a_full_push() {
    let mut s = store();
    assert_applied(&s.apply_file("svc.yaml", SERVICE));
    assert_applied(&s.apply_file("pod-a.yaml", &pod("web-a", "10.1.0.1", "v1", true)));
    assert_applied(&s.apply_file("svc.yaml", &SERVICE.replace("port: 80", "port: 81")));
    assert_eq!(s.snapshot().change, Change::Full);
}

const MESH_CONFIGMAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |-
    accessLogFile: /dev/stdout
    accessLogEncoding: JSON
"#;

#[test]
fn mesh_config_map_overrides_the_base() {
    let base = MeshConfig {
        access_log_file: Some("/var/log/base".into()),
        trust_domain: Some("example.org".into()),
        ..Default::default()
    };
    let mut s = Store::new("cluster.local", Some(base));
    assert_eq!(s.snapshot().mesh.access_log_file(), "/var/log/base");
    assert_eq!(s.snapshot().mesh.trust_domain(), "example.org");

    assert_applied(&s.apply_file("mesh.yaml", MESH_CONFIGMAP));
    let snap = s.snapshot();
    assert_eq!(snap.change, Change::Full);
    assert_eq!(snap.mesh.access_log_file(), "/dev/stdout");
    assert_eq!(
        snap.mesh.access_log_encoding(),
        ironmesh_config::mesh::mesh_config::AccessLogEncoding::Json
    );
    assert_eq!(
        snap.mesh.trust_domain(),
        "example.org",
        "the base stays under it"
    );
    assert_eq!(
        snap.mesh.connect_timeout().as_secs(),
        10,
        "Istio defaults fill the rest"
    );

    // A ConfigMap of the same name elsewhere is just a ConfigMap.
    let other = MESH_CONFIGMAP
        .replace("istio-system", "default")
        .replace("/dev/stdout", "/dev/other");
    assert_applied(&s.apply_file("other.yaml", &other));
    assert_eq!(s.snapshot().mesh.access_log_file(), "/dev/stdout");

    assert!(matches!(
        s.remove_file("mesh.yaml"),
        FileOutcome::Removed { .. }
    ));
    let snap = s.snapshot();
    assert_eq!(snap.change, Change::Full);
    assert_eq!(snap.mesh.access_log_file(), "/var/log/base");
}

#[test]
fn seed_mesh_config_and_bookinfo_load_whole() {
    let mut s = store();
    let dir = format!("{}/../../examples/seeds", env!("CARGO_MANIFEST_DIR"));
    let mut changes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        changes.push(FileChange::Write {
            path: path.file_name().unwrap().to_string_lossy().into_owned(),
            text,
        });
    }
    changes.sort_by(|a, b| a.path().cmp(b.path()));
    let outcomes = s.apply(changes);
    // 004 repeats the Bookinfo gateway objects of 001: the later file is refused for it.
    let rejected: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, FileOutcome::Rejected { .. }))
        .map(|(p, _)| p.as_str())
        .collect();
    for (p, o) in &outcomes {
        if let FileOutcome::Rejected { diagnostics, .. } = o {
            assert!(
                diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .all(|d| d.message.contains("already defined in")),
                "{p}: {diagnostics:#?}"
            );
        }
    }
    let snap = s.snapshot();
    assert_eq!(snap.version, 1, "one batch, one snapshot");
    assert_eq!(snap.rejected.len(), rejected.len());
    assert_eq!(snap.mesh.access_log_file(), "/dev/stdout");
    assert!(snap
        .services
        .service("reviews.default.svc.cluster.local")
        .is_some());
    assert!(snap
        .services
        .service("httpbin.istio-demo.svc.cluster.local")
        .is_some());
}
