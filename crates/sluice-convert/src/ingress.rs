//! Ingress → Gateway API, as ingress2gateway writes plain Ingresses (one Gateway per namespace
//! and class named after the class, listeners `<host>-http` on 80 and `<host>-https` on 443,
//! one HTTPRoute per host named `<first ingress>-<host>`), with Istio's reading of the parts
//! ingress2gateway leaves to a provider: ImplementationSpecific paths, TLS Secrets read in the
//! gateway's namespace, and the first of two identical paths winning.
use crate::names;
use crate::notes::Notes;
use crate::paths;
use crate::refs::{secret_ref, Grants};
use crate::{Conversion, Options, Output};
use serde_json::{json, Value};
use sluice_api::ingress::{HttpIngressPath, IngressBackend};
use sluice_compile::hosts;
use sluice_config::validate::P;
use sluice_config::{Kind, Object, Store};
use std::cmp::Reverse;
use std::sync::Arc;

const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The class an Ingress belongs to, as Istio reads it: the annotation wins over
/// `ingressClassName`; neither: the cluster's default IngressClass (`None`: no class at all).
pub fn class_of(store: &Store, ingress: &Object) -> Option<String> {
    let spec = ingress.ingress().expect("kind");
    if let Some(a) = ingress.meta.annotations.get(CLASS_ANNOTATION) {
        return Some(a.clone());
    }
    if let Some(c) = &spec.ingress_class_name {
        return Some(c.clone());
    }
    store
        .of_kind(Kind::IngressClass)
        .find(|c| {
            c.meta
                .annotations
                .get(DEFAULT_CLASS_ANNOTATION)
                .map(String::as_str)
                == Some("true")
        })
        .map(|c| c.name.clone())
}

/// Istio's order of one host's paths: match-all last, longer paths first, exact before prefix.
type Order = (bool, Reverse<usize>, bool);

/// The Gateway API path matches for an Ingress path as Istio reads it, and its place in
/// Istio's order.
fn path_matches(p: &HttpIngressPath) -> (Vec<Value>, Order) {
    let path = p.path.as_deref().unwrap_or("");
    match p.path_type.as_deref() {
        Some("Exact") => (
            vec![paths::exact(path)],
            (false, Reverse(path.len()), false),
        ),
        Some("Prefix") => {
            let trimmed = path.trim_end_matches('/');
            let value = if trimmed.is_empty() { "/" } else { trimmed };
            (
                vec![json!({ "type": "PathPrefix", "value": value })],
                (trimmed.is_empty(), Reverse(path.len()), true),
            )
        }
        // ImplementationSpecific (or none): match-all, a `/*` or `.*` suffix makes the rest a
        // string prefix, anything else is exact (Istio reads no regex here).
        _ => match path {
            "" | "*" | "/*" | ".*" => (paths::string_prefix("/"), (true, Reverse(0), true)),
            p if p.ends_with("/*") || p.ends_with(".*") => {
                let prefix = &p[..p.len() - 2];
                (
                    paths::string_prefix(prefix),
                    (false, Reverse(prefix.len()), true),
                )
            }
            p => (vec![paths::exact(p)], (false, Reverse(p.len()), false)),
        },
    }
}

/// The rules of one (namespace, class, host): every Ingress's paths for that host.
struct Group<'s> {
    namespace: String,
    class: String,
    host: Option<String>,
    route_name: String,
    paths: Vec<(Order, usize, &'s Arc<Object>, P, &'s HttpIngressPath)>,
}

pub fn convert(store: &Store, opts: &Options) -> Conversion {
    let mut notes = Notes::default();
    let mut grants = Grants::default();
    let mut groups: Vec<Group> = Vec::new();
    let mut comments: Vec<(String, Vec<String>)> = Vec::new();
    // (namespace, class) → TLS entries: hosts (none: every host) and Secret name.
    let mut tls: Vec<((String, String), Vec<String>, String)> = Vec::new();
    let mut disabled = Vec::new();
    let mut seq = 0;
    for ingress in store.of_kind(Kind::Ingress) {
        let spec = ingress.ingress().expect("kind");
        let mut own_comments = Vec::new();
        let class = class_of(store, ingress).unwrap_or_else(|| {
            own_comments.push(notes.lost(ingress, &P::spec(), "the Ingress names no class and no IngressClass is the default: its Gateway is written for class `istio`".into()));
            "istio".into()
        });
        let key = (ingress.namespace.clone(), class.clone());
        for (i, t) in spec.tls.iter().enumerate() {
            match &t.secret_name {
                Some(s) => tls.push((
                    key.clone(),
                    t.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                    s.clone(),
                )),
                None => own_comments.push(notes.lost(
                    ingress,
                    &P::spec().k("tls").i(i),
                    "a tls entry without secretName serves nothing".into(),
                )),
            }
        }
        for (i, rule) in spec.rules.iter().enumerate() {
            let host = rule.host.as_ref().map(|h| h.to_ascii_lowercase());
            let Some(http) = &rule.http else { continue };
            let at = match groups.iter().position(|g| {
                g.namespace == ingress.namespace && g.class == class && g.host == host
            }) {
                Some(k) => k,
                None => {
                    groups.push(Group {
                        namespace: ingress.namespace.clone(),
                        class: class.clone(),
                        route_name: format!(
                            "{}-{}",
                            ingress.name,
                            names::from_host(host.as_deref())
                        ),
                        host: host.clone(),
                        paths: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            for (j, p) in http.paths.iter().enumerate() {
                let (_, order) = path_matches(p);
                let field = P::spec().k("rules").i(i).k("http").k("paths").i(j);
                groups[at].paths.push((order, seq, ingress, field, p));
                seq += 1;
            }
        }
        if let Some(b) = &spec.default_backend {
            disabled.push(default_backend(store, ingress, &class, b, &mut notes));
        }
        if !own_comments.is_empty() {
            comments.push((format!("{}/{}", ingress.namespace, class), own_comments));
        }
    }

    let mut gateways: Vec<Output> = Vec::new();
    let mut routes = Vec::new();
    for g in &mut groups {
        g.paths.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let (route, route_comments) = host_route(store, g, &mut notes);
        let gw = gateway_for(&mut gateways, &g.namespace, &g.class);
        add_listener(gw, g.host.as_deref(), "http", 80, None);
        let mut r = Output::new("HTTPRoute", &g.namespace, &g.route_name, route);
        r.comments = route_comments;
        routes.push(r);
    }
    // HTTPS: a listener per TLS host (Istio's 443 server per tls entry), with the Secrets of
    // every entry that covers it.
    for ((ns, class), hosts_, _) in &tls {
        let listener_hosts: Vec<Option<&str>> = if hosts_.is_empty() {
            vec![None]
        } else {
            hosts_.iter().map(|h| Some(h.as_str())).collect()
        };
        for h in listener_hosts {
            let refs: Vec<Value> = tls
                .iter()
                .filter(|((n, c), hs, _)| {
                    n == ns
                        && c == class
                        && (hs.is_empty()
                            || h.is_some_and(|h| hs.iter().any(|x| hosts::covers(x, h))))
                })
                .map(|(_, _, secret)| secret_ref(&mut grants, ns, &opts.identity.namespace, secret))
                .collect();
            let gw = gateway_for(&mut gateways, ns, class);
            add_listener(gw, h, "https", 443, Some(refs));
        }
    }
    for gw in &mut gateways {
        if !["istio", "sluice"].contains(&gw.name.as_str()) {
            gw.comments.push(format!("Class {0}: create a GatewayClass {0} whose controllerName is istio.io/gateway-controller (or sluice.dev/gateway-controller) for this Gateway to be served.", gw.name));
        }
        let key = format!("{}/{}", gw.namespace, gw.name);
        for (_, c) in comments.iter().filter(|(k, _)| *k == key) {
            gw.comments.extend(c.iter().cloned());
        }
        let has_tls = tls
            .iter()
            .any(|((n, c), _, _)| *n == gw.namespace && *c == gw.name);
        if has_tls && opts.identity.namespace != gw.namespace {
            gw.comments.push(format!(
                "Istio reads an Ingress's TLS secretName in the gateway's namespace ({}): the certificateRefs point there.",
                opts.identity.namespace
            ));
        }
    }
    // Host-less routes also take the HTTPS listener without hostname, when there is one.
    for r in &mut routes {
        let Some(gw) = gateways.iter().find(|g| {
            g.namespace == r.namespace
                && r.value["spec"]["parentRefs"][0]["name"] == g.name.as_str()
        }) else {
            continue;
        };
        let https = gw.value["spec"]["listeners"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["name"] == "https"));
        if https && r.value["spec"]["parentRefs"][0]["sectionName"] == "http" {
            let mut other = r.value["spec"]["parentRefs"][0].clone();
            other["sectionName"] = json!("https");
            if let Some(p) = r.value["spec"]["parentRefs"].as_array_mut() {
                p.push(other);
            }
        }
    }
    let mut objects = gateways;
    objects.extend(routes);
    objects.extend(grants.into_outputs());
    objects.extend(disabled);
    Conversion {
        objects,
        warnings: notes.warnings,
    }
}

fn gateway_for<'o>(gateways: &'o mut Vec<Output>, ns: &str, class: &str) -> &'o mut Output {
    let at = match gateways
        .iter()
        .position(|g| g.namespace == ns && g.name == class)
    {
        Some(i) => i,
        None => {
            gateways.push(Output::new(
                "Gateway",
                ns,
                class,
                json!({ "gatewayClassName": class, "listeners": [] }),
            ));
            gateways.len() - 1
        }
    };
    &mut gateways[at]
}

/// Adds `<host>-<suffix>` (or `<suffix>` without a host) unless the Gateway has it.
fn add_listener(
    gw: &mut Output,
    host: Option<&str>,
    suffix: &str,
    port: u16,
    refs: Option<Vec<Value>>,
) {
    let name = match host {
        Some(h) => format!("{}-{suffix}", names::from_host(Some(h))),
        None => suffix.to_string(),
    };
    let listeners = gw.spec_mut()["listeners"]
        .as_array_mut()
        .expect("listeners");
    if listeners.iter().any(|l| l["name"] == name.as_str()) {
        return;
    }
    let mut l = json!({ "name": name, "port": port, "protocol": if refs.is_some() { "HTTPS" } else { "HTTP" } });
    if let Some(h) = host {
        l["hostname"] = json!(h);
    }
    if let Some(refs) = refs {
        l["tls"] = json!({ "certificateRefs": refs });
    }
    listeners.push(l);
}

/// The HTTPRoute of one host: a rule per distinct path in Istio's order; a path that repeats an
/// earlier one is left out (Istio's first wins; ingress2gateway would split traffic).
fn host_route(store: &Store, g: &Group, notes: &mut Notes) -> (Value, Vec<String>) {
    let mut comments = Vec::new();
    let mut rules: Vec<Value> = Vec::new();
    let mut seen: Vec<Vec<Value>> = Vec::new();
    for (_, _, ingress, field, p) in &g.paths {
        let (matches, _) = path_matches(p);
        if seen.contains(&matches) {
            comments.push(notes.lost(ingress, field, format!("path {:?} repeats an earlier path for this host; Istio sends it to the earlier backend, so it is left out", p.path.as_deref().unwrap_or(""))));
            continue;
        }
        let Some(backend) = p.backend.as_ref() else {
            continue;
        };
        let Some(backend_ref) = backend_ref(
            store,
            ingress,
            &field.k("backend"),
            backend,
            notes,
            &mut comments,
        ) else {
            continue;
        };
        seen.push(matches.clone());
        let matches: Vec<Value> = matches.into_iter().map(|m| json!({ "path": m })).collect();
        rules.push(json!({ "matches": matches, "backendRefs": [backend_ref] }));
    }
    let mut spec = json!({ "parentRefs": [{ "name": g.class }], "rules": rules });
    match &g.host {
        Some(h) => spec["hostnames"] = json!([h]),
        // Istio serves host-less rules on a `*` virtual host of their own: a request for a
        // host that has rules never reaches them. Attached to the listeners without hostname
        // only, they stay apart (on every listener they would join each host's routes).
        None => {
            spec["parentRefs"] = json!([{ "name": g.class, "sectionName": "http" }]);
            comments.push("Attached to the listeners without hostname only: Istio serves rules without host apart from the hosts that have rules of their own.".into());
        }
    }
    (spec, comments)
}

/// A Service backend by port number, or by the Service port's name (looked up, as Istio does).
fn backend_ref(
    store: &Store,
    ingress: &Object,
    field: &P,
    b: &IngressBackend,
    notes: &mut Notes,
    comments: &mut Vec<String>,
) -> Option<Value> {
    let Some(svc) = &b.service else {
        comments.push(
            notes.lost(
                ingress,
                field,
                "a resource backend has no Gateway API equivalent (Istio does not serve it either)"
                    .into(),
            ),
        );
        return None;
    };
    let name = svc.name.as_deref().unwrap_or("");
    let port = svc.port.as_ref()?;
    let number = match (port.number, &port.name) {
        (Some(n), _) => Some(i64::from(n)),
        (None, Some(port_name)) => store
            .get(Kind::Service, &ingress.namespace, name)
            .and_then(|s| s.service())
            .and_then(|s| {
                s.ports
                    .iter()
                    .find(|p| p.name.as_deref() == Some(port_name))
            })
            .and_then(|p| p.port),
        (None, None) => None,
    };
    let Some(number) = number else {
        comments.push(notes.lost(ingress, &field.k("service").k("port"), format!("Service {}/{name} has no such port here: the path is left out (Istio does not serve it either)", ingress.namespace)));
        return None;
    };
    Some(json!({ "name": name, "port": number }))
}

/// The route ingress2gateway writes for `defaultBackend`, commented out: Istio ignores
/// `defaultBackend`, so serving it would answer requests the Ingress answered 404.
fn default_backend(
    store: &Store,
    ingress: &Object,
    class: &str,
    b: &IngressBackend,
    notes: &mut Notes,
) -> Output {
    let field = P::spec().k("defaultBackend");
    let mut comments = vec![notes.lost(ingress, &field, "Istio ignores defaultBackend; the route ingress2gateway would write for it is below, commented out: applying it would send requests that got 404 to this backend".into())];
    let backend = backend_ref(store, ingress, &field, b, notes, &mut comments);
    let mut o = Output::new(
        "HTTPRoute",
        &ingress.namespace,
        &format!("{}-default-backend", ingress.name),
        json!({ "parentRefs": [{ "name": class }], "rules": [{ "backendRefs": backend.into_iter().collect::<Vec<_>>() }] }),
    );
    o.comments = comments;
    o.disabled = true;
    o
}
