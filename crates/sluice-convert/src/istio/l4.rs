//! A VirtualService's `tls` routes as TLSRoutes (SNI names from `sniHosts`) and its `tcp`
//! routes as TCPRoutes, one route each (a TLSRoute or TCPRoute has exactly one rule).
use super::backends::Backends;
use crate::notes::Notes;
use crate::Output;
use serde_json::{json, Value};
use sluice_api::istio::RouteDestination;
use sluice_config::validate::P;
use sluice_config::Object;

pub fn convert(
    vs: &Object,
    parents: &[Value],
    backends: &mut Backends,
    notes: &mut Notes,
) -> Vec<Output> {
    let spec = vs.virtual_service().expect("kind");
    let mut out = Vec::new();
    for (i, r) in spec.tls.iter().enumerate() {
        let at = P::spec().k("tls").i(i);
        let mut comments = Vec::new();
        let mut sni: Vec<String> = Vec::new();
        for (mi, m) in r.match_.iter().enumerate() {
            for h in &m.sni_hosts {
                if !sni.contains(h) {
                    sni.push(h.clone());
                }
            }
            if m.port.is_some()
                || !m.destination_subnets.is_empty()
                || !m.source_labels.is_empty()
                || !m.gateways.is_empty()
                || m.source_namespace.is_some()
            {
                comments.push(notes.lost(vs, &at.k("match").i(mi), "only sniHosts can be matched by a TLSRoute; the other conditions are left out".into()));
            }
        }
        if sni.is_empty() {
            sni = spec.hosts.clone();
        }
        let refs = refs(
            vs,
            "TLSRoute",
            &at,
            &r.route,
            backends,
            notes,
            &mut comments,
        );
        let spec =
            json!({ "parentRefs": parents, "hostnames": sni, "rules": [{ "backendRefs": refs }] });
        out.push(route(
            "TLSRoute",
            vs,
            &format!("{}-tls-{i}", vs.name),
            spec,
            comments,
        ));
    }
    for (i, r) in spec.tcp.iter().enumerate() {
        let at = P::spec().k("tcp").i(i);
        let mut comments = Vec::new();
        if !r.match_.is_empty() {
            comments.push(notes.lost(vs, &at.k("match"), "a TCPRoute matches every connection of its listener; the match conditions are left out (attach the route to one listener with sectionName instead)".into()));
        }
        let refs = refs(
            vs,
            "TCPRoute",
            &at,
            &r.route,
            backends,
            notes,
            &mut comments,
        );
        let spec = json!({ "parentRefs": parents, "rules": [{ "backendRefs": refs }] });
        out.push(route(
            "TCPRoute",
            vs,
            &format!("{}-tcp-{i}", vs.name),
            spec,
            comments,
        ));
    }
    out
}

fn route(
    kind: &'static str,
    vs: &Object,
    name: &str,
    spec: Value,
    comments: Vec<String>,
) -> Output {
    let mut o = Output::new(kind, &vs.namespace, name, spec);
    o.comments = comments;
    o
}

fn refs(
    vs: &Object,
    kind: &'static str,
    at: &P,
    route: &[RouteDestination],
    backends: &mut Backends,
    notes: &mut Notes,
    comments: &mut Vec<String>,
) -> Vec<Value> {
    let mut refs = Vec::new();
    for (di, d) in route.iter().enumerate() {
        let Some(dest) = &d.destination else { continue };
        match backends.backend_ref((kind, &vs.namespace), dest, notes) {
            Ok(mut r) => {
                if route.len() > 1 {
                    r.insert("weight".into(), json!(d.weight.unwrap_or(0).max(0)));
                }
                refs.push(Value::Object(r));
            }
            Err(why) => comments.push(notes.lost(vs, &at.k("route").i(di).k("destination"), why)),
        }
    }
    refs
}
