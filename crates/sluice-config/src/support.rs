//! What sluice does with every field of the Istio and Gateway APIs it reads: one decision per (type, field),
//! so no field is ever silently ignored. The loader warns (SLU0015) about each field it ignores
//! and refuses (SLU0009) the ones it cannot honour; `tests/support.rs` walks the API types so a
//! new field cannot be added without a row here.
use crate::de::FieldSeen;
use crate::diag::{codes, Diagnostic, Origin, Severity};
use crate::yaml::{path_to_string, Seg};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Compile or the data plane honours it.
    Implemented,
    /// Has no effect at an ingress gateway, in Istio either (names, sidecar-only settings).
    Inert,
    /// Accepted and ignored until implemented; a warning says so and what happens instead.
    NotImplemented { instead: &'static str },
    /// Refused (SLU0009): ignoring it would change what the traffic looks like.
    Unsupported { why: &'static str },
    /// Istio's own validation refuses it; `validate` reports that rule (IST0106).
    RefusedByIstio,
}

use Support::{Implemented as I, Inert, RefusedByIstio};

const fn n(instead: &'static str) -> Support {
    Support::NotImplemented { instead }
}

const fn u(why: &'static str) -> Support {
    Support::Unsupported { why }
}

const NO_POOL: &str = "connections and requests to the backend are not limited";
const NO_OUTLIER: &str = "no endpoint is ejected; failing endpoints keep receiving traffic";
const NO_HASH: &str = "requests are balanced by `simple` (LEAST_REQUEST by default), not by a hash";
const NO_LOCALITY: &str = "endpoints are balanced without regard to locality";
const NO_SOURCE: &str = "the match ignores it and applies to every client";
const NO_SUBNETS: &str = "the match ignores addresses";
const NO_WARMUP: &str = "new endpoints get their full share at once";
const GW_NOT_YET: &str = "sluice's Gateway API support does not read it yet";

/// Every field of the types under the Istio specs, by Rust type name (as serde reports it) and
/// field name (as YAML spells it).
pub const FIELDS: &[(&str, &[(&str, Support)])] = &[
    ("GatewaySpec", &[("servers", I), ("selector", I)]),
    (
        "Server",
        &[
            ("port", I),
            ("bind", n("the server listens on every address (--bind-address)")),
            ("hosts", I),
            ("tls", I),
            ("defaultEndpoint", n("traffic goes to the routes' destinations")),
            ("name", Inert),
        ],
    ),
    (
        "Port",
        &[("number", I), ("protocol", I), ("name", I), ("targetPort", RefusedByIstio)],
    ),
    (
        "ServerTlsSettings",
        &[
            ("httpsRedirect", I),
            ("mode", I),
            ("serverCertificate", I),
            ("privateKey", I),
            ("caCertificates", I),
            ("caCrl", n("client certificates are not checked for revocation")),
            ("credentialName", I),
            ("credentialNames", n("no certificate is served from these Secrets; use credentialName")),
            ("tlsCertificates", n("no certificate is served from this list; use credentialName or serverCertificate")),
            ("subjectAltNames", I),
            ("verifyCertificateSpki", I),
            ("verifyCertificateHash", I),
            ("minProtocolVersion", I),
            ("maxProtocolVersion", I),
            ("cipherSuites", I),
            ("caCertCredentialName", n("the CA comes from credentialName's Secret or <name>-cacert")),
            ("insecureSkipVerify", n("a client certificate that fails verification is refused")),
        ],
    ),
    (
        "TlsCertificate",
        &[
            ("serverCertificate", n("no certificate is served from tlsCertificates")),
            ("privateKey", n("no certificate is served from tlsCertificates")),
            ("caCertificates", n("no certificate is served from tlsCertificates")),
        ],
    ),
    (
        "VirtualServiceSpec",
        &[
            ("hosts", I),
            ("gateways", I),
            ("http", I),
            ("tls", I),
            ("tcp", I),
            ("exportTo", I),
        ],
    ),
    (
        "HttpRoute",
        &[
            ("name", Inert),
            ("match", I),
            ("route", I),
            ("redirect", I),
            ("directResponse", I),
            ("delegate", I),
            ("rewrite", I),
            ("timeout", I),
            ("retries", I),
            ("fault", I),
            ("mirror", I),
            ("mirrorPercentage", I),
            ("mirrorPercent", I),
            ("mirrors", I),
            ("corsPolicy", I),
            ("headers", I),
        ],
    ),
    ("StringMatch", &[("exact", I), ("prefix", I), ("regex", I)]),
    (
        "HttpMatchRequest",
        &[
            ("name", Inert),
            ("uri", I),
            ("scheme", I),
            ("method", I),
            ("authority", I),
            ("headers", I),
            ("port", I),
            ("sourceLabels", n(NO_SOURCE)),
            ("gateways", I),
            ("queryParams", I),
            ("ignoreUriCase", I),
            ("withoutHeaders", I),
            ("sourceNamespace", n(NO_SOURCE)),
            ("statPrefix", n("no per-route statistics are kept")),
        ],
    ),
    ("HttpRouteDestination", &[("destination", I), ("weight", I), ("headers", I)]),
    ("RouteDestination", &[("destination", I), ("weight", I)]),
    ("Destination", &[("host", I), ("subset", I), ("port", I)]),
    ("PortSelector", &[("number", I)]),
    (
        "HttpRedirect",
        &[
            ("uri", I),
            ("authority", I),
            ("port", I),
            ("derivePort", I),
            ("scheme", I),
            ("redirectCode", I),
            ("prefixRewrite", n("the redirect keeps the request's path")),
        ],
    ),
    ("HttpDirectResponse", &[("status", I), ("body", I)]),
    ("HttpBody", &[("string", I), ("bytes", I)]),
    ("Delegate", &[("name", I), ("namespace", I)]),
    ("HttpRewrite", &[("uri", I), ("authority", I), ("uriRegexRewrite", I)]),
    ("RegexRewrite", &[("match", I), ("rewrite", I)]),
    (
        "HttpRetry",
        &[
            ("attempts", I),
            ("perTryTimeout", I),
            ("retryOn", I),
            ("retryRemoteLocalities", n(NO_LOCALITY)),
            ("retryIgnorePreviousHosts", n("each retry still prefers another endpoint")),
            ("backoff", I),
        ],
    ),
    ("HttpFaultInjection", &[("delay", I), ("abort", I)]),
    (
        "FaultDelay",
        &[
            ("fixedDelay", I),
            ("exponentialDelay", RefusedByIstio),
            ("percentage", I),
            ("percent", n("the delay is never injected; use percentage: {value: N}")),
        ],
    ),
    (
        "FaultAbort",
        &[("httpStatus", I), ("grpcStatus", I), ("http2Error", RefusedByIstio), ("percentage", I)],
    ),
    ("Percent", &[("value", I)]),
    ("HttpMirrorPolicy", &[("destination", I), ("percentage", I)]),
    (
        "CorsPolicy",
        &[
            ("allowOrigins", I),
            ("allowOrigin", I),
            ("allowMethods", I),
            ("allowHeaders", I),
            ("exposeHeaders", I),
            ("maxAge", I),
            ("allowCredentials", I),
            ("unmatchedPreflights", I),
        ],
    ),
    ("Headers", &[("request", I), ("response", I)]),
    ("HeaderOperations", &[("set", I), ("add", I), ("remove", I)]),
    ("TlsRoute", &[("match", I), ("route", I)]),
    (
        "TlsMatchAttributes",
        &[
            ("sniHosts", I),
            ("destinationSubnets", n(NO_SUBNETS)),
            ("port", I),
            ("sourceLabels", n(NO_SOURCE)),
            ("gateways", I),
            ("sourceNamespace", n(NO_SOURCE)),
        ],
    ),
    ("TcpRoute", &[("match", I), ("route", I)]),
    (
        "L4MatchAttributes",
        &[
            ("destinationSubnets", n(NO_SUBNETS)),
            ("port", I),
            ("sourceSubnet", n(NO_SUBNETS)),
            ("sourceLabels", n(NO_SOURCE)),
            ("gateways", I),
            ("sourceNamespace", n(NO_SOURCE)),
        ],
    ),
    (
        "DestinationRuleSpec",
        &[
            ("host", I),
            ("trafficPolicy", I),
            ("subsets", I),
            ("exportTo", I),
            ("workloadSelector", n("the DestinationRule applies to this gateway whatever its labels")),
        ],
    ),
    ("WorkloadSelector", &[("matchLabels", n("the DestinationRule applies to this gateway whatever its labels"))]),
    (
        "TrafficPolicy",
        &[
            ("loadBalancer", I),
            ("connectionPool", I),
            ("outlierDetection", n(NO_OUTLIER)),
            ("tls", I),
            ("portLevelSettings", I),
            ("tunnel", u("requests would reach the backend without the tunnel they need")),
            ("proxyProtocol", u("the backend would get connections without the PROXY header it expects")),
            ("retryBudget", n("retries are limited only by each route's attempts")),
        ],
    ),
    (
        "PortTrafficPolicy",
        &[
            ("port", I),
            ("loadBalancer", I),
            ("connectionPool", I),
            ("outlierDetection", n(NO_OUTLIER)),
            ("tls", I),
        ],
    ),
    (
        "TunnelSettings",
        &[
            ("protocol", u("tunnels are not implemented")),
            ("targetHost", u("tunnels are not implemented")),
            ("targetPort", u("tunnels are not implemented")),
        ],
    ),
    ("ProxyProtocol", &[("version", u("the PROXY protocol is not implemented"))]),
    (
        "RetryBudget",
        &[
            ("percent", n("retries are limited only by each route's attempts")),
            ("minRetryConcurrency", n("retries are limited only by each route's attempts")),
            ("budgetInterval", n("retries are limited only by each route's attempts")),
        ],
    ),
    (
        "LoadBalancerSettings",
        &[
            ("simple", I),
            ("consistentHash", n(NO_HASH)),
            ("localityLbSetting", n(NO_LOCALITY)),
            ("zoneAwareLbSetting", n(NO_LOCALITY)),
            ("warmupDurationSecs", n(NO_WARMUP)),
            ("warmup", n(NO_WARMUP)),
        ],
    ),
    (
        "WarmupConfiguration",
        &[("duration", n(NO_WARMUP)), ("minimumPercent", n(NO_WARMUP)), ("aggression", n(NO_WARMUP))],
    ),
    (
        "ConsistentHashLb",
        &[
            ("httpHeaderName", n(NO_HASH)),
            ("httpCookie", n(NO_HASH)),
            ("useSourceIp", n(NO_HASH)),
            ("httpQueryParameterName", n(NO_HASH)),
            ("ringHash", n(NO_HASH)),
            ("maglev", n(NO_HASH)),
            ("minimumRingSize", n(NO_HASH)),
        ],
    ),
    (
        "HttpCookie",
        &[("name", n(NO_HASH)), ("path", n(NO_HASH)), ("ttl", n(NO_HASH)), ("attributes", n(NO_HASH))],
    ),
    ("CookieAttribute", &[("name", n(NO_HASH)), ("value", n(NO_HASH))]),
    ("RingHash", &[("minimumRingSize", n(NO_HASH))]),
    ("MagLev", &[("tableSize", n(NO_HASH))]),
    (
        "LocalityLbSetting",
        &[
            ("distribute", n(NO_LOCALITY)),
            ("failover", n(NO_LOCALITY)),
            ("failoverPriority", n(NO_LOCALITY)),
            ("enabled", n(NO_LOCALITY)),
        ],
    ),
    ("LocalityDistribute", &[("from", n(NO_LOCALITY)), ("to", n(NO_LOCALITY))]),
    ("LocalityFailover", &[("from", n(NO_LOCALITY)), ("to", n(NO_LOCALITY))]),
    (
        "ZoneAwareLbSetting",
        &[
            ("enabled", n(NO_LOCALITY)),
            ("failover", n(NO_LOCALITY)),
            ("failoverPriority", n(NO_LOCALITY)),
            ("minClusterSize", n(NO_LOCALITY)),
        ],
    ),
    (
        "ConnectionPoolSettings",
        &[
            ("tcp", I),
            ("http", n("none of its limits, timeouts or keepalives apply; sluice's own upstream pool defaults do")),
        ],
    ),
    (
        "TcpSettings",
        &[
            ("maxConnections", n(NO_POOL)),
            ("connectTimeout", n("connections time out after --connect-timeout (10s)")),
            ("tcpKeepalive", n("no TCP keepalive probes are sent")),
            ("maxConnectionDuration", n("connections are kept as long as they are used")),
            ("idleTimeout", I),
        ],
    ),
    (
        "TcpKeepalive",
        &[
            ("probes", n("no TCP keepalive probes are sent")),
            ("time", n("no TCP keepalive probes are sent")),
            ("interval", n("no TCP keepalive probes are sent")),
        ],
    ),
    (
        "HttpSettings",
        &[
            ("http1MaxPendingRequests", n(NO_POOL)),
            ("http2MaxRequests", n(NO_POOL)),
            ("maxRequestsPerConnection", n(NO_POOL)),
            ("maxRetries", n(NO_POOL)),
            ("idleTimeout", n(NO_POOL)),
            ("h2UpgradePolicy", n("the upstream protocol follows the port's protocol")),
            ("useClientProtocol", n("the upstream protocol follows the port's protocol")),
            ("maxConcurrentStreams", n(NO_POOL)),
            ("http2KeepAlive", n("no HTTP/2 PING frames are sent")),
        ],
    ),
    (
        "ConnectionKeepalive",
        &[("interval", n("no HTTP/2 PING frames are sent")), ("timeout", n("no HTTP/2 PING frames are sent"))],
    ),
    (
        "OutlierDetection",
        &[
            ("splitExternalLocalOriginErrors", n(NO_OUTLIER)),
            ("consecutiveLocalOriginFailures", n(NO_OUTLIER)),
            ("consecutiveGatewayErrors", n(NO_OUTLIER)),
            ("consecutive5xxErrors", n(NO_OUTLIER)),
            ("consecutiveErrors", n(NO_OUTLIER)),
            ("interval", n(NO_OUTLIER)),
            ("baseEjectionTime", n(NO_OUTLIER)),
            ("maxEjectionPercent", n(NO_OUTLIER)),
            ("minHealthPercent", n(NO_OUTLIER)),
            ("outlierDetectionHttpErrorCodes", n(NO_OUTLIER)),
        ],
    ),
    (
        "ClientTlsSettings",
        &[
            ("mode", I),
            ("clientCertificate", I),
            ("privateKey", I),
            ("caCertificates", I),
            ("caCrl", n("the backend's certificate is not checked for revocation")),
            ("credentialName", I),
            ("subjectAltNames", I),
            ("sni", I),
            ("insecureSkipVerify", I),
        ],
    ),
    ("Subset", &[("name", I), ("labels", I), ("trafficPolicy", I)]),
    (
        "ServiceEntrySpec",
        &[
            ("hosts", I),
            // Virtual IPs are for sidecars' outbound listeners; a gateway routes by host.
            ("addresses", Inert),
            ("ports", I),
            ("location", Inert),
            ("resolution", I),
            ("endpoints", I),
            ("workloadSelector", I),
            ("exportTo", I),
            ("subjectAltNames", I),
        ],
    ),
    ("ServicePort", &[("number", I), ("protocol", I), ("name", I), ("targetPort", I)]),
    ("SeWorkloadSelector", &[("labels", I)]),
    (
        "WorkloadEntrySpec",
        &[
            ("address", I),
            ("ports", I),
            ("labels", I),
            ("network", n("the endpoint is reached directly, as if on this gateway's network")),
            ("locality", n(NO_LOCALITY)),
            ("weight", I),
            ("serviceAccount", n("ISTIO_MUTUAL checks the ServiceEntry's subjectAltNames only")),
        ],
    ),
    // Gateway API (gateway.networking.k8s.io) kinds sluice serves.
    ("TlsRouteSpec", &[("parentRefs", I), ("useDefaultGateways", n(GW_NOT_YET)), ("hostnames", I), ("rules", I)]),
    ("L4RouteSpec", &[("parentRefs", I), ("useDefaultGateways", n(GW_NOT_YET)), ("rules", I)]),
    ("L4RouteRule", &[("name", I), ("backendRefs", I)]),
    ("BackendRef", &[("group", I), ("kind", I), ("name", I), ("namespace", I), ("port", I), ("weight", I)]),
    ("GatewayClassSpec", &[("controllerName", I), ("parametersRef", n("the class takes no parameters")), ("description", Inert)]),
    ("KubeGatewaySpec", &[("gatewayClassName", I), ("listeners", I), ("addresses", n("the instance listens on its own addresses (--bind-address)")), ("infrastructure", Inert), ("allowedListeners", I), ("tls", I), ("defaultScope", n(GW_NOT_YET))]),
    ("HttpRouteSpec", &[("parentRefs", I), ("useDefaultGateways", n(GW_NOT_YET)), ("hostnames", I), ("rules", I)]),
    ("ReferenceGrantSpec", &[("from", I), ("to", I)]),
    ("ParametersReference", &[("group", n(GW_NOT_YET)), ("kind", n(GW_NOT_YET)), ("name", n(GW_NOT_YET)), ("namespace", n(GW_NOT_YET))]),
    ("Listener", &[("name", I), ("hostname", I), ("port", I), ("protocol", I), ("tls", I), ("allowedRoutes", I)]),
    ("GatewaySpecAddress", &[("type", Inert), ("value", Inert)]),
    ("GatewayInfrastructure", &[("labels", Inert), ("annotations", Inert), ("parametersRef", Inert)]),
    ("AllowedListeners", &[("namespaces", I)]),
    ("GatewayTlsConfig", &[("backend", n("backends get no client certificate from the Gateway")), ("frontend", I)]),
    ("ParentReference", &[("group", I), ("kind", I), ("namespace", I), ("name", I), ("sectionName", I), ("port", I)]),
    ("HttpRouteRule", &[("name", I), ("matches", I), ("filters", I), ("backendRefs", I), ("timeouts", I), ("retry", I), ("sessionPersistence", n("requests are balanced without session affinity"))]),
    ("ReferenceGrantFrom", &[("group", I), ("kind", I), ("namespace", I)]),
    ("ReferenceGrantTo", &[("group", I), ("kind", I), ("name", I)]),
    ("ListenerTlsConfig", &[("mode", I), ("certificateRefs", I), ("options", n("the options are ignored"))]),
    ("AllowedRoutes", &[("namespaces", I), ("kinds", I)]),
    ("LocalParametersReference", &[("group", Inert), ("kind", Inert), ("name", Inert)]),
    ("ListenerNamespaces", &[("from", I), ("selector", I)]),
    ("GatewayBackendTls", &[("clientCertificateRef", n(GW_NOT_YET))]),
    ("FrontendTlsConfig", &[("default", I), ("perPort", I)]),
    ("HttpRouteMatch", &[("path", I), ("headers", I), ("queryParams", I), ("method", I)]),
    ("HttpRouteFilter", &[("type", I), ("requestHeaderModifier", I), ("responseHeaderModifier", I), ("requestMirror", I), ("requestRedirect", I), ("urlRewrite", I), ("cors", I), ("externalAuth", u("requests would reach the backend unauthenticated")), ("extensionRef", u("sluice has no extension filters"))]),
    ("HttpBackendRef", &[("group", I), ("kind", I), ("name", I), ("namespace", I), ("port", I), ("weight", I), ("filters", I)]),
    ("HttpRouteTimeouts", &[("request", I), ("backendRequest", I)]),
    ("HttpRouteRetry", &[("codes", I), ("attempts", I), ("backoff", I)]),
    ("SessionPersistence", &[("sessionName", n(GW_NOT_YET)), ("absoluteTimeout", n(GW_NOT_YET)), ("type", n(GW_NOT_YET)), ("cookieConfig", n(GW_NOT_YET))]),
    ("SecretObjectReference", &[("group", I), ("kind", I), ("name", I), ("namespace", I)]),
    ("RouteNamespaces", &[("from", I), ("selector", I)]),
    ("RouteGroupKind", &[("group", I), ("kind", I)]),
    ("LabelSelector", &[("matchLabels", I), ("matchExpressions", I)]),
    ("TlsConfig", &[("validation", I)]),
    ("TlsPortConfig", &[("port", I), ("tls", I)]),
    ("HttpPathMatch", &[("type", I), ("value", I)]),
    ("HttpHeaderMatch", &[("type", I), ("name", I), ("value", I)]),
    ("HttpQueryParamMatch", &[("type", I), ("name", I), ("value", I)]),
    ("HttpHeaderFilter", &[("set", I), ("add", I), ("remove", I)]),
    ("HttpRequestMirrorFilter", &[("backendRef", I), ("percent", I), ("fraction", I)]),
    ("HttpRequestRedirectFilter", &[("scheme", I), ("hostname", I), ("path", I), ("port", I), ("statusCode", I)]),
    ("HttpUrlRewriteFilter", &[("hostname", I), ("path", I)]),
    ("HttpCorsFilter", &[("allowOrigins", I), ("allowCredentials", I), ("allowMethods", I), ("allowHeaders", I), ("exposeHeaders", I), ("maxAge", I)]),
    ("HttpExternalAuthFilter", &[("protocol", n(GW_NOT_YET)), ("backendRef", n(GW_NOT_YET)), ("grpc", n(GW_NOT_YET)), ("http", n(GW_NOT_YET)), ("forwardBody", n(GW_NOT_YET))]),
    ("LocalObjectReference", &[("group", I), ("kind", I), ("name", I)]),
    ("CookieConfig", &[("lifetimeType", n(GW_NOT_YET))]),
    ("LabelSelectorRequirement", &[("key", I), ("operator", I), ("values", I)]),
    ("FrontendTlsValidation", &[("caCertificateRefs", I), ("mode", I)]),
    ("HttpHeader", &[("name", I), ("value", I)]),
    ("BackendObjectReference", &[("group", I), ("kind", I), ("name", I), ("namespace", I), ("port", I)]),
    ("Fraction", &[("numerator", I), ("denominator", I)]),
    ("HttpPathModifier", &[("type", I), ("replaceFullPath", I), ("replacePrefixMatch", I)]),
    ("GrpcAuthConfig", &[("allowedHeaders", n(GW_NOT_YET))]),
    ("HttpAuthConfig", &[("path", n(GW_NOT_YET)), ("allowedHeaders", n(GW_NOT_YET)), ("allowedResponseHeaders", n(GW_NOT_YET))]),
    ("ForwardBodyConfig", &[("maxSize", n(GW_NOT_YET))]),
    ("ObjectReference", &[("group", I), ("kind", I), ("name", I), ("namespace", I)]),
    ("GrpcRouteSpec", &[("parentRefs", I), ("useDefaultGateways", n(GW_NOT_YET)), ("hostnames", I), ("rules", I)]),
    ("GrpcRouteRule", &[("name", I), ("matches", I), ("filters", I), ("backendRefs", I), ("sessionPersistence", n("requests are balanced without session affinity"))]),
    ("GrpcRouteMatch", &[("method", I), ("headers", I)]),
    ("GrpcMethodMatch", &[("type", I), ("service", I), ("method", I)]),
    ("GrpcHeaderMatch", &[("type", I), ("name", I), ("value", I)]),
    ("GrpcRouteFilter", &[("type", I), ("requestHeaderModifier", I), ("responseHeaderModifier", I), ("requestMirror", I), ("extensionRef", u("sluice has no extension filters"))]),
    ("GrpcBackendRef", &[("group", I), ("kind", I), ("name", I), ("namespace", I), ("port", I), ("weight", I), ("filters", I)]),
    ("BackendTlsPolicySpec", &[("targetRefs", I), ("validation", I), ("options", n("the options are ignored"))]),
    ("LocalPolicyTargetReferenceWithSectionName", &[("group", I), ("kind", I), ("name", I), ("sectionName", I)]),
    ("BackendTlsPolicyValidation", &[("caCertificateRefs", I), ("wellKnownCACertificates", I), ("hostname", I), ("subjectAltNames", I)]),
    ("SubjectAltName", &[("type", I), ("hostname", I), ("uri", I)]),
    ("ListenerSetSpec", &[("parentRef", I), ("listeners", I)]),
    ("ParentGatewayReference", &[("group", I), ("kind", I), ("name", I), ("namespace", I)]),
    // Kubernetes Ingress (networking.k8s.io/v1), served as Istio serves it.
    ("IngressSpec", &[("ingressClassName", I), ("defaultBackend", n("Istio ignores it: requests no rule matches get 404")), ("tls", I), ("rules", I)]),
    ("IngressTls", &[("hosts", I), ("secretName", I)]),
    ("IngressRule", &[("host", I), ("http", I)]),
    ("HttpIngressRuleValue", &[("paths", I)]),
    ("HttpIngressPath", &[("path", I), ("pathType", I), ("backend", I)]),
    ("IngressBackend", &[("service", I), ("resource", u("only Service backends can be served"))]),
    ("IngressServiceBackend", &[("name", I), ("port", I)]),
    ("ServiceBackendPort", &[("name", I), ("number", I)]),
    ("TypedLocalObjectReference", &[("apiGroup", I), ("kind", I), ("name", I)]),
    ("IngressClassSpec", &[("controller", I), ("parameters", n("the class takes no parameters"))]),
    ("IngressClassParametersReference", &[("apiGroup", I), ("kind", I), ("name", I), ("scope", I), ("namespace", I)]),
];

/// The decision for one field, if the type is one of the Istio types above.
pub fn support(ty: &str, field: &str) -> Option<Support> {
    FIELDS
        .iter()
        .find(|(t, _)| *t == ty)?
        .1
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, s)| *s)
}

/// A `retryOn` condition Istio accepts, and whether sluice's retries act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryToken {
    pub name: &'static str,
    pub implemented: bool,
}

const fn token(name: &'static str, implemented: bool) -> RetryToken {
    RetryToken { name, implemented }
}

/// Envoy's `x-envoy-retry-on` and `x-envoy-retry-grpc-on` conditions, as Istio 1.31 accepts
/// them (numeric tokens, HTTP status codes, are accepted besides). The one list validate and
/// compile read.
pub const RETRY_ON: [RetryToken; 16] = [
    token("5xx", true),
    token("gateway-error", true),
    token("reset", true),
    token("reset-before-request", true),
    token("connect-failure", true),
    token("envoy-ratelimited", false),
    token("retriable-4xx", true),
    token("refused-stream", true),
    token("retriable-status-codes", true),
    token("retriable-headers", false),
    token("http3-post-connect-failure", false),
    token("cancelled", true),
    token("deadline-exceeded", true),
    token("internal", true),
    token("resource-exhausted", true),
    token("unavailable", true),
];

/// The table entry for a `retryOn` token, if Istio knows it.
pub fn retry_token(name: &str) -> Option<RetryToken> {
    RETRY_ON.iter().copied().find(|t| t.name == name)
}

/// Diagnostics for the fields one object sets: a warning per ignored field, an error per
/// refused one; once per object and field, and not again under a field already reported.
pub fn field_diagnostics(file: &Arc<str>, seen: &[FieldSeen], out: &mut Vec<Diagnostic>) {
    // In file order, so a field comes before the fields under it.
    let mut seen: Vec<&FieldSeen> = seen.iter().collect();
    seen.sort_by_key(|f| (f.at.0.line, f.at.0.col));
    let mut covered: Vec<&[Seg]> = Vec::new();
    let mut reported: Vec<(&str, &str)> = Vec::new();
    for f in seen {
        let (severity, code, message, help) = match support(f.ty, f.field) {
            Some(Support::NotImplemented { instead }) => (
                Severity::Warning,
                codes::NOT_IMPLEMENTED_FIELD,
                "is not implemented by sluice and is ignored",
                instead.to_string(),
            ),
            Some(Support::Unsupported { why }) => (
                Severity::Error,
                codes::UNSUPPORTED_FIELD,
                "is not implemented by sluice, which refuses the configuration rather than ignore it",
                format!("{why}; remove the field or serve this traffic with Istio"),
            ),
            _ => continue,
        };
        let nested = covered
            .iter()
            .any(|p| f.path.len() > p.len() && f.path.starts_with(p));
        if nested {
            continue;
        }
        covered.push(&f.path);
        if reported.contains(&(f.ty, f.field)) {
            continue;
        }
        reported.push((f.ty, f.field));
        let field = path_to_string(&f.path);
        out.push(Diagnostic {
            help: Some(help),
            field: Some(field.clone()),
            ..Diagnostic::new(severity, code, format!("{field} {message}")).at(Origin {
                file: file.clone(),
                line: f.at.0.line,
                column: f.at.0.col,
                end_line: f.at.1.line,
                end_column: f.at.1.col,
            })
        });
    }
}
