//! The `ironmesh-discovery` process itself: flags, listening lines, readiness, the
//! debug API's view of accepted and rejected config, and istiod's metric names.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ironmesh_testkit::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ironmesh-discovery");

struct Discovery {
    child: Child,
    http: String,
    monitoring: String,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path) -> Discovery {
    let mut child = Command::new(BIN)
        .arg("--config-dir")
        .arg(dir)
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args([
            "--monitoring-addr",
            "127.0.0.1:0",
            "--debounce-after",
            "10ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ironmesh-discovery");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = |what: &str| -> String {
        let line = lines.next().expect("a listening line").expect("utf-8");
        line.strip_prefix(&format!("listening {what}="))
            .unwrap_or_else(|| panic!("expected `listening {what}=`, got {line:?}"))
            .to_string()
    };
    let _xds = addr("xds");
    let http = addr("http");
    let monitoring = addr("monitoring");
    Discovery {
        child,
        http,
        monitoring,
    }
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let mut resp = agent
        .get(format!("http://{addr}{path}"))
        .call()
        .expect("http");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap_or_default())
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

const SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: istio-demo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000, targetPort: 80}]
";

#[test]
fn serves_readiness_debug_config_and_istio_metric_names() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("svc.yaml"), SERVICE).unwrap();
    let d = start(dir.path());
    eventually("/ready", || get(&d.http, "/ready").0 == 200);

    let (_, registry) = get(&d.http, "/debug/registryz");
    let v: serde_json::Value = serde_json::from_str(&registry).unwrap();
    assert_eq!(
        v["services"][0]["hostname"],
        "httpbin.istio-demo.svc.cluster.local"
    );

    // A broken edit is refused, reported, and the last good objects stay.
    std::fs::write(
        dir.path().join("svc.yaml"),
        SERVICE.replace("port: 8000", "port: 80000"),
    )
    .unwrap();
    eventually("the rejection in /debug/configz", || {
        let (_, body) = get(&d.http, "/debug/configz");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["rejected"].as_array().is_some_and(|r| !r.is_empty())
            && v["objects"]
                .as_array()
                .is_some_and(|o| o.iter().any(|o| o["name"] == "httpbin"))
    });
    eventually("the rejected-files gauge", || {
        get(&d.monitoring, "/metrics")
            .1
            .contains("ironmesh_config_rejected_files 1")
    });
    let (_, metrics) = get(&d.monitoring, "/metrics");
    // pilot_xds_pushes / pilot_total_xds_rejects appear with their first sample; the
    // Envoy interop tests check them with a proxy connected.
    for name in [
        "pilot_xds 0",
        "pilot_services 1",
        "# TYPE pilot_proxy_convergence_time histogram",
    ] {
        assert!(metrics.contains(name), "missing {name:?} in\n{metrics}");
    }
    assert!(
        !metrics.contains("pilot_xds_pushes_total"),
        "istiod's name has no _total"
    );

    let (status, body) = get(&d.http, "/debug/config_dump?proxyID=nobody.nowhere");
    assert_eq!(status, 404);
    assert!(body.contains("not connected"), "{body}");
}

#[test]
fn bad_flags_and_bad_mesh_config_fail_clearly() {
    let out = Command::new(BIN)
        .args(["--config-dir", "/nonexistent/ironmesh"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--config-dir /nonexistent/ironmesh is not a directory"),
        "{err}"
    );

    let dir = TempDir::new().unwrap();
    let mesh = dir.path().join("mesh.yaml");
    std::fs::write(&mesh, "accessLogEncoding: XML\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config-dir")
        .arg(dir.path())
        .arg("--mesh-config")
        .arg(&mesh)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mesh.yaml:1:") && err.contains("XML"), "{err}");
}
