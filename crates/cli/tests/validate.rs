//! `ironmesh validate` and `ironmesh version`, driven through the real binary.

use ironmesh_testkit::{run, workspace_root, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_ironmesh");

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const CANARY_BAD_WEIGHT: &str = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: canary
  namespace: istio-demo
spec:
  hosts:
  - httpbin
  http:
  - route:
    - destination:
        host: httpbin
        subset: v1
      weight: -10
    - destination:
        host: httpbin
        subset: v2
      weight: 110
";

const GOOD_SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  namespace: istio-demo
spec:
  selector:
    app: httpbin
  ports:
  - name: http
    port: 8000
    targetPort: 80
";

#[test]
fn valid_input_exits_zero_with_a_summary() {
    let dir = TempDir::new().unwrap();
    let f = write(&dir, "svc.yaml", GOOD_SERVICE);
    let r = run(BIN, &["validate", "-f", &f], None, None);
    r.expect_code(0);
    assert!(r.stdout.contains("✔ 1 object"), "{}", r.stdout);
}

#[test]
fn invalid_input_exits_one_and_points_at_file_line_object_and_field() {
    let dir = TempDir::new().unwrap();
    let f = write(&dir, "canary.yaml", CANARY_BAD_WEIGHT);
    let r = run(BIN, &["validate", "-f", &f], None, None);
    r.expect_code(1);
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("{f}:")), "{first}");
    assert!(
        first.contains("VirtualService istio-demo/canary"),
        "{first}"
    );
    assert!(first.contains("spec.http[0]"), "{first}");
    assert!(r.stdout.contains("✘ 1 error"), "{}", r.stdout);
}

#[test]
fn unknown_fields_are_errors_with_their_line() {
    let dir = TempDir::new().unwrap();
    let text = GOOD_SERVICE.replace(
        "    targetPort: 80\n",
        "    targetPort: 80\n    tagetPort: 81\n",
    );
    let f = write(&dir, "svc.yaml", &text);
    let r = run(BIN, &["validate", "-f", &f], None, None);
    r.expect_code(1);
    assert!(r.stdout.contains(&format!("{f}:13:")), "{}", r.stdout);
    assert!(r.stdout.contains("tagetPort"), "{}", r.stdout);
}

#[test]
fn unreadable_input_exits_two() {
    let r = run(
        BIN,
        &["validate", "-f", "/nonexistent/ironmesh.yaml"],
        None,
        None,
    );
    r.expect_code(2);
    assert!(
        r.stderr.contains("/nonexistent/ironmesh.yaml"),
        "{}",
        r.stderr
    );
}

#[test]
fn stdin_directories_and_json_output() {
    let dir = TempDir::new().unwrap();
    write(&dir, "b/svc.yaml", GOOD_SERVICE);
    write(&dir, "a/canary.yml", CANARY_BAD_WEIGHT);
    write(&dir, "a/notes.txt", "not a manifest");
    let d = dir.path().display().to_string();
    let r = run(BIN, &["validate", "-f", &d, "-o", "json"], None, None);
    r.expect_code(1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json output");
    assert_eq!(v["valid"], false);
    assert_eq!(v["files"], 2, "txt files are skipped: {v}");
    assert_eq!(v["objects"], 2);
    assert_eq!(v["errors"], 1);
    let diags = v["diagnostics"].as_array().unwrap();
    let diag = diags
        .iter()
        .find(|d| d["severity"] == "error")
        .expect("an error diagnostic");
    assert!(
        diag["file"].as_str().unwrap().ends_with("a/canary.yml"),
        "sorted walk: {diag}"
    );
    assert_eq!(diag["object"]["kind"], "VirtualService");
    assert!(diag["line"].as_u64().unwrap() > 1);

    let r = run(BIN, &["validate", "-f", "-"], None, Some(GOOD_SERVICE));
    r.expect_code(0);
}

#[test]
fn mesh_config_in_the_istio_configmap_is_validated() {
    let dir = TempDir::new().unwrap();
    let cm = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
data:
  mesh: |-
    accessLogEncoding: JSON
    accessLogFile: /dev/stdout
";
    let f = write(&dir, "cm.yaml", cm);
    run(BIN, &["validate", "-f", &f], None, None).expect_code(0);
    let bad = cm.replace("accessLogEncoding: JSON", "accessLogEncoding: XML");
    let f = write(&dir, "bad.yaml", &bad);
    let r = run(BIN, &["validate", "-f", &f], None, None);
    r.expect_code(1);
    assert!(r.stdout.contains(&format!("{f}:8:")), "{}", r.stdout);
    assert!(r.stdout.contains("XML"), "{}", r.stdout);
}

#[test]
fn examples_are_clean() {
    let r = run(
        BIN,
        &["validate", "-f", "examples/"],
        Some(&workspace_root()),
        None,
    );
    r.expect_code(0);
}

#[test]
fn version_lists_components() {
    let r = run(BIN, &["version"], None, None);
    r.expect_code(0);
    assert!(r.stdout.contains("ironmesh-config"), "{}", r.stdout);
    let r = run(BIN, &["version", "-o", "json"], None, None);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ironmesh"], env!("CARGO_PKG_VERSION"));
}
