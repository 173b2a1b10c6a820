//! Load balancing: which healthy host of a cluster gets the next request.
//!
//! LEAST_REQUEST (power of two choices, Envoy's and Istio's default), ROUND_ROBIN and
//! RANDOM; host weights are honoured by all three. Pure functions over [`Endpoints`] so
//! their distributions are unit-tested.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rand::Rng;

use crate::model::{Endpoints, Host, LbPolicy};

/// Picks a healthy host, or `None` when the cluster has none (503 UH).
pub fn pick<'a, R: Rng + ?Sized>(
    eps: &'a Endpoints,
    policy: LbPolicy,
    rng: &mut R,
) -> Option<&'a Arc<Host>> {
    let n = eps.healthy.len();
    if n == 0 {
        return None;
    }
    if n == 1 {
        return Some(&eps.hosts[eps.healthy[0]]);
    }
    let idx = match policy {
        LbPolicy::RoundRobin => {
            let c = eps.cursor.fetch_add(1, Ordering::Relaxed);
            if eps.weighted {
                by_weight(eps, c % eps.healthy_weight)
            } else {
                eps.healthy[(c % n as u64) as usize]
            }
        }
        LbPolicy::Random | LbPolicy::ClusterProvided => random(eps, rng),
        LbPolicy::LeastRequest => {
            if eps.weighted {
                // Envoy switches to weighted scheduling when weights differ; a weighted
                // draw gives the same long-run split.
                random(eps, rng)
            } else {
                let a = eps.healthy[rng.random_range(0..n)];
                let mut b = eps.healthy[rng.random_range(0..n - 1)];
                if b == a {
                    b = eps.healthy[n - 1];
                }
                let (la, lb) = (
                    eps.hosts[a].active.load(Ordering::Relaxed),
                    eps.hosts[b].active.load(Ordering::Relaxed),
                );
                if lb < la {
                    b
                } else {
                    a
                }
            }
        }
    };
    Some(&eps.hosts[idx])
}

/// Counts a request as active on `host` for as long as the guard lives, when `policy`
/// reads the counts (unweighted LEAST_REQUEST over more than one host). Otherwise
/// nothing is counted: the count and the host's reference count are written by every
/// worker, and a write to memory another core wrote last waits for that core's copy.
pub fn count_active(eps: &Endpoints, policy: LbPolicy, host: &Arc<Host>) -> Option<ActiveGuard> {
    (policy == LbPolicy::LeastRequest && !eps.weighted && eps.healthy.len() > 1)
        .then(|| ActiveGuard::new(host.clone()))
}

fn random<R: Rng + ?Sized>(eps: &Endpoints, rng: &mut R) -> usize {
    if eps.weighted {
        by_weight(eps, rng.random_range(0..eps.healthy_weight))
    } else {
        eps.healthy[rng.random_range(0..eps.healthy.len())]
    }
}

/// The healthy host whose cumulative weight range holds `point`.
fn by_weight(eps: &Endpoints, mut point: u64) -> usize {
    for &i in &eps.healthy {
        let w = u64::from(eps.hosts[i].weight);
        if point < w {
            return i;
        }
        point -= w;
    }
    eps.healthy[eps.healthy.len() - 1]
}

/// Picks one of weighted targets by weight (`total` = sum of weights).
pub fn pick_weighted<'a, T, R: Rng + ?Sized>(
    items: &'a [T],
    weight: impl Fn(&T) -> u32,
    total: u64,
    rng: &mut R,
) -> Option<&'a T> {
    let mut point = rng.random_range(0..total.max(1));
    for it in items {
        let w = u64::from(weight(it));
        if point < w {
            return Some(it);
        }
        point -= w;
    }
    items.last()
}

/// Guard counting a request as active on a host for LEAST_REQUEST.
pub struct ActiveGuard(pub Arc<Host>);

impl ActiveGuard {
    pub fn new(host: Arc<Host>) -> Self {
        host.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(host)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn eps(weights: &[(u32, bool)]) -> Endpoints {
        let hosts = weights
            .iter()
            .enumerate()
            .map(|(i, (w, healthy))| {
                Arc::new(Host {
                    addr: format!("127.0.0.{}:80", i + 1).parse().unwrap(),
                    weight: *w,
                    healthy: *healthy,
                    locality: None,
                    peer: None,
                    active: AtomicUsize::new(0),
                })
            })
            .collect();
        Endpoints::from_hosts("c".into(), hosts)
    }

    fn counts(e: &Endpoints, p: LbPolicy, n: usize) -> Vec<usize> {
        let mut rng = rand::rng();
        let mut out = vec![0; e.hosts.len()];
        for _ in 0..n {
            let h = pick(e, p, &mut rng).unwrap();
            out[e.hosts.iter().position(|x| Arc::ptr_eq(x, h)).unwrap()] += 1;
        }
        out
    }

    #[test]
    fn requests_are_counted_only_where_least_request_reads_the_counts() {
        let two = eps(&[(1, true), (1, true)]);
        let h = &two.hosts[0];
        let g = count_active(&two, LbPolicy::LeastRequest, h);
        assert_eq!(h.active.load(Ordering::Relaxed), 1);
        drop(g);
        assert_eq!(h.active.load(Ordering::Relaxed), 0);
        let one = eps(&[(1, true)]);
        let weighted = eps(&[(1, true), (3, true)]);
        for (e, p) in [
            (&two, LbPolicy::RoundRobin),
            (&two, LbPolicy::Random),
            (&one, LbPolicy::LeastRequest),
            (&weighted, LbPolicy::LeastRequest),
        ] {
            assert!(count_active(e, p, &e.hosts[0]).is_none(), "{p:?}");
        }
    }

    #[test]
    fn round_robin_is_exact() {
        let e = eps(&[(1, true), (1, true), (1, true)]);
        assert_eq!(counts(&e, LbPolicy::RoundRobin, 300), vec![100, 100, 100]);
    }

    #[test]
    fn weights_are_honoured_by_every_policy() {
        let e = eps(&[(1, true), (3, true)]);
        for p in [
            LbPolicy::RoundRobin,
            LbPolicy::Random,
            LbPolicy::LeastRequest,
        ] {
            let c = counts(&e, p, 4000);
            assert!((800..1200).contains(&c[0]), "{p:?}: {c:?}");
        }
    }

    #[test]
    fn unhealthy_hosts_are_never_picked_and_none_means_uh() {
        let e = eps(&[(1, false), (1, true)]);
        for p in [
            LbPolicy::RoundRobin,
            LbPolicy::Random,
            LbPolicy::LeastRequest,
        ] {
            assert_eq!(counts(&e, p, 100)[0], 0);
        }
        let e = eps(&[(1, false)]);
        assert!(pick(&e, LbPolicy::LeastRequest, &mut rand::rng()).is_none());
    }

    #[test]
    fn least_request_prefers_idle_hosts() {
        let e = eps(&[(1, true), (1, true)]);
        e.hosts[0].active.store(10, Ordering::Relaxed);
        // With two hosts both choices are always distinct, so the idle one always wins.
        assert_eq!(counts(&e, LbPolicy::LeastRequest, 200), vec![0, 200]);
    }

    #[test]
    fn random_spreads_evenly() {
        let e = eps(&[(1, true), (1, true), (1, true), (1, true)]);
        for c in counts(&e, LbPolicy::Random, 4000) {
            assert!((800..1200).contains(&c), "{c}");
        }
    }
}
