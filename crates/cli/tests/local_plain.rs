//! End to end through `ironmesh up` without sidecars (a namespace without the injection
//! label): pods get namespaces and IPs, reach each other, log, restart after a crash,
//! follow `apply`/`delete`, and `down` leaves nothing behind — also after the
//! supervisor was SIGKILLed.

mod local_support;

use std::time::Duration;

use local_support::*;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: plain
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: plain
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 8000, targetPort: 80}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: plain
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: kennethreitz/httpbin
        ports:
        - containerPort: 80
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: client
  namespace: plain
spec:
  replicas: 1
  selector:
    matchLabels: {app: client}
  template:
    metadata:
      labels: {app: client}
    spec:
      containers:
      - name: client
        image: curlimages/curl
        command: ["/bin/sleep", "infinity"]
"#;

const EXTRA: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: extra
  namespace: plain
spec:
  replicas: 2
  selector:
    matchLabels: {app: extra}
  template:
    metadata:
      labels: {app: extra}
    spec:
      containers:
      - name: extra
        image: nginx:1.25.3
        ports:
        - containerPort: 80
"#;

fn manifests_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ironmesh-local-{tag}-{}", std::process::id()));
    write_manifests(&dir, "plain.yaml", MANIFESTS);
    dir
}

#[test]
fn pods_without_sidecars_run_talk_restart_and_go_away() {
    if require_root("pods_without_sidecars_run_talk_restart_and_go_away").is_none() {
        return;
    }
    let dir = manifests_dir("plain");
    let (mesh, out) = Mesh::up(&["--profile", "minimal", "-f", dir.to_str().unwrap()]);
    assert!(out.contains("✔ ready in"), "{out}");

    let web = pod_row("web-");
    let client = pod_row("client-");
    assert_eq!(web[0], "plain");
    assert_eq!(&web[2..5], ["1/1", "Running", "0"], "{web:?}");
    assert!(web[5].starts_with("10.213."), "{web:?}");
    assert_eq!(
        web[6], "-",
        "no sidecar without the injection label: {web:?}"
    );
    assert_eq!(&client[2..4], ["1/1", "Running"], "{client:?}");

    // Pod to pod over the bridge, as the app user, with the service name in /etc/hosts.
    let url = format!("http://{}:80/headers", web[5]);
    let body = ok(&[
        "exec", "client", "-n", "plain", "--", "curl", "-sS", "-m", "5", &url,
    ]);
    assert!(body.contains("\"Host\""), "{body}");
    assert_eq!(ok(&["exec", "client", "--", "id", "-u"]).trim(), "1000");
    let hosts = ok(&["exec", "client", "--", "cat", "/etc/hosts"]);
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with("240.240.") && l.ends_with(" web")),
        "{hosts}"
    );
    // By Service name and port, as kube-proxy would: VIP:8000 → pod:80.
    let by_name = eventually(Duration::from_secs(10), || {
        let out = run(&[
            "exec",
            "client",
            "--",
            "curl",
            "-sS",
            "-m",
            "3",
            "http://web:8000/get",
        ]);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && body.contains("\"url\"")).then_some(body)
    });
    assert!(
        by_name.is_some(),
        "http://web:8000 did not answer from the client pod"
    );
    let logs = ok(&["logs", "web", "-n", "plain"]);
    assert!(
        logs.contains("/headers"),
        "the app's log shows the request: {logs}"
    );

    // A crash is restarted and counted.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("/run/ironmesh/state.json").unwrap())
            .unwrap();
    let pid = state["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str().unwrap().starts_with("web-"))
        .unwrap()["containers"][0]["pid"]
        .as_u64()
        .unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let restarted = eventually(Duration::from_secs(20), || {
        let row = pod_row("web-");
        (row[4] == "1" && row[3] == "Running" && row[2] == "1/1").then_some(row)
    });
    assert!(
        restarted.is_some(),
        "web not restarted: {:?}",
        pod_row("web-")
    );

    // apply starts new pods, delete removes them.
    let extra = dir.join("extra");
    write_manifests(&extra, "extra.yaml", EXTRA);
    let applied = ok(&["apply", "-f", extra.to_str().unwrap()]);
    assert!(
        applied.contains("Deployment plain/extra configured"),
        "{applied}"
    );
    let two = eventually(Duration::from_secs(30), || {
        let rows: Vec<_> = pods()
            .into_iter()
            .filter(|r| r[1].starts_with("extra-"))
            .collect();
        (rows.len() == 2 && rows.iter().all(|r| r[2] == "1/1")).then_some(rows)
    });
    assert!(two.is_some(), "extra pods not running: {:?}", pods());
    ok(&["delete", "-f", extra.to_str().unwrap()]);
    let gone = eventually(Duration::from_secs(30), || {
        (!pods().iter().any(|r| r[1].starts_with("extra-"))).then_some(())
    });
    assert!(gone.is_some(), "extra pods still there: {:?}", pods());

    let pids: Vec<u32> = std::fs::read_to_string("/run/ironmesh/state.json")
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|s| {
            s["pods"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|p| p["containers"].as_array().cloned().unwrap_or_default())
                .filter_map(|c| c["pid"].as_u64().map(|p| p as u32))
                .collect()
        })
        .unwrap_or_default();
    assert!(!pids.is_empty());
    drop(mesh);
    assert_eq!(
        leftovers_in(&["plain", "istio-system"]),
        Vec::<String>::new(),
        "down left things behind"
    );
    let alive: Vec<_> = pids.into_iter().filter(|p| pid_alive(*p)).collect();
    assert!(alive.is_empty(), "processes survived down: {alive:?}");
    // Twice is fine.
    ok(&["down"]);
}

#[test]
fn down_cleans_up_after_the_supervisor_was_killed() {
    if require_root("down_cleans_up_after_the_supervisor_was_killed").is_none() {
        return;
    }
    let dir = manifests_dir("kill");
    let (mesh, _) = Mesh::up(&["--profile", "minimal", "-f", dir.to_str().unwrap()]);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("/run/ironmesh/state.json").unwrap())
            .unwrap();
    let sup = state["supervisor_pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let status = run(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("NOT RUNNING"),
        "status should say the supervisor is gone"
    );
    assert!(
        !leftovers_in(&["plain", "istio-system"]).is_empty(),
        "the pods outlive the supervisor until down"
    );
    let out = ok(&["down"]);
    assert!(out.contains("✔ down"), "{out}");
    assert_eq!(
        leftovers_in(&["plain", "istio-system"]),
        Vec::<String>::new(),
        "down left things behind"
    );
    drop(mesh);
}

#[test]
fn up_refuses_invalid_manifests_and_makes_nothing() {
    if require_root("up_refuses_invalid_manifests_and_makes_nothing").is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ironmesh-local-bad-{}", std::process::id()));
    write_manifests(
        &dir,
        "bad.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: []\n",
    );
    let _guard = Mesh::up_lock_only();
    let out = run(&["up", "-d", "-f", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid"), "{err}");
    assert_eq!(
        leftovers_in(&["plain", "istio-system"]),
        Vec::<String>::new()
    );
}
