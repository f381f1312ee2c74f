//! `gateway.networking.k8s.io`, Kubernetes Gateway API v1.6 (read from the v1.6.1 tag, standard and
//! experimental channels). Field names and enum values follow the CRD schemas exactly; every
//! field is optional or defaulted, as in `istio.rs`: which fields are required, and the ranges and
//! patterns of values, are validation rules so they can be reported with a location and a fix.
//!
//! In v1.6 every served version of a kind has the same schema (v1beta1 GatewayClass, Gateway,
//! HTTPRoute and ReferenceGrant; v1alpha2/v1alpha3 TLSRoute, v1alpha2 TCPRoute/UDPRoute and
//! v1alpha3 BackendTLSPolicy in the experimental channel), so one set of types reads them all.
//! Fields of the experimental channel are marked "Experimental channel" below.
//!
//! Durations (GEP-2257, e.g. `10s`, `1h30m`, `500ms`) are kept as text and validated later.
//! Status types derive `Serialize` too, since sluice writes them.
use crate::meta::Labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The API group of every kind in this module.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// Kinds and the versions the v1.6 CRDs serve (standard channel first; the experimental channel
/// also serves the deprecated alpha versions listed after it).
pub const SERVED_VERSIONS: &[(&str, &[&str], &[&str])] = &[
    ("GatewayClass", &["v1", "v1beta1"], &[]),
    ("Gateway", &["v1", "v1beta1"], &[]),
    ("HTTPRoute", &["v1", "v1beta1"], &[]),
    ("GRPCRoute", &["v1"], &[]),
    ("TLSRoute", &["v1"], &["v1alpha2", "v1alpha3"]),
    ("TCPRoute", &["v1"], &["v1alpha2"]),
    ("UDPRoute", &["v1"], &["v1alpha2"]),
    ("ReferenceGrant", &["v1", "v1beta1"], &[]),
    ("BackendTLSPolicy", &["v1"], &["v1alpha3"]),
    ("ListenerSet", &["v1"], &[]),
];

macro_rules! gw_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

// ---------------------------------------------------------------- shared

/// A Kubernetes `metav1.LabelSelector` (namespace selectors in `allowedRoutes`/`allowedListeners`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: Labels,
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` entry; `operator` is In, NotIn, Exists or DoesNotExist.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    pub key: Option<String>,
    pub operator: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
}

/// `ParentReference`: a Route's (or a status entry's) reference to a Gateway, ListenerSet or Service.
/// Defaults: group `gateway.networking.k8s.io`, kind `Gateway`, namespace of the Route.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// `ParentGatewayReference`: a ListenerSet's reference to its Gateway (default kind `Gateway`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParentGatewayReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// `LocalObjectReference`: group, kind and name in the referrer's namespace (`""` = core group).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
}

/// `SecretObjectReference`: defaults group `""`, kind `Secret`; cross-namespace needs a ReferenceGrant.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretObjectReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// `ObjectReference`: group, kind, name and optional namespace (e.g. frontend CA ConfigMaps).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// `BackendObjectReference`: defaults group `""`, kind `Service`; `port` is required for Services.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackendObjectReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub port: Option<i32>,
}

/// `BackendRef` (TLS/TCP/UDP routes): a backend object reference plus `weight` (default 1, 0..=1e6).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub port: Option<i32>,
    pub weight: Option<i32>,
}

gw_enum!(
    /// `GatewayDefaultScope` (Experimental channel): `Gateway.spec.defaultScope`, `useDefaultGateways`.
    GatewayDefaultScope {
        All = "All",
        None = "None",
    }
);

/// `LocalPolicyTargetReferenceWithSectionName`: a policy's same-namespace target.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalPolicyTargetReferenceWithSectionName {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub section_name: Option<String>,
}

/// `Fraction`: numerator/denominator (denominator defaults to 100, numerator <= denominator).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Fraction {
    pub numerator: Option<i32>,
    pub denominator: Option<i32>,
}

gw_enum!(
    /// `SessionPersistenceType` (default `Cookie`).
    SessionPersistenceType {
        Cookie = "Cookie",
        Header = "Header",
    }
);

gw_enum!(
    /// `CookieLifetimeType` (default `Session`).
    CookieLifetimeType {
        Permanent = "Permanent",
        Session = "Session",
    }
);

/// `SessionPersistence` (Experimental channel) on HTTPRoute and GRPCRoute rules.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionPersistence {
    pub session_name: Option<String>,
    /// GEP-2257 duration; required when the cookie lifetime is `Permanent`.
    pub absolute_timeout: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<SessionPersistenceType>,
    pub cookie_config: Option<CookieConfig>,
}

/// `CookieConfig`: cookie-based session persistence settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CookieConfig {
    pub lifetime_type: Option<CookieLifetimeType>,
}

// ---------------------------------------------------------------- GatewayClass

/// `GatewayClass.spec` (cluster-scoped).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassSpec {
    /// Domain-prefixed path, immutable, e.g. `example.net/gateway-controller`.
    pub controller_name: Option<String>,
    pub parameters_ref: Option<ParametersReference>,
    pub description: Option<String>,
}

/// `ParametersReference`: cluster-wide reference to controller-specific configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParametersReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// `GatewayClass.status`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_features: Vec<SupportedFeature>,
}

/// One `supportedFeatures` entry (sorted by name when written).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct SupportedFeature {
    #[serde(default)]
    pub name: String,
}

// ---------------------------------------------------------------- Gateway

/// `Gateway.spec`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KubeGatewaySpec {
    pub gateway_class_name: Option<String>,
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub addresses: Vec<GatewaySpecAddress>,
    pub infrastructure: Option<GatewayInfrastructure>,
    /// Which ListenerSets may attach (default: none).
    pub allowed_listeners: Option<AllowedListeners>,
    /// Gateway-wide frontend (client certificate validation) and backend (client cert) TLS.
    pub tls: Option<GatewayTlsConfig>,
    /// Experimental channel.
    pub default_scope: Option<GatewayDefaultScope>,
}

/// `Listener` (also `ListenerEntry` of a ListenerSet, which has the same fields).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<i32>,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`, or a domain-prefixed implementation protocol.
    pub protocol: Option<String>,
    pub tls: Option<ListenerTlsConfig>,
    /// Defaults to `{namespaces: {from: Same}}`.
    pub allowed_routes: Option<AllowedRoutes>,
}

/// ListenerSet listeners have exactly the fields of a Gateway listener.
pub type ListenerEntry = Listener;

gw_enum!(
    /// `TLSModeType` (default `Terminate`).
    TlsModeType {
        Terminate = "Terminate",
        Passthrough = "Passthrough",
    }
);

/// `ListenerTLSConfig`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTlsConfig {
    pub mode: Option<TlsModeType>,
    #[serde(default)]
    pub certificate_refs: Vec<SecretObjectReference>,
    /// Implementation-specific options, domain-prefixed keys.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// `AllowedRoutes`: namespaces (default `Same`) and kinds (default: by protocol) of attachable Routes.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AllowedRoutes {
    pub namespaces: Option<RouteNamespaces>,
    #[serde(default)]
    pub kinds: Vec<RouteGroupKind>,
}

gw_enum!(
    /// `FromNamespaces`. Routes allow `All`, `Selector`, `Same`; ListenerSets also allow `None`.
    FromNamespaces {
        All = "All",
        Selector = "Selector",
        Same = "Same",
        None = "None",
    }
);

/// `RouteNamespaces` (default `from: Same`; `selector` only read when `from: Selector`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteNamespaces {
    pub from: Option<FromNamespaces>,
    pub selector: Option<LabelSelector>,
}

/// `AllowedListeners`: which ListenerSets may attach to this Gateway.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AllowedListeners {
    /// Defaults to `{from: None}`.
    pub namespaces: Option<ListenerNamespaces>,
}

/// `ListenerNamespaces` (default `from: None`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerNamespaces {
    pub from: Option<FromNamespaces>,
    pub selector: Option<LabelSelector>,
}

/// `RouteGroupKind` (group defaults to `gateway.networking.k8s.io`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct RouteGroupKind {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `GatewaySpecAddress`: requested address (`type` defaults to `IPAddress`; also `Hostname`,
/// deprecated `NamedAddress`, or a domain-prefixed type).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpecAddress {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub value: Option<String>,
}

/// `GatewayInfrastructure`: labels/annotations for generated resources and per-Gateway parameters.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayInfrastructure {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub parameters_ref: Option<LocalParametersReference>,
}

/// `LocalParametersReference`: same-namespace parameters object.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalParametersReference {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
}

/// `GatewayTLSConfig`: `spec.tls`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayTlsConfig {
    pub backend: Option<GatewayBackendTls>,
    pub frontend: Option<FrontendTlsConfig>,
}

/// `GatewayBackendTLS`: the client certificate the Gateway presents to TLS backends.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayBackendTls {
    pub client_certificate_ref: Option<SecretObjectReference>,
}

/// `FrontendTLSConfig`: client-certificate validation for HTTPS listeners, default and per port.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FrontendTlsConfig {
    pub default: Option<TlsConfig>,
    #[serde(default)]
    pub per_port: Vec<TlsPortConfig>,
}

/// `TLSConfig`: currently only client validation.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    pub validation: Option<FrontendTlsValidation>,
}

/// `TLSPortConfig`: overrides the default for HTTPS listeners on `port`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsPortConfig {
    pub port: Option<i32>,
    pub tls: Option<TlsConfig>,
}

gw_enum!(
    /// `FrontendValidationModeType` (default `AllowValidOnly`).
    FrontendValidationMode {
        AllowValidOnly = "AllowValidOnly",
        AllowInsecureFallback = "AllowInsecureFallback",
    }
);

/// `FrontendTLSValidation`: CA bundles (ConfigMap key `ca.crt`, Core) and mode.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FrontendTlsValidation {
    #[serde(default)]
    pub ca_certificate_refs: Vec<ObjectReference>,
    pub mode: Option<FrontendValidationMode>,
}

/// `Gateway.status`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<GatewayStatusAddress>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_listener_sets: Option<i32>,
}

/// `GatewayStatusAddress`: an address bound to the Gateway.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatusAddress {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default)]
    pub value: String,
}

/// `ListenerStatus` (also a ListenerSet's `ListenerEntryStatus`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    #[serde(default)]
    pub name: String,
    /// Written even when empty (conformance reads it).
    #[serde(default)]
    pub supported_kinds: Vec<RouteGroupKind>,
    /// Routes with `Accepted: True` attached to this listener.
    #[serde(default)]
    pub attached_routes: i32,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// ListenerSet listener status has the fields of a Gateway listener status.
pub type ListenerEntryStatus = ListenerStatus;

// ---------------------------------------------------------------- ListenerSet

/// `ListenerSet.spec` (v1, standard channel in v1.6).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSetSpec {
    pub parent_ref: Option<ParentGatewayReference>,
    #[serde(default)]
    pub listeners: Vec<ListenerEntry>,
}

/// `ListenerSet.status`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSetStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerEntryStatus>,
}

// ---------------------------------------------------------------- HTTPRoute

/// `HTTPRoute.spec`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Experimental channel.
    pub use_default_gateways: Option<GatewayDefaultScope>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Defaults to one rule matching `PathPrefix /` (the API server fills it in).
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

/// `HTTPRouteRule`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    pub name: Option<String>,
    /// Empty means one match `PathPrefix /`.
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
    pub timeouts: Option<HttpRouteTimeouts>,
    /// Experimental channel.
    pub retry: Option<HttpRouteRetry>,
    /// Experimental channel.
    pub session_persistence: Option<SessionPersistence>,
}

/// `HTTPRouteMatch`: all present conditions are ANDed.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    /// Defaults to `PathPrefix /`.
    pub path: Option<HttpPathMatch>,
    #[serde(default)]
    pub headers: Vec<HttpHeaderMatch>,
    #[serde(default)]
    pub query_params: Vec<HttpQueryParamMatch>,
    pub method: Option<HttpMethod>,
}

gw_enum!(
    /// `PathMatchType` (default `PathPrefix`).
    PathMatchType {
        Exact = "Exact",
        PathPrefix = "PathPrefix",
        RegularExpression = "RegularExpression",
    }
);

/// `HTTPPathMatch` (defaults `type: PathPrefix`, `value: /`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpPathMatch {
    #[serde(rename = "type")]
    pub type_: Option<PathMatchType>,
    pub value: Option<String>,
}

gw_enum!(
    /// `HeaderMatchType` (default `Exact`); also used for query params and gRPC headers.
    HeaderMatchType {
        Exact = "Exact",
        RegularExpression = "RegularExpression",
    }
);

/// `QueryParamMatchType` has the values of `HeaderMatchType`.
pub type QueryParamMatchType = HeaderMatchType;

/// `HTTPHeaderMatch`: header names compare case-insensitively; the first of equal names wins.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpHeaderMatch {
    #[serde(rename = "type")]
    pub type_: Option<HeaderMatchType>,
    pub name: Option<String>,
    pub value: Option<String>,
}

/// `HTTPQueryParamMatch`: names compare exactly (case-sensitive).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpQueryParamMatch {
    #[serde(rename = "type")]
    pub type_: Option<QueryParamMatchType>,
    pub name: Option<String>,
    pub value: Option<String>,
}

gw_enum!(
    /// `HTTPMethod`.
    HttpMethod {
        Get = "GET",
        Head = "HEAD",
        Post = "POST",
        Put = "PUT",
        Delete = "DELETE",
        Connect = "CONNECT",
        Options = "OPTIONS",
        Trace = "TRACE",
        Patch = "PATCH",
    }
);

gw_enum!(
    /// `HTTPMethodWithWildcard` (CORS `allowMethods`).
    HttpMethodWithWildcard {
        Get = "GET",
        Head = "HEAD",
        Post = "POST",
        Put = "PUT",
        Delete = "DELETE",
        Connect = "CONNECT",
        Options = "OPTIONS",
        Trace = "TRACE",
        Patch = "PATCH",
        Any = "*",
    }
);

gw_enum!(
    /// `HTTPRouteFilterType`. `ExternalAuth` is Experimental channel.
    HttpRouteFilterType {
        RequestHeaderModifier = "RequestHeaderModifier",
        ResponseHeaderModifier = "ResponseHeaderModifier",
        RequestMirror = "RequestMirror",
        RequestRedirect = "RequestRedirect",
        UrlRewrite = "URLRewrite",
        ExtensionRef = "ExtensionRef",
        Cors = "CORS",
        ExternalAuth = "ExternalAuth",
    }
);

/// `HTTPRouteFilter`: `type` names the one member that must be set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteFilter {
    #[serde(rename = "type")]
    pub type_: Option<HttpRouteFilterType>,
    pub request_header_modifier: Option<HttpHeaderFilter>,
    pub response_header_modifier: Option<HttpHeaderFilter>,
    pub request_mirror: Option<HttpRequestMirrorFilter>,
    pub request_redirect: Option<HttpRequestRedirectFilter>,
    pub url_rewrite: Option<HttpUrlRewriteFilter>,
    pub cors: Option<HttpCorsFilter>,
    /// Experimental channel.
    pub external_auth: Option<HttpExternalAuthFilter>,
    pub extension_ref: Option<LocalObjectReference>,
}

/// `HTTPHeader`: a name/value pair.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpHeader {
    pub name: Option<String>,
    pub value: Option<String>,
}

/// `HTTPHeaderFilter`: set (overwrite), add (append), remove; one action per header name.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpHeaderFilter {
    #[serde(default)]
    pub set: Vec<HttpHeader>,
    #[serde(default)]
    pub add: Vec<HttpHeader>,
    #[serde(default)]
    pub remove: Vec<String>,
}

gw_enum!(
    /// `HTTPPathModifierType`.
    HttpPathModifierType {
        ReplaceFullPath = "ReplaceFullPath",
        ReplacePrefixMatch = "ReplacePrefixMatch",
    }
);

/// `HTTPPathModifier`: the member named by `type` must be set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpPathModifier {
    #[serde(rename = "type")]
    pub type_: Option<HttpPathModifierType>,
    pub replace_full_path: Option<String>,
    pub replace_prefix_match: Option<String>,
}

gw_enum!(
    /// Redirect `scheme`.
    RedirectScheme {
        Http = "http",
        Https = "https",
    }
);

/// `HTTPRequestRedirectFilter`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequestRedirectFilter {
    pub scheme: Option<RedirectScheme>,
    pub hostname: Option<String>,
    pub path: Option<HttpPathModifier>,
    pub port: Option<i32>,
    /// 301, 302 (default), 303, 307 or 308.
    pub status_code: Option<i32>,
}

/// `HTTPURLRewriteFilter`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpUrlRewriteFilter {
    pub hostname: Option<String>,
    pub path: Option<HttpPathModifier>,
}

/// `HTTPRequestMirrorFilter`: at most one of `percent` and `fraction`; neither means 100%.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequestMirrorFilter {
    pub backend_ref: Option<BackendObjectReference>,
    pub percent: Option<i32>,
    pub fraction: Option<Fraction>,
}

/// `HTTPCORSFilter` (standard channel in v1.6).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpCorsFilter {
    #[serde(default)]
    pub allow_origins: Vec<String>,
    pub allow_credentials: Option<bool>,
    #[serde(default)]
    pub allow_methods: Vec<HttpMethodWithWildcard>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Seconds; defaults to 5.
    pub max_age: Option<i32>,
}

gw_enum!(
    /// `HTTPRouteExternalAuthProtocol`.
    ExternalAuthProtocol {
        Http = "HTTP",
        Grpc = "GRPC",
    }
);

/// `HTTPExternalAuthFilter` (Experimental channel): fails closed.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpExternalAuthFilter {
    pub protocol: Option<ExternalAuthProtocol>,
    pub backend_ref: Option<BackendObjectReference>,
    pub grpc: Option<GrpcAuthConfig>,
    pub http: Option<HttpAuthConfig>,
    pub forward_body: Option<ForwardBodyConfig>,
}

/// `GRPCAuthConfig`: Envoy ext_authz gRPC; empty `allowedHeaders` sends all headers.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcAuthConfig {
    #[serde(default)]
    pub allowed_headers: Vec<String>,
}

/// `HTTPAuthConfig`: HTTP ext-auth; 200 allows, anything else denies.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpAuthConfig {
    pub path: Option<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub allowed_response_headers: Vec<String>,
}

/// `ForwardBodyConfig`: bytes of request body to send (0 or unset: none).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ForwardBodyConfig {
    pub max_size: Option<i32>,
}

/// `HTTPBackendRef`: a weighted backend with its own filters.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpBackendRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub port: Option<i32>,
    pub weight: Option<i32>,
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
}

/// The object a weighted backendRef names (the weight and filters aside).
macro_rules! backend_object_from {
    ($($from:ty),+) => {$(
        impl From<&$from> for BackendObjectReference {
            fn from(b: &$from) -> Self {
                BackendObjectReference {
                    group: b.group.clone(),
                    kind: b.kind.clone(),
                    name: b.name.clone(),
                    namespace: b.namespace.clone(),
                    port: b.port,
                }
            }
        }
    )+};
}
backend_object_from!(HttpBackendRef, BackendRef, GrpcBackendRef);

/// `HTTPRouteTimeouts`: GEP-2257 durations; `0s` disables.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteTimeouts {
    pub request: Option<String>,
    pub backend_request: Option<String>,
}

/// `HTTPRouteRetry` (Experimental channel).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRetry {
    /// 400..=599; 500, 502, 503, 504 must be supported.
    #[serde(default)]
    pub codes: Vec<i32>,
    pub attempts: Option<i32>,
    pub backoff: Option<String>,
}

// ---------------------------------------------------------------- GRPCRoute

/// `GRPCRoute.spec`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Experimental channel.
    pub use_default_gateways: Option<GatewayDefaultScope>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub rules: Vec<GrpcRouteRule>,
}

/// `GRPCRouteRule`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteRule {
    pub name: Option<String>,
    /// Empty matches every gRPC request.
    #[serde(default)]
    pub matches: Vec<GrpcRouteMatch>,
    #[serde(default)]
    pub filters: Vec<GrpcRouteFilter>,
    #[serde(default)]
    pub backend_refs: Vec<GrpcBackendRef>,
    /// Experimental channel.
    pub session_persistence: Option<SessionPersistence>,
}

/// `GRPCRouteMatch`: method and headers, ANDed.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteMatch {
    pub method: Option<GrpcMethodMatch>,
    #[serde(default)]
    pub headers: Vec<GrpcHeaderMatch>,
}

/// `GRPCMethodMatchType` has the values of `HeaderMatchType` (default `Exact`).
pub type GrpcMethodMatchType = HeaderMatchType;

/// `GRPCMethodMatch`: at least one of service and method.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcMethodMatch {
    #[serde(rename = "type")]
    pub type_: Option<GrpcMethodMatchType>,
    pub service: Option<String>,
    pub method: Option<String>,
}

/// `GRPCHeaderMatch`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcHeaderMatch {
    #[serde(rename = "type")]
    pub type_: Option<HeaderMatchType>,
    pub name: Option<String>,
    pub value: Option<String>,
}

gw_enum!(
    /// `GRPCRouteFilterType`.
    GrpcRouteFilterType {
        ResponseHeaderModifier = "ResponseHeaderModifier",
        RequestHeaderModifier = "RequestHeaderModifier",
        RequestMirror = "RequestMirror",
        ExtensionRef = "ExtensionRef",
    }
);

/// `GRPCRouteFilter`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteFilter {
    #[serde(rename = "type")]
    pub type_: Option<GrpcRouteFilterType>,
    pub request_header_modifier: Option<HttpHeaderFilter>,
    pub response_header_modifier: Option<HttpHeaderFilter>,
    pub request_mirror: Option<HttpRequestMirrorFilter>,
    pub extension_ref: Option<LocalObjectReference>,
}

/// `GRPCBackendRef`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrpcBackendRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub port: Option<i32>,
    pub weight: Option<i32>,
    #[serde(default)]
    pub filters: Vec<GrpcRouteFilter>,
}

/// A GRPCRoute filter is the HTTPRoute filter of the same type (the spec defines them so).
impl From<&GrpcRouteFilter> for HttpRouteFilter {
    fn from(f: &GrpcRouteFilter) -> Self {
        HttpRouteFilter {
            type_: f.type_.map(|t| match t {
                GrpcRouteFilterType::ResponseHeaderModifier => {
                    HttpRouteFilterType::ResponseHeaderModifier
                }
                GrpcRouteFilterType::RequestHeaderModifier => {
                    HttpRouteFilterType::RequestHeaderModifier
                }
                GrpcRouteFilterType::RequestMirror => HttpRouteFilterType::RequestMirror,
                GrpcRouteFilterType::ExtensionRef => HttpRouteFilterType::ExtensionRef,
            }),
            request_header_modifier: f.request_header_modifier.clone(),
            response_header_modifier: f.response_header_modifier.clone(),
            request_mirror: f.request_mirror.clone(),
            extension_ref: f.extension_ref.clone(),
            ..Default::default()
        }
    }
}

impl From<&GrpcHeaderMatch> for HttpHeaderMatch {
    fn from(h: &GrpcHeaderMatch) -> Self {
        HttpHeaderMatch {
            type_: h.type_,
            name: h.name.clone(),
            value: h.value.clone(),
        }
    }
}

impl From<&GrpcBackendRef> for HttpBackendRef {
    fn from(b: &GrpcBackendRef) -> Self {
        HttpBackendRef {
            group: b.group.clone(),
            kind: b.kind.clone(),
            name: b.name.clone(),
            namespace: b.namespace.clone(),
            port: b.port,
            weight: b.weight,
            filters: b.filters.iter().map(HttpRouteFilter::from).collect(),
        }
    }
}

// ---------------------------------------------------------------- TLSRoute, TCPRoute, UDPRoute

/// `TLSRoute.spec` (v1 in v1.6; v1alpha2/v1alpha3 share the schema).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Experimental channel.
    pub use_default_gateways: Option<GatewayDefaultScope>,
    /// SNI names; at least one required in v1.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Exactly one rule.
    #[serde(default)]
    pub rules: Vec<L4RouteRule>,
}

/// `TCPRoute.spec` and `UDPRoute.spec`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct L4RouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Experimental channel.
    pub use_default_gateways: Option<GatewayDefaultScope>,
    /// Exactly one rule.
    #[serde(default)]
    pub rules: Vec<L4RouteRule>,
}

/// `TCPRoute.spec`.
pub type TcpRouteSpec = L4RouteSpec;
/// `UDPRoute.spec`.
pub type UdpRouteSpec = L4RouteSpec;

/// `TLSRouteRule`, `TCPRouteRule`, `UDPRouteRule`: a name and 1..=16 weighted backends.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct L4RouteRule {
    pub name: Option<String>,
    #[serde(default)]
    pub backend_refs: Vec<BackendRef>,
}

// ---------------------------------------------------------------- ReferenceGrant

/// `ReferenceGrant.spec` (served as v1 and v1beta1; no status).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceGrantSpec {
    #[serde(default)]
    pub from: Vec<ReferenceGrantFrom>,
    #[serde(default)]
    pub to: Vec<ReferenceGrantTo>,
}

/// `ReferenceGrantFrom`: a trusted (group, kind, namespace) of referrers.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceGrantFrom {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub namespace: Option<String>,
}

/// `ReferenceGrantTo`: referable (group, kind[, name]) in the grant's namespace.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceGrantTo {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
}

// ---------------------------------------------------------------- BackendTLSPolicy

/// `BackendTLSPolicy.spec` (v1, standard channel).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackendTlsPolicySpec {
    #[serde(default)]
    pub target_refs: Vec<LocalPolicyTargetReferenceWithSectionName>,
    pub validation: Option<BackendTlsPolicyValidation>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// `BackendTLSPolicyValidation`: exactly one of CA refs and well-known CAs, plus SNI hostname.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackendTlsPolicyValidation {
    #[serde(default)]
    pub ca_certificate_refs: Vec<LocalObjectReference>,
    /// `System` or a domain-prefixed implementation-specific set.
    #[serde(rename = "wellKnownCACertificates")]
    pub well_known_ca_certificates: Option<String>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub subject_alt_names: Vec<SubjectAltName>,
}

gw_enum!(
    /// `SubjectAltNameType`.
    SubjectAltNameType {
        Hostname = "Hostname",
        Uri = "URI",
    }
);

/// `SubjectAltName`: `hostname` when type is Hostname, `uri` when URI.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubjectAltName {
    #[serde(rename = "type")]
    pub type_: Option<SubjectAltNameType>,
    pub hostname: Option<String>,
    pub uri: Option<String>,
}

// ---------------------------------------------------------------- status

/// `metav1.ConditionStatus` (defaults to `Unknown`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum ConditionStatus {
    #[serde(rename = "True")]
    True,
    #[serde(rename = "False")]
    False,
    #[default]
    #[serde(rename = "Unknown")]
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// `metav1.Condition`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub status: ConditionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// RFC 3339, changed only when `status` changes.
    #[serde(default)]
    pub last_transition_time: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

/// `RouteStatus` (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    #[serde(default)]
    pub parents: Vec<RouteParentStatus>,
}

/// `RouteParentStatus`: keyed by (parentRef, controllerName).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    #[serde(default)]
    pub parent_ref: ParentReference,
    #[serde(default)]
    pub controller_name: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// `HTTPRoute.status`.
pub type HttpRouteStatus = RouteStatus;
/// `GRPCRoute.status`.
pub type GrpcRouteStatus = RouteStatus;
/// `TLSRoute.status`.
pub type TlsRouteStatus = RouteStatus;
/// `TCPRoute.status`.
pub type TcpRouteStatus = RouteStatus;
/// `UDPRoute.status`.
pub type UdpRouteStatus = RouteStatus;

/// `PolicyStatus` (BackendTLSPolicy).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    #[serde(default)]
    pub ancestors: Vec<PolicyAncestorStatus>,
}

/// `PolicyAncestorStatus`: keyed by (ancestorRef, controllerName); ancestor is usually the Gateway.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAncestorStatus {
    #[serde(default)]
    pub ancestor_ref: ParentReference,
    #[serde(default)]
    pub controller_name: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
