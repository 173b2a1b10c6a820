use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::DirSource;
use crate::snapshot::Snapshot;
use crate::store::Store;

/// The promise: a change on disk reaches a snapshot within one second.
const DEADLINE: Duration = Duration::from_secs(1);

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80}]
"#;

fn virtual_service(timeout: &str) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: web, namespace: shop}}
spec:
  hosts: [web]
  http:
  - timeout: {timeout}
    route:
    - destination: {{host: web}}
"#
    )
}

fn pod(name: &str, ip: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: shop, labels: {{app: web}}}}
spec: {{containers: [{{name: app, image: app}}]}}
status: {{phase: Running, podIP: {ip}, conditions: [{{type: Ready, status: "True"}}]}}
"#
    )
}

/// Waits (at most [`DEADLINE`] from now) for a snapshot that satisfies `want`.
async fn wait_for(
    rx: &mut watch::Receiver<Arc<Snapshot>>,
    what: &str,
    want: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let current = rx.borrow_and_update().clone();
        if want(&current) {
            return current;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => panic!("store dropped while waiting for {what}"),
            Err(_) => panic!(
                "no snapshot with {what} within {DEADLINE:?}; last: version {} objects {:?} rejected {:?}",
                current.version,
                current
                    .objects
                    .iter()
                    .map(|o| o.object_ref().to_string())
                    .collect::<Vec<_>>(),
                current.rejected
            ),
        }
    }
}

fn has(s: &Snapshot, kind: &str, name: &str) -> bool {
    s.of_kind(kind).any(|o| o.name() == name)
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_changes_reach_snapshots_within_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir_all(dir.join("routes")).unwrap();
    write(&dir.join("svc.yaml"), SERVICE);
    write(&dir.join("routes/vs.yaml"), &virtual_service("5s"));
    write(&dir.join(".hidden.yaml"), &pod("hidden", "10.1.0.99"));
    write(&dir.join("notes.txt"), "not a manifest");

    let store = Arc::new(Mutex::new(Store::new("cluster.local", None)));
    let mut rx = store.lock().unwrap().subscribe();
    let handle = DirSource::start(dir.clone(), store.clone()).unwrap();

    // The initial scan is done when start returns, in one snapshot.
    let snap = rx.borrow_and_update().clone();
    assert_eq!(snap.version, 1);
    let names: Vec<_> = snap
        .objects
        .iter()
        .map(|o| o.object_ref().to_string())
        .collect();
    assert_eq!(names, vec!["Service shop/web", "VirtualService shop/web"]);

    // A new file.
    write(&dir.join("pod-a.yaml"), &pod("web-a", "10.1.0.1"));
    let snap = wait_for(&mut rx, "pod web-a", |s| has(s, "Pod", "web-a")).await;
    assert_eq!(
        snap.services
            .endpoints("web.shop.svc.cluster.local", 80)
            .len(),
        1
    );

    // An edit in place.
    write(&dir.join("pod-a.yaml"), &pod("web-a", "10.1.0.2"));
    wait_for(&mut rx, "pod web-a at 10.1.0.2", |s| {
        s.services
            .endpoints("web.shop.svc.cluster.local", 80)
            .iter()
            .any(|e| e.address == "10.1.0.2")
    })
    .await;

    // A broken edit: rejected, the last good VirtualService stays.
    let vs_path = dir.join("routes/vs.yaml");
    write(&vs_path, &virtual_service("soon"));
    let snap = wait_for(&mut rx, "vs.yaml rejected", |s| !s.rejected.is_empty()).await;
    assert_eq!(snap.rejected[0].file, vs_path.display().to_string());
    assert!(has(&snap, "VirtualService", "web"));

    // An editor's atomic save: write a hidden temporary file, rename it over the file.
    let tmp_path = dir.join("routes/.vs.yaml.swp");
    write(&tmp_path, &virtual_service("7s"));
    std::fs::rename(&tmp_path, &vs_path).unwrap();
    let snap = wait_for(&mut rx, "the renamed-in vs.yaml", |s| s.rejected.is_empty()).await;
    let vs = snap.of_kind("VirtualService").next().unwrap();
    assert_eq!(vs.source.file.as_ref(), vs_path.display().to_string());
    assert_eq!(vs.line_of(&ironmesh_config::FieldPath::root()), 2);

    // vim's other way: move the file away to a backup, write a new one.
    std::fs::rename(&vs_path, dir.join("routes/vs.yaml~")).unwrap();
    write(
        &vs_path,
        &format!("# saved by vim\n{}", virtual_service("9s")),
    );
    let snap = wait_for(&mut rx, "vs.yaml rewritten", |s| {
        s.of_kind("VirtualService")
            .any(|o| o.line_of(&ironmesh_config::FieldPath::root()) == 3)
    })
    .await;
    assert!(snap.rejected.is_empty());

    // Not UTF-8: rejected, never a crash.
    let binary = dir.join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let snap = wait_for(&mut rx, "binary.yaml rejected", |s| {
        s.rejected.iter().any(|r| r.file.ends_with("binary.yaml"))
    })
    .await;
    assert!(snap.rejected[0].diagnostics[0].message.contains("UTF-8"));
    std::fs::remove_file(&binary).unwrap();
    wait_for(&mut rx, "binary.yaml forgotten", |s| s.rejected.is_empty()).await;

    // A directory moved in from outside, then removed whole.
    let outside = tmp.path().join("staging");
    std::fs::create_dir_all(&outside).unwrap();
    write(&outside.join("pod-b.yaml"), &pod("web-b", "10.1.0.3"));
    std::fs::rename(&outside, dir.join("more")).unwrap();
    wait_for(&mut rx, "pod web-b", |s| has(s, "Pod", "web-b")).await;
    std::fs::remove_dir_all(dir.join("more")).unwrap();
    wait_for(&mut rx, "pod web-b gone", |s| !has(s, "Pod", "web-b")).await;

    // A deleted file takes its objects along.
    std::fs::remove_file(dir.join("svc.yaml")).unwrap();
    let snap = wait_for(&mut rx, "service gone", |s| !has(s, "Service", "web")).await;
    assert!(snap.services.services.is_empty());
    assert!(!has(&snap, "Pod", "hidden"), "hidden files are never read");

    drop(handle);
    let version = store.lock().unwrap().snapshot().version;
    write(&dir.join("after.yaml"), &pod("late", "10.1.0.9"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.lock().unwrap().snapshot().version,
        version,
        "a dropped handle stops watching"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_writes_is_one_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(Store::new("cluster.local", None)));
    let mut rx = store.lock().unwrap().subscribe();
    let _handle = DirSource::start(tmp.path().to_path_buf(), store.clone()).unwrap();
    assert_eq!(
        rx.borrow_and_update().version,
        1,
        "an empty directory is a snapshot too"
    );

    for i in 0..20 {
        write(
            &tmp.path().join(format!("pod-{i:02}.yaml")),
            &pod(&format!("web-{i:02}"), &format!("10.1.1.{}", i + 1)),
        );
    }
    let snap = wait_for(&mut rx, "20 pods", |s| s.of_kind("Pod").count() == 20).await;
    // Twenty files written back to back land in a few snapshots, not twenty.
    assert!(snap.version <= 4, "version {}", snap.version);
}

#[test]
fn start_fails_clearly_for_a_missing_directory() {
    let store = Arc::new(Mutex::new(Store::new("cluster.local", None)));
    let err = DirSource::start("/nonexistent/ironmesh-config".into(), store).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/ironmesh-config"),
        "{err}"
    );
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let store = Arc::new(Mutex::new(Store::new("cluster.local", None)));
    let err = DirSource::start(tmp.path().to_path_buf(), store).unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

/// Kubernetes mounts a ConfigMap as symlinks into a hidden `..data` link that it swaps
/// on update; the visible files never change themselves.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_style_symlink_swap_is_seen() {
    use std::os::unix::fs::symlink;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("..v1")).unwrap();
    write(&dir.join("..v1/vs.yaml"), &virtual_service("1s"));
    symlink("..v1", dir.join("..data")).unwrap();
    symlink("..data/vs.yaml", dir.join("vs.yaml")).unwrap();

    let store = Arc::new(Mutex::new(Store::new("cluster.local", None)));
    let mut rx = store.lock().unwrap().subscribe();
    let _handle = DirSource::start(dir.to_path_buf(), store.clone()).unwrap();
    let snap = rx.borrow_and_update().clone();
    assert_eq!(snap.objects.len(), 1);
    let line = |s: &Snapshot| {
        s.objects
            .first()
            .map(|o| o.line_of(&ironmesh_config::FieldPath::root()))
    };
    assert_eq!(line(&snap), Some(2));

    std::fs::create_dir(dir.join("..v2")).unwrap();
    write(
        &dir.join("..v2/vs.yaml"),
        &format!("# v2\n# v2\n{}", virtual_service("2s")),
    );
    symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    wait_for(&mut rx, "the swapped-in version", |s| line(s) == Some(4)).await;
}
