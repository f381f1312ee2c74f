//! `networking.k8s.io/v1` Ingress and IngressClass, every field of their specs (each one is
//! either served or reported: the loader checks them against the support table).
use serde::Deserialize;

/// `Ingress.spec`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    pub ingress_class_name: Option<String>,
    pub default_backend: Option<IngressBackend>,
    #[serde(default)]
    pub tls: Vec<IngressTls>,
    #[serde(default)]
    pub rules: Vec<IngressRule>,
}

/// `IngressTLS`: hosts served with the certificate of `secretName`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    #[serde(default)]
    pub hosts: Vec<String>,
    pub secret_name: Option<String>,
}

/// `IngressRule`: a host (none: every host) and its HTTP paths.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    pub host: Option<String>,
    pub http: Option<HttpIngressRuleValue>,
}

/// `HTTPIngressRuleValue`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpIngressRuleValue {
    #[serde(default)]
    pub paths: Vec<HttpIngressPath>,
}

/// `HTTPIngressPath`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpIngressPath {
    pub path: Option<String>,
    /// `Exact`, `Prefix` or `ImplementationSpecific` (required in v1).
    pub path_type: Option<String>,
    pub backend: Option<IngressBackend>,
}

/// `IngressBackend`: a Service port, or a resource (exactly one).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressBackend {
    pub service: Option<IngressServiceBackend>,
    pub resource: Option<TypedLocalObjectReference>,
}

/// `IngressServiceBackend`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressServiceBackend {
    pub name: Option<String>,
    pub port: Option<ServiceBackendPort>,
}

/// `ServiceBackendPort`: by number or by the Service port's name (exactly one).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBackendPort {
    pub name: Option<String>,
    pub number: Option<i32>,
}

/// `TypedLocalObjectReference`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TypedLocalObjectReference {
    pub api_group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
}

/// `IngressClass.spec`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassSpec {
    pub controller: Option<String>,
    pub parameters: Option<IngressClassParametersReference>,
}

/// `IngressClassParametersReference`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassParametersReference {
    pub api_group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub scope: Option<String>,
    pub namespace: Option<String>,
}
