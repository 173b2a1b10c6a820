//! Shared by the table tests: read a multi-document file, take a marker key out of
//! each document, load the rest.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ironmesh_config::yaml::parse_stream;
use ironmesh_config::{load_parsed, LoadOptions, Loaded, Severity};

pub struct Case {
    pub file: String,
    pub line: usize,
    pub marker: Option<String>,
    pub name: String,
    pub kind: String,
    pub loaded: Loaded,
}

impl Case {
    pub fn errors(&self) -> Vec<String> {
        self.loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect()
    }
}

/// Every non-null document of `path`, with `marker` removed and kept.
pub fn cases(path: &Path, marker: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let stream = parse_stream(&text);
    assert!(
        stream.errors.is_empty(),
        "{}: YAML errors {:?}",
        path.display(),
        stream.errors
    );
    let file = path.display().to_string();
    let mut out = Vec::new();
    for mut doc in stream.documents {
        if doc.value.is_null() {
            continue;
        }
        let m = doc
            .value
            .as_object_mut()
            .and_then(|o| o.remove(marker))
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            });
        let name = doc
            .value
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        let kind = doc
            .value
            .pointer("/kind")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        let line = doc.line;
        let loaded = load_parsed(&file, doc, &LoadOptions::default());
        out.push(Case {
            file: file.clone(),
            line,
            marker: m,
            name,
            kind,
            loaded,
        });
    }
    out
}

/// Files in `dir` with extension `ext`, sorted.
pub fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
