//! Cross-namespace references: Istio allows them freely, the Gateway API only with a
//! ReferenceGrant in the target's namespace. Every reference the conversion makes across
//! namespaces is collected here, and one grant per (target namespace, source namespace and
//! kind, target kind) is written naming each target.
use crate::Output;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Grants {
    /// (to namespace, from kind, from namespace, to kind) → target names.
    needed: BTreeMap<(String, &'static str, String, &'static str), Vec<String>>,
}

impl Grants {
    /// A `from_kind` in `from_ns` refers to `to_kind` `to_ns/to_name`.
    pub fn need(
        &mut self,
        (from_kind, from_ns): (&'static str, &str),
        (to_kind, to_ns, to_name): (&'static str, &str, &str),
    ) {
        if from_ns == to_ns {
            return;
        }
        let names = self
            .needed
            .entry((to_ns.into(), from_kind, from_ns.into(), to_kind))
            .or_default();
        if !names.iter().any(|n| n == to_name) {
            names.push(to_name.into());
        }
    }

    pub fn into_outputs(self) -> Vec<Output> {
        self.needed
            .into_iter()
            .map(|((to_ns, from_kind, from_ns, to_kind), names)| {
                let name = format!(
                    "from-{from_ns}-{}-to-{}",
                    from_kind.to_ascii_lowercase(),
                    to_kind.to_ascii_lowercase()
                );
                let group = if to_kind == "Service" || to_kind == "Secret" { "" } else { sluice_api::gateway_api::GROUP };
                let to: Vec<_> = names
                    .iter()
                    .map(|n| json!({ "group": group, "kind": to_kind, "name": n }))
                    .collect();
                let mut o = Output::new(
                    "ReferenceGrant",
                    &to_ns,
                    &name,
                    json!({
                        "from": [{ "group": sluice_api::gateway_api::GROUP, "kind": from_kind, "namespace": from_ns }],
                        "to": to,
                    }),
                );
                o.comments.push(format!(
                    "Lets {from_kind}s in namespace {from_ns} refer to these {to_kind}s in {to_ns}, as the source objects did."
                ));
                o
            })
            .collect()
    }
}

/// A listener's `certificateRefs` entry for a Secret Istio reads in the gateway's namespace.
pub fn secret_ref(
    grants: &mut Grants,
    gateway_ns: &str,
    secret_ns: &str,
    name: &str,
) -> serde_json::Value {
    grants.need(("Gateway", gateway_ns), ("Secret", secret_ns, name));
    if secret_ns == gateway_ns {
        json!({ "group": "", "kind": "Secret", "name": name })
    } else {
        json!({ "group": "", "kind": "Secret", "name": name, "namespace": secret_ns })
    }
}
