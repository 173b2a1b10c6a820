//! Jittered exponential backoff between reconnect attempts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Delays that double from `initial` up to `max`, each drawn uniformly from
/// `[base/2, base]` so that many proxies losing the same control plane do not
/// reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    base: Duration,
    rng: u64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        let max = max.max(initial);
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Backoff {
            initial,
            max,
            base: initial,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// The next delay; the one after it is twice as long (up to `max`).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.base;
        self.base = (self.base * 2).min(self.max);
        let half = base / 2;
        let span = (base - half).as_nanos() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.random() % (span + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// Starts over at `initial` (after a stream that worked).
    pub fn reset(&mut self) {
        self.base = self.initial;
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_bounds_and_resets() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        let mut b = Backoff::new(initial, max);
        let mut base = initial;
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(
                d >= base / 2 && d <= base,
                "{d:?} outside [{:?}, {base:?}]",
                base / 2
            );
            base = (base * 2).min(max);
        }
        assert!(b.next_delay() >= max / 2);
        b.reset();
        assert!(b.next_delay() <= initial);
    }

    #[test]
    fn jitters() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let delays: std::collections::BTreeSet<_> = (0..10).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 1, "no jitter: {delays:?}");
    }
}
