//! VirtualService delegation (one level): a root route with `delegate` hands matching requests
//! to the delegate's routes. Each delegate route is narrowed by the root route's match, and
//! inherits from the root route what it does not set itself (as Istio merges them).
use sluice_api::istio::{HttpMatchRequest, HttpRoute, StringMatch};
use std::collections::BTreeMap;

/// The delegate route as it applies under `root`, or `None` when no request can satisfy both
/// matches (the route is dropped, as Istio drops it).
pub fn merge_route(root: &HttpRoute, delegate: &HttpRoute) -> Option<HttpRoute> {
    let mut out = delegate.clone();
    out.match_ = merge_matches(&root.match_, &delegate.match_)?;
    out.rewrite = out.rewrite.or_else(|| root.rewrite.clone());
    out.timeout = out.timeout.or(root.timeout);
    out.retries = out.retries.or_else(|| root.retries.clone());
    out.fault = out.fault.or_else(|| root.fault.clone());
    if out.mirror.is_none() && out.mirrors.is_empty() {
        out.mirror = root.mirror.clone();
        out.mirror_percentage = out.mirror_percentage.or(root.mirror_percentage);
        out.mirror_percent = out.mirror_percent.or(root.mirror_percent);
        out.mirrors = root.mirrors.clone();
    }
    out.cors_policy = out.cors_policy.or_else(|| root.cors_policy.clone());
    out.headers = out.headers.or_else(|| root.headers.clone());
    Some(out)
}

/// Every root match combined with every delegate match; conflicting pairs are dropped. An
/// empty list on either side matches everything. `None`: nothing is left.
fn merge_matches(
    root: &[HttpMatchRequest],
    delegate: &[HttpMatchRequest],
) -> Option<Vec<HttpMatchRequest>> {
    match (root.is_empty(), delegate.is_empty()) {
        (true, _) => return Some(delegate.to_vec()),
        (false, true) => return Some(root.to_vec()),
        _ => {}
    }
    let merged: Vec<_> = root
        .iter()
        .flat_map(|r| delegate.iter().filter_map(move |d| merge_match(r, d)))
        .collect();
    (!merged.is_empty()).then_some(merged)
}

fn merge_match(root: &HttpMatchRequest, d: &HttpMatchRequest) -> Option<HttpMatchRequest> {
    let mut m = d.clone();
    m.uri = merge_uri(root.uri.as_ref(), d.uri.as_ref())?;
    m.scheme = same(&root.scheme, &d.scheme)?;
    m.method = same(&root.method, &d.method)?;
    m.authority = same(&root.authority, &d.authority)?;
    m.port = same(&root.port, &d.port)?;
    m.headers = union(&root.headers, &d.headers)?;
    m.without_headers = union(&root.without_headers, &d.without_headers)?;
    m.query_params = union(&root.query_params, &d.query_params)?;
    m.ignore_uri_case =
        Some(root.ignore_uri_case.unwrap_or(false) || d.ignore_uri_case.unwrap_or(false))
            .filter(|b| *b);
    if m.gateways.is_empty() {
        m.gateways = root.gateways.clone();
    }
    Some(m)
}

/// The delegate's path must lie inside the root's: a prefix or exact path under the root's
/// prefix, or the very same match.
fn merge_uri(root: Option<&StringMatch>, d: Option<&StringMatch>) -> Option<Option<StringMatch>> {
    match (root, d) {
        (None, d) => Some(d.cloned()),
        (r, None) => Some(r.cloned()),
        (Some(r), Some(d)) if r == d => Some(Some(d.clone())),
        (Some(r), Some(d)) => {
            let root_prefix = r.prefix.as_deref()?;
            let inner = d.prefix.as_deref().or(d.exact.as_deref())?;
            inner.starts_with(root_prefix).then(|| Some(d.clone()))
        }
    }
}

fn same<T: Clone + PartialEq>(a: &Option<T>, b: &Option<T>) -> Option<Option<T>> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => None,
        (Some(x), _) => Some(Some(x.clone())),
        (None, y) => Some(y.clone()),
    }
}

fn union(
    a: &BTreeMap<String, StringMatch>,
    b: &BTreeMap<String, StringMatch>,
) -> Option<BTreeMap<String, StringMatch>> {
    let mut out = a.clone();
    for (k, v) in b {
        match out.get(k) {
            Some(existing) if existing != v => return None,
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &str) -> HttpMatchRequest {
        HttpMatchRequest {
            uri: Some(StringMatch {
                prefix: Some(p.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn paths_must_nest() {
        let root = HttpRoute {
            match_: vec![prefix("/shop")],
            timeout: Some(sluice_api::Duration::from_millis(500)),
            ..Default::default()
        };
        let inside = HttpRoute {
            match_: vec![prefix("/shop/cart")],
            ..Default::default()
        };
        let merged = merge_route(&root, &inside).unwrap();
        assert_eq!(merged.match_, vec![prefix("/shop/cart")]);
        assert_eq!(merged.timeout, root.timeout, "inherited from the root");
        let outside = HttpRoute {
            match_: vec![prefix("/admin")],
            ..Default::default()
        };
        assert!(merge_route(&root, &outside).is_none());
        let any = HttpRoute::default();
        assert_eq!(
            merge_route(&root, &any).unwrap().match_,
            vec![prefix("/shop")]
        );
    }

    #[test]
    fn header_conflicts_drop_the_pair() {
        let mut a = prefix("/");
        a.headers.insert(
            "x".into(),
            StringMatch {
                exact: Some("1".into()),
                ..Default::default()
            },
        );
        let mut b = prefix("/");
        b.headers.insert(
            "x".into(),
            StringMatch {
                exact: Some("2".into()),
                ..Default::default()
            },
        );
        assert!(merge_match(&a, &b).is_none());
        let mut c = prefix("/");
        c.headers.insert(
            "y".into(),
            StringMatch {
                exact: Some("2".into()),
                ..Default::default()
            },
        );
        assert_eq!(merge_match(&a, &c).unwrap().headers.len(), 2);
    }
}
