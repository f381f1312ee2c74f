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
use sluice_config::{Diagnostic, Kind, Object, Severity};
use std::borrow::Cow;
use std::sync::Arc;

/// Controllers whose GatewayClasses this instance serves (its own, and Istio's, so manifests
/// written for Istio work unchanged).
pub const CONTROLLERS: [&str; 2] = [
    "sluice.dev/gateway-controller",
    "istio.io/gateway-controller",
];

const GROUP_DEFAULT: &str = GROUP;

impl<'a> Compiler<'a> {
    /// Gateway API Gateways this instance serves: their class is one of `--gateway-class`, or a
    /// GatewayClass whose controller is ours.
    pub(super) fn kube_gateways(&self) -> Vec<&'a Arc<Object>> {
        let store: &'a sluice_config::Store = self.store;
        let ours = |class: &str| {
            self.id.gateway_classes.iter().any(|c| c == class)
                || store.of_kind(Kind::GatewayClass).any(|gc| {
                    gc.name == class
                        && gc
                            .gateway_class()
                            .and_then(|s| s.controller_name.as_deref())
                            .is_some_and(|c| CONTROLLERS.contains(&c))
                })
        };
        store
            .of_kind(Kind::KubeGateway)
            .filter(|g| {
                g.kube_gateway()
                    .and_then(|s| s.gateway_class_name.as_deref())
                    .is_some_and(ours)
            })
            .collect()
    }

    /// The servers of a Gateway API Gateway's listeners, by port. HTTP and HTTPS (Terminate)
    /// listeners are served; the others are reported and left out.
    pub(super) fn kube_servers(&mut self, gw: &'a Arc<Object>) -> Vec<(u32, GatewayServer<'a>)> {
        let spec = gw.kube_gateway().expect("kind");
        let mut out = Vec::new();
        for (i, l) in spec.listeners.iter().enumerate() {
            let path = P::spec().k("listeners").i(i);
            let Some(port) = l.port.and_then(|p| u32::try_from(p).ok()) else {
                continue;
            };
            let hosts = vec![l
                .hostname
                .clone()
                .unwrap_or_else(|| "*".into())
                .to_ascii_lowercase()];
            let tls = match l.protocol.as_deref() {
                Some("HTTP") => None,
                Some("HTTPS") => match self.listener_certificate(gw, l) {
                    Ok(settings) => Some(Arc::new(settings)),
                    Err(why) => {
                        self.diags.push(Diagnostic {
                            resource: Some(gw.resource()),
                            ..Diagnostic::new(Severity::Warning, codes::INVALID_GATEWAY_CREDENTIAL, format!("listener {} of Gateway {} (port {port}) has no usable certificate: {why}; it is skipped", l.name.as_deref().unwrap_or(""), gw.key()))
                                .at(gw.origin_at(&path.k("tls").0))
                        });
                        continue;
                    }
                },
                other => {
                    self.diags.push(Diagnostic {
                        resource: Some(gw.resource()),
                        ..Diagnostic::new(Severity::Warning, codes::SERVER_NOT_SERVED, format!("{} listeners of the Gateway API are not served by this version of sluice yet; listener {} of Gateway {} (port {port}) is skipped", other.unwrap_or("(no protocol)"), l.name.as_deref().unwrap_or(""), gw.key()))
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
                    hosts: Cow::Owned(hosts.clone()),
                    kind: ServerKind::Http(HttpServer {
                        gateway: gw,
                        hosts: Cow::Owned(hosts),
                        https_redirect: false,
                        port_name: l.name.as_deref().unwrap_or(""),
                        tls,
                        kube_listener: Some(i),
                    }),
                },
            ));
        }
        out
    }

    /// The certificate of an HTTPS listener: its first `certificateRefs` Secret (the Gateway's
    /// namespace unless it names another, which a ReferenceGrant must allow).
    fn listener_certificate(
        &self,
        gw: &Object,
        l: &KubeListener,
    ) -> Result<crate::tls::TlsSettings, String> {
        let tls = l.tls.as_ref().ok_or("no tls block")?;
        if tls.mode == Some(TlsModeType::Passthrough) {
            return Err("an HTTPS listener cannot pass TLS through".into());
        }
        let r = tls.certificate_refs.first().ok_or("no certificateRefs")?;
        if r.group.as_deref().is_some_and(|g| !g.is_empty())
            || r.kind.as_deref().is_some_and(|k| k != "Secret")
        {
            return Err("only Secrets can hold the certificate".into());
        }
        let name = r.name.as_deref().unwrap_or("");
        let ns = r.namespace.as_deref().unwrap_or(&gw.namespace);
        if ns != gw.namespace && !self.granted(&gw.namespace, "Gateway", ns, "", "Secret", name) {
            return Err(format!(
                "Secret {ns}/{name} is in another namespace and no ReferenceGrant there allows it"
            ));
        }
        let (cert_chain, private_key, _) =
            crate::tls::from_secret(self.store, ns, name).map_err(|p| p.to_string())?;
        Ok(crate::tls::TlsSettings {
            cert_chain,
            private_key,
            ca: None,
            client_auth: crate::tls::ClientAuth::None,
            min_tls13: false,
            max_tls12: false,
            cipher_suites: Vec::new(),
            subject_alt_names: Vec::new(),
            verify_spki: Vec::new(),
            verify_hash: Vec::new(),
        })
    }

    /// Whether a ReferenceGrant in `to_ns` lets a `from_kind` in `from_ns` refer to the
    /// `to_group`/`to_kind` named `to_name`.
    fn granted(
        &self,
        from_ns: &str,
        from_kind: &str,
        to_ns: &str,
        to_group: &str,
        to_kind: &str,
        to_name: &str,
    ) -> bool {
        self.store
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

    /// The routes HTTPRoutes give the virtual hosts of one Gateway API listener:
    /// `(domain, routes)`, each list in the Gateway API's precedence order.
    pub(super) fn kube_routes(
        &mut self,
        server: &HttpServer,
        port: u32,
    ) -> Vec<(String, Vec<Route>)> {
        let Some(li) = server.kube_listener else {
            return Vec::new();
        };
        let gw = server.gateway;
        let listener = &gw.kube_gateway().expect("kind").listeners[li];
        let listener_host = listener
            .hostname
            .as_deref()
            .unwrap_or("*")
            .to_ascii_lowercase();
        // (domain, sort key, route)
        let mut found: Vec<(String, Precedence, Route)> = Vec::new();
        let routes: Vec<&'a Arc<Object>> = self.store.of_kind(Kind::HttpRoute).collect();
        for (order, route) in routes.into_iter().enumerate() {
            let spec = route.http_route().expect("kind");
            let attached = spec
                .parent_refs
                .iter()
                .any(|p| attaches(p, route, gw, listener));
            if !attached || !self.allowed(gw, listener, route) {
                continue;
            }
            let route_hosts: Vec<String> = if spec.hostnames.is_empty() {
                vec!["*".into()]
            } else {
                spec.hostnames
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect()
            };
            let domains: Vec<String> = route_hosts
                .iter()
                .filter_map(|h| hosts::intersect(&listener_host, h).map(str::to_string))
                .collect();
            if domains.is_empty() {
                continue;
            }
            for domain in domains {
                for (rule, m, r) in self.http_route_rules(route, spec, port) {
                    let key = precedence(&spec.rules[rule], m, order, rule);
                    found.push((domain.clone(), key, r));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut out: Vec<(String, Vec<Route>)> = Vec::new();
        for (domain, _, route) in found {
            match out.last_mut() {
                Some((d, routes)) if *d == domain => routes.push(route),
                _ => out.push((domain, vec![route])),
            }
        }
        out
    }

    /// May this HTTPRoute attach to the listener (`allowedRoutes` namespaces and kinds)?
    fn allowed(&self, gw: &Object, l: &KubeListener, route: &Object) -> bool {
        let allowed = l.allowed_routes.as_ref();
        let kinds_ok = allowed.is_none_or(|a| {
            a.kinds.is_empty()
                || a.kinds.iter().any(|k| {
                    k.group.as_deref().unwrap_or(GROUP_DEFAULT) == GROUP_DEFAULT
                        && k.kind.as_deref() == Some("HTTPRoute")
                })
        });
        let namespaces = allowed.and_then(|a| a.namespaces.as_ref());
        let ns_ok = match namespaces
            .and_then(|n| n.from)
            .unwrap_or(FromNamespaces::Same)
        {
            FromNamespaces::All => true,
            FromNamespaces::Same => route.namespace == gw.namespace,
            FromNamespaces::None => false,
            FromNamespaces::Selector => {
                let labels = self
                    .store
                    .get(Kind::Namespace, "default", &route.namespace)
                    .or_else(|| {
                        self.store
                            .of_kind(Kind::Namespace)
                            .find(|n| n.name == route.namespace)
                    })
                    .map(|n| n.meta.labels.clone())
                    .unwrap_or_default();
                namespaces
                    .and_then(|n| n.selector.as_ref())
                    .is_some_and(|s| selector_matches(s, &labels))
            }
        };
        kinds_ok && ns_ok
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
                        kind: "HTTPRoute",
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
                    let cluster = self.backend_cluster(
                        route,
                        b.group.as_deref(),
                        b.kind.as_deref(),
                        b.name.as_deref(),
                        b.namespace.as_deref(),
                        b.port,
                        port,
                    );
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
        let retry = Retry {
            per_try_timeout: gep(timeouts.and_then(|t| t.backend_request.as_ref())),
            ..Default::default()
        };
        let policy = RoutePolicy {
            timeout: gep(timeouts.and_then(|t| t.request.as_ref())),
            retry,
            rewrite,
            headers,
            mirrors,
            fault: None,
            cors: None,
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
            let cluster = self.backend_cluster(
                route,
                b.group.as_deref(),
                b.kind.as_deref(),
                b.name.as_deref(),
                b.namespace.as_deref(),
                b.port,
                port,
            );
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
            // No backend to send to (none given, or all weight 0): the spec's 500.
            let body = Arc::from(&b""[..]);
            return (Action::DirectResponse { status: 500, body }, policy);
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
    #[allow(clippy::too_many_arguments)]
    fn backend_cluster(
        &mut self,
        route: &Object,
        group: Option<&str>,
        kind: Option<&str>,
        name: Option<&str>,
        namespace: Option<&str>,
        backend_port: Option<i32>,
        server_port: u32,
    ) -> String {
        let name = name.unwrap_or("");
        let ns = namespace.unwrap_or(&route.namespace);
        let fqdn = format!("{name}.{ns}.svc.{}", self.id.domain_suffix);
        let port = backend_port.and_then(|p| u32::try_from(p).ok());
        let problem =
            if group.is_some_and(|g| !g.is_empty()) || kind.is_some_and(|k| k != "Service") {
                Some(format!(
                    "backendRef kind {}/{} is not supported (only Services)",
                    group.unwrap_or(""),
                    kind.unwrap_or("")
                ))
            } else if ns != route.namespace
                && !self.granted(&route.namespace, "HTTPRoute", ns, "", "Service", name)
            {
                Some(format!(
                "Service {ns}/{name} is in another namespace and no ReferenceGrant there allows it"
            ))
            } else if port.is_none() {
                Some(format!("backendRef to Service {ns}/{name} has no port"))
            } else if self.registry.lookup(&fqdn).is_none() {
                Some(format!("Service {ns}/{name} not found"))
            } else {
                None
            };
        match problem {
            None => self.cluster(route, &fqdn, None, port, server_port),
            Some(why) => {
                let cname = format!("outbound|{}||{fqdn}", port.unwrap_or(0));
                self.clusters.entry(cname.clone()).or_insert_with(|| {
                    Arc::new(Cluster {
                        name: cname.clone(),
                        host: fqdn.clone(),
                        port: port.unwrap_or(0),
                        subset: String::new(),
                        endpoints: Vec::new(),
                        lb: LbPolicy::LeastRequest,
                        problem: Some(ClusterProblem::InvalidBackendRef(why)),
                        http2: false,
                        tls: None,
                        tcp_idle_timeout: super::DEFAULT_TCP_IDLE,
                    })
                });
                cname
            }
        }
    }
}

/// Does this parentRef select the listener?
fn attaches(p: &ParentReference, route: &Object, gw: &Object, l: &KubeListener) -> bool {
    p.group.as_deref().unwrap_or(GROUP_DEFAULT) == GROUP_DEFAULT
        && p.kind.as_deref().unwrap_or("Gateway") == "Gateway"
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

/// The spec's precedence, as a key that sorts the winner first: Exact path, then the longest
/// PathPrefix (regular expressions after both), a method match, most header matches, most
/// query matches, the oldest route, the route's rule and match order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Precedence {
    path_kind: std::cmp::Reverse<u8>,
    path_len: std::cmp::Reverse<usize>,
    no_method: bool,
    headers: std::cmp::Reverse<usize>,
    queries: std::cmp::Reverse<usize>,
    route: usize,
    rule: usize,
    matched: usize,
}

fn precedence(rule: &HttpRouteRule, m: usize, route: usize, rule_index: usize) -> Precedence {
    use std::cmp::Reverse;
    let default = HttpRouteMatch::default();
    let hm = rule.matches.get(m).unwrap_or(&default);
    let (kind, len) = match &hm.path {
        None => (1, 1),
        Some(p) => {
            let value = p.value.as_deref().unwrap_or("/");
            match p.type_.unwrap_or(PathMatchType::PathPrefix) {
                PathMatchType::Exact => (2, value.len()),
                PathMatchType::PathPrefix => (1, value.len()),
                PathMatchType::RegularExpression => (0, value.len()),
            }
        }
    };
    Precedence {
        path_kind: Reverse(kind),
        path_len: Reverse(len),
        no_method: hm.method.is_none(),
        headers: Reverse(hm.headers.len()),
        queries: Reverse(hm.query_params.len()),
        route,
        rule: rule_index,
        matched: m,
    }
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
    let mut query_params = Vec::new();
    for q in &m.query_params {
        query_params.push((
            q.name.clone().unwrap_or_default(),
            value_matcher(q.type_, &q.value)?,
        ));
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
