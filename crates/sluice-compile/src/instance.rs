//! The gateway instance's own Service, as Istio finds it: Gateway server ports are ports of the
//! Service in front of the gateway pods, and the pods listen on its `targetPort`s.
use sluice_api::core::IntOrString;
use sluice_api::meta::{selects, Labels};
use sluice_config::{Kind, Store};
use std::collections::BTreeMap;

/// Istio's label for a Service whose ports must not be translated.
pub const DISABLE_PORT_TRANSLATION: &str = "experimental.istio.io/disable-gateway-port-translation";

/// Gateway (service) port → the port the instance listens on, from the instance's own Services:
/// Kubernetes Services in its namespace whose selector picks its labels, then ServiceEntries in
/// its namespace with an endpoint at `instance_ip`. The first Service exposing a port decides.
pub fn port_translation(
    store: &Store,
    namespace: &str,
    labels: &Labels,
    instance_ip: Option<&str>,
) -> BTreeMap<u32, u32> {
    let mut out = BTreeMap::new();
    let skipped = |meta: &sluice_api::meta::ObjectMeta| {
        meta.labels
            .get(DISABLE_PORT_TRANSLATION)
            .is_some_and(|v| v != "false")
    };
    for o in store.of_kind(Kind::Service) {
        let spec = o.service().expect("kind");
        let own = o.namespace == namespace
            && spec
                .selector
                .as_ref()
                .is_some_and(|s| !s.is_empty() && selects(s, labels));
        if !own || skipped(&o.meta) {
            continue;
        }
        for p in &spec.ports {
            let Some(port) = p.port.and_then(|p| u32::try_from(p).ok()) else {
                continue;
            };
            // A named targetPort names a container port, which files do not describe.
            let target = match &p.target_port {
                None => Some(port),
                Some(IntOrString::Int(t)) => u32::try_from(*t).ok(),
                Some(IntOrString::String(s)) => s.parse().ok(),
            };
            if let Some(target) = target {
                out.entry(port).or_insert(target);
            }
        }
    }
    let Some(ip) = instance_ip else {
        return out;
    };
    for o in store.of_kind(Kind::ServiceEntry) {
        let spec = o.service_entry().expect("kind");
        let Some(endpoint) = spec
            .endpoints
            .iter()
            .find(|e| e.address.as_deref() == Some(ip))
        else {
            continue;
        };
        if o.namespace != namespace || skipped(&o.meta) {
            continue;
        }
        for p in &spec.ports {
            let Some(port) = p.number else { continue };
            let target = p
                .target_port
                .or_else(|| endpoint.ports.get(p.name.as_deref()?).copied())
                .unwrap_or(port);
            out.entry(port).or_insert(target);
        }
    }
    out
}
