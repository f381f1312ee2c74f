use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Kubernetes `metadata`. Fields written by the API server are accepted (and ignored) so that
/// `kubectl get -o yaml` output loads as it is.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: Option<String>,
    pub generate_name: Option<String>,
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339, as the API server writes it. Orders objects for Istio's merge rules.
    pub creation_timestamp: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub generation: Option<i64>,
    pub self_link: Option<String>,
    pub deletion_timestamp: Option<String>,
    pub deletion_grace_period_seconds: Option<i64>,
    #[serde(default)]
    pub finalizers: Vec<String>,
    pub owner_references: Option<IgnoredAny>,
    pub managed_fields: Option<IgnoredAny>,
}

/// `selector`-style label maps.
pub type Labels = BTreeMap<String, String>;

/// A label selector's one rule, used everywhere one is read (Gateway `selector`, subsets, a
/// Service's `selector`, ServiceEntry `workloadSelector`): every label of the selector is on the
/// object with the same value. An empty selector selects everything.
pub fn selects(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}
