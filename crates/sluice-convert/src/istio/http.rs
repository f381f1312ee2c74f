//! A VirtualService's `http` routes as one HTTPRoute: a rule per route (two when a prefix
//! rewrite needs its PathPrefix matches apart), in Istio's order. Routes after the first
//! catch-all are unreachable in Istio and left out (the Gateway API would reach them).
use super::backends::Backends;
use super::matches::{self, PathKind};
use crate::names;
use crate::notes::Notes;
use crate::Output;
use serde_json::{json, Map, Value};
use sluice_api::istio::{HeaderOperations, HttpMatchRequest, HttpRoute, Percent};
use sluice_api::Duration;
use sluice_compile::hosts;
use sluice_config::validate::P;
use sluice_config::Object;

/// Istio's default retry conditions (1.24 and later): a `retryOn` of exactly these adds nothing.
const DEFAULT_RETRY_ON: [&str; 5] = [
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
    "retriable-status-codes",
];

pub fn convert(
    vs: &Object,
    parents: &[Value],
    backends: &mut Backends,
    notes: &mut Notes,
) -> Vec<Output> {
    let spec = vs.virtual_service().expect("kind");
    if spec.http.is_empty() {
        return Vec::new();
    }
    let mut comments = Vec::new();
    let mut rules: Vec<(usize, Value)> = Vec::new();
    let mut caught_all = false;
    for (ri, route) in spec.http.iter().enumerate() {
        let at = P::spec().k("http").i(ri);
        if caught_all {
            comments.push(notes.lost(vs, &at, "an earlier route matches every request, so Istio never reaches this one; it is left out (the Gateway API's precedence would reach it)".into()));
            continue;
        }
        caught_all = is_catch_all(route);
        if route.delegate.is_some() {
            comments.push(notes.lost(vs, &at.k("delegate"), "delegation has no Gateway API equivalent (convert the delegate's routes into this route's HTTPRoute); the route is left out".into()));
            continue;
        }
        if route.direct_response.is_some() {
            comments.push(notes.lost(vs, &at.k("directResponse"), "directResponse has no Gateway API filter; the route is left out, so its requests go to the next matching rule".into()));
            continue;
        }
        rules.extend(
            rule(vs, &at, route, backends, notes, &mut comments)
                .into_iter()
                .map(|r| (ri, r)),
        );
    }
    super::precedence::preserve(vs, &mut rules, notes, &mut comments);
    let mut rules: Vec<Value> = rules.into_iter().map(|(_, r)| r).collect();
    let mut names_seen: Vec<String> = Vec::new();
    for r in &mut rules {
        if let Some(n) = r.get("name").and_then(Value::as_str).map(str::to_string) {
            let mut unique = n.clone();
            let mut k = 2;
            while names_seen.contains(&unique) {
                unique = format!("{n}-{k}");
                k += 1;
            }
            names_seen.push(unique.clone());
            r["name"] = json!(unique);
        }
    }
    let mut body = json!({ "parentRefs": parents, "rules": rules });
    let hostnames: Vec<String> = spec
        .hosts
        .iter()
        .map(|h| hosts::fqdn(h, &vs.namespace, backends.domain_suffix()))
        .collect();
    if !hostnames.iter().any(|h| h == "*") {
        body["hostnames"] = json!(hostnames);
    }
    let mut o = Output::new("HTTPRoute", &vs.namespace, &vs.name, body);
    o.comments = comments;
    vec![o]
}

/// Istio's catch-all: a match without conditions besides a path of `prefix: /` or `regex: .*`.
fn is_catch_all(r: &HttpRoute) -> bool {
    let all = |m: &HttpMatchRequest| {
        let path_all = m
            .uri
            .as_ref()
            .is_none_or(|u| u.prefix.as_deref() == Some("/") || u.regex.as_deref() == Some(".*"));
        path_all
            && m.headers.is_empty()
            && m.query_params.is_empty()
            && m.method.is_none()
            && m.authority.is_none()
            && m.scheme.is_none()
            && m.port.is_none()
            && m.without_headers.is_empty()
            && m.gateways.is_empty()
            && m.source_labels.is_empty()
    };
    r.match_.is_empty() || r.match_.iter().any(all)
}

/// The rule (or two) for one route.
fn rule(
    vs: &Object,
    at: &P,
    route: &HttpRoute,
    backends: &mut Backends,
    notes: &mut Notes,
    comments: &mut Vec<String>,
) -> Vec<Value> {
    // Matches, tagged with the kind of path Istio matched (rewrites replace a prefix or all).
    let mut matched: Vec<(PathKind, Value)> = Vec::new();
    for (mi, m) in route.match_.iter().enumerate() {
        let kind = matches::path_kind(m);
        for v in matches::convert(vs, &at.k("match").i(mi), m, notes, comments) {
            matched.push((kind, v));
        }
    }
    let mut base = Map::new();
    if let Some(n) = &route.name {
        base.insert("name".into(), json!(names::dashed(n)));
    }
    let mut filters = Vec::new();
    if let Some(h) = &route.headers {
        push_header_filters(&mut filters, h.request.as_ref(), h.response.as_ref());
    }
    if let Some(rd) = &route.redirect {
        filters.push(redirect(vs, at, rd, notes, comments));
    } else {
        match backend_refs(vs, at, route, backends, notes, comments) {
            Some(refs) => {
                base.insert("backendRefs".into(), json!(refs));
            }
            None => return Vec::new(),
        }
    }
    mirrors(vs, at, route, backends, notes, comments, &mut filters);
    if let Some(c) = &route.cors_policy {
        filters.push(cors(vs, at, c, notes, comments));
    }
    if route.fault.is_some() {
        comments.push(notes.lost(vs, &at.k("fault"), "fault injection has no Gateway API equivalent; requests are no longer delayed or aborted".into()));
    }
    timeouts(vs, at, route, notes, comments, &mut base);
    let rewrite = route.rewrite.as_ref();
    if rewrite.is_some_and(|r| r.uri_regex_rewrite.is_some()) {
        comments.push(notes.lost(
            vs,
            &at.k("rewrite").k("uriRegexRewrite"),
            "a regex rewrite has no Gateway API equivalent; the path is sent as received".into(),
        ));
    }
    let uri = rewrite.and_then(|r| r.uri.as_deref());
    let authority = rewrite.and_then(|r| r.authority.as_deref());
    let finish = |matches: Vec<Value>, path: Option<Value>, filters: &[Value]| {
        let mut r = base.clone();
        let mut filters = filters.to_vec();
        if path.is_some() || authority.is_some() {
            let mut u = Map::new();
            if let Some(p) = path {
                u.insert("path".into(), p);
            }
            if let Some(a) = authority {
                u.insert("hostname".into(), json!(a));
            }
            filters.push(json!({ "type": "URLRewrite", "urlRewrite": u }));
        }
        if !matches.is_empty() {
            r.insert("matches".into(), json!(matches));
        }
        if !filters.is_empty() {
            r.insert("filters".into(), json!(filters));
        }
        Value::Object(r)
    };
    let Some(uri) = uri else {
        return vec![finish(
            matched.into_iter().map(|(_, v)| v).collect(),
            None,
            &filters,
        )];
    };
    // `rewrite.uri` replaces the matched prefix under a prefix match, the whole path otherwise:
    // the PathPrefix matches and the others become two rules.
    let is_path_prefix = |v: &Value| v["path"]["type"] == "PathPrefix";
    let (prefix, whole): (Vec<_>, Vec<_>) = matched
        .into_iter()
        .partition(|(k, v)| *k == PathKind::Prefix && is_path_prefix(v));
    let mut out = Vec::new();
    let tails: Vec<Value> = whole
        .iter()
        .filter(|(k, _)| *k == PathKind::Prefix)
        .map(|(_, v)| v.clone())
        .collect();
    if !tails.is_empty() {
        comments.push(notes.lost(vs, &at.k("rewrite").k("uri"), "Istio replaces a string prefix (so /foobar also matches /foo and becomes /barbar); the Gateway API replaces whole path elements only: paths that continue the prefix mid-element are no longer matched by this rule".into()));
    }
    let whole: Vec<Value> = whole
        .into_iter()
        .filter(|(k, _)| *k != PathKind::Prefix)
        .map(|(_, v)| v)
        .collect();
    if !prefix.is_empty() {
        let p = json!({ "type": "ReplacePrefixMatch", "replacePrefixMatch": uri });
        out.push(finish(
            prefix.into_iter().map(|(_, v)| v).collect(),
            Some(p),
            &filters,
        ));
    }
    if !whole.is_empty() || route.match_.is_empty() {
        let p = json!({ "type": "ReplaceFullPath", "replaceFullPath": uri });
        out.push(finish(whole, Some(p), &filters));
    }
    out
}

fn header_ops(h: &HeaderOperations) -> Value {
    let pairs = |m: &std::collections::BTreeMap<String, String>| -> Vec<Value> {
        m.iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect()
    };
    let mut v = Map::new();
    if !h.set.is_empty() {
        v.insert("set".into(), json!(pairs(&h.set)));
    }
    if !h.add.is_empty() {
        v.insert("add".into(), json!(pairs(&h.add)));
    }
    if !h.remove.is_empty() {
        v.insert("remove".into(), json!(h.remove));
    }
    Value::Object(v)
}

fn push_header_filters(
    filters: &mut Vec<Value>,
    request: Option<&HeaderOperations>,
    response: Option<&HeaderOperations>,
) {
    if let Some(r) = request {
        filters.push(
            json!({ "type": "RequestHeaderModifier", "requestHeaderModifier": header_ops(r) }),
        );
    }
    if let Some(r) = response {
        filters.push(
            json!({ "type": "ResponseHeaderModifier", "responseHeaderModifier": header_ops(r) }),
        );
    }
}

/// Weighted destinations; `None` when none can be referred to (the rule is left out).
fn backend_refs(
    vs: &Object,
    at: &P,
    route: &HttpRoute,
    backends: &mut Backends,
    notes: &mut Notes,
    comments: &mut Vec<String>,
) -> Option<Vec<Value>> {
    let mut refs = Vec::new();
    for (di, d) in route.route.iter().enumerate() {
        let dat = at.k("route").i(di);
        let Some(dest) = &d.destination else { continue };
        match backends.backend_ref(("HTTPRoute", &vs.namespace), dest, notes) {
            Ok(mut r) => {
                if route.route.len() > 1 {
                    r.insert("weight".into(), json!(d.weight.unwrap_or(0).max(0)));
                }
                if let Some(h) = &d.headers {
                    let mut f = Vec::new();
                    push_header_filters(&mut f, h.request.as_ref(), h.response.as_ref());
                    r.insert("filters".into(), json!(f));
                }
                refs.push(Value::Object(r));
            }
            Err(why) => comments.push(notes.lost(vs, &dat.k("destination"), why)),
        }
    }
    if refs.is_empty() {
        comments.push(notes.lost(
            vs,
            at,
            "no destination of this route can be referred to; the route is left out".into(),
        ));
        return None;
    }
    Some(refs)
}

fn redirect(
    vs: &Object,
    at: &P,
    rd: &sluice_api::istio::HttpRedirect,
    notes: &mut Notes,
    comments: &mut Vec<String>,
) -> Value {
    let mut r = Map::new();
    r.insert("statusCode".into(), json!(rd.redirect_code.unwrap_or(301)));
    if let Some(s) = &rd.scheme {
        r.insert("scheme".into(), json!(s));
    }
    if let Some(a) = &rd.authority {
        r.insert("hostname".into(), json!(a));
    }
    if let Some(p) = rd.port {
        r.insert("port".into(), json!(p));
    }
    if let Some(u) = &rd.uri {
        r.insert(
            "path".into(),
            json!({ "type": "ReplaceFullPath", "replaceFullPath": u }),
        );
    }
    if let Some(p) = &rd.prefix_rewrite {
        r.insert(
            "path".into(),
            json!({ "type": "ReplacePrefixMatch", "replacePrefixMatch": p }),
        );
    }
    if rd.derive_port == Some(sluice_api::istio::RedirectPortSelection::FromRequestPort) {
        comments.push(notes.lost(vs, &at.k("redirect").k("derivePort"), "derivePort has no Gateway API field: without a port or scheme the Location keeps the listener's port".into()));
    }
    json!({ "type": "RequestRedirect", "requestRedirect": r })
}

/// A percentage as the Gateway API writes one: `percent` when whole, else a fraction.
fn percent_fields(p: Option<f64>, m: &mut Map<String, Value>) {
    match p {
        None => {}
        Some(p) if p.fract() == 0.0 => {
            m.insert("percent".into(), json!(p as i64));
        }
        Some(p) => {
            m.insert(
                "fraction".into(),
                json!({ "numerator": (p * 10_000.0).round() as i64, "denominator": 1_000_000 }),
            );
        }
    }
}

fn mirrors(
    vs: &Object,
    at: &P,
    route: &HttpRoute,
    backends: &mut Backends,
    notes: &mut Notes,
    comments: &mut Vec<String>,
    filters: &mut Vec<Value>,
) {
    let pct = |p: Option<Percent>| p.and_then(|p| p.value);
    let mut all: Vec<(P, &sluice_api::istio::Destination, Option<f64>)> = Vec::new();
    if let Some(m) = &route.mirror {
        let p = pct(route.mirror_percentage).or(route.mirror_percent.map(f64::from));
        all.push((at.k("mirror"), m, p));
    }
    for (i, m) in route.mirrors.iter().enumerate() {
        if let Some(d) = &m.destination {
            all.push((at.k("mirrors").i(i), d, pct(m.percentage)));
        }
    }
    for (field, d, p) in all {
        match backends.backend_ref(("HTTPRoute", &vs.namespace), d, notes) {
            Ok(b) => {
                let mut m = Map::new();
                m.insert("backendRef".into(), Value::Object(b));
                percent_fields(p, &mut m);
                filters.push(json!({ "type": "RequestMirror", "requestMirror": m }));
            }
            Err(why) => comments.push(notes.lost(vs, &field, why)),
        }
    }
}

fn cors(
    vs: &Object,
    at: &P,
    c: &sluice_api::istio::CorsPolicy,
    notes: &mut Notes,
    comments: &mut Vec<String>,
) -> Value {
    let at = at.k("corsPolicy");
    let mut origins: Vec<String> = c.allow_origin.clone();
    for (i, o) in c.allow_origins.iter().enumerate() {
        match &o.exact {
            Some(e) => origins.push(e.clone()),
            None => comments.push(notes.lost(vs, &at.k("allowOrigins").i(i), "only exact origins (or `*` wildcards) can be allowed in the Gateway API; this origin match is left out".into())),
        }
    }
    let mut v = json!({ "allowOrigins": origins });
    if !c.allow_methods.is_empty() {
        v["allowMethods"] = json!(c.allow_methods);
    }
    if !c.allow_headers.is_empty() {
        v["allowHeaders"] = json!(c.allow_headers);
    }
    if !c.expose_headers.is_empty() {
        v["exposeHeaders"] = json!(c.expose_headers);
    }
    if let Some(m) = &c.max_age {
        v["maxAge"] = json!(m.0.as_secs());
    }
    if let Some(b) = c.allow_credentials {
        v["allowCredentials"] = json!(b);
    }
    comments.push(notes.lost(vs, &at, "CORS differs: the Gateway API answers a preflight from an origin it does not allow itself (without CORS headers), where Istio forwards it to the backend unless unmatchedPreflights is IGNORE; maxAge defaults to 5s".into()));
    json!({ "type": "CORS", "cors": v })
}

/// A duration in GEP-2257 form (`1h2m3s4ms`, each part at most 5 digits).
pub fn gep2257(d: &Duration) -> String {
    let ms = d.0.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let parts = [
        (ms / 3_600_000, "h"),
        (ms / 60_000 % 60, "m"),
        (ms / 1000 % 60, "s"),
        (ms % 1000, "ms"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect()
}

/// `timeout` and `retries`: the route timeout is `timeouts.request`; each try's timeout is
/// `timeouts.backendRequest`; attempts, status codes and backoff go to `retry`.
fn timeouts(
    vs: &Object,
    at: &P,
    route: &HttpRoute,
    notes: &mut Notes,
    comments: &mut Vec<String>,
    rule: &mut Map<String, Value>,
) {
    let mut t = Map::new();
    if let Some(d) = &route.timeout {
        t.insert("request".into(), json!(gep2257(d)));
    }
    if let Some(r) = &route.retries {
        let rat = at.k("retries");
        let mut retry = Map::new();
        retry.insert("attempts".into(), json!(r.attempts.unwrap_or(2).max(0)));
        if let Some(b) = &r.backoff {
            retry.insert("backoff".into(), json!(gep2257(b)));
        }
        if let Some(p) = &r.per_try_timeout {
            let longer = route
                .timeout
                .as_ref()
                .is_some_and(|t| t.0 > std::time::Duration::ZERO && p.0 > t.0);
            if longer {
                comments.push(notes.lost(vs, &rat.k("perTryTimeout"), "a per-try timeout longer than the route's timeout cannot be written (backendRequest must not exceed request); it is left out".into()));
            } else {
                t.insert("backendRequest".into(), json!(gep2257(p)));
            }
        }
        if let Some(on) = &r.retry_on {
            let mut codes = Vec::new();
            let mut other = Vec::new();
            for token in on.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match token {
                    t if t.parse::<u16>().is_ok() => {
                        codes.push(json!(t.parse::<u16>().unwrap_or(0)))
                    }
                    "gateway-error" => codes.extend([json!(502), json!(503), json!(504)]),
                    t if DEFAULT_RETRY_ON.contains(&t) => {}
                    t => other.push(t),
                }
            }
            if !codes.is_empty() {
                retry.insert("codes".into(), json!(codes));
            }
            if !other.is_empty() {
                comments.push(notes.lost(vs, &rat.k("retryOn"), format!("retry conditions {} have no Gateway API equivalent (it retries on status codes, plus Istio's default conditions here); they are left out", other.join(","))));
            }
        }
        for (field, set) in [
            ("retryRemoteLocalities", r.retry_remote_localities.is_some()),
            (
                "retryIgnorePreviousHosts",
                r.retry_ignore_previous_hosts.is_some(),
            ),
        ] {
            if set {
                comments.push(notes.lost(
                    vs,
                    &rat.k(field),
                    format!("retries.{field} has no Gateway API equivalent"),
                ));
            }
        }
        rule.insert("retry".into(), Value::Object(retry));
    }
    if !t.is_empty() {
        rule.insert("timeouts".into(), Value::Object(t));
    }
}
