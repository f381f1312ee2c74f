//! How VirtualServices attach to Gateways: gateway references and server host rules.
use crate::hosts;

/// Resolves a VirtualService's gateway reference to `(namespace, name)`: `name` and `./name`
/// mean the VirtualService's namespace; `ns/name`; the legacy `name.ns.svc.cluster.local`.
/// `None` for `mesh`.
pub fn gateway_ref(reference: &str, vs_namespace: &str) -> Option<(String, String)> {
    if reference == "mesh" {
        return None;
    }
    if let Some((ns, name)) = reference.split_once('/') {
        let ns = if ns == "." { vs_namespace } else { ns };
        return Some((ns.to_string(), name.to_string()));
    }
    if let Some((name, rest)) = reference.split_once('.') {
        if let Some((ns, _)) = rest.split_once(".svc.") {
            return Some((ns.to_string(), name.to_string()));
        }
        // `name.ns` is also accepted by Istio's legacy resolution.
        if !rest.contains('.') {
            return Some((rest.to_string(), name.to_string()));
        }
    }
    Some((vs_namespace.to_string(), reference.to_string()))
}

/// A server `hosts` entry, `[namespace/]dnsName`.
pub struct ServerHost<'a> {
    pub namespace: &'a str,
    pub host: &'a str,
}

impl<'a> ServerHost<'a> {
    pub fn parse(entry: &'a str) -> Self {
        match entry.split_once('/') {
            Some((ns, host)) => ServerHost {
                namespace: ns,
                host,
            },
            None => ServerHost {
                namespace: "*",
                host: entry,
            },
        }
    }

    /// May a VirtualService in `vs_namespace` bind here (the Gateway living in `gw_namespace`)?
    pub fn admits_namespace(&self, vs_namespace: &str, gw_namespace: &str) -> bool {
        match self.namespace {
            "*" => true,
            "." => vs_namespace == gw_namespace,
            ns => ns == vs_namespace,
        }
    }

    /// The virtual host name this server gives `vs_host` (the narrower of the two), if any.
    pub fn bind<'b>(
        &'b self,
        vs_host: &'b str,
        vs_namespace: &str,
        gw_namespace: &str,
    ) -> Option<&'b str> {
        if !self.admits_namespace(vs_namespace, gw_namespace) {
            return None;
        }
        hosts::intersect(self.host, vs_host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            gateway_ref("gw", "default"),
            Some(("default".into(), "gw".into()))
        );
        assert_eq!(
            gateway_ref("./gw", "default"),
            Some(("default".into(), "gw".into()))
        );
        assert_eq!(
            gateway_ref("istio-system/gw", "default"),
            Some(("istio-system".into(), "gw".into()))
        );
        assert_eq!(
            gateway_ref("gw.istio-system.svc.cluster.local", "d"),
            Some(("istio-system".into(), "gw".into()))
        );
        assert_eq!(gateway_ref("mesh", "d"), None);
    }

    #[test]
    fn server_hosts() {
        let s = ServerHost::parse("./*.example.com");
        assert_eq!(
            s.bind("a.example.com", "gwns", "gwns"),
            Some("a.example.com")
        );
        assert_eq!(s.bind("a.example.com", "other", "gwns"), None);
        let s = ServerHost::parse("prod/*");
        assert_eq!(s.bind("x.com", "prod", "gwns"), Some("x.com"));
        assert_eq!(s.bind("x.com", "dev", "gwns"), None);
    }
}
