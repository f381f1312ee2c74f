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
    /// On a TLS port, the server (filter chain) the SNI chose.
    pub server: Option<String>,
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
    /// What the route does besides choosing a cluster (forwarded requests only).
    pub policy: Option<PolicyView>,
}

#[derive(Serialize, Debug, Default)]
pub struct PolicyView {
    /// The path and query the backend would get (normalised, rewritten).
    pub upstream_path: String,
    /// Host the backend would get when the route rewrites it.
    pub upstream_authority: Option<String>,
    pub timeout: Option<String>,
    pub retries: RetryView,
    pub request_headers: HeaderOpsView,
    pub response_headers: HeaderOpsView,
    pub mirrors: Vec<ClusterShareOf>,
    pub fault: Option<FaultView>,
    pub cors: bool,
}

#[derive(Serialize, Debug, Default)]
pub struct RetryView {
    pub attempts: u32,
    pub per_try_timeout: Option<String>,
    pub retry_on: Vec<&'static str>,
    pub retriable_status_codes: Vec<u16>,
}

#[derive(Serialize, Debug, Default)]
pub struct HeaderOpsView {
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

#[derive(Serialize, Debug)]
pub struct ClusterShareOf {
    pub cluster: String,
    pub percentage: f64,
}

#[derive(Serialize, Debug)]
pub struct FaultView {
    pub delay: Option<String>,
    pub delay_percentage: f64,
    /// `http 503` or `grpc 14`.
    pub abort: Option<String>,
    pub abort_percentage: f64,
}

pub(crate) fn duration(d: std::time::Duration) -> String {
    sluice_api::Duration(d).to_string()
}

pub(crate) fn header_ops(ops: &[&crate::policy::HeaderOps]) -> HeaderOpsView {
    let pairs = |v: &[(http::HeaderName, http::HeaderValue)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect()
    };
    let mut view = HeaderOpsView::default();
    for o in ops {
        view.set.extend(pairs(&o.set));
        view.add.extend(pairs(&o.add));
        view.remove.extend(o.remove.iter().map(|n| n.to_string()));
    }
    view
}

fn policy_view(
    route: &Route,
    destination: &crate::snapshot::WeightedCluster,
    matched: Option<&crate::snapshot::RouteMatch>,
    path: &str,
) -> PolicyView {
    let p = &route.policy;
    let dest = destination.headers.as_deref();
    let mut request: Vec<&crate::policy::HeaderOps> =
        dest.map(|d| &d.request).into_iter().collect();
    request.push(&p.headers.request);
    let mut response: Vec<&crate::policy::HeaderOps> =
        dest.map(|d| &d.response).into_iter().collect();
    response.push(&p.headers.response);
    PolicyView {
        upstream_path: p.upstream_path(matched, path).into_owned(),
        upstream_authority: p
            .rewrite
            .as_ref()
            .and_then(|r| r.authority.as_ref())
            .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned()),
        timeout: p.timeout.map(duration),
        retries: retry_view(&p.retry),
        request_headers: header_ops(&request),
        response_headers: header_ops(&response),
        mirrors: mirror_views(&p.mirrors),
        fault: p.fault.as_ref().map(fault_view),
        cors: p.cors.is_some(),
    }
}

pub(crate) fn retry_view(r: &crate::policy::Retry) -> RetryView {
    RetryView {
        attempts: r.retries,
        per_try_timeout: r.per_try_timeout.map(duration),
        retry_on: r.on.names(),
        retriable_status_codes: r.status_codes.clone(),
    }
}

pub(crate) fn mirror_views(mirrors: &[crate::policy::Mirror]) -> Vec<ClusterShareOf> {
    mirrors
        .iter()
        .map(|m| ClusterShareOf {
            cluster: m.cluster.clone(),
            percentage: m.percentage,
        })
        .collect()
}

pub(crate) fn fault_view(f: &crate::policy::Fault) -> FaultView {
    FaultView {
        delay: f.delay.map(|(d, _)| duration(d)),
        delay_percentage: f.delay.map_or(0.0, |(_, pct)| pct),
        abort: f.abort.map(|(a, _)| match a {
            crate::policy::Abort::Http(s) => format!("http {s}"),
            crate::policy::Abort::Grpc(g) => format!("grpc {g}"),
        }),
        abort_percentage: f.abort.map_or(0.0, |(_, pct)| pct),
    }
}

#[derive(Serialize, Debug)]
pub struct RouteRef {
    /// `VirtualService`, `HTTPRoute`, `TLSRoute` or `TCPRoute`.
    pub kind: &'static str,
    pub virtual_service: String,
    /// Which list of the VirtualService: `http`, `tcp` or `tls`.
    pub list: &'static str,
    pub index: usize,
    pub name: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct ClusterShare {
    pub name: String,
    pub weight: u32,
    /// `address:port` of each endpoint of the cluster.
    pub endpoints: Vec<String>,
    /// The effective DestinationRule policy (load balancer, connection pool, outlier
    /// detection), one line each, with the level that set it.
    pub traffic_policy: Vec<String>,
}

pub struct Request<'a> {
    pub port: u32,
    /// Host header (HTTP and HTTPS); `None` for TCP and TLS connections.
    pub host: Option<&'a str>,
    /// The ClientHello's SNI; `None`: the Host (without port), as clients send it.
    pub sni: Option<&'a str>,
    pub path: &'a str,
    pub method: &'a str,
    pub headers: &'a [(String, String)],
}

impl Explanation {
    fn outcome(mut self, action: &'static str, status: Option<u16>) -> Self {
        self.action = action;
        self.status = status;
        if !matches!(
            action,
            "forward" | "redirect" | "direct_response" | "tls_redirect"
        ) {
            self.error = Some(action);
        }
        self
    }
}

pub fn explain(snapshot: &Snapshot, req: &Request) -> Explanation {
    use crate::snapshot::{ListenerProtocol, ServerMode};
    let mut e = Explanation::default();
    let Some(listener) = snapshot.listener_for_service_port(req.port) else {
        return e.outcome("no_listener", None);
    };
    e.listener = Some(listener.name.clone());
    let host_sni = req.host.map(crate::select::host_of);
    let sni = req
        .sni
        .map(str::to_ascii_lowercase)
        .or(host_sni.map(|h| h.into_owned()));
    let table_name = match &listener.protocol {
        ListenerProtocol::Tcp { routes } => return l4(e, snapshot, "tcp", routes.first()),
        ListenerProtocol::Http { route_table } => route_table.as_str(),
        ListenerProtocol::Tls { servers } => {
            let Some(server) = crate::tls::select_server(servers, sni.as_deref()) else {
                return e.outcome("no_tls_server", None);
            };
            e.server = Some(server.name.clone());
            match &server.mode {
                ServerMode::Http { route_table, .. } => route_table.as_str(),
                ServerMode::Tcp { routes, .. } => return l4(e, snapshot, "tcp", routes.first()),
                ServerMode::Passthrough { routes } => {
                    let route = sni
                        .as_deref()
                        .and_then(|sni| routes.iter().find(|r| r.takes_sni(sni)));
                    return l4(e, snapshot, "tls", route);
                }
            }
        }
    };
    e.route_config = Some(table_name.to_string());
    let Some(table) = snapshot.route_tables.get(table_name) else {
        return e.outcome("no_listener", None);
    };
    let Some(host) = req.host else {
        return e.outcome("no_host", Some(400));
    };
    let view = RequestView {
        authority: host,
        path_and_query: req.path,
        method: req.method,
        scheme: listener.scheme(),
        port: req.port,
        headers: req.headers,
    };
    let route_ref = |r: &Route| RouteRef {
        kind: r.kind,
        virtual_service: r.virtual_service.clone(),
        list: "http",
        index: r.index,
        name: r.name.clone(),
    };
    match select_route(table, &view) {
        RouteDecision::Forward {
            virtual_host,
            route,
            forward,
            matched,
        } => {
            e.virtual_host = Some(virtual_host.name.clone());
            e.route = Some(route_ref(route));
            e.action = "forward";
            e.clusters = shares(snapshot, &forward.destinations);
            let first = pick_weighted(&forward.destinations, 0);
            e.cluster = Some(first.cluster.clone());
            e.policy = Some(policy_view(route, first, matched, req.path));
            match snapshot.clusters.get(&first.cluster) {
                Some(c) if c.problem.is_none() && !c.endpoints.is_empty() => {
                    e.endpoints = endpoint_names(c);
                }
                Some(c) => {
                    e.status = Some(c.problem.as_ref().map_or(503, ClusterProblem::status));
                    e.error = Some(match c.problem {
                        Some(ClusterProblem::UnknownHost) | Some(ClusterProblem::UnknownSubset) => {
                            "no_cluster"
                        }
                        Some(ClusterProblem::Tls(_)) => "upstream_tls_unavailable",
                        Some(ClusterProblem::InvalidBackendRef { .. }) => "invalid_backend_ref",
                        None => "no_healthy_upstream",
                    });
                }
                None => {
                    e.status = Some(503);
                    e.error = Some("no_cluster");
                }
            }
            e
        }
        RouteDecision::Redirect {
            virtual_host,
            route,
            status,
            location,
            ..
        } => {
            e.virtual_host = Some(virtual_host.name.clone());
            e.location = Some(location);
            match route {
                Some(r) => {
                    e.route = Some(route_ref(r));
                    e.outcome("redirect", Some(status))
                }
                // No route: the server's `tls.httpsRedirect`.
                None => e.outcome("tls_redirect", Some(status)),
            }
        }
        RouteDecision::DirectResponse {
            virtual_host,
            route,
            status,
            ..
        } => {
            e.virtual_host = Some(virtual_host.name.clone());
            e.route = Some(route_ref(route));
            e.outcome("direct_response", Some(status))
        }
        RouteDecision::NoRoute {
            virtual_host: Some(vh),
        } => {
            e.virtual_host = Some(vh.name.clone());
            e.outcome("no_route", Some(404))
        }
        RouteDecision::NoRoute { virtual_host: None } => e.outcome("no_virtual_host", Some(404)),
    }
}

/// A TCP or TLS connection: the route it takes (none: the connection is closed).
fn l4(
    mut e: Explanation,
    snapshot: &Snapshot,
    list: &'static str,
    route: Option<&crate::snapshot::L4Route>,
) -> Explanation {
    let Some(route) = route else {
        return e.outcome("no_route", None);
    };
    e.route = Some(RouteRef {
        kind: route.kind,
        virtual_service: route.virtual_service.clone(),
        list,
        index: route.index,
        name: None,
    });
    e.clusters = shares(snapshot, &route.destinations);
    e.cluster = e.clusters.first().map(|c| c.name.clone());
    e.endpoints = e
        .clusters
        .first()
        .map(|c| c.endpoints.clone())
        .unwrap_or_default();
    e.outcome("forward", None)
}

fn shares(
    snapshot: &Snapshot,
    destinations: &[crate::snapshot::WeightedCluster],
) -> Vec<ClusterShare> {
    destinations
        .iter()
        .map(|d| ClusterShare {
            name: d.cluster.clone(),
            weight: d.weight,
            endpoints: snapshot
                .clusters
                .get(&d.cluster)
                .map(|c| endpoint_names(c))
                .unwrap_or_default(),
            traffic_policy: snapshot
                .clusters
                .get(&d.cluster)
                .filter(|c| c.problem.is_none())
                .map(|c| c.policy.describe(c.lb.as_str()))
                .unwrap_or_default(),
        })
        .collect()
}

fn endpoint_names(c: &crate::snapshot::Cluster) -> Vec<String> {
    c.endpoints
        .iter()
        .map(|ep| format!("{}:{}", ep.address, ep.port))
        .collect()
}
