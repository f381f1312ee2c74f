//! Writing converted objects: YAML documents (block style, strings JSON-quoted, which YAML reads
//! as they are — the approach of `sluice status`) with the comments above each, or one JSON list.
use crate::Output;
use serde_json::{Map, Value};

/// Every object as a YAML document; a disabled object is written commented out.
pub fn yaml(objects: &[Output]) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        for c in &o.comments {
            for line in c.lines() {
                out.push_str(&format!("# {line}\n"));
            }
        }
        let mut body = String::new();
        block(&o.value, 0, &mut body, kubernetes_order);
        if o.disabled {
            for line in body.lines() {
                out.push_str(&format!("# {line}\n"));
            }
        } else {
            out.push_str(&body);
        }
    }
    out
}

/// The objects as a JSON list (`kind: List` items); disabled objects are left out, their
/// comments are not (JSON has none): read the warnings.
pub fn json(objects: &[Output]) -> String {
    let items: Vec<&Value> = objects
        .iter()
        .filter(|o| !o.disabled)
        .map(|o| &o.value)
        .collect();
    let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items });
    serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

/// A YAML document for a JSON value (block style, keys in JSON's order): what `sluice status`
/// prints.
pub fn yaml_value(v: &Value) -> String {
    let mut out = String::new();
    block(v, 0, &mut out, |m| m.keys().collect());
    out
}

/// Keys as Kubernetes manifests are read: apiVersion, kind, metadata, then a `name` before
/// the rest.
fn kubernetes_order(m: &Map<String, Value>) -> Vec<&String> {
    const FIRST: [&str; 5] = ["apiVersion", "kind", "metadata", "name", "namespace"];
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by_key(|k| (FIRST.iter().position(|f| f == k).unwrap_or(FIRST.len()), *k));
    keys
}

type Order = fn(&Map<String, Value>) -> Vec<&String>;

fn block(v: &Value, indent: usize, out: &mut String, order: Order) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for k in order(m) {
                let v = &m[k];
                if is_block(v) {
                    out.push_str(&format!("{pad}{k}:\n"));
                    let inner = if v.is_array() { indent } else { indent + 2 };
                    block(v, inner, out, order);
                } else {
                    out.push_str(&format!("{pad}{k}: {}\n", scalar(v)));
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                if is_block(item) && item.is_object() {
                    // The first key goes on the dash's line.
                    let mut nested = String::new();
                    block(item, indent + 2, &mut nested, order);
                    out.push_str(&format!("{pad}- {}", &nested[indent + 2..]));
                } else if is_block(item) {
                    out.push_str(&format!("{pad}-\n"));
                    block(item, indent + 2, out, order);
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}
