//! A snapshot made ready for traffic: route tables by bound port and one balancer per cluster.
//! Built once per configuration and swapped in whole; requests hold the one they started with.
use crate::lb::Balancer;
use sluice_compile::snapshot::RouteTable;
use sluice_compile::Snapshot;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug)]
pub struct PortRoutes {
    /// Istio's listener name, `0.0.0.0_<bind port>`.
    pub listener: String,
    /// The Gateway port, for `port` matches and redirects.
    pub service_port: u32,
    pub table: Arc<RouteTable>,
}

#[derive(Debug, Default)]
pub struct Dataplane {
    pub snapshot: Arc<Snapshot>,
    pub ports: HashMap<u32, PortRoutes>,
    pub balancers: HashMap<String, Arc<Balancer>>,
}

impl Dataplane {
    pub fn new(snapshot: Arc<Snapshot>) -> Dataplane {
        let ports = snapshot
            .listeners
            .iter()
            .filter_map(|(bind, l)| {
                let table = snapshot.route_tables.get(&l.route_table)?.clone();
                Some((
                    *bind,
                    PortRoutes {
                        listener: l.name.clone(),
                        service_port: l.service_port,
                        table,
                    },
                ))
            })
            .collect();
        let balancers = snapshot
            .clusters
            .iter()
            .map(|(name, c)| (name.clone(), Arc::new(Balancer::new(c.clone()))))
            .collect();
        Dataplane {
            snapshot,
            ports,
            balancers,
        }
    }
}
