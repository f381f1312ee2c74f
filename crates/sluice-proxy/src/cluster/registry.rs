//! Where runtime state lives: by cluster name and endpoint `address:port`, outside any
//! snapshot. Building a snapshot's clusters keeps the state of the endpoints that stay and
//! forgets the rest; a task per cluster with outlier detection returns ejected endpoints.
use super::{levels, runtime, ClusterRuntime, ClusterState, EndpointState};
use crate::upstream::UpstreamOptions;
use http::uri::Authority;
use sluice_compile::policy::cluster::Outlier;
use sluice_compile::{FastMap, Snapshot};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

/// Runtime state by cluster and endpoint, shared by every dataplane of a gateway; consulted
/// only when a snapshot is applied.
pub struct Registry {
    clusters: Mutex<HashMap<String, Entry>>,
    epoch: Instant,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            clusters: Mutex::default(),
            epoch: Instant::now(),
        }
    }
}

#[derive(Default)]
struct Entry {
    state: Arc<ClusterState>,
    endpoints: HashMap<String, Arc<EndpointState>>,
    /// How the endpoints are reached (protocol, TLS settings): pooled connections made one way
    /// must not serve another.
    transport: u64,
}

impl Registry {
    /// The clusters of `snapshot` ready for traffic. State of clusters and endpoints the
    /// snapshot no longer has is forgotten (requests still holding it finish with it).
    pub fn build(
        &self,
        snapshot: &Snapshot,
        opts: &UpstreamOptions,
        metrics: &crate::metrics::Metrics,
    ) -> FastMap<String, Arc<ClusterRuntime>> {
        let mut registry = self.clusters.lock().expect("registry");
        let mut old = std::mem::take(&mut *registry);
        let mut out = FastMap::default();
        for (name, c) in &snapshot.clusters {
            let mut previous = old.remove(name).unwrap_or_default();
            let transport = crate::hash::hash64(format!("{}{:?}", c.http2, c.tls).as_bytes(), 0);
            if previous.transport != transport {
                retire(&previous);
                previous.endpoints.clear();
            }
            let mut entry = Entry {
                state: previous.state.clone(),
                endpoints: HashMap::new(),
                transport,
            };
            let mut endpoints = Vec::new();
            let mut weights = Vec::new();
            let mut names = Vec::new();
            let mut priorities = Vec::new();
            for e in c.endpoints.iter().filter(|e| e.weight > 0) {
                let key = if e.address.contains(':') {
                    format!("[{}]:{}", e.address, e.port)
                } else {
                    format!("{}:{}", e.address, e.port)
                };
                let Ok(authority) = key.parse::<Authority>() else {
                    continue;
                };
                let state = previous
                    .endpoints
                    .remove(&key)
                    .unwrap_or_else(|| Arc::new(EndpointState::new(authority)));
                entry.endpoints.insert(key.clone(), state.clone());
                endpoints.push(state);
                weights.push(e.weight);
                priorities.push(e.priority);
                names.push(key);
            }
            retire(&previous);
            let ejected = endpoints.iter().filter(|e| e.health.is_ejected()).count();
            entry.state.ejected.set(ejected as u32);
            self.watch(&entry.state, &endpoints, c.policy.outlier.as_ref());
            let levels = levels(c, &priorities, &weights, &names);
            let state = (entry.state.clone(), metrics.cluster(c));
            let runtime = runtime(c, endpoints, levels, state, opts, self.epoch);
            registry.insert(name.clone(), entry);
            out.insert(name.clone(), Arc::new(runtime));
        }
        old.values().for_each(retire);
        out
    }

    /// Keeps the cluster's sweep up to date, and running while it has outlier detection.
    fn watch(
        &self,
        state: &Arc<ClusterState>,
        endpoints: &[Arc<EndpointState>],
        outlier: Option<&Outlier>,
    ) {
        let mut sweep = state.sweep.lock().expect("sweep");
        *sweep = outlier.map(|o| (endpoints.to_vec(), o.clone()));
        if sweep.is_some() && !state.sweeping.swap(true, Ordering::AcqRel) {
            tokio::spawn(sweep_every_interval(Arc::downgrade(state), self.epoch));
        }
    }
}

/// The endpoints a reload removed: requests still on them must not eject them (the cluster's
/// ejection count is recounted over the endpoints that stay).
fn retire(entry: &Entry) {
    for e in entry.endpoints.values() {
        e.health.retire();
    }
}

/// Returns ejected endpoints whose time is over, every `interval`, until the cluster is gone
/// or has no outlier detection any more.
async fn sweep_every_interval(state: Weak<ClusterState>, epoch: Instant) {
    loop {
        let interval = {
            let Some(s) = state.upgrade() else { return };
            let sweep = s.sweep.lock().expect("sweep");
            match &*sweep {
                Some((_, o)) => o.interval,
                None => {
                    s.sweeping.store(false, Ordering::Release);
                    return;
                }
            }
        };
        tokio::time::sleep(interval).await;
        let Some(s) = state.upgrade() else { return };
        let sweep = s.sweep.lock().expect("sweep");
        if let Some((endpoints, o)) = &*sweep {
            let now = epoch.elapsed().as_millis() as u64;
            for e in endpoints {
                if e.health.sweep(o, &s.ejected, now) {
                    tracing::info!(endpoint = %e.authority, "outlier returned to service");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_compile::snapshot::{Cluster, ClusterEndpoint, LbPolicy};

    fn snapshot(ports: &[u32]) -> Snapshot {
        let mut s = Snapshot::default();
        let endpoints = ports
            .iter()
            .map(|p| ClusterEndpoint {
                address: "127.0.0.1".into(),
                port: *p,
                weight: 1,
                locality: String::new(),
                priority: 0,
            })
            .collect();
        s.clusters.insert(
            "c".into(),
            Arc::new(Cluster {
                name: "c".into(),
                host: "h".into(),
                port: 80,
                subset: String::new(),
                endpoints,
                lb: LbPolicy::RoundRobin,
                problem: None,
                http2: false,
                tls: None,
                policy: Default::default(),
                destination: Default::default(),
            }),
        );
        s
    }

    #[tokio::test]
    async fn state_survives_a_reload_for_kept_endpoints_only() {
        let registry = Registry::default();
        let opts = UpstreamOptions::default();
        let metrics = crate::metrics::Metrics::new(Default::default());
        let first = registry.build(&snapshot(&[1, 2]), &opts, &metrics);
        let second = registry.build(&snapshot(&[2, 3]), &opts, &metrics);
        let (a, b) = (&first["c"], &second["c"]);
        // Endpoint :2 is the same object; :3 is new; :1 is forgotten by the registry.
        assert!(Arc::ptr_eq(&a.endpoints[1], &b.endpoints[0]));
        assert!(Arc::ptr_eq(&a.state, &b.state));
        let one = Arc::downgrade(&a.endpoints[0]);
        drop(first);
        assert!(
            one.upgrade().is_none(),
            "a removed endpoint's state is dropped"
        );
        let empty = registry.build(&Snapshot::default(), &opts, &metrics);
        assert!(empty.is_empty());
        let state = Arc::downgrade(&b.state);
        drop(second);
        assert!(
            state.upgrade().is_none(),
            "a removed cluster's state is dropped"
        );
    }
}
