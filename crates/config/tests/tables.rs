//! Our own tables: `testdata/invalid/*.yaml` documents carry `_expect: "fragment"` and
//! must be rejected with an error containing that fragment; `testdata/valid/*.yaml`
//! documents must load without errors.

mod common;

use common::{cases, crate_dir, files};

/// The issue asks for at least this many invalid documents of our own.
const MIN_INVALID_CASES: usize = 80;

#[test]
fn invalid_documents_are_rejected_with_the_expected_message() {
    let dir = crate_dir().join("testdata/invalid");
    let mut total = 0;
    let mut failures = Vec::new();
    for f in files(&dir, "yaml") {
        for case in cases(&f, "_expect") {
            total += 1;
            let Some(expect) = &case.marker else {
                failures.push(format!(
                    "{}:{}: document has no _expect",
                    case.file, case.line
                ));
                continue;
            };
            let errors = case.errors();
            if !errors.iter().any(|e| e.contains(expect.as_str())) {
                failures.push(format!(
                    "{}:{}: {} {:?}: expected an error containing {:?}, got {:?}",
                    case.file, case.line, case.kind, case.name, expect, errors
                ));
            }
        }
    }
    println!("{total} invalid cases");
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        total >= MIN_INVALID_CASES,
        "only {total} invalid cases; the table should hold at least {MIN_INVALID_CASES}"
    );
}

#[test]
fn valid_documents_load_cleanly() {
    let dir = crate_dir().join("testdata/valid");
    let mut total = 0;
    let mut failures = Vec::new();
    for f in files(&dir, "yaml") {
        for case in cases(&f, "_comment") {
            total += 1;
            let errors = case.errors();
            if !errors.is_empty() || case.loaded.objects.len() + case.loaded.mesh_configs.len() == 0
            {
                failures.push(format!(
                    "{}:{}: {} {:?}: {:?}",
                    case.file, case.line, case.kind, case.name, errors
                ));
            }
        }
    }
    assert!(total > 0, "no valid documents found in {}", dir.display());
    assert!(
        failures.is_empty(),
        "{} of {total} valid documents failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
