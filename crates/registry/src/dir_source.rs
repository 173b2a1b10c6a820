//! Local mode's config source: a directory of manifests, scanned once and then watched.
//!
//! File system events are coalesced for about 50 ms (an editor's save is several
//! events: write a temporary file, rename it over the original), then every touched
//! file is read again and handed to the [`Store`] in one batch, so one save makes at
//! most one snapshot. A file that cannot be read is recorded as rejected; nothing here
//! stops the watcher except dropping the handle.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ironmesh_config::load::{manifest_files, LoadError};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::store::{FileChange, FileOutcome, Store};

/// Quiet time that ends a burst of events.
const QUIET: Duration = Duration::from_millis(50);
/// A burst that never goes quiet is still applied after this long, so a steady stream
/// of writes cannot hold changes back past the 1 s promise.
const MAX_BURST: Duration = Duration::from_millis(400);
/// How often the event thread checks that its handle is still alive.
const POLL: Duration = Duration::from_millis(100);

/// Why a directory source could not start.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{dir} is not a directory: give the directory that holds the manifests")]
    NotADirectory { dir: String },
    #[error("cannot read the config directory {dir}: {source}")]
    Scan {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot watch {dir}: {source}; check that the directory exists and, on Linux, that \
         inotify watches are not exhausted (sysctl fs.inotify.max_user_watches)"
    )]
    Watch {
        dir: String,
        #[source]
        source: notify::Error,
    },
    #[error("cannot start the directory watcher thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Starts directory sources.
pub struct DirSource;

impl DirSource {
    /// Scans `dir` recursively into `store` (one snapshot for the whole directory), then
    /// watches it until the returned handle is dropped.
    pub fn start(dir: PathBuf, store: Arc<Mutex<Store>>) -> Result<DirSourceHandle, RegistryError> {
        let shown = dir.display().to_string();
        let dir = std::fs::canonicalize(&dir).map_err(|source| RegistryError::Scan {
            dir: shown.clone(),
            source,
        })?;
        if !dir.is_dir() {
            return Err(RegistryError::NotADirectory { dir: shown });
        }
        let (tx, rx) = mpsc::channel();
        // Watch before the first scan, so that no change falls between the two.
        let mut watcher =
            notify::recommended_watcher(tx).map_err(|source| RegistryError::Watch {
                dir: shown.clone(),
                source,
            })?;
        watcher
            .watch(&dir, RecursiveMode::Recursive)
            .map_err(|source| RegistryError::Watch {
                dir: shown.clone(),
                source,
            })?;
        let worker = Worker { dir, store };
        let changes = worker.full_scan().map_err(|e| RegistryError::Scan {
            dir: shown,
            source: match e {
                LoadError::Io { source, .. } => source,
                other => std::io::Error::other(other.to_string()),
            },
        })?;
        // Always applied, even when empty: the first snapshot tells readers that the
        // directory has been read.
        worker.apply(changes, true);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ironmesh-dir-source".into())
                .spawn(move || worker.run(rx, &stop))
                .map_err(RegistryError::Thread)?
        };
        Ok(DirSourceHandle {
            watcher: Some(watcher),
            thread: Some(thread),
            stop,
        })
    }
}

/// Keeps the watch alive; dropping it stops watching (and waits for the event thread).
pub struct DirSourceHandle {
    watcher: Option<RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for DirSourceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirSourceHandle").finish_non_exhaustive()
    }
}

impl Drop for DirSourceHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        drop(self.watcher.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a burst of events asks for.
#[derive(Default)]
struct Pending {
    paths: BTreeSet<PathBuf>,
    rescan: bool,
}

struct Worker {
    dir: PathBuf,
    store: Arc<Mutex<Store>>,
}

impl Worker {
    fn run(&self, rx: mpsc::Receiver<notify::Result<notify::Event>>, stop: &AtomicBool) {
        loop {
            let first = match rx.recv_timeout(POLL) {
                Ok(ev) => ev,
                Err(mpsc::RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let mut pending = Pending::default();
            self.note(first, &mut pending);
            let started = Instant::now();
            let mut closed = false;
            while started.elapsed() < MAX_BURST {
                match rx.recv_timeout(QUIET) {
                    Ok(ev) => self.note(ev, &mut pending),
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let changes = self.changes_for(pending);
            self.apply(changes, false);
            if closed || stop.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    fn note(&self, event: notify::Result<notify::Event>, pending: &mut Pending) {
        match event {
            Ok(ev) => {
                if ev.need_rescan() {
                    pending.rescan = true;
                }
                pending.paths.extend(ev.paths);
            }
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "file watcher error; rescanning the directory");
                pending.rescan = true;
            }
        }
    }

    /// Turns touched paths into file changes. A touched directory is read again
    /// whole; a path that is gone takes every file under it along.
    fn changes_for(&self, pending: Pending) -> Vec<FileChange> {
        if pending.rescan {
            return self.full_scan().unwrap_or_else(|e| {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot rescan the directory");
                Vec::new()
            });
        }
        let mut changes = Vec::new();
        let mut seen = BTreeSet::new();
        for path in pending.paths {
            let Ok(rel) = path.strip_prefix(&self.dir) else {
                continue;
            };
            if is_hidden(rel) {
                // Kubernetes mounts a ConfigMap as symlinks into a hidden `..data`
                // directory that is swapped on update: a hidden link or directory that
                // changes may change every file. Editors' hidden swap files do not.
                let meta = std::fs::symlink_metadata(&path);
                if meta.is_ok_and(|m| m.is_dir() || m.file_type().is_symlink()) {
                    return self.full_scan().unwrap_or_default();
                }
                continue;
            }
            let key = path.display().to_string();
            if path.is_dir() {
                let on_disk = manifest_files(&path).unwrap_or_default();
                let prefix = format!("{key}/");
                let store = self.lock();
                for gone in store.files().filter(|f| {
                    f.starts_with(&prefix) && !on_disk.iter().any(|p| p.display().to_string() == *f)
                }) {
                    if seen.insert(gone.to_string()) {
                        changes.push(FileChange::Removed {
                            path: gone.to_string(),
                        });
                    }
                }
                drop(store);
                for file in on_disk {
                    let k = file.display().to_string();
                    if seen.insert(k) {
                        changes.push(read_change(&file));
                    }
                }
            } else if path.exists() {
                if is_manifest(&path) && seen.insert(key) {
                    changes.push(read_change(&path));
                }
            } else {
                let prefix = format!("{key}/");
                let store = self.lock();
                for f in store
                    .files()
                    .filter(|f| *f == key || f.starts_with(&prefix))
                {
                    if seen.insert(f.to_string()) {
                        changes.push(FileChange::Removed {
                            path: f.to_string(),
                        });
                    }
                }
            }
        }
        changes
    }

    /// Every manifest on disk (read again) and every known file that is gone.
    fn full_scan(&self) -> Result<Vec<FileChange>, LoadError> {
        let on_disk = manifest_files(&self.dir)?;
        let keys: BTreeSet<String> = on_disk.iter().map(|p| p.display().to_string()).collect();
        let mut changes: Vec<FileChange> = self
            .lock()
            .files()
            .filter(|f| !keys.contains(*f))
            .map(|f| FileChange::Removed {
                path: f.to_string(),
            })
            .collect();
        changes.extend(on_disk.iter().map(|p| read_change(p)));
        Ok(changes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic elsewhere while holding the lock leaves the store as consistent as
        // its last finished call; keep serving it.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn apply(&self, changes: Vec<FileChange>, initial: bool) {
        if changes.is_empty() && !initial {
            return;
        }
        let mut store = self.lock();
        let outcomes = store.apply(changes);
        let version = store.snapshot().version;
        drop(store);
        for (file, outcome) in outcomes {
            log_outcome(&file, &outcome, version);
        }
    }
}

fn log_outcome(file: &str, outcome: &FileOutcome, version: u64) {
    match outcome {
        FileOutcome::Applied { objects, warnings } if warnings.is_empty() => {
            tracing::info!(file, objects, version, "config file applied");
        }
        FileOutcome::Applied { objects, warnings } => {
            let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
            tracing::warn!(
                file,
                objects,
                version,
                "config file applied with warnings: {}",
                text.join("; ")
            );
        }
        FileOutcome::Rejected { diagnostics, kept } => {
            let errors: Vec<String> = diagnostics
                .iter()
                .filter(|d| d.severity == ironmesh_config::Severity::Error)
                .map(ToString::to_string)
                .collect();
            tracing::warn!(
                file,
                kept_objects = kept,
                "config file rejected, its last good objects stay in force: {}",
                errors.join("; ")
            );
        }
        FileOutcome::Removed { objects } => {
            tracing::info!(file, objects, version, "config file removed");
        }
        FileOutcome::Unchanged => tracing::debug!(file, "config file unchanged"),
    }
}

/// Reads one file into a change; a file gone since the event is a removal.
fn read_change(path: &Path) -> FileChange {
    let key = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => FileChange::Write { path: key, text },
            Err(_) => FileChange::Unreadable {
                path: key,
                error: "the file is not UTF-8 text".into(),
            },
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileChange::Removed { path: key },
        Err(e) => FileChange::Unreadable {
            path: key,
            error: e.to_string(),
        },
    }
}

/// The file filter of [`manifest_files`], for single paths.
fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn is_hidden(rel: &Path) -> bool {
    rel.components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
}

#[cfg(test)]
mod tests;
