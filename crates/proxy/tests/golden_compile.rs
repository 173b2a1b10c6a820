//! Every xDS resource discovery emits in its golden files compiles into the proxy's
//! runtime model (a failure here means the proxy would NACK real config).

use std::path::PathBuf;

use ironmesh_proxy::model::Snapshot;

#[test]
fn every_discovery_golden_compiles() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../discovery/testdata/golden");
    let mut files = 0;
    let mut failures = Vec::new();
    for dir in std::fs::read_dir(&root).expect("golden dir") {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                files += 1;
                let text = std::fs::read_to_string(&f).unwrap();
                match Snapshot::from_json(&text) {
                    Ok(s) => assert!(!s.clusters.is_empty(), "{}: no clusters", f.display()),
                    Err(e) => failures.push(format!("{}: {e}", f.display())),
                }
            }
        }
    }
    assert!(
        files >= 20,
        "only {files} golden files found under {}",
        root.display()
    );
    assert!(
        failures.is_empty(),
        "goldens that do not compile:\n{}",
        failures.join("\n")
    );
}
