//! Endpoint choice for one cluster: LEAST_REQUEST (two random choices), ROUND_ROBIN and RANDOM,
//! each honouring endpoint weights. Lock-free: counters are atomics, the endpoint list is
//! immutable for the life of a snapshot.
use http::uri::Authority;
use rand::Rng;
use sluice_compile::select::pick_weighted;
use sluice_compile::snapshot::{Cluster, LbPolicy, WeightedCluster};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

/// Longest precomputed round-robin schedule; beyond it weights are served in blocks.
const MAX_SCHEDULE: u64 = 4096;

#[derive(Debug)]
pub struct Endpoint {
    /// `address:port`, the upstream URI authority and connection-pool key.
    pub authority: Authority,
    pub weight: u32,
    /// Requests in flight (for LEAST_REQUEST); decremented when the response body ends.
    active: AtomicU32,
    /// Kept-alive HTTP/1.1 connections (plaintext HTTP/1.1 clusters; others use shared clients).
    pub pool: Option<Arc<crate::pool::EndpointPool>>,
}

#[derive(Debug)]
pub struct Balancer {
    pub cluster: Arc<Cluster>,
    pub endpoints: Vec<Endpoint>,
    total_weight: u64,
    equal_weights: bool,
    /// Smooth weighted round-robin order (indices), when weights differ.
    schedule: Vec<u32>,
    next: AtomicUsize,
    /// The pooled client of a cluster that speaks TLS to its endpoints (they have no own pool).
    pub tls: Option<crate::upstream_tls::TlsClient>,
}

/// Holds an endpoint's in-flight count up while a request is outstanding.
#[derive(Debug)]
pub struct InFlight {
    balancer: Arc<Balancer>,
    index: usize,
}

impl InFlight {
    pub fn endpoint(&self) -> &Endpoint {
        &self.balancer.endpoints[self.index]
    }

    /// The endpoint's position, for a retry to avoid it.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.balancer.endpoints[self.index]
            .active
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Balancer {
    pub fn new(cluster: Arc<Cluster>) -> Balancer {
        Balancer::with_pools(cluster, |_| None)
    }

    /// `pool` gives the connection pool of an endpoint (`address:port`), if it has one.
    pub fn with_pools(
        cluster: Arc<Cluster>,
        pool: impl Fn(&str) -> Option<Arc<crate::pool::EndpointPool>>,
    ) -> Balancer {
        let endpoints: Vec<Endpoint> = cluster
            .endpoints
            .iter()
            .filter(|e| e.weight > 0)
            .filter_map(|e| {
                let authority = if e.address.contains(':') {
                    format!("[{}]:{}", e.address, e.port)
                } else {
                    format!("{}:{}", e.address, e.port)
                };
                Some(Endpoint {
                    pool: pool(&authority),
                    authority: authority.parse().ok()?,
                    weight: e.weight,
                    active: AtomicU32::new(0),
                })
            })
            .collect();
        let total_weight: u64 = endpoints.iter().map(|e| u64::from(e.weight)).sum();
        let equal_weights = endpoints.windows(2).all(|w| w[0].weight == w[1].weight);
        let schedule = if equal_weights || total_weight > MAX_SCHEDULE {
            Vec::new()
        } else {
            smooth_schedule(&endpoints, total_weight)
        };
        Balancer {
            cluster,
            endpoints,
            total_weight,
            equal_weights,
            schedule,
            next: AtomicUsize::new(rand::rng().random_range(0..usize::MAX / 2)),
            tls: None,
        }
    }

    /// Chooses an endpoint and counts the request against it; `None` when the cluster has no
    /// endpoint (503, flag UH). `avoid` names an endpoint a retry should not reuse if another exists.
    pub fn pick(self: &Arc<Self>, avoid: Option<usize>) -> Option<InFlight> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let mut index = self.choose();
        if let Some(a) = avoid {
            if index == a && n > 1 {
                index = (index + 1 + rand::rng().random_range(0..n - 1)) % n;
            }
        }
        self.endpoints[index].active.fetch_add(1, Ordering::Relaxed);
        Some(InFlight {
            balancer: self.clone(),
            index,
        })
    }

    fn choose(&self) -> usize {
        let n = self.endpoints.len();
        if n == 1 {
            return 0;
        }
        match self.cluster.lb {
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
                    let e = &self.endpoints[i];
                    (u64::from(e.active.load(Ordering::Relaxed)) + 1) * self.total_weight
                        / u64::from(e.weight)
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
            return rand::rng().random_range(0..self.endpoints.len());
        }
        self.by_weight(rand::rng().random_range(0..self.total_weight))
    }

    /// The endpoint whose cumulative weight range holds `point` (`0..total_weight`).
    fn by_weight(&self, mut point: u64) -> usize {
        for (i, e) in self.endpoints.iter().enumerate() {
            let w = u64::from(e.weight);
            if point < w {
                return i;
            }
            point -= w;
        }
        self.endpoints.len() - 1
    }

    /// Requests in flight on endpoint `i`.
    pub fn active(&self, i: usize) -> u32 {
        self.endpoints[i].active.load(Ordering::Relaxed)
    }
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
fn smooth_schedule(endpoints: &[Endpoint], total: u64) -> Vec<u32> {
    let mut current: Vec<i64> = vec![0; endpoints.len()];
    (0..total)
        .map(|_| {
            for (c, e) in current.iter_mut().zip(endpoints) {
                *c += i64::from(e.weight);
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
    use sluice_compile::snapshot::ClusterEndpoint;

    fn balancer(lb: LbPolicy, weights: &[u32]) -> Arc<Balancer> {
        let endpoints = weights
            .iter()
            .enumerate()
            .map(|(i, w)| ClusterEndpoint {
                address: "127.0.0.1".into(),
                port: 1000 + i as u32,
                weight: *w,
            })
            .collect();
        Arc::new(Balancer::new(Arc::new(Cluster {
            name: "c".into(),
            host: "h".into(),
            port: 80,
            subset: String::new(),
            endpoints,
            lb,
            problem: None,
            http2: false,
            tls: None,
            tcp_idle_timeout: std::time::Duration::from_secs(3600),
        })))
    }

    fn counts(b: &Arc<Balancer>, n: usize) -> Vec<usize> {
        let mut c = vec![0; b.endpoints.len()];
        for _ in 0..n {
            let f = b.pick(None).unwrap();
            c[f.index] += 1;
        }
        c
    }

    #[test]
    fn round_robin_is_exact_and_weighted_smoothly() {
        assert_eq!(
            counts(&balancer(LbPolicy::RoundRobin, &[1, 1, 1]), 300),
            [100; 3]
        );
        let b = balancer(LbPolicy::RoundRobin, &[5, 1, 1]);
        assert_eq!(b.schedule, [0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(counts(&b, 700), [500, 100, 100]);
    }

    #[test]
    fn random_follows_weights() {
        let c = counts(&balancer(LbPolicy::Random, &[3, 1]), 40_000);
        let share = c[0] as f64 / 40_000.0;
        assert!((0.73..0.77).contains(&share), "{c:?}");
    }

    #[test]
    fn least_request_prefers_idle_endpoints() {
        let b = balancer(LbPolicy::LeastRequest, &[1, 1]);
        let held: Vec<_> = (0..10).map(|_| b.pick(None).unwrap()).collect();
        // Whatever the first picks did, with two endpoints P2C always sees both: loads balance.
        let diff = b.active(0) as i64 - b.active(1) as i64;
        assert!(diff.abs() <= 1, "{} vs {}", b.active(0), b.active(1));
        drop(held);
        assert_eq!((b.active(0), b.active(1)), (0, 0));
    }

    #[test]
    fn zero_weight_endpoints_and_empty_clusters() {
        assert!(balancer(LbPolicy::LeastRequest, &[]).pick(None).is_none());
        let b = balancer(LbPolicy::RoundRobin, &[0, 2]);
        assert_eq!(b.endpoints.len(), 1);
    }

    #[test]
    fn a_retry_avoids_the_previous_endpoint() {
        let b = balancer(LbPolicy::Random, &[1, 1, 1]);
        for _ in 0..100 {
            assert_ne!(b.pick(Some(1)).unwrap().index, 1);
        }
    }
}
