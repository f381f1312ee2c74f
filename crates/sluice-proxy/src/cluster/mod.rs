//! A cluster ready for traffic: composes endpoint selection (`lb`), transports (`pool`,
//! `upstream`, `upstream_tls`), circuit breakers (`breaker`) and outlier detection (`outlier`),
//! and owns the per-endpoint runtime state. That state (in-flight counts, connection pools,
//! ejections, circuit-breaker counters) lives in the `Registry`, outside the snapshot, keyed by
//! cluster and endpoint: a reload keeps it for unchanged endpoints and drops it for removed ones.
mod registry;
mod tracked;

pub use registry::Registry;
pub use tracked::Tracked;

use crate::breaker::{Gauge, Permit};
use crate::lb::{Endpoints as _, Selector};
use crate::outlier::{Ejected, Health, Outcome};
use crate::pool::{EndpointPool, Limits, Reuse};
use crate::upstream::UpstreamOptions;
use http::uri::Authority;
use sluice_compile::policy::cluster::Outlier;
use sluice_compile::snapshot::{Cluster, ClusterProblem};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One endpoint's runtime state; the same object across reloads while the endpoint stays.
#[derive(Debug)]
pub struct EndpointState {
    /// `address:port`, the upstream URI authority.
    pub authority: Authority,
    /// Requests in flight (for LEAST_REQUEST); decremented when the response body ends.
    active: AtomicU32,
    /// Kept-alive HTTP/1.1 connections (used by HTTP/1.1 clusters, plaintext or TLS).
    pub pool: Arc<EndpointPool>,
    pub health: Health,
}

/// A cluster's circuit-breaker counters and ejection count; kept across reloads.
#[derive(Debug, Default)]
pub struct ClusterState {
    pub connections: Arc<Gauge>,
    pub pending: Arc<Gauge>,
    pub requests: Arc<Gauge>,
    pub retries: Arc<Gauge>,
    pub ejected: Ejected,
    /// The current endpoints and outlier policy, for the interval's sweep.
    sweep: Mutex<Option<(Vec<Arc<EndpointState>>, Outlier)>>,
    sweeping: AtomicBool,
}

/// Why no endpoint was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPick {
    /// No endpoint, or every one ejected (503, flag UH).
    NoHealthy,
    /// `http2MaxRequests` requests are in flight (503, flag UO).
    Overflow,
}

#[derive(Debug)]
pub struct ClusterRuntime {
    pub cluster: Arc<Cluster>,
    /// Endpoints with a weight, in the snapshot's order.
    pub endpoints: Vec<Arc<EndpointState>>,
    /// Endpoints by locality priority, the first level preferred; one level without locality
    /// failover.
    levels: Vec<Level>,
    pub state: Arc<ClusterState>,
    /// Istio's metrics of the cluster.
    pub stats: Arc<crate::metrics::ClusterStats>,
    /// TLS clusters: the config their connections are made with.
    tls_connect: Option<crate::upstream_tls::TlsConnect>,
    /// The pooled client of an HTTP/2 cluster that speaks TLS to its endpoints.
    pub tls: Option<crate::upstream_tls::TlsClient>,
    /// A plaintext HTTP/2 cluster's own client when its `connectTimeout` is not the gateway's
    /// (others share one client).
    pub http2: Option<
        hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            crate::body::RequestBody,
        >,
    >,
    /// HTTP/1.1 (plaintext or TLS): requests go through the endpoints' own pools.
    pub pooled: bool,
    reuse: Reuse,
    connect_timeout: std::time::Duration,
    /// The registry's clock origin, for outlier detection.
    epoch: Instant,
}

/// Holds an endpoint's in-flight count (and the cluster's request slot) while a request is
/// outstanding.
#[derive(Debug)]
pub struct InFlight {
    runtime: Arc<ClusterRuntime>,
    index: usize,
    _request: Option<Permit>,
}

impl EndpointState {
    fn new(authority: Authority) -> EndpointState {
        EndpointState {
            pool: Arc::new(EndpointPool::new(authority.to_string())),
            authority,
            active: AtomicU32::new(0),
            health: Health::default(),
        }
    }
}

impl InFlight {
    pub fn endpoint(&self) -> &EndpointState {
        &self.runtime.endpoints[self.index]
    }

    /// The endpoint's position, for a retry to avoid it.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.runtime.endpoints[self.index]
            .active
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// The endpoints of one locality priority, and the selector over them.
#[derive(Debug)]
struct Level {
    /// Positions in `ClusterRuntime::endpoints`.
    indices: Vec<usize>,
    selector: Selector,
}

/// One level's endpoints as the selector sees them (level-local positions).
struct LevelView<'a> {
    runtime: &'a ClusterRuntime,
    indices: &'a [usize],
}

impl crate::lb::Endpoints for LevelView<'_> {
    fn load(&self, i: usize) -> u32 {
        self.runtime.load(self.indices[i])
    }

    fn usable(&self, i: usize) -> bool {
        self.runtime.usable(self.indices[i])
    }

    fn all_usable(&self) -> bool {
        self.runtime.all_usable()
    }
}

impl crate::lb::Endpoints for ClusterRuntime {
    fn load(&self, i: usize) -> u32 {
        self.endpoints[i].active.load(Ordering::Relaxed)
    }

    fn usable(&self, i: usize) -> bool {
        !self.endpoints[i].health.is_ejected()
    }

    fn all_usable(&self) -> bool {
        match &self.cluster.policy.outlier {
            None => true,
            Some(o) => {
                self.state.ejected.get() == 0
                    || self
                        .state
                        .ejected
                        .panic(self.endpoints.len(), o.min_health_percent)
            }
        }
    }
}

impl ClusterRuntime {
    /// The TLS config of a cluster that speaks TLS to its endpoints (DestinationRule `tls`,
    /// BackendTLSPolicy), for connections made outside the pools (TCP routes).
    pub fn tls_connect(&self) -> Option<&crate::upstream_tls::TlsConnect> {
        self.tls_connect.as_ref()
    }

    /// Chooses an endpoint and counts the request against it and the cluster's limit.
    /// `hash` is the request's consistent-hash key; `avoid` an endpoint a retry should not reuse.
    pub fn pick(
        self: &Arc<Self>,
        hash: Option<u64>,
        avoid: Option<usize>,
    ) -> Result<InFlight, NoPick> {
        let max = self.cluster.policy.pool.max_requests;
        // No limit (the default) costs no atomic read-modify-write.
        let request = if max == u32::MAX {
            None
        } else {
            Some(
                self.state
                    .requests
                    .try_acquire(max)
                    .ok_or(NoPick::Overflow)?,
            )
        };
        let index = self.choose(hash, avoid).ok_or(NoPick::NoHealthy)?;
        self.endpoints[index].active.fetch_add(1, Ordering::Relaxed);
        Ok(InFlight {
            runtime: self.clone(),
            index,
            _request: request,
        })
    }

    fn choose(&self, hash: Option<u64>, avoid: Option<usize>) -> Option<usize> {
        if let [only] = self.levels.as_slice() {
            // One level holds every endpoint in order: no mapping needed.
            return only.selector.choose(self, hash, avoid);
        }
        let first = self.level();
        // The chosen level first, then the others in order, should it have no usable endpoint.
        std::iter::once(first)
            .chain((0..self.levels.len()).filter(|l| *l != first))
            .find_map(|l| {
                let level = &self.levels[l];
                let view = LevelView {
                    runtime: self,
                    indices: &level.indices,
                };
                let avoid = avoid.and_then(|a| level.indices.iter().position(|i| *i == a));
                level
                    .selector
                    .choose(&view, hash, avoid)
                    .map(|i| level.indices[i])
            })
    }

    /// The locality level for a request: all traffic to the first while nothing is ejected;
    /// else Envoy's priority load (`lb::pick_level`).
    fn level(&self) -> usize {
        if self.all_usable() {
            return 0;
        }
        let healths = self.levels.iter().map(|level| {
            let healthy = level.indices.iter().filter(|i| self.usable(**i)).count();
            crate::lb::level_health(healthy, level.indices.len())
        });
        crate::lb::pick_level(healths, |n| rand::Rng::random_range(&mut rand::rng(), 0..n))
    }

    /// Counts a try's outcome for outlier detection (nothing without it); logs an ejection.
    pub fn record(&self, index: usize, outcome: Outcome) {
        let Some(policy) = &self.cluster.policy.outlier else {
            return;
        };
        let now = self.epoch.elapsed().as_millis() as u64;
        let endpoint = &self.endpoints[index];
        if let Some(e) = endpoint.health.record(
            outcome,
            policy,
            &self.state.ejected,
            self.endpoints.len(),
            now,
        ) {
            tracing::warn!(
                cluster = %self.cluster.name,
                endpoint = %endpoint.authority,
                reason = e.reason,
                ejections = e.count,
                duration_ms = e.duration.as_millis() as u64,
                "outlier ejected"
            );
        }
    }

    /// A retry slot of the cluster (`maxRetries`); `None` when the budget is spent.
    pub fn retry_permit(&self) -> Option<Option<Permit>> {
        let max = self.cluster.policy.pool.max_retries;
        if max == u32::MAX {
            return Some(None);
        }
        self.state.retries.try_acquire(max).map(Some)
    }

    /// What the HTTP/1.1 pool may use for one send.
    pub fn limits(&self) -> Limits<'_> {
        let pool = &self.cluster.policy.pool;
        Limits {
            connections: &self.state.connections,
            max_connections: pool.max_connections,
            pending: &self.state.pending,
            max_pending: pool.max_pending,
            connect_timeout: self.connect_timeout,
            keepalive: pool.tcp_keepalive.as_ref(),
            tls: self.tls_connect.as_ref(),
            reuse: self.reuse,
        }
    }

    pub fn connect_timeout(&self) -> std::time::Duration {
        self.connect_timeout
    }
}

/// Endpoints grouped by locality priority (`priorities[i]` of endpoint `i`), each group with its
/// own selector (and hash table).
fn levels(c: &Cluster, priorities: &[u32], weights: &[u32], names: &[String]) -> Vec<Level> {
    let top = priorities.iter().copied().max().unwrap_or(0);
    (0..=top)
        .map(|p| {
            let indices: Vec<usize> = (0..priorities.len())
                .filter(|i| priorities[*i] == p)
                .collect();
            let weights: Vec<u32> = indices.iter().map(|i| weights[*i]).collect();
            let names: Vec<String> = indices.iter().map(|i| names[*i].clone()).collect();
            let table = c
                .policy
                .hash
                .as_ref()
                .map(|h| crate::hash::Table::new(h.table, &names, &weights));
            Level {
                indices,
                selector: Selector::new(c.lb, weights, table),
            }
        })
        .filter(|l| !l.indices.is_empty() || top == 0)
        .collect()
}

fn runtime(
    c: &Arc<Cluster>,
    endpoints: Vec<Arc<EndpointState>>,
    levels: Vec<Level>,
    (state, stats): (Arc<ClusterState>, Arc<crate::metrics::ClusterStats>),
    opts: &UpstreamOptions,
    epoch: Instant,
) -> ClusterRuntime {
    let connect_timeout = c
        .policy
        .pool
        .connect_timeout
        .unwrap_or(opts.connect_timeout);
    // TLS material that cannot be used takes this cluster out (503, flag NC), not the whole
    // configuration.
    let connect = c
        .tls
        .as_ref()
        .map(|tls| crate::upstream_tls::connector(c, tls));
    let cluster = match &connect {
        Some(Err(e)) => {
            tracing::warn!(cluster = %c.name, "upstream TLS unusable, requests get 503: {e}");
            let problem = sluice_compile::tls::TlsProblem::Unusable(e.to_string());
            Arc::new(Cluster {
                problem: Some(ClusterProblem::Tls(problem)),
                ..(**c).clone()
            })
        }
        _ => c.clone(),
    };
    let pool = &cluster.policy.pool;
    let tls_connect = connect.and_then(Result::ok);
    ClusterRuntime {
        levels,
        pooled: !cluster.http2,
        tls: tls_connect
            .as_ref()
            .filter(|_| cluster.http2)
            .map(|t| crate::upstream_tls::client(t, opts, connect_timeout)),
        http2: (cluster.http2 && cluster.tls.is_none() && connect_timeout != opts.connect_timeout)
            .then(|| crate::upstream::http2_client(opts, connect_timeout)),
        tls_connect,
        reuse: Reuse {
            idle_timeout: pool.idle_timeout.unwrap_or(opts.pool_idle_timeout),
            max_idle: opts.max_idle_per_endpoint,
            max_requests: pool.max_requests_per_connection,
            max_duration: pool.max_connection_duration,
        },
        connect_timeout,
        cluster,
        endpoints,
        state,
        stats,
        epoch,
    }
}
