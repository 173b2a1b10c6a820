//! Worker threads, as Envoy has them: `--concurrency` threads, each running its own
//! single-threaded tokio runtime. A connection is handed to one worker when accepted
//! and lives there to the end, together with the upstream connections it opens and
//! their pools (see `upstream`), so the request path never crosses threads: no
//! work-stealing, no cross-thread wake-ups, no contended locks.
//!
//! Listeners accept on the control runtime and deal connections out round-robin; a
//! connection is accepted rarely compared with the requests it carries, so the one
//! cross-thread hand-off per connection is cheap, and round-robin keeps the workers
//! evenly loaded where `SO_REUSEPORT` hashing would not.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl Workers {
    /// Starts `n` worker threads (at least one). They run until the process exits.
    pub fn start(n: usize) -> std::io::Result<Workers> {
        let mut handles = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            // Sockets and timers. (tokio puts its signal and process drivers under every
            // I/O driver when those features are compiled in; the process one would try
            // to reap child processes on every park, on a lock all workers share, so no
            // crate of this workspace enables tokio's `process` feature.)
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()?;
            handles.push(rt.handle().clone());
            std::thread::Builder::new()
                .name(format!("ironmesh-worker-{i}"))
                .spawn(move || {
                    SLOT.with(|s| s.set((i + 1) % SLOTS));
                    rt.block_on(std::future::pending::<()>())
                })?;
        }
        SLOTS_IN_USE.fetch_max((n.max(1) + 1).min(SLOTS), Ordering::Relaxed);
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on the next worker. Sockets must be registered with the worker's own
    /// reactor, so pass them as std sockets and convert inside `f`.
    pub fn spawn<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[i].spawn(f);
    }
}

/// Most per-thread slots of state every request updates (metric counters), so that
/// each worker writes cache lines of its own: an atomic add on a line another core
/// just wrote costs a cross-core transfer, several per request on the hot path.
pub const SLOTS: usize = 8;

/// Slots worth allocating: one per worker plus one for every other thread.
static SLOTS_IN_USE: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// This thread's slot: worker `i` has `i + 1` (wrapping at [`SLOTS`]), other threads 0.
pub fn slot() -> usize {
    SLOT.with(Cell::get)
}

/// How many slots per-thread state should have (see [`SLOTS`]).
pub fn slots_in_use() -> usize {
    SLOTS_IN_USE.load(Ordering::Relaxed)
}

/// The worker count for `--concurrency N`: 0 means one per core, as in Istio.
pub fn worker_count(concurrency: usize) -> usize {
    if concurrency > 0 {
        return concurrency;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_work_round_robin_over_distinct_threads() {
        let w = Workers::start(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            w.spawn(async move {
                tx.send(std::thread::current().name().unwrap().to_string())
                    .unwrap();
            });
        }
        let mut names: Vec<String> = (0..4).map(|_| rx.recv().unwrap()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "ironmesh-worker-0",
                "ironmesh-worker-0",
                "ironmesh-worker-1",
                "ironmesh-worker-1"
            ]
        );
    }

    #[test]
    fn zero_means_one_per_core() {
        assert!(worker_count(0) >= 1);
        assert_eq!(worker_count(3), 3);
    }
}
