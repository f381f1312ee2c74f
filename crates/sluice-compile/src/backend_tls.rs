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
pub(crate) fn targets(spec: &BackendTlsPolicySpec, service: &str, port_name: &str) -> Option<u8> {
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

/// A reference to a CA bundle (a ConfigMap, where the reference is usable).
pub struct CaRef<'a> {
    pub group: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The PEM bundle of the usable references (ConfigMaps holding `ca.crt` that `permitted`
/// allows), `None` when none is, and the first reference that could not be used.
/// `kind_reason` is the reason the caller's API gives a reference to another kind.
pub fn ca_bundle(
    store: &Store,
    refs: &[CaRef<'_>],
    kind_reason: &'static str,
    permitted: impl Fn(&CaRef) -> Result<(), Refused>,
) -> (Option<Pem>, Option<Refused>) {
    let mut bundle = Vec::new();
    let mut first_bad = None;
    for r in refs {
        let found = if r.group.is_some_and(|g| !g.is_empty()) || r.kind != Some("ConfigMap") {
            Err((
                kind_reason,
                format!(
                    "caCertificateRefs kind {} is not supported (only ConfigMaps)",
                    r.kind.unwrap_or("")
                ),
            ))
        } else {
            permitted(r).and_then(|()| config_map_ca(store, r.namespace, r.name))
        };
        match found {
            Ok(pem) => {
                bundle.extend_from_slice(&pem);
                bundle.push(b'\n');
            }
            Err(e) => {
                first_bad.get_or_insert(e);
            }
        }
    }
    let pem = (!bundle.is_empty()).then(|| Pem::Inline(Arc::from(bundle)));
    (pem, first_bad)
}

/// The upstream TLS a policy asks for: SNI `hostname`, the backend's certificate checked
/// against the CA bundles (or the public roots for `System`) and against `subjectAltNames`
/// (else the hostname). Also the first CA reference that could not be used: the valid ones
/// still count, and with none valid the policy gives no TLS at all (`Err`, never plaintext).
pub fn upstream(store: &Store, policy: &Object) -> (Result<UpstreamTls, Refused>, Option<Refused>) {
    let spec = policy.backend_tls_policy().expect("kind");
    let no_ca = |why: String| Err(("NoValidCACertificate", why));
    let Some(v) = spec.validation.as_ref() else {
        return (no_ca("the policy has no validation".into()), None);
    };
    let mut first_bad = None;
    let ca = if v.ca_certificate_refs.is_empty() {
        None // wellKnownCACertificates: System
    } else {
        let refs: Vec<CaRef> = v
            .ca_certificate_refs
            .iter()
            .map(|r| CaRef {
                group: r.group.as_deref(),
                kind: r.kind.as_deref(),
                namespace: &policy.namespace,
                name: r.name.as_deref().unwrap_or(""),
            })
            .collect();
        let (pem, bad) = ca_bundle(store, &refs, "InvalidKind", |_| Ok(()));
        first_bad = bad;
        let Some(pem) = pem else {
            let why = first_bad
                .as_ref()
                .map(|(_, m)| m.clone())
                .unwrap_or_default();
            return (
                no_ca(format!("no caCertificateRefs can be used: {why}")),
                first_bad,
            );
        };
        Some(pem)
    };
    let names = |t: SubjectAltNameType| -> Vec<String> {
        v.subject_alt_names
            .iter()
            .filter(|s| s.type_ == Some(t))
            .filter_map(|s| match t {
                SubjectAltNameType::Uri => s.uri.clone(),
                SubjectAltNameType::Hostname => s.hostname.clone(),
            })
            .collect()
    };
    let (uris, hostnames) = (
        names(SubjectAltNameType::Uri),
        names(SubjectAltNameType::Hostname),
    );
    // URI names are checked as the mesh checks workload identities (chain, then a URI SAN);
    // validate warns when both kinds are given, since then only the hostnames are checked.
    let mesh = hostnames.is_empty() && !uris.is_empty();
    let tls = UpstreamTls {
        ca,
        client_cert: None,
        sni: v.hostname.clone(),
        subject_alt_names: if mesh { uris } else { hostnames },
        insecure_skip_verify: false,
        mesh,
    };
    (Ok(tls), first_bad)
}
