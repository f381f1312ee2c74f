//! One converted object: its JSON value (written as YAML or JSON) and the comments that say what
//! it could not keep.
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Output {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The whole object: apiVersion, kind, metadata and its body.
    pub value: Value,
    /// Written above the object, one `# ` line each.
    pub comments: Vec<String>,
    /// Written only as comments (kept for review, not applied): e.g. the route ingress2gateway
    /// writes for a `defaultBackend`, which Istio never served.
    pub disabled: bool,
}

/// The apiVersion sluice writes for a kind it generates.
fn api_version(kind: &str) -> &'static str {
    match kind {
        "Service" => "v1",
        "EndpointSlice" => "discovery.k8s.io/v1",
        _ => "gateway.networking.k8s.io/v1",
    }
}

impl Output {
    /// An object whose body is `spec`.
    pub fn new(kind: &'static str, namespace: &str, name: &str, spec: Value) -> Output {
        Output::with_body(
            kind,
            namespace,
            name,
            json!({ "spec": spec }),
            Default::default(),
        )
    }

    /// An object with top-level body fields (EndpointSlice) and labels.
    pub fn with_body(
        kind: &'static str,
        namespace: &str,
        name: &str,
        body: Value,
        labels: serde_json::Map<String, Value>,
    ) -> Output {
        let mut metadata = json!({ "name": name, "namespace": namespace });
        if !labels.is_empty() {
            metadata["labels"] = Value::Object(labels);
        }
        let mut value = json!({
            "apiVersion": api_version(kind),
            "kind": kind,
            "metadata": metadata,
        });
        if let (Value::Object(v), Value::Object(b)) = (&mut value, body) {
            v.extend(b);
        }
        Output {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            value,
            comments: Vec::new(),
            disabled: false,
        }
    }

    pub fn spec_mut(&mut self) -> &mut Value {
        &mut self.value["spec"]
    }
}
