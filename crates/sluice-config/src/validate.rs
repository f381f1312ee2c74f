//! Istio's own per-object validation (what its admission webhook refuses), written from the
//! reference docs. Cross-object checks live in `sluice-compile` (`analyze`).
use crate::diag::{codes, Diagnostic, Severity};
use crate::store::{Body, Object};
use crate::yaml::Seg;
use sluice_api::istio::*;
use std::collections::HashSet;

/// A path under construction: `P::root().k("spec").i(0)`.
#[derive(Clone, Default)]
pub struct P(pub Vec<Seg>);

impl P {
    pub fn spec() -> P {
        P(vec![Seg::Key("spec".into())])
    }
    pub fn k(&self, key: &str) -> P {
        let mut v = self.0.clone();
        v.push(Seg::Key(key.into()));
        P(v)
    }
    pub fn i(&self, index: usize) -> P {
        let mut v = self.0.clone();
        v.push(Seg::Index(index));
        P(v)
    }
}

/// Collects diagnostics about one object, each pointed at a field.
pub struct Report<'a> {
    pub object: &'a Object,
    pub out: &'a mut Vec<Diagnostic>,
}

impl Report<'_> {
    pub fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        path: &P,
        message: String,
        help: Option<String>,
    ) {
        let mut d = Diagnostic::new(severity, code, message).at(self.object.origin_at(&path.0));
        d.help = help;
        d.resource = Some(self.object.resource());
        d.field = Some(crate::yaml::path_to_string(&path.0));
        self.out.push(d);
    }
    fn err(&mut self, path: &P, message: impl Into<String>) {
        let field = crate::yaml::path_to_string(&path.0);
        self.push(
            Severity::Error,
            codes::SCHEMA_VALIDATION_ERROR,
            path,
            format!("{field}: {}", message.into()),
            None,
        );
    }
    fn err_help(&mut self, path: &P, message: impl Into<String>, help: impl Into<String>) {
        let field = crate::yaml::path_to_string(&path.0);
        self.push(
            Severity::Error,
            codes::SCHEMA_VALIDATION_ERROR,
            path,
            format!("{field}: {}", message.into()),
            Some(help.into()),
        );
    }
    fn warn(&mut self, path: &P, message: impl Into<String>, help: Option<String>) {
        let field = crate::yaml::path_to_string(&path.0);
        self.push(
            Severity::Warning,
            codes::SCHEMA_WARNING,
            path,
            format!("{field}: {}", message.into()),
            help,
        );
    }
}

/// Validates every object on its own.
pub fn validate_object(object: &Object, out: &mut Vec<Diagnostic>) {
    let mut r = Report { object, out };
    let s = P::spec();
    match &object.body {
        Body::Gateway(g) => gateway(&mut r, &s, g),
        Body::VirtualService(vs) => virtual_service(&mut r, &s, vs),
        Body::DestinationRule(dr) => destination_rule(&mut r, &s, dr),
        Body::ServiceEntry(se) => service_entry(&mut r, &s, se),
        Body::WorkloadEntry(we) => workload_entry(&mut r, &s, we, None),
        Body::Secret(sec) => secret(&mut r, sec),
        Body::Service(svc) => {
            for (i, p) in svc.ports.iter().enumerate() {
                if !matches!(p.port, Some(1..=65535)) {
                    r.err(
                        &s.k("ports").i(i).k("port"),
                        "port must be between 1 and 65535",
                    );
                }
            }
        }
        Body::EndpointSlice(_) => {}
    }
}

// ---------------------------------------------------------------- shared rules

/// Gateway protocols sluice serves (Istio names, case-insensitive).
pub const GATEWAY_PROTOCOLS: [&str; 6] = ["HTTP", "HTTPS", "HTTP2", "GRPC", "TLS", "TCP"];

pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A host as Istio accepts it: `*`, `*.suffix`, or a DNS name (short names allowed).
pub fn host_error(host: &str) -> Option<String> {
    if host == "*" {
        return None;
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return Some(format!("\"{host}\" is not a valid host name"));
    }
    if name.contains('*') {
        return Some(format!("\"{host}\": a wildcard is allowed only as the whole left-most label (\"*.example.com\")"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Some(format!(
                "\"{host}\" is not a valid host name (label \"{label}\")"
            ));
        }
    }
    None
}

fn port_number(r: &mut Report, path: &P, n: Option<u32>, required: bool) {
    match n {
        Some(1..=65535) => {}
        Some(n) => r.err(path, format!("port number {n} is out of range 1-65535")),
        None if required => r.err(path, "port number is required"),
        None => {}
    }
}

fn percent(r: &mut Report, path: &P, p: &Option<Percent>) {
    if let Some(v) = p.as_ref().and_then(|p| p.value) {
        if !(0.0..=100.0).contains(&v) {
            r.err(
                &path.k("value"),
                format!("percentage {v} must be between 0 and 100"),
            );
        }
    }
}

pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Compiles an Istio (RE2) regex as a full match. Rust's regex crate refuses what RE2 refuses
/// (look-around, back-references), so the same patterns are valid in both.
pub fn full_match_regex(re: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{re})$")).map_err(|e| {
        // The crate's message is multi-line with its own caret; keep its last line.
        e.to_string()
            .lines()
            .last()
            .unwrap_or("invalid regex")
            .trim()
            .trim_start_matches("error: ")
            .to_string()
    })
}

fn string_match(r: &mut Report, path: &P, m: &StringMatch) {
    let set = [&m.exact, &m.prefix, &m.regex]
        .iter()
        .filter(|x| x.is_some())
        .count();
    if set != 1 {
        r.err_help(
            path,
            "a StringMatch needs exactly one of exact, prefix or regex",
            "write e.g. `{prefix: /api}`",
        );
    }
    if let Some(re) = &m.regex {
        if re.is_empty() {
            r.err(&path.k("regex"), "regex must not be empty");
        } else if let Err(e) = full_match_regex(re) {
            r.err_help(&path.k("regex"), format!("regex \"{re}\" does not compile: {e}"), "Istio uses RE2 syntax (no look-around or back-references); escape literal parentheses as \\(");
        }
    }
}

fn headers_ops(r: &mut Report, path: &P, h: &Option<Headers>) {
    let Some(h) = h else { return };
    for (dir, ops) in [("request", &h.request), ("response", &h.response)] {
        let Some(ops) = ops else { continue };
        let p = path.k(dir);
        for (verb, names) in [
            ("set", ops.set.keys().collect::<Vec<_>>()),
            ("add", ops.add.keys().collect()),
            ("remove", ops.remove.iter().collect()),
        ] {
            for name in names {
                if !is_header_name(name) {
                    r.err(&p.k(verb), format!("\"{name}\" is not a valid header name"));
                }
            }
        }
    }
}

fn duration_min(r: &mut Report, path: &P, d: Option<sluice_api::Duration>, what: &str) {
    if let Some(d) = d {
        if d.0 < std::time::Duration::from_millis(1) {
            r.err(path, format!("{what} must be at least 1ms"));
        }
    }
}

// ---------------------------------------------------------------- Gateway

fn gateway(r: &mut Report, s: &P, g: &GatewaySpec) {
    if g.servers.is_empty() {
        r.err_help(
            s,
            "a Gateway needs at least one server",
            "add `servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]`",
        );
    }
    let mut names = HashSet::new();
    for (i, server) in g.servers.iter().enumerate() {
        let p = s.k("servers").i(i);
        if let Some(name) = &server.name {
            if !names.insert(name.as_str()) {
                r.err(
                    &p.k("name"),
                    format!("server name \"{name}\" is used twice in this Gateway"),
                );
            }
        }
        let protocol = match &server.port {
            None => {
                r.err_help(
                    &p,
                    "server port is required",
                    "add `port: {number: 80, name: http, protocol: HTTP}`",
                );
                None
            }
            Some(port) => {
                port_number(r, &p.k("port").k("number"), port.number, true);
                if port.name.as_deref().unwrap_or("").is_empty() {
                    r.err_help(
                        &p.k("port"),
                        "port name is required",
                        "add `name: http` (any unique name)",
                    );
                }
                match &port.protocol {
                    None => {
                        r.err_help(
                            &p.k("port"),
                            "port protocol is required",
                            format!("one of {}", GATEWAY_PROTOCOLS.join(", ")),
                        );
                        None
                    }
                    Some(proto) => {
                        let upper = proto.to_ascii_uppercase();
                        if GATEWAY_PROTOCOLS.contains(&upper.as_str()) {
                            Some(upper)
                        } else {
                            r.err_help(
                                &p.k("port").k("protocol"),
                                format!(
                                    "protocol \"{proto}\" is not supported on a gateway server"
                                ),
                                format!("use one of {}", GATEWAY_PROTOCOLS.join(", ")),
                            );
                            None
                        }
                    }
                }
            }
        };
        if server.hosts.is_empty() {
            r.err_help(
                &p.k("hosts"),
                "a server needs at least one host",
                "use `hosts: [\"*\"]` to accept every host",
            );
        }
        for (j, h) in server.hosts.iter().enumerate() {
            let hp = p.k("hosts").i(j);
            let (ns, host) = h.split_once('/').unwrap_or(("*", h.as_str()));
            if !(ns == "*" || ns == "." || is_dns1123_label(ns)) {
                r.err(
                    &hp,
                    format!("\"{ns}\" is not a namespace (use a namespace name, \".\" or \"*\")"),
                );
            }
            if let Some(e) = host_error(host) {
                r.err(&hp, e);
            }
        }
        let tls_required = matches!(protocol.as_deref(), Some("HTTPS" | "TLS"));
        match &server.tls {
            None if tls_required => r.err_help(
                &p,
                format!(
                    "a {} server needs a tls block",
                    protocol.unwrap_or_default()
                ),
                "add `tls: {mode: SIMPLE, credentialName: <secret>}`",
            ),
            None => {}
            Some(tls) => server_tls(r, &p.k("tls"), tls, protocol.as_deref()),
        }
    }
}

fn server_tls(r: &mut Report, p: &P, tls: &ServerTlsSettings, protocol: Option<&str>) {
    let mode = tls.mode.unwrap_or(ServerTlsMode::Passthrough);
    let redirect_only = tls.https_redirect == Some(true) && tls.mode.is_none();
    if redirect_only || !matches!(protocol, Some("HTTPS" | "TLS")) {
        return;
    }
    let terminating = matches!(
        mode,
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
    );
    if terminating {
        let has_files = tls.server_certificate.is_some() || tls.private_key.is_some();
        let has_credential = tls.credential_name.is_some()
            || !tls.credential_names.is_empty()
            || !tls.tls_certificates.is_empty();
        if has_files && has_credential {
            r.err(
                p,
                "set either credentialName or serverCertificate/privateKey, not both",
            );
        } else if !has_credential {
            if tls.server_certificate.is_none() || tls.private_key.is_none() {
                r.err_help(p, format!("TLS mode {} needs a certificate: credentialName, or serverCertificate and privateKey", mode.as_str()), "add `credentialName: <name of a kubernetes.io/tls Secret>`");
            }
            if mode == ServerTlsMode::Mutual && tls.ca_certificates.is_none() {
                r.err_help(
                    p,
                    "MUTUAL TLS needs caCertificates to verify client certificates",
                    "add `caCertificates: /path/to/ca.pem` or use credentialName with a ca.crt key",
                );
            }
        }
    }
    if mode == ServerTlsMode::IstioMutual {
        r.err_help(
            &p.k("mode"),
            "ISTIO_MUTUAL needs mesh certificates, which a standalone gateway does not have",
            "use SIMPLE or MUTUAL with credentialName",
        );
    }
    if let (Some(min), Some(max)) = (tls.min_protocol_version, tls.max_protocol_version) {
        if min != TlsProtocol::Auto && max != TlsProtocol::Auto && (min as u8) > (max as u8) {
            r.err(p, "minProtocolVersion is higher than maxProtocolVersion");
        }
    }
    for (field, v) in [
        ("minProtocolVersion", tls.min_protocol_version),
        ("maxProtocolVersion", tls.max_protocol_version),
    ] {
        if matches!(v, Some(TlsProtocol::V1_0 | TlsProtocol::V1_1)) && field == "minProtocolVersion"
        {
            r.err_help(
                &p.k(field),
                "TLS 1.0 and 1.1 are not supported (rustls implements TLS 1.2 and 1.3)",
                "use TLSV1_2",
            );
        }
    }
    for (i, c) in tls.cipher_suites.iter().enumerate() {
        if !SUPPORTED_CIPHERS.contains(&c.as_str()) {
            r.err_help(
                &p.k("cipherSuites").i(i),
                format!("cipher suite \"{c}\" is not supported"),
                format!("supported: {}", SUPPORTED_CIPHERS.join(", ")),
            );
        }
    }
}

/// Envoy names of the TLS 1.2 suites rustls implements (TLS 1.3 suites are not configurable).
pub const SUPPORTED_CIPHERS: [&str; 6] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];

// ---------------------------------------------------------------- VirtualService

/// Envoy's `x-envoy-retry-on` and `x-envoy-retry-grpc-on` tokens.
pub const RETRY_ON: [&str; 16] = [
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

fn gateway_ref(r: &mut Report, p: &P, g: &str) {
    if g == "mesh" {
        return;
    }
    let name = g
        .split_once('/')
        .map(|(ns, n)| {
            if !(ns == "." || is_dns1123_label(ns)) {
                r.err(p, format!("\"{ns}\" in \"{g}\" is not a namespace"));
            }
            n
        })
        .unwrap_or(g);
    if name.is_empty() || host_error(name).is_some() || name.contains('*') {
        r.err(
            p,
            format!("\"{g}\" is not a gateway reference (write `name` or `namespace/name`)"),
        );
    }
}

fn virtual_service(r: &mut Report, s: &P, vs: &VirtualServiceSpec) {
    let is_delegate = vs.hosts.is_empty() && vs.gateways.is_empty();
    if vs.hosts.is_empty() && !is_delegate {
        r.err_help(
            &s.k("hosts"),
            "hosts is required",
            "add `hosts: [\"example.com\"]` (or `\"*\"` for every host)",
        );
    }
    let mesh_only = vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == "mesh");
    for (i, h) in vs.hosts.iter().enumerate() {
        if let Some(e) = host_error(h) {
            r.err(&s.k("hosts").i(i), e);
        }
        if h == "*" && mesh_only && !is_delegate {
            r.err_help(
                &s.k("hosts").i(i),
                "the host \"*\" is not allowed for VirtualServices bound to the mesh",
                "list the gateways this VirtualService is for under `gateways:`",
            );
        }
    }
    for (i, g) in vs.gateways.iter().enumerate() {
        gateway_ref(r, &s.k("gateways").i(i), g);
    }
    if vs.http.is_empty() && vs.tls.is_empty() && vs.tcp.is_empty() {
        r.err_help(
            s,
            "a VirtualService needs http, tls or tcp routes",
            "add `http: [{route: [{destination: {host: ...}}]}]`",
        );
    }
    for (i, route) in vs.http.iter().enumerate() {
        http_route(r, &s.k("http").i(i), route, is_delegate);
    }
    for (i, t) in vs.tls.iter().enumerate() {
        let p = s.k("tls").i(i);
        if t.match_.is_empty() {
            r.err(&p, "a tls route needs at least one match with sniHosts");
        }
        for (j, m) in t.match_.iter().enumerate() {
            let mp = p.k("match").i(j);
            if m.sni_hosts.is_empty() {
                r.err(&mp, "sniHosts is required in a tls match");
            }
            for (k, h) in m.sni_hosts.iter().enumerate() {
                if let Some(e) = host_error(h) {
                    r.err(&mp.k("sniHosts").i(k), e);
                }
            }
            port_number(r, &mp.k("port"), m.port, false);
            for (k, g) in m.gateways.iter().enumerate() {
                gateway_ref(r, &mp.k("gateways").i(k), g);
            }
        }
        l4_destinations(r, &p, &t.route);
    }
    for (i, t) in vs.tcp.iter().enumerate() {
        let p = s.k("tcp").i(i);
        for (j, m) in t.match_.iter().enumerate() {
            port_number(r, &p.k("match").i(j).k("port"), m.port, false);
            for (k, g) in m.gateways.iter().enumerate() {
                gateway_ref(r, &p.k("match").i(j).k("gateways").i(k), g);
            }
        }
        l4_destinations(r, &p, &t.route);
    }
}

fn l4_destinations(r: &mut Report, p: &P, route: &[RouteDestination]) {
    if route.is_empty() {
        r.err(&p.k("route"), "route needs at least one destination");
    }
    for (j, d) in route.iter().enumerate() {
        destination(
            r,
            &p.k("route").i(j).k("destination"),
            d.destination.as_ref(),
        );
    }
    weights(r, &p.k("route"), route.iter().map(|d| d.weight));
}

fn weights(r: &mut Report, p: &P, weights: impl Iterator<Item = Option<i32>>) {
    let w: Vec<Option<i32>> = weights.collect();
    for (i, x) in w.iter().enumerate() {
        if matches!(x, Some(v) if *v < 0) {
            r.err(&p.i(i).k("weight"), "weight must not be negative");
        }
    }
    if w.len() > 1 && w.iter().all(|x| x.unwrap_or(0) == 0) {
        r.err_help(
            p,
            "with several destinations, at least one needs a weight above 0",
            "give each destination a `weight:`; they are relative shares",
        );
    }
}

fn destination(r: &mut Report, p: &P, d: Option<&Destination>) {
    let Some(d) = d else {
        r.err(p, "destination is required");
        return;
    };
    match &d.host {
        None => r.err_help(
            p,
            "destination host is required",
            "add `host: <service name>`",
        ),
        Some(h) => {
            if let Some(e) = host_error(h) {
                r.err(&p.k("host"), e);
            } else if h.contains('*') {
                r.err(&p.k("host"), "a destination host cannot be a wildcard");
            }
        }
    }
    if let Some(sub) = &d.subset {
        if !is_dns1123_label(sub) {
            r.err(
                &p.k("subset"),
                format!(
                    "subset \"{sub}\" is not a valid name (lower-case letters, digits and '-')"
                ),
            );
        }
    }
    if let Some(port) = &d.port {
        port_number(r, &p.k("port").k("number"), port.number, true);
    }
}

fn http_route(r: &mut Report, p: &P, route: &HttpRoute, in_delegate: bool) {
    let actions = [
        !route.route.is_empty(),
        route.redirect.is_some(),
        route.direct_response.is_some(),
        route.delegate.is_some(),
    ];
    match actions.iter().filter(|a| **a).count() {
        0 => r.err_help(
            p,
            "an http route needs one of route, redirect, directResponse or delegate",
            "add `route: [{destination: {host: <service>}}]`",
        ),
        1 => {}
        _ => r.err(
            p,
            "only one of route, redirect, directResponse or delegate may be set",
        ),
    }
    if route.redirect.is_some() && route.rewrite.is_some() {
        r.err(&p.k("rewrite"), "rewrite cannot be combined with redirect");
    }
    if route.delegate.is_some() && in_delegate {
        r.err(
            &p.k("delegate"),
            "a delegate VirtualService cannot delegate again (one level only)",
        );
    }
    for (i, m) in route.match_.iter().enumerate() {
        let mp = p.k("match").i(i);
        for (field, sm) in [
            ("uri", &m.uri),
            ("scheme", &m.scheme),
            ("method", &m.method),
            ("authority", &m.authority),
        ] {
            if let Some(sm) = sm {
                string_match(r, &mp.k(field), sm);
            }
        }
        for (field, map) in [
            ("headers", &m.headers),
            ("withoutHeaders", &m.without_headers),
        ] {
            for (name, sm) in map {
                if !is_header_name(name) {
                    r.err(
                        &mp.k(field),
                        format!("\"{name}\" is not a valid header name"),
                    );
                }
                if sm != &StringMatch::default() {
                    string_match(r, &mp.k(field).k(name), sm);
                }
            }
        }
        for (name, sm) in &m.query_params {
            let qp = mp.k("queryParams").k(name);
            if sm.prefix.is_some() {
                r.err_help(
                    &qp,
                    "query parameters match with exact or regex only",
                    "use `regex: \"value.*\"` for a prefix",
                );
            } else if sm != &StringMatch::default() {
                string_match(r, &qp, sm);
            }
        }
        port_number(r, &mp.k("port"), m.port, false);
        for (k, g) in m.gateways.iter().enumerate() {
            gateway_ref(r, &mp.k("gateways").i(k), g);
        }
        if !m.source_labels.is_empty() || m.source_namespace.is_some() {
            r.warn(&mp, "sourceLabels and sourceNamespace select sidecar clients and never match at a gateway", None);
        }
    }
    for (i, d) in route.route.iter().enumerate() {
        let dp = p.k("route").i(i);
        destination(r, &dp.k("destination"), d.destination.as_ref());
        headers_ops(r, &dp.k("headers"), &d.headers);
    }
    weights(r, &p.k("route"), route.route.iter().map(|d| d.weight));
    if let Some(rd) = &route.redirect {
        let rp = p.k("redirect");
        if let Some(code) = rd.redirect_code {
            if ![301, 302, 303, 307, 308].contains(&code) {
                r.err_help(
                    &rp.k("redirectCode"),
                    format!("{code} is not a redirect status"),
                    "use 301, 302, 303, 307 or 308",
                );
            }
        }
        if rd.port.is_some() && rd.derive_port.is_some() {
            r.err(&rp, "set port or derivePort, not both");
        }
        port_number(r, &rp.k("port"), rd.port, false);
    }
    if let Some(dr) = &route.direct_response {
        let dp = p.k("directResponse");
        match dr.status {
            Some(200..=599) => {}
            Some(s) => r.err(
                &dp.k("status"),
                format!("status {s} must be between 200 and 599"),
            ),
            None => r.err(&dp, "directResponse status is required"),
        }
        if let Some(b) = &dr.body {
            if b.string.is_some() == b.bytes.is_some() {
                r.err(&dp.k("body"), "body needs exactly one of string or bytes");
            }
        }
    }
    if let Some(d) = &route.delegate {
        if d.name.as_deref().unwrap_or("").is_empty() {
            r.err(&p.k("delegate"), "delegate name is required");
        }
        if !route.route.is_empty() || route.redirect.is_some() {
            r.err(
                &p.k("delegate"),
                "delegate cannot be combined with route or redirect",
            );
        }
    }
    if let Some(rw) = &route.rewrite {
        if rw.uri.is_some() && rw.uri_regex_rewrite.is_some() {
            r.err(&p.k("rewrite"), "set uri or uriRegexRewrite, not both");
        }
        if let Some(rr) = &rw.uri_regex_rewrite {
            match &rr.match_ {
                Some(m) => {
                    if let Err(e) = regex::Regex::new(m) {
                        r.err(
                            &p.k("rewrite").k("uriRegexRewrite").k("match"),
                            format!(
                                "regex does not compile: {}",
                                e.to_string()
                                    .lines()
                                    .last()
                                    .unwrap_or("")
                                    .trim()
                                    .trim_start_matches("error: ")
                            ),
                        );
                    }
                }
                None => r.err(&p.k("rewrite").k("uriRegexRewrite"), "match is required"),
            }
            if rr.rewrite.is_none() {
                r.err(&p.k("rewrite").k("uriRegexRewrite"), "rewrite is required");
            }
        }
    }
    duration_min(
        r,
        &p.k("timeout"),
        route.timeout.filter(|d| !d.0.is_zero()),
        "timeout",
    );
    if let Some(rt) = &route.retries {
        let rp = p.k("retries");
        if matches!(rt.attempts, Some(a) if a < 0) {
            r.err(&rp.k("attempts"), "attempts must not be negative");
        }
        duration_min(
            r,
            &rp.k("perTryTimeout"),
            rt.per_try_timeout,
            "perTryTimeout",
        );
        duration_min(r, &rp.k("backoff"), rt.backoff, "backoff");
        if let Some(on) = &rt.retry_on {
            for token in on.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let numeric = token.parse::<u16>().is_ok_and(|c| (100..600).contains(&c));
                if !numeric && !RETRY_ON.contains(&token) {
                    r.err_help(
                        &rp.k("retryOn"),
                        format!("\"{token}\" is not a retry condition"),
                        crate::de::suggestion(token, &RETRY_ON),
                    );
                }
            }
        }
    }
    if let Some(f) = &route.fault {
        let fp = p.k("fault");
        if f.delay.is_none() && f.abort.is_none() {
            r.err(&fp, "fault needs delay or abort");
        }
        if let Some(d) = &f.delay {
            if d.fixed_delay.is_none() && d.exponential_delay.is_none() {
                r.err(&fp.k("delay"), "fixedDelay is required");
            }
            if d.exponential_delay.is_some() {
                r.push(
                    Severity::Error,
                    codes::UNSUPPORTED_FIELD,
                    &fp.k("delay").k("exponentialDelay"),
                    "exponentialDelay is not implemented by sluice (nor by Istio)".into(),
                    Some("use fixedDelay".into()),
                );
            }
            percent(r, &fp.k("delay").k("percentage"), &d.percentage);
        }
        if let Some(a) = &f.abort {
            let set = [
                a.http_status.is_some(),
                a.grpc_status.is_some(),
                a.http2_error.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if set != 1 {
                r.err(
                    &fp.k("abort"),
                    "abort needs exactly one of httpStatus or grpcStatus",
                );
            }
            if let Some(s) = a.http_status {
                if !(200..=599).contains(&s) {
                    r.err(
                        &fp.k("abort").k("httpStatus"),
                        format!("httpStatus {s} must be between 200 and 599"),
                    );
                }
            }
            percent(r, &fp.k("abort").k("percentage"), &a.percentage);
        }
    }
    if route.mirror.is_some() && !route.mirrors.is_empty() {
        r.err(&p.k("mirrors"), "set mirror or mirrors, not both");
    }
    policy_traps(r, p, route);
    if let Some(m) = &route.mirror {
        destination(r, &p.k("mirror"), Some(m));
    }
    percent(r, &p.k("mirrorPercentage"), &route.mirror_percentage);
    for (i, m) in route.mirrors.iter().enumerate() {
        destination(
            r,
            &p.k("mirrors").i(i).k("destination"),
            m.destination.as_ref(),
        );
        percent(r, &p.k("mirrors").i(i).k("percentage"), &m.percentage);
    }
    if let Some(c) = &route.cors_policy {
        for (i, o) in c.allow_origins.iter().enumerate() {
            string_match(r, &p.k("corsPolicy").k("allowOrigins").i(i), o);
        }
        for (i, h) in c.allow_headers.iter().chain(&c.expose_headers).enumerate() {
            if h != "*" && !is_header_name(h) {
                r.err(
                    &p.k("corsPolicy"),
                    format!("\"{h}\" (entry {i}) is not a valid header name"),
                );
            }
        }
        for (i, m) in c.allow_methods.iter().enumerate() {
            if m != "*" && !m.bytes().all(|b| b.is_ascii_uppercase()) {
                r.err(
                    &p.k("corsPolicy").k("allowMethods").i(i),
                    format!("\"{m}\" is not an HTTP method (methods are upper-case)"),
                );
            }
        }
    }
    headers_ops(r, &p.k("headers"), &route.headers);
}

// ---------------------------------------------------------------- DestinationRule

fn destination_rule(r: &mut Report, s: &P, dr: &DestinationRuleSpec) {
    match &dr.host {
        None => r.err_help(s, "host is required", "add `host: <service name>`"),
        Some(h) => {
            if let Some(e) = host_error(h) {
                r.err(&s.k("host"), e);
            }
        }
    }
    if let Some(tp) = &dr.traffic_policy {
        traffic_policy(r, &s.k("trafficPolicy"), tp, true);
    }
    let mut names = HashSet::new();
    for (i, sub) in dr.subsets.iter().enumerate() {
        let p = s.k("subsets").i(i);
        match &sub.name {
            None => r.err(&p, "subset name is required"),
            Some(n) => {
                if !is_dns1123_label(n) {
                    r.err(&p.k("name"), format!("subset \"{n}\" is not a valid name (lower-case letters, digits and '-')"));
                }
                if !names.insert(n.as_str()) {
                    r.err(&p.k("name"), format!("subset \"{n}\" is defined twice"));
                }
            }
        }
        if let Some(tp) = &sub.traffic_policy {
            traffic_policy(r, &p.k("trafficPolicy"), tp, true);
        }
    }
}

fn traffic_policy(r: &mut Report, p: &P, tp: &TrafficPolicy, top: bool) {
    lb(r, &p.k("loadBalancer"), &tp.load_balancer);
    pool(r, &p.k("connectionPool"), &tp.connection_pool);
    outlier(r, &p.k("outlierDetection"), &tp.outlier_detection);
    client_tls(r, &p.k("tls"), &tp.tls);
    if !top && !tp.port_level_settings.is_empty() {
        r.err(
            &p.k("portLevelSettings"),
            "portLevelSettings cannot be nested",
        );
    }
    let mut ports = HashSet::new();
    for (i, pl) in tp.port_level_settings.iter().enumerate() {
        let pp = p.k("portLevelSettings").i(i);
        match pl.port.as_ref().and_then(|x| x.number) {
            None => r.err(&pp, "port is required in a port-level setting"),
            Some(n) => {
                port_number(r, &pp.k("port").k("number"), Some(n), true);
                if !ports.insert(n) {
                    r.err(
                        &pp.k("port"),
                        format!("port {n} has two port-level settings"),
                    );
                }
            }
        }
        lb(r, &pp.k("loadBalancer"), &pl.load_balancer);
        pool(r, &pp.k("connectionPool"), &pl.connection_pool);
        outlier(r, &pp.k("outlierDetection"), &pl.outlier_detection);
        client_tls(r, &pp.k("tls"), &pl.tls);
    }
    if tp.tunnel.is_some() {
        r.push(
            Severity::Error,
            codes::UNSUPPORTED_FIELD,
            &p.k("tunnel"),
            "tunnel is not implemented by sluice".into(),
            None,
        );
    }
    if tp.proxy_protocol.is_some() {
        r.push(
            Severity::Error,
            codes::UNSUPPORTED_FIELD,
            &p.k("proxyProtocol"),
            "proxyProtocol is not implemented by sluice".into(),
            None,
        );
    }
}

fn lb(r: &mut Report, p: &P, lb: &Option<LoadBalancerSettings>) {
    let Some(lb) = lb else { return };
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        r.err(p, "set simple or consistentHash, not both");
    }
    if let Some(ch) = &lb.consistent_hash {
        let keys = [
            ch.http_header_name.is_some(),
            ch.http_cookie.is_some(),
            ch.use_source_ip == Some(true),
            ch.http_query_parameter_name.is_some(),
        ];
        if keys.iter().filter(|k| **k).count() != 1 {
            r.err(&p.k("consistentHash"), "consistentHash needs exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName");
        }
        if ch.ring_hash.is_some() && ch.maglev.is_some() {
            r.err(&p.k("consistentHash"), "set ringHash or maglev, not both");
        }
        if let Some(c) = &ch.http_cookie {
            if c.name.as_deref().unwrap_or("").is_empty() {
                r.err(
                    &p.k("consistentHash").k("httpCookie"),
                    "cookie name is required",
                );
            }
        }
    }
}

fn pool(r: &mut Report, p: &P, pool: &Option<ConnectionPoolSettings>) {
    let Some(pool) = pool else { return };
    if let Some(t) = &pool.tcp {
        if matches!(t.max_connections, Some(n) if n < 0) {
            r.err(
                &p.k("tcp").k("maxConnections"),
                "maxConnections must not be negative",
            );
        }
        duration_min(
            r,
            &p.k("tcp").k("connectTimeout"),
            t.connect_timeout,
            "connectTimeout",
        );
    }
    if let Some(h) = &pool.http {
        for (f, v) in [
            ("http1MaxPendingRequests", h.http1_max_pending_requests),
            ("http2MaxRequests", h.http2_max_requests),
            ("maxRequestsPerConnection", h.max_requests_per_connection),
            ("maxRetries", h.max_retries),
            ("maxConcurrentStreams", h.max_concurrent_streams),
        ] {
            if matches!(v, Some(n) if n < 0) {
                r.err(&p.k("http").k(f), format!("{f} must not be negative"));
            }
        }
    }
}

fn outlier(r: &mut Report, p: &P, o: &Option<OutlierDetection>) {
    let Some(o) = o else { return };
    for (f, v) in [
        ("maxEjectionPercent", o.max_ejection_percent),
        ("minHealthPercent", o.min_health_percent),
    ] {
        if matches!(v, Some(n) if !(0..=100).contains(&n)) {
            r.err(&p.k(f), format!("{f} must be between 0 and 100"));
        }
    }
    duration_min(r, &p.k("interval"), o.interval, "interval");
    duration_min(
        r,
        &p.k("baseEjectionTime"),
        o.base_ejection_time,
        "baseEjectionTime",
    );
    if o.consecutive_errors.is_some() {
        r.warn(
            &p.k("consecutiveErrors"),
            "consecutiveErrors is deprecated",
            Some("use consecutive5xxErrors".into()),
        );
    }
}

fn client_tls(r: &mut Report, p: &P, tls: &Option<ClientTlsSettings>) {
    let Some(tls) = tls else { return };
    let files = tls.client_certificate.is_some()
        || tls.private_key.is_some()
        || tls.ca_certificates.is_some();
    if tls.credential_name.is_some() && files {
        r.err(
            p,
            "set credentialName or clientCertificate/privateKey/caCertificates, not both",
        );
    }
    if tls.mode == Some(ClientTlsMode::Mutual)
        && tls.credential_name.is_none()
        && (tls.client_certificate.is_none() || tls.private_key.is_none())
    {
        r.err_help(
            p,
            "MUTUAL needs clientCertificate and privateKey (or credentialName)",
            "add `credentialName: <secret with tls.crt and tls.key>`",
        );
    }
}

// ---------------------------------------------------------------- ServiceEntry, WorkloadEntry, Secret

fn service_entry(r: &mut Report, s: &P, se: &ServiceEntrySpec) {
    if se.hosts.is_empty() {
        r.err_help(
            &s.k("hosts"),
            "hosts is required",
            "add `hosts: [my-service.example.com]`",
        );
    }
    for (i, h) in se.hosts.iter().enumerate() {
        if let Some(e) = host_error(h) {
            r.err(&s.k("hosts").i(i), e);
        }
    }
    if se.ports.is_empty() {
        r.err_help(
            &s.k("ports"),
            "ports is required",
            "add `ports: [{number: 80, name: http, protocol: HTTP}]`",
        );
    }
    let mut names = HashSet::new();
    let mut numbers = HashSet::new();
    for (i, port) in se.ports.iter().enumerate() {
        let p = s.k("ports").i(i);
        port_number(r, &p.k("number"), port.number, true);
        match &port.name {
            None => r.err(&p, "port name is required"),
            Some(n) => {
                if !names.insert(n.as_str()) {
                    r.err(&p.k("name"), format!("port name \"{n}\" is used twice"));
                }
            }
        }
        if let Some(n) = port.number {
            if !numbers.insert(n) {
                r.err(&p.k("number"), format!("port {n} is listed twice"));
            }
        }
    }
    if se.workload_selector.is_some() && !se.endpoints.is_empty() {
        r.err(s, "set endpoints or workloadSelector, not both");
    }
    let resolution = se.resolution.unwrap_or(Resolution::None);
    if resolution == Resolution::Static && se.endpoints.is_empty() && se.workload_selector.is_none()
    {
        r.warn(
            &s.k("endpoints"),
            "STATIC resolution without endpoints: the service has no endpoints",
            None,
        );
    }
    for (i, ep) in se.endpoints.iter().enumerate() {
        let p = s.k("endpoints").i(i);
        workload_entry(r, &p, ep, Some(&names));
        if let Some(addr) = &ep.address {
            let is_ip = addr.parse::<std::net::IpAddr>().is_ok();
            if resolution == Resolution::Static && !is_ip && !addr.starts_with("unix://") {
                r.err_help(
                    &p.k("address"),
                    format!("\"{addr}\" is not an IP address, which STATIC resolution requires"),
                    "use resolution: DNS for host names",
                );
            }
        }
    }
}

fn workload_entry(
    r: &mut Report,
    p: &P,
    we: &WorkloadEntrySpec,
    port_names: Option<&HashSet<&str>>,
) {
    if we.address.as_deref().unwrap_or("").is_empty() && we.network.is_none() {
        r.err(p, "address is required");
    }
    for (name, port) in &we.ports {
        if !(1..=65535).contains(port) {
            r.err(
                &p.k("ports").k(name),
                format!("port {port} is out of range 1-65535"),
            );
        }
        if let Some(names) = port_names {
            if !names.contains(name.as_str()) {
                r.err_help(
                    &p.k("ports").k(name),
                    format!("port name \"{name}\" is not one of the ServiceEntry's ports"),
                    format!(
                        "known: {}",
                        names.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
    }
}

fn secret(r: &mut Report, sec: &sluice_api::core::SecretBody) {
    use base64::Engine;
    for (k, v) in &sec.data {
        let clean: String = v.split_whitespace().collect();
        if base64::engine::general_purpose::STANDARD
            .decode(clean)
            .is_err()
        {
            r.err_help(
                &P::default().k("data").k(k),
                format!("data key \"{k}\" is not valid base64"),
                "put plain text under `stringData:` instead",
            );
        }
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
