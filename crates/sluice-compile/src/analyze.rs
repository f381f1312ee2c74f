//! Checks across objects, as `istioctl analyze` makes them: references that lead nowhere,
//! rules that can never match, gateways that fight over a port.
use crate::binding::{gateway_ref, ServerHost};
use crate::hosts;
use crate::registry::Registry;
use sluice_api::istio::{
    ClientTlsMode, ClientTlsSettings, Destination, HttpMatchRequest, HttpRoute, ServerTlsMode,
    StringMatch,
};
use sluice_config::diag::codes;
use sluice_config::validate::{Report, P};
use sluice_config::{Diagnostic, Kind, Object, Severity, Store};
use std::collections::HashMap;

/// What the analysis needs to know about the gateway it is run for.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    pub domain_suffix: String,
    /// Where the gateway workload runs; `credentialName` Secrets are read from here.
    pub gateway_namespace: String,
    /// Seconds since the epoch, to warn about expired certificates; `None` skips the check
    /// (the analysis reads no clock itself).
    pub now_unix: Option<i64>,
    /// The gateway runs with the mesh's certificates (`--mesh-cert-dir`): ISTIO_MUTUAL works.
    pub mesh_certs: bool,
    /// Ingress classes served (`--ingress-class`).
    pub ingress_classes: Vec<String>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            domain_suffix: "cluster.local".into(),
            gateway_namespace: "istio-system".into(),
            now_unix: None,
            mesh_certs: false,
            ingress_classes: crate::GatewayIdentity::default().ingress_classes,
        }
    }
}

pub fn analyze(store: &Store, opts: &AnalyzeOptions) -> Vec<Diagnostic> {
    let registry = Registry::build(store, &opts.domain_suffix, &opts.gateway_namespace);
    let mut out = Vec::new();
    for vs in store.of_kind(Kind::VirtualService) {
        virtual_service(store, &registry, opts, vs, &mut out);
    }
    for dr in store.of_kind(Kind::DestinationRule) {
        destination_rule(dr, opts, &mut out);
    }
    gateways(store, opts, &mut out);
    passthrough_without_tls_routes(store, opts, &mut out);
    ingresses(store, &registry, opts, &mut out);
    // Gateway API: what `sluice status` would write as False conditions. No clock here.
    let id = crate::GatewayIdentity {
        namespace: opts.gateway_namespace.clone(),
        domain_suffix: opts.domain_suffix.clone(),
        ..Default::default()
    };
    out.extend(crate::gateway_status::status_with(store, &registry, &id, "").1);
    out
}

/// A VirtualService bound to a PASSTHROUGH server for one of its hosts routes that traffic
/// only with `tls[]` routes; `http[]` routes never see it (the gateway cannot read it).
fn passthrough_without_tls_routes(store: &Store, opts: &AnalyzeOptions, out: &mut Vec<Diagnostic>) {
    for vs in store.of_kind(Kind::VirtualService) {
        let spec = vs.virtual_service().expect("kind");
        if !spec.tls.is_empty() || spec.http.is_empty() {
            continue;
        }
        for g in &spec.gateways {
            let Some((ns, name)) = gateway_ref(g, &vs.namespace) else {
                continue;
            };
            let Some(gw) = store.get(Kind::Gateway, &ns, &name) else {
                continue;
            };
            let passthrough_host = gw
                .gateway()
                .expect("kind")
                .servers
                .iter()
                .find_map(|server| {
                    let pass = server.tls.as_ref().and_then(|t| t.mode)
                        == Some(ServerTlsMode::Passthrough);
                    if !pass {
                        return None;
                    }
                    spec.hosts.iter().find(|h| {
                        let fqdn = hosts::fqdn(h, &vs.namespace, &opts.domain_suffix);
                        server.hosts.iter().any(|sh| {
                            ServerHost::parse(sh)
                                .bind(&fqdn, &vs.namespace, &ns)
                                .is_some()
                        })
                    })
                });
            if let Some(host) = passthrough_host {
                report(vs, out).push(
                    Severity::Error,
                    codes::PASSTHROUGH_WITHOUT_TLS_ROUTES,
                    &P::spec().k("http"),
                    format!("host {host} is served by a PASSTHROUGH server of Gateway {ns}/{name}, but this VirtualService has only http routes: that traffic stays encrypted and is never routed"),
                    Some("add `tls: [{match: [{sniHosts: [<host>]}], route: [{destination: {host: <service>}}]}]`, or terminate TLS on the server (mode SIMPLE) to use http routes".into()),
                );
                break;
            }
        }
    }
}

fn report<'a>(object: &'a Object, out: &'a mut Vec<Diagnostic>) -> Report<'a> {
    Report { object, out }
}

/// A match that accepts every request: no conditions but a catch-all path.
pub fn is_catch_all_match(m: &HttpMatchRequest) -> bool {
    let uri_all = match &m.uri {
        None => true,
        Some(StringMatch {
            prefix: Some(p),
            exact: None,
            regex: None,
        }) => p == "/",
        Some(StringMatch {
            regex: Some(r),
            exact: None,
            prefix: None,
        }) => r == ".*" || r == "/.*",
        _ => false,
    };
    uri_all
        && m.scheme.is_none()
        && m.method.is_none()
        && m.authority.is_none()
        && m.headers.is_empty()
        && m.without_headers.is_empty()
        && m.query_params.is_empty()
        && m.port.is_none()
        && m.gateways.is_empty()
        && m.source_labels.is_empty()
        && m.source_namespace.is_none()
}

pub fn is_catch_all_route(r: &HttpRoute) -> bool {
    r.match_.is_empty() || r.match_.iter().any(is_catch_all_match)
}

fn without_name(m: &HttpMatchRequest) -> HttpMatchRequest {
    HttpMatchRequest {
        name: None,
        ..m.clone()
    }
}

fn virtual_service(
    store: &Store,
    registry: &Registry,
    opts: &AnalyzeOptions,
    o: &Object,
    out: &mut Vec<Diagnostic>,
) {
    let vs = o.virtual_service().expect("kind");
    let s = P::spec();
    let mut r = report(o, out);
    let at_gateways = vs.gateways.iter().any(|g| g != "mesh");
    let gw_ns = &opts.gateway_namespace;
    if at_gateways && !crate::visibility::exported(&vs.export_to, &o.namespace, gw_ns) {
        r.push(Severity::Warning, codes::NOT_EXPORTED_TO_GATEWAY, &s.k("exportTo"), format!("VirtualService {} is not exported to namespace {gw_ns}, where the gateway runs: the gateway ignores it", o.key()), Some(format!("add \"{gw_ns}\" (or \"*\") to exportTo")));
    }

    // Gateways referenced, and hosts they expose.
    let mut refs: Vec<(P, &str)> = vs
        .gateways
        .iter()
        .enumerate()
        .map(|(i, g)| (s.k("gateways").i(i), g.as_str()))
        .collect();
    for (i, route) in vs.http.iter().enumerate() {
        for (j, m) in route.match_.iter().enumerate() {
            refs.extend(m.gateways.iter().enumerate().map(|(k, g)| {
                (
                    s.k("http").i(i).k("match").i(j).k("gateways").i(k),
                    g.as_str(),
                )
            }));
        }
    }
    for (path, g) in &refs {
        let Some((ns, name)) = gateway_ref(g, &o.namespace) else {
            continue;
        };
        match store.get(Kind::Gateway, &ns, &name) {
            None => {
                let known: Vec<String> = store.of_kind(Kind::Gateway).map(|g| g.key()).collect();
                let help = if known.is_empty() {
                    "no Gateway is defined in the loaded files; add one or fix the name".to_string()
                } else {
                    format!("known gateways: {}", known.join(", "))
                };
                r.push(
                    Severity::Error,
                    codes::REFERENCED_RESOURCE_NOT_FOUND,
                    path,
                    format!("Referenced gateway not found: \"{ns}/{name}\""),
                    Some(help),
                );
            }
            Some(gw) if path.0.len() == 3 => {
                let spec = gw.gateway().expect("kind");
                for (i, host) in vs.hosts.iter().enumerate() {
                    let vs_host = hosts::fqdn(host, &o.namespace, &opts.domain_suffix);
                    let bound = spec.servers.iter().flat_map(|sv| &sv.hosts).any(|h| {
                        ServerHost::parse(h)
                            .bind(&vs_host, &o.namespace, &gw.namespace)
                            .is_some()
                    });
                    if !bound {
                        r.push(Severity::Warning, codes::HOST_NOT_FOUND_IN_GATEWAY, &s.k("hosts").i(i), format!("one or more host [{host}] defined in VirtualService {} not found in Gateway {}", o.key(), gw.key()), Some(format!("add the host to a server of Gateway {}, or remove it here", gw.key())));
                    }
                }
            }
            Some(_) => {}
        }
    }

    // Rules after a catch-all never match; a match that repeats an earlier one is never used.
    let mut first_catch_all = None;
    let mut earlier: Vec<(HttpMatchRequest, usize)> = Vec::new();
    for (i, route) in vs.http.iter().enumerate() {
        let p = s.k("http").i(i);
        if let Some(c) = first_catch_all {
            r.push(
                Severity::Warning,
                codes::UNREACHABLE_RULE,
                &p,
                format!(
                    "VirtualService rule #{i} not used (rule #{c} before it matches every request)"
                ),
                Some(format!(
                    "move this rule above rule #{c}, or give rule #{c} a match"
                )),
            );
            continue;
        }
        for (j, m) in route.match_.iter().enumerate() {
            let key = without_name(m);
            match earlier.iter().find(|(m, _)| *m == key).map(|(_, i)| *i) {
                Some(prev) => r.push(Severity::Info, codes::INEFFECTIVE_MATCH, &p.k("match").i(j), format!("VirtualService rule #{i} match #{j} is not used (duplicate match in rule #{prev})"), None),
                None => earlier.push((key, i)),
            }
        }
        if is_catch_all_route(route) {
            first_catch_all = Some(i);
        }
    }

    // Destinations: host, port, subset (mirrors need no port: they follow the route's).
    let mut dests: Vec<(P, &Destination, bool)> = Vec::new();
    for (i, route) in vs.http.iter().enumerate() {
        let p = s.k("http").i(i);
        dests.extend(route.route.iter().enumerate().filter_map(|(j, d)| {
            Some((
                p.k("route").i(j).k("destination"),
                d.destination.as_ref()?,
                true,
            ))
        }));
        dests.extend(route.mirror.iter().map(|m| (p.k("mirror"), m, false)));
        dests.extend(route.mirrors.iter().enumerate().filter_map(|(j, m)| {
            Some((
                p.k("mirrors").i(j).k("destination"),
                m.destination.as_ref()?,
                false,
            ))
        }));
    }
    let l4 = [
        ("tls", vs.tls.iter().map(|t| &t.route).collect::<Vec<_>>()),
        ("tcp", vs.tcp.iter().map(|t| &t.route).collect()),
    ];
    for (kind, routes) in &l4 {
        for (i, route) in routes.iter().enumerate() {
            dests.extend(route.iter().enumerate().filter_map(|(j, d)| {
                Some((
                    s.k(kind).i(i).k("route").i(j).k("destination"),
                    d.destination.as_ref()?,
                    true,
                ))
            }));
        }
    }
    for (p, dest, check_port) in dests {
        destination(store, registry, opts, o, &mut r, &p, dest, check_port);
    }
    for (i, route) in vs.http.iter().enumerate() {
        let p = s.k("http").i(i);
        if let Some(d) = &route.delegate {
            let ns = d.namespace.clone().unwrap_or_else(|| o.namespace.clone());
            let name = d.name.clone().unwrap_or_default();
            match store.get(Kind::VirtualService, &ns, &name) {
                None => r.push(
                    Severity::Error,
                    codes::REFERENCED_RESOURCE_NOT_FOUND,
                    &p.k("delegate"),
                    format!("Referenced delegate VirtualService not found: \"{ns}/{name}\""),
                    None,
                ),
                Some(del) => {
                    let dspec = del.virtual_service().expect("kind");
                    if !dspec.hosts.is_empty() {
                        r.push(
                            Severity::Error,
                            codes::SCHEMA_VALIDATION_ERROR,
                            &p.k("delegate"),
                            format!(
                                "VirtualService {ns}/{name} is used as a delegate but has hosts"
                            ),
                            Some("a delegate VirtualService must not set hosts or gateways".into()),
                        );
                    }
                }
            }
        }
    }
}

/// The ServiceEntry or Service that defines `fqdn` but is hidden from the gateway by `exportTo`.
fn hidden_definition(store: &Store, fqdn: &str, opts: &AnalyzeOptions) -> Option<String> {
    // Called only when the gateway's registry lacks the host: any definition is a hidden one.
    let all = store
        .of_kind(Kind::ServiceEntry)
        .chain(store.of_kind(Kind::Service));
    all.filter(|o| {
        let names: Vec<String> = match (o.service_entry(), o.service()) {
            (Some(se), _) => se
                .hosts
                .iter()
                .map(|h| hosts::fqdn(h, &o.namespace, &opts.domain_suffix))
                .collect(),
            _ => vec![hosts::service_fqdn(
                &o.name,
                &o.namespace,
                &opts.domain_suffix,
            )],
        };
        names.iter().any(|n| hosts::covers(n, fqdn))
    })
    .map(|o| format!("{} {}", o.kind.as_str(), o.key()))
    .next()
}

#[allow(clippy::too_many_arguments)]
fn destination(
    store: &Store,
    registry: &Registry,
    opts: &AnalyzeOptions,
    o: &Object,
    r: &mut Report,
    p: &P,
    d: &Destination,
    check_port: bool,
) {
    let Some(host) = &d.host else { return };
    let fqdn = hosts::fqdn(host, &o.namespace, &opts.domain_suffix);
    let svc = registry.lookup(&fqdn);
    if svc.is_none() {
        r.push(
            Severity::Error,
            codes::REFERENCED_RESOURCE_NOT_FOUND,
            &p.k("host"),
            format!("Referenced host not found: \"{host}\""),
            Some(match hidden_definition(store, &fqdn, opts) {
                Some(owner) => format!("{owner} defines {fqdn} but is not exported to namespace {}, where the gateway runs; requests routed here get 503 (NC)", opts.gateway_namespace),
                None => format!("no ServiceEntry or Service defines {fqdn}; requests routed here get 503 (NC)"),
            }),
        );
    }
    match (svc, d.port.as_ref().and_then(|x| x.number)) {
        (Some(svc), Some(n)) if svc.port(n).is_none() => {
            let ports: Vec<String> = svc.ports.iter().map(|x| x.number.to_string()).collect();
            r.push(
                Severity::Error,
                codes::REFERENCED_RESOURCE_NOT_FOUND,
                &p.k("port"),
                format!("Referenced host:port not found: \"{host}:{n}\""),
                Some(format!("{fqdn} has ports {}", ports.join(", "))),
            );
        }
        (Some(svc), None) if check_port && svc.ports.len() > 1 => {
            let ports: Vec<String> = svc.ports.iter().map(|x| x.number.to_string()).collect();
            r.push(Severity::Error, codes::DESTINATION_PORT_SELECTOR_REQUIRED, p, format!("This VirtualService routes to a service \"{fqdn}\" that exposes multiple ports [{}]. Specifying a port in the destination is required to disambiguate.", ports.join(" ")), Some("add `port: {number: N}` to the destination".into()));
        }
        _ => {}
    }
    // The subset must be in the rule the gateway applies (the compile's own lookup).
    let rule = crate::destination_rules::for_host(
        store,
        &fqdn,
        svc.map_or(o.namespace.as_str(), |s| s.namespace.as_str()),
        &opts.gateway_namespace,
        &opts.domain_suffix,
    );
    let subset_def = d.subset.as_ref().map(|subset| {
        rule.as_ref().and_then(|rule| {
            rule.subsets
                .iter()
                .find(|s| s.name.as_deref() == Some(subset))
        })
    });
    if let (Some(subset), Some(None)) = (&d.subset, &subset_def) {
        r.push(Severity::Error, codes::REFERENCED_RESOURCE_NOT_FOUND, &p.k("subset"), format!("Referenced host+subset in destinationrule not found: \"{host}+{subset}\""), Some(format!("define subset \"{subset}\" in a DestinationRule for {fqdn}; until then requests routed here get 503 (NC)")));
        return;
    }
    // A known service (and subset) without endpoints: requests get 503 (UH).
    let Some(svc) = svc else { return };
    let labels = subset_def.flatten().map(|s| &s.labels);
    let endpoints = svc
        .endpoints
        .iter()
        .filter(|e| labels.is_none_or(|l| sluice_api::meta::selects(l, &e.labels)))
        .count();
    if endpoints == 0 {
        let (at, what) = match &d.subset {
            Some(subset) => (p.k("subset"), format!("subset {subset} of {fqdn}")),
            None => (p.k("host"), fqdn.clone()),
        };
        let help = match &d.subset {
            Some(_) => "no endpoint carries the subset's labels; compare the DestinationRule's subset labels with the endpoints' (ServiceEntry endpoints, WorkloadEntries, Pods)",
            None => "add endpoints to the ServiceEntry (or EndpointSlices for the Service)",
        };
        r.push(
            Severity::Warning,
            codes::NO_ENDPOINTS,
            &at,
            format!("{what} has no endpoints: requests routed here get 503 (UH)"),
            Some(help.to_string()),
        );
    }
}

fn destination_rule(o: &Object, opts: &AnalyzeOptions, out: &mut Vec<Diagnostic>) {
    let dr = o.destination_rule().expect("kind");
    let host = dr.host.clone().unwrap_or_default();
    let mut r = report(o, out);
    let unverified = |t: &Option<ClientTlsSettings>| {
        t.as_ref().is_some_and(|t| {
            matches!(t.mode, Some(ClientTlsMode::Simple | ClientTlsMode::Mutual))
                && t.ca_certificates.is_none()
                && t.credential_name.is_none()
        })
    };
    let istio_mutual = |t: &Option<ClientTlsSettings>| {
        t.as_ref().and_then(|t| t.mode) == Some(ClientTlsMode::IstioMutual)
    };
    let mut check = |p: P, tp: &sluice_api::istio::TrafficPolicy| {
        let levels = std::iter::once((p.k("tls"), &tp.tls)).chain(
            tp.port_level_settings
                .iter()
                .enumerate()
                .map(|(i, pl)| (p.k("portLevelSettings").i(i).k("tls"), &pl.tls)),
        );
        for (at, tls) in levels {
            if istio_mutual(tls) && !opts.mesh_certs {
                r.push(Severity::Error, codes::ISTIO_MUTUAL_UNAVAILABLE, &at.k("mode"), format!("ISTIO_MUTUAL needs the mesh's workload certificates, which a standalone gateway does not have; requests to {host} get 503"), Some("run the gateway with --mesh-cert-dir (cert-chain.pem, key.pem, root-cert.pem), or use mode MUTUAL with credentialName (a Secret with tls.crt, tls.key and ca.crt)".into()));
            }
        }
        if unverified(&tp.tls) {
            let mode = tp
                .tls
                .as_ref()
                .and_then(|t| t.mode)
                .map(|m| m.as_str())
                .unwrap_or("");
            r.push(Severity::Warning, codes::NO_SERVER_CERT_VERIFICATION_DESTINATION, &p.k("tls"), format!("DestinationRule {} in namespace {} has TLS mode set to {mode} but no caCertificates are set to validate server identity for host: {host}", o.name, o.namespace), Some("add caCertificates (or credentialName with ca.crt); without them only the system roots are trusted".into()));
        }
        for (i, pl) in tp.port_level_settings.iter().enumerate() {
            if unverified(&pl.tls) {
                let port = pl.port.as_ref().and_then(|x| x.number).unwrap_or(0);
                r.push(Severity::Warning, codes::NO_SERVER_CERT_VERIFICATION_PORT, &p.k("portLevelSettings").i(i).k("tls"), format!("DestinationRule {} in namespace {} has TLS mode set but no caCertificates are set to validate server identity for host: {host} at port {port}", o.name, o.namespace), None);
            }
        }
    };
    if let Some(tp) = &dr.traffic_policy {
        check(P::spec().k("trafficPolicy"), tp);
    }
    for (i, s) in dr.subsets.iter().enumerate() {
        if let Some(tp) = &s.traffic_policy {
            check(P::spec().k("subsets").i(i).k("trafficPolicy"), tp);
        }
    }
}

fn gateways(store: &Store, opts: &AnalyzeOptions, out: &mut Vec<Diagnostic>) {
    // (selector, port, host) of every TLS server seen so far, with who claimed it first.
    let mut claimed: HashMap<(String, u32, String), String> = HashMap::new();
    for o in store.of_kind(Kind::Gateway) {
        let gw = o.gateway().expect("kind");
        let selector = format!("{:?}", gw.selector);
        let mut r = report(o, out);
        for (i, server) in gw.servers.iter().enumerate() {
            let p = P::spec().k("servers").i(i);
            let Some(tls) = &server.tls else { continue };
            if let Some(port) = server.port.as_ref().and_then(|x| x.number) {
                let mut conflicts = Vec::new();
                let mut repeated = Vec::new();
                for h in &server.hosts {
                    let host = ServerHost::parse(h).host.to_ascii_lowercase();
                    let key = (selector.clone(), port, host.clone());
                    match claimed.get(&key) {
                        Some(first) if first != &o.key() => conflicts.push((first.clone(), host)),
                        Some(_) => repeated.push(host),
                        None => {
                            claimed.insert(key, o.key());
                        }
                    }
                }
                if let Some(host) = repeated.first() {
                    r.push(Severity::Warning, codes::SERVER_NOT_SERVED, &p, format!("server {i} repeats host {host} of an earlier server of this Gateway on port {port}"), Some("Istio skips this server whole (duplicate host names on a TLS port); give each host one server".into()));
                }
                for (first, host) in conflicts {
                    let sel: Vec<String> = gw
                        .selector
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    r.push(Severity::Error, codes::CONFLICTING_GATEWAYS, &p, format!("Conflict with gateways {first} (workload selector {}, port {port}, hosts {host}).", sel.join(",")), Some(format!("this server is skipped: {first} was created first and already serves {host} on port {port}")));
                }
            }
            let terminating = matches!(
                tls.mode,
                Some(ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual)
            );
            if let (true, Some(cred)) = (terminating, &tls.credential_name) {
                credential(
                    store,
                    opts,
                    o,
                    &mut r,
                    &p.k("tls").k("credentialName"),
                    cred,
                    tls.mode == Some(ServerTlsMode::Mutual),
                );
            }
        }
    }
}

fn credential(
    store: &Store,
    opts: &AnalyzeOptions,
    gw: &Object,
    r: &mut Report,
    p: &P,
    name: &str,
    mutual: bool,
) {
    let ns = &opts.gateway_namespace;
    let Some(secret) = store.get(Kind::Secret, ns, name) else {
        let elsewhere = store
            .of_kind(Kind::Secret)
            .find(|s| s.name == name)
            .map(|s| s.namespace.clone());
        let help = match elsewhere {
            Some(other) => format!("a Secret \"{name}\" exists in namespace {other}, but the gateway reads Secrets from its own namespace {ns}; move it there or run with --namespace {other}"),
            None => format!("create a kubernetes.io/tls Secret \"{name}\" in namespace {ns} with tls.crt and tls.key"),
        };
        r.push(Severity::Error, codes::INVALID_GATEWAY_CREDENTIAL, p, format!("The credential referenced by the Gateway {} in namespace {} is invalid: Secret {ns}/{name} not found", gw.name, gw.namespace), Some(help));
        return;
    };
    let body = secret.secret().expect("kind");
    let mut missing = Vec::new();
    if crate::tls::secret_pair(body).is_none() {
        missing.push("a certificate and key (tls.crt and tls.key, or cert and key)");
    }
    if mutual && crate::tls::secret_ca(store, ns, name).is_none() {
        missing.push("ca.crt (or cacert, or a Secret <name>-cacert)");
    }
    if !missing.is_empty() {
        r.push(Severity::Error, codes::INVALID_GATEWAY_CREDENTIAL, p, format!("The credential referenced by the Gateway {} in namespace {} is invalid: Secret {ns}/{name} has no {}", gw.name, gw.namespace, missing.join(", ")), None);
        return;
    }
    if let Ok((crate::tls::Pem::Inline(cert), crate::tls::Pem::Inline(key), _)) =
        crate::tls::from_secret(store, ns, name)
    {
        for problem in crate::pem_check::check_pair(&cert, &key, opts.now_unix) {
            let (severity, message) = match problem {
                crate::pem_check::Problem::Expired(when) => (Severity::Warning, format!("the certificate in Secret {ns}/{name} expired on {when}")),
                other => (Severity::Error, format!("The credential referenced by the Gateway {} in namespace {} is invalid: Secret {ns}/{name}: {other}", gw.name, gw.namespace)),
            };
            r.push(
                severity,
                codes::INVALID_GATEWAY_CREDENTIAL,
                p,
                message,
                None,
            );
        }
    }
}

/// Served Ingresses' backends: a Service of the Ingress's namespace with the port it names (by
/// number or name); resource backends are not served. A path whose Service is missing answers
/// 503 (NC), one whose port name is unknown is not served.
fn ingresses(store: &Store, registry: &Registry, opts: &AnalyzeOptions, out: &mut Vec<Diagnostic>) {
    for ingress in crate::compile::ingress::served_ingresses(store, &opts.ingress_classes) {
        let spec = ingress.ingress().expect("kind");
        for (i, rule) in spec.rules.iter().enumerate() {
            let paths = rule.http.iter().flat_map(|h| h.paths.iter().enumerate());
            for (j, path) in paths {
                let at = crate::compile::ingress::backend_path(i, j);
                let Some(svc) = path.backend.as_ref().and_then(|b| b.service.as_ref()) else {
                    continue;
                };
                let name = svc.name.as_deref().unwrap_or("");
                let fqdn = hosts::service_fqdn(name, &ingress.namespace, &opts.domain_suffix);
                let found = registry.lookup(&fqdn);
                let port = svc.port.as_ref();
                let problem = match (
                    found,
                    port.and_then(|p| p.number),
                    port.and_then(|p| p.name.as_ref()),
                ) {
                    (None, _, _) => Some((
                        at.k("service").k("name"),
                        format!(
                            "Service {}/{name} not found: requests for this path get 503 (NC)",
                            ingress.namespace
                        ),
                    )),
                    (Some(s), Some(n), _) if s.port(u32::try_from(n).unwrap_or(0)).is_none() => {
                        Some((
                            at.k("service").k("port").k("number"),
                            format!(
                                "Service {}/{name} has no port {n}: requests for this path get 503",
                                ingress.namespace
                            ),
                        ))
                    }
                    (Some(s), None, Some(pn)) if !s.ports.iter().any(|x| x.name == *pn) => Some((
                        at.k("service").k("port").k("name"),
                        format!(
                            "Service {}/{name} has no port named {pn}: this path is not served",
                            ingress.namespace
                        ),
                    )),
                    _ => None,
                };
                if let Some((p, message)) = problem {
                    out.push(Diagnostic {
                        resource: Some(ingress.resource()),
                        ..Diagnostic::new(
                            Severity::Warning,
                            codes::REFERENCED_RESOURCE_NOT_FOUND,
                            message,
                        )
                        .at(ingress.origin_at(&p.0))
                    });
                }
            }
        }
    }
}
