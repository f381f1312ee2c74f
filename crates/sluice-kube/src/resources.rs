//! The resources Kubernetes mode watches: what the loader serves, at the versions clusters
//! serve them.
use kube::api::{ApiResource, GroupVersionKind};

pub struct Watched {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    /// Read through the metadata projection (`PartialObjectMetadata`): only labels matter.
    pub metadata_only: bool,
}

impl Watched {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (`plural` for the core group), as kubectl names resources.
    pub fn resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }
}

const fn w(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Watched {
    Watched {
        group,
        version,
        kind,
        plural,
        namespaced,
        metadata_only: false,
    }
}

const ISTIO: &str = "networking.istio.io";
const GATEWAY_API: &str = "gateway.networking.k8s.io";

/// Everything the loader serves. A resource the API server does not serve (a CRD not
/// installed) counts as empty. ConfigMaps carry CA bundles for BackendTLSPolicy.
pub static RESOURCES: &[Watched] = &[
    w(ISTIO, "v1", "Gateway", "gateways", true),
    w(ISTIO, "v1", "VirtualService", "virtualservices", true),
    w(ISTIO, "v1", "DestinationRule", "destinationrules", true),
    w(ISTIO, "v1", "ServiceEntry", "serviceentries", true),
    w(ISTIO, "v1", "WorkloadEntry", "workloadentries", true),
    w(GATEWAY_API, "v1", "GatewayClass", "gatewayclasses", false),
    w(GATEWAY_API, "v1", "Gateway", "gateways", true),
    w(GATEWAY_API, "v1", "ListenerSet", "listenersets", true),
    w(GATEWAY_API, "v1", "HTTPRoute", "httproutes", true),
    w(GATEWAY_API, "v1", "GRPCRoute", "grpcroutes", true),
    w(
        GATEWAY_API,
        "v1",
        "BackendTLSPolicy",
        "backendtlspolicies",
        true,
    ),
    w(GATEWAY_API, "v1", "TLSRoute", "tlsroutes", true),
    w(GATEWAY_API, "v1", "TCPRoute", "tcproutes", true),
    w(
        GATEWAY_API,
        "v1beta1",
        "ReferenceGrant",
        "referencegrants",
        true,
    ),
    w("", "v1", "Service", "services", true),
    w(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
    ),
    w("", "v1", "Namespace", "namespaces", false),
    w("networking.k8s.io", "v1", "Ingress", "ingresses", true),
    w(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        false,
    ),
    w("", "v1", "Secret", "secrets", true),
    w("", "v1", "ConfigMap", "configmaps", true),
    Watched {
        metadata_only: true,
        ..w("", "v1", "Pod", "pods", true)
    },
];
