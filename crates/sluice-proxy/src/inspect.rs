//! Read-only views of the clusters as the data plane holds them, for the admin server's
//! `/clusters` and `/config_dump`: per cluster its circuit-breaker limits and counters, per
//! endpoint its weight, priority, locality, requests in flight and outlier ejection. Nothing
//! here changes state or takes a lock on the request path.
//!
//! What is not shown, because the data plane does not expose it outside its own modules: an
//! endpoint's open and idle pooled connections (`pool::EndpointPool` keeps them private; the
//! cluster's open connections are shown) and its ejection count (`outlier::Health`).
use crate::cluster::ClusterRuntime;
use crate::dataplane::Dataplane;
use crate::lb::Endpoints as _;
use crate::server::Gateway;
use sluice_compile::snapshot::Cluster;
use sluice_compile::{FastMap, Snapshot};
use std::collections::HashMap;
use std::sync::Arc;

/// One cluster of the snapshot, with its runtime counters when the data plane's are at hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub name: String,
    /// Circuit breakers (`u32::MAX`: no limit), as Envoy lists them per cluster.
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_requests: u32,
    pub max_retries: u32,
    pub counters: Option<ClusterCounters>,
    /// In the snapshot's order.
    pub endpoints: Vec<EndpointView>,
}

/// A cluster's runtime counters (kept across reloads while the cluster stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterCounters {
    /// Open HTTP/1.1 and TCP connections to the cluster's endpoints.
    pub connections: u32,
    /// Requests waiting for a connection.
    pub pending: u32,
    /// Endpoints ejected by outlier detection now.
    pub ejected: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointView {
    /// `address:port` (`[v6]:port`), as the upstream authority.
    pub address: String,
    pub weight: u32,
    pub priority: u32,
    /// `region/zone/subzone`; empty: unknown.
    pub locality: String,
    /// `None` where the endpoint takes no traffic (weight 0) or no runtime state is at hand.
    pub runtime: Option<EndpointRuntime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointRuntime {
    /// Requests in flight (what LEAST_REQUEST balances on).
    pub in_flight: u32,
    /// Ejected by outlier detection (Envoy's `/failed_outlier_check`).
    pub ejected: bool,
}

impl Dataplane {
    /// Every cluster of this data plane's snapshot, sorted by name, with runtime state.
    pub fn clusters_view(&self) -> Vec<ClusterView> {
        view(&self.snapshot, Some(&self.clusters))
    }
}

impl Gateway {
    /// Every cluster of the snapshot now serving, sorted by name, with runtime state.
    pub fn clusters_view(&self) -> Vec<ClusterView> {
        self.shared.current.load().clusters_view()
    }
}

fn view(
    snapshot: &Snapshot,
    runtimes: Option<&FastMap<String, Arc<ClusterRuntime>>>,
) -> Vec<ClusterView> {
    snapshot
        .clusters
        .values()
        .map(|c| cluster(c, runtimes.and_then(|r| r.get(&c.name))))
        .collect()
}

/// The endpoint's key as the registry spells it.
fn authority(address: &str, port: u32) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

fn cluster(c: &Cluster, runtime: Option<&Arc<ClusterRuntime>>) -> ClusterView {
    // The runtime holds only endpoints with a weight, so they are found by address.
    let positions: HashMap<String, usize> = runtime
        .map(|r| {
            r.endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| (e.authority.to_string(), i))
                .collect()
        })
        .unwrap_or_default();
    let pool = &c.policy.pool;
    ClusterView {
        name: c.name.clone(),
        max_connections: pool.max_connections,
        max_pending_requests: pool.max_pending,
        max_requests: pool.max_requests,
        max_retries: pool.max_retries,
        counters: runtime.map(|r| ClusterCounters {
            connections: r.state.connections.get(),
            pending: r.state.pending.get(),
            ejected: r.state.ejected.get(),
        }),
        endpoints: c
            .endpoints
            .iter()
            .map(|e| {
                let address = authority(&e.address, e.port);
                let state = runtime.zip(positions.get(&address));
                EndpointView {
                    weight: e.weight,
                    priority: e.priority,
                    locality: e.locality.clone(),
                    runtime: state.map(|(r, &i)| EndpointRuntime {
                        in_flight: r.load(i),
                        ejected: !r.usable(i),
                    }),
                    address,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outlier::Outcome;
    use sluice_compile::policy::cluster::{ClusterPolicy, Outlier};
    use sluice_compile::snapshot::{ClusterEndpoint, LbPolicy};
    use std::time::Duration;

    fn snapshot() -> Arc<Snapshot> {
        let endpoint = |port, weight| ClusterEndpoint {
            address: "127.0.0.1".into(),
            port,
            weight,
            locality: "eu/a/1".into(),
            priority: 0,
        };
        let outlier = Outlier {
            consecutive_5xx: Some(1),
            consecutive_gateway: None,
            split_local_origin: false,
            consecutive_local_origin: None,
            interval: Duration::from_secs(3600),
            base_ejection_time: Duration::from_secs(3600),
            max_ejection_percent: 100,
            min_health_percent: 0,
        };
        let mut s = Snapshot::default();
        s.clusters.insert(
            "c".into(),
            Arc::new(Cluster {
                name: "c".into(),
                host: "h".into(),
                port: 80,
                subset: String::new(),
                endpoints: vec![endpoint(1, 1), endpoint(2, 3), endpoint(3, 0)],
                lb: LbPolicy::RoundRobin,
                problem: None,
                http2: false,
                tls: None,
                policy: ClusterPolicy {
                    outlier: Some(outlier),
                    ..Default::default()
                },
                destination: Default::default(),
            }),
        );
        Arc::new(s)
    }

    /// In-flight requests and ejections show as they happen, and go when they end.
    #[tokio::test]
    async fn endpoints_show_requests_in_flight_and_ejections() {
        let registry = crate::cluster::Registry::default();
        let metrics = crate::metrics::Metrics::new(Default::default());
        let dataplane = Dataplane::new(snapshot(), &Default::default(), &registry, &metrics);
        let runtime = dataplane.clusters["c"].clone();
        let held = runtime.pick(None, None).unwrap();
        let busy = held.index();
        let view = &dataplane.clusters_view()[0];
        assert_eq!(view.name, "c");
        assert_eq!(view.max_connections, u32::MAX);
        let [one, two, zero] = &view.endpoints[..] else {
            panic!("{view:?}")
        };
        assert_eq!((one.address.as_str(), one.weight), ("127.0.0.1:1", 1));
        assert_eq!((two.weight, two.locality.as_str()), (3, "eu/a/1"));
        assert_eq!(zero.runtime, None, "weight 0 takes no traffic");
        let in_flight: Vec<u32> = [one, two]
            .iter()
            .map(|e| e.runtime.unwrap().in_flight)
            .collect();
        assert_eq!(in_flight.iter().sum::<u32>(), 1);
        assert_eq!(in_flight[busy], 1);
        drop(held);
        runtime.record(busy, Outcome::Status(503));
        let view = &dataplane.clusters_view()[0];
        let e = view.endpoints[busy].runtime.unwrap();
        assert_eq!((e.in_flight, e.ejected), (0, true));
        assert_eq!(view.counters.unwrap().ejected, 1);
        assert!(!view.endpoints[1 - busy].runtime.unwrap().ejected);
    }

    /// Through the gateway, the serving snapshot's endpoints with their runtime state.
    #[tokio::test]
    async fn the_gateway_view_has_the_snapshots_endpoints() {
        let gateway = Gateway::new(Default::default());
        assert!(gateway.clusters_view().is_empty());
        gateway.apply(snapshot()).unwrap();
        let view = gateway.clusters_view();
        assert_eq!(view[0].endpoints.len(), 3);
        assert_eq!(view[0].counters.map(|c| c.ejected), Some(0));
        assert!(view[0].endpoints[0].runtime.is_some());
    }
}
