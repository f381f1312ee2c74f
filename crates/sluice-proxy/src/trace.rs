//! Distributed tracing, off unless the gateway is given a `Tracer` (`--otlp-endpoint`): the
//! trace context a request carries (W3C `traceparent`, else B3), one span per request (the
//! gateway's), and the context the backend gets instead of the client's. Finished spans go to
//! an exporter (`sluice-trace` sends them as OTLP) through a bounded queue: a full queue drops
//! the span and counts it, so a slow collector never slows a request. Without a tracer the
//! request's record holds `None` and nothing here runs: trace headers pass through unchanged.
use crate::headers;
use crate::metrics::{Flags, Workload};
use http::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use http::{Method, Request, Version};
use rand::Rng;
use sluice_compile::snapshot::{Action, Matcher, Route, RouteMatch};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub static B3: HeaderName = HeaderName::from_static("b3");
pub static X_B3_TRACEID: HeaderName = HeaderName::from_static("x-b3-traceid");
pub static X_B3_SPANID: HeaderName = HeaderName::from_static("x-b3-spanid");
pub static X_B3_PARENTSPANID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
pub static X_B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
pub static X_B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");

/// Hands the gateway's spans to an exporter. Cloned into each sampled request.
#[derive(Clone)]
pub struct Tracer(Arc<Inner>);

struct Inner {
    /// Share of the requests without a sampling decision that are sampled.
    ratio: f64,
    queue: mpsc::Sender<FinishedSpan>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("ratio", &self.0.ratio)
            .finish_non_exhaustive()
    }
}

/// What became of the spans: read by `/stats/prometheus`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Spans dropped because the queue was full (the exporter fell behind).
    pub dropped: AtomicU64,
    /// Spans the collector accepted.
    pub exported: AtomicU64,
    /// Spans in export requests that failed.
    pub failed: AtomicU64,
}

/// The exporter's end of the queue.
pub struct Spans {
    rx: mpsc::Receiver<FinishedSpan>,
    stats: Arc<Stats>,
}

impl Spans {
    /// The next span; `None` once every tracer is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<FinishedSpan> {
        self.rx.recv().await
    }

    /// A span already waiting, if any.
    pub fn try_recv(&mut self) -> Option<FinishedSpan> {
        self.rx.try_recv().ok()
    }

    /// The counters the exporter adds to (shared with the tracer's).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }
}

impl Tracer {
    /// A tracer that samples `ratio` (0.0 to 1.0) of the requests arriving without a sampling
    /// decision, and the receiving end of its queue, which holds at most `queue` spans.
    pub fn new(ratio: f64, queue: usize) -> (Tracer, Spans) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let stats = Arc::new(Stats::default());
        let tracer = Tracer(Arc::new(Inner {
            ratio,
            queue: tx,
            stats: stats.clone(),
        }));
        (tracer, Spans { rx, stats })
    }

    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    /// The gateway's span for `req`: a child of the client's span when the request carries a
    /// valid context, else the root of a new trace.
    pub(crate) fn start<B>(
        &self,
        req: &mut Request<B>,
        peer: SocketAddr,
        scheme: &'static str,
    ) -> Box<Span> {
        let incoming = extract(req.headers());
        let mut rng = rand::rng();
        // The client's decision stands; only requests without one are sampled at random.
        let sampled = incoming.sampled.unwrap_or_else(|| {
            self.0.ratio >= 1.0 || (self.0.ratio > 0.0 && rng.random::<f64>() < self.0.ratio)
        });
        let (trace_id, parent) = match incoming.parent {
            Some(p) => (p.trace_id, Some(p.span_id)),
            None => (nonzero_id(&mut rng), None),
        };
        let head = sampled.then(|| {
            let trace_state = match incoming.parent {
                Some(Parent { w3c: true, .. }) => joined(req.headers(), &TRACESTATE),
                _ => String::new(),
            };
            Head {
                tracer: self.clone(),
                start: SystemTime::now(),
                name: None,
                route_name: None,
                method: req.method().clone(),
                path: req.uri().path().to_string(),
                scheme,
                authority: headers::authority(req).unwrap_or("-").to_string(),
                version: req.version(),
                peer,
                user_agent: req.headers().get(USER_AGENT).cloned(),
                // The id the backend and the access log get, made now when absent.
                request_id: headers::ensure_request_id(req.headers_mut()).clone(),
                trace_state,
            }
        });
        Box::new(Span {
            trace_id,
            span_id: nonzero_id(&mut rng),
            parent,
            sampled,
            b3: incoming.b3_rewrite(),
            head,
        })
    }
}

/// A finished span as an exporter gets it: plain data, no OpenTelemetry types.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The client's span, when the request continued a trace.
    pub parent_span_id: Option<[u8; 8]>,
    /// The W3C `tracestate` the request carried (empty without one).
    pub trace_state: String,
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    /// A 5xx response, or none at all (the client left first).
    pub error: bool,
    pub attributes: Vec<(&'static str, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Cow<'static, str>),
    Int(i64),
}

/// The attributes Istio's proxies put on every span (its tracing `custom_tags`), for this
/// gateway; the exporter adds them to each span.
pub fn istio_attributes(w: &Workload) -> Vec<(&'static str, String)> {
    vec![
        ("istio.canonical_revision", w.canonical_revision.clone()),
        ("istio.canonical_service", w.canonical_service.clone()),
        // Istio's mesh id defaults to the trust domain.
        ("istio.mesh_id", "cluster.local".into()),
        ("istio.namespace", w.namespace.clone()),
        ("istio.cluster_id", w.cluster.clone()),
    ]
}

/// One request's span, from the record's start to its end.
pub(crate) struct Span {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    sampled: bool,
    /// The B3 headers to rewrite for the backend (the trace continues from B3).
    b3: Option<B3Seen>,
    /// What the exported span says of the request; only a sampled span has it.
    head: Option<Head>,
}

struct Head {
    tracer: Tracer,
    start: SystemTime,
    /// Istio's route decorator, once a route decided.
    name: Option<String>,
    route_name: Option<String>,
    method: Method,
    path: String,
    scheme: &'static str,
    authority: String,
    version: Version,
    peer: SocketAddr,
    user_agent: Option<HeaderValue>,
    request_id: HeaderValue,
    trace_state: String,
}

/// How the request ended, from its record.
pub(crate) struct End<'a> {
    pub code: u16,
    pub flags: Flags,
    /// The cluster's name; empty when the request reached none.
    pub cluster: &'a str,
    pub upstream: Option<&'a str>,
    pub duration: Duration,
}

impl Span {
    /// The route that decided (`port` is the Gateway's port the request came to).
    pub(crate) fn route(&mut self, route: &Route, matched: Option<&RouteMatch>, port: u32) {
        if let Some(head) = self.head.as_mut() {
            head.name = Some(operation(route, matched, port));
            // Istio names an unnamed route `default`.
            head.route_name = Some(route.name.as_deref().unwrap_or("default").to_string());
        }
    }

    /// The backend's trace context: the gateway's span is its parent.
    pub(crate) fn inject(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT.clone(), self.traceparent());
        if let Some(b3) = self.b3 {
            self.inject_b3(b3, headers);
        }
    }

    fn traceparent(&self) -> HeaderValue {
        let mut v = Vec::with_capacity(55);
        v.extend_from_slice(b"00-");
        push_hex(&mut v, &self.trace_id);
        v.push(b'-');
        push_hex(&mut v, &self.span_id);
        v.extend_from_slice(if self.sampled { b"-01" } else { b"-00" });
        value(v)
    }

    fn inject_b3(&self, b3: B3Seen, headers: &mut HeaderMap) {
        // A 64-bit trace id goes back as 64 bits (its high half is zero).
        let trace_id = if b3.short_id {
            &self.trace_id[8..]
        } else {
            &self.trace_id[..]
        };
        if b3.multi {
            headers.insert(X_B3_TRACEID.clone(), hex_value(trace_id));
            headers.insert(X_B3_SPANID.clone(), hex_value(&self.span_id));
            match &self.parent {
                Some(p) => headers.insert(X_B3_PARENTSPANID.clone(), hex_value(p)),
                None => headers.remove(&X_B3_PARENTSPANID),
            };
            // Debug implies sampled; B3 sends no `x-b3-sampled` with it.
            if b3.debug {
                headers.remove(&X_B3_SAMPLED);
            } else {
                let s = if self.sampled { "1" } else { "0" };
                headers.insert(X_B3_SAMPLED.clone(), HeaderValue::from_static(s));
            }
        }
        if b3.single {
            let mut v = Vec::with_capacity(68);
            push_hex(&mut v, trace_id);
            v.push(b'-');
            push_hex(&mut v, &self.span_id);
            v.extend_from_slice(match (b3.debug, self.sampled) {
                (true, _) => b"-d",
                (false, true) => b"-1",
                (false, false) => b"-0",
            });
            if let Some(p) = &self.parent {
                v.push(b'-');
                push_hex(&mut v, p);
            }
            headers.insert(B3.clone(), value(v));
        }
    }

    /// Hands a sampled span to the exporter; a full queue drops it (and counts it).
    pub(crate) fn finish(self, end: End<'_>) {
        let Some(head) = self.head else {
            return;
        };
        let attributes = head.attributes(&end);
        let Head {
            tracer,
            start,
            name,
            authority,
            trace_state,
            ..
        } = head;
        let span = FinishedSpan {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent,
            // Envoy's name when no route decorates the span (a gateway's listeners are
            // outbound to Envoy).
            name: name.unwrap_or_else(|| format!("egress {authority}")),
            start,
            end: start + end.duration,
            // As Envoy marks spans: 5xx, or no response at all.
            error: end.code == 0 || end.code >= 500,
            attributes,
            trace_state,
        };
        let inner = &tracer.0;
        if inner.queue.try_send(span).is_err() {
            inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Head {
    /// OpenTelemetry's HTTP server attributes, and Envoy's tags for what they do not cover.
    fn attributes(&self, end: &End<'_>) -> Vec<(&'static str, Value)> {
        let s = |v: &str| Value::Str(Cow::Owned(v.to_string()));
        let (host, port) = split_authority(&self.authority);
        let mut a = vec![
            ("http.request.method", s(self.method.as_str())),
            ("url.path", s(&self.path)),
            ("url.scheme", Value::Str(Cow::Borrowed(self.scheme))),
            ("server.address", s(host)),
        ];
        if let Some(port) = port {
            a.push(("server.port", Value::Int(i64::from(port))));
        }
        let version = match self.version {
            Version::HTTP_10 => "1.0",
            Version::HTTP_2 => "2",
            _ => "1.1",
        };
        a.push((
            "network.protocol.version",
            Value::Str(Cow::Borrowed(version)),
        ));
        a.push((
            "client.address",
            s(&self.peer.ip().to_canonical().to_string()),
        ));
        if let Some(ua) = self.user_agent.as_ref().and_then(|v| v.to_str().ok()) {
            a.push(("user_agent.original", s(ua)));
        }
        if end.code != 0 {
            a.push(("http.response.status_code", Value::Int(i64::from(end.code))));
        }
        a.push((
            "response_flags",
            Value::Str(Cow::Owned(end.flags.to_label())),
        ));
        if !end.cluster.is_empty() {
            a.push(("upstream_cluster", s(end.cluster)));
        }
        if let Some(u) = end.upstream {
            a.push(("upstream_address", s(u)));
        }
        if let Some(r) = &self.route_name {
            a.push(("route_name", s(r)));
        }
        if let Ok(id) = self.request_id.to_str() {
            a.push(("guid:x-request-id", s(id)));
        }
        a.push(("component", Value::Str(Cow::Borrowed("proxy"))));
        a
    }
}

/// The span name Istio's route decorator gives: `<host>:<port><path>` of the route's only
/// cluster, else `<VirtualService name>:<Gateway port><path>`. The path is the match's prefix
/// followed by `*`, its exact path or its regex, and `/*` without one.
pub fn operation(route: &Route, matched: Option<&RouteMatch>, port: u32) -> String {
    let path: Cow<'_, str> = match matched.and_then(|m| m.uri.as_ref()) {
        Some(Matcher::Prefix(p)) => Cow::Owned(format!("{p}*")),
        Some(Matcher::Exact(p)) => Cow::Borrowed(p),
        Some(Matcher::Regex(r)) => Cow::Borrowed(unanchored(r.as_str())),
        // A Gateway API PathPrefix is Envoy's path_separated_prefix, which Istio's decorator
        // does not read; no path match is Istio's `prefix: /`.
        _ => Cow::Borrowed("/*"),
    };
    if let Action::Forward(f) = &route.action {
        if let [only] = f.destinations.as_slice() {
            if let Some((host, cluster_port)) = cluster_host_port(&only.cluster) {
                return format!("{host}:{cluster_port}{path}");
            }
        }
    }
    let name = route.virtual_service.rsplit('/').next().unwrap_or_default();
    format!("{name}:{port}{path}")
}

/// Host and port of an `outbound|<port>|<subset>|<host>` cluster.
fn cluster_host_port(cluster: &str) -> Option<(&str, u32)> {
    let mut parts = cluster.split('|');
    let (Some("outbound"), Some(port), Some(_), Some(host), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    // A GRPCRoute's HTTP/2 twin of a cluster is the same service to Istio.
    Some((host.strip_suffix("+h2").unwrap_or(host), port.parse().ok()?))
}

/// A route regex as written (compile anchors it as `^(?:…)$`).
fn unanchored(re: &str) -> &str {
    re.strip_prefix("^(?:")
        .and_then(|r| r.strip_suffix(")$"))
        .unwrap_or(re)
}

/// `host` and `port` of an authority (`[::1]:8080`, `shop.example`).
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, p.parse().ok()),
        _ => (authority, None),
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (host, port)
}

/// The trace context a request carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Incoming {
    /// The client's span, when a valid context names one.
    pub parent: Option<Parent>,
    /// The client's sampling decision, when it made one.
    pub sampled: Option<bool>,
    /// The B3 headers it had.
    pub b3: B3Seen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// From `traceparent` (else from B3).
    pub w3c: bool,
}

/// Which B3 headers a request had, and how its trace id was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct B3Seen {
    /// The single `b3` header.
    pub single: bool,
    /// Any of the `x-b3-*` headers.
    pub multi: bool,
    /// A 64-bit trace id (16 hex digits).
    pub short_id: bool,
    /// Debug (`x-b3-flags: 1`, or `d` in `b3`): sampled, and said so.
    pub debug: bool,
}

impl Incoming {
    /// B3 headers are rewritten unless a valid `traceparent` decided the trace.
    fn b3_rewrite(&self) -> Option<B3Seen> {
        let w3c = self.parent.is_some_and(|p| p.w3c);
        (!w3c && (self.b3.single || self.b3.multi)).then_some(self.b3)
    }
}

/// The context of a request: a valid `traceparent` first, then the single `b3` header, then
/// the `x-b3-*` headers. An invalid one is ignored, as if absent.
pub fn extract(headers: &HeaderMap) -> Incoming {
    let mut b3 = B3Seen {
        single: headers.contains_key(&B3),
        multi: [&X_B3_TRACEID, &X_B3_SPANID, &X_B3_SAMPLED, &X_B3_FLAGS]
            .iter()
            .any(|h| headers.contains_key(*h)),
        ..Default::default()
    };
    // Two `traceparent` headers are as invalid as a malformed one.
    let mut all = headers.get_all(&TRACEPARENT).iter();
    if let (Some(tp), None) = (all.next(), all.next()) {
        if let Some((trace_id, span_id, sampled)) = parse_traceparent(tp.as_bytes()) {
            return Incoming {
                parent: Some(Parent {
                    trace_id,
                    span_id,
                    w3c: true,
                }),
                sampled: Some(sampled),
                b3,
            };
        }
    }
    let found = headers
        .get(&B3)
        .and_then(|v| parse_b3_single(v.as_bytes()))
        .or_else(|| parse_b3_multi(headers));
    let Some(found) = found else {
        return Incoming {
            b3,
            ..Default::default()
        };
    };
    b3.debug = found.debug;
    b3.short_id = found.short_id;
    Incoming {
        parent: found.ids.map(|(trace_id, span_id)| Parent {
            trace_id,
            span_id,
            w3c: false,
        }),
        sampled: found.sampled,
        b3,
    }
}

/// W3C Trace Context: `version-traceid-parentid-flags`, lower-case hex. Version `ff`, all-zero
/// ids and wrong lengths are invalid; a later version may append fields after a `-`.
/// Returns the ids and the sampled flag.
pub fn parse_traceparent(v: &[u8]) -> Option<([u8; 16], [u8; 8], bool)> {
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = from_hex::<1>(&v[..2])?[0];
    let valid_length = match version {
        0xff => false,
        0 => v.len() == 55,
        _ => v.len() == 55 || v[55] == b'-',
    };
    if !valid_length {
        return None;
    }
    let trace_id = nonzero(from_hex::<16>(&v[3..35])?)?;
    let span_id = nonzero(from_hex::<8>(&v[36..52])?)?;
    let flags = from_hex::<1>(&v[53..55])?[0];
    Some((trace_id, span_id, flags & 1 == 1))
}

/// What B3 headers say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct B3Context {
    pub ids: Option<([u8; 16], [u8; 8])>,
    pub sampled: Option<bool>,
    pub debug: bool,
    pub short_id: bool,
}

/// The single `b3` header: `{trace}-{span}[-{0|1|d}[-{parent}]]`, or the decision alone.
pub fn parse_b3_single(v: &[u8]) -> Option<B3Context> {
    let decision = |s: &[u8]| match s {
        b"0" => Some((Some(false), false)),
        b"1" => Some((Some(true), false)),
        b"d" => Some((Some(true), true)),
        _ => None,
    };
    let parts: Vec<&[u8]> = v.split(|b| *b == b'-').collect();
    if let [only] = parts.as_slice() {
        let (sampled, debug) = decision(only)?;
        return Some(B3Context {
            sampled,
            debug,
            ..Default::default()
        });
    }
    let (trace, span, rest) = match parts.as_slice() {
        [t, s, rest @ ..] if rest.len() <= 2 => (t, s, rest),
        _ => return None,
    };
    let (trace_id, short_id) = b3_trace_id(trace)?;
    let span_id = nonzero(from_hex::<8>(span)?)?;
    let (sampled, debug) = match rest.first() {
        Some(d) => decision(d)?,
        None => (None, false),
    };
    if let Some(parent) = rest.get(1) {
        from_hex::<8>(parent)?;
    }
    Some(B3Context {
        ids: Some((trace_id, span_id)),
        sampled,
        debug,
        short_id,
    })
}

/// `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled` (`1`/`0`, or the old `true`/`false`) and
/// `x-b3-flags: 1` (debug). Ids count only as a valid pair.
fn parse_b3_multi(headers: &HeaderMap) -> Option<B3Context> {
    let get = |h: &HeaderName| headers.get(h).map(HeaderValue::as_bytes);
    let ids = match (get(&X_B3_TRACEID), get(&X_B3_SPANID)) {
        (Some(t), Some(s)) => b3_trace_id(t).zip(from_hex::<8>(s).and_then(nonzero)),
        _ => None,
    };
    let debug = get(&X_B3_FLAGS) == Some(b"1");
    let sampled = match get(&X_B3_SAMPLED) {
        _ if debug => Some(true),
        Some(b"1" | b"true") => Some(true),
        Some(b"0" | b"false") => Some(false),
        _ => None,
    };
    if ids.is_none() && sampled.is_none() {
        return None;
    }
    Some(B3Context {
        ids: ids.map(|((t, _), s)| (t, s)),
        sampled,
        debug,
        short_id: ids.is_some_and(|((_, short), _)| short),
    })
}

/// A B3 trace id: 32 hex digits, or 16 (the high half zero); never all zero.
fn b3_trace_id(v: &[u8]) -> Option<([u8; 16], bool)> {
    match v.len() {
        32 => Some((nonzero(from_hex::<16>(v)?)?, false)),
        16 => {
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&from_hex::<8>(v)?);
            Some((nonzero(id)?, true))
        }
        _ => None,
    }
}

/// `N` bytes from exactly `2N` lower-case hex digits.
fn from_hex<const N: usize>(v: &[u8]) -> Option<[u8; N]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if v.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(v.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn nonzero<const N: usize>(id: [u8; N]) -> Option<[u8; N]> {
    id.iter().any(|b| *b != 0).then_some(id)
}

fn nonzero_id<const N: usize>(rng: &mut impl Rng) -> [u8; N]
where
    rand::distr::StandardUniform: rand::distr::Distribution<[u8; N]>,
{
    loop {
        if let Some(id) = nonzero(rng.random()) {
            return id;
        }
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

fn hex_value(bytes: &[u8]) -> HeaderValue {
    let mut v = Vec::with_capacity(bytes.len() * 2);
    push_hex(&mut v, bytes);
    value(v)
}

fn value(v: Vec<u8>) -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).expect("hex digits and dashes")
}

/// Every value of `name`, joined as one list.
fn joined(headers: &HeaderMap, name: &HeaderName) -> String {
    let mut out = String::new();
    for v in headers.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::tests::map;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        from_hex::<N>(s.as_bytes()).unwrap()
    }

    #[test]
    fn traceparent_as_the_w3c_spec_reads_it() {
        let ok = |v: &str| parse_traceparent(v.as_bytes());
        let ids = (unhex::<16>(TRACE), unhex::<8>(SPAN));
        assert_eq!(
            ok(&format!("00-{TRACE}-{SPAN}-01")),
            Some((ids.0, ids.1, true))
        );
        assert_eq!(
            ok(&format!("00-{TRACE}-{SPAN}-00")),
            Some((ids.0, ids.1, false))
        );
        // Other flag bits do not make a request sampled.
        assert_eq!(
            ok(&format!("00-{TRACE}-{SPAN}-02")),
            Some((ids.0, ids.1, false))
        );
        // A later version may add fields after a dash; version 00 may not.
        assert!(ok(&format!("01-{TRACE}-{SPAN}-01-extra")).is_some());
        assert!(ok(&format!("01-{TRACE}-{SPAN}-01")).is_some());
        let zero_trace = "0".repeat(32);
        let zero_span = "0".repeat(16);
        for bad in [
            format!("00-{TRACE}-{SPAN}-01-extra"),
            format!("01-{TRACE}-{SPAN}-01x"),
            format!("ff-{TRACE}-{SPAN}-01"),
            format!("00-{zero_trace}-{SPAN}-01"),
            format!("00-{TRACE}-{zero_span}-01"),
            format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
            format!("00-{}-{SPAN}-01", &TRACE[1..]),
            format!("00-{TRACE}0-{SPAN}-01"),
            format!("00-{TRACE}-{}-01", &SPAN[1..]),
            format!("00-{TRACE}-{SPAN}-1"),
            format!("00_{TRACE}_{SPAN}_01"),
            format!("0g-{TRACE}-{SPAN}-01"),
            format!("00-{TRACE}-{SPAN}-0x"),
            String::new(),
        ] {
            assert_eq!(ok(&bad), None, "{bad}");
        }
    }

    #[test]
    fn b3_single_header() {
        let parse = |v: &str| parse_b3_single(v.as_bytes());
        let full = parse(&format!("{TRACE}-{SPAN}-1-05e3ac9a4f6e3b90")).unwrap();
        assert_eq!(full.ids, Some((unhex(TRACE), unhex(SPAN))));
        assert_eq!(
            (full.sampled, full.debug, full.short_id),
            (Some(true), false, false)
        );
        let short = parse(&format!("{}-{SPAN}", &TRACE[16..])).unwrap();
        let mut id = [0u8; 16];
        id[8..].copy_from_slice(&unhex::<8>(&TRACE[16..]));
        assert_eq!(short.ids, Some((id, unhex(SPAN))));
        assert_eq!((short.sampled, short.short_id), (None, true));
        let debug = parse(&format!("{TRACE}-{SPAN}-d")).unwrap();
        assert_eq!((debug.sampled, debug.debug), (Some(true), true));
        assert_eq!(parse("0").unwrap().sampled, Some(false));
        assert_eq!(parse("0").unwrap().ids, None);
        for bad in [
            "".to_string(),
            "2".to_string(),
            TRACE.to_string(),
            format!("{TRACE}-{SPAN}-2"),
            format!("{TRACE}-{}-1", &SPAN[2..]),
            format!("{}-{SPAN}-1", &TRACE[2..]),
            format!("{}-{SPAN}-1", "0".repeat(32)),
            format!("{TRACE}-{}-1", "0".repeat(16)),
            format!("{TRACE}-{SPAN}-1-xyz"),
            format!("{TRACE}-{SPAN}-1-{SPAN}-more"),
            format!("{}-{SPAN}-1", TRACE.to_uppercase()),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn w3c_first_then_b3_single_then_multi() {
        let b3_trace = "80f198ee56343ba864fe8b2a57d3eff7";
        let b3_span = "e457b5a2e4d86bd1";
        let multi = [
            ("x-b3-traceid", b3_trace),
            ("x-b3-spanid", b3_span),
            ("x-b3-sampled", "0"),
        ];
        let tp = format!("00-{TRACE}-{SPAN}-01");
        let mut both = multi.to_vec();
        both.push(("traceparent", &tp));
        let w3c = extract(&map(&both));
        assert_eq!(
            w3c.parent,
            Some(Parent {
                trace_id: unhex(TRACE),
                span_id: unhex(SPAN),
                w3c: true
            })
        );
        assert_eq!(w3c.sampled, Some(true));
        // A valid traceparent decides: the B3 headers pass unchanged.
        assert_eq!(w3c.b3_rewrite(), None);

        let from_multi = extract(&map(&multi));
        assert_eq!(
            from_multi.parent.map(|p| (p.trace_id, p.span_id, p.w3c)),
            Some((unhex(b3_trace), unhex(b3_span), false))
        );
        assert_eq!(from_multi.sampled, Some(false));
        assert!(from_multi
            .b3_rewrite()
            .is_some_and(|b| b.multi && !b.single));

        // An invalid traceparent is ignored, and B3 continues the trace.
        let mut bad_tp = multi.to_vec();
        bad_tp.push(("traceparent", "00-abc-def-01"));
        assert_eq!(extract(&map(&bad_tp)).parent, from_multi.parent);
        // Two traceparent headers are invalid too.
        let twice = map(&[("traceparent", &tp), ("traceparent", &tp)]);
        assert_eq!(extract(&twice), Incoming::default());

        // The single header wins over the multi headers.
        let single = format!("{TRACE}-{SPAN}-1");
        let mut with_single = multi.to_vec();
        with_single.push(("b3", &single));
        let s = extract(&map(&with_single));
        assert_eq!(s.parent.map(|p| p.span_id), Some(unhex(SPAN)));
        assert_eq!(s.sampled, Some(true));
        assert!(s.b3_rewrite().is_some_and(|b| b.multi && b.single));

        // Only a decision: no parent, but the decision stands.
        let deny = extract(&map(&[("x-b3-sampled", "0")]));
        assert_eq!((deny.parent, deny.sampled), (None, Some(false)));
        let debug = extract(&map(&[("x-b3-flags", "1")]));
        assert_eq!(debug.sampled, Some(true));
        assert!(debug.b3.debug);
        // Half a pair of ids is no parent.
        let half = extract(&map(&[("x-b3-traceid", b3_trace)]));
        assert_eq!((half.parent, half.sampled), (None, None));
        assert_eq!(extract(&HeaderMap::new()), Incoming::default());
    }

    fn span(parent: bool, sampled: bool, b3: Option<B3Seen>) -> Span {
        Span {
            trace_id: unhex(TRACE),
            span_id: unhex("1111111111111111"),
            parent: parent.then(|| unhex(SPAN)),
            sampled,
            b3,
            head: None,
        }
    }

    #[test]
    fn the_backend_gets_the_gateways_span_as_parent() {
        let mut h = map(&[("tracestate", "congo=t61rcWkgMzE")]);
        span(true, true, None).inject(&mut h);
        assert_eq!(h["traceparent"], format!("00-{TRACE}-1111111111111111-01"));
        assert_eq!(h["tracestate"], "congo=t61rcWkgMzE");
        assert!(!h.contains_key("x-b3-traceid"));
        span(false, false, None).inject(&mut h);
        assert_eq!(h["traceparent"], format!("00-{TRACE}-1111111111111111-00"));

        let multi = B3Seen {
            multi: true,
            ..Default::default()
        };
        let mut h = map(&[
            ("x-b3-sampled", "1"),
            ("x-b3-parentspanid", "2222222222222222"),
        ]);
        span(true, true, Some(multi)).inject(&mut h);
        assert_eq!(h["x-b3-traceid"], TRACE);
        assert_eq!(h["x-b3-spanid"], "1111111111111111");
        assert_eq!(h["x-b3-parentspanid"], SPAN);
        assert_eq!(h["x-b3-sampled"], "1");
        assert!(!h.contains_key("b3"));
        span(false, false, Some(multi)).inject(&mut h);
        assert!(!h.contains_key("x-b3-parentspanid"));
        assert_eq!(h["x-b3-sampled"], "0");

        let single_short_debug = B3Seen {
            single: true,
            short_id: true,
            debug: true,
            ..Default::default()
        };
        let mut h = HeaderMap::new();
        span(true, true, Some(single_short_debug)).inject(&mut h);
        assert_eq!(
            h["b3"],
            format!("{}-1111111111111111-d-{SPAN}", &TRACE[16..])
        );
        assert!(!h.contains_key("x-b3-traceid"));
    }

    #[test]
    fn operation_names_as_istio_decorates_routes() {
        let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: default}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: shop, namespace: default}\nspec:\n  hosts: [\"*\"]\n  gateways: [gw]\n  http:\n  - match: [{uri: {prefix: /users}}, {uri: {exact: /login}}, {uri: {regex: \"/v[0-9]+/.*\"}}]\n    route: [{destination: {host: a.default.svc.cluster.local, port: {number: 8000}}}]\n  - match: [{uri: {prefix: /split}}]\n    route:\n    - {destination: {host: a.default.svc.cluster.local, port: {number: 8000}}, weight: 50}\n    - {destination: {host: b.default.svc.cluster.local, port: {number: 8000}}, weight: 50}\n  - route: [{destination: {host: b.default.svc.cluster.local, port: {number: 8000}}}]\n";
        let mut l = sluice_config::Loader::new();
        l.add_text("t.yaml".into(), yaml);
        let (store, diags) = sluice_compile::admit(&l.finish(), &Default::default());
        let store = store.unwrap_or_else(|| panic!("{diags:#?}"));
        let snapshot = sluice_compile::compile(&store, &Default::default()).0;
        let routes = &snapshot.route_tables["http.80"].virtual_hosts[0].routes;
        let a = "a.default.svc.cluster.local:8000";
        let first = &routes[0];
        let names: Vec<String> = first
            .matches
            .iter()
            .map(|m| operation(first, Some(m), 80))
            .collect();
        assert_eq!(
            names,
            [
                format!("{a}/users*"),
                format!("{a}/login"),
                format!("{a}/v[0-9]+/.*")
            ]
        );
        assert_eq!(
            operation(&routes[1], routes[1].matches.first(), 80),
            "shop:80/split*"
        );
        assert_eq!(
            operation(&routes[2], None, 80),
            "b.default.svc.cluster.local:8000/*"
        );
    }

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(split_authority("shop.example"), ("shop.example", None));
        assert_eq!(
            split_authority("shop.example:8080"),
            ("shop.example", Some(8080))
        );
        assert_eq!(split_authority("[::1]:80"), ("::1", Some(80)));
        assert_eq!(split_authority("[::1]"), ("::1", None));
        assert_eq!(split_authority("::1"), ("::1", None));
    }
}
