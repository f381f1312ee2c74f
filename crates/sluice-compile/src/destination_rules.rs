//! Which DestinationRule applies to a service, as Istio decides it. One place, used by the
//! compile (clusters) and the analysis (subset references), so `validate` and traffic agree.
use crate::hosts;
use crate::visibility::exported;
use sluice_api::istio::DestinationRuleSpec;
use sluice_config::{Kind, Object, Store};
use std::sync::Arc;

/// Istio's root namespace: DestinationRules there apply mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The rule for `fqdn` seen from a gateway in `gateway_ns`, in Istio's tiers: the gateway's
/// namespace, then the service's namespace (if exported to the gateway), then the root
/// namespace (if exported). Within a tier the exact host beats the most specific wildcard, and
/// rules for the same host merge (oldest first; its traffic policy kept, subsets combined, the
/// first of a name winning).
pub fn for_host(
    store: &Store,
    fqdn: &str,
    service_ns: &str,
    gateway_ns: &str,
    domain_suffix: &str,
) -> Option<DestinationRuleSpec> {
    for (tier, ns) in [gateway_ns, service_ns, ROOT_NAMESPACE].iter().enumerate() {
        let candidates: Vec<(&Arc<Object>, String)> = store
            .of_kind(Kind::DestinationRule)
            .filter(|o| o.namespace == *ns)
            .filter_map(|o| {
                let spec = o.destination_rule()?;
                let host = hosts::fqdn(spec.host.as_deref()?, &o.namespace, domain_suffix);
                let visible = tier == 0 || exported(&spec.export_to, &o.namespace, gateway_ns);
                (visible && hosts::covers(&host, fqdn)).then_some((o, host))
            })
            .collect();
        let Some(best) = candidates.iter().map(|(_, h)| h).max_by_key(|h| {
            if h.as_str() == fqdn {
                usize::MAX
            } else {
                h.len()
            }
        }) else {
            continue;
        };
        let mut merged: Option<DestinationRuleSpec> = None;
        for (o, _) in candidates.iter().filter(|(_, h)| h == best) {
            let spec = o.destination_rule().expect("kind");
            match &mut merged {
                None => merged = Some(spec.clone()),
                Some(m) => {
                    for s in &spec.subsets {
                        if !m.subsets.iter().any(|x| x.name == s.name) {
                            m.subsets.push(s.clone());
                        }
                    }
                }
            }
        }
        return merged;
    }
    None
}
