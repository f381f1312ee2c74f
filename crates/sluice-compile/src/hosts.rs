//! Host names as Istio compares them: exact names, `*`, and left-most wildcards `*.suffix`.

/// Expands a short name (`demo`) to `demo.<namespace>.svc.<suffix>`; names with a dot and
/// wildcards stay as written.
pub fn fqdn(host: &str, namespace: &str, domain_suffix: &str) -> String {
    if host == "*" || host.starts_with("*.") || host.contains('.') {
        host.to_ascii_lowercase()
    } else {
        service_fqdn(&host.to_ascii_lowercase(), namespace, domain_suffix)
    }
}

/// The host name of Kubernetes Service `name` in `namespace`: `<name>.<namespace>.svc.<suffix>`.
pub fn service_fqdn(name: &str, namespace: &str, domain_suffix: &str) -> String {
    format!("{name}.{namespace}.svc.{domain_suffix}")
}

/// Does the (possibly wildcard) `pattern` cover the concrete or wildcard `host`?
/// `*.example.com` covers `a.example.com` and `*.a.example.com`, but not `example.com`; case is
/// ignored (DNS names are case-insensitive).
pub fn covers(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => {
            host.len() > suffix.len()
                && host.as_bytes()[host.len() - suffix.len()..]
                    .eq_ignore_ascii_case(suffix.as_bytes())
                && host != "*"
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// The narrower of two host names when they intersect (the name a virtual host takes), else None.
pub fn intersect<'a>(a: &'a str, b: &'a str) -> Option<&'a str> {
    if covers(a, b) {
        Some(b)
    } else if covers(b, a) {
        Some(a)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_rules() {
        assert!(covers("*", "a.com"));
        assert!(covers("*.example.com", "a.example.com"));
        assert!(covers("*.example.com", "a.b.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(covers("*.example.com", "*.a.example.com"));
        assert!(!covers("a.example.com", "*.example.com"));
        assert_eq!(
            intersect("*.example.com", "a.example.com"),
            Some("a.example.com")
        );
        assert_eq!(intersect("*", "*.x.com"), Some("*.x.com"));
        assert_eq!(intersect("a.com", "b.com"), None);
    }

    #[test]
    fn short_names_expand() {
        assert_eq!(
            fqdn("demo", "default", "cluster.local"),
            "demo.default.svc.cluster.local"
        );
        assert_eq!(fqdn("demo.other", "default", "cluster.local"), "demo.other");
        assert_eq!(fqdn("*", "default", "cluster.local"), "*");
    }
}
