//! One Istio `HTTPMatchRequest` as Gateway API `HTTPRouteMatch`es (several when a string prefix
//! needs a PathPrefix and a regex). A condition the Gateway API cannot express is left out of
//! the match, warned about and commented.
use crate::notes::Notes;
use crate::paths;
use serde_json::{json, Map, Value};
use sluice_api::istio::{HttpMatchRequest, StringMatch};
use sluice_config::validate::P;
use sluice_config::Object;

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// `(type, value)` of a header or query parameter value match: exact stays exact, a prefix and a
/// regex become a regex; no condition at all means "present" (any value).
fn value_match(m: &StringMatch) -> (&'static str, String) {
    match (&m.exact, &m.prefix, &m.regex) {
        (Some(e), _, _) => ("Exact", e.clone()),
        (_, Some(p), _) => ("RegularExpression", format!("{}.*", paths::literal(p))),
        (_, _, Some(r)) => ("RegularExpression", r.clone()),
        _ => ("RegularExpression", ".*".into()),
    }
}

/// Is the path of this match whole (exact), a prefix, or none? (Rewrites need to know.)
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PathKind {
    None,
    Exact,
    Prefix,
    Regex,
}

pub fn path_kind(m: &HttpMatchRequest) -> PathKind {
    match m.uri.as_ref() {
        None => PathKind::None,
        Some(u) if u.exact.is_some() => PathKind::Exact,
        Some(u) if u.prefix.is_some() => PathKind::Prefix,
        Some(_) => PathKind::Regex,
    }
}

/// The Gateway API matches for match `mi` of rule `ri`.
pub fn convert(
    vs: &Object,
    at: &P,
    m: &HttpMatchRequest,
    notes: &mut Notes,
    comments: &mut Vec<String>,
) -> Vec<Value> {
    let mut lost = |field: &str, what: String| comments.push(notes.lost(vs, &at.k(field), what));
    let nocase = m.ignore_uri_case == Some(true);
    let path_values: Vec<Value> = match &m.uri {
        None => vec![Value::Null],
        Some(u) => match (&u.exact, &u.prefix, &u.regex) {
            (Some(e), _, _) if nocase => vec![paths::regex(&format!("(?i){}", paths::literal(e)))],
            (Some(e), _, _) => vec![paths::exact(e)],
            (_, Some(p), _) if nocase => {
                vec![paths::regex(&format!("(?i){}.*", paths::literal(p)))]
            }
            (_, Some(p), _) => paths::string_prefix(p),
            (_, _, Some(r)) if nocase => vec![paths::regex(&format!("(?i)(?:{r})"))],
            (_, _, Some(r)) => vec![paths::regex(r)],
            _ => vec![Value::Null],
        },
    };
    let mut rest = Map::new();
    if let Some(method) = &m.method {
        match &method.exact {
            Some(x) if METHODS.contains(&x.as_str()) => {
                rest.insert("method".into(), json!(x));
            }
            _ => lost("method", "only an exact standard HTTP method can be matched in the Gateway API; the method condition is left out".into()),
        }
    }
    for (key, conditions) in [("headers", &m.headers), ("queryParams", &m.query_params)] {
        let list: Vec<Value> = conditions
            .iter()
            .map(|(name, v)| {
                let (t, value) = value_match(v);
                json!({ "name": name, "type": t, "value": value })
            })
            .collect();
        if !list.is_empty() {
            rest.insert(key.into(), json!(list));
        }
    }
    let dropped = [
        (
            "authority",
            m.authority.is_some(),
            "an authority condition (use the HTTPRoute's hostnames)",
        ),
        ("scheme", m.scheme.is_some(), "a scheme condition"),
        (
            "port",
            m.port.is_some(),
            "a port condition (attach the route to the port's listener with sectionName)",
        ),
        (
            "withoutHeaders",
            !m.without_headers.is_empty(),
            "a withoutHeaders condition",
        ),
        (
            "sourceLabels",
            !m.source_labels.is_empty(),
            "a sourceLabels condition",
        ),
        (
            "sourceNamespace",
            m.source_namespace.is_some(),
            "a sourceNamespace condition",
        ),
        (
            "gateways",
            !m.gateways.is_empty(),
            "a per-match gateways condition",
        ),
    ];
    for (field, set, what) in dropped {
        if set {
            lost(field, format!("{what} has no Gateway API match; it is left out, so this rule matches more requests than before"));
        }
    }
    path_values
        .into_iter()
        .map(|p| {
            let mut m = rest.clone();
            if !p.is_null() {
                m.insert("path".into(), p);
            }
            Value::Object(m)
        })
        .collect()
}
