//! The Gateway API's own rules for one object (the CRD schemas' required fields, patterns and
//! CEL rules that the API server would enforce), for the kinds sluice serves.
use super::{Report, P};
use crate::diag::{codes, Severity};
use sluice_api::gateway_api::*;
use std::collections::HashSet;

/// GEP-2257 durations: 1 to 4 groups of up to 5 digits and a unit (h, m, s, ms).
pub fn gep2257(text: &str) -> Option<std::time::Duration> {
    let (mut rest, mut total, mut groups) = (text, 0u64, 0);
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (ms, unit_len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            match rest.as_bytes().first() {
                Some(b'h') => (3_600_000, 1),
                Some(b'm') => (60_000, 1),
                Some(b's') => (1_000, 1),
                _ => return None,
            }
        };
        rest = &rest[unit_len..];
        total += n * ms;
        groups += 1;
    }
    (1..=4)
        .contains(&groups)
        .then(|| std::time::Duration::from_millis(total))
}

pub(super) fn gateway(r: &mut Report, s: &P, g: &KubeGatewaySpec) {
    if g.gateway_class_name.as_deref().is_none_or(str::is_empty) {
        r.err(&s.k("gatewayClassName"), "gatewayClassName is required");
    }
    if g.listeners.is_empty() {
        r.err(&s.k("listeners"), "a Gateway needs at least one listener");
    }
    if let Some(f) = g.tls.as_ref().and_then(|t| t.frontend.as_ref()) {
        let configs = f
            .default
            .iter()
            .map(|c| (s.k("tls").k("frontend").k("default"), c))
            .chain(f.per_port.iter().enumerate().filter_map(|(i, pp)| {
                Some((
                    s.k("tls").k("frontend").k("perPort").i(i).k("tls"),
                    pp.tls.as_ref()?,
                ))
            }));
        for (p, c) in configs {
            let mode = c.validation.as_ref().and_then(|v| v.mode);
            if mode == Some(FrontendValidationMode::AllowInsecureFallback) {
                r.warn(
                    &p.k("validation").k("mode"),
                    "AllowInsecureFallback: sluice admits clients without a certificate but refuses one whose certificate does not verify",
                    None,
                );
            }
        }
    }
    listeners(r, s, &g.listeners);
}

/// A ListenerSet: its Gateway, then the rules of listeners a Gateway's have.
pub(super) fn listener_set(r: &mut Report, s: &P, ls: &ListenerSetSpec) {
    match &ls.parent_ref {
        None => r.err(&s.k("parentRef"), "parentRef (the Gateway) is required"),
        Some(p) if p.name.as_deref().is_none_or(str::is_empty) => {
            r.err(&s.k("parentRef").k("name"), "name is required")
        }
        Some(p) if p.kind.as_deref().is_some_and(|k| k != "Gateway") => r.err(
            &s.k("parentRef").k("kind"),
            "a ListenerSet's parent is a Gateway",
        ),
        _ => {}
    }
    if ls.listeners.is_empty() {
        r.err(
            &s.k("listeners"),
            "a ListenerSet needs at least one listener",
        );
    }
    for (i, l) in ls.listeners.iter().enumerate() {
        if l.port.is_none() {
            r.err(&s.k("listeners").i(i).k("port"), "port is required");
        }
    }
    listeners(r, s, &ls.listeners);
}

/// What a Gateway's and a ListenerSet's listeners must be: named once each, distinct in
/// (port, protocol, hostname), TLS as the protocol asks.
fn listeners(r: &mut Report, s: &P, listeners: &[Listener]) {
    let mut names = HashSet::new();
    let mut triples = HashSet::new();
    for (i, l) in listeners.iter().enumerate() {
        let p = s.k("listeners").i(i);
        match l.name.as_deref() {
            None | Some("") => r.err(&p.k("name"), "listener name is required"),
            Some(n) if !names.insert(n) => {
                r.err(&p.k("name"), format!("listener name \"{n}\" is used twice"))
            }
            _ => {}
        }
        if !matches!(l.port, Some(1..=65535)) {
            r.err(&p.k("port"), "port must be between 1 and 65535");
        }
        let protocol = l.protocol.as_deref().unwrap_or("");
        if protocol.is_empty() {
            r.err(&p.k("protocol"), "protocol is required");
        }
        if let Some(h) = &l.hostname {
            if !valid_hostname(h) {
                r.err(&p.k("hostname"), format!("\"{h}\" is not a hostname (lower-case DNS name, optionally starting with `*.`; no IP)"));
            }
        }
        if !triples.insert((l.port, protocol, l.hostname.as_deref())) {
            r.err(
                &p,
                "another listener has the same port, protocol and hostname",
            );
        }
        match (protocol, &l.tls) {
            ("HTTP" | "TCP" | "UDP", Some(_)) => r.err(
                &p.k("tls"),
                format!("tls is not allowed on a {protocol} listener"),
            ),
            ("HTTPS", None) => r.err(
                &p.k("tls"),
                "an HTTPS listener needs tls with certificateRefs",
            ),
            ("HTTPS", Some(t)) if t.mode == Some(TlsModeType::Passthrough) => r.err(
                &p.k("tls").k("mode"),
                "an HTTPS listener terminates TLS; use protocol TLS for Passthrough",
            ),
            ("TLS", None) => r.err(&p.k("tls"), "a TLS listener needs tls.mode"),
            _ => {}
        }
        if l.tls.as_ref().is_some_and(|t| t.certificate_refs.len() > 1) {
            r.warn(
                &p.k("tls").k("certificateRefs"),
                "only the first certificateRefs entry is served; the others are ignored",
                Some("serve one certificate per listener, or one listener per hostname".into()),
            );
        }
        if let Some(t) = &l.tls {
            if t.mode != Some(TlsModeType::Passthrough)
                && t.certificate_refs.is_empty()
                && t.options.is_empty()
            {
                r.err(
                    &p.k("tls").k("certificateRefs"),
                    "mode Terminate needs certificateRefs",
                );
            }
        }
        if (protocol == "TCP" || protocol == "UDP") && l.hostname.is_some() {
            r.err(
                &p.k("hostname"),
                format!("a {protocol} listener has no hostname"),
            );
        }
    }
}

/// A Gateway API `Hostname`: a lower-case DNS name, optionally with a leading `*.` label.
fn valid_hostname(h: &str) -> bool {
    let name = h.strip_prefix("*.").unwrap_or(h);
    !name.is_empty()
        && h.len() <= 253
        && name.parse::<std::net::IpAddr>().is_err()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// What every route kind checks of its hostnames and parentRefs.
fn hostnames_and_parents(r: &mut Report, s: &P, hostnames: &[String], parents: &[ParentReference]) {
    for (i, h) in hostnames.iter().enumerate() {
        if !valid_hostname(h) {
            r.err(&s.k("hostnames").i(i), format!("\"{h}\" is not a hostname (lower-case DNS name, optionally starting with `*.`; no IP)"));
        }
    }
    for (i, pr) in parents.iter().enumerate() {
        if pr.name.as_deref().is_none_or(str::is_empty) {
            r.err(&s.k("parentRefs").i(i).k("name"), "name is required");
        }
    }
}

pub(super) fn http_route(r: &mut Report, s: &P, route: &HttpRouteSpec) {
    hostnames_and_parents(r, s, &route.hostnames, &route.parent_refs);
    for (i, rule) in route.rules.iter().enumerate() {
        let p = s.k("rules").i(i);
        for (j, m) in rule.matches.iter().enumerate() {
            http_match(r, &p.k("matches").i(j), m);
        }
        let mut redirect = false;
        let mut rewrite = false;
        for (j, f) in rule.filters.iter().enumerate() {
            let fp = p.k("filters").i(j);
            filter(r, &fp, f);
            redirect |= f.type_ == Some(HttpRouteFilterType::RequestRedirect);
            rewrite |= f.type_ == Some(HttpRouteFilterType::UrlRewrite);
            let prefix_rewrite = f
                .url_rewrite
                .as_ref()
                .and_then(|u| u.path.as_ref())
                .or(f.request_redirect.as_ref().and_then(|rd| rd.path.as_ref()))
                .is_some_and(|m| m.type_ == Some(HttpPathModifierType::ReplacePrefixMatch));
            let one_prefix = rule.matches.len() == 1
                && rule.matches[0]
                    .path
                    .as_ref()
                    .is_none_or(|pm| pm.type_.is_none_or(|t| t == PathMatchType::PathPrefix));
            if prefix_rewrite && !one_prefix && !rule.matches.is_empty() {
                r.err(
                    &fp,
                    "ReplacePrefixMatch needs exactly one PathPrefix match in the rule",
                );
            }
        }
        if redirect && rewrite {
            r.err(
                &p.k("filters"),
                "RequestRedirect and URLRewrite cannot be used together",
            );
        }
        if redirect && !rule.backend_refs.is_empty() {
            r.err(
                &p.k("backendRefs"),
                "a rule with RequestRedirect has no backendRefs",
            );
        }
        backend_refs(r, &p, &rule.backend_refs);
        if let Some(t) = &rule.timeouts {
            let request = duration(r, &p.k("timeouts").k("request"), t.request.as_deref());
            let backend = duration(
                r,
                &p.k("timeouts").k("backendRequest"),
                t.backend_request.as_deref(),
            );
            if let (Some(req), Some(back)) = (request, backend) {
                if !req.is_zero() && back > req {
                    r.err(
                        &p.k("timeouts").k("backendRequest"),
                        "backendRequest must not be longer than request",
                    );
                }
            }
        }
    }
}

/// HTTPRoute and GRPCRoute backendRefs: a name, a port for Services, a weight in range, and
/// only header filters per backend.
fn backend_refs(r: &mut Report, p: &P, backends: &[HttpBackendRef]) {
    for (j, b) in backends.iter().enumerate() {
        let bp = p.k("backendRefs").i(j);
        if b.name.as_deref().is_none_or(str::is_empty) {
            r.err(&bp.k("name"), "name is required");
        }
        let service = b.kind.as_deref().is_none_or(|k| k == "Service")
            && b.group.as_deref().is_none_or(str::is_empty);
        if service && b.port.is_none() {
            r.err_help(
                &bp.k("port"),
                "a Service backendRef needs its port",
                "add `port:` with the Service port (not the targetPort)",
            );
        }
        if !matches!(b.weight, None | Some(0..=1_000_000)) {
            r.err(&bp.k("weight"), "weight must be between 0 and 1000000");
        }
        for (k, f) in b.filters.iter().enumerate() {
            let fp = bp.k("filters").i(k);
            filter(r, &fp, f);
            let header = matches!(
                f.type_,
                Some(
                    HttpRouteFilterType::RequestHeaderModifier
                        | HttpRouteFilterType::ResponseHeaderModifier
                )
            );
            if !header {
                r.push(
                    Severity::Error,
                    codes::UNSUPPORTED_FIELD,
                    &fp.k("type"),
                    format!("{}.type: sluice applies only RequestHeaderModifier and ResponseHeaderModifier per backend", crate::yaml::path_to_string(&fp.0)),
                    Some("move the filter to the rule's filters, where it applies to every backend".into()),
                );
            }
        }
    }
}

/// GRPCRoute: the CRD's method-match rules, then what it shares with HTTPRoute (its filters and
/// backendRefs are HTTPRoute's of the same types).
pub(super) fn grpc_route(r: &mut Report, s: &P, route: &GrpcRouteSpec) {
    hostnames_and_parents(r, s, &route.hostnames, &route.parent_refs);
    for (i, rule) in route.rules.iter().enumerate() {
        let p = s.k("rules").i(i);
        for (j, m) in rule.matches.iter().enumerate() {
            let mp = p.k("matches").i(j);
            if let Some(method) = &m.method {
                grpc_method(r, &mp.k("method"), method);
            }
            let headers: Vec<HttpHeaderMatch> = m
                .headers
                .iter()
                .map(|h| HttpHeaderMatch {
                    type_: h.type_,
                    name: h.name.clone(),
                    value: h.value.clone(),
                })
                .collect();
            http_match(
                r,
                &mp,
                &HttpRouteMatch {
                    headers,
                    ..Default::default()
                },
            );
        }
        for (j, f) in rule.filters.iter().enumerate() {
            filter(r, &p.k("filters").i(j), &HttpRouteFilter::from(f));
        }
        let backends: Vec<HttpBackendRef> =
            rule.backend_refs.iter().map(HttpBackendRef::from).collect();
        backend_refs(r, &p, &backends);
    }
}

fn grpc_method(r: &mut Report, p: &P, m: &GrpcMethodMatch) {
    if m.service.is_none() && m.method.is_none() {
        r.err(p, "a method match needs service, method or both");
    }
    let regex = m.type_ == Some(HeaderMatchType::RegularExpression);
    let checks = [
        ("service", m.service.as_deref(), true),
        ("method", m.method.as_deref(), false),
    ];
    for (field, value, dotted) in checks {
        let Some(value) = value else { continue };
        if regex {
            if let Err(e) = regex::Regex::new(value) {
                r.err(
                    &p.k(field),
                    format!("regex \"{value}\" does not compile: {e}"),
                );
            }
        } else if !grpc_name(value, dotted) {
            let what = if dotted {
                "a fully-qualified gRPC service name (such as `foo.bar.Greeter`)"
            } else {
                "a gRPC method name (letters, digits and `_`)"
            };
            r.err(&p.k(field), format!("\"{value}\" is not {what}"));
        }
    }
}

/// The CRD's patterns for Exact service (dotted identifiers) and method names.
fn grpc_name(value: &str, dotted: bool) -> bool {
    let ident = |s: &str| {
        s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if dotted {
        let v = value.strip_prefix('.').unwrap_or(value);
        v.split('.').all(ident)
    } else {
        ident(value)
    }
}

/// BackendTLSPolicy v1: Service targets, exactly one of CA refs and well-known CAs, a hostname.
pub(super) fn backend_tls_policy(r: &mut Report, s: &P, policy: &BackendTlsPolicySpec) {
    if policy.target_refs.is_empty() {
        r.err(&s.k("targetRefs"), "at least one targetRef is required");
    }
    for (i, t) in policy.target_refs.iter().enumerate() {
        let p = s.k("targetRefs").i(i);
        if t.name.as_deref().is_none_or(str::is_empty) {
            r.err(&p.k("name"), "name is required");
        }
        if t.group.as_deref().is_some_and(|g| !g.is_empty())
            || t.kind.as_deref().is_some_and(|k| k != "Service")
        {
            r.err_help(
                &p.k("kind"),
                "sluice applies BackendTLSPolicy to Services only",
                "target a core Service (`group: \"\"`, `kind: Service`)",
            );
        }
    }
    let Some(v) = &policy.validation else {
        r.err(&s.k("validation"), "validation is required");
        return;
    };
    let p = s.k("validation");
    match (
        v.ca_certificate_refs.is_empty(),
        &v.well_known_ca_certificates,
    ) {
        (true, None) => r.err(&p, "set caCertificateRefs or wellKnownCACertificates"),
        (false, Some(_)) => r.err(
            &p.k("wellKnownCACertificates"),
            "caCertificateRefs and wellKnownCACertificates cannot be used together",
        ),
        _ => {}
    }
    if let Some(w) = v
        .well_known_ca_certificates
        .as_deref()
        .filter(|w| *w != "System")
    {
        r.err_help(
            &p.k("wellKnownCACertificates"),
            format!("\"{w}\" is not a CA set sluice knows"),
            "use `System` (the machine's trust store)",
        );
    }
    for (i, c) in v.ca_certificate_refs.iter().enumerate() {
        let cp = p.k("caCertificateRefs").i(i);
        let config_map =
            c.group.as_deref().is_none_or(str::is_empty) && c.kind.as_deref() == Some("ConfigMap");
        if !config_map {
            r.err_help(
                &cp.k("kind"),
                "sluice reads CA certificates from ConfigMaps",
                "refer to a ConfigMap (`group: \"\"`, `kind: ConfigMap`) with the PEM under `ca.crt`",
            );
        }
    }
    match v.hostname.as_deref() {
        None | Some("") => r.err(
            &p.k("hostname"),
            "hostname (the SNI sent to the backend) is required",
        ),
        Some(h) if h.starts_with("*.") || !valid_hostname(h) => r.err(
            &p.k("hostname"),
            format!("\"{h}\" is not a hostname (lower-case DNS name, no wildcard, no IP)"),
        ),
        _ => {}
    }
    let types: HashSet<_> = v.subject_alt_names.iter().filter_map(|s| s.type_).collect();
    if types.len() > 1 {
        r.warn(
            &p.k("subjectAltNames"),
            "sluice checks the Hostname names only when a policy mixes Hostname and URI names",
            Some("use one type of subjectAltNames per policy".into()),
        );
    }
    for (i, san) in v.subject_alt_names.iter().enumerate() {
        let sp = p.k("subjectAltNames").i(i);
        match (san.type_, &san.hostname, &san.uri) {
            (Some(SubjectAltNameType::Hostname), Some(_), None)
            | (Some(SubjectAltNameType::Uri), None, Some(_)) => {}
            _ => r.err(
                &sp,
                "type Hostname needs hostname (only), type URI needs uri (only)",
            ),
        }
    }
}

fn duration(r: &mut Report, p: &P, text: Option<&str>) -> Option<std::time::Duration> {
    let text = text?;
    let d = gep2257(text);
    if d.is_none() {
        r.err_help(
            p,
            format!("\"{text}\" is not a Gateway API duration"),
            "write 1 to 4 groups of a number and a unit (h, m, s, ms), such as 10s, 1m30s or 500ms",
        );
    }
    d
}

fn http_match(r: &mut Report, p: &P, m: &HttpRouteMatch) {
    if let Some(path) = &m.path {
        let value = path.value.as_deref().unwrap_or("/");
        match path.type_.unwrap_or(PathMatchType::PathPrefix) {
            PathMatchType::RegularExpression => {
                if let Err(e) = regex::Regex::new(value) {
                    r.err(
                        &p.k("path").k("value"),
                        format!("regex \"{value}\" does not compile: {e}"),
                    );
                }
            }
            _ => {
                let bad = !value.starts_with('/')
                    || value.contains("//")
                    || value.contains("/./")
                    || value.contains("/../")
                    || value.to_ascii_lowercase().contains("%2f")
                    || value.contains('#')
                    || value.ends_with("/..")
                    || value.ends_with("/.");
                if bad {
                    r.err(&p.k("path").k("value"), format!("\"{value}\" must start with `/` and hold no `//`, `/./`, `/../`, `%2f` or `#`"));
                }
            }
        }
    }
    for (i, h) in m.headers.iter().enumerate() {
        let name = h.name.as_deref().unwrap_or("");
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            r.err(
                &p.k("headers").i(i).k("name"),
                format!("\"{name}\" is not a header name"),
            );
        }
        if h.type_ == Some(HeaderMatchType::RegularExpression) {
            if let Err(e) = regex::Regex::new(h.value.as_deref().unwrap_or("")) {
                r.err(
                    &p.k("headers").i(i).k("value"),
                    format!("regex does not compile: {e}"),
                );
            }
        }
    }
    for (i, q) in m.query_params.iter().enumerate() {
        if q.name.as_deref().is_none_or(str::is_empty) {
            r.err(&p.k("queryParams").i(i).k("name"), "name is required");
        }
        if q.type_ == Some(HeaderMatchType::RegularExpression) {
            if let Err(e) = regex::Regex::new(q.value.as_deref().unwrap_or("")) {
                r.err(
                    &p.k("queryParams").i(i).k("value"),
                    format!("regex does not compile: {e}"),
                );
            }
        }
    }
}

fn filter(r: &mut Report, p: &P, f: &HttpRouteFilter) {
    use HttpRouteFilterType as T;
    let Some(t) = f.type_ else {
        r.err(&p.k("type"), "type is required");
        return;
    };
    let set = match t {
        T::RequestHeaderModifier => f.request_header_modifier.is_some(),
        T::ResponseHeaderModifier => f.response_header_modifier.is_some(),
        T::RequestMirror => f.request_mirror.is_some(),
        T::RequestRedirect => f.request_redirect.is_some(),
        T::UrlRewrite => f.url_rewrite.is_some(),
        T::ExtensionRef => f.extension_ref.is_some(),
        T::Cors => f.cors.is_some(),
        T::ExternalAuth => f.external_auth.is_some(),
    };
    if !set {
        r.err(
            p,
            format!("filter type {} needs its own field set", t.as_str()),
        );
    }
    let members = [
        (
            f.request_header_modifier.is_some(),
            T::RequestHeaderModifier,
            "requestHeaderModifier",
        ),
        (
            f.response_header_modifier.is_some(),
            T::ResponseHeaderModifier,
            "responseHeaderModifier",
        ),
        (
            f.request_mirror.is_some(),
            T::RequestMirror,
            "requestMirror",
        ),
        (
            f.request_redirect.is_some(),
            T::RequestRedirect,
            "requestRedirect",
        ),
        (f.url_rewrite.is_some(), T::UrlRewrite, "urlRewrite"),
        (f.extension_ref.is_some(), T::ExtensionRef, "extensionRef"),
        (f.cors.is_some(), T::Cors, "cors"),
        (f.external_auth.is_some(), T::ExternalAuth, "externalAuth"),
    ];
    for (present, member, field) in members {
        if present && member != t {
            r.err(
                &p.k(field),
                format!("{field} is set on a filter of type {}", t.as_str()),
            );
        }
    }
    if let Some(rd) = &f.request_redirect {
        if !matches!(rd.status_code, None | Some(301 | 302 | 303 | 307 | 308)) {
            r.err(
                &p.k("requestRedirect").k("statusCode"),
                "statusCode must be 301, 302, 303, 307 or 308",
            );
        }
    }
    if let Some(m) = &f.request_mirror {
        if m.percent.is_some() && m.fraction.is_some() {
            r.err(&p.k("requestMirror"), "set percent or fraction, not both");
        }
        if !matches!(m.percent, None | Some(0..=100)) {
            r.err(
                &p.k("requestMirror").k("percent"),
                "percent must be between 0 and 100",
            );
        }
    }
}

/// TLSRoute v1: hostnames (SNI names) required, then the rules of every L4 route.
pub(super) fn tls_route(r: &mut Report, s: &P, route: &TlsRouteSpec) {
    if route.hostnames.is_empty() {
        r.err(
            &s.k("hostnames"),
            "a TLSRoute needs at least one hostname (the SNI names it takes)",
        );
    }
    for (i, h) in route.hostnames.iter().enumerate() {
        if !valid_hostname(h) {
            r.err(&s.k("hostnames").i(i), format!("\"{h}\" is not a hostname (lower-case DNS name, optionally starting with `*.`; no IP)"));
        }
    }
    l4_route(r, s, &route.parent_refs, &route.rules);
}

/// TLSRoute and TCPRoute: one rule of 1 to 16 backends with ports.
pub(super) fn l4_route(r: &mut Report, s: &P, parents: &[ParentReference], rules: &[L4RouteRule]) {
    for (i, pr) in parents.iter().enumerate() {
        if pr.name.as_deref().is_none_or(str::is_empty) {
            r.err(&s.k("parentRefs").i(i).k("name"), "name is required");
        }
    }
    if rules.len() != 1 {
        r.err(&s.k("rules"), "exactly one rule is required");
    }
    for (i, rule) in rules.iter().enumerate() {
        if rule.backend_refs.is_empty() || rule.backend_refs.len() > 16 {
            r.err(
                &s.k("rules").i(i).k("backendRefs"),
                "1 to 16 backendRefs are required",
            );
        }
        for (j, b) in rule.backend_refs.iter().enumerate() {
            let service = b.kind.as_deref().is_none_or(|k| k == "Service")
                && b.group.as_deref().is_none_or(str::is_empty);
            if service && b.port.is_none() {
                r.err(
                    &s.k("rules").i(i).k("backendRefs").i(j).k("port"),
                    "a Service backendRef needs its port",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gep2257;
    use std::time::Duration;

    #[test]
    fn gep_2257_durations() {
        assert_eq!(gep2257("10s"), Some(Duration::from_secs(10)));
        assert_eq!(gep2257("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(gep2257("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(gep2257("0s"), Some(Duration::ZERO));
        for bad in ["", "10", "1.5s", "1d", "123456s", "1h1m1s1ms1s", "-1s"] {
            assert_eq!(gep2257(bad), None, "{bad}");
        }
    }
}
