//! Istio's own CRD validation corpus (`shared/reference/istio-validation`, copied from
//! istio/istio `pkg/config/validation/testdata/crds`): every `*-valid.yaml` document
//! must be accepted and every `*-invalid.yaml` document (its `_err` stripped) rejected.
//!
//! Prints the agreement per kind; `docs/validation.md` carries the figure. Disagreements
//! that remain on purpose are listed in `KNOWN_DISAGREEMENTS` with their reason, so a
//! new one fails the test.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{cases, crate_dir, files};

/// (file stem, metadata.name, why we differ). Keep in step with docs/validation.md.
const KNOWN_DISAGREEMENTS: &[(&str, &str, &str)] = &[];

fn corpus_dir() -> PathBuf {
    let dir = crate_dir().join("../../../shared/reference/istio-validation");
    let dir = dir.canonicalize().unwrap_or(dir);
    assert!(
        dir.is_dir(),
        "Istio's validation corpus is expected at {} (the shared/ folder beside the repository)",
        dir.display()
    );
    dir
}

#[derive(Default)]
struct Tally {
    valid: (usize, usize),
    invalid: (usize, usize),
    message: (usize, usize),
}

#[test]
fn istio_validation_corpus_agrees() {
    let mut per_kind: BTreeMap<String, Tally> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for f in files(&corpus_dir(), "yaml") {
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        let (kind, expect_valid) = match stem.rsplit_once('-') {
            Some((k, "valid")) => (k.to_string(), true),
            Some((k, "invalid")) => (k.to_string(), false),
            _ => continue,
        };
        for case in cases(&f, "_err") {
            let t = per_kind.entry(kind.clone()).or_default();
            let errors = case.errors();
            let rejected = !errors.is_empty();
            let agree = rejected != expect_valid;
            if expect_valid {
                t.valid.1 += 1;
                t.valid.0 += agree as usize;
            } else {
                t.invalid.1 += 1;
                t.invalid.0 += agree as usize;
                if let Some(m) = &case.marker {
                    t.message.1 += 1;
                    if errors.iter().any(|e| e.contains(m.as_str())) {
                        t.message.0 += 1;
                    } else if agree {
                        println!(
                            "  wording differs {stem} {:?}: Istio {:?}, ours {:?}",
                            case.name, m, errors
                        );
                    }
                }
            }
            if !agree {
                let known = KNOWN_DISAGREEMENTS
                    .iter()
                    .any(|(s, n, _)| *s == stem && *n == case.name);
                if !known {
                    disagreements.push(format!(
                        "{stem} {:?} (line {}): Istio says {}, ironmesh says {}{}",
                        case.name,
                        case.line,
                        if expect_valid { "valid" } else { "invalid" },
                        if rejected { "invalid: " } else { "valid" },
                        errors.join(" | ")
                    ));
                }
            }
        }
    }
    let (mut agree, mut total, mut msg, mut msg_total) = (0, 0, 0, 0);
    println!(
        "{:<16} {:>8} {:>10} {:>16}",
        "KIND", "VALID", "INVALID", "SAME MESSAGE"
    );
    for (k, t) in &per_kind {
        println!(
            "{:<16} {:>8} {:>10} {:>16}",
            k,
            format!("{}/{}", t.valid.0, t.valid.1),
            format!("{}/{}", t.invalid.0, t.invalid.1),
            format!("{}/{}", t.message.0, t.message.1)
        );
        agree += t.valid.0 + t.invalid.0;
        total += t.valid.1 + t.invalid.1;
        msg += t.message.0;
        msg_total += t.message.1;
    }
    println!("agreement: {agree}/{total} documents classified as Istio does; {msg}/{msg_total} invalid ones with Istio's message fragment");
    assert!(total >= 100, "corpus looks truncated: {total} documents");
    assert!(
        disagreements.is_empty(),
        "{} unexpected disagreements with Istio:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
