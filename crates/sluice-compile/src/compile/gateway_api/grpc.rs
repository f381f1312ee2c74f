//! GRPCRoute: read as the HTTPRoute it means, with its own precedence, and the spec's rule for
//! an HTTPRoute and a GRPCRoute that share hostnames on one listener.
use super::*;

/// A GRPCRoute as the HTTPRoute it means: a method match is a path match on
/// `/<service>/<method>` (Exact: both exact; service only: the `/<service>` prefix; method only
/// or RegularExpression: a regex), its filters and backends are HTTPRoute's of the same types.
pub(crate) fn grpc_as_http(g: &GrpcRouteSpec) -> HttpRouteSpec {
    HttpRouteSpec {
        parent_refs: g.parent_refs.clone(),
        use_default_gateways: None,
        hostnames: g.hostnames.clone(),
        rules: g
            .rules
            .iter()
            .map(|r| HttpRouteRule {
                name: r.name.clone(),
                matches: r
                    .matches
                    .iter()
                    .map(|m| HttpRouteMatch {
                        path: m.method.as_ref().map(grpc_path),
                        headers: m.headers.iter().map(HttpHeaderMatch::from).collect(),
                        ..Default::default()
                    })
                    .collect(),
                filters: r.filters.iter().map(HttpRouteFilter::from).collect(),
                backend_refs: r.backend_refs.iter().map(HttpBackendRef::from).collect(),
                ..Default::default()
            })
            .collect(),
    }
}

fn grpc_path(m: &GrpcMethodMatch) -> HttpPathMatch {
    let (service, method) = (m.service.as_deref(), m.method.as_deref());
    let (type_, value) = match (m.type_.unwrap_or(HeaderMatchType::Exact), service, method) {
        (HeaderMatchType::Exact, Some(s), Some(me)) => (PathMatchType::Exact, format!("/{s}/{me}")),
        (HeaderMatchType::Exact, Some(s), None) => (PathMatchType::PathPrefix, format!("/{s}")),
        (HeaderMatchType::Exact, None, me) => (
            PathMatchType::RegularExpression,
            format!("/[^/]+/{}", regex::escape(me.unwrap_or(""))),
        ),
        (HeaderMatchType::RegularExpression, s, me) => (
            PathMatchType::RegularExpression,
            format!(
                "/(?:{})/(?:{})",
                s.unwrap_or("[^/]+"),
                me.unwrap_or("[^/]+")
            ),
        ),
    };
    HttpPathMatch {
        type_: Some(type_),
        value: Some(value),
    }
}

/// What a request gets for a backend the route cannot use: the spec's 500 for HTTPRoute,
/// UNAVAILABLE for GRPCRoute (503, which a gRPC client sees as grpc-status 14).
pub(super) fn unusable_backend_status(route: &Object) -> u16 {
    if route.kind == Kind::GrpcRoute {
        503
    } else {
        500
    }
}

/// The spec's rule for an HTTPRoute and a GRPCRoute on one listener whose hostnames meet: only
/// the older (then `namespace/name` first) is accepted. The route that wins over `route`, if one
/// does.
pub(crate) fn http_grpc_conflict<'s>(
    store: &'s Store,
    gw: &Object,
    l: &KubeListener,
    route: &Object,
) -> Option<&'s Arc<Object>> {
    let other_kind = match route.kind {
        Kind::HttpRoute => Kind::GrpcRoute,
        Kind::GrpcRoute => Kind::HttpRoute,
        _ => return None,
    };
    let domains = route_domains(l, route_parts(route)?.hostnames);
    store
        .of_kind(other_kind)
        .filter(|o| oldest_first(o, route) == std::cmp::Ordering::Less)
        .filter(|o| {
            route_parts(o).is_some_and(|parts| {
                parts.parents.iter().any(|p| attaches(p, o, gw, l))
                    && listener_allows(store, gw, l, o)
                    && route_domains(l, parts.hostnames)
                        .iter()
                        .any(|d| domains.iter().any(|x| hosts::intersect(d, x).is_some()))
            })
        })
        .min_by(|a, b| oldest_first(a, b))
}
