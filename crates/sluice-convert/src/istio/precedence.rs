//! Istio takes a VirtualService's first matching route; the Gateway API takes the most specific
//! match (exact path, longest prefix, method, most headers, most query parameters; regexes
//! last). Where a later route's match outranks an earlier route's and some request matches
//! both, the Gateway API would give that request to the later route. This pass finds those
//! pairs within one HTTPRoute and keeps Istio's answer:
//! - a later match that only ever catches requests the earlier one takes is left out;
//! - when the earlier path covers the later one, the earlier rule gets the intersection as a
//!   match of its own (as specific as the later one, and first in rule order on a tie);
//! - a catch-all that would outrank an earlier regex becomes the regex `/.*` (regexes sort by
//!   length, so the longer earlier one wins);
//! - anything else is warned about.
use crate::notes::Notes;
use crate::paths::literal_prefix;
use serde_json::{json, Value};
use sluice_config::validate::P;
use sluice_config::Object;

#[derive(Debug, Clone, PartialEq)]
enum PathM {
    /// Whole path elements; without a trailing `/` (empty: every path).
    Prefix(String),
    Exact(String),
    /// The literal every match starts with.
    Regex(String),
    /// `<literal>[^/].*`: the rest of an Istio string prefix, paths that continue the literal
    /// within its last element.
    Tail(String),
    /// `<literal>.*`: every path that starts with the literal (Istio's prefix ending in `/`).
    Starts(String),
}

fn path_of(m: &Value) -> PathM {
    let p = &m["path"];
    let value = p["value"].as_str().unwrap_or("/");
    match p["type"].as_str() {
        Some("Exact") => PathM::Exact(value.into()),
        Some("RegularExpression") => {
            let lit = literal_prefix(value);
            let escaped = crate::paths::literal(&lit);
            if value == format!("{escaped}[^/].*") {
                PathM::Tail(lit)
            } else if value == format!("{escaped}.*") {
                PathM::Starts(lit)
            } else {
                PathM::Regex(lit)
            }
        }
        _ => PathM::Prefix(value.trim_end_matches('/').into()),
    }
}

/// The Gateway API's precedence of a match (greater wins).
fn rank(m: &Value) -> (u8, usize, bool, usize, usize) {
    let value = m["path"]["value"].as_str().unwrap_or("/").len();
    let kind = match m["path"]["type"].as_str() {
        Some("Exact") => 2,
        Some("RegularExpression") => 0,
        _ => 1,
    };
    let count = |k: &str| m.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    (
        kind,
        if m.get("path").is_some() { value } else { 1 },
        m.get("method").is_some(),
        count("headers"),
        count("queryParams"),
    )
}

fn element_prefix(prefix: &str, path: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with('/'))
}

/// Every path `b` matches, `a` matches.
fn covers(a: &PathM, b: &PathM) -> bool {
    match (a, b) {
        (PathM::Prefix(p), PathM::Prefix(q) | PathM::Exact(q)) => element_prefix(p, q),
        (PathM::Prefix(p), PathM::Regex(_)) => p.is_empty(),
        (PathM::Exact(e), PathM::Exact(f)) => e == f,
        (
            PathM::Starts(l),
            PathM::Prefix(q) | PathM::Exact(q) | PathM::Tail(q) | PathM::Starts(q),
        ) => q.starts_with(l.as_str()),
        _ => false,
    }
}

/// Some path may match both.
fn paths_overlap(a: &PathM, b: &PathM) -> bool {
    let strs = |l: &str, s: &str| l.starts_with(s) || s.starts_with(l);
    // A tail never matches its own literal's element boundary.
    let tail_vs = |l: &str, other: &PathM| match other {
        PathM::Prefix(p) => {
            p.is_empty()
                || l.starts_with(&format!("{p}/"))
                || (p.len() > l.len() && p.starts_with(l) && !p[l.len()..].starts_with('/'))
        }
        PathM::Exact(e) => e.len() > l.len() && e.starts_with(l) && !e[l.len()..].starts_with('/'),
        // Strings starting with `m`: past `l`, a tail needs anything but `/`.
        PathM::Regex(m) | PathM::Tail(m) | PathM::Starts(m) => {
            l.starts_with(m.as_str()) || (m.starts_with(l) && !m[l.len()..].starts_with('/'))
        }
    };
    match (a, b) {
        (PathM::Tail(l), other) | (other, PathM::Tail(l)) => tail_vs(l, other),
        (PathM::Regex(l), PathM::Regex(m)) => strs(l, m),
        (PathM::Regex(l), PathM::Prefix(p)) | (PathM::Prefix(p), PathM::Regex(l)) => strs(l, p),
        (PathM::Regex(l), PathM::Exact(e)) | (PathM::Exact(e), PathM::Regex(l)) => {
            e.starts_with(l.as_str())
        }
        _ => covers(a, b) || covers(b, a),
    }
}

/// `(name, type, value)` of the header or query conditions under `key`.
fn conds(m: &Value, key: &str) -> Vec<(String, String, String)> {
    m.get(key)
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
                    (s("name").to_ascii_lowercase(), s("type"), s("value"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// No request can satisfy both (different exact values for one name, or different methods).
fn conditions_exclude(a: &Value, b: &Value) -> bool {
    let method_differs = matches!((a.get("method"), b.get("method")), (Some(x), Some(y)) if x != y);
    method_differs
        || ["headers", "queryParams"].iter().any(|k| {
            let (ca, cb) = (conds(a, k), conds(b, k));
            ca.iter().any(|(n, t, v)| {
                cb.iter()
                    .any(|(m, u, w)| n == m && t == "Exact" && u == "Exact" && v != w)
            })
        })
}

/// Every condition of `a` (besides the path) is one of `b`'s.
fn conditions_within(a: &Value, b: &Value) -> bool {
    a.get("method").is_none_or(|m| b.get("method") == Some(m))
        && ["headers", "queryParams"].iter().all(|k| {
            let cb = conds(b, k);
            conds(a, k).iter().all(|c| cb.contains(c))
        })
}

/// `b`'s path with the conditions of both.
fn intersection(a: &Value, b: &Value) -> Value {
    let mut m = b.clone();
    if let Some(x) = a.get("method") {
        m["method"] = x.clone();
    }
    for k in ["headers", "queryParams"] {
        let mut list: Vec<Value> = b
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for c in a.get(k).and_then(Value::as_array).into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or("").to_ascii_lowercase();
            if !list
                .iter()
                .any(|x| x["name"].as_str().unwrap_or("").eq_ignore_ascii_case(&name))
            {
                list.push(c.clone());
            }
        }
        if !list.is_empty() {
            m[k] = json!(list);
        }
    }
    m
}

fn matches_of(rule: &Value) -> Vec<Value> {
    rule.get("matches")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| vec![json!({})])
}

fn is_catch_all(m: &Value) -> bool {
    path_of(m) == PathM::Prefix(String::new()) && conditions_within(m, &json!({}))
}

fn prefix_rewrite(rule: &Value) -> bool {
    rule.to_string().contains("\"ReplacePrefixMatch\"")
}

enum Settled {
    Keep,
    Remove,
    /// Look again with this match instead.
    Replace(Value),
}

/// What to do with match `mj` of rule `j` against every match of the rules before it.
fn settle(
    vs: &Object,
    rules: &mut [(usize, Value)],
    j: usize,
    mj: &Value,
    notes: &mut Notes,
    comments: &mut Vec<String>,
) -> Settled {
    for i in 0..j {
        for mi in &matches_of(&rules[i].1) {
            let (pi, pj) = (path_of(mi), path_of(mj));
            if rank(mj) <= rank(mi) || !paths_overlap(&pi, &pj) || conditions_exclude(mi, mj) {
                continue;
            }
            let (ri, rj) = (rules[i].0, rules[j].0);
            if covers(&pi, &pj) && conditions_within(mi, mj) {
                comments.push(notes.lost(vs, &P::spec().k("http").i(rj), format!("a match of this route only takes requests route http[{ri}] takes first in Istio; the Gateway API would prefer it for being more specific, so it is left out: {mj}")));
                return Settled::Remove;
            }
            // ReplacePrefixMatch only goes with PathPrefix matches.
            let rewrite_ok = matches!(pj, PathM::Prefix(_)) || !prefix_rewrite(&rules[i].1);
            if covers(&pi, &pj) && rewrite_ok {
                let both = intersection(mi, mj);
                if let Some(l) = rules[i].1["matches"].as_array_mut() {
                    if !l.contains(&both) {
                        l.push(both);
                        comments.push(format!("Rule {i} also matches {mj} with its own conditions: Istio gives such requests to http[{ri}] first, the Gateway API would give them to the more specific rule {j}."));
                    }
                }
                continue;
            }
            if is_catch_all(mj) && matches!(pi, PathM::Regex(_) | PathM::Tail(_) | PathM::Starts(_))
            {
                comments.push(format!("Rule {j} matches every path as the regex /.* so that the earlier regex of rule {i} keeps its requests, as in Istio (the Gateway API sorts a PathPrefix / before every regex)."));
                return Settled::Replace(
                    json!({ "path": { "type": "RegularExpression", "value": "/.*" } }),
                );
            }
            comments.push(notes.lost(vs, &P::spec().k("http").i(rj), format!("some requests match both this route and route http[{ri}]: Istio gives them to http[{ri}], the Gateway API to this one (more specific); this cannot be written so that both agree: {mj} against {mi}")));
        }
    }
    Settled::Keep
}

/// Reorders nothing; adjusts matches so that the Gateway API's precedence gives every request
/// the rule Istio's order gives it. `rules[k].0` is the source route's index (for warnings).
pub fn preserve(
    vs: &Object,
    rules: &mut Vec<(usize, Value)>,
    notes: &mut Notes,
    comments: &mut Vec<String>,
) {
    let mut emptied = Vec::new();
    for j in 1..rules.len() {
        let mut later = matches_of(&rules[j].1);
        let mut k = 0;
        while k < later.len() {
            let mj = later[k].clone();
            match settle(vs, rules, j, &mj, notes, comments) {
                Settled::Keep => k += 1,
                Settled::Remove => {
                    later.remove(k);
                }
                Settled::Replace(m) => later[k] = m,
            }
        }
        if later.is_empty() {
            // Every match was shadowed (without matches the rule would take every path).
            emptied.push(j);
        } else if rules[j].1.get("matches").is_some() || later != vec![json!({})] {
            rules[j].1["matches"] = json!(later);
        }
    }
    for j in emptied.into_iter().rev() {
        rules.remove(j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pp(v: &str) -> Value {
        json!({"path": {"type": "PathPrefix", "value": v}})
    }

    #[test]
    fn overlaps_and_covers() {
        assert!(covers(
            &PathM::Prefix("/api".into()),
            &PathM::Exact("/api/health".into())
        ));
        assert!(!covers(
            &PathM::Prefix("/api".into()),
            &PathM::Exact("/apis".into())
        ));
        assert!(paths_overlap(
            &PathM::Regex("/api".into()),
            &PathM::Prefix(String::new())
        ));
        assert!(!paths_overlap(
            &PathM::Regex("/users".into()),
            &PathM::Prefix("/tasks".into())
        ));
        assert!(!paths_overlap(
            &PathM::Tail("/api".into()),
            &PathM::Prefix("/api".into())
        ));
        assert!(paths_overlap(
            &PathM::Tail("/api".into()),
            &PathM::Prefix("/apix".into())
        ));
        assert!(paths_overlap(
            &PathM::Tail("/api".into()),
            &PathM::Prefix(String::new())
        ));
        assert_eq!(
            path_of(&json!({"path": {"type": "RegularExpression", "value": "/a\\.b[^/].*"}})),
            PathM::Tail("/a.b".into())
        );
        assert!(rank(&json!({"path": {"type": "Exact", "value": "/a"}})) > rank(&pp("/abc")));
        assert!(rank(&pp("/abc")) > rank(&pp("/a")));
        assert!(conditions_exclude(
            &json!({"method": "GET"}),
            &json!({"method": "POST"})
        ));
    }
}
