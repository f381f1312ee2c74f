//! `select_route`: what the gateway does with one request. Used by the proxy and by `explain`,
//! so what the CLI says is what the proxy does.
use crate::snapshot::*;

/// Read access to request headers by lower-case name (the first value).
pub trait HeaderLookup {
    fn header(&self, name: &str) -> Option<&str>;
}

impl HeaderLookup for [(String, String)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The parts of a request that routing looks at.
pub struct RequestView<'a, H: HeaderLookup + ?Sized> {
    /// Host header or :authority as received (port included, if any).
    pub authority: &'a str,
    /// Path and query as received.
    pub path_and_query: &'a str,
    pub method: &'a str,
    pub scheme: &'a str,
    /// The Gateway (service) port the request arrived on.
    pub port: u32,
    pub headers: &'a H,
}

#[derive(Debug)]
pub enum RouteDecision<'t> {
    Forward {
        virtual_host: &'t VirtualHost,
        route: &'t Route,
        forward: &'t Forward,
        /// The match that selected the route (none when it has no matches).
        matched: Option<&'t RouteMatch>,
    },
    Redirect {
        virtual_host: &'t VirtualHost,
        route: Option<&'t Route>,
        matched: Option<&'t RouteMatch>,
        status: u16,
        location: String,
    },
    DirectResponse {
        virtual_host: &'t VirtualHost,
        route: &'t Route,
        matched: Option<&'t RouteMatch>,
        status: u16,
        body: &'t [u8],
    },
    /// No virtual host for the authority, or no route matched: 404 (flag NR).
    NoRoute {
        virtual_host: Option<&'t VirtualHost>,
    },
}

impl<'t> RouteDecision<'t> {
    /// The route that decided, if one did.
    pub fn route(&self) -> Option<&'t Route> {
        match self {
            RouteDecision::Forward { route, .. } | RouteDecision::DirectResponse { route, .. } => {
                Some(route)
            }
            RouteDecision::Redirect { route, .. } => *route,
            RouteDecision::NoRoute { .. } => None,
        }
    }

    /// The match that selected the route (none when it has no matches, or no route decided).
    pub fn matched(&self) -> Option<&'t RouteMatch> {
        match self {
            RouteDecision::Forward { matched, .. }
            | RouteDecision::Redirect { matched, .. }
            | RouteDecision::DirectResponse { matched, .. } => *matched,
            RouteDecision::NoRoute { .. } => None,
        }
    }
}

/// Host without port, lower-cased only when needed.
pub fn host_of(authority: &str) -> std::borrow::Cow<'_, str> {
    let host = if authority.starts_with('[') {
        authority
            .find(']')
            .map(|i| &authority[..=i])
            .unwrap_or(authority)
    } else {
        authority
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map(|(h, _)| h)
            .unwrap_or(authority)
    };
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        host.to_ascii_lowercase().into()
    } else {
        host.into()
    }
}

/// Istio's default path normalisation (BASE): `\` becomes `/`, dot-segments are removed
/// (RFC 3986), repeated slashes and `%2F` are kept. Borrowed when nothing changes.
pub fn normalize_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !needs_normalizing(path.as_bytes()) {
        return path.into();
    }
    let path = path.replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/")).into()
}

/// A backslash or a `.` / `..` segment: what normalisation would change. One pass, no allocation,
/// since every request asks.
fn needs_normalizing(path: &[u8]) -> bool {
    path.iter().enumerate().any(|(i, &b)| match b {
        b'\\' => true,
        b'.' if i == 0 || path[i - 1] == b'/' => {
            matches!(&path[i + 1..], [] | [b'/', ..] | [b'.'] | [b'.', b'/', ..])
        }
        _ => false,
    })
}

fn split_query(path_and_query: &str) -> (&str, &str) {
    path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""))
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

impl RouteMatch {
    pub fn matches<H: HeaderLookup + ?Sized>(
        &self,
        req: &RequestView<H>,
        path: &str,
        query: &str,
    ) -> bool {
        if let Some(uri) = &self.uri {
            let ok = if self.ignore_uri_case {
                uri.matches_ignore_case(path)
            } else {
                uri.matches(path)
            };
            if !ok {
                return false;
            }
        }
        if let Some(p) = self.port {
            if p != req.port {
                return false;
            }
        }
        let simple = [
            (&self.scheme, req.scheme),
            (&self.method, req.method),
            (&self.authority, req.authority),
        ];
        if simple
            .iter()
            .any(|(m, v)| m.as_ref().is_some_and(|m| !m.matches(v)))
        {
            return false;
        }
        for (name, m) in &self.headers {
            match req.headers.header(name) {
                Some(v) if m.matches(v) => {}
                _ => return false,
            }
        }
        for (name, m) in &self.without_headers {
            if req.headers.header(name).is_some_and(|v| m.matches(v)) {
                return false;
            }
        }
        for (name, m) in &self.query_params {
            match query_value(query, name) {
                Some(v) if m.matches(v) => {}
                _ => return false,
            }
        }
        true
    }
}

pub fn select_route<'t, H: HeaderLookup + ?Sized>(
    table: &'t RouteTable,
    req: &RequestView<H>,
) -> RouteDecision<'t> {
    let host = host_of(req.authority);
    let Some(vh) = table.virtual_host(&host) else {
        return RouteDecision::NoRoute { virtual_host: None };
    };
    let (raw_path, query) = split_query(req.path_and_query);
    if vh.https_redirect {
        return RouteDecision::Redirect {
            virtual_host: vh,
            route: None,
            matched: None,
            status: 301,
            location: format!("https://{}{}", req.authority, req.path_and_query),
        };
    }
    let path = normalize_path(raw_path);
    for route in &vh.routes {
        let matched = route.matches.iter().find(|m| m.matches(req, &path, query));
        if matched.is_none() && !route.matches.is_empty() {
            continue;
        }
        return match &route.action {
            Action::Forward(f) => RouteDecision::Forward {
                virtual_host: vh,
                route,
                forward: f,
                matched,
            },
            Action::DirectResponse { status, body } => RouteDecision::DirectResponse {
                virtual_host: vh,
                route,
                matched,
                status: *status,
                body,
            },
            Action::Redirect(r) => RouteDecision::Redirect {
                virtual_host: vh,
                route: Some(route),
                matched,
                status: r.status,
                location: redirect_location(r, req, &host, &path, query, matched),
            },
        };
    }
    RouteDecision::NoRoute {
        virtual_host: Some(vh),
    }
}

fn redirect_location<H: HeaderLookup + ?Sized>(
    r: &Redirect,
    req: &RequestView<H>,
    host: &str,
    path: &str,
    query: &str,
    matched: Option<&RouteMatch>,
) -> String {
    let scheme = r.scheme.as_deref().unwrap_or(req.scheme);
    let authority = r.authority.as_deref().unwrap_or(host);
    let port = if r.port_from_request {
        Some(req.port)
    } else {
        r.port
    };
    let port =
        port.filter(|p| !((scheme == "http" && *p == 80) || (scheme == "https" && *p == 443)));
    let gateway_path = r
        .path
        .as_ref()
        .map(|p| p.apply(path, matched.map_or(0, |m| m.rewrite_len(path))));
    let (new_path, new_query) = match (&r.uri, gateway_path) {
        (_, Some(p)) => (p, query.to_string()),
        (Some(u), None) => match u.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (u.clone(), query.to_string()),
        },
        (None, None) => (path.to_string(), query.to_string()),
    };
    let mut loc = format!("{scheme}://{authority}");
    if let Some(p) = port {
        loc.push_str(&format!(":{p}"));
    }
    loc.push_str(&new_path);
    if !new_query.is_empty() {
        loc.push('?');
        loc.push_str(&new_query);
    }
    loc
}

/// Picks a weighted destination (of a non-empty list) with `roll` uniform in `0..total weight`.
pub fn pick_weighted(destinations: &[WeightedCluster], roll: u32) -> &WeightedCluster {
    let mut acc = 0;
    for d in destinations {
        acc += d.weight;
        if roll < acc {
            return d;
        }
    }
    &destinations[destinations.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_matches_istio_base() {
        assert_eq!(normalize_path("/a/./b/../c"), "/a/c");
        assert_eq!(normalize_path("/a\\b"), "/a/b");
        assert_eq!(normalize_path("/a//b"), "/a//b");
        assert_eq!(normalize_path("/a%2Fb"), "/a%2Fb");
        assert_eq!(normalize_path("/../../x"), "/x");
        assert_eq!(normalize_path("/a/b/.."), "/a/");
        assert_eq!(normalize_path("/a/."), "/a/");
        assert_eq!(normalize_path("./a"), "/a");
        for kept in ["/a.b/c..d/.e/..f/", "/tasks/1", "/", "/.well-known/x"] {
            assert!(
                matches!(normalize_path(kept), std::borrow::Cow::Borrowed(_)),
                "{kept}"
            );
        }
    }

    #[test]
    fn host_port_is_ignored() {
        assert_eq!(host_of("Example.COM:8080"), "example.com");
        assert_eq!(host_of("[::1]:80"), "[::1]");
        assert_eq!(host_of("a.com"), "a.com");
    }
}
