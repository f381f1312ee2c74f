//! The Gateway API (`gateway.networking.k8s.io`) compiled into the same route model as Istio's
//! objects: a Gateway's HTTP and HTTPS listeners become servers of their ports (sharing a port
//! with Istio's servers), and the HTTPRoutes attached to a listener become routes of its virtual
//! hosts, ordered by the Gateway API's precedence.
use super::{Compiler, GatewayServer, HttpServer, ServerKind};
use crate::hosts;
use crate::policy::{HeaderOps, HeaderPolicy, Mirror, PathRewrite, Retry, Rewrite, RoutePolicy};
use crate::snapshot::*;
use http::{HeaderName, HeaderValue};
use sluice_api::gateway_api::Listener as KubeListener;
use sluice_api::gateway_api::*;
use sluice_config::diag::codes;
use sluice_config::validate::full_match_regex;
use sluice_config::validate::P;
use sluice_config::{Diagnostic, Kind, Object, Severity, Store};
use std::borrow::Cow;
use std::sync::Arc;

pub(crate) mod frontend_tls;
mod grpc;
mod listener_set;
mod precedence;

use grpc::unusable_backend_status;
pub(crate) use grpc::{grpc_as_http, http_grpc_conflict};
pub(crate) use listener_set::{
    attached_listener_sets, listener_set_allowed, listeners_of, owner_listener_conflict,
    parent_gateway,
};
pub(super) use precedence::Precedence;
use precedence::{grpc_precedence, precedence};

/// Controllers whose GatewayClasses this instance serves (its own, and Istio's, so manifests
/// written for Istio work unchanged).
pub const CONTROLLERS: [&str; 2] = [
    "sluice.dev/gateway-controller",
    "istio.io/gateway-controller",
];

const GROUP_DEFAULT: &str = GROUP;

/// Gateway API Gateways this instance serves: their class is one of `--gateway-class`, or a
/// GatewayClass whose controller is ours; and, with `--gateway`, they are the ones named.
pub(crate) fn served_gateways<'s>(
    store: &'s Store,
    id: &crate::GatewayIdentity,
) -> Vec<&'s Arc<Object>> {
    let classes = &id.gateway_classes;
    let ours = |class: &str| classes.iter().any(|c| c == class) || our_class(store, class);
    store
        .of_kind(Kind::KubeGateway)
        .filter(|g| id.gateway_names.is_empty() || id.gateway_names.contains(&g.key()))
        .filter(|g| {
            g.kube_gateway()
                .and_then(|s| s.gateway_class_name.as_deref())
                .is_some_and(ours)
        })
        .collect()
}

/// A GatewayClass whose controller is sluice's or Istio's.
pub(crate) fn our_class(store: &Store, class: &str) -> bool {
    store.of_kind(Kind::GatewayClass).any(|gc| {
        gc.name == class
            && gc
                .gateway_class()
                .and_then(|s| s.controller_name.as_deref())
                .is_some_and(|c| CONTROLLERS.contains(&c))
    })
}

/// Whether a ReferenceGrant in the target's namespace lets a `from_kind` in `from_ns` refer to
/// the target `(namespace, group, kind, name)`.
pub(crate) fn granted(
    store: &Store,
    from_ns: &str,
    from_kind: &str,
    (to_ns, to_group, to_kind, to_name): (&str, &str, &str, &str),
) -> bool {
    store
        .of_kind(Kind::ReferenceGrant)
        .filter(|g| g.namespace == to_ns)
        .filter_map(|g| g.reference_grant())
        .any(|g| {
            g.from.iter().any(|f| {
                f.group.as_deref().unwrap_or("") == GROUP_DEFAULT
                    && f.kind.as_deref() == Some(from_kind)
                    && f.namespace.as_deref() == Some(from_ns)
            }) && g.to.iter().any(|t| {
                t.group.as_deref().unwrap_or("") == to_group
                    && t.kind.as_deref() == Some(to_kind)
                    && t.name.as_deref().is_none_or(|n| n == to_name)
            })
        })
}

/// The route kinds a listener takes: its protocol's (HTTP and HTTPS take HTTPRoutes and
/// GRPCRoutes, TLS takes TLSRoutes, TCP takes TCPRoutes), narrowed by `allowedRoutes.kinds`.
pub(crate) fn listener_kinds(l: &KubeListener) -> Vec<&'static str> {
    let by_protocol: &[&'static str] = match l.protocol.as_deref() {
        Some("HTTP" | "HTTPS") => &["HTTPRoute", "GRPCRoute"],
        Some("TLS") => &["TLSRoute"],
        Some("TCP") => &["TCPRoute"],
        _ => &[],
    };
    match l.allowed_routes.as_ref().filter(|a| !a.kinds.is_empty()) {
        None => by_protocol.to_vec(),
        Some(a) => by_protocol
            .iter()
            .copied()
            .filter(|k| {
                a.kinds.iter().any(|rk| {
                    rk.group.as_deref().unwrap_or(GROUP_DEFAULT) == GROUP_DEFAULT
                        && rk.kind.as_deref() == Some(*k)
                })
            })
            .collect(),
    }
}

/// May this route attach to the listener (`allowedRoutes` namespaces and kinds)?
pub(crate) fn listener_allows(
    store: &Store,
    gw: &Object,
    l: &KubeListener,
    route: &Object,
) -> bool {
    let kinds_ok = listener_kinds(l).contains(&route.kind.as_str());
    let allowed = l.allowed_routes.as_ref();
    let namespaces = allowed.and_then(|a| a.namespaces.as_ref());
    let ns_ok = match namespaces
        .and_then(|n| n.from)
        .unwrap_or(FromNamespaces::Same)
    {
        FromNamespaces::All => true,
        FromNamespaces::Same => route.namespace == gw.namespace,
        FromNamespaces::None => false,
        FromNamespaces::Selector => namespaces
            .and_then(|n| n.selector.as_ref())
            .is_some_and(|s| selector_matches(s, &namespace_labels(store, &route.namespace))),
    };
    kinds_ok && ns_ok
}

/// The names a route gets on a listener: its hostnames intersected with the listener's, the
/// listener's when it has none (an empty result: the route does not attach there).
pub(crate) fn route_domains(l: &KubeListener, hostnames: &[String]) -> Vec<String> {
    let listener_host = listener_host(l);
    if hostnames.is_empty() {
        return vec![listener_host];
    }
    hostnames
        .iter()
        .filter_map(|h| {
            let h = h.to_ascii_lowercase();
            hosts::intersect(&listener_host, &h).map(str::to_string)
        })
        .collect()
}

/// A listener's hostname, lower-cased; `*` when it has none.
fn listener_host(l: &KubeListener) -> String {
    l.hostname.as_deref().unwrap_or("*").to_ascii_lowercase()
}

/// Why a backendRef cannot be used, as `(reason, message)` with the spec's reasons; `None` when
/// it names a Service the registry knows, with a port.
pub(crate) fn backend_problem(
    store: &Store,
    registry: &crate::registry::Registry,
    domain_suffix: &str,
    route: &Object,
    b: &BackendObjectReference,
) -> Option<(&'static str, String)> {
    let name = b.name.as_deref().unwrap_or("");
    let ns = b.namespace.as_deref().unwrap_or(&route.namespace);
    let (group, kind) = (b.group.as_deref(), b.kind.as_deref());
    if group.is_some_and(|g| !g.is_empty()) || kind.is_some_and(|k| k != "Service") {
        let what = format!("{}/{}", group.unwrap_or(""), kind.unwrap_or(""));
        return Some((
            "InvalidKind",
            format!("backendRef kind {what} is not supported (only Services)"),
        ));
    }
    let target = (ns, "", "Service", name);
    if ns != route.namespace && !granted(store, &route.namespace, route.kind.as_str(), target) {
        return Some((
            "RefNotPermitted",
            format!(
                "Service {ns}/{name} is in another namespace and no ReferenceGrant there allows it"
            ),
        ));
    }
    if b.port.is_none() {
        return Some((
            "UnsupportedValue",
            format!("backendRef to Service {ns}/{name} has no port"),
        ));
    }
    if registry
        .lookup(&hosts::service_fqdn(name, ns, domain_suffix))
        .is_none()
    {
        return Some(("BackendNotFound", format!("Service {ns}/{name} not found")));
    }
    None
}

impl<'a> Compiler<'a> {
    /// Served Gateways, then the ListenerSets attached to them.
    pub(super) fn kube_gateways(&self) -> Vec<&'a Arc<Object>> {
        let gateways = served_gateways(self.store, self.id);
        let sets = attached_listener_sets(self.store, &gateways);
        gateways.into_iter().chain(sets).collect()
    }

    /// The servers of a Gateway API Gateway's listeners, by port. HTTP and HTTPS (Terminate)
    /// listeners are served; the others are reported and left out.
    pub(super) fn kube_servers(&mut self, gw: &'a Arc<Object>) -> Vec<(u32, GatewayServer<'a>)> {
        let listeners = listeners_of(gw);
        let mut out = Vec::new();
        for (i, l) in listeners.iter().enumerate() {
            let path = P::spec().k("listeners").i(i);
            let Some(port) = l.port.and_then(|p| u32::try_from(p).ok()) else {
                continue;
            };
            if let Some(reason) = owner_listener_conflict(self.store, gw, i) {
                self.diags.push(Diagnostic {
                    resource: Some(gw.resource()),
                    ..Diagnostic::new(Severity::Warning, codes::SERVER_NOT_SERVED, format!("listener {} of Gateway {} is not served: another listener on port {port} is not distinct from it ({reason})", l.name.as_deref().unwrap_or(""), gw.key()))
                        .at(gw.origin_at(&path.0))
                });
                continue;
            }
            let hosts = vec![listener_host(l)];
            let kind = match l.protocol.as_deref() {
                Some("HTTP") => ServerKind::Http(self.kube_http(gw, i, l, hosts.clone(), None)),
                Some("HTTPS") => match self.terminating(gw, i, port) {
                    Some(settings) => {
                        ServerKind::Http(self.kube_http(gw, i, l, hosts.clone(), Some(settings)))
                    }
                    None => continue,
                },
                Some("TLS")
                    if l.tls.as_ref().and_then(|t| t.mode) == Some(TlsModeType::Passthrough) =>
                {
                    ServerKind::Passthrough
                }
                // Terminate (the default mode): TLS ends here, TLSRoutes carry the bytes on.
                Some("TLS") => match self.terminating(gw, i, port) {
                    Some(settings) => ServerKind::TerminatedTcp(settings),
                    None => continue,
                },
                Some("TCP") => ServerKind::Tcp,
                other => {
                    let what = other.unwrap_or("(no protocol)");
                    self.diags.push(Diagnostic {
                        resource: Some(gw.resource()),
                        ..Diagnostic::new(Severity::Warning, codes::SERVER_NOT_SERVED, format!("{what} of the Gateway API are not served by this version of sluice yet; listener {} of Gateway {} (port {port}) is skipped", l.name.as_deref().unwrap_or(""), gw.key()))
                            .at(gw.origin_at(&path.k("protocol").0))
                    });
                    continue;
                }
            };
            out.push((
                port,
                GatewayServer {
                    gateway: gw,
                    index: i,
                    hosts: Cow::Owned(hosts),
                    kind,
                },
            ));
        }
        out
    }

    /// The TLS settings of a listener that terminates TLS; `None` (reported) when its
    /// certificate, or the client CAs it asks for, cannot be used: it is not served.
    fn terminating(
        &mut self,
        gw: &Object,
        i: usize,
        port: u32,
    ) -> Option<Arc<crate::tls::TlsSettings>> {
        let l = &listeners_of(gw)[i];
        match listener_certificate(self.store, gw, l) {
            Ok(settings) => Some(Arc::new(settings)),
            Err((reason, why)) => {
                let at = P::spec().k("listeners").i(i).k("tls");
                self.diags.push(Diagnostic {
                    resource: Some(gw.resource()),
                    ..Diagnostic::new(
                        Severity::Warning,
                        codes::INVALID_GATEWAY_CREDENTIAL,
                        format!(
                            "listener {} of Gateway {} (port {port}) is skipped: {why} ({reason})",
                            l.name.as_deref().unwrap_or(""),
                            gw.key()
                        ),
                    )
                    .at(gw.origin_at(&at.0))
                });
                None
            }
        }
    }

    fn kube_http(
        &self,
        gw: &'a Arc<Object>,
        i: usize,
        l: &'a KubeListener,
        hosts: Vec<String>,
        tls: Option<Arc<crate::tls::TlsSettings>>,
    ) -> HttpServer<'a> {
        HttpServer {
            gateway: gw,
            hosts: Cow::Owned(hosts),
            https_redirect: false,
            port_name: Cow::Borrowed(l.name.as_deref().unwrap_or("")),
            tls,
            kube_listener: Some(i),
        }
    }

    /// The TLSRoutes (passthrough) or TCPRoutes attached to a Gateway API listener, oldest first
    /// (of several TCPRoutes the oldest gets the traffic, as the spec says).
    pub(super) fn kube_l4_routes(&mut self, gw: &'a Object, li: usize, port: u32) -> Vec<L4Route> {
        let listener = &listeners_of(gw)[li];
        let tls = listener.protocol.as_deref() == Some("TLS");
        let kind = if tls { Kind::TlsRoute } else { Kind::TcpRoute };
        let routes: Vec<&'a Arc<Object>> = self.store.of_kind(kind).collect();
        let mut out = Vec::new();
        for route in routes {
            let (parents, hostnames, rules) = match (route.tls_route(), route.tcp_route()) {
                (Some(t), _) => (&t.parent_refs, &t.hostnames[..], &t.rules),
                (_, Some(t)) => (&t.parent_refs, &[][..], &t.rules),
                _ => continue,
            };
            let attached = parents.iter().any(|p| attaches(p, route, gw, listener));
            if !attached || !listener_allows(self.store, gw, listener, route) {
                continue;
            }
            // TLSRoutes match SNI names (they must list some); TCPRoutes take every connection.
            let sni = if tls && !hostnames.is_empty() {
                route_domains(listener, hostnames)
            } else {
                Vec::new()
            };
            if tls && sni.is_empty() {
                continue;
            }
            let Some(rule) = rules.first() else { continue };
            let mut destinations = Vec::new();
            for b in &rule.backend_refs {
                let weight = b.weight.unwrap_or(1);
                if weight <= 0 {
                    continue;
                }
                destinations.push(WeightedCluster {
                    cluster: self.backend_cluster(route, &b.into(), port),
                    weight: weight as u32,
                    headers: None,
                });
            }
            if destinations.is_empty() {
                continue;
            }
            out.push(L4Route {
                virtual_service: route.key(),
                kind: if tls { "TLSRoute" } else { "TCPRoute" },
                index: 0,
                sni,
                total_weight: destinations.iter().map(|d| d.weight).sum(),
                destinations,
            });
        }
        out
    }

    /// The routes HTTPRoutes give the virtual hosts of one Gateway API listener, each with its
    /// domain and its place in the Gateway API's precedence (the caller sorts across listeners).
    pub(super) fn kube_routes(
        &mut self,
        server: &HttpServer,
        port: u32,
    ) -> Vec<(String, Precedence, Route)> {
        let Some(li) = server.kube_listener else {
            return Vec::new();
        };
        let gw = server.gateway;
        let listener = &listeners_of(gw)[li];
        let mut found = Vec::new();
        // The spec's tie-break between routes: oldest first, then `{namespace}/{name}`.
        let mut routes: Vec<&'a Arc<Object>> = self
            .store
            .of_kind(Kind::HttpRoute)
            .chain(self.store.of_kind(Kind::GrpcRoute))
            .collect();
        routes.sort_by(|a, b| oldest_first(a, b));
        for (order, route) in routes.into_iter().enumerate() {
            let spec = match route.grpc_route() {
                Some(g) => Cow::Owned(grpc_as_http(g)),
                None => Cow::Borrowed(route.http_route().expect("kind")),
            };
            let attached = spec
                .parent_refs
                .iter()
                .any(|p| attaches(p, route, gw, listener));
            if !attached || !listener_allows(self.store, gw, listener, route) {
                continue;
            }
            if http_grpc_conflict(self.store, gw, listener, route).is_some() {
                continue; // an older route of the other kind has the hostname here
            }
            for domain in route_domains(listener, &spec.hostnames) {
                for (rule, m, r) in self.http_route_rules(route, &spec, port) {
                    let key = match route.grpc_route() {
                        Some(g) => grpc_precedence(&g.rules[rule], m, order, rule),
                        None => precedence(&spec.rules[rule], m, order, rule),
                    };
                    found.push((domain.clone(), key, r));
                }
            }
        }
        found
    }

    /// Each (rule, match) of an HTTPRoute as a route of its own (precedence is per match).
    fn http_route_rules(
        &mut self,
        route: &Object,
        spec: &HttpRouteSpec,
        port: u32,
    ) -> Vec<(usize, usize, Route)> {
        let mut out = Vec::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            let default_match = [HttpRouteMatch::default()];
            let matches: &[HttpRouteMatch] = if rule.matches.is_empty() {
                &default_match
            } else {
                &rule.matches
            };
            for (j, m) in matches.iter().enumerate() {
                let Some(route_match) = route_match(m) else {
                    continue; // a regex that does not compile: validate reported it
                };
                let (action, policy) = self.rule_action(route, rule, m, port);
                out.push((
                    i,
                    j,
                    Route {
                        virtual_service: route.key(),
                        kind: route.kind.as_str(),
                        index: i,
                        name: rule.name.clone(),
                        matches: vec![route_match],
                        action,
                        policy,
                    },
                ));
            }
        }
        out
    }

    fn rule_action(
        &mut self,
        route: &Object,
        rule: &HttpRouteRule,
        m: &HttpRouteMatch,
        port: u32,
    ) -> (Action, RoutePolicy) {
        let mut headers = HeaderPolicy::default();
        let mut rewrite: Option<Rewrite> = None;
        let mut mirrors = Vec::new();
        let mut redirect = None;
        let mut cors = None;
        let prefix = m
            .path
            .as_ref()
            .is_none_or(|p| p.type_.is_none_or(|t| t == PathMatchType::PathPrefix));
        for f in &rule.filters {
            if let Some(h) = &f.request_header_modifier {
                header_ops(h, &mut headers.request);
            }
            if let Some(h) = &f.response_header_modifier {
                header_ops(h, &mut headers.response);
            }
            if let Some(u) = &f.url_rewrite {
                rewrite = Some(Rewrite {
                    uri: None,
                    authority: u
                        .hostname
                        .as_deref()
                        .and_then(|h| HeaderValue::from_str(h).ok()),
                    regex: None,
                    path: u.path.as_ref().and_then(|p| path_rewrite(p, prefix)),
                });
            }
            if let Some(rd) = &f.request_redirect {
                redirect = Some(self.redirect(rd, prefix));
            }
            if let Some(c) = &f.cors {
                cors = Some(gateway_cors(c));
            }
            if let Some(mirror) = &f.request_mirror {
                if let Some(b) = &mirror.backend_ref {
                    let percentage = match (&mirror.percent, &mirror.fraction) {
                        (Some(p), _) => f64::from(*p),
                        (None, Some(fr)) => {
                            let d = f64::from(fr.denominator.unwrap_or(100).max(1));
                            100.0 * f64::from(fr.numerator.unwrap_or(0)) / d
                        }
                        (None, None) => 100.0,
                    };
                    let cluster = self.backend_cluster(route, b, port);
                    if percentage > 0.0 {
                        mirrors.push(Mirror {
                            cluster,
                            percentage,
                        });
                    }
                }
            }
        }
        let timeouts = rule.timeouts.as_ref();
        let gep = |t: Option<&String>| {
            t.and_then(|t| sluice_config::validate::gateway_api::gep2257(t))
                .filter(|d| !d.is_zero())
        };
        let request = gep(timeouts.and_then(|t| t.request.as_ref()));
        let backend = gep(timeouts.and_then(|t| t.backend_request.as_ref()));
        // As Istio converts them: `retry` sets the attempts and status codes on top of Istio's
        // default conditions, `backendRequest` bounds each try; without `retry`,
        // `backendRequest` is the route's timeout.
        let (retry, timeout) = match &rule.retry {
            Some(r) => {
                let mut retry = Retry {
                    per_try_timeout: backend,
                    ..Default::default()
                };
                if let Some(attempts) = r.attempts {
                    retry.retries = u32::try_from(attempts).unwrap_or(0);
                }
                retry.status_codes = r
                    .codes
                    .iter()
                    .filter_map(|c| u16::try_from(*c).ok())
                    .collect();
                if let Some(b) = r.backoff.as_ref().and_then(|b| gep(Some(b))) {
                    retry.backoff = b;
                }
                (retry, request)
            }
            None => (Retry::default(), backend.or(request)),
        };
        let policy = RoutePolicy {
            timeout,
            retry,
            rewrite,
            headers,
            mirrors,
            fault: None,
            cors,
        };
        if let Some(rd) = redirect {
            return (Action::Redirect(rd), policy);
        }
        let mut destinations = Vec::new();
        for b in &rule.backend_refs {
            let weight = b.weight.unwrap_or(1);
            if weight <= 0 {
                continue;
            }
            let cluster = self.backend_cluster(route, &b.into(), port);
            let mut own = HeaderPolicy::default();
            for f in &b.filters {
                if let Some(h) = &f.request_header_modifier {
                    header_ops(h, &mut own.request);
                }
                if let Some(h) = &f.response_header_modifier {
                    header_ops(h, &mut own.response);
                }
            }
            destinations.push(WeightedCluster {
                cluster,
                weight: weight as u32,
                headers: (!own.is_empty()).then(|| Arc::new(own)),
            });
        }
        if destinations.is_empty() {
            // No backend to send to (none given, or all weight 0): the spec's 500, UNAVAILABLE
            // for gRPC (503 is grpc-status 14).
            let body = Arc::from(&b""[..]);
            let status = unusable_backend_status(route);
            return (Action::DirectResponse { status, body }, policy);
        }
        let total_weight = destinations.iter().map(|d| d.weight).sum();
        let forward = Forward {
            destinations,
            total_weight,
        };
        (Action::Forward(forward), policy)
    }

    fn redirect(&self, rd: &HttpRequestRedirectFilter, prefix: bool) -> Redirect {
        let scheme = rd.scheme.map(|s| s.as_str().to_string());
        // Port: given; else the scheme's default when the scheme is set (left out of
        // Location); else the listener's (left out when it is the scheme's default).
        let port = rd.port.and_then(|p| u32::try_from(p).ok());
        Redirect {
            status: rd
                .status_code
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(302),
            uri: None,
            path: rd.path.as_ref().and_then(|p| path_rewrite(p, prefix)),
            authority: rd.hostname.clone(),
            port_from_request: port.is_none() && scheme.is_none(),
            scheme,
            port,
        }
    }

    /// The cluster of a backendRef: a Service port (`outbound|<port>||<name>.<ns>.svc.<suffix>`);
    /// anything it cannot be gets a cluster with a problem that answers 500.
    fn backend_cluster(
        &mut self,
        route: &Object,
        b: &BackendObjectReference,
        server_port: u32,
    ) -> String {
        let (name, ns) = (
            b.name.as_deref().unwrap_or(""),
            b.namespace.as_deref().unwrap_or(&route.namespace),
        );
        let fqdn = hosts::service_fqdn(name, ns, &self.id.domain_suffix);
        let port = b.port.and_then(|p| u32::try_from(p).ok());
        let problem = backend_problem(self.store, &self.registry, &self.id.domain_suffix, route, b)
            .map(|(_, why)| why);
        match problem {
            None => {
                let name = self.cluster(route, &fqdn, None, port, server_port);
                // gRPC needs HTTP/2: a GRPCRoute to a Service port that does not say so gets
                // an HTTP/2 (prior knowledge) twin of the cluster; other routes to the port
                // keep its protocol.
                let base = &self.clusters[&name];
                if route.kind != Kind::GrpcRoute || base.http2 {
                    return name;
                }
                let h2 = format!("{name}+h2");
                if !self.clusters.contains_key(&h2) {
                    let mut twin = (**base).clone();
                    twin.name = h2.clone();
                    twin.http2 = true;
                    self.clusters.insert(h2.clone(), Arc::new(twin));
                }
                h2
            }
            Some(why) => {
                // Named for the route that makes the reference, so it never stands in for (or
                // takes the place of) the working cluster of the same Service.
                let cname = format!("invalid|{}|{}|{fqdn}", route.key(), port.unwrap_or(0));
                self.clusters.entry(cname.clone()).or_insert_with(|| {
                    Arc::new(Cluster {
                        name: cname.clone(),
                        host: fqdn.clone(),
                        port: port.unwrap_or(0),
                        subset: String::new(),
                        endpoints: Vec::new(),
                        lb: LbPolicy::LeastRequest,
                        problem: Some(ClusterProblem::InvalidBackendRef {
                            why,
                            status: unusable_backend_status(route),
                        }),
                        http2: false,
                        tls: None,
                        policy: Default::default(),
                        destination: Default::default(),
                    })
                });
                cname
            }
        }
    }
}

/// The certificate of an HTTPS listener: its first `certificateRefs` Secret (the Gateway's
/// namespace unless it names another, which a ReferenceGrant must allow). `Err` carries the
/// spec's reason and a message.
pub(crate) fn listener_certificate(
    store: &Store,
    gw: &Object,
    l: &KubeListener,
) -> Result<crate::tls::TlsSettings, (&'static str, String)> {
    let invalid = |why: &str| ("InvalidCertificateRef", why.to_string());
    let tls = l.tls.as_ref().ok_or_else(|| invalid("no tls block"))?;
    if tls.mode == Some(TlsModeType::Passthrough) {
        return Err(invalid("an HTTPS listener cannot pass TLS through"));
    }
    let r = tls
        .certificate_refs
        .first()
        .ok_or_else(|| invalid("no certificateRefs"))?;
    if r.group.as_deref().is_some_and(|g| !g.is_empty())
        || r.kind.as_deref().is_some_and(|k| k != "Secret")
    {
        return Err(invalid("only Secrets can hold the certificate"));
    }
    let name = r.name.as_deref().unwrap_or("");
    let ns = r.namespace.as_deref().unwrap_or(&gw.namespace);
    if ns != gw.namespace
        && !granted(
            store,
            &gw.namespace,
            gw.kind.as_str(),
            (ns, "", "Secret", name),
        )
    {
        return Err((
            "RefNotPermitted",
            format!(
                "Secret {ns}/{name} is in another namespace and no ReferenceGrant there allows it"
            ),
        ));
    }
    let (cert_chain, private_key, _) =
        crate::tls::from_secret(store, ns, name).map_err(|p| invalid(&p.to_string()))?;
    // Frontend validation is for HTTPS listeners (the spec's scope).
    let (ca, client_auth) = if l.protocol.as_deref() == Some("HTTPS") {
        let v = frontend_tls::validation(store, gw, l);
        (v.ca?, v.client_auth)
    } else {
        (None, crate::tls::ClientAuth::None)
    };
    Ok(crate::tls::TlsSettings {
        ca,
        client_auth,
        ..crate::tls::TlsSettings::simple(cert_chain, private_key)
    })
}

/// The spec's listener distinctness on one port (`clash`) within one object. Conflicted
/// listeners are not served, none of them.
pub(crate) fn listener_conflict(listeners: &[KubeListener], li: usize) -> Option<&'static str> {
    let l = &listeners[li];
    listeners
        .iter()
        .enumerate()
        .filter(|(oi, _)| *oi != li)
        .find_map(|(_, o)| clash(o, l))
}

/// Two listeners on one port that cannot both be served: protocols of different families
/// (HTTP; HTTPS and TLS, told apart by SNI; TCP; UDP), or one family and one hostname.
fn clash(a: &KubeListener, b: &KubeListener) -> Option<&'static str> {
    fn family(l: &KubeListener) -> &str {
        match l.protocol.as_deref() {
            Some("HTTPS" | "TLS") => "TLS",
            other => other.unwrap_or(""),
        }
    }
    if a.port != b.port {
        None
    } else if family(a) != family(b) {
        Some("ProtocolConflict")
    } else if a.hostname == b.hostname {
        Some("HostnameConflict")
    } else {
        None
    }
}

/// The CORS filter on the gateway's CORS handling: origins exact, `*`, or with a left-most
/// `*` label wildcard; `maxAge` 5 s unless set; a preflight from another origin is answered here
/// without CORS headers (the spec's choice), not passed to the backend.
fn gateway_cors(c: &HttpCorsFilter) -> crate::policy::Cors {
    let list = |v: Vec<&str>| {
        (!v.is_empty())
            .then(|| HeaderValue::from_str(&v.join(",")).ok())
            .flatten()
    };
    let allow_origins = c
        .allow_origins
        .iter()
        .filter_map(|o| match o.as_str() {
            "*" => Some(Matcher::Present),
            o if o.contains('*') => {
                let pattern = regex::escape(o).replace(r"\*", "[^/]*");
                full_match_regex(&pattern).ok().map(Matcher::Regex)
            }
            o => Some(Matcher::Exact(o.to_string())),
        })
        .collect();
    crate::policy::Cors {
        allow_origins,
        allow_methods: list(c.allow_methods.iter().map(|m| m.as_str()).collect()),
        allow_headers: list(c.allow_headers.iter().map(String::as_str).collect()),
        expose_headers: list(c.expose_headers.iter().map(String::as_str).collect()),
        max_age: HeaderValue::from_str(&c.max_age.unwrap_or(5).to_string()).ok(),
        allow_credentials: c.allow_credentials == Some(true),
        forward_unmatched_preflights: false,
    }
}

/// Does this parentRef select the listener?
pub(crate) fn attaches(p: &ParentReference, route: &Object, gw: &Object, l: &KubeListener) -> bool {
    p.group.as_deref().unwrap_or(GROUP_DEFAULT) == GROUP_DEFAULT
        && p.kind.as_deref().unwrap_or("Gateway") == gw.kind.as_str()
        && p.namespace.as_deref().unwrap_or(&route.namespace) == gw.namespace
        && p.name.as_deref() == Some(gw.name.as_str())
        && p.section_name
            .as_deref()
            .is_none_or(|s| Some(s) == l.name.as_deref())
        && p.port.is_none_or(|port| Some(port) == l.port)
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`).
fn selector_matches(s: &LabelSelector, labels: &sluice_api::meta::Labels) -> bool {
    sluice_api::meta::selects(&s.match_labels, labels)
        && s.match_expressions.iter().all(|e| {
            let value = e.key.as_deref().and_then(|k| labels.get(k));
            match e.operator.as_deref() {
                Some("In") => value.is_some_and(|v| e.values.contains(v)),
                Some("NotIn") => value.is_none_or(|v| !e.values.contains(v)),
                Some("Exists") => value.is_some(),
                Some("DoesNotExist") => value.is_none(),
                _ => false,
            }
        })
}

fn route_match(m: &HttpRouteMatch) -> Option<RouteMatch> {
    let uri = match &m.path {
        None => Some(Matcher::PathPrefix(String::new())),
        Some(p) => {
            let value = p.value.clone().unwrap_or_else(|| "/".into());
            Some(match p.type_.unwrap_or(PathMatchType::PathPrefix) {
                PathMatchType::Exact => Matcher::Exact(value),
                PathMatchType::PathPrefix => {
                    Matcher::PathPrefix(value.trim_end_matches('/').to_string())
                }
                PathMatchType::RegularExpression => Matcher::Regex(full_match_regex(&value).ok()?),
            })
        }
    };
    let value_matcher = |t: Option<HeaderMatchType>, v: &Option<String>| -> Option<Matcher> {
        let v = v.clone().unwrap_or_default();
        Some(match t.unwrap_or(HeaderMatchType::Exact) {
            HeaderMatchType::Exact => Matcher::Exact(v),
            HeaderMatchType::RegularExpression => Matcher::Regex(full_match_regex(&v).ok()?),
        })
    };
    // The first of several matches on one header name wins (the spec's rule).
    let mut headers: Vec<(String, Matcher)> = Vec::new();
    for h in &m.headers {
        let name = h.name.as_deref().unwrap_or("").to_ascii_lowercase();
        if !headers.iter().any(|(n, _)| *n == name) {
            headers.push((name, value_matcher(h.type_, &h.value)?));
        }
    }
    let mut query_params: Vec<(String, Matcher)> = Vec::new();
    for q in &m.query_params {
        let name = q.name.clone().unwrap_or_default();
        if !query_params.iter().any(|(n, _)| *n == name) {
            query_params.push((name, value_matcher(q.type_, &q.value)?));
        }
    }
    Some(RouteMatch {
        uri,
        method: m.method.map(|x| Matcher::Exact(x.as_str().to_string())),
        headers,
        query_params,
        ..Default::default()
    })
}

fn header_ops(h: &HttpHeaderFilter, ops: &mut HeaderOps) {
    let pair = |x: &HttpHeader| -> Option<(HeaderName, HeaderValue)> {
        Some((
            HeaderName::from_bytes(x.name.as_deref()?.to_ascii_lowercase().as_bytes()).ok()?,
            HeaderValue::from_str(x.value.as_deref().unwrap_or("")).ok()?,
        ))
    };
    ops.set.extend(h.set.iter().filter_map(pair));
    ops.add.extend(h.add.iter().filter_map(pair));
    ops.remove.extend(
        h.remove
            .iter()
            .filter_map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok()),
    );
}

fn path_rewrite(p: &HttpPathModifier, prefix_match: bool) -> Option<PathRewrite> {
    match p.type_? {
        HttpPathModifierType::ReplaceFullPath => Some(PathRewrite::Full(
            p.replace_full_path.clone().unwrap_or_else(|| "/".into()),
        )),
        // Only meaningful under a PathPrefix match (validate refuses other rules).
        HttpPathModifierType::ReplacePrefixMatch if prefix_match => Some(PathRewrite::PrefixMatch(
            p.replace_prefix_match.clone().unwrap_or_default(),
        )),
        HttpPathModifierType::ReplacePrefixMatch => None,
    }
}

/// Route kinds of the Gateway API sluice serves, in the order status lists them.
pub(crate) const ROUTE_KINDS: [Kind; 4] = [
    Kind::HttpRoute,
    Kind::GrpcRoute,
    Kind::TlsRoute,
    Kind::TcpRoute,
];

/// What attachment and status read of any route kind.
pub(crate) struct RouteParts<'a> {
    pub parents: &'a [ParentReference],
    pub hostnames: &'a [String],
    route: &'a Object,
}

impl RouteParts<'_> {
    /// Every backend the route names (backendRefs and mirrors), with where it is written; made
    /// on demand, since attachment (asked pairwise among routes) needs none.
    pub fn backends(&self) -> Vec<(P, BackendObjectReference)> {
        match &self.route.body {
            sluice_config::Body::HttpRoute(r) => http_backends(&r.rules),
            sluice_config::Body::GrpcRoute(r) => http_backends(&grpc_as_http(r).rules),
            sluice_config::Body::TlsRoute(r) => l4_backends(&r.rules),
            sluice_config::Body::TcpRoute(r) => l4_backends(&r.rules),
            _ => Vec::new(),
        }
    }
}

pub(crate) fn route_parts(o: &Object) -> Option<RouteParts<'_>> {
    let (parents, hostnames): (&[ParentReference], &[String]) = match &o.body {
        sluice_config::Body::HttpRoute(r) => (&r.parent_refs, &r.hostnames),
        sluice_config::Body::GrpcRoute(r) => (&r.parent_refs, &r.hostnames),
        sluice_config::Body::TlsRoute(r) => (&r.parent_refs, &r.hostnames),
        sluice_config::Body::TcpRoute(r) => (&r.parent_refs, &[][..]),
        _ => return None,
    };
    Some(RouteParts {
        parents,
        hostnames,
        route: o,
    })
}

/// The backendRefs and mirror backends of HTTPRoute rules (a GRPCRoute's, read as HTTPRoute's).
fn http_backends(rules: &[HttpRouteRule]) -> Vec<(P, BackendObjectReference)> {
    let mut out = Vec::new();
    for (ri, rule) in rules.iter().enumerate() {
        let at = P::spec().k("rules").i(ri);
        for (bi, b) in rule.backend_refs.iter().enumerate() {
            out.push((at.k("backendRefs").i(bi), b.into()));
        }
        for (fi, f) in rule.filters.iter().enumerate() {
            if let Some(b) = f
                .request_mirror
                .as_ref()
                .and_then(|m| m.backend_ref.clone())
            {
                let path = at.k("filters").i(fi).k("requestMirror").k("backendRef");
                out.push((path, b));
            }
        }
    }
    out
}

fn l4_backends(rules: &[L4RouteRule]) -> Vec<(P, BackendObjectReference)> {
    let mut out = Vec::new();
    for (ri, rule) in rules.iter().enumerate() {
        for (bi, b) in rule.backend_refs.iter().enumerate() {
            out.push((P::spec().k("rules").i(ri).k("backendRefs").i(bi), b.into()));
        }
    }
    out
}

/// A namespace's labels (Namespaces are cluster-scoped: found by name wherever the loader
/// filed them), with the name label Kubernetes gives every namespace.
fn namespace_labels(store: &Store, namespace: &str) -> sluice_api::meta::Labels {
    let mut labels = store
        .of_kind(Kind::Namespace)
        .find(|n| n.name == namespace)
        .map(|n| n.meta.labels.clone())
        .unwrap_or_default();
    labels.insert("kubernetes.io/metadata.name".into(), namespace.to_string());
    labels
}

/// Creation time (objects without one last), then `namespace/name`: the spec's tie-break.
pub(crate) fn oldest_first(a: &Object, b: &Object) -> std::cmp::Ordering {
    let stamp = |o: &Object| o.meta.creation_timestamp.clone();
    match (stamp(a), stamp(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
    .then_with(|| a.key().cmp(&b.key()))
}
