//! Names of generated objects, as ingress2gateway spells them where it has a rule.

/// A host as a name part: runs of characters other than letters and digits become `-`, leading
/// ones are dropped; no host or `*` is `all-hosts` (ingress2gateway's rule).
pub fn from_host(host: Option<&str>) -> String {
    match host {
        None | Some("") | Some("*") => "all-hosts".into(),
        Some(h) => dashed(h),
    }
}

/// Lower-case letters and digits, every other run of characters one `-`, none at either end: a
/// valid DNS label part (route rule and listener names).
pub fn dashed(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// `(name, namespace)` of the Kubernetes Service a fully-qualified host names, when it is one
/// (`<name>.<namespace>.svc.<suffix>`).
pub fn service_of<'a>(fqdn: &'a str, domain_suffix: &str) -> Option<(&'a str, &'a str)> {
    let rest = fqdn.strip_suffix(domain_suffix)?.strip_suffix(".svc.")?;
    let (name, ns) = rest.split_once('.')?;
    (!ns.contains('.')).then_some((name, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_as_ingress2gateway_names_them() {
        assert_eq!(from_host(Some("foo.example.com")), "foo-example-com");
        assert_eq!(from_host(Some("*.example.com")), "example-com");
        assert_eq!(from_host(None), "all-hosts");
        assert_eq!(from_host(Some("*")), "all-hosts");
        assert_eq!(dashed("Users_Canary v2"), "users-canary-v2");
    }

    #[test]
    fn service_hosts() {
        assert_eq!(
            service_of("demo.default.svc.cluster.local", "cluster.local"),
            Some(("demo", "default"))
        );
        assert_eq!(service_of("api.example.com", "cluster.local"), None);
        assert_eq!(service_of("a.b.c.svc.cluster.local", "cluster.local"), None);
    }
}
