//! The compile: Store + gateway identity → Snapshot. Pure: same input, same output.
use crate::analyze::is_catch_all_route;
use crate::binding::{gateway_ref, ServerHost};
use crate::hosts;
use crate::registry::{Registry, Service};
use crate::snapshot::*;
use crate::tls;
use sluice_api::istio::{
    Destination, HttpMatchRequest, HttpRoute, RedirectPortSelection, StringMatch, Subset,
};
use sluice_api::meta::Labels;
use sluice_config::diag::codes;
use sluice_config::validate::full_match_regex;
use sluice_config::{Diagnostic, Kind, Object, Severity, Store};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub(crate) mod gateway_api;
pub mod ingress;

/// Who this gateway instance is: the labels Gateways select, where it runs, how it binds.
#[derive(Debug, Clone)]
pub struct GatewayIdentity {
    pub labels: Labels,
    pub namespace: String,
    pub domain_suffix: String,
    /// Gateway (service) port → port to bind (`--port-map`); wins over the own Service's
    /// translation. Ports neither maps bind as they are.
    pub port_map: BTreeMap<u32, u32>,
    /// The instance's address, to find its own ServiceEntry (`--instance-ip`).
    pub instance_ip: Option<String>,
    /// Gateway API GatewayClass names whose Gateways this instance serves (`--gateway-class`),
    /// besides classes whose controller is sluice's or Istio's.
    pub gateway_classes: Vec<String>,
    /// `namespace/name` of the Gateway API Gateways this instance serves (`--gateway`); empty:
    /// every Gateway of its classes (one process per Gateway sets one).
    pub gateway_names: Vec<String>,
    /// Ingress classes this instance serves (`--ingress-class`; Istio's `ingressClass`), by the
    /// `kubernetes.io/ingress.class` annotation or an `ingressClassName` without an IngressClass.
    pub ingress_classes: Vec<String>,
    /// The mesh's workload certificates, for ISTIO_MUTUAL toward backends.
    pub mesh_certs: Option<tls::MeshCerts>,
    /// The instance's `region/zone/subzone` (`--locality`), for locality failover.
    pub locality: Option<String>,
}

impl Default for GatewayIdentity {
    fn default() -> Self {
        GatewayIdentity {
            labels: Labels::from([("istio".to_string(), "ingressgateway".to_string())]),
            namespace: "istio-system".into(),
            domain_suffix: "cluster.local".into(),
            port_map: BTreeMap::new(),
            instance_ip: None,
            gateway_classes: vec!["sluice".into(), "istio".into()],
            gateway_names: Vec::new(),
            ingress_classes: vec!["istio".into(), "sluice".into()],
            mesh_certs: None,
            locality: None,
        }
    }
}

impl GatewayIdentity {
    /// Gateway (service) port → the port this instance binds for it: `--port-map`, else the
    /// instance's own Service's `targetPort` (as Istio translates), else the port itself.
    pub fn bind_ports(&self, store: &Store) -> BTreeMap<u32, u32> {
        let mut ports = crate::instance::port_translation(
            store,
            &self.namespace,
            &self.labels,
            self.instance_ip.as_deref(),
        );
        ports.extend(self.port_map.iter().map(|(k, v)| (*k, *v)));
        ports
    }

    fn selects(&self, selector: &Labels) -> bool {
        sluice_api::meta::selects(selector, &self.labels)
    }
}

/// One plaintext HTTP server of a selected Gateway.
struct HttpServer<'a> {
    gateway: &'a Arc<Object>,
    hosts: Cow<'a, [String]>,
    https_redirect: bool,
    port_name: Cow<'a, str>,
    /// Set for TLS-terminating (HTTPS) servers.
    tls: Option<Arc<crate::tls::TlsSettings>>,
    /// A Gateway API listener (its index in the Gateway's `listeners`): HTTPRoutes attach to it,
    /// VirtualServices do not.
    kube_listener: Option<usize>,
}

struct Compiler<'a> {
    store: &'a Store,
    id: &'a GatewayIdentity,
    /// Gateway port → bound port (`GatewayIdentity::bind_ports`).
    bind_ports: BTreeMap<u32, u32>,
    registry: Registry,
    clusters: BTreeMap<String, Arc<Cluster>>,
    diags: Vec<Diagnostic>,
}

pub fn compile(store: &Store, id: &GatewayIdentity) -> (Snapshot, Vec<Diagnostic>) {
    let mut c = Compiler {
        store,
        id,
        bind_ports: id.bind_ports(store),
        registry: Registry::build(store, &id.domain_suffix, &id.namespace),
        clusters: BTreeMap::new(),
        diags: Vec::new(),
    };
    // Servers by Gateway port, Gateways in creation order.
    let mut by_port: BTreeMap<u32, Vec<GatewayServer>> = BTreeMap::new();
    for gw in store.of_kind(Kind::Gateway) {
        let spec = gw.gateway().expect("kind");
        if !id.selects(&spec.selector) {
            continue;
        }
        for (i, server) in spec.servers.iter().enumerate() {
            if let Some((number, s)) = c.server(gw, i, server) {
                by_port.entry(number).or_default().push(s);
            }
        }
    }
    for gw in c.kube_gateways() {
        for (port, s) in c.kube_servers(gw) {
            by_port.entry(port).or_default().push(s);
        }
    }
    for (port, s) in c.ingress_servers() {
        by_port.entry(port).or_default().push(s);
    }
    let mut snapshot = Snapshot::default();
    for (port, servers) in by_port {
        let bind = c.bind_port(port);
        if let Some(first) = snapshot.listeners.get(&bind) {
            // Two Gateway ports that bind one port (a translated 80 → 8080 beside a server on
            // 8080): the first keeps it; Istio would merge them, which sluice does not yet.
            let message = format!("Gateway port {port} binds port {bind}, which Gateway port {} already uses; its servers are not served (change --port-map or the Gateway)", first.service_port);
            c.diags.push(Diagnostic::new(
                Severity::Warning,
                codes::SERVER_NOT_SERVED,
                message,
            ));
            continue;
        }
        let protocol = c.listener(port, servers, &mut snapshot);
        snapshot
            .listeners
            .insert(bind, Listener::new(bind, port, protocol));
    }
    if snapshot.listeners.is_empty() {
        c.diags.push(nothing_to_serve(store, id));
    }
    snapshot.clusters = c.clusters;
    (snapshot, c.diags)
}

/// Why an instance has nothing to listen on, in the terms of its cause.
fn nothing_to_serve(store: &Store, id: &GatewayIdentity) -> Diagnostic {
    let labels = |l: &Labels| {
        l.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let gateways: Vec<&Arc<Object>> = store.of_kind(Kind::Gateway).collect();
    let selecting = gateways
        .iter()
        .filter(|g| id.selects(&g.gateway().expect("kind").selector))
        .count();
    let message = if gateways.is_empty() {
        "no Gateway in the configuration: this instance has nothing to listen on".to_string()
    } else if selecting == 0 {
        let found: Vec<String> = gateways
            .iter()
            .map(|g| {
                format!(
                    "{} selects {}",
                    g.key(),
                    labels(&g.gateway().expect("kind").selector)
                )
            })
            .collect();
        format!(
            "no Gateway selects this instance (labels {}): {}; run with --gateway-labels set to one of those selectors",
            labels(&id.labels),
            found.join("; ")
        )
    } else {
        format!("{selecting} Gateway(s) select this instance, but none of their servers can be served (the warnings above say why for each); nothing to listen on")
    };
    Diagnostic::new(Severity::Warning, codes::SERVER_NOT_SERVED, message)
}

/// A server of a selected Gateway, by what its port speaks.
struct GatewayServer<'a> {
    gateway: &'a Arc<Object>,
    /// Position in the Gateway's `servers` (a Gateway API Gateway's `listeners`).
    index: usize,
    hosts: Cow<'a, [String]>,
    kind: ServerKind<'a>,
}

enum ServerKind<'a> {
    /// Plaintext HTTP (HTTP, HTTP2, GRPC), or HTTPS terminated here.
    Http(HttpServer<'a>),
    Tcp,
    /// TLS passed through by SNI (protocol TLS or HTTPS with mode PASSTHROUGH).
    Passthrough,
    /// Protocol TLS terminated here, then `tcp[]` routes.
    TerminatedTcp(Arc<tls::TlsSettings>),
}

impl ServerKind<'_> {
    /// TLS ports choose a server by SNI; plaintext ones do not.
    fn is_tls(&self) -> bool {
        match self {
            ServerKind::Http(h) => h.tls.is_some(),
            ServerKind::Tcp => false,
            ServerKind::Passthrough | ServerKind::TerminatedTcp(_) => true,
        }
    }

    fn protocol(&self) -> &'static str {
        match self {
            ServerKind::Http(h) if h.tls.is_some() => "HTTPS",
            ServerKind::Http(_) => "HTTP",
            ServerKind::Tcp => "TCP",
            ServerKind::Passthrough | ServerKind::TerminatedTcp(_) => "TLS",
        }
    }
}

fn lower_hosts(hosts: &[String]) -> Vec<String> {
    hosts
        .iter()
        .map(|h| ServerHost::parse(h).host.to_ascii_lowercase())
        .collect()
}

impl<'a> Compiler<'a> {
    /// VirtualServices exported to the gateway's namespace, in creation order.
    fn visible_virtual_services(&self) -> Vec<Arc<Object>> {
        self.store
            .of_kind(Kind::VirtualService)
            .filter(|o| {
                let spec = o.virtual_service().expect("kind");
                crate::visibility::exported(&spec.export_to, &o.namespace, &self.id.namespace)
            })
            .cloned()
            .collect()
    }

    fn bind_port(&self, port: u32) -> u32 {
        self.bind_ports.get(&port).copied().unwrap_or(port)
    }

    /// What one Gateway server serves, by port number; `None` (with a diagnostic saying why)
    /// for a server that cannot be served.
    fn server(
        &mut self,
        gw: &'a Arc<Object>,
        i: usize,
        server: &'a sluice_api::istio::Server,
    ) -> Option<(u32, GatewayServer<'a>)> {
        use sluice_api::istio::ServerTlsMode;
        let port = server.port.as_ref()?;
        let (number, proto) = (port.number?, port.protocol.as_deref()?);
        let path = sluice_config::validate::P::spec().k("servers").i(i);
        let mode = server.tls.as_ref().and_then(|t| t.mode);
        let proto = proto.to_ascii_uppercase();
        let skip = |c: &mut Compiler, at: &sluice_config::validate::P, why: String| {
            c.diags.push(Diagnostic {
                resource: Some(gw.resource()),
                ..Diagnostic::new(Severity::Warning, codes::SERVER_NOT_SERVED, why)
                    .at(gw.origin_at(&at.0))
            });
            None
        };
        // A terminating server's certificate, or a warning and the server skipped.
        let settings = |c: &mut Compiler| -> Option<Arc<tls::TlsSettings>> {
            let Some(t) = server.tls.as_ref() else {
                c.diags.push(Diagnostic {
                    resource: Some(gw.resource()),
                    ..Diagnostic::new(Severity::Warning, codes::INVALID_GATEWAY_CREDENTIAL, format!("server {i} of Gateway {} (port {number}, {proto}) has no tls block, so no certificate; it is skipped", gw.key()))
                        .at(gw.origin_at(&path.k("port").0))
                });
                return None;
            };
            match tls::settings(t, c.store, &c.id.namespace) {
                Ok(settings) => Some(Arc::new(settings)),
                Err(problem) => {
                    c.diags.push(Diagnostic {
                        resource: Some(gw.resource()),
                        ..Diagnostic::new(Severity::Warning, codes::INVALID_GATEWAY_CREDENTIAL, format!("server {i} of Gateway {} (port {number}) has no usable certificate: {problem}; it is skipped", gw.key()))
                            .at(gw.origin_at(&path.k("tls").0))
                    });
                    None
                }
            }
        };
        let kind = match (proto.as_str(), mode) {
            ("HTTPS" | "TLS", Some(ServerTlsMode::Passthrough)) => ServerKind::Passthrough,
            (_, Some(ServerTlsMode::AutoPassthrough | ServerTlsMode::IstioMutual))
                if matches!(proto.as_str(), "HTTPS" | "TLS") =>
            {
                let mode = mode.expect("matched").as_str();
                return skip(self, &path.k("tls").k("mode"), format!("tls mode {mode} serves mesh traffic (east-west), which a standalone gateway does not; server {i} of Gateway {} (port {number}) is skipped", gw.key()));
            }
            ("TCP", _) => ServerKind::Tcp,
            ("TLS", _) => ServerKind::TerminatedTcp(settings(self)?),
            ("HTTP" | "HTTP2" | "GRPC" | "HTTPS", _) => {
                let tls = if proto == "HTTPS" {
                    Some(settings(self)?)
                } else {
                    None
                };
                ServerKind::Http(HttpServer {
                    gateway: gw,
                    hosts: Cow::Borrowed(&server.hosts),
                    kube_listener: None,
                    // Istio ignores httpsRedirect on a server that terminates TLS.
                    https_redirect: tls.is_none()
                        && server.tls.as_ref().and_then(|t| t.https_redirect) == Some(true),
                    port_name: Cow::Borrowed(port.name.as_deref().unwrap_or("")),
                    tls,
                })
            }
            (other, _) => {
                return skip(self, &path.k("port").k("protocol"), format!("{other} servers are not served by this version of sluice; port {number} of Gateway {} is skipped", gw.key()));
            }
        };
        Some((
            number,
            GatewayServer {
                gateway: gw,
                index: i,
                hosts: Cow::Borrowed(&server.hosts),
                kind,
            },
        ))
    }

    /// The listener of one Gateway port. A port speaks one protocol: TLS servers (HTTPS and
    /// TLS, chosen by SNI) take it first, then plaintext HTTP, then TCP; servers of another
    /// protocol on the same port are left out with a warning.
    fn listener(
        &mut self,
        port: u32,
        servers: Vec<GatewayServer<'a>>,
        snapshot: &mut Snapshot,
    ) -> ListenerProtocol {
        // As Istio: the first server (Gateways in creation order) decides what the port speaks;
        // later servers of a protocol that cannot share it are skipped.
        let chosen = match servers.first().map(|s| &s.kind) {
            Some(k) if k.is_tls() => "TLS",
            Some(ServerKind::Http(_)) => "HTTP",
            _ => "TCP",
        };
        let kept: Vec<GatewayServer> = servers
            .into_iter()
            .filter(|s| {
                let fits = match chosen {
                    "TLS" => s.kind.is_tls(),
                    "HTTP" => matches!(s.kind, ServerKind::Http(_)),
                    _ => matches!(s.kind, ServerKind::Tcp),
                };
                if !fits {
                    let list = if s.gateway.kind.owns_listeners() {
                        "listeners"
                    } else {
                        "servers"
                    };
                    let path = sluice_config::validate::P::spec().k(list).i(s.index).k("port");
                    self.diags.push(Diagnostic {
                        resource: Some(s.gateway.resource()),
                        ..Diagnostic::new(Severity::Warning, codes::SERVER_NOT_SERVED, format!("server {} of Gateway {} ({} on port {port}) is skipped: port {port} already serves {chosen}, and one port speaks one protocol", s.index, s.gateway.key(), s.kind.protocol()))
                            .at(s.gateway.origin_at(&path.0))
                    });
                }
                fits
            })
            .collect();
        match chosen {
            "TLS" => {
                let mut servers = Vec::new();
                // Host → the server that claimed it first on this port (IST0145): a later
                // server claiming one of them is skipped whole, as Istio does.
                let mut claimed: HashMap<String, String> = HashMap::new();
                for s in &kept {
                    let (gw, sni) = (s.gateway, lower_hosts(&s.hosts));
                    if gw.kind == Kind::Gateway {
                        // Within one Gateway too: Istio keeps the first server of a host.
                        let taken = sni
                            .iter()
                            .find_map(|h| claimed.get(h).map(|first| (h, first)));
                        if let Some((host, first)) = taken {
                            let path = sluice_config::validate::P::spec().k("servers").i(s.index);
                            self.diags.push(Diagnostic {
                                resource: Some(gw.resource()),
                                ..Diagnostic::new(Severity::Warning, codes::CONFLICTING_GATEWAYS, format!("server {} of Gateway {} is skipped: {first} serves {host} on port {port} already", s.index, gw.key()))
                                    .at(gw.origin_at(&path.0))
                            });
                            continue;
                        }
                        for h in &sni {
                            claimed.entry(h.clone()).or_insert_with(|| {
                                format!("server {} of Gateway {}", s.index, gw.key())
                            });
                        }
                    }
                    if let (ServerKind::TerminatedTcp(settings), true) =
                        (&s.kind, gw.kind.owns_listeners())
                    {
                        // One server per TLSRoute, chosen by the route's own SNI names (the
                        // listener's hostname narrowed), so each SNI reaches its route.
                        for route in self.kube_l4_routes(gw, s.index, port) {
                            servers.push(TlsServer {
                                name: format!(
                                    "tcp.{port}.{}.{}.{}.{}",
                                    s.index, gw.name, gw.namespace, route.virtual_service
                                ),
                                sni: route.sni.clone(),
                                mode: ServerMode::Tcp {
                                    settings: settings.clone(),
                                    routes: vec![route],
                                },
                            });
                        }
                        continue;
                    }
                    let one = [(gw, &s.hosts[..])];
                    let (name, mode) = match &s.kind {
                        ServerKind::Http(h) => {
                            // A Gateway API Gateway gets the name of the Istio Gateway Istio
                            // would generate for it (no clash with an Istio Gateway's table).
                            let (gw_name, gw_ns) = match (h.kube_listener, gw.kind) {
                                (Some(_), _) => (
                                    format!("{}-istio-autogenerated-k8s-gateway", gw.name),
                                    gw.namespace.as_str(),
                                ),
                                (None, Kind::Ingress) => {
                                    (ingress::gateway_name(gw), self.id.namespace.as_str())
                                }
                                (None, _) => (gw.name.clone(), gw.namespace.as_str()),
                            };
                            let name = format!("https.{port}.{}.{gw_name}.{gw_ns}", h.port_name);
                            let table = self.route_table(&name, port, std::slice::from_ref(h));
                            snapshot.route_tables.insert(name.clone(), Arc::new(table));
                            let settings = h.tls.clone().expect("TLS server");
                            let route_table = name.clone();
                            (
                                name,
                                ServerMode::Http {
                                    settings,
                                    route_table,
                                },
                            )
                        }
                        ServerKind::TerminatedTcp(settings) => (
                            format!("tcp.{port}.{}.{}.{}", s.index, gw.name, gw.namespace),
                            ServerMode::Tcp {
                                settings: settings.clone(),
                                routes: self.l4_routes(port, &one, false),
                            },
                        ),
                        ServerKind::Passthrough => (
                            format!("tls.{port}.{}.{}.{}", s.index, gw.name, gw.namespace),
                            ServerMode::Passthrough {
                                routes: if gw.kind.owns_listeners() {
                                    self.kube_l4_routes(gw, s.index, port)
                                } else {
                                    self.l4_routes(port, &one, true)
                                },
                            },
                        ),
                        ServerKind::Tcp => unreachable!("filtered"),
                    };
                    servers.push(TlsServer { name, sni, mode });
                }
                ListenerProtocol::Tls { servers }
            }
            "HTTP" => {
                let http: Vec<HttpServer> = kept
                    .into_iter()
                    .filter_map(|s| match s.kind {
                        ServerKind::Http(h) => Some(h),
                        _ => None,
                    })
                    .collect();
                let name = format!("http.{}", self.bind_port(port));
                let table = self.route_table(&name, port, &http);
                snapshot.route_tables.insert(name.clone(), Arc::new(table));
                ListenerProtocol::Http { route_table: name }
            }
            _ => {
                let istio: Vec<(&Arc<Object>, &[String])> = kept
                    .iter()
                    .filter(|s| s.gateway.kind == Kind::Gateway)
                    .map(|s| (s.gateway, &s.hosts[..]))
                    .collect();
                let mut routes = self.l4_routes(port, &istio, false);
                for s in kept.iter().filter(|s| s.gateway.kind.owns_listeners()) {
                    routes.extend(self.kube_l4_routes(s.gateway, s.index, port));
                }
                ListenerProtocol::Tcp { routes }
            }
        }
    }
}

impl Compiler<'_> {
    /// `tcp[]` (or, for PASSTHROUGH servers, `tls[]`) routes of the VirtualServices bound to
    /// these servers, in creation order.
    fn l4_routes(
        &mut self,
        port: u32,
        servers: &[(&Arc<Object>, &[String])],
        passthrough: bool,
    ) -> Vec<L4Route> {
        let gateways: Vec<(String, String)> = servers
            .iter()
            .map(|(gw, _)| (gw.namespace.clone(), gw.name.clone()))
            .collect();
        let applies = |vs_ns: &str, match_gateways: &[String], match_port: Option<u32>| {
            match_port.is_none_or(|p| p == port)
                && (match_gateways.is_empty()
                    || match_gateways
                        .iter()
                        .any(|g| gateway_ref(g, vs_ns).is_some_and(|r| gateways.contains(&r))))
        };
        let mut out = Vec::new();
        let vss = self.visible_virtual_services();
        for vs in &vss {
            let spec = vs.virtual_service().expect("kind");
            let bound = servers.iter().any(|(gw, hosts)| {
                spec.gateways.iter().any(|g| {
                    gateway_ref(g, &vs.namespace) == Some((gw.namespace.clone(), gw.name.clone()))
                }) && spec.hosts.iter().any(|h| {
                    let fqdn = hosts::fqdn(h, &vs.namespace, &self.id.domain_suffix);
                    hosts.iter().any(|sh| {
                        ServerHost::parse(sh)
                            .bind(&fqdn, &vs.namespace, &gw.namespace)
                            .is_some()
                    })
                })
            });
            if !bound {
                continue;
            }
            let routes: Vec<(usize, Vec<String>, &[sluice_api::istio::RouteDestination])> =
                if passthrough {
                    spec.tls
                        .iter()
                        .enumerate()
                        .filter_map(|(i, r)| {
                            let matching: Vec<_> = r
                                .match_
                                .iter()
                                .filter(|m| applies(&vs.namespace, &m.gateways, m.port))
                                .collect();
                            if !r.match_.is_empty() && matching.is_empty() {
                                return None;
                            }
                            let sni = matching
                                .iter()
                                .flat_map(|m| m.sni_hosts.iter().map(|h| h.to_ascii_lowercase()))
                                .collect();
                            Some((i, sni, &r.route[..]))
                        })
                        .collect()
                } else {
                    spec.tcp
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| {
                            r.match_.is_empty()
                                || r.match_
                                    .iter()
                                    .any(|m| applies(&vs.namespace, &m.gateways, m.port))
                        })
                        .map(|(i, r)| (i, Vec::new(), &r.route[..]))
                        .collect()
                };
            for (index, sni, route) in routes {
                let entries: Vec<_> = route
                    .iter()
                    .map(|d| (d.destination.as_ref(), d.weight, None))
                    .collect();
                let destinations = self.weighted(vs, &entries, port);
                if destinations.is_empty() {
                    continue;
                }
                out.push(L4Route {
                    virtual_service: vs.key(),
                    kind: "VirtualService",
                    index,
                    total_weight: destinations.iter().map(|d| d.weight).sum(),
                    sni,
                    destinations,
                });
            }
        }
        out
    }

    fn route_table(&mut self, name: &str, port: u32, servers: &[HttpServer]) -> RouteTable {
        // Gateway API listeners: HTTPRoutes' routes by domain, in the spec's precedence across
        // every route of every listener of the port.
        let mut found = Vec::new();
        for server in servers {
            found.extend(self.kube_routes(server, port));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut kube: Vec<(String, Vec<Route>)> = Vec::new();
        for (domain, _, route) in found {
            match kube.last_mut() {
                Some((d, routes)) if *d == domain => routes.push(route),
                _ => kube.push((domain, vec![route])),
            }
        }
        // domain → (https redirect, [(vs, routes)])
        let mut vhosts: Vec<(String, bool, Vec<Arc<Object>>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut add = |domain: String, redirect: bool, vs: Option<&Arc<Object>>| {
            let i = *index.entry(domain.clone()).or_insert_with(|| {
                vhosts.push((domain, false, Vec::new()));
                vhosts.len() - 1
            });
            vhosts[i].1 |= redirect;
            if let Some(vs) = vs {
                if !vhosts[i].2.iter().any(|v| Arc::ptr_eq(v, vs)) {
                    vhosts[i].2.push(vs.clone());
                }
            }
        };
        for server in servers {
            // A redirecting server answers for its hosts even when no VirtualService binds.
            if server.https_redirect {
                for h in server.hosts.iter() {
                    add(ServerHost::parse(h).host.to_ascii_lowercase(), true, None);
                }
            }
        }
        for (domain, _) in &kube {
            add(domain.clone(), false, None);
        }
        // Ingress paths: one host's list across Ingresses is served by the servers of the
        // oldest Ingress with that host (Istio binds the host's merged VirtualService to that
        // Ingress's Gateway), on the domains its servers' hosts share with it.
        let mut ingress_routes: Vec<(String, Vec<Route>)> = Vec::new();
        if servers.iter().any(|s| s.gateway.kind == Kind::Ingress) {
            let mut built: HashMap<String, Vec<Route>> =
                self.ingress_routes(port, None).into_iter().collect();
            for (host, owner) in ingress::host_owners(self.store, &self.id.ingress_classes) {
                let domains: Vec<String> = servers
                    .iter()
                    .filter(|s| s.gateway.kind == Kind::Ingress && s.gateway.key() == owner)
                    .flat_map(|s| s.hosts.iter())
                    .filter_map(|sh| hosts::intersect(sh, &host).map(str::to_string))
                    .collect();
                for domain in domains {
                    // A host's routes are built once; a second domain builds them again.
                    let routes = match built.remove(&host) {
                        Some(r) => r,
                        None => self
                            .ingress_routes(port, Some(&host))
                            .pop()
                            .map(|(_, r)| r)
                            .unwrap_or_default(),
                    };
                    add(domain.clone(), false, None);
                    match ingress_routes.iter_mut().find(|(d, _)| *d == domain) {
                        Some((_, existing)) => existing.extend(routes),
                        None => ingress_routes.push((domain, routes)),
                    }
                }
            }
        }
        for vs in &self.visible_virtual_services() {
            let spec = vs.virtual_service().expect("kind");
            for server in servers
                .iter()
                .filter(|s| s.kube_listener.is_none() && s.gateway.kind == Kind::Gateway)
            {
                let gw = server.gateway;
                let bound = spec.gateways.iter().any(|g| {
                    gateway_ref(g, &vs.namespace) == Some((gw.namespace.clone(), gw.name.clone()))
                });
                if !bound {
                    continue;
                }
                for host in &spec.hosts {
                    let vs_host = hosts::fqdn(host, &vs.namespace, &self.id.domain_suffix);
                    for sh in server.hosts.iter() {
                        let sh = ServerHost::parse(sh);
                        if let Some(domain) = sh.bind(&vs_host, &vs.namespace, &gw.namespace) {
                            add(domain.to_ascii_lowercase(), server.https_redirect, Some(vs));
                        }
                    }
                }
            }
        }
        let gateways: Vec<(String, String)> = servers
            .iter()
            .map(|s| (s.gateway.namespace.clone(), s.gateway.name.clone()))
            .collect();
        let mut virtual_hosts: Vec<VirtualHost> = vhosts
            .into_iter()
            .map(|(domain, https_redirect, vss)| {
                let mut routes = if https_redirect {
                    Vec::new()
                } else {
                    self.merge_routes(&vss, port, &gateways)
                };
                // HTTPRoutes' and Ingresses' routes follow the VirtualServices' on a shared host.
                if let Some(i) = kube.iter().position(|(d, _)| *d == domain) {
                    routes.extend(kube.swap_remove(i).1);
                }
                if let Some(i) = ingress_routes.iter().position(|(d, _)| *d == domain) {
                    routes.extend(ingress_routes.swap_remove(i).1);
                }
                VirtualHost {
                    name: format!("{domain}:{port}"),
                    routes,
                    domain,
                    https_redirect,
                }
            })
            .collect();
        if virtual_hosts.is_empty() {
            // As Istio: a route table nothing binds to answers every request with 404.
            virtual_hosts.push(VirtualHost {
                name: format!("blackhole:{port}"),
                domain: "*".into(),
                routes: Vec::new(),
                https_redirect: false,
            });
        }
        RouteTable::new(name.to_string(), virtual_hosts)
    }

    /// VirtualServices in creation order, each cut after its first catch-all, routes appended,
    /// then catch-alls moved (stably) behind the rest.
    fn merge_routes(
        &mut self,
        vss: &[Arc<Object>],
        port: u32,
        gateways: &[(String, String)],
    ) -> Vec<Route> {
        let mut specific = Vec::new();
        let mut catch_alls = Vec::new();
        for vs in vss {
            let spec = vs.virtual_service().expect("kind");
            for (i, r) in spec.http.iter().enumerate() {
                let routes = match &r.delegate {
                    Some(d) => self.delegated(vs, r, d, port, gateways),
                    None => self.route(vs, i, r, port, gateways).into_iter().collect(),
                };
                if is_catch_all_route(r) {
                    catch_alls.extend(routes);
                    break;
                }
                specific.extend(routes);
            }
        }
        specific.extend(catch_alls);
        specific
    }

    /// The delegate VirtualService's routes under a root route (one level; a delegate that is
    /// missing, has hosts or delegates again contributes nothing, and `validate` says why).
    fn delegated(
        &mut self,
        root_vs: &Object,
        root: &HttpRoute,
        d: &sluice_api::istio::Delegate,
        port: u32,
        gateways: &[(String, String)],
    ) -> Vec<Route> {
        let ns = d.namespace.as_deref().unwrap_or(&root_vs.namespace);
        let Some(delegate) = self
            .store
            .get(Kind::VirtualService, ns, d.name.as_deref().unwrap_or(""))
            .cloned()
        else {
            return Vec::new();
        };
        let spec = delegate.virtual_service().expect("kind");
        if !spec.hosts.is_empty() || !spec.gateways.is_empty() {
            return Vec::new();
        }
        spec.http
            .iter()
            .enumerate()
            .filter(|(_, r)| r.delegate.is_none())
            .filter_map(|(i, r)| {
                let merged = crate::delegate::merge_route(root, r)?;
                // Matches name the root's gateways; destinations resolve in the delegate's namespace.
                self.route(&delegate, i, &merged, port, gateways)
            })
            .collect()
    }

    fn route(
        &mut self,
        vs: &Object,
        index: usize,
        r: &HttpRoute,
        port: u32,
        gateways: &[(String, String)],
    ) -> Option<Route> {
        // Matches restricted to other gateways do not apply here; a route left with none is dropped.
        let applicable: Vec<&HttpMatchRequest> = r
            .match_
            .iter()
            .filter(|m| {
                m.gateways.is_empty()
                    || m.gateways.iter().any(|g| {
                        gateway_ref(g, &vs.namespace).is_some_and(|gr| gateways.contains(&gr))
                    })
            })
            .collect();
        if !r.match_.is_empty() && applicable.is_empty() {
            return None;
        }
        let matches = applicable
            .into_iter()
            .map(compile_match)
            .collect::<Option<Vec<_>>>()?;
        let action = if let Some(rd) = &r.redirect {
            Action::Redirect(Redirect {
                status: rd.redirect_code.unwrap_or(301) as u16,
                uri: rd.uri.clone(),
                path: None,
                authority: rd.authority.clone(),
                scheme: rd.scheme.clone(),
                port: rd.port,
                port_from_request: rd.derive_port == Some(RedirectPortSelection::FromRequestPort),
            })
        } else if let Some(dr) = &r.direct_response {
            let body: Vec<u8> = match &dr.body {
                Some(b) => match (&b.string, &b.bytes) {
                    (Some(s), _) => s.clone().into_bytes(),
                    (None, Some(b64)) => {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .unwrap_or_default()
                    }
                    _ => Vec::new(),
                },
                None => Vec::new(),
            };
            Action::DirectResponse {
                status: dr.status.unwrap_or(200) as u16,
                body: body.into(),
            }
        } else {
            let entries: Vec<_> = r
                .route
                .iter()
                .map(|d| (d.destination.as_ref(), d.weight, d.headers.as_ref()))
                .collect();
            let destinations = self.weighted(vs, &entries, port);
            if destinations.is_empty() {
                return None; // nothing to send to: the route is dropped
            }
            let total_weight = destinations.iter().map(|d| d.weight).sum();
            Action::Forward(Forward {
                destinations,
                total_weight,
            })
        };
        let policy = self.policy(vs, r, port);
        Some(Route {
            virtual_service: vs.key(),
            kind: "VirtualService",
            index,
            name: r.name.clone(),
            matches,
            action,
            policy,
        })
    }

    fn policy(&mut self, vs: &Object, r: &HttpRoute, port: u32) -> RoutePolicy {
        let mut mirrors: Vec<(&Destination, f64)> = r
            .mirrors
            .iter()
            .filter_map(|m| {
                Some((
                    m.destination.as_ref()?,
                    crate::policy::mirror_percentage(m.percentage, None),
                ))
            })
            .collect();
        if let Some(m) = &r.mirror {
            let pct = crate::policy::mirror_percentage(r.mirror_percentage, r.mirror_percent);
            mirrors.insert(0, (m, pct));
        }
        let mirrors = mirrors
            .into_iter()
            .filter(|(_, pct)| *pct > 0.0)
            .filter_map(|(d, percentage)| {
                Some(crate::policy::Mirror {
                    cluster: self.destination_cluster(vs, d, port)?,
                    percentage,
                })
            })
            .collect();
        RoutePolicy {
            timeout: r.timeout.map(|d| d.as_std()).filter(|d| !d.is_zero()),
            retry: crate::policy::Retry::from_istio(r.retries.as_ref()),
            rewrite: r
                .rewrite
                .as_ref()
                .and_then(crate::policy::Rewrite::from_istio),
            headers: crate::policy::header_policy(r.headers.as_ref()),
            mirrors,
            fault: r.fault.as_ref().and_then(crate::policy::Fault::from_istio),
            cors: r
                .cors_policy
                .as_ref()
                .map(|c| crate::policy::Cors::from_istio(c, string_matcher)),
        }
    }

    /// Weighted clusters of a route's destinations `(destination, weight, headers)`: with several,
    /// weight-0 ones are dropped; a single destination takes all traffic whatever its weight.
    fn weighted(
        &mut self,
        vs: &Object,
        entries: &[(
            Option<&Destination>,
            Option<i32>,
            Option<&sluice_api::istio::Headers>,
        )],
        port: u32,
    ) -> Vec<WeightedCluster> {
        let live: Vec<_> = entries
            .iter()
            .filter(|(_, w, _)| entries.len() == 1 || w.unwrap_or(0) > 0)
            .collect();
        live.iter()
            .filter_map(|(dest, weight, headers)| {
                let cluster = self.destination_cluster(vs, (*dest)?, port)?;
                let headers = crate::policy::header_policy(*headers);
                Some(WeightedCluster {
                    cluster,
                    weight: if live.len() == 1 {
                        1
                    } else {
                        weight.unwrap_or(0).max(0) as u32
                    },
                    headers: (!headers.is_empty()).then(|| Arc::new(headers)),
                })
            })
            .collect()
    }

    /// The cluster a VirtualService destination names (None without a host).
    fn destination_cluster(&mut self, vs: &Object, d: &Destination, port: u32) -> Option<String> {
        Some(self.cluster(
            vs,
            d.host.as_deref()?,
            d.subset.as_deref(),
            d.port.as_ref().and_then(|p| p.number),
            port,
        ))
    }

    /// The cluster for a destination, created on first use.
    fn cluster(
        &mut self,
        vs: &Object,
        host: &str,
        subset: Option<&str>,
        port: Option<u32>,
        server_port: u32,
    ) -> String {
        let fqdn = hosts::fqdn(host, &vs.namespace, &self.id.domain_suffix);
        let service = self.registry.lookup(&fqdn);
        // Port: explicit, else the service's only port, else the server's port.
        let port = port
            .or_else(|| {
                service
                    .filter(|s| s.ports.len() == 1)
                    .map(|s| s.ports[0].number)
            })
            .unwrap_or(server_port);
        let subset_name = subset.unwrap_or("");
        let name = format!("outbound|{port}|{subset_name}|{fqdn}");
        if self.clusters.contains_key(&name) {
            return name;
        }
        let cluster = self.build_cluster(&name, &fqdn, service, port, subset);
        self.clusters.insert(name.clone(), Arc::new(cluster));
        name
    }

    fn build_cluster(
        &self,
        name: &str,
        fqdn: &str,
        service: Option<&Service>,
        port: u32,
        subset: Option<&str>,
    ) -> Cluster {
        let mut cluster = Cluster {
            name: name.to_string(),
            host: fqdn.to_string(),
            port,
            subset: subset.unwrap_or("").to_string(),
            endpoints: Vec::new(),
            lb: LbPolicy::LeastRequest,
            problem: None,
            http2: false,
            tls: None,
            policy: Default::default(),
            destination: Default::default(),
        };
        let Some(service) = service else {
            cluster.problem = Some(ClusterProblem::UnknownHost);
            return cluster;
        };
        let rule = crate::destination_rules::for_host(
            self.store,
            fqdn,
            &service.namespace,
            &self.id.namespace,
            &self.id.domain_suffix,
        );
        let subset_def: Option<Subset> = match subset {
            None => None,
            Some(s) => match rule
                .as_ref()
                .and_then(|r| r.subsets.iter().find(|x| x.name.as_deref() == Some(s)))
            {
                Some(def) => Some(def.clone()),
                None => {
                    cluster.problem = Some(ClusterProblem::UnknownSubset);
                    return cluster;
                }
            },
        };
        let effective = crate::policy::cluster::Effective::resolve(
            rule.as_ref().and_then(|r| r.traffic_policy.as_ref()),
            subset_def.as_ref().and_then(|s| s.traffic_policy.as_ref()),
            port,
        );
        cluster.lb = LbPolicy::from_istio(effective.load_balancer.0.and_then(|l| l.simple));
        cluster.policy = crate::policy::cluster::ClusterPolicy::from_effective(&effective);
        let failover =
            crate::policy::cluster::locality_failover(self.id.locality.as_deref(), &effective);
        cluster.policy.locality = failover.map(|(here, _)| here.to_string());
        let tls = effective.tls.0.cloned();
        let tls_from_rule = tls.is_some();
        if let Some(tls) = tls {
            let identities = service
                .object
                .service_entry()
                .map(|se| se.subject_alt_names.as_slice())
                .unwrap_or_default();
            let target = tls::MeshTarget {
                sni: format!("outbound_.{port}_.{}_.{fqdn}", subset.unwrap_or("")),
                identities,
            };
            let mesh = (self.id.mesh_certs.as_ref(), target);
            match tls::upstream_settings(&tls, self.store, &self.id.namespace, mesh) {
                Ok(settings) => cluster.tls = settings.map(Arc::new),
                Err(problem) => {
                    cluster.problem = Some(ClusterProblem::Tls(problem));
                    return cluster;
                }
            }
        }
        let svc_port = service.port(port);
        if !tls_from_rule && service.object.kind == Kind::Service {
            let port_name = svc_port.map(|p| p.name.as_str()).unwrap_or("");
            let ns = &service.object.namespace;
            let policies =
                crate::backend_tls::policies_for(self.store, ns, &service.object.name, port_name);
            if let Some(policy) = policies.first() {
                match crate::backend_tls::upstream(self.store, policy).0 {
                    Ok(t) => cluster.tls = Some(Arc::new(t)),
                    Err((_, why)) => {
                        cluster.problem = Some(ClusterProblem::Tls(tls::TlsProblem::Unusable(why)));
                        return cluster;
                    }
                }
            }
        }
        cluster.http2 = svc_port.is_some_and(|p| matches!(p.protocol.as_str(), "HTTP2" | "GRPC"));
        let labels = subset_def
            .as_ref()
            .map(|s| s.labels.clone())
            .unwrap_or_default();
        cluster.destination = ServiceRef {
            name: match service.object.kind {
                Kind::Service => service.object.name.clone(),
                _ => fqdn.to_string(),
            },
            namespace: service.namespace.clone(),
            labels: labels.clone(),
        };
        cluster.endpoints = service
            .endpoints
            .iter()
            .filter(|e| sluice_api::meta::selects(&labels, &e.labels))
            .map(|e| ClusterEndpoint {
                address: e.address.clone(),
                port: svc_port.map(|p| e.port_for(p)).unwrap_or(port),
                weight: e.weight,
                locality: e.locality.clone(),
                priority: failover.map_or(0, |(here, rules)| {
                    crate::policy::cluster::locality_priority(here, &e.locality, rules)
                }),
            })
            .collect();
        let mut priorities: Vec<u32> = cluster.endpoints.iter().map(|e| e.priority).collect();
        crate::policy::cluster::compact(&mut priorities);
        for (e, p) in cluster.endpoints.iter_mut().zip(priorities) {
            e.priority = p;
        }
        cluster
    }
}

fn string_matcher(m: &StringMatch) -> Option<Matcher> {
    if let Some(e) = &m.exact {
        Some(Matcher::Exact(e.clone()))
    } else if let Some(p) = &m.prefix {
        Some(Matcher::Prefix(p.clone()))
    } else if let Some(r) = &m.regex {
        full_match_regex(r).ok().map(Matcher::Regex)
    } else {
        Some(Matcher::Present)
    }
}

/// `None` when a regex does not compile (validation has reported it; the route is dropped).
fn compile_match(m: &HttpMatchRequest) -> Option<RouteMatch> {
    let opt = |sm: &Option<StringMatch>| -> Option<Option<Matcher>> {
        match sm {
            None => Some(None),
            Some(sm) => string_matcher(sm).map(Some),
        }
    };
    // Istio reads `regex: "*"` in a header match as "the header is present".
    let list = |map: &BTreeMap<String, StringMatch>| -> Option<Vec<(String, Matcher)>> {
        map.iter()
            .map(|(k, v)| {
                let m = match v.regex.as_deref() {
                    Some("*") => Matcher::Present,
                    _ => string_matcher(v)?,
                };
                Some((k.to_ascii_lowercase(), m))
            })
            .collect()
    };
    let ignore_case = m.ignore_uri_case == Some(true);
    let mut uri = opt(&m.uri)?;
    if ignore_case {
        // Lower-case the literal once; the request path is compared case-insensitively.
        uri = match uri {
            Some(Matcher::Regex(_)) => match &m.uri {
                Some(StringMatch { regex: Some(r), .. }) => {
                    Some(Matcher::Regex(full_match_regex(&format!("(?i:{r})")).ok()?))
                }
                _ => None,
            },
            other => other,
        };
    }
    Some(RouteMatch {
        uri,
        scheme: opt(&m.scheme)?,
        method: opt(&m.method)?,
        authority: opt(&m.authority)?,
        headers: list(&m.headers)?,
        without_headers: list(&m.without_headers)?,
        query_params: m
            .query_params
            .iter()
            .map(|(k, v)| Some((k.clone(), string_matcher(v)?)))
            .collect::<Option<Vec<_>>>()?,
        port: m.port,
        ignore_uri_case: ignore_case,
    })
}
