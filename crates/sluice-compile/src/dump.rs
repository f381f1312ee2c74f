//! The compiled snapshot as JSON, for `sluice config-dump` and the admin's `/config_dump`:
//! listeners (with TLS servers and L4 routes), route tables (virtual hosts, routes with their
//! matches, action and policy), and clusters (effective policy, endpoints). Keys come out sorted
//! and every list in the snapshot's own order (route tables by name), so the output of one
//! configuration never changes and can be kept as a golden file. Key material is never
//! written: inline PEM is shown as `inline`, files by their path.
use crate::explain::{duration, fault_view, header_ops, mirror_views, retry_view};
use crate::policy::{HeaderPolicy, PathRewrite, RoutePolicy};
use crate::snapshot::{
    Action, Cluster, ClusterProblem, L4Route, Listener, ListenerProtocol, Matcher, Route,
    RouteMatch, RouteTable, Snapshot, VirtualHost, WeightedCluster,
};
use crate::tls::{ClientAuth, Pem, ServerMode, TlsServer, TlsSettings, UpstreamTls};
use serde_json::{json, Map, Value};

/// The whole snapshot: `{"listeners": [...], "route_tables": [...], "clusters": [...]}`.
pub fn dump(snapshot: &Snapshot) -> Value {
    let mut tables: Vec<&RouteTable> = snapshot.route_tables.values().map(|t| &**t).collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    json!({
        "listeners": snapshot.listeners.values().map(listener).collect::<Vec<_>>(),
        "route_tables": tables.into_iter().map(route_table).collect::<Vec<_>>(),
        "clusters": snapshot.clusters.values().map(|c| cluster(c)).collect::<Vec<_>>(),
    })
}

/// An object without its `null` fields: optional parts are left out rather than spelled out.
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<_, _>>(),
    )
}

/// A list, or nothing when it is empty.
fn list<T: serde::Serialize>(v: &[T]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// A string, or nothing when it is empty.
fn text(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        json!(s)
    }
}

/// `true`, or nothing.
fn flag(b: bool) -> Value {
    if b {
        Value::Bool(true)
    } else {
        Value::Null
    }
}

fn listener(l: &Listener) -> Value {
    let (protocol, detail) = match &l.protocol {
        ListenerProtocol::Http { route_table } => ("http", ("route_table", json!(route_table))),
        ListenerProtocol::Tls { servers } => {
            ("tls", ("servers", servers.iter().map(tls_server).collect()))
        }
        ListenerProtocol::Tcp { routes } => ("tcp", ("routes", l4_routes(routes))),
    };
    object([
        ("name", json!(l.name)),
        ("bind_port", json!(l.bind_port)),
        ("service_port", json!(l.service_port)),
        ("protocol", json!(protocol)),
        detail,
    ])
}

fn tls_server(s: &TlsServer) -> Value {
    let (mode, route_table, routes) = match &s.mode {
        ServerMode::Http { route_table, .. } => ("terminate_http", json!(route_table), Value::Null),
        ServerMode::Tcp { routes, .. } => ("terminate_tcp", Value::Null, l4_routes(routes)),
        ServerMode::Passthrough { routes } => ("passthrough", Value::Null, l4_routes(routes)),
    };
    object([
        ("name", json!(s.name)),
        ("sni", json!(s.sni)),
        ("mode", json!(mode)),
        ("route_table", route_table),
        ("routes", routes),
        ("tls", s.settings().map_or(Value::Null, |t| tls_settings(t))),
    ])
}

fn pem(p: &Pem) -> Value {
    match p {
        Pem::Inline(_) => json!("inline"),
        Pem::File(path) => json!(path.display().to_string()),
    }
}

fn tls_settings(t: &TlsSettings) -> Value {
    object([
        ("certificate", pem(&t.cert_chain)),
        ("private_key", pem(&t.private_key)),
        ("ca", t.ca.as_ref().map_or(Value::Null, pem)),
        (
            "client_certificate",
            json!(match t.client_auth {
                ClientAuth::None => "none",
                ClientAuth::Required => "required",
                ClientAuth::Optional => "optional",
            }),
        ),
        (
            "min_version",
            json!(if t.min_tls13 { "1.3" } else { "1.2" }),
        ),
        (
            "max_version",
            json!(if t.max_tls12 { "1.2" } else { "1.3" }),
        ),
        ("cipher_suites", list(&t.cipher_suites)),
        ("subject_alt_names", list(&t.subject_alt_names)),
        ("verify_spki", list(&t.verify_spki)),
        ("verify_hash", list(&t.verify_hash)),
    ])
}

fn l4_routes(routes: &[L4Route]) -> Value {
    routes
        .iter()
        .map(|r| {
            object([
                ("kind", json!(r.kind)),
                ("source", json!(r.virtual_service)),
                ("index", json!(r.index)),
                ("sni", list(&r.sni)),
                ("clusters", destinations(&r.destinations)),
            ])
        })
        .collect()
}

fn route_table(t: &RouteTable) -> Value {
    json!({
        "name": t.name,
        "virtual_hosts": t.virtual_hosts.iter().map(virtual_host).collect::<Vec<_>>(),
    })
}

fn virtual_host(vh: &VirtualHost) -> Value {
    object([
        ("name", json!(vh.name)),
        ("domain", json!(vh.domain)),
        ("https_redirect", flag(vh.https_redirect)),
        ("routes", vh.routes.iter().map(route).collect()),
    ])
}

fn route(r: &Route) -> Value {
    object([
        ("kind", json!(r.kind)),
        ("source", json!(r.virtual_service)),
        ("index", json!(r.index)),
        ("name", json!(r.name)),
        ("matches", r.matches.iter().map(route_match).collect()),
        ("action", action(&r.action)),
        ("policy", policy(&r.policy)),
    ])
}

fn matcher(m: &Matcher) -> Value {
    match m {
        Matcher::Exact(s) => json!({ "exact": s }),
        Matcher::Prefix(s) => json!({ "prefix": s }),
        Matcher::PathPrefix(s) => json!({ "path_prefix": s }),
        Matcher::Regex(r) => json!({ "regex": r.as_str() }),
        Matcher::Present => json!({ "present": true }),
    }
}

fn route_match(m: &RouteMatch) -> Value {
    let named = |v: &[(String, Matcher)]| {
        let pairs: Vec<Value> = v
            .iter()
            .map(|(name, m)| json!({ "name": name, "match": matcher(m) }))
            .collect();
        list(&pairs)
    };
    let one = |m: &Option<Matcher>| m.as_ref().map_or(Value::Null, matcher);
    object([
        ("uri", one(&m.uri)),
        ("scheme", one(&m.scheme)),
        ("method", one(&m.method)),
        ("authority", one(&m.authority)),
        ("headers", named(&m.headers)),
        ("without_headers", named(&m.without_headers)),
        ("query_params", named(&m.query_params)),
        ("port", json!(m.port)),
        ("ignore_uri_case", flag(m.ignore_uri_case)),
    ])
}

fn destinations(d: &[WeightedCluster]) -> Value {
    d.iter()
        .map(|w| {
            object([
                ("cluster", json!(w.cluster)),
                ("weight", json!(w.weight)),
                (
                    "headers",
                    w.headers.as_deref().map_or(Value::Null, header_policy),
                ),
            ])
        })
        .collect()
}

fn header_policy(h: &HeaderPolicy) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "request": header_ops(&[&h.request]),
        "response": header_ops(&[&h.response]),
    })
}

fn path_rewrite(p: &PathRewrite) -> Value {
    match p {
        PathRewrite::Full(s) => json!({ "replace_full_path": s }),
        PathRewrite::PrefixMatch(s) => json!({ "replace_prefix_match": s }),
    }
}

fn action(a: &Action) -> Value {
    match a {
        Action::Forward(f) => json!({ "forward": { "clusters": destinations(&f.destinations) } }),
        Action::Redirect(r) => json!({ "redirect": object([
            ("status", json!(r.status)),
            ("uri", json!(r.uri)),
            ("path", r.path.as_ref().map_or(Value::Null, path_rewrite)),
            ("authority", json!(r.authority)),
            ("scheme", json!(r.scheme)),
            ("port", json!(r.port)),
            ("port_from_request", flag(r.port_from_request)),
        ]) }),
        Action::DirectResponse { status, body } => json!({ "direct_response": {
            "status": status,
            "body": String::from_utf8_lossy(body),
        } }),
    }
}

fn policy(p: &RoutePolicy) -> Value {
    let rewrite = p.rewrite.as_ref().map_or(Value::Null, |r| {
        object([
            ("uri", json!(r.uri)),
            (
                "authority",
                json!(r
                    .authority
                    .as_ref()
                    .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned())),
            ),
            (
                "uri_regex",
                r.regex.as_ref().map_or(
                    Value::Null,
                    |(re, sub)| json!({ "match": re.as_str(), "rewrite": sub }),
                ),
            ),
            ("path", r.path.as_ref().map_or(Value::Null, path_rewrite)),
        ])
    });
    object([
        ("timeout", json!(p.timeout.map(duration))),
        ("retries", json!(retry_view(&p.retry))),
        ("rewrite", rewrite),
        ("headers", header_policy(&p.headers)),
        ("mirrors", list(&mirror_views(&p.mirrors))),
        (
            "fault",
            p.fault
                .as_ref()
                .map_or(Value::Null, |f| json!(fault_view(f))),
        ),
        ("cors", flag(p.cors.is_some())),
    ])
}

fn problem(p: &ClusterProblem) -> Value {
    let (reason, detail) = match p {
        ClusterProblem::UnknownHost => ("unknown_host", None),
        ClusterProblem::UnknownSubset => ("unknown_subset", None),
        ClusterProblem::Tls(t) => ("tls", Some(t.to_string())),
        ClusterProblem::InvalidBackendRef { why, .. } => ("invalid_backend_ref", Some(why.clone())),
    };
    object([
        ("reason", json!(reason)),
        ("detail", json!(detail)),
        ("status", json!(p.status())),
    ])
}

fn upstream_tls(t: &UpstreamTls) -> Value {
    object([
        (
            "mode",
            json!(if t.mesh {
                "istio_mutual"
            } else if t.client_cert.is_some() {
                "mutual"
            } else {
                "simple"
            }),
        ),
        ("ca", t.ca.as_ref().map_or(json!("system roots"), pem)),
        ("sni", json!(t.sni)),
        ("subject_alt_names", list(&t.subject_alt_names)),
        ("insecure_skip_verify", flag(t.insecure_skip_verify)),
    ])
}

/// One cluster; its endpoints as `{address, port, weight, priority, locality}`, in the
/// snapshot's order (the admin adds runtime health to them).
pub fn cluster(c: &Cluster) -> Value {
    object([
        ("name", json!(c.name)),
        ("service", json!(c.host)),
        ("port", json!(c.port)),
        ("subset", text(&c.subset)),
        ("protocol", json!(if c.http2 { "http2" } else { "http1" })),
        ("tls", c.tls.as_deref().map_or(Value::Null, upstream_tls)),
        ("problem", c.problem.as_ref().map_or(Value::Null, problem)),
        ("policy", json!(c.policy.describe(c.lb.as_str()))),
        (
            "endpoints",
            c.endpoints
                .iter()
                .map(|e| {
                    object([
                        ("address", json!(e.address)),
                        ("port", json!(e.port)),
                        ("weight", json!(e.weight)),
                        ("priority", json!(e.priority)),
                        ("locality", text(&e.locality)),
                    ])
                })
                .collect(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Listener;
    use std::sync::Arc;

    /// A Secret's key must not leave the process through the admin port.
    #[test]
    fn inline_key_material_is_never_written() {
        let secret = |s: &str| Pem::Inline(Arc::from(s.as_bytes()));
        let settings = TlsSettings::simple(secret("CERT-BYTES"), secret("KEY-BYTES"));
        let server = TlsServer {
            name: "https.443.https.gw.default".into(),
            sni: vec!["shop.example".into()],
            mode: ServerMode::Http {
                settings: Arc::new(settings),
                route_table: "https.443.https.gw.default".into(),
            },
        };
        let mut snapshot = Snapshot::default();
        snapshot.listeners.insert(
            443,
            Listener::new(
                443,
                443,
                ListenerProtocol::Tls {
                    servers: vec![server],
                },
            ),
        );
        let text = dump(&snapshot).to_string();
        assert!(
            !text.contains("KEY-BYTES") && !text.contains("CERT-BYTES"),
            "{text}"
        );
        let tls = &dump(&snapshot)["listeners"][0]["servers"][0]["tls"];
        assert_eq!(tls["private_key"], "inline");
        assert_eq!(tls["client_certificate"], "none");
    }
}
