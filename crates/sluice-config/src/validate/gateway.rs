//! Gateway: Istio's `ValidateGateway`, `validateServer`, `validateServerPort`,
//! `validateServerBind` and `validateTLSOptions`.
use super::names::{is_dns1123_label, is_ip, partial_wildcard, wildcard_domain};
use super::{port_number, Report, P};
use crate::yaml::Seg;
use sluice_api::istio::{GatewaySpec, Server, ServerTlsMode, ServerTlsSettings, TlsProtocol};
use std::collections::HashSet;

/// Gateway protocols sluice serves (Istio names, case-insensitive); servers with the other
/// protocols Istio knows are skipped by compile, with a warning.
pub const GATEWAY_PROTOCOLS: [&str; 6] = ["HTTP", "HTTPS", "HTTP2", "GRPC", "TLS", "TCP"];

/// Every protocol Istio's `protocol.Parse` knows.
const ISTIO_PROTOCOLS: [&str; 12] = [
    "TCP",
    "UDP",
    "GRPC",
    "GRPC-WEB",
    "HTTP",
    "HTTP_PROXY",
    "HTTP2",
    "HTTPS",
    "TLS",
    "MONGO",
    "REDIS",
    "MYSQL",
];

/// Envoy names of the TLS 1.2 suites rustls implements (TLS 1.3 suites are not configurable).
pub const SUPPORTED_CIPHERS: [&str; 6] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
];

/// The suites Istio accepts (`security.ValidCipherSuites`); others are ignored with a warning.
const ISTIO_CIPHERS: [&str; 9] = [
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
];

fn is_http(protocol: &str) -> bool {
    matches!(
        protocol,
        "HTTP" | "HTTP2" | "HTTP_PROXY" | "GRPC" | "GRPC-WEB"
    )
}

fn set(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

pub(super) fn gateway(r: &mut Report, s: &P, g: &GatewaySpec) {
    let name = r.object.name.clone();
    if !is_dns1123_label(&name) {
        r.err_help(
            &P(vec![Seg::Key("metadata".into()), Seg::Key("name".into())]),
            format!("\"{name}\" is not a valid Gateway name (a DNS label: letters, digits and '-', no dots)"),
            "rename the Gateway, and the VirtualServices' references to it",
        );
    }
    if g.servers.is_empty() {
        r.err_help(
            s,
            "a Gateway needs at least one server",
            "add `servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [\"*\"]}]`",
        );
    }
    let mut port_names = HashSet::new();
    for (i, server) in g.servers.iter().enumerate() {
        let p = s.k("servers").i(i);
        server_rules(r, &p, server);
        let Some(port) = &server.port else { continue };
        if let Some(n) = port.name.as_deref().filter(|n| !n.is_empty()) {
            if !port_names.insert(n) {
                r.err_help(
                    &p.k("port").k("name"),
                    format!("port name \"{n}\" is used by another server of this Gateway"),
                    "give each server's port its own name",
                );
            }
        }
        let protocol = port.protocol.as_deref().unwrap_or("").to_ascii_uppercase();
        if !is_http(&protocol) && server.tls.as_ref().and_then(|t| t.https_redirect) == Some(true) {
            r.warn(
                &p.k("tls").k("httpsRedirect"),
                "httpsRedirect is meant for HTTP servers",
                None,
            );
        }
    }
}

/// Istio's `validateServer`.
fn server_rules(r: &mut Report, p: &P, server: &Server) {
    if server.hosts.is_empty() {
        r.err_help(
            &p.k("hosts"),
            "a server needs at least one host",
            "use `hosts: [\"*\"]` to accept every host",
        );
    }
    for (j, h) in server.hosts.iter().enumerate() {
        server_host(r, &p.k("hosts").i(j), h);
    }
    let bind = server.bind.as_deref().unwrap_or("");
    let port_ok = server_port(r, p, server, bind);
    if let Some(path) = bind.strip_prefix("unix://") {
        if let Err(e) = unix_address(path) {
            r.err(&p.k("bind"), e);
        }
        if server.port.as_ref().and_then(|x| x.number).unwrap_or(0) != 0 {
            r.err(
                &p.k("port").k("number"),
                "the port number must be 0 with a unix:// bind",
            );
        }
    } else if !bind.is_empty() && !is_ip(bind) {
        r.err(&p.k("bind"), format!("\"{bind}\" is not an IP address"));
    }
    if let Some(tls) = &server.tls {
        tls_options(r, &p.k("tls"), tls);
    }
    let Some(protocol) = port_ok else { return };
    let tls_protocol = matches!(protocol.as_str(), "HTTPS" | "TLS");
    match &server.tls {
        None if tls_protocol => r.err_help(
            p,
            format!("a {protocol} server needs a tls block"),
            "add `tls: {mode: SIMPLE, credentialName: <secret>}`",
        ),
        Some(tls) if !tls_protocol => {
            let passthrough = matches!(
                tls.mode.unwrap_or(ServerTlsMode::Passthrough),
                ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
            );
            let files =
                set(&tls.ca_certificates) || set(&tls.private_key) || set(&tls.server_certificate);
            if !is_http(&protocol) {
                r.err_help(
                    &p.k("tls"),
                    format!("a {protocol} server cannot have TLS settings"),
                    "use protocol HTTPS or TLS to terminate TLS",
                );
            } else if !passthrough || files {
                r.err_help(&p.k("tls"), format!("a plain-text {protocol} server can only have `tls: {{httpsRedirect: true}}`"), "use protocol HTTPS to terminate TLS");
            }
        }
        _ => {}
    }
}

/// Istio's `ValidateNamespaceSlashWildcardHostname` for gateways: `[namespace/]dnsName`, the
/// namespace `*`, `.` or a name; the host a FQDN (or `*`, `*.suffix`, an IP).
fn server_host(r: &mut Report, hp: &P, h: &str) {
    let host = match h.split_once('/') {
        Some((ns, host)) => {
            if ns.is_empty() || host.is_empty() {
                r.err(
                    hp,
                    format!("\"{h}\": the namespace and host must not be empty"),
                );
            } else if !(ns == "*" || ns == "." || is_dns1123_label(ns)) {
                r.err(
                    hp,
                    format!("\"{ns}\" is not a namespace (use a namespace name, \".\" or \"*\")"),
                );
            }
            host
        }
        None => h,
    };
    if host != "*" && !host.contains('.') {
        r.err_help(
            hp,
            format!("\"{host}\" is a short name; a gateway needs fully qualified host names"),
            "write the full name, such as \"app.example.com\", or \"*\"",
        );
    }
    if let Err(e) = wildcard_domain(host) {
        if !is_ip(host) {
            r.err(hp, e);
        }
    }
    if let Err(e) = partial_wildcard(host) {
        r.err_help(hp, e, "a gateway host takes a wildcard only as the whole first label, as in \"*.example.com\"");
    }
}

/// Istio's `validateServerPort`; the protocol (upper case) when the port has no error.
fn server_port(r: &mut Report, p: &P, server: &Server, bind: &str) -> Option<String> {
    let Some(port) = &server.port else {
        r.err_help(
            p,
            "server port is required",
            "add `port: {number: 80, name: http, protocol: HTTP}`",
        );
        return None;
    };
    let errors = r.out.len();
    let pp = p.k("port");
    let protocol = port.protocol.as_deref().unwrap_or("").to_ascii_uppercase();
    if !ISTIO_PROTOCOLS.contains(&protocol.as_str()) {
        r.err_help(
            &pp.k("protocol"),
            format!(
                "protocol \"{}\" is not a protocol Istio knows",
                port.protocol.as_deref().unwrap_or("")
            ),
            format!("use one of {}", GATEWAY_PROTOCOLS.join(", ")),
        );
    }
    if port.number.unwrap_or(0) > 0 || !bind.starts_with("unix://") {
        port_number(r, &pp.k("number"), port.number, true);
    }
    if port.target_port.unwrap_or(0) > 0 {
        r.err_help(
            &pp.k("targetPort"),
            "targetPort has no effect on a Gateway",
            "remove targetPort",
        );
    }
    if port.name.as_deref().unwrap_or("").is_empty() {
        r.err_help(
            &pp,
            "port name is required",
            "add `name: http` (any name unique in this Gateway)",
        );
    }
    (r.out.len() == errors).then_some(protocol)
}

/// Istio's `ValidateUnixAddress`: an absolute path to a file, or an abstract socket `@name`.
fn unix_address(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the unix socket path must not be empty".into());
    }
    if path.starts_with('@') || (path.starts_with('/') && !path.ends_with('/')) {
        return Ok(());
    }
    Err(format!("\"{path}\" is not an absolute path to a file"))
}

/// Istio's `validateTLSOptions`, then what sluice cannot serve.
fn tls_options(r: &mut Report, p: &P, tls: &ServerTlsSettings) {
    let mode = tls.mode.unwrap_or(ServerTlsMode::Passthrough);
    cipher_suites(r, p, tls);
    if mode == ServerTlsMode::IstioMutual {
        let extra = [
            ("serverCertificate", set(&tls.server_certificate)),
            ("privateKey", set(&tls.private_key)),
            ("caCertificates", set(&tls.ca_certificates)),
            ("tlsCertificates", !tls.tls_certificates.is_empty()),
            ("credentialName", set(&tls.credential_name)),
            ("credentialNames", !tls.credential_names.is_empty()),
        ];
        for (field, _) in extra.iter().filter(|(_, present)| *present) {
            r.err(
                &p.k(field),
                format!("ISTIO_MUTUAL uses the mesh's certificates; {field} cannot be set"),
            );
        }
        r.err_help(
            &p.k("mode"),
            "ISTIO_MUTUAL needs mesh certificates, which a standalone gateway (sluice) does not have",
            "use SIMPLE or MUTUAL with credentialName",
        );
        return;
    }
    let certificates = set(&tls.ca_crl)
        || set(&tls.server_certificate)
        || set(&tls.private_key)
        || set(&tls.ca_certificates)
        || !tls.tls_certificates.is_empty()
        || set(&tls.credential_name)
        || !tls.credential_names.is_empty();
    if matches!(
        mode,
        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
    ) && certificates
    {
        r.warn(
            p,
            format!(
                "{} does not terminate TLS; its certificates are ignored",
                mode.as_str()
            ),
            Some("remove them, or set `mode: SIMPLE` to terminate TLS here".into()),
        );
    }
    let sources = [
        set(&tls.server_certificate) && set(&tls.private_key),
        set(&tls.credential_name),
        !tls.credential_names.is_empty(),
        !tls.tls_certificates.is_empty(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        r.err(p, "set only one of credentialName, credentialNames, serverCertificate/privateKey or tlsCertificates");
    }
    let terminating = matches!(
        mode,
        ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
    );
    let credential = set(&tls.credential_name) || !tls.credential_names.is_empty();
    if terminating && !credential {
        let label = if mode == ServerTlsMode::Simple {
            "SIMPLE"
        } else {
            "MUTUAL"
        };
        if mode != ServerTlsMode::Simple && !set(&tls.ca_certificates) {
            r.err_help(
                p,
                format!(
                    "{} TLS needs caCertificates to verify client certificates",
                    mode.as_str()
                ),
                "add `caCertificates: /path/to/ca.pem`, or use credentialName with a ca.crt key",
            );
        }
        if tls.tls_certificates.len() > 2 {
            r.warn(
                &p.k("tlsCertificates"),
                format!("{label} TLS serves at most 2 certificates"),
                None,
            );
        }
        let certs: Vec<(P, bool, bool)> = if tls.tls_certificates.is_empty() {
            vec![(
                p.clone(),
                set(&tls.server_certificate),
                set(&tls.private_key),
            )]
        } else {
            let list = p.k("tlsCertificates");
            let each = tls.tls_certificates.iter().enumerate();
            each.map(|(i, c)| (list.i(i), set(&c.server_certificate), set(&c.private_key)))
                .collect()
        };
        for (cp, cert, key) in certs {
            if !cert || !key {
                r.err_help(&cp, format!("TLS mode {} needs a certificate: credentialName, or serverCertificate and privateKey", mode.as_str()), "add `credentialName: <name of a kubernetes.io/tls Secret>`");
            }
        }
    }
    if set(&tls.ca_crl) && !(terminating && credential) {
        if set(&tls.credential_name) {
            r.err(
                &p.k("caCrl"),
                "caCrl cannot be combined with credentialName; put the CRL in the Secret",
            );
        }
        if mode == ServerTlsMode::Simple {
            r.err(
                &p.k("caCrl"),
                "caCrl applies to client certificates, which SIMPLE TLS does not ask for",
            );
        }
    }
    if let (Some(min), Some(max)) = (tls.min_protocol_version, tls.max_protocol_version) {
        if min != TlsProtocol::Auto && max != TlsProtocol::Auto && (min as u8) > (max as u8) {
            r.err(p, "minProtocolVersion is higher than maxProtocolVersion");
        }
    }
    if matches!(
        tls.min_protocol_version,
        Some(TlsProtocol::V1_0 | TlsProtocol::V1_1)
    ) {
        r.err_help(
            &p.k("minProtocolVersion"),
            "TLS 1.0 and 1.1 are not supported by sluice (rustls implements TLS 1.2 and 1.3)",
            "use TLSV1_2",
        );
    }
}

/// Istio warns about (and ignores) unknown and repeated suites; sluice refuses the ones Istio
/// knows but rustls does not implement.
fn cipher_suites(r: &mut Report, p: &P, tls: &ServerTlsSettings) {
    let mut seen = HashSet::new();
    for (i, c) in tls.cipher_suites.iter().enumerate() {
        let cp = p.k("cipherSuites").i(i);
        let operator = !c.starts_with(|ch: char| ch.is_alphanumeric());
        let istio_knows = c.is_empty()
            || c == "ALL"
            || operator
            || SUPPORTED_CIPHERS.contains(&c.as_str())
            || ISTIO_CIPHERS.contains(&c.as_str());
        if !istio_knows {
            r.warn(
                &cp,
                format!("unknown cipher suite \"{c}\" is ignored"),
                Some(format!("supported: {}", SUPPORTED_CIPHERS.join(", "))),
            );
        } else if !seen.insert(c.as_str()) {
            r.warn(&cp, format!("cipher suite \"{c}\" is listed twice"), None);
        } else if !SUPPORTED_CIPHERS.contains(&c.as_str()) {
            r.err_help(
                &cp,
                format!("cipher suite \"{c}\" is not supported by sluice (rustls)"),
                format!("supported: {}", SUPPORTED_CIPHERS.join(", ")),
            );
        }
    }
}
