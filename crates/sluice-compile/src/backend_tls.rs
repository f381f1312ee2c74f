//! BackendTLSPolicy: TLS from the gateway to a Service, by policy attached to the Service (or
//! one of its ports by `sectionName`). As in Istio, a DestinationRule's own `tls` wins; the
//! policy applies to every route to the Service, whichever API routed the request.
use crate::tls::{Pem, UpstreamTls};
use sluice_api::gateway_api::{BackendTlsPolicySpec, SubjectAltNameType};
use sluice_config::{Kind, Object, Store};
use std::sync::Arc;

/// The ConfigMap key that holds a PEM CA bundle.
pub const CA_KEY: &str = "ca.crt";

/// How specific a policy's target is: a port (`sectionName`) beats the whole Service.
fn targets(spec: &BackendTlsPolicySpec, service: &str, port_name: &str) -> Option<u8> {
    spec.target_refs
        .iter()
        .filter(|t| {
            t.group.as_deref().is_none_or(str::is_empty)
                && t.kind.as_deref().is_none_or(|k| k == "Service")
                && t.name.as_deref() == Some(service)
        })
        .filter_map(|t| match t.section_name.as_deref() {
            None => Some(0),
            Some(s) if s == port_name => Some(1),
            Some(_) => None,
        })
        .max()
}

/// The policies in the Service's namespace that target this port, winner first: the more
/// specific target, then the oldest (creation time, then `namespace/name`), as the spec orders
/// conflicting policies.
pub fn policies_for<'s>(
    store: &'s Store,
    namespace: &str,
    service: &str,
    port_name: &str,
) -> Vec<&'s Arc<Object>> {
    let mut found: Vec<(u8, &Arc<Object>)> = store
        .of_kind(Kind::BackendTlsPolicy)
        .filter(|p| p.namespace == namespace)
        .filter_map(|p| Some((targets(p.backend_tls_policy()?, service, port_name)?, p)))
        .collect();
    found.sort_by(|(sa, a), (sb, b)| {
        sb.cmp(sa)
            .then_with(|| crate::compile::gateway_api::oldest_first(a, b))
    });
    found.into_iter().map(|(_, p)| p).collect()
}

/// Why a policy cannot be applied: the spec's reason and a message.
pub type Refused = (&'static str, String);

/// The CA bundle of a ConfigMap reference in the policy's namespace.
pub fn config_map_ca(store: &Store, namespace: &str, name: &str) -> Result<Arc<[u8]>, Refused> {
    let cm = store
        .get(Kind::ConfigMap, namespace, name)
        .and_then(|o| o.config_map())
        .ok_or_else(|| {
            (
                "InvalidCACertificateRef",
                format!("ConfigMap {namespace}/{name} not found"),
            )
        })?;
    let pem = cm
        .data
        .get(CA_KEY)
        .filter(|v| v.contains("BEGIN CERTIFICATE"));
    pem.map(|v| Arc::from(v.as_bytes())).ok_or_else(|| {
        (
            "InvalidCACertificateRef",
            format!("ConfigMap {namespace}/{name} has no PEM certificate under `{CA_KEY}`"),
        )
    })
}

/// The upstream TLS a policy asks for: SNI `hostname`, the backend's certificate checked
/// against the CA bundles (or the public roots for `System`) and against `subjectAltNames`
/// (else the hostname).
pub fn upstream(store: &Store, policy: &Object) -> Result<UpstreamTls, Refused> {
    let spec = policy.backend_tls_policy().expect("kind");
    let v = spec.validation.as_ref().ok_or_else(|| {
        (
            "NoValidCACertificate",
            "the policy has no validation".to_string(),
        )
    })?;
    let ca = if v.ca_certificate_refs.is_empty() {
        None // wellKnownCACertificates: System
    } else {
        let mut bundle = Vec::new();
        for r in &v.ca_certificate_refs {
            if r.group.as_deref().is_some_and(|g| !g.is_empty())
                || r.kind.as_deref() != Some("ConfigMap")
            {
                return Err((
                    "InvalidKind",
                    format!(
                        "caCertificateRefs kind {} is not supported (only ConfigMaps)",
                        r.kind.as_deref().unwrap_or("")
                    ),
                ));
            }
            let pem = config_map_ca(store, &policy.namespace, r.name.as_deref().unwrap_or(""))?;
            bundle.extend_from_slice(&pem);
            bundle.push(b'\n');
        }
        Some(Pem::Inline(Arc::from(bundle)))
    };
    let uris: Vec<String> = v
        .subject_alt_names
        .iter()
        .filter(|s| s.type_ == Some(SubjectAltNameType::Uri))
        .filter_map(|s| s.uri.clone())
        .collect();
    let hostnames: Vec<String> = v
        .subject_alt_names
        .iter()
        .filter(|s| s.type_ == Some(SubjectAltNameType::Hostname))
        .filter_map(|s| s.hostname.clone())
        .collect();
    // URI names are checked as the mesh checks workload identities (chain, then a URI SAN);
    // validate warns when both kinds are given, since then only the hostnames are checked.
    let mesh = hostnames.is_empty() && !uris.is_empty();
    Ok(UpstreamTls {
        ca,
        client_cert: None,
        sni: v.hostname.clone(),
        subject_alt_names: if mesh { uris } else { hostnames },
        insecure_skip_verify: false,
        mesh,
    })
}
