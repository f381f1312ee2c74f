//! The ResourceStore: every object with its origin, in Istio's order, indexed for compile.
use crate::diag::{Origin, ResourceRef};
use crate::yaml::{Node, Seg};
use sluice_api::core::{ConfigMapBody, EndpointSliceBody, SecretBody, ServiceSpec};
use sluice_api::gateway_api::{
    BackendTlsPolicySpec, GatewayClassSpec, GrpcRouteSpec, HttpRouteSpec, KubeGatewaySpec,
    L4RouteSpec, ListenerSetSpec, ReferenceGrantSpec, TlsRouteSpec,
};
use sluice_api::ingress::{IngressClassSpec, IngressSpec};
use sluice_api::istio::{
    DestinationRuleSpec, GatewaySpec, ServiceEntrySpec, VirtualServiceSpec, WorkloadEntrySpec,
};
use sluice_api::ObjectMeta;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Gateway,
    VirtualService,
    DestinationRule,
    ServiceEntry,
    WorkloadEntry,
    Secret,
    Service,
    EndpointSlice,
    /// `v1/Namespace`: its labels select Routes for Gateway API `allowedRoutes`.
    Namespace,
    /// `v1/Pod`, its metadata only: the labels of an EndpointSlice endpoint's `targetRef`, so
    /// DestinationRule subsets select Kubernetes endpoints.
    Pod,
    GatewayClass,
    /// The Gateway API's `Gateway` (`gateway.networking.k8s.io`), not Istio's.
    KubeGateway,
    HttpRoute,
    TlsRoute,
    TcpRoute,
    ReferenceGrant,
    GrpcRoute,
    BackendTlsPolicy,
    /// `v1/ConfigMap`: CA bundles for BackendTLSPolicy and frontend client validation.
    ConfigMap,
    /// `networking.k8s.io/v1` Ingress and IngressClass, served as Istio serves them.
    Ingress,
    IngressClass,
    /// Gateway API ListenerSet: listeners added to a Gateway that allows them.
    ListenerSet,
}

impl Kind {
    pub const ALL: [Kind; 22] = [
        Kind::Gateway,
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::ServiceEntry,
        Kind::WorkloadEntry,
        Kind::Secret,
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Namespace,
        Kind::Pod,
        Kind::GatewayClass,
        Kind::KubeGateway,
        Kind::HttpRoute,
        Kind::TlsRoute,
        Kind::TcpRoute,
        Kind::ReferenceGrant,
        Kind::GrpcRoute,
        Kind::BackendTlsPolicy,
        Kind::ConfigMap,
        Kind::Ingress,
        Kind::IngressClass,
        Kind::ListenerSet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gateway => "Gateway",
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::Secret => "Secret",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::GatewayClass => "GatewayClass",
            Kind::KubeGateway => "Gateway",
            Kind::HttpRoute => "HTTPRoute",
            Kind::TlsRoute => "TLSRoute",
            Kind::TcpRoute => "TCPRoute",
            Kind::ReferenceGrant => "ReferenceGrant",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::BackendTlsPolicy => "BackendTLSPolicy",
            Kind::ConfigMap => "ConfigMap",
            Kind::Ingress => "Ingress",
            Kind::IngressClass => "IngressClass",
            Kind::ListenerSet => "ListenerSet",
        }
    }

    /// A Gateway API object with `listeners`: a Gateway, or a ListenerSet attached to one.
    pub fn owns_listeners(self) -> bool {
        matches!(self, Kind::KubeGateway | Kind::ListenerSet)
    }

    /// The apiVersion to write for this kind.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Secret | Kind::Service | Kind::Namespace | Kind::ConfigMap | Kind::Pod => "v1",
            Kind::EndpointSlice => "discovery.k8s.io/v1",
            Kind::GatewayClass
            | Kind::KubeGateway
            | Kind::HttpRoute
            | Kind::TlsRoute
            | Kind::TcpRoute
            | Kind::ReferenceGrant
            | Kind::GrpcRoute
            | Kind::BackendTlsPolicy
            | Kind::ListenerSet => "gateway.networking.k8s.io/v1",
            Kind::Ingress | Kind::IngressClass => "networking.k8s.io/v1",
            _ => "networking.istio.io/v1",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
// Objects live behind an Arc in the Store; variant size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Body {
    Gateway(GatewaySpec),
    VirtualService(VirtualServiceSpec),
    DestinationRule(DestinationRuleSpec),
    ServiceEntry(ServiceEntrySpec),
    WorkloadEntry(WorkloadEntrySpec),
    Secret(SecretBody),
    Service(ServiceSpec),
    EndpointSlice(EndpointSliceBody),
    /// Only its metadata (labels) matters.
    Namespace,
    /// Only its metadata (labels) matters; `spec` and `status` are not read.
    Pod,
    GatewayClass(GatewayClassSpec),
    KubeGateway(KubeGatewaySpec),
    HttpRoute(HttpRouteSpec),
    TlsRoute(TlsRouteSpec),
    TcpRoute(L4RouteSpec),
    ReferenceGrant(ReferenceGrantSpec),
    GrpcRoute(GrpcRouteSpec),
    BackendTlsPolicy(BackendTlsPolicySpec),
    ConfigMap(ConfigMapBody),
    Ingress(IngressSpec),
    IngressClass(IngressClassSpec),
    ListenerSet(ListenerSetSpec),
}

/// One object as loaded, with enough of its source to point diagnostics at any field.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub kind: Kind,
    pub name: String,
    pub namespace: String,
    pub meta: ObjectMeta,
    pub body: Body,
    pub file: Arc<str>,
    /// The object's node in its document (for `kind: List` items, the item).
    pub node: Arc<Node>,
    /// Load order across all sources; breaks ties in ordering.
    pub seq: usize,
}

macro_rules! accessor {
    ($fn:ident, $variant:ident, $ty:ty) => {
        pub fn $fn(&self) -> Option<&$ty> {
            match &self.body {
                Body::$variant(s) => Some(s),
                _ => None,
            }
        }
    };
}

impl Object {
    accessor!(gateway, Gateway, GatewaySpec);
    accessor!(virtual_service, VirtualService, VirtualServiceSpec);
    accessor!(destination_rule, DestinationRule, DestinationRuleSpec);
    accessor!(service_entry, ServiceEntry, ServiceEntrySpec);
    accessor!(workload_entry, WorkloadEntry, WorkloadEntrySpec);
    accessor!(secret, Secret, SecretBody);
    accessor!(service, Service, ServiceSpec);
    accessor!(endpoint_slice, EndpointSlice, EndpointSliceBody);
    accessor!(gateway_class, GatewayClass, GatewayClassSpec);
    accessor!(kube_gateway, KubeGateway, KubeGatewaySpec);
    accessor!(http_route, HttpRoute, HttpRouteSpec);
    accessor!(tls_route, TlsRoute, TlsRouteSpec);
    accessor!(tcp_route, TcpRoute, L4RouteSpec);
    accessor!(reference_grant, ReferenceGrant, ReferenceGrantSpec);
    accessor!(grpc_route, GrpcRoute, GrpcRouteSpec);
    accessor!(backend_tls_policy, BackendTlsPolicy, BackendTlsPolicySpec);
    accessor!(config_map, ConfigMap, ConfigMapBody);
    accessor!(ingress, Ingress, IngressSpec);
    accessor!(ingress_class, IngressClass, IngressClassSpec);
    accessor!(listener_set, ListenerSet, ListenerSetSpec);

    pub fn resource(&self) -> ResourceRef {
        ResourceRef {
            kind: self.kind.as_str().to_string(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// `namespace/name`, as Istio writes references.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The position of the value at `path` (or of its nearest existing parent).
    pub fn origin_at(&self, path: &[Seg]) -> Origin {
        self.origin_of(self.node.lookup(path))
    }

    /// The position of the key at the end of `path` (for "unknown field" and the like).
    pub fn origin_of_key(&self, path: &[Seg]) -> Origin {
        self.origin_of(self.node.lookup_key(path))
    }

    pub fn origin(&self) -> Origin {
        self.origin_of(&self.node)
    }

    fn origin_of(&self, node: &Node) -> Origin {
        Origin {
            file: self.file.clone(),
            line: node.start.line,
            column: node.start.col,
            end_line: node.end.line,
            end_column: node.end.col,
        }
    }
}

/// Objects in Istio's order: creation time, then name, then namespace; objects without a
/// creation time (the usual case for files) come after those with one, in load order.
fn order_key(o: &Object) -> (bool, &str, &str, &str, usize) {
    match &o.meta.creation_timestamp {
        Some(ts) => (
            false,
            ts.as_str(),
            o.name.as_str(),
            o.namespace.as_str(),
            o.seq,
        ),
        None => (true, "", "", "", o.seq),
    }
}

#[derive(Debug, Default, Clone)]
pub struct Store {
    objects: Vec<Arc<Object>>,
    by_kind: HashMap<Kind, Vec<usize>>,
    by_name: HashMap<(Kind, String, String), usize>,
}

impl Store {
    /// Builds the store. Objects must already be unique by kind/namespace/name (the loader
    /// reports and drops duplicates).
    pub fn new(mut objects: Vec<Object>) -> Store {
        objects.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
        let objects: Vec<Arc<Object>> = objects.into_iter().map(Arc::new).collect();
        let mut by_kind: HashMap<Kind, Vec<usize>> = HashMap::new();
        let mut by_name = HashMap::new();
        for (i, o) in objects.iter().enumerate() {
            by_kind.entry(o.kind).or_default().push(i);
            by_name.insert((o.kind, o.namespace.clone(), o.name.clone()), i);
        }
        Store {
            objects,
            by_kind,
            by_name,
        }
    }

    pub fn objects(&self) -> &[Arc<Object>] {
        &self.objects
    }

    /// Objects of one kind, in Istio's order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Arc<Object>> + '_ {
        self.by_kind
            .get(&kind)
            .into_iter()
            .flatten()
            .map(|&i| &self.objects[i])
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Arc<Object>> {
        self.by_name
            .get(&(kind, namespace.to_string(), name.to_string()))
            .map(|&i| &self.objects[i])
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}
