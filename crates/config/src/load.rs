//! Reading manifests: multi-document YAML or JSON from text, files, directories
//! (recursive, sorted) and stdin, into decoded, validated [`Object`]s and
//! [`Diagnostic`]s that point at file and line.
//!
//! This module decides nothing about I/O beyond reading the paths it is given.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::mesh::{self, MeshConfig};
use crate::object::{self, kind_info, DecodeError, Object, ObjectRef, Resource, Source, KINDS};
use crate::path::FieldPath;
use crate::validation::{self, Context, Problems, Severity};
use crate::yaml::{self, Document, LineIndex};

/// One message about the input, located at a file and line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    /// The object the message is about, when the document got far enough to name one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// The field, e.g. `spec.http[0].route[1].weight`.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_path")]
    pub path: Option<FieldPath>,
    pub message: String,
}

fn ser_path<S: serde::Serializer>(p: &Option<FieldPath>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(p.as_str()),
        None => s.serialize_none(),
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: ", self.file, self.line, self.severity)?;
        if let Some(o) = &self.object {
            write!(f, "{o}: ")?;
        }
        match &self.path {
            // Messages that already start with their field need it only once.
            Some(p) if !p.is_root() && !self.message.starts_with(p.as_str()) => {
                write!(f, "{p}: {}", self.message)
            }
            _ => f.write_str(&self.message),
        }
    }
}

/// A file or directory that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: the file is not UTF-8 text")]
    NotUtf8 { path: String },
}

/// What was read from some input.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every object that decoded, valid or not (check `diagnostics` for errors).
    pub objects: Vec<Object>,
    /// MeshConfig documents: bare MeshConfig files, or the `mesh` key of a ConfigMap
    /// named `istio`.
    pub mesh_configs: Vec<(Source, MeshConfig)>,
    pub diagnostics: Vec<Diagnostic>,
    /// Non-empty documents read.
    pub documents: usize,
    /// Files read.
    pub files: usize,
}

impl Loaded {
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    fn extend(&mut self, other: Loaded) {
        self.objects.extend(other.objects);
        self.mesh_configs.extend(other.mesh_configs);
        self.diagnostics.extend(other.diagnostics);
        self.documents += other.documents;
        self.files += other.files;
    }
}

/// Options for loading.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The mesh's root namespace, for validators that treat it specially.
    pub root_namespace: String,
    /// Top-level keys to drop from every document before decoding (Istio's validation
    /// corpus marks invalid documents with `_err`).
    pub strip_keys: Vec<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            root_namespace: "istio-system".into(),
            strip_keys: Vec::new(),
        }
    }
}

/// Reads and validates every document of `text`; `file` names it in messages.
pub fn load_str(file: &str, text: &str, opts: &LoadOptions) -> Loaded {
    let file: Arc<str> = Arc::from(file);
    let stream = yaml::parse_stream(text);
    let mut out = Loaded {
        files: 1,
        ..Default::default()
    };
    for doc in stream.documents {
        load_document(&file, doc, opts, &mut out);
    }
    for e in stream.errors {
        out.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            line: e.line,
            object: None,
            path: None,
            message: format!("YAML syntax error: {}", e.message),
        });
    }
    out.diagnostics.sort_by_key(|d| d.line);
    out
}

/// Reads and validates one already-parsed document (see [`yaml::parse_stream`]); used
/// by callers that need results per document, such as test tables.
pub fn load_parsed(file: &str, doc: Document, opts: &LoadOptions) -> Loaded {
    let mut out = Loaded {
        files: 1,
        ..Default::default()
    };
    load_document(&Arc::from(file), doc, opts, &mut out);
    out
}

fn load_document(file: &Arc<str>, mut doc: Document, opts: &LoadOptions, out: &mut Loaded) {
    if let Value::Object(map) = &mut doc.value {
        for k in &opts.strip_keys {
            map.remove(k);
        }
    }
    if doc.value.is_null() {
        return;
    }
    out.documents += 1;
    let source = Source {
        file: file.clone(),
        document: doc.index,
        line: doc.lines.line_of(&FieldPath::root()).unwrap_or(doc.line),
    };
    load_value(source, doc.value, Arc::new(doc.lines), opts, out);
}

fn diag(
    source: &Source,
    lines: &LineIndex,
    path: Option<FieldPath>,
    object: Option<ObjectRef>,
    severity: Severity,
    message: String,
) -> Diagnostic {
    let line = path
        .as_ref()
        .and_then(|p| lines.line_of(p))
        .unwrap_or(source.line);
    Diagnostic {
        severity,
        file: source.file.to_string(),
        line,
        object,
        path,
        message,
    }
}

fn load_value(
    source: Source,
    value: Value,
    lines: Arc<LineIndex>,
    opts: &LoadOptions,
    out: &mut Loaded,
) {
    let Value::Object(map) = &value else {
        out.diagnostics.push(diag(
            &source,
            &lines,
            None,
            None,
            Severity::Error,
            format!(
                "document is {}, not a Kubernetes object: expected a mapping with apiVersion and kind",
                match object::json_type_name(&value) {
                    t @ ("array" | "object") => format!("an {t}"),
                    t => format!("a {t}"),
                }
            ),
        ));
        return;
    };
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    let kind = map.get("kind").and_then(Value::as_str).map(str::to_string);
    let root = FieldPath::root();
    let name_hint = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ns_hint = map
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or(object::DEFAULT_NAMESPACE)
        .to_string();

    let (api_version, kind) = match (api_version, kind) {
        (None, None) if !map.contains_key("apiVersion") && !map.contains_key("kind") => {
            load_bare_mesh_config(&source, &value, &lines, out);
            return;
        }
        (Some(a), Some(k)) => (a, k),
        (a, k) => {
            let (field, hint) = if k.is_none() {
                ("kind", "add kind (e.g. kind: VirtualService)".to_string())
            } else {
                let k = k.clone().unwrap_or_default();
                let served = kind_info(&k)
                    .map(|i| format!("add apiVersion: {}", api_version_of(i, i.versions[0])))
                    .unwrap_or_else(|| {
                        "add apiVersion (e.g. apiVersion: networking.istio.io/v1)".into()
                    });
                ("apiVersion", served)
            };
            let _ = a;
            out.diagnostics.push(diag(
                &source,
                &lines,
                Some(root.field(field)),
                k.map(|k| ObjectRef {
                    kind: k,
                    namespace: ns_hint.clone(),
                    name: name_hint.clone(),
                }),
                Severity::Error,
                format!("{field}: Required value (must be a string): {hint}"),
            ));
            return;
        }
    };

    if kind == "List" || kind.ends_with("List") && map.contains_key("items") {
        let items = map
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, item) in items.into_iter().enumerate() {
            let prefix = root.field("items").index(i);
            let sub = Arc::new(lines.subtree(&prefix));
            let src = Source {
                line: sub.line_of(&FieldPath::root()).unwrap_or(source.line),
                ..source.clone()
            };
            load_value(src, item, sub, opts, out);
        }
        return;
    }

    let object_ref = ObjectRef {
        kind: kind.clone(),
        namespace: ns_hint.clone(),
        name: name_hint.clone(),
    };
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    let Some(info) = kind_info(&kind) else {
        let istio_group = group.ends_with("istio.io");
        let known: Vec<&str> = KINDS.iter().filter(|k| k.istio).map(|k| k.kind).collect();
        let (severity, message) = if istio_group {
            (
                Severity::Error,
                format!(
                    "unknown kind {kind:?} in {group}: Istio kinds are {}",
                    known.join(", ")
                ),
            )
        } else {
            (
                Severity::Warning,
                format!("kind {kind:?} ({api_version}) is not read by ironmesh and is ignored"),
            )
        };
        out.diagnostics.push(diag(
            &source,
            &lines,
            Some(root.field("kind")),
            Some(object_ref),
            severity,
            message,
        ));
        return;
    };
    if group != info.group || !info.versions.contains(&version.as_str()) {
        let served: Vec<String> = info
            .versions
            .iter()
            .map(|v| api_version_of(info, v))
            .collect();
        out.diagnostics.push(diag(
            &source,
            &lines,
            Some(root.field("apiVersion")),
            Some(object_ref),
            Severity::Error,
            format!(
                "{kind} is not served at apiVersion {api_version:?}: use {}",
                served.join(" or ")
            ),
        ));
        return;
    }

    let (metadata, resource) = match object::decode(info, &value) {
        Ok(v) => v,
        Err(DecodeError { path, message }) => {
            out.diagnostics.push(diag(
                &source,
                &lines,
                Some(path),
                Some(object_ref),
                Severity::Error,
                message,
            ));
            return;
        }
    };
    let obj = Object {
        source: source.clone(),
        api_version,
        metadata,
        resource,
        lines: lines.clone(),
    };
    let mut problems = Problems::new();
    validation::validate_metadata(&obj.metadata, info.namespaced, &mut problems);
    let cx = Context {
        kind: info.kind,
        api_version: &obj.api_version,
        name: obj.name(),
        namespace: obj.namespace(),
        root_namespace: &opts.root_namespace,
    };
    if info.istio {
        obj.resource.validate_spec(&cx, &mut problems);
    } else {
        validation::validate_kube_object(&obj.resource, &mut problems);
    }
    let oref = obj.object_ref();
    for p in problems.into_vec() {
        out.diagnostics.push(diag(
            &source,
            &lines,
            Some(p.path),
            Some(oref.clone()),
            p.severity,
            p.message,
        ));
    }
    if let Resource::ConfigMap(cm) = &obj.resource {
        if let Some(mc) = mesh_config_from_configmap(&obj, cm, out) {
            out.mesh_configs.push((source.clone(), mc));
        }
    }
    out.objects.push(obj);
}

fn api_version_of(info: &object::KindInfo, version: &str) -> String {
    if info.group.is_empty() {
        version.to_string()
    } else {
        format!("{}/{}", info.group, version)
    }
}

/// The `istio` ConfigMap carries MeshConfig as YAML text under `data.mesh`; parse it with
/// lines counted from the ConfigMap's file.
fn mesh_config_from_configmap(
    obj: &Object,
    cm: &k8s_openapi::api::core::v1::ConfigMap,
    out: &mut Loaded,
) -> Option<MeshConfig> {
    if obj.name() != "istio" && !obj.name().starts_with("istio-") {
        return None;
    }
    let text = cm.data.as_ref()?.get("mesh")?;
    let key_path = FieldPath::root().field("data").key("mesh");
    // The line recorded for the value is where its first non-blank content line is: the
    // key's own line for a quoted or plain scalar, the line after the `|`/`>` indicator
    // for a block scalar, skipping blank lines (which the text keeps as leading "\n"s).
    // So the text's line n is at `first + n - 1 - leading_blank_lines`.
    let first = obj.lines.line_of(&key_path).unwrap_or(obj.source.line);
    let leading_blank = text.chars().take_while(|c| *c == '\n').count();
    let file_line = |rel: Option<usize>| {
        let rel = rel.unwrap_or(leading_blank + 1).max(leading_blank + 1);
        (first + rel).saturating_sub(1 + leading_blank).max(1)
    };
    let oref = obj.object_ref();
    let parsed = mesh::parse_mesh_config(text);
    for e in parsed.problems {
        let path = if e.path.is_root() {
            key_path.clone()
        } else {
            FieldPath::parse(&format!("{key_path}.{}", e.path))
        };
        out.diagnostics.push(Diagnostic {
            severity: e.severity,
            file: obj.source.file.to_string(),
            line: file_line(e.line),
            object: Some(oref.clone()),
            path: Some(path),
            message: e.message,
        });
    }
    parsed.config
}

fn load_bare_mesh_config(source: &Source, value: &Value, lines: &LineIndex, out: &mut Loaded) {
    let parsed = mesh::decode_mesh_config(value, lines);
    for e in parsed.problems {
        out.diagnostics.push(Diagnostic {
            severity: e.severity,
            file: source.file.to_string(),
            line: e.line.unwrap_or(source.line),
            object: Some(ObjectRef {
                kind: "MeshConfig".into(),
                namespace: String::new(),
                name: "(document without apiVersion and kind)".into(),
            }),
            path: Some(FieldPath::parse(e.path.as_str())),
            message: e.message,
        });
    }
    if let Some(mc) = parsed.config {
        out.mesh_configs.push((source.clone(), mc));
    }
}

/// Reads `paths`: files, directories (recursively, in sorted order, `.yaml`, `.yml` and
/// `.json` files only, hidden entries skipped) and `-` for stdin.
pub fn load_paths(paths: &[PathBuf], opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let mut out = Loaded::default();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| LoadError::Io {
                    path: "-".into(),
                    source,
                })?;
            out.extend(load_str("-", &text, opts));
            continue;
        }
        for file in manifest_files(p)? {
            let text = read_text(&file)?;
            out.extend(load_str(&file.display().to_string(), &text, opts));
        }
    }
    Ok(out)
}

/// Reads one file as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
        path: path.display().to_string(),
    })
}

/// The manifest files under `path`: the file itself, or a directory's `.yaml`, `.yml`
/// and `.json` files, recursively, sorted by path.
pub fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(path, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = e.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_manifest(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_manifest(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}
