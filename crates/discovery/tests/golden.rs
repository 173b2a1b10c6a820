//! Golden files: what discovery generates (LDS, RDS, CDS, EDS as proto3 JSON) for every
//! seed scenario of `examples/seeds/` and a full Bookinfo, for one sidecar and for the
//! ingress gateway. A change in generated config shows up as a diff to review.
//!
//! `IRONMESH_UPDATE_GOLDEN=1 cargo test -p ironmesh-discovery --test golden` rewrites
//! the files under `testdata/golden/<scenario>/` (`sidecar.json`, `router.json`).
//!
//! A scenario is the seed file plus `testdata/golden/<scenario>/`: `pods.yaml` (the
//! running pods, first one = the sidecar node), optionally `base.txt` (seed files it is
//! applied on top of, as the seed does with `kubectl apply`; their objects that the
//! scenario redefines are left out) and any other `*.yaml` (a scenario without a seed
//! file, such as `bookinfo`). `testdata/golden/ingressgateway.yaml` (the gateway's
//! namespace, Service and pod) is under every scenario.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ironmesh_config::{load_str, LoadOptions, Object, ObjectRef, Resource};
use ironmesh_discovery::{
    generate, Proxy, PushContext, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE,
};
use ironmesh_registry::{FileOutcome, Store};
use ironmesh_xds::pb::envoy::config::core::v3::Node;
use ironmesh_xds::pb::google::protobuf::{value::Kind, Struct, Value as PbValue};
use serde_json::{json, Value};

const DOMAIN: &str = "cluster.local";
const UPDATE_ENV: &str = "IRONMESH_UPDATE_GOLDEN";
/// The gateway pod of `ingressgateway.yaml`.
const GATEWAY_POD: (&str, &str) = ("istio-system", "istio-ingressgateway-8577c57fb6-fbkl8");

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn golden_dir() -> PathBuf {
    crate_dir().join("testdata/golden")
}

fn seeds_dir() -> PathBuf {
    crate_dir().join("../../examples/seeds")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A file as the store sees it: a label (its path, for messages) and its text.
struct File {
    label: String,
    text: String,
}

struct Scenario {
    name: String,
    /// In load order: gateway, bases, the scenario's own files, pods.
    files: Vec<File>,
    pods: Vec<Object>,
}

fn objects(label: &str, text: &str) -> Vec<Object> {
    let loaded = load_str(label, text, &LoadOptions::default());
    loaded.objects
}

/// `text` without the documents that define any of `redefined`.
fn without(label: &str, text: &str, redefined: &BTreeSet<ObjectRef>) -> String {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().expect("one document at least");
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.retain(|doc| {
        !objects(label, doc)
            .iter()
            .any(|o| redefined.contains(&o.object_ref()))
    });
    docs.join("---\n")
}

/// Every seed file, then every other scenario directory.
fn scenarios() -> Vec<Scenario> {
    let mut names: Vec<(String, Option<PathBuf>)> = Vec::new();
    let mut seeds: Vec<PathBuf> = fs::read_dir(seeds_dir())
        .expect("examples/seeds exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no examples/seeds/*.yaml");
    for seed in seeds {
        let name = seed.file_stem().unwrap().to_string_lossy().into_owned();
        names.push((name, Some(seed)));
    }
    let mut extra: Vec<String> = fs::read_dir(golden_dir())
        .expect("testdata/golden exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| !names.iter().any(|(s, _)| s == n))
        .collect();
    extra.sort();
    names.extend(extra.into_iter().map(|n| (n, None)));
    names
        .into_iter()
        .map(|(name, seed)| scenario(name, seed))
        .collect()
}

fn scenario(name: String, seed: Option<PathBuf>) -> Scenario {
    let dir = golden_dir().join(&name);
    let pods_path = dir.join("pods.yaml");
    assert!(
        pods_path.is_file(),
        "scenario {name} has no {}: write the pods its Deployments run (status.podIP, \
         Ready), the first one being the sidecar node",
        pods_path.display()
    );
    let label = |p: &Path| {
        p.strip_prefix(crate_dir())
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let mut own = Vec::new();
    if let Some(seed) = &seed {
        own.push(File {
            label: format!(
                "examples/seeds/{}",
                seed.file_name().unwrap().to_string_lossy()
            ),
            text: read(seed),
        });
    }
    let mut yamls: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("scenario dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && *p != pods_path)
        .collect();
    yamls.sort();
    for p in yamls {
        own.push(File {
            label: label(&p),
            text: read(&p),
        });
    }
    let pods_text = read(&pods_path);
    own.push(File {
        label: label(&pods_path),
        text: pods_text.clone(),
    });
    let redefined: BTreeSet<ObjectRef> = own
        .iter()
        .flat_map(|f| objects(&f.label, &f.text))
        .map(|o| o.object_ref())
        .collect();

    let gateway = golden_dir().join("ingressgateway.yaml");
    let mut files = vec![File {
        label: label(&gateway),
        text: read(&gateway),
    }];
    let base = dir.join("base.txt");
    if base.is_file() {
        for line in read(&base).lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let path = seeds_dir().join(line);
            let text = read(&path);
            files.push(File {
                label: format!("examples/seeds/{line}"),
                text: without(line, &text, &redefined),
            });
        }
    }
    files.extend(own);
    Scenario {
        name,
        files,
        pods: objects("pods.yaml", &pods_text),
    }
}

fn store_of(s: &Scenario) -> Store {
    let mut store = Store::new(DOMAIN, None);
    for f in &s.files {
        match store.apply_file(&f.label, &f.text) {
            FileOutcome::Applied { .. } => {}
            other => panic!(
                "scenario {}: {} was not applied: {other:?}",
                s.name, f.label
            ),
        }
    }
    store
}

fn text(s: &str) -> PbValue {
    PbValue {
        kind: Some(Kind::StringValue(s.to_string())),
    }
}

/// The node a pod's istio-proxy would send (what pilot-agent puts in the bootstrap).
fn node_of(kind: &str, pod: &Object) -> Node {
    let Resource::Pod(p) = &pod.resource else {
        panic!("{} is not a Pod", pod.object_ref());
    };
    let ip = p
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_else(|| panic!("pod {} has no status.podIP", pod.name()));
    let ns = pod.namespace();
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let sa = p
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    // Deployment pods are <deployment>-<replicaset hash>-<pod hash>.
    let workload = pod.name().rsplitn(3, '-').last().unwrap_or(pod.name());
    let mut fields: HashMap<String, PbValue> = [
        ("NAMESPACE", ns.to_string()),
        ("INSTANCE_IPS", ip.clone()),
        ("SERVICE_ACCOUNT", sa),
        ("WORKLOAD_NAME", workload.to_string()),
        ("CLUSTER_ID", "Kubernetes".to_string()),
        ("MESH_ID", DOMAIN.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), text(&v)))
    .collect();
    fields.insert(
        "LABELS".into(),
        PbValue {
            kind: Some(Kind::StructValue(Struct {
                fields: labels.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            })),
        },
    );
    Node {
        id: format!("{kind}~{ip}~{}.{ns}~{ns}.svc.{DOMAIN}", pod.name()),
        cluster: format!(
            "{}.{ns}",
            labels.get("app").map_or(workload, String::as_str)
        ),
        metadata: Some(Struct { fields }),
        ..Default::default()
    }
}

/// Every resource of the four types for `node`, as proto3 JSON sorted by name.
fn render(push: &PushContext, node: &Node) -> Value {
    let proxy = Proxy::from_node(node).expect("the node id parses");
    let mut out = serde_json::Map::new();
    out.insert("node".into(), json!(node.id));
    for (key, type_url) in [
        ("listeners", LISTENER_TYPE),
        ("routes", ROUTE_TYPE),
        ("clusters", CLUSTER_TYPE),
        ("endpoints", ENDPOINT_TYPE),
    ] {
        let mut resources =
            generate(push, &proxy, type_url).unwrap_or_else(|e| panic!("{type_url}: {e}"));
        resources.sort_by(|a, b| a.0.cmp(&b.0));
        let rendered: Vec<Value> = resources
            .into_iter()
            .map(|(name, any)| {
                let any = ironmesh_xds::Any {
                    type_url: any.type_url,
                    value: any.value,
                };
                ironmesh_xds::any_to_json(&any)
                    .unwrap_or_else(|e| panic!("{key} {name} does not render as JSON: {e}"))
            })
            .collect();
        out.insert(key.into(), Value::Array(rendered));
    }
    Value::Object(out)
}

/// The first difference between two texts, with a few lines around it.
fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let from = first.saturating_sub(3);
    let mut out = format!(
        "first difference at line {} (golden has {} lines, generated {}):\n",
        first + 1,
        e.len(),
        a.len()
    );
    for i in from..(first + 4) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => out.push_str(&format!("  {:>5}  {x}\n", i + 1)),
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("- {:>5}  {x}\n", i + 1));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+ {:>5}  {y}\n", i + 1));
                }
            }
        }
    }
    out
}

fn check(path: &Path, value: &Value, update: bool, failures: &mut Vec<String>) {
    let actual = serde_json::to_string_pretty(value).expect("JSON serializes") + "\n";
    if update {
        fs::create_dir_all(path.parent().unwrap()).expect("create golden dir");
        fs::write(path, &actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    match fs::read_to_string(path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => failures.push(format!(
            "{} differs; review the change, then run with {UPDATE_ENV}=1 to accept it\n{}",
            path.display(),
            diff(&expected, &actual)
        )),
        Err(_) => failures.push(format!(
            "{} is missing: run with {UPDATE_ENV}=1 to create it",
            path.display()
        )),
    }
}

#[test]
fn generated_config_matches_the_golden_files() {
    let update = std::env::var_os(UPDATE_ENV).is_some_and(|v| v == "1");
    let gateway_text = read(&golden_dir().join("ingressgateway.yaml"));
    let gateway_pod = objects("ingressgateway.yaml", &gateway_text)
        .into_iter()
        .find(|o| o.kind() == "Pod" && (o.namespace(), o.name()) == GATEWAY_POD)
        .expect("ingressgateway.yaml holds the gateway pod");

    let mut failures = Vec::new();
    let mut checked = BTreeMap::new();
    for s in scenarios() {
        let store = store_of(&s);
        let push = PushContext::new(Arc::clone(&store.snapshot()), DOMAIN);
        let sidecar_pod = s
            .pods
            .iter()
            .find(|o| o.kind() == "Pod")
            .unwrap_or_else(|| panic!("scenario {}: pods.yaml has no Pod", s.name));
        let dir = golden_dir().join(&s.name);
        for (file, node) in [
            ("sidecar.json", node_of("sidecar", sidecar_pod)),
            ("router.json", node_of("router", &gateway_pod)),
        ] {
            let rendered = render(&push, &node);
            check(&dir.join(file), &rendered, update, &mut failures);
            checked.insert(format!("{}/{file}", s.name), rendered);
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden file(s) out of date:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Guard against a vacuous pass: every scenario yields a sidecar with listeners and
    // a gateway with at least its clusters.
    for (name, v) in &checked {
        assert!(
            !v["clusters"].as_array().unwrap().is_empty(),
            "{name}: no clusters at all"
        );
    }
}

#[test]
fn a_base_loses_the_objects_its_scenario_redefines() {
    let base = "# comment\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n\
apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\n  namespace: a\n\
spec:\n  hosts: [x]\n";
    let scenario = objects(
        "s.yaml",
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: vs\n  \
namespace: a\nspec:\n  hosts: [y]\n",
    );
    let redefined: BTreeSet<ObjectRef> = scenario.iter().map(Object::object_ref).collect();
    let kept = objects("base.yaml", &without("base.yaml", base, &redefined));
    let kinds: Vec<&str> = kept.iter().map(|o| o.kind()).collect();
    assert_eq!(kinds, ["Namespace"]);
}

#[test]
fn the_diff_points_at_the_first_different_line() {
    let d = diff("a\nb\nc\n", "a\nB\nc\nd\n");
    assert!(
        d.starts_with("first difference at line 2 (golden has 3 lines, generated 4)"),
        "{d}"
    );
    assert!(d.contains("-     2  b\n+     2  B"), "{d}");
    assert!(d.contains("+     4  d"), "{d}");
}
