//! Route timeouts without arming a timer per request.
//!
//! A route's timeout (Envoy's default is 15 s) is far longer than the requests it
//! bounds, yet a fresh `tokio::time::timeout` per request inserts a timer into the
//! worker's wheel and removes it again; worse, while the wheel was empty at the last
//! park the insert also wakes the worker's I/O driver (an eventfd write and an extra
//! `epoll_wait`). A [`RouteTimer`] belongs to one downstream connection and is reused by
//! its requests, which run one at a time: its timer stays armed at the earliest
//! deadline handed to it and is moved only when a request needs an earlier one, or
//! when it fires before the current request's own deadline (then it is re-armed for
//! that deadline and the request goes on).

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;

use tokio::time::{Instant, Sleep};

/// A reusable deadline for the requests of one connection (see the module docs).
#[derive(Default)]
pub struct RouteTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl RouteTimer {
    pub fn new() -> RouteTimer {
        RouteTimer::default()
    }

    /// Runs `fut` to completion, or until `deadline` passes (`None`).
    pub async fn run<F: Future>(&mut self, deadline: Instant, fut: F) -> Option<F::Output> {
        let sleep = match &mut self.sleep {
            Some(s) => {
                if s.deadline() > deadline {
                    s.as_mut().reset(deadline);
                }
                s
            }
            None => self
                .sleep
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            // Armed for an earlier request's deadline, it may fire first: then it is
            // re-armed for this one's.
            while sleep.as_mut().poll(cx).is_ready() {
                if sleep.deadline() >= deadline {
                    return Poll::Ready(None);
                }
                sleep.as_mut().reset(deadline);
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn each_request_gets_its_own_deadline_from_one_timer() {
        let mut t = RouteTimer::new();
        let start = Instant::now();
        // Completes in time.
        let r = t.run(start + Duration::from_secs(15), async { 7 }).await;
        assert_eq!(r, Some(7));
        // A later request, with the timer still armed for the first deadline, outlives
        // that deadline and keeps running until its own.
        let second = start + Duration::from_secs(10);
        tokio::time::advance(Duration::from_secs(10)).await;
        let r = t
            .run(
                second + Duration::from_secs(15),
                tokio::time::sleep(Duration::from_secs(14)),
            )
            .await;
        assert_eq!(r, Some(()), "finished before its own deadline");
        assert_eq!(Instant::now() - start, Duration::from_secs(24));
        // An earlier deadline than the armed one applies at once.
        let now = Instant::now();
        let r = t
            .run(
                now + Duration::from_secs(1),
                tokio::time::sleep(Duration::from_secs(60)),
            )
            .await;
        assert_eq!(r, None);
        assert_eq!(Instant::now() - now, Duration::from_secs(1));
        // And a request that never answers times out at its deadline, not earlier.
        let now = Instant::now();
        let r = t
            .run(now + Duration::from_secs(15), std::future::pending::<()>())
            .await;
        assert_eq!(r, None);
        assert_eq!(Instant::now() - now, Duration::from_secs(15));
    }
}
