//! The service registry: every service a route may name, with its ports and endpoints, from
//! ServiceEntry (+ WorkloadEntry) and Kubernetes Service (+ EndpointSlice) objects.
use crate::hosts;
use sluice_api::core::IntOrString;
use sluice_api::istio::Resolution;
use sluice_api::meta::Labels;
use sluice_config::{Kind, Object, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct ServicePort {
    pub number: u32,
    pub name: String,
    pub protocol: String,
    /// Where endpoints listen when they do not name a port of their own.
    pub target_port: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub address: String,
    pub labels: Labels,
    pub weight: u32,
    /// Port by service-port name, when the endpoint says.
    pub ports: BTreeMap<String, u32>,
    /// `region/zone/subzone` (ServiceEntry endpoint or WorkloadEntry `locality`); empty: unknown.
    pub locality: String,
}

impl Endpoint {
    /// The port this endpoint serves `port` on.
    pub fn port_for(&self, port: &ServicePort) -> u32 {
        self.ports
            .get(&port.name)
            .copied()
            .or(port.target_port)
            .unwrap_or(port.number)
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub hostname: String,
    pub namespace: String,
    pub ports: Vec<ServicePort>,
    pub endpoints: Vec<Endpoint>,
    pub resolution: Resolution,
    pub object: Arc<Object>,
}

impl Service {
    pub fn port(&self, number: u32) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.number == number)
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    services: Vec<Service>,
    exact: HashMap<String, usize>,
    wildcards: Vec<usize>,
}

/// The labels of an EndpointSlice endpoint: those of the Pod its `targetRef` names (in the
/// slice's namespace unless it says), none when that Pod is not known.
fn pod_labels(
    store: &Store,
    target: Option<&sluice_api::core::ObjectReference>,
    slice_ns: &str,
) -> Labels {
    let Some(t) = target.filter(|t| t.kind.as_deref().unwrap_or("Pod") == "Pod") else {
        return Labels::new();
    };
    let ns = t.namespace.as_deref().unwrap_or(slice_ns);
    t.name
        .as_deref()
        .and_then(|name| store.get(Kind::Pod, ns, name))
        .map(|pod| pod.meta.labels.clone())
        .unwrap_or_default()
}

impl Registry {
    /// The services a gateway in `viewer_ns` sees: those exported to it (`exportTo`).
    pub fn build(store: &Store, domain_suffix: &str, viewer_ns: &str) -> Registry {
        use crate::visibility::{exported, service_export_to};
        let mut services = Vec::new();
        for o in store.of_kind(Kind::ServiceEntry) {
            let se = o.service_entry().expect("kind");
            if !exported(&se.export_to, &o.namespace, viewer_ns) {
                continue;
            }
            let ports: Vec<ServicePort> = se
                .ports
                .iter()
                .filter_map(|p| {
                    Some(ServicePort {
                        number: p.number?,
                        name: p.name.clone().unwrap_or_default(),
                        protocol: p
                            .protocol
                            .clone()
                            .unwrap_or_else(|| "TCP".into())
                            .to_ascii_uppercase(),
                        target_port: p.target_port,
                    })
                })
                .collect();
            let mut endpoints: Vec<Endpoint> = se
                .endpoints
                .iter()
                .filter_map(|e| {
                    Some(Endpoint {
                        address: e.address.clone()?,
                        labels: e.labels.clone(),
                        weight: e.weight.unwrap_or(1).max(1),
                        ports: e.ports.clone(),
                        locality: e.locality.clone().unwrap_or_default(),
                    })
                })
                .collect();
            if let Some(sel) = &se.workload_selector {
                for we in store
                    .of_kind(Kind::WorkloadEntry)
                    .filter(|w| w.namespace == o.namespace)
                {
                    let spec = we.workload_entry().expect("kind");
                    if let (true, Some(addr)) = (
                        sluice_api::meta::selects(&sel.labels, &spec.labels),
                        &spec.address,
                    ) {
                        endpoints.push(Endpoint {
                            address: addr.clone(),
                            labels: spec.labels.clone(),
                            weight: spec.weight.unwrap_or(1).max(1),
                            ports: spec.ports.clone(),
                            locality: spec.locality.clone().unwrap_or_default(),
                        });
                    }
                }
            }
            let resolution = se.resolution.unwrap_or(Resolution::None);
            for host in &se.hosts {
                // A DNS entry without endpoints reaches the host itself; the name is resolved
                // again for every new upstream connection.
                let by_name = endpoints.is_empty()
                    && matches!(resolution, Resolution::Dns | Resolution::DnsRoundRobin)
                    && !host.starts_with('*');
                let endpoints = if by_name {
                    vec![Endpoint {
                        address: host.clone(),
                        labels: Labels::default(),
                        weight: 1,
                        ports: Default::default(),
                        locality: String::new(),
                    }]
                } else {
                    endpoints.clone()
                };
                services.push(Service {
                    hostname: hosts::fqdn(host, &o.namespace, domain_suffix),
                    namespace: o.namespace.clone(),
                    ports: ports.clone(),
                    endpoints,
                    resolution,
                    object: o.clone(),
                });
            }
        }
        // EndpointSlices by (namespace, service) and WorkloadEntries by namespace, once: a
        // scan of every slice for every Service is quadratic (10,000 of each took seconds).
        let mut slices: HashMap<(&str, &str), Vec<&Arc<Object>>> = HashMap::new();
        for s in store.of_kind(Kind::EndpointSlice) {
            if let Some(svc) = s.meta.labels.get("kubernetes.io/service-name") {
                slices.entry((&s.namespace, svc)).or_default().push(s);
            }
        }
        let mut workload_entries: HashMap<&str, Vec<&Arc<Object>>> = HashMap::new();
        for w in store.of_kind(Kind::WorkloadEntry) {
            workload_entries.entry(&w.namespace).or_default().push(w);
        }
        for o in store.of_kind(Kind::Service) {
            let spec = o.service().expect("kind");
            if !exported(&service_export_to(&o.meta), &o.namespace, viewer_ns) {
                continue;
            }
            let ports: Vec<ServicePort> = spec
                .ports
                .iter()
                .filter_map(|p| {
                    Some(ServicePort {
                        number: u32::try_from(p.port?).ok()?,
                        name: p.name.clone().unwrap_or_default(),
                        protocol: service_port_protocol(
                            p.name.as_deref(),
                            p.protocol.as_deref(),
                            p.app_protocol.as_deref(),
                        ),
                        target_port: match &p.target_port {
                            Some(IntOrString::Int(n)) => u32::try_from(*n).ok(),
                            _ => None,
                        },
                    })
                })
                .collect();
            let mut endpoints = Vec::new();
            let own_slices = slices.get(&(o.namespace.as_str(), o.name.as_str()));
            for slice_obj in own_slices.into_iter().flatten() {
                let slice = slice_obj.endpoint_slice().expect("kind");
                let slice_ports: BTreeMap<String, u32> = slice
                    .ports
                    .iter()
                    .filter_map(|p| {
                        Some((
                            p.name.clone().unwrap_or_default(),
                            u32::try_from(p.port?).ok()?,
                        ))
                    })
                    .collect();
                for ep in &slice.endpoints {
                    if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                        continue;
                    }
                    let labels = pod_labels(store, ep.target_ref.as_ref(), &o.namespace);
                    for addr in &ep.addresses {
                        endpoints.push(Endpoint {
                            address: addr.clone(),
                            labels: labels.clone(),
                            weight: 1,
                            ports: slice_ports.clone(),
                            locality: String::new(),
                        });
                    }
                }
            }
            // As Istio: a Service's selector also picks WorkloadEntries of its namespace (VMs
            // behind a Kubernetes Service); an absent or empty selector picks none.
            if let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) {
                let entries = workload_entries.get(o.namespace.as_str());
                for we in entries.into_iter().flatten() {
                    let we = we.workload_entry().expect("kind");
                    if let (true, Some(addr)) =
                        (sluice_api::meta::selects(selector, &we.labels), &we.address)
                    {
                        endpoints.push(Endpoint {
                            address: addr.clone(),
                            labels: we.labels.clone(),
                            weight: we.weight.unwrap_or(1).max(1),
                            ports: we.ports.clone(),
                            locality: we.locality.clone().unwrap_or_default(),
                        });
                    }
                }
            }
            services.push(Service {
                hostname: hosts::service_fqdn(&o.name, &o.namespace, domain_suffix),
                namespace: o.namespace.clone(),
                ports,
                endpoints,
                resolution: Resolution::Static,
                object: o.clone(),
            });
        }
        let mut exact = HashMap::new();
        let mut wildcards = Vec::new();
        for (i, s) in services.iter().enumerate() {
            if s.hostname.starts_with('*') {
                wildcards.push(i);
            } else {
                // The first definition wins, as Istio keeps the oldest.
                exact.entry(s.hostname.clone()).or_insert(i);
            }
        }
        Registry {
            services,
            exact,
            wildcards,
        }
    }

    /// The service for a fully-qualified host: the exact name, else the most specific wildcard.
    pub fn lookup(&self, fqdn: &str) -> Option<&Service> {
        if let Some(&i) = self.exact.get(fqdn) {
            return Some(&self.services[i]);
        }
        self.wildcards
            .iter()
            .map(|&i| &self.services[i])
            .filter(|s| hosts::covers(&s.hostname, fqdn))
            .max_by_key(|s| s.hostname.len())
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }
}

/// The protocol of a Kubernetes Service port as Istio reads it (its `ConvertProtocol`): UDP
/// is UDP; else `appProtocol` (with the Kubernetes names `kubernetes.io/h2c`, `/ws`, `/wss`)
/// or, without one, the port name; `grpc-web…` first, then the part before the first `-`
/// (`http2-api` → HTTP2). An unknown name is TCP on Istio's well-known TCP ports and sniffed
/// elsewhere; both are written `TCP` here, where only HTTP/2 (which sniffing never picks for
/// a gateway's upstream) changes what sluice does.
pub fn service_port_protocol(
    name: Option<&str>,
    protocol: Option<&str>,
    app_protocol: Option<&str>,
) -> String {
    if protocol.is_some_and(|p| p.eq_ignore_ascii_case("UDP")) {
        return "UDP".into();
    }
    let name = match app_protocol {
        Some("kubernetes.io/h2c") => return "HTTP2".into(),
        Some("kubernetes.io/ws") => return "HTTP".into(),
        Some("kubernetes.io/wss") => return "HTTPS".into(),
        Some(a) => a,
        None => name.unwrap_or(""),
    }
    .to_ascii_lowercase();
    if name.starts_with("grpc-web") {
        return "GRPC-WEB".into();
    }
    let prefix = name.split('-').next().unwrap_or("");
    const KNOWN: [&str; 10] = [
        "tcp",
        "udp",
        "grpc",
        "http",
        "http_proxy",
        "http2",
        "https",
        "tls",
        "mongo",
        "redis",
    ];
    if KNOWN.contains(&prefix) || prefix == "mysql" {
        return prefix.to_ascii_uppercase();
    }
    "TCP".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(yaml: &str) -> Registry {
        let mut l = sluice_config::Loader::new();
        l.add_text("t.yaml".into(), yaml);
        let loaded = l.finish();
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        Registry::build(&Store::new(loaded.objects), "cluster.local", "default")
    }

    #[test]
    fn endpoint_slice_endpoints_carry_their_pods_labels() {
        let r = registry(
            "apiVersion: v1\nkind: Service\nmetadata: {name: demo}\nspec: {ports: [{name: http, port: 80}]}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: demo-x, labels: {kubernetes.io/service-name: demo}}\n\
             addressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n\
             - {addresses: [10.0.0.1], targetRef: {kind: Pod, name: a}}\n\
             - {addresses: [10.0.0.2], targetRef: {kind: Pod, name: gone}}\n\
             - {addresses: [10.0.0.3]}\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {version: v3}}\n",
        );
        let s = r.lookup("demo.default.svc.cluster.local").unwrap();
        let labels: Vec<_> = s
            .endpoints
            .iter()
            .map(|e| e.labels.get("version").cloned())
            .collect();
        assert_eq!(labels, [Some("v3".to_string()), None, None]);
    }

    #[test]
    fn a_service_selector_picks_workload_entries_of_its_namespace() {
        let r = registry(
            "apiVersion: v1\nkind: Service\nmetadata: {name: vm}\nspec: {selector: {app: vm}, ports: [{name: http, port: 80, targetPort: 8080}]}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm-1}\nspec: {address: 10.1.0.1, labels: {app: vm, version: v1}}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm-2}\nspec: {address: 10.1.0.2, labels: {app: vm}, ports: {http: 9090}}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: other, namespace: elsewhere}\nspec: {address: 10.1.0.3, labels: {app: vm}}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: db}\nspec: {address: 10.1.0.4, labels: {app: db}}\n",
        );
        let s = r.lookup("vm.default.svc.cluster.local").unwrap();
        let port = s.port(80).unwrap();
        let eps: Vec<_> = s
            .endpoints
            .iter()
            .map(|e| (e.address.as_str(), e.port_for(port)))
            .collect();
        assert_eq!(eps, [("10.1.0.1", 8080), ("10.1.0.2", 9090)]);
        assert_eq!(
            s.endpoints[0].labels.get("version").map(String::as_str),
            Some("v1")
        );
    }
}
