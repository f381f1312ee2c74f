//! Diagnostics: what `validate` prints and what `run` logs when it refuses a configuration.
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Where in the sources a diagnostic points (1-based line and column; the end is exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    /// What would fix it, when we know.
    pub help: Option<String>,
    pub resource: Option<ResourceRef>,
    pub origin: Option<Origin>,
    /// The field path inside the object, such as `spec.http[1].timeout`.
    pub field: Option<String>,
}

impl Diagnostic {
    pub fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            help: None,
            resource: None,
            origin: None,
            field: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn at(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A diagnostic code with its name and a one-line explanation; `validate --codes` prints them.
pub struct CodeInfo {
    pub code: &'static str,
    pub name: &'static str,
    pub summary: &'static str,
}

pub mod codes {
    pub const REFERENCED_RESOURCE_NOT_FOUND: &str = "IST0101";
    pub const SCHEMA_VALIDATION_ERROR: &str = "IST0106";
    pub const DESTINATION_PORT_SELECTOR_REQUIRED: &str = "IST0112";
    pub const NO_SERVER_CERT_VERIFICATION_DESTINATION: &str = "IST0128";
    pub const NO_SERVER_CERT_VERIFICATION_PORT: &str = "IST0129";
    pub const UNREACHABLE_RULE: &str = "IST0130";
    pub const INEFFECTIVE_MATCH: &str = "IST0131";
    pub const HOST_NOT_FOUND_IN_GATEWAY: &str = "IST0132";
    pub const SCHEMA_WARNING: &str = "IST0133";
    pub const CONFLICTING_GATEWAYS: &str = "IST0145";
    pub const INVALID_GATEWAY_CREDENTIAL: &str = "IST0161";
    pub const YAML_SYNTAX: &str = "SLU0001";
    pub const MISSING_API_VERSION: &str = "SLU0002";
    pub const UNKNOWN_API_VERSION: &str = "SLU0003";
    pub const NOT_AN_OBJECT: &str = "SLU0004";
    pub const DUPLICATE_OBJECT: &str = "SLU0005";
    pub const UNSUPPORTED_KIND: &str = "SLU0006";
    pub const UNSERVED_KIND: &str = "SLU0007";
    pub const UNREADABLE: &str = "SLU0008";
    pub const UNSUPPORTED_FIELD: &str = "SLU0009";
    pub const RETRY_NON_IDEMPOTENT: &str = "SLU0010";
    pub const PREFIX_REWRITE_NOT_SEGMENT_AWARE: &str = "SLU0011";
    pub const FAULT_NEVER_INJECTED: &str = "SLU0012";
    pub const PASSTHROUGH_WITHOUT_TLS_ROUTES: &str = "SLU0013";
    pub const ISTIO_MUTUAL_UNAVAILABLE: &str = "SLU0014";
    pub const NOT_IMPLEMENTED_FIELD: &str = "SLU0015";
    pub const SERVER_NOT_SERVED: &str = "SLU0030";
    pub const NOT_EXPORTED_TO_GATEWAY: &str = "SLU0031";
    pub const NO_ENDPOINTS: &str = "SLU0032";
    pub const NO_OBJECTS: &str = "SLU0033";
    pub const ROUTE_NOT_ACCEPTED: &str = "SLU0034";
    pub const NOT_CONVERTIBLE: &str = "SLU0040";
}

pub const CODES: &[CodeInfo] = &[
    CodeInfo { code: "IST0101", name: "ReferencedResourceNotFound", summary: "a gateway, host, subset, Secret or port that an object refers to does not exist" },
    CodeInfo { code: "IST0106", name: "SchemaValidationError", summary: "the object breaks Istio's schema or validation rules (unknown field, wrong type, invalid value)" },
    CodeInfo { code: "IST0112", name: "VirtualServiceDestinationPortSelectorRequired", summary: "a destination service has several ports and the route names none" },
    CodeInfo { code: "IST0128", name: "NoServerCertificateVerificationDestinationLevel", summary: "DestinationRule TLS without caCertificates: the upstream certificate is checked against system roots only, or not at all" },
    CodeInfo { code: "IST0129", name: "NoServerCertificateVerificationPortLevel", summary: "as IST0128, for a port-level TLS setting" },
    CodeInfo { code: "IST0130", name: "VirtualServiceUnreachableRule", summary: "an HTTP rule can never match because an earlier rule catches every request" },
    CodeInfo { code: "IST0131", name: "VirtualServiceIneffectiveMatch", summary: "a match repeats a match of an earlier rule and is never used" },
    CodeInfo { code: "IST0132", name: "VirtualServiceHostNotFoundInGateway", summary: "a VirtualService host is not exposed by any server of the gateways it binds to" },
    CodeInfo { code: "IST0133", name: "SchemaWarning", summary: "valid, but probably not what was meant (deprecated field, surprising default)" },
    CodeInfo { code: "IST0145", name: "ConflictingGateways", summary: "two Gateways claim the same port and host for the same workloads; the later server is dropped" },
    CodeInfo { code: "IST0161", name: "InvalidGatewayCredential", summary: "the Secret named by credentialName is missing or holds no usable certificate and key" },
    CodeInfo { code: "SLU0001", name: "YamlSyntax", summary: "the file is not valid YAML or JSON" },
    CodeInfo { code: "SLU0002", name: "MissingApiVersion", summary: "an object has no apiVersion" },
    CodeInfo { code: "SLU0003", name: "UnknownApiVersion", summary: "the apiVersion is not one that serves this kind" },
    CodeInfo { code: "SLU0004", name: "NotAnObject", summary: "a document is not a Kubernetes object (no kind, no metadata.name, or not a mapping)" },
    CodeInfo { code: "SLU0005", name: "DuplicateObject", summary: "two objects have the same kind, namespace and name; the later one replaces the earlier, as `kubectl apply` of the files in order would" },
    CodeInfo { code: "SLU0006", name: "UnsupportedKind", summary: "an Istio or Gateway API kind sluice does not implement; it is ignored" },
    CodeInfo { code: "SLU0007", name: "UnservedKind", summary: "an object of a kind a gateway does not use (Deployment, ConfigMap, ...); it is skipped" },
    CodeInfo { code: "SLU0008", name: "Unreadable", summary: "a file or directory could not be read" },
    CodeInfo { code: "SLU0009", name: "UnsupportedField", summary: "a field Istio accepts but sluice does not implement yet; refused rather than ignored" },
    CodeInfo { code: "SLU0010", name: "RetryNonIdempotent", summary: "a route retries on 5xx, gateway-error or reset for methods that are not idempotent (POST, PATCH): a request may run twice" },
    CodeInfo { code: "SLU0011", name: "PrefixRewriteNotSegmentAware", summary: "rewrite.uri replaces a prefix that does not end in '/': /foo -> /bar also turns /foobar into /barbar" },
    CodeInfo { code: "SLU0012", name: "FaultNeverInjected", summary: "a fault without percentage is never injected (Istio 1.28 sends no percentage, so Envoy uses 0%)" },
    CodeInfo { code: "SLU0013", name: "PassthroughWithoutTlsRoutes", summary: "a VirtualService bound to a PASSTHROUGH server has only http routes, which never see that traffic" },
    CodeInfo { code: "SLU0014", name: "IstioMutualUnavailable", summary: "a DestinationRule asks for ISTIO_MUTUAL, which needs mesh certificates a standalone gateway does not have" },
    CodeInfo { code: "SLU0015", name: "NotImplementedField", summary: "a field (or retryOn condition) Istio accepts that sluice does not implement yet; it is ignored, and the help says what happens instead" },
    CodeInfo { code: "SLU0030", name: "ServerNotServed", summary: "a Gateway server is not served: its protocol or TLS mode is not supported, or its port already speaks another protocol" },
    CodeInfo { code: "SLU0031", name: "NotExportedToGateway", summary: "a VirtualService, ServiceEntry or Service is not exported (exportTo) to the gateway's namespace, so the gateway does not see it" },
    CodeInfo { code: "SLU0032", name: "NoEndpoints", summary: "a route's service or subset has no endpoints: requests get 503 (UH)" },
    CodeInfo { code: "SLU0033", name: "NoObjects", summary: "validate found no objects in the paths it was given" },
    CodeInfo { code: "SLU0034", name: "GatewayApiNotAccepted", summary: "a Gateway API route or listener is not accepted, or a reference it makes cannot be resolved (what `sluice status` writes as a False condition)" },
    CodeInfo { code: "SLU0040", name: "NotConvertible", summary: "`sluice convert`: a field the Gateway API cannot express (or not as the source API meant it); kept as a comment beside the converted object" },
];
