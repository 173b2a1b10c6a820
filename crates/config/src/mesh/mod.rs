//! MeshConfig and the proxy's ProxyConfig (`defaultConfig`), with Istio's defaults.
//!
//! MeshConfig arrives as YAML text: the `mesh` key of the `istio` ConfigMap (as
//! `kubectl -n istio-system edit configmap istio` shows it) or a file given to
//! `ironmesh-discovery --mesh-config`. Fields left out take Istio's defaults.

pub mod mesh_config;
pub mod proxy_config;

pub use mesh_config::MeshConfig;
pub use proxy_config::ProxyConfig;

use serde_json::Value;

use crate::object::decode_strict;
use crate::path::FieldPath;
use crate::validation::{Context, Problems, Severity, Validate};
use crate::yaml::{self, LineIndex};

/// A problem found in MeshConfig text; `line` is relative to the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshError {
    pub severity: Severity,
    pub path: FieldPath,
    pub line: Option<usize>,
    pub message: String,
}

/// The outcome of reading MeshConfig: the config when it has no errors, and every
/// problem found (warnings too, so that deprecations reach the user).
#[derive(Debug, Clone)]
pub struct MeshParse {
    pub config: Option<MeshConfig>,
    pub problems: Vec<MeshError>,
}

impl MeshParse {
    fn failed(problems: Vec<MeshError>) -> Self {
        MeshParse {
            config: None,
            problems,
        }
    }

    /// The config, or the problems as an error when there is no config.
    pub fn into_result(self) -> Result<MeshConfig, Vec<MeshError>> {
        self.config.ok_or(self.problems)
    }
}

/// Parses and validates MeshConfig YAML text. Problems carry lines relative to the text.
pub fn parse_mesh_config(text: &str) -> MeshParse {
    let stream = yaml::parse_stream(text);
    if let Some(e) = stream.errors.first() {
        return MeshParse::failed(vec![MeshError {
            severity: Severity::Error,
            path: FieldPath::root(),
            line: Some(e.line),
            message: format!("YAML syntax error: {}", e.message),
        }]);
    }
    match stream.documents.into_iter().find(|d| !d.value.is_null()) {
        Some(doc) => decode_mesh_config(&doc.value, &doc.lines),
        None => MeshParse {
            config: Some(MeshConfig::default()),
            problems: Vec::new(),
        },
    }
}

/// Decodes a MeshConfig from a JSON value and validates it. Fields left unset keep
/// Istio's defaults through the accessors. Warnings alone do not fail it.
pub fn decode_mesh_config(value: &Value, lines: &LineIndex) -> MeshParse {
    let mc: MeshConfig = match decode_strict(value, &FieldPath::root()) {
        Ok(mc) => mc,
        Err(e) => {
            return MeshParse::failed(vec![MeshError {
                severity: Severity::Error,
                line: lines.line_of(&e.path),
                path: e.path,
                message: e.message,
            }])
        }
    };
    let mut problems = Problems::new();
    let cx = Context {
        kind: "MeshConfig",
        api_version: "mesh",
        name: "mesh",
        namespace: "istio-system",
        root_namespace: "istio-system",
    };
    mc.validate(&cx, &FieldPath::root(), &mut problems);
    let failed = problems.has_errors();
    let problems = problems
        .into_vec()
        .into_iter()
        .map(|p| MeshError {
            severity: p.severity,
            line: lines.line_of(&p.path),
            path: p.path,
            message: p.message,
        })
        .collect();
    MeshParse {
        config: (!failed).then_some(mc),
        problems,
    }
}
