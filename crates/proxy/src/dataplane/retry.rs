//! Envoy's retry decisions for one request: whether an attempt's outcome calls for
//! another under the route's `retry_policy`, and how long to wait before it.
//!
//! Istio gives every HTTP route a policy (the mesh default: 2 retries on
//! `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`, with
//! no status listed as retriable, avoiding hosts already tried), so an endpoint that
//! refuses connections costs a retry on another host instead of a 503. The router
//! (`http.rs`) runs the attempts.

use std::time::Duration;

use http::StatusCode;
use rand::Rng;

use super::h1client::Answer;
use super::upstream::{ConnectError, SendError};
use crate::model::route::{RetryOn, RetryPolicy};

/// How an attempt ended, as far as retrying goes.
pub enum Outcome<'a> {
    Answered(&'a Answer),
    /// No connection could be made (`UF`).
    ConnectFailed,
    /// The connection failed after the request went out, before a response (`UC`).
    Reset,
    /// The per-try timeout fired (not the route's: that one ends the request).
    PerTryTimeout,
}

impl<'a> Outcome<'a> {
    /// `None` for the route timeout: it ends the request whatever the policy says.
    pub fn of(r: &'a Result<Answer, SendError>, per_try_expired: bool) -> Option<Outcome<'a>> {
        Some(match r {
            Ok(a) => Outcome::Answered(a),
            Err(SendError::Connect(_)) => Outcome::ConnectFailed,
            Err(SendError::Reset(_)) => Outcome::Reset,
            Err(SendError::Timeout) if per_try_expired => Outcome::PerTryTimeout,
            Err(SendError::Timeout) => return None,
        })
    }
}

/// Whether `outcome` is one `p` retries (attempts left or not: the caller counts).
pub fn retriable(p: &RetryPolicy, outcome: &Outcome<'_>) -> bool {
    let on = p.on;
    match outcome {
        Outcome::ConnectFailed => {
            on.has(RetryOn::CONNECT_FAILURE)
                || on.has(RetryOn::FIVE_XX)
                || on.has(RetryOn::GATEWAY_ERROR)
                || on.has(RetryOn::RESET)
        }
        Outcome::Reset => on.has(RetryOn::FIVE_XX) || on.has(RetryOn::RESET),
        // Envoy answers a per-try timeout as a 504 would be: retriable under these.
        Outcome::PerTryTimeout => {
            on.has(RetryOn::FIVE_XX) || on.has(RetryOn::GATEWAY_ERROR) || on.has(RetryOn::RESET)
        }
        Outcome::Answered(a) => answer_retriable(p, a),
    }
}

fn answer_retriable(p: &RetryPolicy, a: &Answer) -> bool {
    let on = p.on;
    let code = a.status.as_u16();
    if on.has(RetryOn::FIVE_XX) && a.status.is_server_error() {
        return true;
    }
    if on.has(RetryOn::GATEWAY_ERROR)
        && matches!(
            a.status,
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
        )
    {
        return true;
    }
    if on.has(RetryOn::RETRIABLE_4XX) && a.status == StatusCode::CONFLICT {
        return true;
    }
    if on.has(RetryOn::RETRIABLE_STATUS_CODES)
        && p.retriable_status_codes.contains(&u32::from(code))
    {
        return true;
    }
    // The gRPC conditions (`cancelled`, `unavailable`, ...) would read a trailers-only
    // answer's `grpc-status`, but a gRPC request always has a body (a framed message),
    // so it goes through hyper's client, which makes one attempt: none is an answer
    // of the inline client's.
    false
}

/// The wait before retry number `n` (1 for the first retry): Envoy's fully jittered
/// exponential back-off, uniform in `[0, base × (2ⁿ − 1))` capped at `max`.
pub fn backoff<R: Rng + ?Sized>(p: &RetryPolicy, n: u32, rng: &mut R) -> Duration {
    let factor = (1u64 << n.clamp(1, 16)) - 1;
    let ceiling = p
        .base_interval
        .saturating_mul(u32::try_from(factor).unwrap_or(u32::MAX))
        .min(p.max_interval);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rng.random_range(0..nanos))
}

/// The body of a local reply for an upstream that failed before answering: it could not
/// connect (`connect`) or the connection ended. Envoy's words; after retries they name
/// the latest attempt's reason.
pub fn reset_body(connect: Option<&ConnectError>, retried: bool) -> &'static str {
    match (connect, retried) {
        (Some(ConnectError::Timeout), false) => {
            "upstream connect error or disconnect/reset before headers. reset reason: connection timeout"
        }
        (Some(ConnectError::Timeout), true) => {
            "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection timeout"
        }
        (Some(_), false) => {
            "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
        }
        (Some(_), true) => {
            "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure"
        }
        (None, false) => {
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
        }
        (None, true) => {
            "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection termination"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn policy(on: &str, codes: &[u32]) -> RetryPolicy {
        RetryPolicy {
            retry_on: on.into(),
            on: RetryOn::parse(on),
            num_retries: 2,
            per_try_timeout: None,
            retriable_status_codes: codes.to_vec(),
            avoid_previous_hosts: true,
            host_selection_max_attempts: 5,
            base_interval: Duration::from_millis(25),
            max_interval: Duration::from_millis(250),
        }
    }

    #[test]
    fn failures_are_retried_under_the_conditions_envoy_documents() {
        let istio = policy(
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
            &[503],
        );
        assert!(retriable(&istio, &Outcome::ConnectFailed));
        assert!(!retriable(&istio, &Outcome::Reset));
        assert!(!retriable(&istio, &Outcome::PerTryTimeout));
        let five = policy("5xx", &[]);
        assert!(retriable(&five, &Outcome::ConnectFailed));
        assert!(retriable(&five, &Outcome::Reset));
        assert!(retriable(&five, &Outcome::PerTryTimeout));
        let gw = policy("gateway-error", &[]);
        assert!(retriable(&gw, &Outcome::ConnectFailed));
        assert!(!retriable(&gw, &Outcome::Reset));
        let unknown = policy("no-such-condition", &[]);
        assert_eq!(unknown.on, RetryOn::default());
        assert!(!retriable(&unknown, &Outcome::ConnectFailed));
    }

    #[test]
    fn backoff_is_jittered_below_the_exponential_ceiling() {
        let p = policy("5xx", &[]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in 1..=6 {
            let cap = Duration::from_millis(25 * ((1 << n) - 1)).min(Duration::from_millis(250));
            let waits: Vec<Duration> = (0..200).map(|_| backoff(&p, n, &mut rng)).collect();
            assert!(waits.iter().all(|w| *w < cap), "retry {n}: {waits:?}");
            // Jittered: spread over the range, not pinned at one value.
            assert!(waits.iter().any(|w| *w < cap / 4), "retry {n}");
            assert!(waits.iter().any(|w| *w > cap * 3 / 4), "retry {n}");
        }
    }
}
