//! The Gateway API's precedence among the rules of every route on a listener, as a sort key.
use super::*;

/// The spec's precedence, as a key that sorts the winner first: Exact path, then the longest
/// PathPrefix (regular expressions after both), a method match, most header matches, most
/// query matches, the oldest route, the route's rule and match order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Precedence {
    path_kind: std::cmp::Reverse<u8>,
    path_len: std::cmp::Reverse<usize>,
    /// GRPCRoute: the characters of the matched service, then of the method.
    grpc: std::cmp::Reverse<(usize, usize)>,
    no_method: bool,
    headers: std::cmp::Reverse<usize>,
    queries: std::cmp::Reverse<usize>,
    route: usize,
    rule: usize,
    matched: usize,
}

pub(super) fn precedence(
    rule: &HttpRouteRule,
    m: usize,
    route: usize,
    rule_index: usize,
) -> Precedence {
    use std::cmp::Reverse;
    let default = HttpRouteMatch::default();
    let hm = rule.matches.get(m).unwrap_or(&default);
    let (kind, len) = match &hm.path {
        None => (1, 1),
        Some(p) => {
            let value = p.value.as_deref().unwrap_or("/");
            match p.type_.unwrap_or(PathMatchType::PathPrefix) {
                PathMatchType::Exact => (2, value.len()),
                PathMatchType::PathPrefix => (1, value.len()),
                PathMatchType::RegularExpression => (0, value.len()),
            }
        }
    };
    Precedence {
        path_kind: Reverse(kind),
        path_len: Reverse(len),
        grpc: Reverse((0, 0)),
        no_method: hm.method.is_none(),
        headers: Reverse(distinct(
            hm.headers
                .iter()
                .map(|h| h.name.as_deref().map(str::to_ascii_lowercase)),
        )),
        queries: Reverse(distinct(hm.query_params.iter().map(|q| q.name.clone()))),
        route,
        rule: rule_index,
        matched: m,
    }
}

/// How many different names: a repeated name counts once (only its first match applies).
pub(super) fn distinct(names: impl Iterator<Item = Option<String>>) -> usize {
    names.collect::<std::collections::BTreeSet<_>>().len()
}

/// GRPCRoute's precedence: the most characters of matched service, then of method, then the
/// most header matches, then the oldest route and the rule and match order.
pub(super) fn grpc_precedence(
    rule: &GrpcRouteRule,
    m: usize,
    route: usize,
    rule_index: usize,
) -> Precedence {
    use std::cmp::Reverse;
    let default = GrpcRouteMatch::default();
    let gm = rule.matches.get(m).unwrap_or(&default);
    let len = |s: Option<&String>| s.map_or(0, String::len);
    let method = gm.method.as_ref();
    Precedence {
        path_kind: Reverse(1),
        path_len: Reverse(0),
        grpc: Reverse((
            len(method.and_then(|x| x.service.as_ref())),
            len(method.and_then(|x| x.method.as_ref())),
        )),
        no_method: true,
        headers: Reverse(distinct(
            gm.headers
                .iter()
                .map(|h| h.name.as_deref().map(str::to_ascii_lowercase)),
        )),
        queries: Reverse(0),
        route,
        rule: rule_index,
        matched: m,
    }
}
