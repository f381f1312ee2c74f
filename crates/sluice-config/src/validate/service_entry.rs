//! ServiceEntry and WorkloadEntry: Istio's `ValidateServiceEntry`, `validateWorkloadEntry`;
//! and the Secret's own rule.
use super::names::{fqdn, ip_subnet, is_dns1123_label, is_ip, partial_wildcard, wildcard_domain};
use super::{export_to, labels, port_number, selector_labels, Report, P};
use sluice_api::istio::*;
use std::collections::HashSet;

/// Istio's `protocol.Parse` knows it (empty means "sniffed").
fn known_protocol(p: &str) -> bool {
    p.is_empty()
        || matches!(
            p.to_ascii_uppercase().as_str(),
            "TCP"
                | "UDP"
                | "GRPC"
                | "GRPC-WEB"
                | "HTTP"
                | "HTTP_PROXY"
                | "HTTP2"
                | "HTTPS"
                | "TLS"
                | "MONGO"
                | "REDIS"
                | "MYSQL"
        )
}

fn http_or_tls(p: &str) -> bool {
    matches!(
        p.to_ascii_uppercase().as_str(),
        "HTTP" | "HTTP2" | "HTTP_PROXY" | "GRPC" | "GRPC-WEB" | "HTTPS" | "TLS"
    )
}

pub(super) fn service_entry(r: &mut Report, s: &P, se: &ServiceEntrySpec) {
    let resolution = se.resolution.unwrap_or(Resolution::None);
    if let Some(sel) = &se.workload_selector {
        selector_labels(r, &s.k("workloadSelector").k("labels"), &sel.labels, "the workload selector has no labels, so this ServiceEntry applies to every workload in the namespace");
        if !se.endpoints.is_empty() {
            r.err(s, "set endpoints or workloadSelector, not both");
        }
    }
    if se.hosts.is_empty() {
        r.err_help(
            &s.k("hosts"),
            "hosts is required",
            "add `hosts: [my-service.example.com]`",
        );
    }
    for (i, h) in se.hosts.iter().enumerate() {
        let hp = s.k("hosts").i(i);
        if h == "*" {
            r.err(&hp, "a ServiceEntry host cannot be \"*\"");
            continue;
        }
        r.check(&hp, wildcard_domain(h));
        if resolution != Resolution::DynamicDns {
            if let Err(e) = partial_wildcard(h) {
                r.warn(&hp, e, None);
            }
        }
    }
    let mut cidr = false;
    for (i, a) in se.addresses.iter().enumerate() {
        cidr |= a.contains('/');
        r.check(&s.k("addresses").i(i), ip_subnet(a));
    }
    if cidr && !matches!(resolution, Resolution::None | Resolution::Static) {
        r.err(
            &s.k("addresses"),
            "CIDR addresses are allowed only with resolution NONE or STATIC",
        );
    }
    // Istio allocates addresses itself unless resolution is NONE or the label opts out.
    let opted_out = r
        .object
        .meta
        .labels
        .get("networking.istio.io/enable-autoallocate-ip")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let auto_allocated = resolution != Resolution::None && !opted_out && se.addresses.is_empty();
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
        let name = port.name.as_deref().unwrap_or("");
        if !names.insert(name) {
            r.err(&p.k("name"), format!("port name \"{name}\" is used twice"));
        }
        if !numbers.insert(port.number.unwrap_or(0)) {
            r.err(
                &p.k("number"),
                format!("port {} is listed twice", port.number.unwrap_or(0)),
            );
        }
        if port.target_port.unwrap_or(0) != 0 {
            port_number(r, &p.k("targetPort"), port.target_port, false);
        }
        let protocol = port.protocol.as_deref().unwrap_or("");
        if se.addresses.is_empty() && !auto_allocated && (protocol.is_empty() || protocol == "TCP")
        {
            r.warn(
                &p,
                "a TCP (or unset) protocol port needs addresses when Istio does not allocate one",
                Some("add `addresses:`, or a protocol such as HTTP".into()),
            );
        }
        if !is_dns1123_label(name) {
            r.err_help(
                &p,
                format!("\"{name}\" is not a valid port name"),
                "name the port, e.g. `name: http`",
            );
        }
        if !known_protocol(protocol) {
            r.err(
                &p.k("protocol"),
                format!("protocol \"{protocol}\" is not one Istio knows"),
            );
        }
        port_number(r, &p.k("number"), Some(port.number.unwrap_or(0)), true);
    }
    match resolution {
        Resolution::None => {
            if !se.endpoints.is_empty() {
                r.err_help(
                    &s.k("endpoints"),
                    "resolution NONE takes no endpoints",
                    "set `resolution: STATIC` (IP addresses) or `DNS` (host names)",
                );
            }
            if se.workload_selector.is_some() {
                r.warn(
                    &s.k("workloadSelector"),
                    "workloadSelector has no effect with resolution NONE",
                    None,
                );
            }
        }
        Resolution::Static => {
            for (i, ep) in se.endpoints.iter().enumerate() {
                workload_entry(r, &s.k("endpoints").i(i), ep, Some(&names), false);
            }
        }
        Resolution::Dns | Resolution::DnsRoundRobin => {
            if se.endpoints.is_empty() {
                if let Some((i, e)) = se
                    .hosts
                    .iter()
                    .enumerate()
                    .find_map(|(i, h)| fqdn(h).err().map(|e| (i, e)))
                {
                    r.err_help(&s.k("hosts").i(i), format!("{e}: resolution {} without endpoints resolves the hosts themselves, so they must be names without wildcards", resolution.as_str()), "list endpoints, or name the hosts exactly");
                }
            }
            if resolution == Resolution::DnsRoundRobin && se.endpoints.len() > 1 {
                r.err(
                    &s.k("endpoints"),
                    "resolution DNS_ROUND_ROBIN takes at most one endpoint",
                );
            }
            for (i, ep) in se.endpoints.iter().enumerate() {
                let p = s.k("endpoints").i(i);
                let addr = ep.address.as_deref().unwrap_or("");
                if !is_ip(addr) && fqdn(addr).is_err() {
                    r.err(
                        &p.k("address"),
                        format!("\"{addr}\" is not a host name or an IP address"),
                    );
                }
                labels(r, &p.k("labels"), &ep.labels);
                endpoint_ports(r, &p, ep, Some(&names));
            }
            let tcp = se.ports.iter().any(|p| {
                let proto = p.protocol.as_deref().unwrap_or("").to_ascii_uppercase();
                matches!(
                    proto.as_str(),
                    "TCP" | "HTTPS" | "TLS" | "MONGO" | "REDIS" | "MYSQL"
                )
            });
            if !se.addresses.is_empty() && tcp && se.hosts.len() > 1 {
                r.warn(
                    &s.k("hosts"),
                    "with addresses and a TCP port, only one host can be told apart",
                    None,
                );
            }
        }
        Resolution::DynamicDns => dynamic_dns(r, s, se),
    }
    let opaque_port = se
        .ports
        .iter()
        .any(|p| !http_or_tls(p.protocol.as_deref().unwrap_or("")));
    if resolution != Resolution::None && se.hosts.len() > 1 && opaque_port {
        r.err_help(
            &s.k("hosts"),
            "several hosts share non-HTTP, non-TLS ports, where nothing tells the hosts apart",
            "use one ServiceEntry per host, or HTTP/TLS ports",
        );
    }
    export_to(r, &s.k("exportTo"), &se.export_to, true);
}

fn dynamic_dns(r: &mut Report, s: &P, se: &ServiceEntrySpec) {
    for (i, h) in se.hosts.iter().enumerate() {
        if !h.starts_with('*') {
            r.err(
                &s.k("hosts").i(i),
                "resolution DYNAMIC_DNS needs wildcard hosts",
            );
        }
    }
    if !se.addresses.is_empty() {
        r.err(
            &s.k("addresses"),
            "resolution DYNAMIC_DNS takes no addresses",
        );
    }
    if !se.endpoints.is_empty() {
        r.err(
            &s.k("endpoints"),
            "resolution DYNAMIC_DNS takes no endpoints",
        );
    }
    for (i, p) in se.ports.iter().enumerate() {
        let proto = p.protocol.as_deref().unwrap_or("").to_ascii_uppercase();
        if !matches!(proto.as_str(), "HTTP" | "TLS" | "GRPC" | "HTTP2") {
            r.err(
                &s.k("ports").i(i).k("protocol"),
                "resolution DYNAMIC_DNS serves HTTP, TLS, GRPC and HTTP2 ports only",
            );
        }
    }
}

fn endpoint_ports(
    r: &mut Report,
    p: &P,
    we: &WorkloadEntrySpec,
    service_ports: Option<&HashSet<&str>>,
) {
    for (name, port) in &we.ports {
        let pp = p.k("ports").k(name);
        if let Some(names) = service_ports {
            if !names.contains(name.as_str()) {
                let known: Vec<&str> = names.iter().copied().collect();
                r.err_help(
                    &pp,
                    format!("port name \"{name}\" is not one of the ServiceEntry's ports"),
                    format!("known: {}", known.join(", ")),
                );
            }
        }
        if !is_dns1123_label(name) {
            r.err(&pp, format!("\"{name}\" is not a valid port name"));
        }
        port_number(r, &pp, Some(*port), true);
    }
}

/// Istio's `validateWorkloadEntry`; `dns_names` when the address may be a host name.
pub(super) fn workload_entry(
    r: &mut Report,
    p: &P,
    we: &WorkloadEntrySpec,
    service_ports: Option<&HashSet<&str>>,
    dns_names: bool,
) {
    let addr = we.address.as_deref().unwrap_or("");
    if addr.is_empty() {
        match we.network.as_deref() {
            None | Some("") => {
                r.err_help(
                    p,
                    "address is required",
                    "add `address: 10.0.0.1` (or a host name)",
                );
                return;
            }
            Some(n) => r.warn(
                p,
                format!("the address is unset, with network \"{n}\""),
                None,
            ),
        }
    }
    if let Some(path) = addr.strip_prefix("unix://") {
        if !(path.starts_with('@') || (path.starts_with('/') && !path.ends_with('/'))) {
            r.err(
                &p.k("address"),
                format!("\"{path}\" is not an absolute path to a unix socket"),
            );
        }
        if !we.ports.is_empty() {
            r.err(&p.k("ports"), "a unix socket endpoint takes no ports");
        }
        if service_ports.is_some_and(|s| s.len() != 1) {
            r.err(
                &p.k("address"),
                "a unix socket endpoint needs a ServiceEntry with exactly one port",
            );
        }
    } else if !addr.is_empty() && !is_ip(addr) {
        if !dns_names {
            r.err_help(
                &p.k("address"),
                format!("\"{addr}\" is not an IP address, which STATIC resolution requires"),
                "use resolution: DNS for host names",
            );
        } else if fqdn(addr).is_err() {
            r.err(
                &p.k("address"),
                format!("\"{addr}\" is not a host name or an IP address"),
            );
        }
    }
    endpoint_ports(r, p, we, service_ports);
    labels(r, &p.k("labels"), &we.labels);
}

pub(super) fn secret(r: &mut Report, sec: &sluice_api::core::SecretBody) {
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
