//! Names as Istio checks them: DNS labels (either case, as Istio's `labels.IsDNS1123Label`),
//! host names with a wildcard first label, IP addresses and subnets, Kubernetes label keys and
//! values, localities.
use std::collections::HashMap;

fn is_label_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 label as Istio checks it (upper case allowed), at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && is_label_chars(s)
}

/// A first label that may be a wildcard: `*`, `*foo`, `*-foo` or a plain label.
fn is_wildcard_label(s: &str) -> bool {
    if s.len() > 63 {
        return false;
    }
    let rest = s
        .strip_prefix("*-")
        .or_else(|| s.strip_prefix('*'))
        .unwrap_or(s);
    s == "*" || is_label_chars(rest)
}

fn preconditions(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an empty host name is not allowed".into());
    }
    if name.len() > 255 {
        return Err(format!("host name \"{name}\" is too long (at most 255)"));
    }
    Ok(())
}

/// Dot-separated DNS labels; the top-level one not all digits; a trailing dot allowed.
fn dns1123_labels(domain: &str) -> Result<(), String> {
    let parts: Vec<&str> = domain.split('.').collect();
    let top = parts.last().copied().unwrap_or("");
    if !top.is_empty() && top.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "\"{domain}\" is not a valid host name (the top-level domain \"{top}\" is all digits)"
        ));
    }
    for (i, label) in parts.iter().enumerate() {
        if i == parts.len() - 1 && label.is_empty() {
            break;
        }
        if !is_dns1123_label(label) {
            return Err(format!(
                "\"{domain}\" is not a valid host name (label \"{label}\")"
            ));
        }
    }
    Ok(())
}

/// Istio's `ValidateWildcardDomain`: a host name whose first label may carry a wildcard
/// (`*`, `*.example.com`, and also the partial `*foo.example.com`).
pub fn wildcard_domain(domain: &str) -> Result<(), String> {
    preconditions(domain)?;
    let (first, rest) = match domain.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (domain, None),
    };
    if !is_wildcard_label(first) {
        return Err(format!(
            "\"{domain}\" is not a valid host name (label \"{first}\"; a wildcard goes in the first label only, as in \"*.example.com\")"
        ));
    }
    rest.map_or(Ok(()), dns1123_labels)
}

/// Istio's `ValidateFQDN`: no wildcard anywhere.
pub fn fqdn(domain: &str) -> Result<(), String> {
    preconditions(domain)?;
    dns1123_labels(domain)
}

/// Istio's `ValidatePartialWildCard`: `*` only alone or as the whole first label.
pub fn partial_wildcard(host: &str) -> Result<(), String> {
    if host.contains('*') && host != "*" && !host.starts_with("*.") {
        return Err(format!("partial wildcard \"{host}\" is not allowed"));
    }
    Ok(())
}

/// A host as a VirtualService, DestinationRule or destination may name it.
pub fn host_error(host: &str) -> Option<String> {
    wildcard_domain(host).err()
}

pub fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// Istio's `ValidateIPSubnet`: an address, or CIDR notation.
pub fn ip_subnet(s: &str) -> Result<(), String> {
    if s.matches('/').count() == 1 {
        let (addr, bits) = s.split_once('/').unwrap_or_default();
        let max = match addr.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => 32,
            Ok(std::net::IpAddr::V6(_)) => 128,
            Err(_) => 0,
        };
        return match bits.parse::<u8>() {
            Ok(b) if max > 0 && b <= max && !bits.starts_with('+') => Ok(()),
            _ => Err(format!("\"{s}\" is not a valid CIDR block")),
        };
    }
    if is_ip(s) {
        Ok(())
    } else {
        Err(format!("\"{s}\" is not a valid IP address"))
    }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, Kubernetes' qualified name.
fn is_qualified_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !s.is_empty()
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A Kubernetes label key: `[dns-prefix/]name`, the name at most 63 characters.
pub fn label_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let prefix_ok = prefix.is_none_or(|p| p.len() <= 253 && p.split('.').all(is_dns1123_label));
    if !prefix_ok || !is_qualified_name(name) || name.len() > 63 {
        return Err(format!("\"{k}\" is not a valid label key"));
    }
    Ok(())
}

/// A Kubernetes label value: empty, or a qualified name.
pub fn is_label_value(v: &str) -> bool {
    v.is_empty() || is_qualified_name(v)
}

/// Istio's `validateLocalities`: `region[/zone[/subzone]]`, one trailing `*` at most, no part
/// empty, and no locality covered by an earlier one.
// `impl Trait` needs the lifetime named, so it is used once.
#[allow(single_use_lifetimes)]
pub fn localities<'a>(list: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    // region -> zone -> subzones; "*" marks "everything below".
    let mut seen: HashMap<&str, HashMap<&str, Vec<&str>>> = HashMap::new();
    for loc in list {
        let stars = loc.matches('*').count();
        if stars > 1 || (stars == 1 && !loc.ends_with('*')) {
            return Err(format!(
                "locality \"{loc}\": a '*' may appear once, at the end"
            ));
        }
        let overlap = || Err(format!("locality \"{loc}\" overlaps an earlier one"));
        if seen.contains_key("*") {
            return overlap();
        }
        let parts: Vec<&str> = loc.splitn(3, '/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "locality \"{loc}\" has an empty region, zone or subzone"
            ));
        }
        match parts[..] {
            [region] => {
                let earlier = seen.insert(region, HashMap::from([("*", vec!["*"])]));
                if earlier.is_some() {
                    return overlap();
                }
            }
            [region, zone] => {
                let zones = seen.entry(region).or_default();
                if zones.contains_key("*") || zones.insert(zone, vec!["*"]).is_some() {
                    return overlap();
                }
            }
            [region, zone, subzone] => {
                let zones = seen.entry(region).or_default();
                if zones.contains_key("*") {
                    return overlap();
                }
                let subs = zones.entry(zone).or_default();
                if subs.contains(&"*") || subs.contains(&subzone) {
                    return overlap();
                }
                subs.push(subzone);
            }
            _ => {}
        }
    }
    Ok(())
}
