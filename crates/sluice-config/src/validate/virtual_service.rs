//! VirtualService: Istio's `ValidateVirtualService`, `validateHTTPRoute` and the functions they
//! call (routes, matches, destinations, retries, faults, CORS, redirects, rewrites).
use super::names::{fqdn, ip_subnet, is_dns1123_label, is_ip, wildcard_domain};
use super::{
    duration, export_to, is_header_name, labels, percentage, port_number, regex, string_match,
    Report, P,
};
use crate::diag::{codes, Severity};
use crate::support::retry_token;
use sluice_api::istio::*;

/// Istio's `jwt.ToRoutingClaim`: `@request.auth.claims.a.b` or `@request.auth.claims[a][b]`.
fn is_jwt_claim(name: &str) -> bool {
    const PREFIX: &str = "@request.auth.claims";
    let Some(head) = name.get(..PREFIX.len()) else {
        return false;
    };
    let rest = &name[PREFIX.len()..];
    head.eq_ignore_ascii_case(PREFIX)
        && ((rest.starts_with('.') && rest.len() > 1)
            || (rest.starts_with('[') && rest.ends_with(']') && rest.len() > 2))
}

/// Istio's `validateGatewayNames`: `namespace/name`, or a name (a dotted legacy name warns).
/// Like Istio, the names after the first one without a namespace are not checked.
fn gateway_names(r: &mut Report, p: &P, names: &[String]) {
    for (i, g) in names.iter().enumerate() {
        let gp = p.i(i);
        let Some((ns, name)) = g.split_once('/') else {
            if let Some((name, ns)) = g.split_once('.') {
                let ns = ns.split('.').next().unwrap_or(ns);
                r.warn(
                    &gp,
                    format!("\"{g}\" is the legacy gateway name format"),
                    Some(format!("write \"{ns}/{name}\"")),
                );
            }
            r.check(&gp, fqdn(g));
            return;
        };
        if ns.is_empty() || name.is_empty() {
            r.err(
                &gp,
                format!("\"{g}\": the namespace and gateway name must not be empty"),
            );
        }
        if !is_dns1123_label(ns) {
            r.err_help(
                &gp,
                format!("\"{ns}\" in \"{g}\" is not a namespace"),
                "write `namespace/name`, or the bare name for this VirtualService's namespace",
            );
        }
        if !is_dns1123_label(name) {
            r.err(&gp, format!("\"{name}\" in \"{g}\" is not a gateway name"));
        }
    }
}

/// Istio's `ValidateWildcardDomainForVirtualServiceBoundToGateway`: also the SNI names Istio
/// generates for AUTO_PASSTHROUGH, `outbound_.<port>_.<subset>_.<host>`.
fn gateway_host(host: &str, sni: bool) -> Result<(), String> {
    if sni && host.starts_with("outbound_") {
        let parts: Vec<&str> = host.split('_').collect();
        let ok = parts.len() >= 4
            && parts[1]
                .trim_matches('.')
                .contains(|c: char| c.is_ascii_digit())
            && parts[3]
                .trim_matches('.')
                .contains(|c: char| c.is_ascii_alphabetic());
        return if ok {
            Ok(())
        } else {
            Err(format!(
                "\"{host}\" is not of the form outbound_.<port>_.<subset>_.<host>"
            ))
        };
    }
    wildcard_domain(host)
}

/// Istio's `host.Name.Matches`: the names share a host (a wildcard covers the other).
fn hosts_overlap(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => sa.ends_with(sb) || sb.ends_with(sa),
        (Some(sa), None) => b.ends_with(sa),
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

/// Istio's `host.Name.SubsetOf`: every name `a` matches is matched by `b`.
fn host_subset(a: &str, b: &str) -> bool {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (Some(sa), Some(sb)) => a.len() >= b.len() && sa.ends_with(sb),
        (Some(_), None) => false,
        (None, Some(sb)) => a.ends_with(sb),
        (None, None) => a == b,
    }
}

pub(super) fn virtual_service(r: &mut Report, s: &P, vs: &VirtualServiceSpec) {
    let delegate = vs.hosts.is_empty();
    if delegate {
        if !vs.gateways.is_empty() {
            r.err_help(&s.k("hosts"), "hosts is required (a VirtualService without hosts is a delegate, and a delegate lists no gateways)", "add `hosts: [\"example.com\"]` (or `\"*\"` for every host)");
        }
        for (field, routes) in [("tls", vs.tls.len()), ("tcp", vs.tcp.len())] {
            if routes > 0 {
                let m = format!("a delegate VirtualService (no hosts) cannot have {field} routes");
                r.err(&s.k(field), m);
            }
        }
    }
    gateway_names(r, &s.k("gateways"), &vs.gateways);
    let to_gateway = !vs.gateways.is_empty() && !vs.gateways.iter().any(|g| g == "mesh");
    if !to_gateway {
        for (i, route) in vs.http.iter().enumerate() {
            for (j, m) in route.match_.iter().enumerate() {
                let claims = m.headers.keys().chain(m.without_headers.keys());
                if let Some(k) = claims.into_iter().find(|k| is_jwt_claim(k)) {
                    let mp = s.k("http").i(i).k("match").i(j);
                    r.err(&mp, format!("routing on a JWT claim ({k}) works only at gateways, and this VirtualService lists none"));
                }
            }
        }
    }
    let sni = vs
        .tls
        .iter()
        .any(|t| t.match_.iter().any(|m| !m.sni_hosts.is_empty()));
    let mut all_valid = true;
    for (i, h) in vs.hosts.iter().enumerate() {
        let checked = if to_gateway {
            gateway_host(h, sni)
        } else {
            wildcard_domain(h)
        };
        match checked {
            Err(e) if !is_ip(h) => {
                r.err(&s.k("hosts").i(i), e);
                all_valid = false;
            }
            Ok(()) if !to_gateway && h == "*" => {
                r.err_help(
                    &s.k("hosts").i(i),
                    "the host \"*\" is not allowed for VirtualServices bound to the mesh",
                    "list the gateways this VirtualService is for under `gateways:`",
                );
                all_valid = false;
            }
            _ => {}
        }
    }
    if all_valid {
        for (i, a) in vs.hosts.iter().enumerate() {
            for b in &vs.hosts[i + 1..] {
                if hosts_overlap(a, b) {
                    r.err(
                        &s.k("hosts").i(i),
                        format!("hosts \"{a}\" and \"{b}\" overlap; list each host once"),
                    );
                }
            }
        }
    }
    if vs.http.is_empty() && vs.tls.is_empty() && vs.tcp.is_empty() {
        r.err_help(
            s,
            "a VirtualService needs http, tls or tcp routes",
            "add `http: [{route: [{destination: {host: ...}}]}]`",
        );
    }
    for (i, route) in vs.http.iter().enumerate() {
        http_route(r, &s.k("http").i(i), route, delegate);
    }
    for (i, t) in vs.tls.iter().enumerate() {
        tls_route(r, &s.k("tls").i(i), t, vs, to_gateway);
    }
    for (i, t) in vs.tcp.iter().enumerate() {
        let p = s.k("tcp").i(i);
        for (j, m) in t.match_.iter().enumerate() {
            let mp = p.k("match").i(j);
            l4_match(
                r,
                &mp,
                &m.destination_subnets,
                m.port,
                &m.source_labels,
                &m.gateways,
            );
        }
        l4_destinations(r, &p, &t.route, "tcp");
    }
    export_to(r, &s.k("exportTo"), &vs.export_to, false);
}

/// Istio's `validateTLSRoute` and `validateTLSMatch`: each SNI host within the VirtualService's.
fn tls_route(r: &mut Report, p: &P, t: &TlsRoute, vs: &VirtualServiceSpec, to_gateway: bool) {
    if t.match_.is_empty() {
        r.err(p, "a tls route needs at least one match with sniHosts");
    }
    for (j, m) in t.match_.iter().enumerate() {
        let mp = p.k("match").i(j);
        if m.sni_hosts.is_empty() {
            r.err(&mp, "sniHosts is required in a tls match");
        }
        for (k, h) in m.sni_hosts.iter().enumerate() {
            let hp = mp.k("sniHosts").i(k);
            let checked = if to_gateway {
                gateway_host(h, true)
            } else {
                wildcard_domain(h)
            };
            if let Err(e) = checked {
                if is_ip(h) {
                    r.warn(&hp, format!("\"{h}\" is an IP address; SNI carries names and most clients send none for an IP"), None);
                } else {
                    r.err(&hp, e);
                }
            } else if !vs.hosts.iter().any(|vh| host_subset(h, vh)) {
                r.err_help(
                    &hp,
                    format!(
                        "SNI host \"{h}\" is not within any of the VirtualService's hosts [{}]",
                        vs.hosts.join(", ")
                    ),
                    "add it (or a wildcard covering it) to `hosts:`",
                );
            }
        }
        l4_match(
            r,
            &mp,
            &m.destination_subnets,
            m.port,
            &m.source_labels,
            &m.gateways,
        );
    }
    l4_destinations(r, p, &t.route, "tls");
}

fn l4_match(
    r: &mut Report,
    mp: &P,
    subnets: &[String],
    port: Option<u32>,
    source: &sluice_api::meta::Labels,
    gateways: &[String],
) {
    for (k, subnet) in subnets.iter().enumerate() {
        r.check(&mp.k("destinationSubnets").i(k), ip_subnet(subnet));
    }
    if port != Some(0) {
        port_number(r, &mp.k("port"), port, false);
    }
    labels(r, &mp.k("sourceLabels"), source);
    gateway_names(r, &mp.k("gateways"), gateways);
}

fn l4_destinations(r: &mut Report, p: &P, route: &[RouteDestination], what: &str) {
    if route.is_empty() {
        r.err_help(
            &p.k("route"),
            format!("a {what} route needs at least one destination"),
            "add `route: [{destination: {host: <service>}}]`",
        );
    }
    for (j, d) in route.iter().enumerate() {
        let dp = p.k("route").i(j).k("destination");
        match &d.destination {
            None => r.err(&dp, "destination is required"),
            Some(d) => destination(r, &dp, d),
        }
    }
    weights(r, &p.k("route"), route.iter().map(|d| d.weight));
}

fn weights(r: &mut Report, p: &P, weights: impl Iterator<Item = Option<i32>>) {
    let w: Vec<i32> = weights.map(|w| w.unwrap_or(0)).collect();
    for (i, x) in w.iter().enumerate() {
        if *x < 0 {
            r.err(&p.i(i).k("weight"), "weight must not be negative");
        }
    }
    if w.len() > 1 && w.iter().sum::<i32>() == 0 {
        r.err_help(
            p,
            "with several destinations, at least one needs a weight above 0",
            "give each destination a `weight:`; they are relative shares",
        );
    }
}

/// Istio's `validateDestination`.
fn destination(r: &mut Report, p: &P, d: &Destination) {
    let host = d.host.as_deref().unwrap_or("");
    if host == "*" {
        r.err(&p.k("host"), "a destination host cannot be \"*\"");
    } else if host.is_empty() {
        r.err_help(
            p,
            "destination host is required",
            "add `host: <service name>`",
        );
    } else {
        r.check(&p.k("host"), wildcard_domain(host));
    }
    if let Some(sub) = &d.subset {
        if !is_dns1123_label(sub) {
            r.err(
                &p.k("subset"),
                format!("subset \"{sub}\" is not a valid name (letters, digits and '-')"),
            );
        }
    }
    if let Some(port) = &d.port {
        port_number(
            r,
            &p.k("port").k("number"),
            Some(port.number.unwrap_or(0)),
            true,
        );
    }
}

/// Istio's header name rules for matches (`ValidateHTTPHeaderNameOrJwtClaimRoute`).
fn match_header_name(r: &mut Report, p: &P, name: &str) {
    let pseudo = matches!(
        name,
        ":method" | ":scheme" | ":authority" | ":path" | ":status"
    );
    if is_jwt_claim(name) {
        r.push(
            Severity::Warning,
            codes::NOT_IMPLEMENTED_FIELD,
            &p.k(name),
            format!("routing on the JWT claim \"{name}\" is not implemented by sluice and is ignored"),
            Some("sluice does not validate JWTs: a `headers` match on a claim never matches, a `withoutHeaders` one always does".into()),
        );
    } else if !(pseudo || is_header_name(name)) {
        r.err(p, format!("\"{name}\" is not a valid header name"));
    }
}

/// Istio's header operation rules: no pseudo-headers but `:authority`, `host` only in request
/// add/set, values without control characters and with Envoy's `%` escapes well formed.
/// Sluice also refuses names Envoy would refuse (not an HTTP token).
fn header_ops(r: &mut Report, path: &P, h: &Option<Headers>) {
    let Some(h) = h else { return };
    for (dir, ops) in [("request", &h.request), ("response", &h.response)] {
        let Some(ops) = ops else { continue };
        let p = path.k(dir);
        let values = ops.set.iter().map(|(k, v)| ("set", k, Some(v)));
        let values = values.chain(ops.add.iter().map(|(k, v)| ("add", k, Some(v))));
        for (verb, name, value) in values.chain(ops.remove.iter().map(|k| ("remove", k, None))) {
            let vp = p.k(verb);
            let authority =
                name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case(":authority");
            let may_rewrite_authority = dir == "request" && verb != "remove";
            if name.is_empty() {
                r.err(&vp, "a header name must not be empty");
            } else if authority && !may_rewrite_authority {
                r.err_help(
                    &vp,
                    format!("\"{name}\" cannot be changed here"),
                    "rewrite the authority with `rewrite.authority` or request `set: {host: ...}`",
                );
            } else if name.starts_with(':') && !authority {
                r.err(&vp, format!("pseudo-header \"{name}\" cannot be changed"));
            } else if !authority && !is_header_name(name) {
                r.err(&vp, format!("\"{name}\" is not a valid header name"));
            }
            if let Some(Err(e)) = value.map(|v| header_value(v)) {
                r.err(&vp.k(name), e);
            }
        }
    }
}

/// Istio's `ValidateHTTPHeaderValue`: no control characters but tab; `%` is `%%` or starts an
/// Envoy `%VARIABLE%` that is closed.
fn header_value(v: &str) -> Result<(), String> {
    if v.chars()
        .any(|c| (c.is_ascii_control() && c != '\t') || c == '\u{7f}')
    {
        return Err(format!("header value {v:?} has control characters"));
    }
    let mut rest = v;
    while let Some(i) = rest.find('%') {
        let after = &rest[i + 1..];
        if let Some(more) = after.strip_prefix('%') {
            rest = more;
            continue;
        }
        // A variable: its name, then optional `(...)` arguments whose strings may hold `%`.
        let mut in_string = false;
        let end = after.char_indices().find(|&(_, c)| {
            if c == '"' {
                in_string = !in_string;
            }
            c == '%' && !in_string
        });
        match end {
            Some((j, _)) if j > 0 => rest = &after[j + 1..],
            _ => {
                return Err(format!(
                    "header value \"{v}\" has an unescaped '%'; write '%%' for a literal '%'"
                ))
            }
        }
    }
    Ok(())
}

/// Istio's `validateHTTPRouteConflict`.
fn conflicts(r: &mut Report, p: &P, route: &HttpRoute, in_delegate: bool) {
    if route.delegate.is_some() && !in_delegate {
        let clashes = [
            ("redirect", route.redirect.is_some()),
            ("route", !route.route.is_empty()),
        ];
        for (field, _) in clashes.iter().filter(|(_, c)| *c) {
            r.err(
                &p.k(field),
                format!("a route that delegates cannot also set {field}"),
            );
        }
        return;
    }
    if route.delegate.is_some() {
        r.err(
            &p.k("delegate"),
            "a delegate VirtualService cannot delegate again (one level only)",
        );
    }
    let (action, action_name) = if route.redirect.is_some() {
        (true, "redirect")
    } else {
        (route.direct_response.is_some(), "directResponse")
    };
    if action {
        let clashes = [
            ("route", !route.route.is_empty()),
            ("fault", route.fault.is_some()),
            ("rewrite", route.rewrite.is_some()),
            (
                "directResponse",
                action_name == "redirect" && route.direct_response.is_some(),
            ),
        ];
        for (field, _) in clashes.iter().filter(|(_, c)| *c) {
            r.err(
                &p.k(field),
                format!("{field} cannot be combined with {action_name}"),
            );
        }
    } else if route.route.is_empty() {
        r.err_help(
            p,
            "an http route needs one of route, redirect, directResponse or delegate",
            "add `route: [{destination: {host: <service>}}]`",
        );
    }
    if route.mirror.is_some() && !route.mirrors.is_empty() {
        r.err(&p.k("mirrors"), "set mirror or mirrors, not both");
    }
}

fn http_route(r: &mut Report, p: &P, route: &HttpRoute, in_delegate: bool) {
    conflicts(r, p, route, in_delegate);
    for (i, m) in route.match_.iter().enumerate() {
        http_match(r, &p.k("match").i(i), m);
    }
    header_ops(r, &p.k("headers"), &route.headers);
    if let Some(c) = &route.cors_policy {
        cors(r, &p.k("corsPolicy"), c);
    }
    if let Some(f) = &route.fault {
        fault(r, &p.k("fault"), f);
    }
    if let Some(pct) = route.mirror_percent {
        if pct > 100 {
            r.err(
                &p.k("mirrorPercent"),
                format!("mirrorPercent {pct} is above 100"),
            );
        }
        r.warn(
            &p.k("mirrorPercent"),
            "mirrorPercent is deprecated",
            Some(format!("write `mirrorPercentage: {{value: {pct}}}`")),
        );
    }
    mirror_percentage(r, &p.k("mirrorPercentage"), route.mirror_percentage);
    if let Some(m) = &route.mirror {
        destination(r, &p.k("mirror"), m);
    }
    for (i, m) in route.mirrors.iter().enumerate() {
        let mp = p.k("mirrors").i(i);
        match &m.destination {
            None => r.err(&mp, "destination is required in a mirror"),
            Some(d) => destination(r, &mp.k("destination"), d),
        }
        mirror_percentage(r, &mp.k("percentage"), m.percentage);
    }
    if let Some(rd) = &route.redirect {
        redirect(r, &p.k("redirect"), rd, &route.match_);
    }
    if let Some(dr) = &route.direct_response {
        direct_response(r, &p.k("directResponse"), dr);
    }
    if let Some(rt) = &route.retries {
        retries(r, &p.k("retries"), rt);
    }
    if let Some(rw) = &route.rewrite {
        rewrite(r, &p.k("rewrite"), rw);
    }
    authority_rewrites(r, p, route);
    for (i, d) in route.route.iter().enumerate() {
        let dp = p.k("route").i(i);
        match &d.destination {
            None => r.err(&dp, "destination is required"),
            Some(dest) => destination(r, &dp.k("destination"), dest),
        }
        header_ops(r, &dp.k("headers"), &d.headers);
    }
    weights(r, &p.k("route"), route.route.iter().map(|d| d.weight));
    duration(r, &p.k("timeout"), route.timeout);
    policy_traps(r, p, route);
}

/// Istio's `validateHTTPRouteMatchRequest`.
fn http_match(r: &mut Report, mp: &P, m: &HttpMatchRequest) {
    // Istio reads `regex: "*"` in a header match as "the header is present".
    let present = |sm: &StringMatch| sm.regex.as_deref() == Some("*");
    for (name, sm) in &m.headers {
        match_header_name(r, &mp.k("headers"), name);
        if !present(sm) {
            string_match(r, &mp.k("headers").k(name), sm, false);
        }
    }
    for (name, sm) in &m.without_headers {
        match_header_name(r, &mp.k("withoutHeaders"), name);
        if !present(sm) {
            string_match(r, &mp.k("withoutHeaders").k(name), sm, false);
        }
    }
    if let Some(uri) = &m.uri {
        string_match(r, &mp.k("uri"), uri, true);
    }
    for (field, sm) in [
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(sm) = sm {
            string_match(r, &mp.k(field), sm, false);
        }
    }
    for (name, sm) in &m.query_params {
        string_match(r, &mp.k("queryParams").k(name), sm, false);
    }
    if m.port != Some(0) {
        port_number(r, &mp.k("port"), m.port, false);
    }
    labels(r, &mp.k("sourceLabels"), &m.source_labels);
    gateway_names(r, &mp.k("gateways"), &m.gateways);
    if let Some(ns) = m.source_namespace.as_deref().filter(|n| !n.is_empty()) {
        if !is_dns1123_label(ns) {
            r.err(
                &mp.k("sourceNamespace"),
                format!("\"{ns}\" is not a namespace"),
            );
        }
    }
}

fn mirror_percentage(r: &mut Report, p: &P, pct: Option<Percent>) {
    if let Some(v) = pct.and_then(|x| x.value) {
        if !(0.0..=100.0).contains(&v) {
            r.err(
                &p.k("value"),
                format!("mirror percentage {v} must be between 0 and 100"),
            );
        }
    }
}

/// HTTP methods Istio accepts in `allowMethods` (Go's `net/http` names, and `*`).
const CORS_METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
];

/// Istio's `validateCORSPolicy`.
fn cors(r: &mut Report, p: &P, c: &CorsPolicy) {
    for (i, o) in c.allow_origins.iter().enumerate() {
        let op = p.k("allowOrigins").i(i);
        let value = o
            .exact
            .as_deref()
            .or(o.prefix.as_deref())
            .or(o.regex.as_deref());
        if value.unwrap_or("").is_empty() {
            r.err_help(
                &op,
                "an origin match needs a value",
                "write e.g. `{exact: \"https://example.com\"}`",
            );
        }
        if let Some(re) = o.regex.as_deref().filter(|re| !re.is_empty()) {
            regex(r, &op.k("regex"), re);
        }
    }
    for (i, m) in c.allow_methods.iter().enumerate() {
        if !CORS_METHODS.contains(&m.as_str()) {
            r.err_help(
                &p.k("allowMethods").i(i),
                format!("\"{m}\" is not an HTTP method Istio accepts"),
                format!("use one of {}", CORS_METHODS.join(", ")),
            );
        }
    }
    for (field, list) in [
        ("allowHeaders", &c.allow_headers),
        ("exposeHeaders", &c.expose_headers),
    ] {
        for (i, h) in list.iter().enumerate() {
            if h != "*" && !is_header_name(h) {
                r.err(
                    &p.k(field).i(i),
                    format!("\"{h}\" is not a valid header name"),
                );
            }
        }
    }
    if let Some(age) = c.max_age {
        duration(r, &p.k("maxAge"), Some(age));
        if age.0.subsec_nanos() != 0 {
            r.err(&p.k("maxAge"), "maxAge is counted in whole seconds");
        }
    }
}

/// gRPC status names Istio accepts for `abort.grpcStatus`, in code order (index = code).
pub const GRPC_STATUS: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// Istio's `validateHTTPStatus`: 200 to 600.
fn http_status(r: &mut Report, p: &P, status: i64) {
    if !(200..=600).contains(&status) {
        r.err(
            p,
            format!("HTTP status {status} is not between 200 and 599"),
        );
    }
}

/// Istio's `validateHTTPFaultInjection`.
fn fault(r: &mut Report, fp: &P, f: &HttpFaultInjection) {
    if f.delay.is_none() && f.abort.is_none() {
        r.err(fp, "fault needs delay or abort");
    }
    if let Some(a) = &f.abort {
        let ap = fp.k("abort");
        percentage(r, &ap.k("percentage"), &a.percentage);
        let kinds = [
            a.http_status.is_some(),
            a.grpc_status.is_some(),
            a.http2_error.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => r.warn(
                &ap,
                "abort has no httpStatus or grpcStatus, so it does nothing",
                Some("add `httpStatus: 503`".into()),
            ),
            1 => {}
            _ => r.err(
                &ap,
                "abort takes one of httpStatus, grpcStatus or http2Error",
            ),
        }
        if let Some(s) = a.http_status {
            http_status(r, &ap.k("httpStatus"), s.into());
        }
        if let Some(g) = a.grpc_status.as_deref() {
            if !GRPC_STATUS.contains(&g) {
                r.err_help(
                    &ap.k("grpcStatus"),
                    format!("\"{g}\" is not a gRPC status"),
                    crate::de::suggestion(g, &GRPC_STATUS),
                );
            }
        }
        if a.http2_error.is_some() {
            r.err(
                &ap.k("http2Error"),
                "http2Error aborts are not supported (by Istio either)",
            );
        }
    }
    if let Some(d) = &f.delay {
        let dp = fp.k("delay");
        percentage(r, &dp.k("percentage"), &d.percentage);
        duration(r, &dp.k("fixedDelay"), d.fixed_delay);
        if d.exponential_delay.is_some() {
            duration(r, &dp.k("exponentialDelay"), d.exponential_delay);
            r.err_help(
                &dp.k("exponentialDelay"),
                "exponentialDelay is not supported (by Istio either)",
                "use fixedDelay",
            );
        }
    }
}

/// Istio's `validateHTTPRedirect`.
fn redirect(r: &mut Report, rp: &P, rd: &HttpRedirect, matches: &[HttpMatchRequest]) {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if set(&rd.uri) && set(&rd.prefix_rewrite) {
        r.err(rp, "set uri or prefixRewrite, not both");
    }
    if set(&rd.prefix_rewrite)
        && matches
            .iter()
            .any(|m| m.uri.as_ref().is_some_and(|u| u.prefix.is_none()))
    {
        r.err(
            &rp.k("prefixRewrite"),
            "prefixRewrite needs every uri match of the route to be a prefix match",
        );
    }
    if !(set(&rd.uri)
        || set(&rd.prefix_rewrite)
        || set(&rd.authority)
        || rd.port.is_some()
        || rd.derive_port.is_some()
        || set(&rd.scheme))
    {
        r.err_help(
            rp,
            "a redirect needs uri, authority, scheme or port",
            "add `uri: /new-path` or `authority: new.example.com`",
        );
    }
    if rd.port.is_some() && rd.derive_port.is_some() {
        r.err(rp, "set port or derivePort, not both");
    }
    if let Some(code) = rd.redirect_code.filter(|c| *c != 0) {
        if !(300..=399).contains(&code) {
            r.err_help(
                &rp.k("redirectCode"),
                format!("{code} is not a redirect status"),
                "use a 3xx status such as 301, 302, 307 or 308",
            );
        }
    }
    if let Some(s) = rd.scheme.as_deref().filter(|s| !s.is_empty()) {
        if s != "http" && s != "https" {
            r.err_help(
                &rp.k("scheme"),
                format!("scheme \"{s}\" is not http or https"),
                "write `scheme: https`",
            );
        }
    }
    if rd.port != Some(0) {
        port_number(r, &rp.k("port"), rd.port, false);
    }
}

/// Istio's `validateHTTPDirectResponse`: a body over 100 KiB warns, over 1 MiB is refused.
fn direct_response(r: &mut Report, dp: &P, dr: &HttpDirectResponse) {
    if let Some(b) = &dr.body {
        if b.string.is_some() && b.bytes.is_some() {
            r.err(&dp.k("body"), "body takes string or bytes, not both");
        }
        let size = match (&b.string, &b.bytes) {
            (Some(s), _) => s.len(),
            // Base64: three bytes per four characters.
            (None, Some(b64)) => b64.trim_end_matches('=').len() * 3 / 4,
            (None, None) => 0,
        };
        if size > 1024 * 1024 {
            r.err(
                &dp.k("body"),
                format!("the body has {size} bytes; Istio takes at most 1 MiB"),
            );
        } else if size > 100 * 1024 {
            r.warn(&dp.k("body"), format!("the body has {size} bytes; bodies over 100 KiB weigh on every configuration push"), None);
        }
    }
    match dr.status {
        Some(s) => http_status(r, &dp.k("status"), s.into()),
        None => r.err_help(dp, "directResponse status is required", "add `status: 200`"),
    }
}

/// Whether Go's `http.StatusText` knows the code (Istio accepts numeric retryOn tokens then).
fn known_status(code: u16) -> bool {
    matches!(code, 100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429 | 431 | 451 | 500..=508 | 510 | 511)
}

/// Istio's `validateHTTPRetry`; conditions sluice does not act on are warned about.
fn retries(r: &mut Report, rp: &P, rt: &HttpRetry) {
    let attempts = rt.attempts.unwrap_or(0);
    if attempts < 0 {
        r.err(&rp.k("attempts"), "attempts must not be negative");
    }
    let on = rt.retry_on.as_deref().unwrap_or("");
    if attempts == 0
        && (rt.per_try_timeout.is_some() || !on.is_empty() || rt.retry_remote_localities.is_some())
    {
        r.err_help(&rp.k("attempts"), "retries are disabled (attempts is 0) but the policy sets perTryTimeout, retryOn or retryRemoteLocalities", "set `attempts:` to the number of retries, or remove the other fields");
    }
    duration(r, &rp.k("perTryTimeout"), rt.per_try_timeout);
    duration(r, &rp.k("backoff"), rt.backoff);
    if on.is_empty() {
        return;
    }
    let names: Vec<&str> = crate::support::RETRY_ON.iter().map(|t| t.name).collect();
    // Istio splits on ',' and trims nothing: "5xx, reset" is refused.
    for token in on.split(',') {
        let numeric = token.parse::<u16>().is_ok_and(known_status);
        match retry_token(token) {
            _ if numeric => {}
            Some(t) if !t.implemented => r.push(
                Severity::Warning,
                codes::NOT_IMPLEMENTED_FIELD,
                &rp.k("retryOn"),
                format!(
                    "retryOn condition \"{token}\" is not implemented by sluice and is ignored"
                ),
                Some("the other conditions still apply; no retry happens for this one".into()),
            ),
            Some(_) => {}
            None => r.err_help(
                &rp.k("retryOn"),
                format!("\"{token}\" is not a retry condition"),
                if token.trim() != token {
                    "write the conditions without spaces: \"5xx,reset\"".to_string()
                } else {
                    crate::de::suggestion(token, &names)
                },
            ),
        }
    }
}

/// Istio's `validateHTTPRewrite`.
fn rewrite(r: &mut Report, wp: &P, rw: &HttpRewrite) {
    let uri = rw.uri.as_deref().is_some_and(|u| !u.is_empty());
    let authority = rw.authority.as_deref().is_some_and(|a| !a.is_empty());
    if uri && rw.uri_regex_rewrite.is_some() {
        r.err(wp, "set uri or uriRegexRewrite, not both");
    }
    if !uri && !authority && rw.uri_regex_rewrite.is_none() {
        r.err_help(
            wp,
            "rewrite needs uri, uriRegexRewrite or authority",
            "remove the empty rewrite",
        );
    }
    if let Some(rr) = &rw.uri_regex_rewrite {
        let rp = wp.k("uriRegexRewrite");
        let m = rr.match_.as_deref().unwrap_or("");
        if m.is_empty() || rr.rewrite.as_deref().unwrap_or("").is_empty() {
            r.err_help(
                &rp,
                "uriRegexRewrite needs both match and rewrite",
                "write `{match: \"^/old/(.*)\", rewrite: \"/new/\\\\1\"}`",
            );
        }
        if !m.is_empty() {
            regex(r, &rp.k("match"), m);
        }
    }
}

/// Istio's `validateAuthorityRewrite`: the authority is rewritten in one place only.
fn authority_rewrites(r: &mut Report, p: &P, route: &HttpRoute) {
    let request = route.headers.as_ref().and_then(|h| h.request.as_ref());
    let mut places = usize::from(
        route
            .rewrite
            .as_ref()
            .and_then(|rw| rw.authority.as_deref())
            .is_some_and(|a| !a.is_empty()),
    );
    if let Some(ops) = request {
        let is_authority =
            |k: &&String| k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case(":authority");
        places += ops.set.keys().filter(is_authority).count()
            + ops.add.keys().filter(is_authority).count();
    }
    if places > 1 {
        r.err_help(
            p,
            "the authority (Host) is rewritten more than once",
            "keep one of rewrite.authority and a `host`/`:authority` header operation",
        );
    }
}

/// Configurations Istio accepts that rarely do what their author meant.
fn policy_traps(r: &mut Report, p: &P, route: &HttpRoute) {
    if let Some(rt) = &route.retries {
        let risky = rt.retry_on.as_deref().is_some_and(|on| {
            on.split(',')
                .map(str::trim)
                .any(|t| matches!(t, "5xx" | "gateway-error" | "reset"))
        });
        let idempotent_only = !route.match_.is_empty()
            && route.match_.iter().all(|m| {
                m.method
                    .as_ref()
                    .and_then(|s| s.exact.as_deref())
                    .is_some_and(|m| matches!(m, "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE"))
            });
        if risky && !idempotent_only && rt.attempts.unwrap_or(0) > 0 {
            r.push(
                Severity::Warning,
                codes::RETRY_NON_IDEMPOTENT,
                &p.k("retries").k("retryOn"),
                "retries on 5xx/gateway-error/reset also retry POST and PATCH requests, which may then run twice".into(),
                Some("match idempotent methods for this route, or retry only on connect-failure,refused-stream".into()),
            );
        }
    }
    if route
        .rewrite
        .as_ref()
        .and_then(|rw| rw.uri.as_deref())
        .is_some()
    {
        for (i, m) in route.match_.iter().enumerate() {
            if let Some(prefix) = m.uri.as_ref().and_then(|u| u.prefix.as_deref()) {
                if !prefix.ends_with('/') {
                    r.push(
                        Severity::Warning,
                        codes::PREFIX_REWRITE_NOT_SEGMENT_AWARE,
                        &p.k("match").i(i).k("uri").k("prefix"),
                        format!("rewrite.uri replaces the string prefix \"{prefix}\", not a path segment: \"{prefix}x\" is rewritten too"),
                        Some(format!("match \"{prefix}/\" (and \"{prefix}\" exactly) if only that path and what is under it should be rewritten")),
                    );
                }
            }
        }
    }
    if let Some(f) = &route.fault {
        let parts = [
            ("delay", f.delay.as_ref().map(|d| d.percentage.is_none())),
            ("abort", f.abort.as_ref().map(|a| a.percentage.is_none())),
        ];
        for (name, missing) in parts {
            if missing == Some(true) {
                r.push(
                    Severity::Warning,
                    codes::FAULT_NEVER_INJECTED,
                    &p.k("fault").k(name),
                    format!("fault {name} has no percentage, so it is never injected"),
                    Some("add `percentage: {value: 100}` to inject it into every request".into()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_follow_envoy_escapes() {
        for ok in [
            "plain",
            "100%%",
            "%HOSTNAME%",
            "a %REQ(x-id)% b",
            "%VAR([\"a%b\"])%",
        ] {
            assert_eq!(header_value(ok), Ok(()), "{ok}");
        }
        for bad in ["abc%123", "%START_TIME%%", "trailing %", "bell\u{7}"] {
            assert!(header_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_relations_are_istios() {
        assert!(hosts_overlap("*.foo.com", "*.com"));
        assert!(hosts_overlap("a.foo.com", "*.foo.com"));
        assert!(!hosts_overlap("a.com", "b.com"));
        assert!(host_subset("a.foo.com", "*.foo.com"));
        assert!(!host_subset("*.foo.com", "a.foo.com"));
    }
}
