//! Validation with Istio's rules.
//!
//! Every API type implements [`Validate`]: it walks its fields with a [`FieldPath`] and
//! records [`Problem`]s. A message says what is wrong and what is allowed; the loader adds
//! the file, line and object (`VirtualService istio-demo/canary`) in front of it.

pub mod checks;
mod kube;

use std::fmt;

use crate::path::FieldPath;

pub use kube::{validate_kube_object, validate_metadata};

/// How bad a problem is. Only errors make `ironmesh validate` fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding about one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub path: FieldPath,
    pub message: String,
}

/// Collects problems while a validator walks an object.
#[derive(Debug, Default)]
pub struct Problems {
    items: Vec<Problem>,
}

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.items.push(Problem {
            severity: Severity::Error,
            path: path.clone(),
            message: message.into(),
        });
    }

    pub fn warn(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.items.push(Problem {
            severity: Severity::Warning,
            path: path.clone(),
            message: message.into(),
        });
    }

    /// Records `result`'s error, if any, at `path`. Lets the `checks` helpers, which
    /// return `Result<(), String>`, be used in one line.
    pub fn check(&mut self, path: &FieldPath, result: Result<(), String>) {
        if let Err(message) = result {
            self.error(path, message);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|p| p.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.items.iter()
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.items
    }
}

/// What a validator may need to know about the object around the spec it checks.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub kind: &'a str,
    pub api_version: &'a str,
    pub name: &'a str,
    /// The object's namespace (`default` when the manifest leaves it out).
    pub namespace: &'a str,
    /// The mesh's root namespace (MeshConfig `rootNamespace`, `istio-system` by default).
    pub root_namespace: &'a str,
}

impl Context<'static> {
    /// A context for unit tests of a single validator.
    pub fn for_test(kind: &'static str) -> Self {
        Context {
            kind,
            api_version: "test/v1",
            name: "test",
            namespace: "default",
            root_namespace: "istio-system",
        }
    }
}

/// Implemented by every spec type: check the value and record problems under `path`.
pub trait Validate {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, problems: &mut Problems);
}

impl<T: Validate> Validate for Option<T> {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, problems: &mut Problems) {
        if let Some(v) = self {
            v.validate(cx, path, problems);
        }
    }
}

/// Runs one validator on a value, for unit tests: returns `path: message` lines.
pub fn problems_of<T: Validate>(value: &T, cx: &Context<'_>) -> Vec<String> {
    let mut p = Problems::new();
    value.validate(cx, &FieldPath::spec(), &mut p);
    p.into_vec()
        .into_iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect()
}
