//! Istio destinations as Gateway API backendRefs. A backendRef names a Kubernetes Service and a
//! port, so a destination with a `subset` (or a ServiceEntry host that is no Service name) gets
//! a Service of its own: the subset's labels added to the selector, or, for ServiceEntry
//! endpoints, a Service without selector plus EndpointSlices listing the endpoints the subset
//! selects. Weighted splits between subsets then survive as weights between Services.
use crate::names;
use crate::notes::Notes;
use crate::refs::Grants;
use crate::{Options, Output};
use serde_json::{json, Map, Value};
use sluice_api::istio::Destination;
use sluice_api::meta::Labels;
use sluice_compile::registry::{Registry, Service};
use sluice_compile::{destination_rules, hosts};
use sluice_config::validate::P;
use sluice_config::{Kind, Store};
use std::collections::BTreeMap;

pub struct Backends<'s> {
    store: &'s Store,
    opts: &'s Options,
    registry: Registry,
    /// Generated Services and their EndpointSlices, by `namespace/name`.
    generated: BTreeMap<String, Vec<Output>>,
    pub grants: Grants,
}

impl<'s> Backends<'s> {
    pub fn new(store: &'s Store, opts: &'s Options) -> Self {
        Backends {
            store,
            opts,
            registry: Registry::build(
                store,
                &opts.identity.domain_suffix,
                &opts.identity.namespace,
            ),
            generated: BTreeMap::new(),
            grants: Grants::default(),
        }
    }

    pub fn domain_suffix(&self) -> &str {
        &self.opts.identity.domain_suffix
    }

    /// The backendRef (without weight) for a destination, referred to by a `from_kind` in
    /// `from_ns`; `Err` says why there is none.
    pub fn backend_ref(
        &mut self,
        from: (&'static str, &str),
        d: &Destination,
        notes: &mut Notes,
    ) -> Result<Map<String, Value>, String> {
        let suffix = &self.opts.identity.domain_suffix;
        let host = d.host.as_deref().unwrap_or("");
        let fqdn = hosts::fqdn(host, from.1, suffix);
        // Cloned: generating a Service below needs `self` mutably.
        let service = self.registry.lookup(&fqdn).cloned();
        let service = service.as_ref();
        let port = match (d.port.as_ref().and_then(|p| p.number), service) {
            (Some(n), _) => n,
            (None, Some(s)) if s.ports.len() == 1 => s.ports[0].number,
            (None, Some(_)) => {
                return Err(format!(
                    "destination {host} has several ports and names none; a backendRef needs one"
                ))
            }
            (None, None) => {
                return Err(format!(
                    "destination {host} is not a known service and names no port"
                ))
            }
        };
        let (name, ns) = match (names::service_of(&fqdn, suffix), d.subset.as_deref(), service) {
            (Some((name, ns)), None, _) => (name.to_string(), ns.to_string()),
            (_, subset, Some(s)) => self.generate(s, &fqdn, subset, notes)?,
            (None, _, None) => return Err(format!("destination {host} is not a Kubernetes Service and no ServiceEntry here defines it; Istio answers 503 for it")),
            (Some(_), Some(subset), None) => return Err(format!("destination {host} subset {subset}: the service is not known here, so its subset cannot become a Service")),
        };
        self.grants.need(from, ("Service", &ns, &name));
        let mut r = Map::new();
        r.insert("name".into(), json!(name));
        if ns != from.1 {
            r.insert("namespace".into(), json!(ns));
        }
        r.insert("port".into(), json!(port));
        Ok(r)
    }

    /// A Service for `subset` of `s` (or for a ServiceEntry host without one): its name and
    /// namespace. Generated once, however many routes use it.
    fn generate(
        &mut self,
        s: &Service,
        fqdn: &str,
        subset: Option<&str>,
        notes: &mut Notes,
    ) -> Result<(String, String), String> {
        let suffix = &self.opts.identity.domain_suffix;
        let base = match names::service_of(fqdn, suffix) {
            Some((name, _)) => name.to_string(),
            None => names::dashed(fqdn),
        };
        let ns = s.namespace.clone();
        let mut lost_policy = None;
        let (name, labels, why) = match subset {
            None => (
                base,
                Labels::new(),
                format!("ServiceEntry host {fqdn} as a Service, so backendRefs can name it"),
            ),
            Some(subset) => {
                let dr = destination_rules::for_host(
                    self.store,
                    fqdn,
                    &ns,
                    &self.opts.identity.namespace,
                    suffix,
                );
                let found = dr.as_ref().and_then(|dr| {
                    dr.subsets
                        .iter()
                        .find(|x| x.name.as_deref() == Some(subset))
                });
                let Some(found) = found else {
                    return Err(format!("no DestinationRule defines subset {subset} of {fqdn}; Istio answers 503 for it"));
                };
                let name = format!("{base}-{}", names::dashed(subset));
                if !self.generated.contains_key(&format!("{ns}/{name}")) {
                    lost_policy = self.policy_lost(fqdn, subset, &name, notes);
                }
                (
                    name,
                    found.labels.clone(),
                    format!("subset {subset} of {fqdn} (labels {}) as a Service of its own, so weights between subsets become weights between Services.", labels_text(&found.labels)),
                )
            }
        };
        let key = format!("{ns}/{name}");
        if let std::collections::btree_map::Entry::Vacant(slot) = self.generated.entry(key) {
            let mut objects = service_objects(s, &ns, &name, &labels, why);
            objects[0].comments.extend(lost_policy);
            objects[0].value["metadata"]["annotations"] =
                json!({ crate::SOURCE_ANNOTATION: format!("{fqdn}|{}", subset.unwrap_or("")) });
            slot.insert(objects);
        }
        Ok((name, ns))
    }

    /// The DestinationRule's traffic policy (top level or the subset's) names `fqdn`, so it
    /// does not reach the generated Service `name`: warned at the rule.
    fn policy_lost(
        &self,
        fqdn: &str,
        subset: &str,
        name: &str,
        notes: &mut Notes,
    ) -> Option<String> {
        let suffix = &self.opts.identity.domain_suffix;
        for dr in self.store.of_kind(Kind::DestinationRule) {
            let Some(spec) = dr.destination_rule() else {
                continue;
            };
            if hosts::fqdn(spec.host.as_deref().unwrap_or(""), &dr.namespace, suffix) != fqdn {
                continue;
            }
            let Some(i) = spec
                .subsets
                .iter()
                .position(|x| x.name.as_deref() == Some(subset))
            else {
                continue;
            };
            let at = if spec.subsets[i].traffic_policy.is_some() {
                P::spec().k("subsets").i(i).k("trafficPolicy")
            } else if spec.traffic_policy.is_some() {
                P::spec().k("trafficPolicy")
            } else {
                return None;
            };
            return Some(notes.lost(dr, &at, format!("this traffic policy applies to host {fqdn}, not to the Service {name} generated for subset {subset}: write a DestinationRule for {name} to keep it")));
        }
        None
    }

    pub fn into_outputs(self) -> (Vec<Output>, Grants) {
        (
            self.generated.into_values().flatten().collect(),
            self.grants,
        )
    }
}

/// Endpoints that serve the same ports: `(port name, number)` and addresses.
type PortGroup = (Vec<(String, u32)>, Vec<String>);

fn labels_text(l: &Labels) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The generated Service, and EndpointSlices for the endpoints it selects when the source
/// listed them (ServiceEntry endpoints; a Kubernetes Service's Pods are found by the cluster).
fn service_objects(s: &Service, ns: &str, name: &str, labels: &Labels, why: String) -> Vec<Output> {
    let k8s = s.object.service();
    let selector = k8s.and_then(|k| k.selector.clone());
    let ports: Vec<Value> = match k8s {
        Some(k) => k
            .ports
            .iter()
            .map(|p| {
                let mut v = json!({ "name": p.name, "port": p.port });
                if let Some(t) = &p.target_port {
                    v["targetPort"] = match t {
                        sluice_api::core::IntOrString::Int(n) => json!(n),
                        sluice_api::core::IntOrString::String(s) => json!(s),
                    };
                }
                if let Some(a) = &p.app_protocol {
                    v["appProtocol"] = json!(a);
                }
                v
            })
            .collect(),
        None => s
            .ports
            .iter()
            .map(|p| {
                let mut v = json!({ "name": p.name, "port": p.number, "appProtocol": p.protocol.to_ascii_lowercase() });
                if let Some(t) = p.target_port {
                    v["targetPort"] = json!(t);
                }
                v
            })
            .collect(),
    };
    let mut spec = json!({ "ports": ports });
    if let Some(mut sel) = selector {
        sel.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        spec["selector"] = json!(sel);
    }
    let mut service = Output::new("Service", ns, name, spec);
    service
        .comments
        .push(format!("Generated by sluice convert: {why}"));
    let mut out = vec![service];
    if k8s.is_some_and(|k| k.selector.is_some()) {
        return out;
    }
    // Endpoints grouped by the ports they serve: one EndpointSlice per group.
    let mut groups: Vec<PortGroup> = Vec::new();
    for ep in s
        .endpoints
        .iter()
        .filter(|e| sluice_api::meta::selects(labels, &e.labels))
    {
        let ports: Vec<(String, u32)> = s
            .ports
            .iter()
            .map(|p| (p.name.clone(), ep.port_for(p)))
            .collect();
        match groups.iter_mut().find(|(p, _)| *p == ports) {
            Some((_, addrs)) => addrs.push(ep.address.clone()),
            None => groups.push((ports, vec![ep.address.clone()])),
        }
    }
    for (i, (ports, addresses)) in groups.into_iter().enumerate() {
        let address_type = if addresses
            .iter()
            .all(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        {
            "IPv4"
        } else if addresses
            .iter()
            .all(|a| a.parse::<std::net::IpAddr>().is_ok())
        {
            "IPv6"
        } else {
            "FQDN"
        };
        let body = json!({
            "addressType": address_type,
            "ports": ports.iter().map(|(n, p)| json!({ "name": n, "port": p })).collect::<Vec<_>>(),
            "endpoints": addresses.iter().map(|a| json!({ "addresses": [a], "conditions": { "ready": true } })).collect::<Vec<_>>(),
        });
        let mut labels = Map::new();
        labels.insert("kubernetes.io/service-name".into(), json!(name));
        out.push(Output::with_body(
            "EndpointSlice",
            ns,
            &format!("{name}-{}", i + 1),
            body,
            labels,
        ));
    }
    out
}
