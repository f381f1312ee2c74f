//! What a conversion could not keep: a warning at the source field (file and line) and a
//! comment beside the converted object that quotes the field, so nothing is dropped silently.
use sluice_config::diag::codes;
use sluice_config::validate::P;
use sluice_config::yaml::{Node, Value};
use sluice_config::{Diagnostic, Object, Severity};

#[derive(Default)]
pub struct Notes {
    pub warnings: Vec<Diagnostic>,
}

impl Notes {
    /// `field` of `object` is not carried over (or not as it was): warn, and return the comment
    /// to put beside the converted object (the message and the field as written).
    pub fn lost(&mut self, object: &Object, field: &P, message: String) -> String {
        let origin = object.origin_at(&field.0);
        let path = sluice_config::yaml::path_to_string(&field.0);
        let value = flow(object.node.lookup(&field.0), 0);
        let mut comment = format!("{} {} ({origin}): {message}", object.kind, object.key());
        if field.0.len() > 1 && value.len() <= 400 {
            comment.push_str(&format!("\n  was: {path}: {value}"));
        }
        let mut d = Diagnostic::new(Severity::Warning, codes::NOT_CONVERTIBLE, message).at(origin);
        d.resource = Some(object.resource());
        d.field = Some(path);
        self.warnings.push(d);
        comment
    }
}

/// A node in YAML flow style, on one line.
fn flow(n: &Node, depth: usize) -> String {
    if depth > 8 {
        return "…".into();
    }
    match &n.value {
        Value::Scalar { text, plain: true } => text.clone(),
        Value::Scalar { text, .. } => format!("{text:?}"),
        Value::Seq(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| flow(i, depth + 1))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", flow(k, depth + 1), flow(v, depth + 1)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
