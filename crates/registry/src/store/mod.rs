//! The config store: the last good objects of every source file, and the snapshots
//! built from them.
//!
//! A file is all or nothing: when its latest content has any error, the store keeps the
//! file's previous objects and records the file as rejected. Each accepted change
//! publishes one new [`Snapshot`] on a `watch` channel.

mod change;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use ironmesh_config::mesh::MeshConfig;
use ironmesh_config::{load_str, Diagnostic, LoadOptions, Object, ObjectRef, Severity, Source};
use tokio::sync::watch;

use crate::builder::build_services;
use crate::snapshot::{RejectedFile, Snapshot};

/// One change to the set of source files.
#[derive(Debug, Clone)]
pub enum FileChange {
    /// The file's current content.
    Write { path: String, text: String },
    /// The file exists but could not be read (permissions, not UTF-8); `error` says why.
    Unreadable { path: String, error: String },
    /// The file is gone.
    Removed { path: String },
}

impl FileChange {
    pub fn path(&self) -> &str {
        match self {
            FileChange::Write { path, .. }
            | FileChange::Unreadable { path, .. }
            | FileChange::Removed { path } => path,
        }
    }
}

/// What the store did with one file.
#[derive(Debug, Clone, PartialEq)]
pub enum FileOutcome {
    /// The file's objects replaced its previous ones; `warnings` did not stop it.
    Applied {
        objects: usize,
        warnings: Vec<Diagnostic>,
    },
    /// The file was refused; `kept` objects of its last good version stay in force.
    Rejected {
        diagnostics: Vec<Diagnostic>,
        kept: usize,
    },
    /// The file is gone and its `objects` with it.
    Removed { objects: usize },
    /// Same content as before (or an unknown file removed): nothing to do.
    Unchanged,
}

/// The last good content of a file.
#[derive(Debug, Default)]
struct Accepted {
    objects: Vec<Arc<Object>>,
    /// MeshConfigs carried by ConfigMaps of this file, by the ConfigMap's source.
    meshes: Vec<(Source, MeshConfig)>,
}

#[derive(Debug, Default)]
struct FileState {
    good: Accepted,
    /// Why the latest content was refused, if it was.
    rejected: Option<Vec<Diagnostic>>,
    /// The latest content as given (to skip rewrites of the same text).
    last_text: Option<String>,
    /// Refused only because another file holds one of its objects: tried again when
    /// files change, so removing the other copy brings this one in.
    conflicted: bool,
}

/// The config store. Not thread-safe by itself: share it behind a mutex.
#[derive(Debug)]
pub struct Store {
    domain: String,
    base_mesh: MeshConfig,
    files: BTreeMap<String, FileState>,
    /// Which file's accepted objects hold each object. A duplicate is refused, so an
    /// object has at most one owner; kept in step with `FileState::good` so that a
    /// conflict check costs one lookup per object, not a walk over every file.
    owners: BTreeMap<ObjectRef, Source>,
    tx: watch::Sender<Arc<Snapshot>>,
}

impl Store {
    /// A store for cluster domain `domain` (`cluster.local`), with `base_mesh` (from
    /// `--mesh-config`) under the `istio` ConfigMap of the root namespace.
    pub fn new(domain: &str, base_mesh: Option<MeshConfig>) -> Store {
        let base_mesh = base_mesh.unwrap_or_default();
        let initial = Snapshot {
            mesh: Arc::new(base_mesh.effective()),
            ..Snapshot::empty()
        };
        let (tx, _) = watch::channel(Arc::new(initial));
        Store {
            domain: domain.to_string(),
            base_mesh,
            files: BTreeMap::new(),
            owners: BTreeMap::new(),
            tx,
        }
    }

    /// Snapshots as they are published; the current one is there at once.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Every file the store knows (accepted or rejected), sorted.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Loads `text` as the content of `path` and publishes a snapshot if that changed
    /// anything.
    pub fn apply_file(&mut self, path: &str, text: &str) -> FileOutcome {
        let change = FileChange::Write {
            path: path.to_string(),
            text: text.to_string(),
        };
        self.outcome_of(path, change)
    }

    /// Forgets `path` and its objects.
    pub fn remove_file(&mut self, path: &str) -> FileOutcome {
        let change = FileChange::Removed {
            path: path.to_string(),
        };
        self.outcome_of(path, change)
    }

    fn outcome_of(&mut self, path: &str, change: FileChange) -> FileOutcome {
        self.apply(vec![change])
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, o)| o)
            .unwrap_or(FileOutcome::Unchanged)
    }

    /// Applies several changes in order and publishes at most one snapshot. Returns the
    /// outcome per file, including files refused earlier for a duplicate object that
    /// these changes let in.
    pub fn apply(&mut self, changes: Vec<FileChange>) -> Vec<(String, FileOutcome)> {
        let mut outcomes = Vec::new();
        for change in changes {
            let path = change.path().to_string();
            let outcome = self.apply_one(change, false);
            outcomes.push((path, outcome));
        }
        self.retry_conflicted(&mut outcomes);
        self.publish();
        outcomes
    }

    /// Files refused for a duplicate get another chance once the files around them
    /// changed; each success may unblock another, so go on until nothing moves.
    fn retry_conflicted(&mut self, outcomes: &mut Vec<(String, FileOutcome)>) {
        let touched = outcomes
            .iter()
            .any(|(_, o)| !matches!(o, FileOutcome::Unchanged));
        if !touched {
            return;
        }
        loop {
            let waiting: Vec<(String, String)> = self
                .files
                .iter()
                .filter(|(_, f)| f.conflicted)
                .filter_map(|(p, f)| Some((p.clone(), f.last_text.clone()?)))
                .collect();
            let mut progressed = false;
            for (path, text) in waiting {
                let outcome = self.apply_one(
                    FileChange::Write {
                        path: path.clone(),
                        text,
                    },
                    true,
                );
                if matches!(outcome, FileOutcome::Applied { .. }) {
                    progressed = true;
                    outcomes.retain(|(p, _)| *p != path);
                    outcomes.push((path, outcome));
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn load_options(&self) -> LoadOptions {
        LoadOptions {
            root_namespace: self.base_mesh.root_namespace().to_string(),
            ..LoadOptions::default()
        }
    }

    fn apply_one(&mut self, change: FileChange, retry: bool) -> FileOutcome {
        match change {
            FileChange::Removed { path } => match self.files.remove(&path) {
                Some(state) => {
                    self.disown(&path, &state.good.objects);
                    FileOutcome::Removed {
                        objects: state.good.objects.len(),
                    }
                }
                None => FileOutcome::Unchanged,
            },
            FileChange::Unreadable { path, error } => {
                let diag = Diagnostic {
                    severity: Severity::Error,
                    file: path.clone(),
                    line: 1,
                    object: None,
                    path: None,
                    message: format!(
                        "cannot read the file ({error}); its last good objects stay in force until it can be read"
                    ),
                };
                let state = self.files.entry(path).or_default();
                state.last_text = None;
                state.conflicted = false;
                state.rejected = Some(vec![diag.clone()]);
                FileOutcome::Rejected {
                    diagnostics: vec![diag],
                    kept: state.good.objects.len(),
                }
            }
            FileChange::Write { path, text } => {
                if !retry
                    && self
                        .files
                        .get(&path)
                        .is_some_and(|f| f.last_text.as_deref() == Some(text.as_str()))
                {
                    return FileOutcome::Unchanged;
                }
                let loaded = load_str(&path, &text, &self.load_options());
                let mut diagnostics = loaded.diagnostics;
                let errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
                let conflicts = if errors {
                    Vec::new()
                } else {
                    self.conflicts(&path, &loaded.objects)
                };
                let conflicted = !conflicts.is_empty();
                diagnostics.extend(conflicts);
                let objects: Vec<Arc<Object>> = loaded.objects.into_iter().map(Arc::new).collect();
                let meshes: Vec<(Source, MeshConfig)> = loaded
                    .mesh_configs
                    .into_iter()
                    .filter(|(src, _)| {
                        let from_configmap = objects.iter().any(|o| o.source == *src);
                        if !from_configmap {
                            diagnostics
                                .push(bare_mesh_warning(src, self.base_mesh.root_namespace()));
                        }
                        from_configmap
                    })
                    .collect();
                diagnostics.sort_by_key(|d| d.line);
                let state = self.files.entry(path.clone()).or_default();
                state.last_text = Some(text);
                state.conflicted = conflicted;
                if errors || conflicted {
                    state.rejected = Some(diagnostics.clone());
                    return FileOutcome::Rejected {
                        diagnostics,
                        kept: state.good.objects.len(),
                    };
                }
                state.rejected = None;
                let count = objects.len();
                let old = std::mem::replace(&mut state.good, Accepted { objects, meshes });
                self.disown(&path, &old.objects);
                for o in &self.files[&path].good.objects {
                    self.owners.insert(o.object_ref(), o.source.clone());
                }
                FileOutcome::Applied {
                    objects: count,
                    warnings: diagnostics,
                }
            }
        }
    }

    /// Forgets `path` as the owner of `objects`.
    fn disown(&mut self, path: &str, objects: &[Arc<Object>]) {
        for o in objects {
            let oref = o.object_ref();
            if self.owners.get(&oref).is_some_and(|src| &*src.file == path) {
                self.owners.remove(&oref);
            }
        }
    }

    /// Errors for objects of `file` that another file already holds, or that `file`
    /// holds twice.
    fn conflicts(&self, file: &str, objects: &[Object]) -> Vec<Diagnostic> {
        let mut seen: BTreeMap<ObjectRef, &Source> = BTreeMap::new();
        let mut out = Vec::new();
        for o in objects {
            let oref = o.object_ref();
            let other = self.owners.get(&oref).filter(|src| &*src.file != file);
            let message = if let Some(first) = other {
                format!(
                    "{oref} is already defined in {first}; an object may live in one file only: delete one of the two copies (this file is not applied until then)"
                )
            } else if let Some(first) = seen.get(&oref) {
                format!(
                    "{oref} is defined twice in this file (first at line {}); keep one copy",
                    first.line
                )
            } else {
                seen.insert(oref, &o.source);
                continue;
            };
            out.push(Diagnostic {
                severity: Severity::Error,
                file: file.to_string(),
                line: o.source.line,
                object: Some(o.object_ref()),
                path: None,
                message,
            });
        }
        out
    }

    /// The MeshConfig in force: the root namespace's `istio` ConfigMap over the base,
    /// with Istio's defaults filled in.
    fn mesh(&self) -> MeshConfig {
        let root = self.base_mesh.root_namespace();
        let from_configmap = self.files.values().find_map(|f| {
            let cm = f.good.objects.iter().find(|o| {
                o.kind() == "ConfigMap" && o.name() == "istio" && o.namespace() == root
            })?;
            f.good
                .meshes
                .iter()
                .find(|(src, _)| *src == cm.source)
                .map(|(_, mc)| mc)
        });
        match from_configmap {
            Some(top) => overlay_mesh(&self.base_mesh, top).effective(),
            None => self.base_mesh.effective(),
        }
    }

    /// Builds the snapshot of the current files and publishes it if anything changed.
    fn publish(&mut self) {
        let prev = self.snapshot();
        let mut objects: Vec<Arc<Object>> = self
            .files
            .values()
            .flat_map(|f| f.good.objects.iter().cloned())
            .collect();
        objects.sort_by(|a, b| {
            (a.kind(), a.namespace(), a.name()).cmp(&(b.kind(), b.namespace(), b.name()))
        });
        let mesh = self.mesh();
        let services = build_services(&objects, &mesh, &self.domain);
        let rejected = self
            .files
            .iter()
            .filter_map(|(file, f)| {
                Some(RejectedFile {
                    file: file.clone(),
                    diagnostics: f.rejected.clone()?,
                })
            })
            .collect();
        let mut next = Snapshot {
            version: prev.version + 1,
            change: crate::snapshot::Change::Full,
            objects,
            mesh: Arc::new(mesh),
            services: Arc::new(services),
            rejected,
        };
        // Keep the previous Arcs where nothing changed, so readers can compare cheaply.
        if *next.mesh == *prev.mesh {
            next.mesh = prev.mesh.clone();
        }
        let Some(change) = change::classify(&prev, &next) else {
            return;
        };
        next.change = change;
        self.tx.send_replace(Arc::new(next));
    }
}

fn bare_mesh_warning(src: &Source, root: &str) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning,
        file: src.file.to_string(),
        line: src.line,
        object: None,
        path: None,
        message: format!(
            "a bare MeshConfig document is ignored here: put it under data.mesh of the ConfigMap `istio` in namespace {root}, or pass the file with --mesh-config"
        ),
    }
}

/// `top`'s fields over `base`'s: nested settings merge, lists and scalars replace (as
/// istiod layers one mesh config over another).
fn overlay_mesh(base: &MeshConfig, top: &MeshConfig) -> MeshConfig {
    fn merge(base: &mut serde_json::Value, top: serde_json::Value) {
        use serde_json::Value;
        match (base, top) {
            (Value::Object(b), Value::Object(t)) => {
                for (k, v) in t {
                    match b.get_mut(&k) {
                        Some(existing) if existing.is_object() && v.is_object() => {
                            merge(existing, v)
                        }
                        _ => {
                            b.insert(k, v);
                        }
                    }
                }
            }
            (b, t) => *b = t,
        }
    }
    let (Ok(mut merged), Ok(top_json)) = (serde_json::to_value(base), serde_json::to_value(top))
    else {
        return top.clone();
    };
    merge(&mut merged, top_json);
    serde_json::from_value(merged).unwrap_or_else(|_| top.clone())
}
