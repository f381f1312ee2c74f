//! The Kubernetes API server's rules for an Ingress (`networking.k8s.io/v1`), which it would
//! refuse to store otherwise.
use super::{Report, P};
use sluice_api::ingress::{IngressBackend, IngressSpec};

pub(super) fn ingress(r: &mut Report, s: &P, spec: &IngressSpec) {
    if spec.rules.is_empty() && spec.default_backend.is_none() {
        r.err(s, "an Ingress needs rules or a defaultBackend");
    }
    if let Some(b) = &spec.default_backend {
        backend(r, &s.k("defaultBackend"), b);
    }
    for (i, t) in spec.tls.iter().enumerate() {
        for (j, h) in t.hosts.iter().enumerate() {
            host(r, &s.k("tls").i(i).k("hosts").i(j), h);
        }
    }
    for (i, rule) in spec.rules.iter().enumerate() {
        let p = s.k("rules").i(i);
        if let Some(h) = &rule.host {
            host(r, &p.k("host"), h);
        }
        let Some(http) = &rule.http else { continue };
        if http.paths.is_empty() {
            r.err(&p.k("http").k("paths"), "at least one path is required");
        }
        for (j, path) in http.paths.iter().enumerate() {
            let pp = p.k("http").k("paths").i(j);
            let text = path.path.as_deref().unwrap_or("");
            match path.path_type.as_deref() {
                None => r.err_help(
                    &pp.k("pathType"),
                    "pathType is required",
                    "set `pathType: Prefix`, `Exact` or `ImplementationSpecific`",
                ),
                Some("Exact" | "Prefix") => {
                    let bad = !text.starts_with('/')
                        || ["//", "/./", "/../", "%2f", "%2F"]
                            .iter()
                            .any(|x| text.contains(x))
                        || text.ends_with("/..")
                        || text.ends_with("/.");
                    if bad {
                        r.err(&pp.k("path"), format!("\"{text}\" must be an absolute path without `//`, `/./`, `/../` or `%2f`"));
                    }
                }
                Some("ImplementationSpecific") => {
                    if !text.is_empty() && !text.starts_with('/') {
                        r.err(
                            &pp.k("path"),
                            format!("\"{text}\" must be an absolute path"),
                        );
                    }
                }
                Some(other) => r.err(
                    &pp.k("pathType"),
                    format!("pathType \"{other}\" is not Exact, Prefix or ImplementationSpecific"),
                ),
            }
            match &path.backend {
                Some(b) => backend(r, &pp.k("backend"), b),
                None => r.err(&pp.k("backend"), "backend is required"),
            }
        }
    }
}

/// A rule or TLS host: a DNS name, optionally with a leading `*.` label; no IP, no port.
fn host(r: &mut Report, p: &P, h: &str) {
    let name = h.strip_prefix("*.").unwrap_or(h);
    let ok = !name.is_empty()
        && name.parse::<std::net::IpAddr>().is_err()
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !ok {
        r.err(p, format!("\"{h}\" is not a host name (lower-case DNS name, optionally starting with `*.`; no IP, no port)"));
    }
}

fn backend(r: &mut Report, p: &P, b: &IngressBackend) {
    match (&b.service, &b.resource) {
        (Some(_), Some(_)) => r.err(p, "set service or resource, not both"),
        (None, None) => r.err(p, "set service or resource"),
        (Some(svc), None) => {
            if svc.name.as_deref().is_none_or(str::is_empty) {
                r.err(&p.k("service").k("name"), "name is required");
            }
            match &svc.port {
                None => r.err(&p.k("service").k("port"), "port is required"),
                Some(port) => match (&port.name, port.number) {
                    (Some(_), Some(_)) | (None, None) => r.err(
                        &p.k("service").k("port"),
                        "set the port's number or its name, one of them",
                    ),
                    (None, Some(n)) if !(1..=65535).contains(&n) => r.err(
                        &p.k("service").k("port").k("number"),
                        "port must be between 1 and 65535",
                    ),
                    _ => {}
                },
            }
        }
        (None, Some(_)) => {}
    }
}
