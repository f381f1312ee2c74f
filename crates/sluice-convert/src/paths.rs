//! Path matches: Istio's string prefixes and exact paths as Gateway API path matches.
//!
//! Istio's `prefix` is a string prefix (`/users` also matches `/usersfoo`); the Gateway API's
//! `PathPrefix` matches whole path elements and ignores a trailing `/` (`/api/` also matches
//! `/api`). A prefix is therefore written as `PathPrefix` for the element-aligned part plus a
//! `RegularExpression` for the rest, so every request matches as before.
use serde_json::{json, Value};

/// An RE2 pattern for a literal string.
pub fn literal(s: &str) -> String {
    regex::escape(s)
}

/// The path matches that select exactly the paths Istio's string prefix `p` selects.
pub fn string_prefix(p: &str) -> Vec<Value> {
    if p.is_empty() || p == "/" {
        return vec![json!({ "type": "PathPrefix", "value": "/" })];
    }
    if p.ends_with('/') {
        // `PathPrefix /api/` would also take `/api`: only a regex says "`/api/` and below".
        return vec![json!({ "type": "RegularExpression", "value": format!("{}.*", literal(p)) })];
    }
    vec![
        json!({ "type": "PathPrefix", "value": p }),
        json!({ "type": "RegularExpression", "value": format!("{}[^/].*", literal(p)) }),
    ]
}

/// The literal a regex starts with: every string it matches starts with it (empty when unsure,
/// e.g. with an alternation).
pub fn literal_prefix(re: &str) -> String {
    let re = re.strip_prefix("^(?:").unwrap_or(re);
    if re.contains('|') {
        return String::new();
    }
    let mut out = String::new();
    let mut chars = re.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) if !n.is_ascii_alphanumeric() => out.push(n),
                _ => break,
            },
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' => {
                // A quantifier makes the character before it optional.
                if matches!(c, '*' | '?' | '{') {
                    out.pop();
                }
                break;
            }
            c => out.push(c),
        }
    }
    out
}

pub fn exact(p: &str) -> Value {
    json!({ "type": "Exact", "value": p })
}

pub fn regex(re: &str) -> Value {
    json!({ "type": "RegularExpression", "value": re })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_of_regexes() {
        assert_eq!(literal_prefix("^(?:/users[^/].*)$"), "/users");
        assert_eq!(literal_prefix("/v1\\.0/.*"), "/v1.0/");
        assert_eq!(literal_prefix("(?i)/a"), "");
        assert_eq!(literal_prefix("/ab*"), "/a");
        assert_eq!(literal_prefix("/a|/b"), "");
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            string_prefix("/"),
            vec![json!({"type": "PathPrefix", "value": "/"})]
        );
        assert_eq!(
            string_prefix("/api/"),
            vec![json!({"type": "RegularExpression", "value": "/api/.*"})]
        );
        assert_eq!(
            string_prefix("/v1.0"),
            vec![
                json!({"type": "PathPrefix", "value": "/v1.0"}),
                json!({"type": "RegularExpression", "value": "/v1\\.0[^/].*"})
            ]
        );
    }
}
