//! What a route does besides choosing clusters: timeout, retries, rewrite, header edits,
//! mirrors, faults and CORS, compiled once from an `HTTPRoute` with Istio's defaults.
use http::header::{HeaderName, HeaderValue};
use regex::Regex;
use sluice_api::istio::{
    CorsPolicy, HeaderOperations, Headers, HttpFaultInjection, HttpRetry, HttpRewrite, Percent,
    StringMatch, UnmatchedPreflights,
};
use std::time::Duration;

pub mod cluster;

#[derive(Debug, Default)]
pub struct RoutePolicy {
    /// Whole-request timeout across retries (504, flag UT); off unless set.
    pub timeout: Option<Duration>,
    pub retry: Retry,
    pub rewrite: Option<Rewrite>,
    pub headers: HeaderPolicy,
    pub mirrors: Vec<Mirror>,
    pub fault: Option<Fault>,
    pub cors: Option<Cors>,
}

/// Header edits for the request to the backend and the response to the client.
#[derive(Debug, Default, Clone)]
pub struct HeaderPolicy {
    pub request: HeaderOps,
    pub response: HeaderOps,
}

impl HeaderPolicy {
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

#[derive(Debug, Default, Clone)]
pub struct HeaderOps {
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub add: Vec<(HeaderName, HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Envoy's order: remove, then set (replace), then add (append).
    pub fn apply(&self, headers: &mut http::HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }
}

/// Envoy retry conditions (`retryOn` tokens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn(u32);

impl RetryOn {
    pub const FIVE_XX: RetryOn = RetryOn(1);
    pub const GATEWAY_ERROR: RetryOn = RetryOn(1 << 1);
    pub const RESET: RetryOn = RetryOn(1 << 2);
    pub const CONNECT_FAILURE: RetryOn = RetryOn(1 << 3);
    pub const REFUSED_STREAM: RetryOn = RetryOn(1 << 4);
    pub const RETRIABLE_4XX: RetryOn = RetryOn(1 << 5);
    pub const RETRIABLE_STATUS_CODES: RetryOn = RetryOn(1 << 6);
    pub const CANCELLED: RetryOn = RetryOn(1 << 7);
    pub const DEADLINE_EXCEEDED: RetryOn = RetryOn(1 << 8);
    pub const INTERNAL: RetryOn = RetryOn(1 << 9);
    pub const RESOURCE_EXHAUSTED: RetryOn = RetryOn(1 << 10);
    pub const UNAVAILABLE: RetryOn = RetryOn(1 << 11);
    pub const RESET_BEFORE_REQUEST: RetryOn = RetryOn(1 << 12);

    /// The flag of each token sluice acts on; which tokens exist, and which sluice implements,
    /// is `sluice_config::support::RETRY_ON` (a test holds the two together).
    fn flag(token: &str) -> Option<RetryOn> {
        Some(match token {
            "5xx" => Self::FIVE_XX,
            "gateway-error" => Self::GATEWAY_ERROR,
            "reset" => Self::RESET,
            "reset-before-request" => Self::RESET_BEFORE_REQUEST,
            "connect-failure" => Self::CONNECT_FAILURE,
            "refused-stream" => Self::REFUSED_STREAM,
            "retriable-4xx" => Self::RETRIABLE_4XX,
            "retriable-status-codes" => Self::RETRIABLE_STATUS_CODES,
            "cancelled" => Self::CANCELLED,
            "deadline-exceeded" => Self::DEADLINE_EXCEEDED,
            "internal" => Self::INTERNAL,
            "resource-exhausted" => Self::RESOURCE_EXHAUSTED,
            "unavailable" => Self::UNAVAILABLE,
            _ => return None,
        })
    }

    pub fn contains(self, other: RetryOn) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn any(self, other: RetryOn) -> bool {
        self.0 & other.0 != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        sluice_config::support::RETRY_ON
            .iter()
            .filter(|t| Self::flag(t.name).is_some_and(|f| self.contains(f)))
            .map(|t| t.name)
            .collect()
    }
}

impl std::ops::BitOr for RetryOn {
    type Output = RetryOn;
    fn bitor(self, o: RetryOn) -> RetryOn {
        RetryOn(self.0 | o.0)
    }
}

/// Istio's retry policy for a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Retries after the first try (`attempts`); 0 disables.
    pub retries: u32,
    pub per_try_timeout: Option<Duration>,
    pub on: RetryOn,
    pub status_codes: Vec<u16>,
    /// Base of the jittered exponential backoff.
    pub backoff: Duration,
}

/// Istio's default retry conditions (since 1.24 without retriable status codes).
const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

impl Default for Retry {
    /// What Istio applies when a route has no `retries`.
    fn default() -> Self {
        let (on, status_codes) = parse_retry_on(DEFAULT_RETRY_ON);
        Retry {
            retries: 2,
            per_try_timeout: None,
            on,
            status_codes,
            backoff: Duration::from_millis(25),
        }
    }
}

impl Retry {
    pub fn from_istio(r: Option<&HttpRetry>) -> Retry {
        let Some(r) = r else {
            return Retry::default();
        };
        let retry_on = r
            .retry_on
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(DEFAULT_RETRY_ON);
        let (on, status_codes) = parse_retry_on(retry_on);
        Retry {
            retries: r.attempts.unwrap_or(0).max(0) as u32,
            per_try_timeout: r
                .per_try_timeout
                .map(|d| d.as_std())
                .filter(|d| !d.is_zero()),
            on,
            status_codes,
            backoff: r
                .backoff
                .map(|d| d.as_std())
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_millis(25)),
        }
    }

    /// Whether a response with this status (and gRPC status, if any) is worth another try.
    pub fn retries_status(&self, status: u16, grpc_status: Option<u32>) -> bool {
        let on = self.on;
        (on.contains(RetryOn::FIVE_XX) && status >= 500)
            || (on.contains(RetryOn::GATEWAY_ERROR) && matches!(status, 502..=504))
            || (on.contains(RetryOn::RETRIABLE_4XX) && status == 409)
            || (on.contains(RetryOn::RETRIABLE_STATUS_CODES) && self.status_codes.contains(&status))
            || grpc_status.is_some_and(|g| {
                (on.contains(RetryOn::CANCELLED) && g == 1)
                    || (on.contains(RetryOn::DEADLINE_EXCEEDED) && g == 4)
                    || (on.contains(RetryOn::RESOURCE_EXHAUSTED) && g == 8)
                    || (on.contains(RetryOn::INTERNAL) && g == 13)
                    || (on.contains(RetryOn::UNAVAILABLE) && g == 14)
            })
    }

    /// A connection that could not be made.
    pub fn retries_connect_failure(&self) -> bool {
        self.on.any(
            RetryOn::CONNECT_FAILURE
                | RetryOn::FIVE_XX
                | RetryOn::GATEWAY_ERROR
                | RetryOn::RESET
                | RetryOn::RESET_BEFORE_REQUEST,
        )
    }

    /// A connection reset or closed before a response, or a per-try timeout.
    pub fn retries_reset(&self) -> bool {
        self.on
            .any(RetryOn::FIVE_XX | RetryOn::GATEWAY_ERROR | RetryOn::RESET)
    }
}

/// Tokens to flags; numeric tokens are retriable status codes, as Istio reads them.
pub fn parse_retry_on(s: &str) -> (RetryOn, Vec<u16>) {
    let mut on = RetryOn::default();
    let mut codes = Vec::new();
    for token in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if let Ok(code) = token.parse::<u16>() {
            codes.push(code);
            on = on | RetryOn::RETRIABLE_STATUS_CODES;
        } else if let Some(f) = RetryOn::flag(token) {
            on = on | f;
        }
    }
    (on, codes)
}

#[derive(Debug)]
pub struct Rewrite {
    pub uri: Option<String>,
    pub authority: Option<HeaderValue>,
    /// `uriRegexRewrite`: every match of the pattern in the path replaced (`\1` → group 1).
    pub regex: Option<(Regex, String)>,
    /// Gateway API `URLRewrite` path.
    pub path: Option<PathRewrite>,
}

/// A Gateway API path modifier (URLRewrite and RequestRedirect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRewrite {
    /// `ReplaceFullPath`: the whole path.
    Full(String),
    /// `ReplacePrefixMatch`: the path elements the `PathPrefix` match matched.
    PrefixMatch(String),
}

impl PathRewrite {
    /// The new path for `path`, whose first `matched` bytes the route's prefix matched.
    pub fn apply(&self, path: &str, matched: usize) -> String {
        match self {
            PathRewrite::Full(p) => p.clone(),
            PathRewrite::PrefixMatch(replacement) => {
                // The remainder starts at an element boundary: empty or with its `/`.
                let rest = path.get(matched.min(path.len())..).unwrap_or("");
                let joined = format!("{}{rest}", replacement.trim_end_matches('/'));
                if joined.is_empty() {
                    "/".to_string()
                } else {
                    joined
                }
            }
        }
    }
}

impl Rewrite {
    pub fn from_istio(r: &HttpRewrite) -> Option<Rewrite> {
        let regex = r.uri_regex_rewrite.as_ref().and_then(|rr| {
            let re = Regex::new(rr.match_.as_deref()?).ok()?;
            Some((re, envoy_substitution(rr.rewrite.as_deref().unwrap_or(""))))
        });
        let rewrite = Rewrite {
            uri: r.uri.clone().filter(|u| !u.is_empty()),
            authority: r
                .authority
                .as_deref()
                .filter(|a| !a.is_empty())
                .and_then(|a| HeaderValue::from_str(a).ok()),
            regex,
            path: None,
        };
        (rewrite.uri.is_some() || rewrite.authority.is_some() || rewrite.regex.is_some())
            .then_some(rewrite)
    }

    /// The path the backend sees. `matched_prefix` is the length of the route's matched prefix:
    /// the prefix match's value, the whole path for exact and regex matches, and `/` when the
    /// route has no path match (Istio's generated `prefix: /`).
    pub fn path(&self, path: &str, matched_prefix: usize) -> Option<String> {
        if let Some(p) = &self.path {
            return Some(p.apply(path, matched_prefix));
        }
        if let Some(uri) = &self.uri {
            let rest = path.get(matched_prefix.min(path.len())..).unwrap_or("");
            return Some(format!("{uri}{rest}"));
        }
        self.regex
            .as_ref()
            .map(|(re, sub)| re.replace_all(path, sub.as_str()).into_owned())
    }
}

impl RoutePolicy {
    /// The path and query the backend gets: normalised as Istio does, then rewritten. Borrowed
    /// when nothing changes.
    pub fn upstream_path<'a>(
        &self,
        matched: Option<&crate::snapshot::RouteMatch>,
        path_and_query: &'a str,
    ) -> std::borrow::Cow<'a, str> {
        use std::borrow::Cow;
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let normalized = crate::select::normalize_path(path);
        let rewritten = self.rewrite.as_ref().and_then(|r| {
            let len = matched.map_or(1, |m| m.rewrite_len(&normalized));
            r.path(&normalized, len)
        });
        let new_path = match (rewritten, normalized) {
            (Some(p), _) => p,
            (None, Cow::Owned(p)) => p,
            (None, Cow::Borrowed(_)) => return Cow::Borrowed(path_and_query),
        };
        match query {
            Some(q) => Cow::Owned(format!("{new_path}?{q}")),
            None => Cow::Owned(new_path),
        }
    }
}

/// RE2/Envoy substitution (`\1`) to the regex crate's (`${1}`), with `$` kept literal.
fn envoy_substitution(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str(&format!("${{{d}}}"));
                    chars.next();
                }
                Some('\\') => {
                    out.push('\\');
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug)]
pub struct Mirror {
    pub cluster: String,
    /// 0.0–100.0.
    pub percentage: f64,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub delay: Option<(Duration, f64)>,
    pub abort: Option<(Abort, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    Http(u16),
    /// A gRPC status code, answered as a trailers-only gRPC response.
    Grpc(u32),
}

/// Percentage of a fault or mirror; Istio (1.28) injects nothing when a fault has none.
fn percent(p: Option<Percent>) -> f64 {
    p.and_then(|p| p.value).unwrap_or(0.0).clamp(0.0, 100.0)
}

impl Fault {
    pub fn from_istio(f: &HttpFaultInjection) -> Option<Fault> {
        let delay = f
            .delay
            .as_ref()
            .and_then(|d| Some((d.fixed_delay?.as_std(), percent(d.percentage))));
        let abort = f.abort.as_ref().and_then(|a| {
            let kind = match (a.http_status, a.grpc_status.as_deref()) {
                (Some(s), _) => Abort::Http(u16::try_from(s).ok()?),
                (None, Some(g)) => Abort::Grpc(grpc_code(g)?),
                _ => return None,
            };
            Some((kind, percent(a.percentage)))
        });
        (delay.is_some() || abort.is_some()).then_some(Fault { delay, abort })
    }
}

/// gRPC status by name (`UNAVAILABLE`) or number.
pub fn grpc_code(name: &str) -> Option<u32> {
    use sluice_config::validate::GRPC_STATUS;
    name.parse().ok().or_else(|| {
        GRPC_STATUS
            .iter()
            .position(|n| *n == name)
            .map(|i| i as u32)
    })
}

#[derive(Debug)]
pub struct Cors {
    pub allow_origins: Vec<crate::snapshot::Matcher>,
    pub allow_methods: Option<HeaderValue>,
    pub allow_headers: Option<HeaderValue>,
    pub expose_headers: Option<HeaderValue>,
    pub max_age: Option<HeaderValue>,
    pub allow_credentials: bool,
    /// A preflight whose origin is not allowed goes on to the backend (FORWARD, Envoy's
    /// default) or is answered here without CORS headers (IGNORE).
    pub forward_unmatched_preflights: bool,
}

impl Cors {
    pub fn from_istio(
        c: &CorsPolicy,
        matcher: impl Fn(&StringMatch) -> Option<crate::snapshot::Matcher>,
    ) -> Cors {
        let join = |v: &[String]| {
            (!v.is_empty())
                .then(|| HeaderValue::from_str(&v.join(",")).ok())
                .flatten()
        };
        let mut allow_origins: Vec<_> = c.allow_origins.iter().filter_map(&matcher).collect();
        allow_origins.extend(
            c.allow_origin
                .iter()
                .map(|o| crate::snapshot::Matcher::Exact(o.clone())),
        );
        Cors {
            allow_origins,
            allow_methods: join(&c.allow_methods),
            allow_headers: join(&c.allow_headers),
            expose_headers: join(&c.expose_headers),
            max_age: c.max_age.map(|d| HeaderValue::from(d.as_std().as_secs())),
            allow_credentials: c.allow_credentials.unwrap_or(false),
            forward_unmatched_preflights: c.unmatched_preflights
                != Some(UnmatchedPreflights::Ignore),
        }
    }

    /// Whether `origin` may see the response (`*` as an exact origin allows any).
    pub fn allows(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|m| match m {
            crate::snapshot::Matcher::Exact(e) if e == "*" => true,
            m => m.matches(origin),
        })
    }
}

/// Istio `Headers` to compiled operations; names that are not valid header names are dropped
/// (validation reports them).
pub fn header_policy(h: Option<&Headers>) -> HeaderPolicy {
    let ops = |o: Option<&HeaderOperations>| -> HeaderOps {
        let Some(o) = o else {
            return HeaderOps::default();
        };
        let pairs = |m: &std::collections::BTreeMap<String, String>| {
            m.iter()
                .filter_map(|(k, v)| {
                    Some((
                        HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).ok()?,
                        HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect()
        };
        HeaderOps {
            set: pairs(&o.set),
            add: pairs(&o.add),
            remove: o
                .remove
                .iter()
                .filter_map(|k| HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).ok())
                .collect(),
        }
    };
    match h {
        None => HeaderPolicy::default(),
        Some(h) => HeaderPolicy {
            request: ops(h.request.as_ref()),
            response: ops(h.response.as_ref()),
        },
    }
}

/// The mirror percentage: `mirrorPercentage`, else the deprecated integer `mirrorPercent`,
/// else 100.
pub fn mirror_percentage(p: Option<Percent>, legacy: Option<u32>) -> f64 {
    match (p.and_then(|p| p.value), legacy) {
        (Some(v), _) => v.clamp(0.0, 100.0),
        (None, Some(l)) => f64::from(l.min(100)),
        (None, None) => 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_retry_is_istios() {
        let r = Retry::default();
        assert_eq!(r.retries, 2);
        assert_eq!(
            r.on.names(),
            [
                "connect-failure",
                "refused-stream",
                "retriable-status-codes",
                "cancelled",
                "unavailable"
            ]
        );
        assert!(
            !r.retries_status(503, None),
            "503 is not retried by default"
        );
        assert!(r.retries_status(200, Some(14)));
        assert!(r.retries_connect_failure());
        assert!(!r.retries_reset());
    }

    #[test]
    fn retry_on_tokens_and_codes() {
        let (on, codes) = parse_retry_on("gateway-error, 429,retriable-4xx");
        assert!(on.contains(RetryOn::GATEWAY_ERROR | RetryOn::RETRIABLE_4XX));
        assert!(on.contains(RetryOn::RETRIABLE_STATUS_CODES));
        assert_eq!(codes, [429]);
        let r = Retry {
            on,
            status_codes: codes,
            ..Retry::default()
        };
        for (s, want) in [
            (502, true),
            (500, false),
            (429, true),
            (409, true),
            (404, false),
        ] {
            assert_eq!(r.retries_status(s, None), want, "{s}");
        }
    }

    #[test]
    fn rewrites() {
        let prefix = Rewrite {
            uri: Some("/bar".into()),
            authority: None,
            regex: None,
            path: None,
        };
        assert_eq!(prefix.path("/foobar", 4).unwrap(), "/barbar");
        assert_eq!(prefix.path("/exact", 6).unwrap(), "/bar");
        assert_eq!(prefix.path("/x", 1).unwrap(), "/barx");
        let re = Rewrite {
            uri: None,
            authority: None,
            path: None,
            regex: Some((
                Regex::new("^/v1/(\\w+)/(\\d+)$").unwrap(),
                envoy_substitution("/\\2/\\1$"),
            )),
        };
        assert_eq!(re.path("/v1/users/42", 0).unwrap(), "/42/users$");
    }

    /// The Gateway API's ReplacePrefixMatch table (HTTPPathModifier), prefix `/foo` matched.
    #[test]
    fn replace_prefix_match_as_the_gateway_api_tabulates_it() {
        let cases = [
            ("/xyz", "/foo/bar", "/xyz/bar"),
            ("/xyz/", "/foo/bar", "/xyz/bar"),
            ("/xyz", "/foo", "/xyz"),
            ("/xyz", "/foo/", "/xyz/"),
            ("", "/foo/bar", "/bar"),
            ("", "/foo/", "/"),
            ("", "/foo", "/"),
            ("/", "/foo/", "/"),
            ("/", "/foo", "/"),
        ];
        for (replacement, path, want) in cases {
            let r = PathRewrite::PrefixMatch(replacement.into());
            assert_eq!(r.apply(path, "/foo".len()), want, "{replacement:?} {path}");
        }
        assert_eq!(
            PathRewrite::Full("/one".into()).apply("/full/one/two", 5),
            "/one"
        );
    }

    #[test]
    /// Every token the config table calls implemented has a flag here, and no other.
    fn retry_tokens_agree_with_the_support_table() {
        for t in sluice_config::support::RETRY_ON {
            assert_eq!(RetryOn::flag(t.name).is_some(), t.implemented, "{}", t.name);
        }
    }

    #[test]
    fn grpc_codes_by_name_or_number() {
        assert_eq!(grpc_code("UNAVAILABLE"), Some(14));
        assert_eq!(grpc_code("4"), Some(4));
        assert_eq!(grpc_code("NOPE"), None);
    }
}
