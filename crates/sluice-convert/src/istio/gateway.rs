//! Istio Gateways as Gateway API Gateways: one listener per server and host (a listener has one
//! hostname), `allowedRoutes` from the host's namespace part, certificates from
//! `credentialName` (a Secret in the gateway's namespace, as Istio reads it), and an HTTPRoute
//! that redirects to https for each `tls.httpsRedirect` server.
use crate::names;
use crate::notes::Notes;
use crate::refs::{secret_ref, Grants};
use crate::{Options, Output};
use serde_json::{json, Value};
use sluice_api::istio::{Server, ServerTlsMode};
use sluice_compile::binding::{gateway_ref, ServerHost};
use sluice_config::validate::P;
use sluice_config::{Kind, Object, Store};

/// A converted Gateway: the object, its listeners (name, protocol, redirecting) and the
/// https-redirect routes of its servers.
pub struct Converted {
    pub namespace: String,
    pub name: String,
    pub output: Output,
    pub listeners: Vec<(String, &'static str, bool)>,
    pub redirect_routes: Vec<Output>,
}

pub fn convert_all(
    store: &Store,
    opts: &Options,
    notes: &mut Notes,
    grants: &mut Grants,
) -> Vec<Converted> {
    store
        .of_kind(Kind::Gateway)
        .map(|gw| convert(gw, opts, notes, grants))
        .collect()
}

fn convert(gw: &Object, opts: &Options, notes: &mut Notes, grants: &mut Grants) -> Converted {
    let spec = gw.gateway().expect("kind");
    let mut comments = Vec::new();
    if !sluice_api::meta::selects(&spec.selector, &opts.identity.labels) {
        comments.push(notes.lost(gw, &P::spec().k("selector"), "the selector does not select this gateway's labels, so Istio does not serve this Gateway here; the Gateway API chooses gateways by gatewayClassName instead".into()));
    }
    let mut listeners: Vec<Value> = Vec::new();
    let mut names_: Vec<(String, &'static str, bool)> = Vec::new();
    let mut redirect_routes = Vec::new();
    for (si, server) in spec.servers.iter().enumerate() {
        let at = P::spec().k("servers").i(si);
        let Some((protocol, tls)) =
            listener_protocol(gw, server, &at, opts, notes, grants, &mut comments)
        else {
            continue;
        };
        for field in ["bind", "defaultEndpoint"] {
            let set = if field == "bind" {
                server.bind.is_some()
            } else {
                server.default_endpoint.is_some()
            };
            if set {
                comments.push(notes.lost(
                    gw,
                    &at.k(field),
                    format!("`{field}` has no Gateway API equivalent"),
                ));
            }
        }
        let port = server.port.as_ref().and_then(|p| p.number).unwrap_or(0);
        let prefix = server
            .name
            .clone()
            .or_else(|| server.port.as_ref().and_then(|p| p.name.clone()))
            .unwrap_or_else(|| format!("{}-{port}", protocol.to_ascii_lowercase()));
        let redirect =
            server.tls.as_ref().and_then(|t| t.https_redirect) == Some(true) && protocol == "HTTP";
        for entry in &server.hosts {
            let sh = ServerHost::parse(entry);
            let mut name = format!(
                "{}-{}",
                names::dashed(&prefix),
                names::from_host(Some(sh.host))
            );
            if names_.iter().any(|(n, _, _)| *n == name) {
                name = format!("{name}-{}", names_.len() + 1);
            }
            let mut l = json!({ "name": name, "port": port, "protocol": protocol });
            if sh.host != "*" && protocol != "TCP" {
                l["hostname"] = json!(sh.host);
            }
            if let Some(t) = &tls {
                l["tls"] = t.clone();
            }
            l["allowedRoutes"] = json!({ "namespaces": match sh.namespace {
                "*" => json!({ "from": "All" }),
                "." => json!({ "from": "Same" }),
                ns => json!({ "from": "Selector", "selector": { "matchLabels": { "kubernetes.io/metadata.name": ns } } }),
            }});
            if redirect {
                let mut r = Output::new(
                    "HTTPRoute",
                    &gw.namespace,
                    &format!("{}-{name}-https-redirect", gw.name),
                    json!({
                        "parentRefs": [{ "name": gw.name, "sectionName": name }],
                        "rules": [{ "filters": [{ "type": "RequestRedirect", "requestRedirect": { "scheme": "https", "statusCode": 301 } }] }],
                    }),
                );
                r.comments.push(format!("tls.httpsRedirect of servers[{si}] of Gateway {}: every request on this listener is redirected to https (VirtualService routes do not attach here).", gw.key()));
                redirect_routes.push(r);
            }
            names_.push((name, protocol, redirect));
            listeners.push(l);
        }
    }
    let mut output = Output::new(
        "Gateway",
        &gw.namespace,
        &gw.name,
        json!({ "gatewayClassName": opts.gateway_class, "listeners": listeners }),
    );
    output.comments = comments;
    Converted {
        namespace: gw.namespace.clone(),
        name: gw.name.clone(),
        output,
        listeners: names_,
        redirect_routes,
    }
}

/// The listener protocol and `tls` block of a server; `None` (warned) when it has no Gateway
/// API listener.
fn listener_protocol(
    gw: &Object,
    server: &Server,
    at: &P,
    opts: &Options,
    notes: &mut Notes,
    grants: &mut Grants,
    comments: &mut Vec<String>,
) -> Option<(&'static str, Option<Value>)> {
    let protocol = server
        .port
        .as_ref()
        .and_then(|p| p.protocol.as_deref())
        .unwrap_or("")
        .to_ascii_uppercase();
    let tls = server.tls.as_ref();
    let mode = tls.and_then(|t| t.mode).unwrap_or(ServerTlsMode::Simple);
    let proto_at = at.k("port").k("protocol");
    match protocol.as_str() {
        "HTTP" | "HTTP2" | "GRPC" => return Some(("HTTP", None)),
        "TCP" => return Some(("TCP", None)),
        "HTTPS" | "TLS" => {}
        other => {
            comments.push(notes.lost(
                gw,
                &proto_at,
                format!("protocol {other} has no Gateway API listener; the server is left out"),
            ));
            return None;
        }
    }
    let passthrough = json!({ "mode": "Passthrough" });
    match mode {
        ServerTlsMode::Passthrough => return Some(("TLS", Some(passthrough))),
        ServerTlsMode::AutoPassthrough | ServerTlsMode::IstioMutual => {
            comments.push(notes.lost(
                gw,
                &at.k("tls").k("mode"),
                format!(
                    "TLS mode {} has no Gateway API listener; the server is left out",
                    mode.as_str()
                ),
            ));
            return None;
        }
        ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {
            comments.push(notes.lost(gw, &at.k("tls").k("mode"), format!("TLS mode {}: client certificates are not converted (write the Gateway's spec.tls.frontend validation with a CA ConfigMap); the listener terminates TLS without asking for one", mode.as_str())));
        }
        ServerTlsMode::Simple => {}
    }
    let t = tls?;
    let secrets: Vec<&String> = t
        .credential_name
        .iter()
        .chain(t.credential_names.iter())
        .collect();
    if secrets.is_empty() {
        comments.push(notes.lost(gw, &at.k("tls"), "certificates from files (serverCertificate, privateKey) cannot be referred to by a listener: put them in a Secret and name it in certificateRefs; the server is left out".into()));
        return None;
    }
    let checks = [
        ("minProtocolVersion", t.min_protocol_version.is_some()),
        ("maxProtocolVersion", t.max_protocol_version.is_some()),
        ("cipherSuites", !t.cipher_suites.is_empty()),
        ("subjectAltNames", !t.subject_alt_names.is_empty()),
    ];
    for (field, set) in checks {
        if set {
            comments.push(notes.lost(gw, &at.k("tls").k(field), format!("tls.{field} has no Gateway API equivalent; the listener uses the gateway's defaults")));
        }
    }
    let refs: Vec<Value> = secrets
        .into_iter()
        .map(|s| secret_ref(grants, &gw.namespace, &opts.identity.namespace, s))
        .collect();
    let proto = if protocol == "HTTPS" { "HTTPS" } else { "TLS" };
    let mut tls_block = json!({ "certificateRefs": refs });
    if proto == "TLS" {
        tls_block["mode"] = json!("Terminate");
    }
    Some((proto, Some(tls_block)))
}

/// A VirtualService's `gateways` as parentRefs (`mesh` left out). A Gateway with https-redirect
/// listeners is referred to by its other listeners' names, so the redirect stays the only rule
/// there, as Istio answers such a server.
pub fn parent_refs(vs: &Object, gateways: &[Converted], notes: &mut Notes) -> Vec<Value> {
    let spec = vs.virtual_service().expect("kind");
    let mut out = Vec::new();
    for (i, g) in spec.gateways.iter().enumerate() {
        let Some((ns, name)) = gateway_ref(g, &vs.namespace) else {
            continue;
        };
        let mut base = json!({ "name": name });
        if ns != vs.namespace {
            base["namespace"] = json!(ns);
        }
        match gateways
            .iter()
            .find(|c| c.namespace == ns && c.name == name)
        {
            Some(c) if c.listeners.iter().any(|(_, _, redirect)| *redirect) => {
                for (l, _, redirect) in &c.listeners {
                    if !redirect {
                        let mut r = base.clone();
                        r["sectionName"] = json!(l);
                        out.push(r);
                    }
                }
            }
            Some(_) => out.push(base),
            None => {
                notes.lost(vs, &P::spec().k("gateways").i(i), format!("Gateway {ns}/{name} is not among the converted objects; the route refers to it anyway"));
                out.push(base);
            }
        }
    }
    out
}
