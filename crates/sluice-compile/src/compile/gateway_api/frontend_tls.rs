//! A Gateway's `tls.frontend`: client-certificate validation for its HTTPS listeners (and its
//! ListenerSets'), per port or by default.
use super::{granted, parent_gateway};
use crate::backend_tls::{ca_bundle, CaRef, Refused};
use crate::tls::{ClientAuth, Pem};
use sluice_api::gateway_api::{FrontendValidationMode, Listener, TlsConfig};
use sluice_config::{Object, Store};

/// What a listener's frontend validation comes to.
pub(crate) struct Validation {
    /// The CA bundle to check client certificates with (`Ok(None)`: no validation asked for);
    /// `Err` when validation is asked for and no CA reference can be used (the listener is
    /// then not served: `NoValidCACertificate`).
    pub ca: Result<Option<Pem>, Refused>,
    pub client_auth: ClientAuth,
    /// The first CA reference that could not be used (ResolvedRefs).
    pub bad_ref: Option<Refused>,
}

/// The `perPort` entry for the listener's port, else `default`.
fn config<'s>(store: &'s Store, gw: &'s Object, l: &Listener) -> Option<&'s TlsConfig> {
    // A ListenerSet's listeners take their Gateway's frontend validation.
    let frontend = parent_gateway(store, gw)?
        .kube_gateway()?
        .tls
        .as_ref()?
        .frontend
        .as_ref()?;
    frontend
        .per_port
        .iter()
        .find(|p| p.port == l.port)
        .and_then(|p| p.tls.as_ref())
        .or(frontend.default.as_ref())
}

/// The validation of an HTTPS listener: CA bundles from ConfigMaps (`ca.crt`; another
/// namespace only with a ReferenceGrant), a certificate required (`AllowValidOnly`) or checked
/// when presented (`AllowInsecureFallback`).
pub(crate) fn validation(store: &Store, gw: &Object, l: &Listener) -> Validation {
    let none = Validation {
        ca: Ok(None),
        client_auth: ClientAuth::None,
        bad_ref: None,
    };
    let Some(v) = config(store, gw, l).and_then(|c| c.validation.as_ref()) else {
        return none;
    };
    let owner = parent_gateway(store, gw).map_or(gw, |g| g.as_ref());
    let refs: Vec<CaRef> = v
        .ca_certificate_refs
        .iter()
        .map(|r| CaRef {
            group: r.group.as_deref(),
            kind: r.kind.as_deref(),
            namespace: r.namespace.as_deref().unwrap_or(&owner.namespace),
            name: r.name.as_deref().unwrap_or(""),
        })
        .collect();
    let permitted = |r: &CaRef| {
        if r.namespace == owner.namespace
            || granted(
                store,
                &owner.namespace,
                "Gateway",
                (r.namespace, "", "ConfigMap", r.name),
            )
        {
            Ok(())
        } else {
            Err((
                "RefNotPermitted",
                format!(
                    "ConfigMap {}/{} is in another namespace and no ReferenceGrant there allows it",
                    r.namespace, r.name
                ),
            ))
        }
    };
    let (pem, bad_ref) = ca_bundle(store, &refs, "InvalidCACertificateKind", permitted);
    let ca = match pem {
        Some(pem) => Ok(Some(pem)),
        None => Err((
            "NoValidCACertificate",
            match &bad_ref {
                Some((_, why)) => format!("no client CA can be used: {why}"),
                None => "frontend validation has no caCertificateRefs".into(),
            },
        )),
    };
    Validation {
        ca,
        client_auth: match v.mode {
            Some(FrontendValidationMode::AllowInsecureFallback) => ClientAuth::Optional,
            _ => ClientAuth::Required,
        },
        bad_ref,
    }
}

/// Whether any frontend validation of the Gateway admits clients without a certificate (the
/// Gateway's `InsecureFrontendValidationMode` condition).
pub(crate) fn insecure_fallback(gw: &Object) -> bool {
    let Some(f) = gw
        .kube_gateway()
        .and_then(|g| g.tls.as_ref()?.frontend.as_ref())
    else {
        return false;
    };
    f.default
        .iter()
        .chain(f.per_port.iter().filter_map(|p| p.tls.as_ref()))
        .filter_map(|c| c.validation.as_ref()?.mode)
        .any(|m| m == FrontendValidationMode::AllowInsecureFallback)
}
