//! Merges bursts of change events into one push, as Istio's debounce does
//! (`PILOT_DEBOUNCE_AFTER`, `PILOT_DEBOUNCE_MAX`): a burst ends after `quiet` without a
//! new event, or `max` after its first event, whichever comes first.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::server::{PushPublisher, PushScope};

/// How long to wait for a burst to settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebouncerConfig {
    /// A burst ends after this long without a new event (Istio: 100 ms).
    pub quiet: Duration,
    /// A burst ends this long after its first event even if events keep coming
    /// (Istio: 10 s), so a steady trickle of changes cannot starve pushes.
    pub max: Duration,
}

impl Default for DebouncerConfig {
    fn default() -> Self {
        DebouncerConfig {
            quiet: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

/// One merged burst.
#[derive(Debug, Clone, PartialEq)]
pub struct Debounced {
    pub scope: PushScope,
    /// When the burst's first event arrived.
    pub started: Instant,
    /// How many events were merged.
    pub events: usize,
}

/// Receives change events and yields them merged, one [`Debounced`] per burst.
#[derive(Debug)]
pub struct Debouncer {
    config: DebouncerConfig,
    events: mpsc::UnboundedReceiver<PushScope>,
}

impl Debouncer {
    /// A debouncer and the sender that feeds it. Sending never blocks, so config and
    /// registry watchers can report changes from any context.
    pub fn channel(config: DebouncerConfig) -> (mpsc::UnboundedSender<PushScope>, Debouncer) {
        let (tx, events) = mpsc::unbounded_channel();
        (tx, Debouncer { config, events })
    }

    /// Waits for the next burst and returns it merged; `None` once every sender is gone
    /// and nothing is pending.
    pub async fn next(&mut self) -> Option<Debounced> {
        let mut scope = self.events.recv().await?;
        let started = Instant::now();
        let hard_deadline = started + self.config.max;
        let mut events = 1;
        loop {
            let deadline = (Instant::now() + self.config.quiet).min(hard_deadline);
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(more) => {
                        scope = scope.merge(more);
                        events += 1;
                    }
                    None => break,
                },
                _ = sleep_until(deadline) => break,
            }
            if Instant::now() >= hard_deadline {
                break;
            }
        }
        Some(Debounced {
            scope,
            started,
            events,
        })
    }

    /// Publishes one push per burst until every sender is gone.
    pub async fn run(mut self, publisher: &PushPublisher) {
        while let Some(burst) = self.next().await {
            let version = publisher.publish_since(burst.scope.clone(), burst.started);
            tracing::debug!(
                version,
                events = burst.events,
                scope = ?burst.scope,
                "push after debounce"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::type_url::{CLUSTER, LISTENER};
    use tokio::time::{advance, sleep};

    fn types(urls: &[&str]) -> PushScope {
        PushScope::Types(urls.iter().map(|s| (*s).to_owned()).collect())
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_ends_after_the_quiet_period() {
        let (tx, mut debouncer) = Debouncer::channel(DebouncerConfig::default());
        let t0 = Instant::now();
        tx.send(types(&[CLUSTER])).unwrap();
        let feeder = tokio::spawn(async move {
            for _ in 0..3 {
                sleep(Duration::from_millis(50)).await;
                tx.send(PushScope::Endpoints).unwrap();
            }
            tx
        });
        let burst = debouncer.next().await.unwrap();
        // Last event at 150 ms, then 100 ms of quiet.
        assert_eq!(Instant::now() - t0, Duration::from_millis(250));
        assert_eq!(burst.events, 4);
        assert_eq!(burst.started, t0);
        assert_eq!(burst.scope, types(&[CLUSTER, crate::type_url::ENDPOINT]));
        drop(feeder.await.unwrap());
        assert!(debouncer.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_trickle_is_cut_at_max() {
        let config = DebouncerConfig {
            quiet: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let (tx, mut debouncer) = Debouncer::channel(config);
        let t0 = Instant::now();
        let feeder = tokio::spawn(async move {
            for _ in 0..30 {
                tx.send(PushScope::Endpoints).unwrap();
                sleep(Duration::from_millis(60)).await;
            }
        });
        let first = debouncer.next().await.unwrap();
        assert_eq!(Instant::now() - t0, Duration::from_secs(1));
        assert_eq!(first.scope, PushScope::Endpoints);
        assert!(first.events >= 16, "{}", first.events);
        let second = debouncer.next().await.unwrap();
        assert!(second.started >= t0 + Duration::from_secs(1));
        feeder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn full_absorbs_everything_and_run_publishes() {
        let (tx, debouncer) = Debouncer::channel(DebouncerConfig::default());
        let publisher = PushPublisher::new();
        let mut pushes = publisher.subscribe();
        pushes.borrow_and_update();
        tx.send(types(&[LISTENER])).unwrap();
        tx.send(PushScope::Full).unwrap();
        tx.send(PushScope::Endpoints).unwrap();
        let runner = async {
            debouncer.run(&publisher).await;
        };
        let checker = async {
            pushes.changed().await.unwrap();
            let push = pushes.borrow_and_update().clone();
            assert_eq!(push.version, 2);
            assert_eq!(push.scope, PushScope::Full);
            // Separate bursts publish separate pushes.
            advance(Duration::from_secs(1)).await;
            tx.send(PushScope::Endpoints).unwrap();
            pushes.changed().await.unwrap();
            assert_eq!(pushes.borrow().version, 3);
            assert_eq!(pushes.borrow().scope, PushScope::Endpoints);
            drop(tx);
        };
        tokio::join!(runner, checker);
    }
}
