//! Istio's `exportTo`, one rule for every kind that has it (VirtualService, DestinationRule,
//! ServiceEntry, and a Service's `networking.istio.io/exportTo` annotation): what a gateway in
//! one namespace sees of objects in another.

/// The annotation that gives a Kubernetes Service an `exportTo`.
pub const SERVICE_EXPORT_ANNOTATION: &str = "networking.istio.io/exportTo";

/// Whether an object in `owner_ns` with this `exportTo` is visible from `viewer_ns`: `*` (also
/// when the list is empty, Istio's default) everywhere, `.` its own namespace, `~` nowhere, a
/// name that namespace.
pub fn exported<S: AsRef<str>>(export_to: &[S], owner_ns: &str, viewer_ns: &str) -> bool {
    export_to.is_empty()
        || export_to.iter().any(|e| match e.as_ref() {
            "*" => true,
            "." => owner_ns == viewer_ns,
            "~" => false,
            ns => ns == viewer_ns,
        })
}

/// A Service's `exportTo` annotation (comma-separated), as a list.
pub fn service_export_to(meta: &sluice_api::meta::ObjectMeta) -> Vec<&str> {
    meta.annotations
        .get(SERVICE_EXPORT_ANNOTATION)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::exported;

    #[test]
    fn export_to_as_istio_reads_it() {
        let none: [&str; 0] = [];
        assert!(exported(&none, "default", "istio-system"));
        assert!(exported(&["*"], "default", "istio-system"));
        assert!(!exported(&["."], "default", "istio-system"));
        assert!(exported(&["."], "istio-system", "istio-system"));
        assert!(exported(&["istio-system"], "default", "istio-system"));
        assert!(!exported(&["other"], "default", "istio-system"));
        assert!(!exported(&["~"], "default", "default"));
        assert!(exported(&[".", "istio-system"], "default", "istio-system"));
    }
}
