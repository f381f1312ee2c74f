//! What the gateway would do with one request, offline: the same `select_route` the proxy runs,
//! with every candidate cluster and its endpoints. `sluice explain` prints it; the end-to-end
//! tests check that the proxy agrees.
use crate::select::pick_weighted;
use crate::snapshot::{ClusterProblem, Route, Snapshot};
use crate::{select_route, RequestView, RouteDecision};
use serde::Serialize;

#[derive(Serialize, Default, Debug)]
pub struct Explanation {
    pub listener: Option<String>,
    pub route_config: Option<String>,
    pub virtual_host: Option<String>,
    pub route: Option<RouteRef>,
    pub action: &'static str,
    pub clusters: Vec<ClusterShare>,
    pub cluster: Option<String>,
    pub endpoints: Vec<String>,
    pub status: Option<u16>,
    pub location: Option<String>,
    pub error: Option<&'static str>,
}

#[derive(Serialize, Debug)]
pub struct RouteRef {
    pub virtual_service: String,
    pub index: usize,
    pub name: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct ClusterShare {
    pub name: String,
    pub weight: u32,
    /// `address:port` of each endpoint of the cluster.
    pub endpoints: Vec<String>,
}

pub struct Request<'a> {
    pub port: u32,
    pub host: &'a str,
    pub path: &'a str,
    pub method: &'a str,
    pub headers: &'a [(String, String)],
}

pub fn explain(snapshot: &Snapshot, req: &Request) -> Explanation {
    let mut e = Explanation::default();
    let Some(listener) = snapshot.listener_for_service_port(req.port) else {
        e.action = "no_listener";
        e.error = Some("no_listener");
        return e;
    };
    e.listener = Some(listener.name.clone());
    e.route_config = Some(listener.route_table.clone());
    let Some(table) = snapshot.route_tables.get(&listener.route_table) else {
        e.action = "no_listener";
        e.error = Some("no_listener");
        return e;
    };
    let view = RequestView {
        authority: req.host,
        path_and_query: req.path,
        method: req.method,
        scheme: "http",
        port: req.port,
        headers: req.headers,
    };
    let route_ref = |r: &Route| RouteRef {
        virtual_service: r.virtual_service.clone(),
        index: r.index,
        name: r.name.clone(),
    };
    match select_route(table, &view) {
        RouteDecision::Forward {
            virtual_host,
            route,
            forward,
            ..
        } => {
            e.virtual_host = Some(virtual_host.name.clone());
            e.route = Some(route_ref(route));
            e.action = "forward";
            e.clusters = forward
                .destinations
                .iter()
                .map(|d| ClusterShare {
                    name: d.cluster.clone(),
                    weight: d.weight,
                    endpoints: snapshot
                        .clusters
                        .get(&d.cluster)
                        .map(|c| endpoint_names(c))
                        .unwrap_or_default(),
                })
                .collect();
            let first = pick_weighted(forward, 0);
            e.cluster = Some(first.cluster.clone());
            match snapshot.clusters.get(&first.cluster) {
                Some(c) if c.problem.is_none() && !c.endpoints.is_empty() => {
                    e.endpoints = endpoint_names(c);
                }
                Some(c) => {
                    e.status = Some(503);
                    e.error = Some(match c.problem {
                        Some(ClusterProblem::UnknownHost) | Some(ClusterProblem::UnknownSubset) => {
                            "no_cluster"
                        }
                        None => "no_healthy_upstream",
                    });
                }
                None => {
                    e.status = Some(503);
                    e.error = Some("no_cluster");
                }
            }
        }
        RouteDecision::Redirect {
            virtual_host,
            route,
            status,
            location,
        } => {
            e.virtual_host = Some(virtual_host.name.clone());
            e.route = route.map(route_ref);
            e.action = "redirect";
            e.status = Some(status);
            e.location = Some(location);
        }
        RouteDecision::DirectResponse {
            virtual_host,
            route,
            status,
            ..
        } => {
            e.virtual_host = Some(virtual_host.name.clone());
            e.route = Some(route_ref(route));
            e.action = "direct_response";
            e.status = Some(status);
        }
        RouteDecision::NoRoute { virtual_host } => {
            e.virtual_host = virtual_host.map(|v| v.name.clone());
            e.action = "no_route";
            e.status = Some(404);
            e.error = Some("no_route");
        }
    }
    e
}

fn endpoint_names(c: &crate::snapshot::Cluster) -> Vec<String> {
    c.endpoints
        .iter()
        .map(|ep| format!("{}:{}", ep.address, ep.port))
        .collect()
}
