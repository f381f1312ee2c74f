//! Endpoint choice for one cluster, pure: LEAST_REQUEST (two random choices), ROUND_ROBIN and
//! RANDOM honouring endpoint weights, or a consistent-hash table. It sees endpoints only as
//! indices, weights, loads and whether each may be used (ejected ones may not); connections and
//! counters belong to the cluster (`cluster`). Lock-free: the cursor is an atomic, the rest is
//! immutable for the life of a snapshot.
use crate::hash::Table;
use rand::Rng;
use sluice_compile::select::pick_weighted;
use sluice_compile::snapshot::{LbPolicy, WeightedCluster};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Longest precomputed round-robin schedule; beyond it weights are served in blocks.
const MAX_SCHEDULE: u64 = 4096;

#[derive(Debug)]
pub struct Selector {
    policy: LbPolicy,
    weights: Vec<u32>,
    total_weight: u64,
    equal_weights: bool,
    /// Smooth weighted round-robin order (indices), when weights differ.
    schedule: Vec<u32>,
    next: AtomicUsize,
    /// Consistent hashing, when the DestinationRule asks for it.
    table: Option<Table>,
}

/// What the selector needs to know of the endpoints at the moment of a pick.
pub trait Endpoints {
    /// Requests in flight on endpoint `i`.
    fn load(&self, i: usize) -> u32;
    /// Whether endpoint `i` may take the request (not ejected).
    fn usable(&self, i: usize) -> bool;
    /// Whether every endpoint is usable (no ejection): the common case, checked once.
    fn all_usable(&self) -> bool;
}

impl Selector {
    /// `weights[i] > 0` for every endpoint; `table` when hashing.
    pub fn new(policy: LbPolicy, weights: Vec<u32>, table: Option<Table>) -> Selector {
        let total_weight: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let equal_weights = weights.windows(2).all(|w| w[0] == w[1]);
        let schedule = if equal_weights || total_weight > MAX_SCHEDULE {
            Vec::new()
        } else {
            smooth_schedule(&weights, total_weight)
        };
        Selector {
            policy,
            weights,
            total_weight,
            equal_weights,
            schedule,
            next: AtomicUsize::new(rand::rng().random_range(0..usize::MAX / 2)),
            table,
        }
    }

    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Chooses an endpoint; `None` when none may be used. `hash` is the request's key when the
    /// cluster hashes (a request without one is balanced as usual). `avoid` names an endpoint a
    /// retry should not reuse if another exists (not with hashing: a key keeps its endpoint).
    pub fn choose(
        &self,
        eps: &impl Endpoints,
        hash: Option<u64>,
        avoid: Option<usize>,
    ) -> Option<usize> {
        let n = self.weights.len();
        if n == 0 {
            return None;
        }
        let all = eps.all_usable();
        if let (Some(table), Some(h)) = (&self.table, hash) {
            return table.lookup(h, |i| all || eps.usable(i));
        }
        let mut index = self.balance(eps);
        if let Some(a) = avoid {
            if index == a && n > 1 {
                index = (index + 1 + rand::rng().random_range(0..n - 1)) % n;
            }
        }
        if all || eps.usable(index) {
            return Some(index);
        }
        // Some endpoints are ejected: the next usable one from a random start.
        let start = rand::rng().random_range(0..n);
        (0..n).map(|k| (start + k) % n).find(|&i| eps.usable(i))
    }

    fn balance(&self, eps: &impl Endpoints) -> usize {
        let n = self.weights.len();
        if n == 1 {
            return 0;
        }
        match self.policy {
            LbPolicy::RoundRobin => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed);
                if self.equal_weights {
                    turn % n
                } else if !self.schedule.is_empty() {
                    self.schedule[turn % self.schedule.len()] as usize
                } else {
                    self.by_weight(turn as u64 % self.total_weight)
                }
            }
            LbPolicy::Random => self.random_by_weight(),
            LbPolicy::LeastRequest => {
                let (a, b) = if self.equal_weights {
                    let mut rng = rand::rng();
                    let a = rng.random_range(0..n);
                    let b = (a + 1 + rng.random_range(0..n - 1)) % n;
                    (a, b)
                } else {
                    (self.random_by_weight(), self.random_by_weight())
                };
                // Fewer requests in flight per unit of weight wins.
                let load = |i: usize| {
                    (u64::from(eps.load(i)) + 1) * self.total_weight / u64::from(self.weights[i])
                };
                if load(b) < load(a) {
                    b
                } else {
                    a
                }
            }
        }
    }

    fn random_by_weight(&self) -> usize {
        if self.equal_weights {
            return rand::rng().random_range(0..self.weights.len());
        }
        self.by_weight(rand::rng().random_range(0..self.total_weight))
    }

    /// The endpoint whose cumulative weight range holds `point` (`0..total_weight`).
    fn by_weight(&self, mut point: u64) -> usize {
        for (i, w) in self.weights.iter().enumerate() {
            let w = u64::from(*w);
            if point < w {
                return i;
            }
            point -= w;
        }
        self.weights.len() - 1
    }
}

/// Envoy's overprovisioning factor (1.4, in per mille): a locality level keeps all its traffic
/// while at least 1/1.4 ≈ 71% of its endpoints are healthy.
const OVERPROVISIONING: usize = 1400;

/// A level's health in per mille: its healthy share × 1.4, at most all.
pub fn level_health(healthy: usize, total: usize) -> usize {
    (OVERPROVISIONING * healthy / total.max(1)).min(1000)
}

/// Envoy's priority load: each level in order takes up to its health of what the levels before
/// it left; when together they are under 100%, their shares are scaled up. `roll(n)` is a random
/// number in `0..n`.
pub fn pick_level(
    healths: impl Iterator<Item = usize> + Clone,
    roll: impl FnOnce(usize) -> usize,
) -> usize {
    let cap = healths.clone().sum::<usize>().min(1000);
    if cap == 0 {
        return 0;
    }
    let r = roll(cap);
    let mut consumed = 0;
    for (level, health) in healths.enumerate() {
        consumed += health.min(cap - consumed);
        if r < consumed {
            return level;
        }
    }
    0
}

/// A route's destination by weight (`weighted` is never empty; one destination takes all).
pub fn pick_destination(weighted: &[WeightedCluster], total_weight: u32) -> &WeightedCluster {
    match weighted.len() {
        1 => &weighted[0],
        _ => pick_weighted(weighted, rand::rng().random_range(0..total_weight.max(1))),
    }
}

/// nginx's smooth weighted round robin: weights 5,1,1 give a,a,b,a,c,a,a rather than
/// a,a,a,a,a,b,c, so a heavy endpoint does not get bursts.
fn smooth_schedule(weights: &[u32], total: u64) -> Vec<u32> {
    let mut current: Vec<i64> = vec![0; weights.len()];
    (0..total)
        .map(|_| {
            for (c, w) in current.iter_mut().zip(weights) {
                *c += i64::from(*w);
            }
            let (best, _) = current
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
                .expect("endpoints is not empty");
            current[best] -= total as i64;
            best as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Loads and ejections of a test's endpoints.
    struct Fake {
        load: Vec<AtomicU32>,
        ejected: Vec<bool>,
    }

    impl Endpoints for Fake {
        fn load(&self, i: usize) -> u32 {
            self.load[i].load(Ordering::Relaxed)
        }
        fn usable(&self, i: usize) -> bool {
            !self.ejected[i]
        }
        fn all_usable(&self) -> bool {
            !self.ejected.contains(&true)
        }
    }

    fn fake(n: usize) -> Fake {
        Fake {
            load: (0..n).map(|_| AtomicU32::new(0)).collect(),
            ejected: vec![false; n],
        }
    }

    fn counts(s: &Selector, eps: &Fake, n: usize) -> Vec<usize> {
        let mut c = vec![0; s.len()];
        for _ in 0..n {
            c[s.choose(eps, None, None).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn round_robin_is_exact_and_weighted_smoothly() {
        let s = Selector::new(LbPolicy::RoundRobin, vec![1, 1, 1], None);
        assert_eq!(counts(&s, &fake(3), 300), [100; 3]);
        let s = Selector::new(LbPolicy::RoundRobin, vec![5, 1, 1], None);
        assert_eq!(s.schedule, [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(counts(&s, &fake(3), 700), [500, 100, 100]);
    }

    #[test]
    fn random_follows_weights() {
        let s = Selector::new(LbPolicy::Random, vec![3, 1], None);
        let c = counts(&s, &fake(2), 40_000);
        let share = c[0] as f64 / 40_000.0;
        assert!((0.73..0.77).contains(&share), "{c:?}");
    }

    #[test]
    fn least_request_prefers_idle_endpoints() {
        let s = Selector::new(LbPolicy::LeastRequest, vec![1, 1], None);
        let eps = fake(2);
        for _ in 0..10 {
            let i = s.choose(&eps, None, None).unwrap();
            eps.load[i].fetch_add(1, Ordering::Relaxed);
        }
        // With two endpoints P2C always sees both: loads balance.
        let diff = eps.load(0) as i64 - eps.load(1) as i64;
        assert!(diff.abs() <= 1, "{} vs {}", eps.load(0), eps.load(1));
    }

    #[test]
    fn empty_clusters_and_ejected_endpoints() {
        let s = Selector::new(LbPolicy::LeastRequest, vec![], None);
        assert!(s.choose(&fake(0), None, None).is_none());
        let s = Selector::new(LbPolicy::RoundRobin, vec![1, 1, 1], None);
        let mut eps = fake(3);
        eps.ejected[1] = true;
        assert_eq!(counts(&s, &eps, 300)[1], 0);
        eps.ejected = vec![true; 3];
        assert!(s.choose(&eps, None, None).is_none());
    }

    #[test]
    fn priority_load_spills_only_below_the_overprovisioned_health() {
        let level = |h: &[(usize, usize)], roll: usize| {
            pick_level(h.iter().map(|(a, t)| level_health(*a, *t)), |_| roll)
        };
        // 3 of 4 healthy × 1.4 is still over 100%: everything stays on the first level.
        assert_eq!(level(&[(3, 4), (4, 4)], 999), 0);
        // 2 of 4: 70% stays, 30% spills to the next level.
        assert_eq!(level(&[(2, 4), (4, 4)], 699), 0);
        assert_eq!(level(&[(2, 4), (4, 4)], 700), 1);
        // Nothing healthy first: all to the second, whatever its own health.
        assert_eq!(level(&[(0, 4), (1, 4)], 0), 1);
        assert_eq!(level(&[(0, 4), (1, 4)], 349), 1);
        assert_eq!(level(&[(0, 4), (0, 4)], 0), 0);
    }

    #[test]
    fn a_retry_avoids_the_previous_endpoint() {
        let s = Selector::new(LbPolicy::Random, vec![1, 1, 1], None);
        for _ in 0..100 {
            assert_ne!(s.choose(&fake(3), None, Some(1)).unwrap(), 1);
        }
    }
}
