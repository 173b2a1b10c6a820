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
apiVersion: v1
kind: Service
metadata:
  name: extra
  namespace: plain
spec:
  selector: {app: extra}
  ports:
  - {name: http, port: 80}
---
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

    // logs -f follows new lines.
    let mut follow = std::process::Command::new(ironmesh())
        .args(["logs", "web", "-n", "plain", "-f"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let status_url = format!("http://{}:80/status/201", web[5]);
    ok(&[
        "exec",
        "client",
        "--",
        "curl",
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        &status_url,
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut followed = false;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("/status/201") => {
                followed = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(followed, "logs -f did not show the new request");

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
    // The new Service is in every pod's hosts file and routed to the new pods.
    let page = eventually(Duration::from_secs(10), || {
        let out = run(&[
            "exec",
            "client",
            "--",
            "curl",
            "-sS",
            "-m",
            "3",
            "http://extra/",
        ]);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        body.contains("Welcome to nginx!").then_some(body)
    });
    assert!(page.is_some(), "http://extra/ did not answer after apply");
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

#[test]
fn foreground_up_stops_on_ctrl_c_and_refuses_a_second_mesh() {
    if require_root("foreground_up_stops_on_ctrl_c_and_refuses_a_second_mesh").is_none() {
        return;
    }
    use std::io::{BufRead as _, BufReader};
    let dir = manifests_dir("fg");
    let _guard = Mesh::up_lock_only();
    let mut child = std::process::Command::new(ironmesh())
        .args(["up", "--profile", "minimal", "-f", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("Press Ctrl-C") {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.starts_with("✔ ready in")),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("web-") && l.contains("Running")),
        "{seen:#?}"
    );

    let second = run(&[
        "up",
        "-d",
        "--profile",
        "minimal",
        "-f",
        dir.to_str().unwrap(),
    ]);
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already running"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "up exited with {status}: {rest:#?}");
    assert_eq!(
        leftovers_in(&["plain", "istio-system"]),
        Vec::<String>::new()
    );
}

#[test]
fn a_failed_start_names_the_step_and_leaves_what_it_did_not_make() {
    if require_root("a_failed_start_names_the_step_and_leaves_what_it_did_not_make").is_none() {
        return;
    }
    let dir = manifests_dir("fail");
    let _guard = Mesh::up_lock_only();
    // Someone else's im-node: the run must stop at the node step and not delete it.
    let add = std::process::Command::new("ip")
        .args(["netns", "add", "im-node"])
        .status()
        .unwrap();
    assert!(add.success());
    let out = run(&[
        "up",
        "-d",
        "--profile",
        "minimal",
        "-f",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let still_there = std::path::Path::new("/run/netns/im-node").exists();
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", "im-node"])
        .status();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("✘ failed: step \"creating node namespace im-node"),
        "{text}"
    );
    assert!(text.contains("already exists"), "{text}");
    assert!(still_there, "up deleted a namespace it did not make");
    assert_eq!(leftovers_in(&["plain"]), Vec::<String>::new());
}

#[test]
fn up_without_root_says_what_it_needs() {
    if require_root("up_without_root_says_what_it_needs").is_none() {
        return;
    }
    // Drop to an unprivileged user for this one command.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", "1000", "--regid", "1000", "--clear-groups", "--"])
        .arg(ironmesh())
        .args(["up", "-f", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs root"), "{err}");
    assert!(
        err.contains("network namespaces") && err.contains("sudo"),
        "{err}"
    );
}
