//! The Kubernetes core objects sluice reads from files (and later from a cluster): only the fields
//! that routing needs are typed, the rest are accepted and ignored.
use crate::meta::Labels;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `v1/Secret`: `data` is base64, `stringData` plain text (and wins on a shared key, as the API
/// server merges it).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretBody {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
    pub immutable: Option<bool>,
}

/// A ConfigMap's content (CA bundles under `ca.crt`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapBody {
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Base64 values, as in a Secret's `data`.
    #[serde(default)]
    pub binary_data: BTreeMap<String, String>,
    pub immutable: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    pub selector: Option<Labels>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs", default)]
    pub cluster_ips: Vec<String>,
    pub external_name: Option<String>,
    #[serde(rename = "externalIPs", default)]
    pub external_ips: Vec<String>,
    pub session_affinity: Option<String>,
    pub session_affinity_config: Option<IgnoredAny>,
    pub ip_families: Option<IgnoredAny>,
    pub ip_family_policy: Option<String>,
    pub internal_traffic_policy: Option<String>,
    pub external_traffic_policy: Option<String>,
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: Option<String>,
    pub load_balancer_source_ranges: Option<IgnoredAny>,
    pub load_balancer_class: Option<String>,
    pub health_check_node_port: Option<i32>,
    pub allocate_load_balancer_node_ports: Option<bool>,
    pub publish_not_ready_addresses: Option<bool>,
    pub traffic_distribution: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: Option<i64>,
    pub target_port: Option<IntOrString>,
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
    pub node_port: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

/// `discovery.k8s.io/v1/EndpointSlice` (top-level fields, not under `spec`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSliceBody {
    pub address_type: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<SliceEndpoint>,
    #[serde(default)]
    pub ports: Vec<SlicePort>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SliceEndpoint {
    #[serde(default)]
    pub addresses: Vec<String>,
    pub conditions: Option<SliceConditions>,
    pub hostname: Option<String>,
    pub node_name: Option<String>,
    pub zone: Option<String>,
    pub target_ref: Option<ObjectReference>,
    pub hints: Option<IgnoredAny>,
    pub deprecated_topology: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SliceConditions {
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    pub api_version: Option<String>,
    pub resource_version: Option<String>,
    pub field_path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlicePort {
    pub name: Option<String>,
    pub port: Option<i64>,
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
}
