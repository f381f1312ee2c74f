//! One request, start to end: route it with `select_route`, answer locally (404, redirect,
//! direct response, CORS preflight, injected fault) or forward it with the route's policy
//! (rewrite, header edits, mirrors, retries, timeouts) and stream the response back.
use crate::body::{full, Prepared, ProxyBody, ReadError, RequestBody};
use crate::cluster::{ClusterRuntime, EndpointState, NoPick, Tracked};
use crate::dataplane::{Dataplane, PortKind};
use crate::headers::{self, View};
use crate::lb::pick_destination;
use crate::outlier::Outcome;
use crate::pool::{Lease, SendError};
use crate::tls::ClientCert;
use crate::upstream::Upstreams;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, HOST, LOCATION};
use http::uri::{PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::Rng;
use sluice_compile::policy::{Abort, Cors, Retry};
use sluice_compile::snapshot::{Forward, Route, RouteMatch};
use sluice_compile::{select_route, RequestView, RouteDecision};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// What every connection of a gateway shares.
pub(crate) struct Shared {
    pub current: ArcSwap<Dataplane>,
    pub upstreams: Upstreams,
    /// Bytes of request body kept so a request can be retried or mirrored.
    pub replay_buffer: usize,
    /// Mirrored requests in flight; beyond it mirrors are skipped, never queued.
    pub mirror_slots: Arc<Semaphore>,
    /// Append `-shadow` to a mirror's Host (Istio before 1.28).
    pub mirror_host_suffix: bool,
    /// Write one access-log line per request (target `sluice::access`).
    pub access_log: bool,
    pub limits: Limits,
    /// Over the memory watermark: new requests get 503.
    pub overloaded: AtomicBool,
}

/// What a request must stay within.
pub(crate) struct Limits {
    /// From accept to the first request's headers (enforced around hyper, see `overload`).
    pub headers_timeout: Duration,
    /// Longest pause in a request body before 408.
    pub body_timeout: Duration,
    /// HTTP/1.1 request line and headers; hyper's buffer limit is only approximate.
    pub header_bytes: usize,
    pub path_normalization: headers::PathNormalization,
}

/// The downstream connection a request came on.
pub(crate) struct Downstream {
    pub peer: SocketAddr,
    pub bind_port: u32,
    pub scheme: &'static str,
    /// TLS: the SNI the server was chosen by.
    pub sni: Option<String>,
    /// TLS: the verified client certificate, if any.
    pub client_cert: Option<ClientCert>,
    /// `peer`'s address as `x-forwarded-for` gets it.
    pub client_address: HeaderValue,
}

impl Downstream {
    pub fn new(
        peer: SocketAddr,
        bind_port: u32,
        scheme: &'static str,
        sni: Option<String>,
        client_cert: Option<ClientCert>,
    ) -> Downstream {
        Downstream {
            peer,
            bind_port,
            scheme,
            sni,
            client_cert,
            client_address: headers::client_address(peer.ip()),
        }
    }
}

/// Why the last try of a request got no response; the local reply is made only when no try
/// succeeds.
#[derive(Clone, Copy)]
enum Failure {
    NoHealthyUpstream,
    Connect,
    Reset,
    Timeout,
    /// A circuit breaker of the cluster is open.
    Overflow,
}

impl Failure {
    fn reply(self, grpc: bool) -> Response<ProxyBody> {
        let (status, flag, body) = match self {
            Failure::NoHealthyUpstream => (
                StatusCode::SERVICE_UNAVAILABLE,
                Flag::UH,
                "no healthy upstream",
            ),
            Failure::Connect => (
                StatusCode::SERVICE_UNAVAILABLE,
                Flag::UF,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
            Failure::Reset => (
                StatusCode::SERVICE_UNAVAILABLE,
                Flag::UC,
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            ),
            Failure::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                Flag::UT,
                "upstream request timeout",
            ),
            Failure::Overflow => {
                let mut resp = local(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Flag::UO,
                    "upstream connect error or disconnect/reset before headers. reset reason: overflow",
                    grpc,
                );
                // Envoy marks a circuit breaker's answer so clients can tell it from the backend's.
                resp.headers_mut().insert(
                    HeaderName::from_static("x-envoy-overloaded"),
                    HeaderValue::from_static("true"),
                );
                return resp;
            }
        };
        local(status, flag, body, grpc)
    }
}

/// Envoy's response flags, for the log line of a request the gateway answered itself.
/// Spelled as Envoy spells them, so Istio users can grep for them.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy)]
enum Flag {
    /// No route.
    NR,
    /// No cluster (unknown host or subset).
    NC,
    /// No healthy upstream endpoint.
    UH,
    /// Upstream connection failure.
    UF,
    /// Upstream connection terminated before a response.
    UC,
    /// Upstream request timeout.
    UT,
    /// Upstream overflow: a circuit breaker of the cluster is open.
    UO,
    /// Fault injected: abort.
    FI,
    /// Fault injected: delay.
    DI,
    /// Downstream protocol error (a request body that could not be read).
    DPE,
    /// A request for a host the connection's TLS server does not serve (421).
    MisdirectedRequest,
    /// Upstream protocol error (a 101 nobody asked for).
    UPE,
    /// Shed by overload protection.
    OM,
    /// The request body stopped arriving (408).
    SI,
    /// Downstream connection terminated: the client went away, or the drain cut the request.
    DC,
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Downstream>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let dataplane = shared.current.load_full();
    if !shared.access_log {
        return Ok(route(&shared, &dataplane, &conn, req).await);
    }
    // The id the backend will get, made now when absent, so the line carries it too.
    let mut req = req;
    if !req.headers().contains_key(&headers::X_REQUEST_ID) {
        req.headers_mut()
            .insert(headers::X_REQUEST_ID.clone(), headers::request_id());
    }
    // Logged when the response body ends, or when the request is dropped (client gone, drain).
    let entry = AccessLog::start(&req, conn.peer);
    let resp = route(&shared, &dataplane, &conn, req).await;
    Ok(entry.respond(resp))
}

/// One access-log line, written once whatever way the request ends.
struct AccessLog {
    line: String,
    started: std::time::Instant,
    peer: SocketAddr,
    /// 0 until a response exists, as Envoy logs a request that got none.
    status: u16,
    flag: Option<Flag>,
    upstream: Option<Upstream>,
    written: bool,
}

impl AccessLog {
    fn start(req: &Request<Incoming>, peer: SocketAddr) -> AccessLog {
        let line = format!(
            "\"{} {} {:?}\" authority=\"{}\" request_id=\"{}\"",
            req.method(),
            req.uri().path_and_query().map_or("/", |p| p.as_str()),
            req.version(),
            req.uri()
                .authority()
                .map(|a| a.as_str())
                .or_else(|| req.headers().get(HOST).and_then(|h| h.to_str().ok()))
                .unwrap_or("-"),
            req.headers()
                .get(&headers::X_REQUEST_ID)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("-"),
        );
        AccessLog {
            line,
            started: std::time::Instant::now(),
            peer,
            status: 0,
            flag: None,
            upstream: None,
            written: false,
        }
    }

    /// The response, its body watched so the line is written when it ends.
    fn respond(mut self, resp: Response<ProxyBody>) -> Response<ProxyBody> {
        self.status = resp.status().as_u16();
        self.flag = resp.extensions().get::<Flag>().copied();
        self.upstream = resp.extensions().get::<Upstream>().cloned();
        let (parts, body) = resp.into_parts();
        let body = Logged {
            inner: body,
            log: Some(self),
        };
        Response::from_parts(parts, http_body_util::BodyExt::boxed(body))
    }

    fn write(&mut self, flag: Option<Flag>) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let flag = flag
            .or(self.flag)
            .map_or("-".to_string(), |f| format!("{f:?}"));
        let upstream = self.upstream.as_ref();
        tracing::info!(
            target: "sluice::access",
            "{} status={} flags={flag} duration_ms={} upstream_cluster={} upstream_host={} downstream={}",
            self.line,
            self.status,
            self.started.elapsed().as_millis(),
            upstream.map_or("-", |u| u.cluster.as_str()),
            upstream.map_or("-".to_string(), |u| u.host.to_string()),
            self.peer,
        );
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        // No response, or a body that never ended: the client went away or the drain cut it.
        self.write(Some(Flag::DC));
    }
}

/// A response body that writes the access log when it ends.
struct Logged {
    inner: ProxyBody,
    log: Option<AccessLog>,
}

impl hyper::body::Body for Logged {
    type Data = Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        let ended = match &polled {
            std::task::Poll::Ready(None) => Some(None),
            std::task::Poll::Ready(Some(Err(e))) => {
                Some(Some(if e.is::<crate::body::BodyTimeout>() {
                    Flag::UT
                } else {
                    Flag::UC
                }))
            }
            _ => None,
        };
        if let (Some(flag), Some(log)) = (ended, self.log.as_mut()) {
            log.write(flag);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        // hyper need not poll a body that is known to be empty.
        if hyper::body::Body::is_end_stream(&self.inner) {
            if let Some(log) = self.log.as_mut() {
                log.write(None);
            }
        }
    }
}

/// Where a forwarded request went, for the access log.
#[derive(Clone)]
struct Upstream {
    cluster: String,
    host: http::uri::Authority,
}

async fn route(
    shared: &Shared,
    dp: &Dataplane,
    conn: &Downstream,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let grpc = is_grpc(req.headers());
    if shared.overloaded.load(Ordering::Relaxed) {
        let mut resp = local(
            StatusCode::SERVICE_UNAVAILABLE,
            Flag::OM,
            "overloaded",
            grpc,
        );
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    }
    if let Some(refused) = check(&shared.limits, &mut req, grpc) {
        return refused;
    }
    let Some(port) = dp.ports.get(&conn.bind_port) else {
        return local(StatusCode::NOT_FOUND, Flag::NR, "", grpc);
    };
    // RFC 9112 §3.2.2: an absolute URI wins over Host; HTTP/2 carries :authority in the URI.
    let authority = match req.uri().authority() {
        Some(a) => a.as_str(),
        None => match req.headers().get(HOST).map(|h| h.to_str()) {
            Some(Ok(h)) if !h.is_empty() => h,
            _ => return plain(StatusCode::BAD_REQUEST, "missing or invalid host header"),
        },
    };
    let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let view = RequestView {
        authority,
        path_and_query,
        method: req.method().as_str(),
        scheme: conn.scheme,
        port: port.service_port,
        headers: &View(req.headers()),
    };
    let table = match &port.kind {
        PortKind::Plain(table) => table,
        PortKind::Tls { servers, .. } => match port.tls_server(conn.sni.as_deref()) {
            // HTTP/2 lets a client reuse a connection for another host its certificate covers;
            // a host another server of the port serves must go on its own connection (RFC 9110
            // §15.5.20, the Gateway API's rule); a host no server serves is simply not found.
            Some((server, runtime)) => {
                let host = sluice_compile::select::host_of(authority);
                if server.covers(&host) {
                    &runtime.table
                } else if servers.iter().any(|s| s.covers(&host)) {
                    return local(
                        StatusCode::MISDIRECTED_REQUEST,
                        Flag::MisdirectedRequest,
                        "misdirected request",
                        grpc,
                    );
                } else {
                    return local(StatusCode::NOT_FOUND, Flag::NR, "", grpc);
                }
            }
            None => return local(StatusCode::NOT_FOUND, Flag::NR, "", grpc),
        },
        // The port became a TCP port after this connection was opened.
        PortKind::Tcp(_) => return local(StatusCode::NOT_FOUND, Flag::NR, "", grpc),
    };
    match select_route(table, &view) {
        RouteDecision::NoRoute { .. } => local(StatusCode::NOT_FOUND, Flag::NR, "", grpc),
        RouteDecision::DirectResponse { status, body, .. } => {
            let mut resp = Response::new(full(Bytes::copy_from_slice(body)));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if !body.is_empty() {
                resp.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            }
            resp
        }
        RouteDecision::Redirect {
            status, location, ..
        } => {
            let mut resp = Response::new(full(""));
            *resp.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            match HeaderValue::try_from(location) {
                Ok(v) => {
                    resp.headers_mut().insert(LOCATION, v);
                    resp
                }
                Err(_) => plain(
                    StatusCode::BAD_REQUEST,
                    "redirect target is not a valid header",
                ),
            }
        }
        RouteDecision::Forward {
            route,
            forward,
            matched,
            ..
        } => {
            let ctx = Context {
                shared,
                dp,
                conn,
                route,
                grpc,
                delayed: std::sync::atomic::AtomicBool::new(false),
            };
            let mut resp = ctx.forward(forward, matched, req).await;
            // An injected delay shows in the access log unless something else went wrong.
            if ctx.delayed.load(std::sync::atomic::Ordering::Relaxed)
                && resp.extensions().get::<Flag>().is_none()
            {
                resp.extensions_mut().insert(Flag::DI);
            }
            resp
        }
    }
}

/// Refuses what a gateway must not route, as Envoy and RFC 9110/9112 do (the refusal is
/// returned), and normalises the path in place so that the route decides on the path the
/// backend gets.
fn check(limits: &Limits, req: &mut Request<Incoming>, grpc: bool) -> Option<Response<ProxyBody>> {
    if req.method() == Method::CONNECT {
        // Envoy answers 404 unless a route allows CONNECT, and no Istio HTTP route can.
        return Some(local(StatusCode::NOT_FOUND, Flag::NR, "", grpc));
    }
    if req.version() <= Version::HTTP_11 && header_bytes(req) > limits.header_bytes {
        return Some(plain(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large",
        ));
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    let host = hosts.next();
    // RFC 9112 §3.2: more than one Host is a 400, not a choice of the first.
    let host_ok = hosts.next().is_none()
        && host.is_none_or(|h| h.to_str().is_ok_and(headers::valid_authority))
        && req
            .uri()
            .authority()
            .is_none_or(|a| headers::valid_authority(a.as_str()));
    if !host_ok {
        return Some(plain(StatusCode::BAD_REQUEST, "invalid host"));
    }
    let Some(pq) = req.uri().path_and_query().filter(|_| {
        // `GET admin HTTP/1.1` parses as authority-form, which only CONNECT may use.
        req.uri().scheme().is_some() || req.uri().authority().is_none()
    }) else {
        return Some(plain(StatusCode::BAD_REQUEST, "invalid request target"));
    };
    let path = pq.path();
    if !path.starts_with('/') {
        // `OPTIONS *`: no route serves the asterisk form (Envoy answers 404 too).
        return Some(if path == "*" {
            local(StatusCode::NOT_FOUND, Flag::NR, "", grpc)
        } else {
            plain(StatusCode::BAD_REQUEST, "invalid request target")
        });
    }
    let normalized = match headers::normalize_path(path, limits.path_normalization) {
        Ok(std::borrow::Cow::Borrowed(_)) => return None,
        Ok(std::borrow::Cow::Owned(p)) => p,
        Err(headers::BadEscape) => {
            return Some(plain(StatusCode::BAD_REQUEST, "invalid percent-encoding"))
        }
    };
    let pq = match pq.query() {
        Some(q) => format!("{normalized}?{q}"),
        None => normalized,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = PathAndQuery::try_from(pq).ok();
    match Uri::from_parts(parts) {
        Ok(uri) => {
            *req.uri_mut() = uri;
            None
        }
        Err(_) => Some(plain(StatusCode::BAD_REQUEST, "invalid request target")),
    }
}

/// An HTTP/1.1 request's head as it was on the wire: request line and header lines.
fn header_bytes<B>(req: &Request<B>) -> usize {
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n".len()
        + 1;
    req.headers()
        .iter()
        .fold(line + 2, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

struct Context<'a> {
    shared: &'a Shared,
    dp: &'a Dataplane,
    conn: &'a Downstream,
    route: &'a Route,
    grpc: bool,
    /// A fault delay was injected (flag DI).
    delayed: std::sync::atomic::AtomicBool,
}

/// The request as it will be sent upstream, kept so each try can be rebuilt.
struct Outgoing {
    method: Method,
    path_and_query: PathAndQuery,
    headers: HeaderMap,
}

impl Context<'_> {
    async fn forward(
        &self,
        forward: &Forward,
        matched: Option<&RouteMatch>,
        mut req: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let policy = &self.route.policy;
        // Only a route with a CORS policy looks at Origin.
        let origin = policy
            .cors
            .as_ref()
            .and_then(|_| req.headers().get(http::header::ORIGIN).cloned());
        if let Some(cors) = &policy.cors {
            if let Some(resp) = preflight(cors, &req, origin.as_ref()) {
                return resp;
            }
        }
        if let Some(fault) = &policy.fault {
            if let Some((delay, pct)) = fault.delay {
                if roll(pct) {
                    tokio::time::sleep(delay).await;
                    self.delayed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            if let Some((abort, pct)) = fault.abort {
                if roll(pct) {
                    return abort_reply(abort, self.grpc);
                }
            }
        }

        let destination = pick_destination(&forward.destinations, forward.total_weight);
        let Some(balancer) = self.dp.clusters.get(&destination.cluster) else {
            return local(StatusCode::SERVICE_UNAVAILABLE, Flag::NC, "", self.grpc);
        };
        if let Some(problem) = &balancer.cluster.problem {
            let status =
                StatusCode::from_u16(problem.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return local(status, Flag::NC, "", self.grpc);
        }
        let http2 = balancer.cluster.http2;
        let upgrade =
            req.version() <= Version::HTTP_11 && headers::is_upgrade(req.headers()) && !http2;
        let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (hash, set_cookie) = self.hash_key(balancer, &req);

        let (parts, body) = req.into_parts();
        let mut out = Outgoing {
            path_and_query: self.upstream_path(parts.uri.path_and_query(), matched),
            method: parts.method,
            headers: parts.headers,
        };
        // The backend sees the authority the client asked for as Host, whatever the version.
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            out.headers.insert(HOST, v);
        }
        headers::strip_hop_by_hop(&mut out.headers, upgrade);
        headers::add_forwarding(
            &mut out.headers,
            &self.conn.client_address,
            self.conn.scheme,
        );
        // Only the gateway vouches for client certificates: a client's own header is dropped.
        out.headers.remove(&headers::X_FORWARDED_CLIENT_CERT);
        if let Some(cert) = &self.conn.client_cert {
            out.headers
                .insert(headers::X_FORWARDED_CLIENT_CERT.clone(), cert.xfcc.clone());
        }
        if let Some(authority) = policy.rewrite.as_ref().and_then(|r| r.authority.clone()) {
            out.headers.insert(HOST, authority);
        }
        if let Some(h) = &destination.headers {
            h.request.apply(&mut out.headers);
        }
        policy.headers.request.apply(&mut out.headers);

        let limits = &self.shared.limits;
        let body = match Prepared::read(body, self.shared.replay_buffer, limits.body_timeout).await
        {
            Ok(b) => b,
            Err(ReadError::Idle) => {
                return local(
                    StatusCode::REQUEST_TIMEOUT,
                    Flag::SI,
                    "stream timeout",
                    self.grpc,
                )
            }
            Err(ReadError::Protocol) => {
                return local(StatusCode::BAD_REQUEST, Flag::DPE, "", self.grpc)
            }
        };
        if let Some(bytes) = body.replayable() {
            for m in &policy.mirrors {
                if roll(m.percentage) {
                    self.mirror(&m.cluster, &out, bytes.clone());
                }
            }
        }

        let deadline = policy.timeout.map(|t| tokio::time::Instant::now() + t);
        let attempts = self.attempts(balancer, out, body, downstream_upgrade, deadline, hash);
        let mut resp = match policy.timeout {
            Some(t) => match tokio::time::timeout(t, attempts).await {
                Ok(r) => r,
                Err(_) => return Failure::Timeout.reply(self.grpc),
            },
            None => attempts.await,
        };
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            headers::strip_hop_by_hop(resp.headers_mut(), false);
        }
        if let Some(h) = &destination.headers {
            h.response.apply(resp.headers_mut());
        }
        policy.headers.response.apply(resp.headers_mut());
        if let Some(cookie) = set_cookie {
            resp.headers_mut().append(http::header::SET_COOKIE, cookie);
        }
        if let (Some(cors), Some(origin)) = (&policy.cors, origin) {
            cors_response_headers(cors, &origin, resp.headers_mut());
        }
        resp
    }

    /// The path the backend gets: normalised as Istio does, then rewritten by the route.
    fn upstream_path(
        &self,
        pq: Option<&PathAndQuery>,
        matched: Option<&RouteMatch>,
    ) -> PathAndQuery {
        let Some(pq) = pq else {
            return PathAndQuery::from_static("/");
        };
        match self.route.policy.upstream_path(matched, pq.as_str()) {
            std::borrow::Cow::Borrowed(_) => pq.clone(),
            std::borrow::Cow::Owned(s) => s.parse().unwrap_or_else(|_| pq.clone()),
        }
    }

    /// The request's consistent-hash key when the cluster hashes, and the cookie to set when
    /// the key is a cookie the client does not have yet.
    fn hash_key(
        &self,
        cluster: &ClusterRuntime,
        req: &Request<Incoming>,
    ) -> (Option<u64>, Option<HeaderValue>) {
        let Some(h) = &cluster.cluster.policy.hash else {
            return (None, None);
        };
        let peer = self.conn.peer;
        match crate::hash::request_hash(&h.key, req.headers(), req.uri().query(), peer) {
            Some(hash) => (Some(hash), None),
            None => match crate::hash::new_cookie(&h.key, peer, self.conn.bind_port) {
                Some((hash, cookie)) => (Some(hash), Some(cookie)),
                None => (None, None),
            },
        }
    }

    /// Tries the request, retrying on another endpoint as the route's retry policy (and the
    /// cluster's retry budget) allows; each try's outcome feeds outlier detection.
    async fn attempts(
        &self,
        balancer: &Arc<ClusterRuntime>,
        mut out: Outgoing,
        body: Prepared,
        downstream_upgrade: Option<hyper::upgrade::OnUpgrade>,
        deadline: Option<tokio::time::Instant>,
        hash: Option<u64>,
    ) -> Response<ProxyBody> {
        let retry: &Retry = &self.route.policy.retry;
        let (replay, mut once) = match body {
            Prepared::Replayable(b) => (Some(b), None),
            Prepared::Once(b) => (None, Some(b)),
        };
        // A body that cannot be replayed, or a protocol switch, gets one try.
        let tries = if replay.is_some() && downstream_upgrade.is_none() {
            retry.retries + 1
        } else {
            1
        };
        let mut previous = None;
        let mut failure = Failure::NoHealthyUpstream;
        let mut last: Option<http::uri::Authority> = None;
        // A retry slot taken when a response was judged worth retrying, then held while the
        // retry is in flight (`maxRetries` counts retries in flight).
        let mut granted = None;
        let mut _held = None;
        for attempt in 0..tries {
            if attempt > 0 {
                // Envoy's retry circuit breaker: over it the last failure stands.
                match granted.take().or_else(|| balancer.retry_permit()) {
                    Some(slot) => _held = slot,
                    None => break,
                }
                tokio::time::sleep(backoff(retry.backoff, attempt)).await;
            }
            let in_flight = match balancer.pick(hash, previous) {
                Ok(f) => f,
                Err(NoPick::NoHealthy) => return Failure::NoHealthyUpstream.reply(self.grpc),
                Err(NoPick::Overflow) => return Failure::Overflow.reply(self.grpc),
            };
            let index = in_flight.index();
            previous = Some(index);
            let body = match &replay {
                Some(b) => RequestBody::Buffered(Some(b.clone())),
                None => once.take().expect("a single try"),
            };
            let more = attempt + 1 < tries;
            // The last try takes the headers; earlier ones send a copy.
            let headers = if more {
                out.headers.clone()
            } else {
                std::mem::take(&mut out.headers)
            };
            if self.shared.access_log {
                last = Some(in_flight.endpoint().authority.clone());
            }
            let sent = self
                .send(balancer, in_flight.endpoint(), &out, headers, body, false)
                .run(balancer.limits());
            let result = match retry.per_try_timeout {
                Some(t) => tokio::time::timeout(t, sent).await.map_err(|_| ()),
                None => Ok(sent.await),
            };
            match result {
                Ok(Ok((mut resp, lease))) => {
                    balancer.record(index, Outcome::Status(resp.status().as_u16()));
                    let grpc_status = grpc_status(resp.headers());
                    if more && retry.retries_status(resp.status().as_u16(), grpc_status) {
                        granted = balancer.retry_permit();
                        if granted.is_some() {
                            tracing::debug!(status = resp.status().as_u16(), attempt, "retrying");
                            continue;
                        }
                    }
                    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                        let Some(downstream) = downstream_upgrade else {
                            // Passed on, the client would read the backend's new protocol as
                            // HTTP (Envoy answers 502 too).
                            return local(
                                StatusCode::BAD_GATEWAY,
                                Flag::UPE,
                                "upstream protocol error",
                                self.grpc,
                            );
                        };
                        tunnel(downstream, hyper::upgrade::on(&mut resp));
                        let (parts, _) = resp.into_parts();
                        return Response::from_parts(parts, full(""));
                    }
                    let (mut parts, body) = resp.into_parts();
                    if self.shared.access_log {
                        parts.extensions.insert(Upstream {
                            cluster: balancer.cluster.name.clone(),
                            host: in_flight.endpoint().authority.clone(),
                        });
                    }
                    return Response::from_parts(
                        parts,
                        Tracked::boxed(body, in_flight, lease, deadline),
                    );
                }
                Ok(Err(SendError::Overflow)) => return Failure::Overflow.reply(self.grpc),
                Ok(Err(e @ (SendError::Connect(_) | SendError::Certificate(_)))) => {
                    balancer.record(index, Outcome::Local { timeout: false });
                    match &e {
                        SendError::Certificate(why) => {
                            crate::upstream_tls::warn_certificate_failure(
                                &balancer.cluster.name,
                                why,
                            )
                        }
                        _ => {
                            tracing::debug!(error = %e, cluster = %balancer.cluster.name, "upstream connect failed")
                        }
                    }
                    failure = Failure::Connect;
                    if !retry.retries_connect_failure() {
                        break;
                    }
                }
                Ok(Err(e)) => {
                    balancer.record(index, Outcome::Local { timeout: false });
                    tracing::debug!(error = %e, cluster = %balancer.cluster.name, "upstream reset");
                    failure = Failure::Reset;
                    if !retry.retries_reset() {
                        break;
                    }
                }
                Err(()) => {
                    balancer.record(index, Outcome::Local { timeout: true });
                    failure = Failure::Timeout;
                    if !retry.retries_reset() {
                        break;
                    }
                }
            }
        }
        let mut resp = failure.reply(self.grpc);
        // The access log names where the last try went (UF, UC, UT lines too).
        if let Some(host) = last {
            resp.extensions_mut().insert(Upstream {
                cluster: balancer.cluster.name.clone(),
                host,
            });
        }
        resp
    }

    /// Sends the request to one endpoint of `balancer`'s cluster: HTTP/1.1 on the endpoint's
    /// pool (TLS or plaintext), HTTP/2 on a shared or the cluster's own client. A `mirror` copy
    /// may get Istio's old `-shadow` Host.
    fn send(
        &self,
        balancer: &ClusterRuntime,
        endpoint: &EndpointState,
        out: &Outgoing,
        headers: HeaderMap,
        body: RequestBody,
        mirror: bool,
    ) -> Dispatch {
        let cluster = &balancer.cluster;
        let tls = balancer.tls.as_ref();
        let scheme = if tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        };
        let mut req = Request::new(body);
        *req.method_mut() = out.method.clone();
        *req.uri_mut() = if balancer.pooled {
            // A connection of our own pool speaks origin-form.
            Uri::from(out.path_and_query.clone())
        } else {
            upstream_uri(scheme, &endpoint.authority, &out.path_and_query)
        };
        *req.version_mut() = if cluster.http2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        *req.headers_mut() = headers;
        if mirror && self.shared.mirror_host_suffix {
            if let Some(host) = shadow_host(req.headers().get(HOST)) {
                req.headers_mut().insert(HOST, host);
            }
        }
        if balancer.pooled {
            return Dispatch::Pool(endpoint.pool.clone(), req);
        }
        Dispatch::Client(match tls {
            Some(client) => client.request(req),
            // HTTP/1.1 clusters always go through the endpoints' pools: this is HTTP/2.
            None => balancer
                .http2
                .as_ref()
                .unwrap_or(&self.shared.upstreams.http2)
                .request(req),
        })
    }

    /// Sends a copy of the request to `cluster` and forgets it: bounded in flight, the answer
    /// discarded, never slowing or failing the main request.
    fn mirror(&self, cluster: &str, out: &Outgoing, body: Bytes) {
        let Some(balancer) = self.dp.clusters.get(cluster).cloned() else {
            return;
        };
        let Ok(permit) = self.shared.mirror_slots.clone().try_acquire_owned() else {
            tracing::debug!(cluster, "mirror skipped: too many in flight");
            return;
        };
        let Ok(in_flight) = balancer.pick(None, None) else {
            return;
        };
        let sent = self.send(
            &balancer,
            in_flight.endpoint(),
            out,
            out.headers.clone(),
            RequestBody::Buffered(Some(body)),
            true,
        );
        let limit = self.route.policy.timeout.unwrap_or(Duration::from_secs(30));
        tokio::spawn(async move {
            let _permit = permit;
            let _in_flight = in_flight;
            let _ = tokio::time::timeout(limit, async {
                if let Ok((resp, lease)) = sent.run(balancer.limits()).await {
                    let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                    if let Some(mut lease) = lease {
                        lease.give_back();
                    }
                }
            })
            .await;
        });
    }
}

/// A request ready to go, on its endpoint's own pool or on a shared client. It lives on the
/// stack for one await; boxing the request would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Dispatch {
    Pool(Arc<crate::pool::EndpointPool>, Request<RequestBody>),
    Client(hyper_util::client::legacy::ResponseFuture),
}

impl Dispatch {
    async fn run(
        self,
        limits: crate::pool::Limits<'_>,
    ) -> Result<(Response<Incoming>, Option<Lease>), SendError> {
        match self {
            Dispatch::Pool(pool, req) => pool
                .send(req, &limits)
                .await
                .map(|(r, lease)| (r, Some(lease))),
            Dispatch::Client(sent) => match sent.await {
                Ok(resp) => Ok((resp, None)),
                Err(e) if e.is_connect() => {
                    Err(match crate::upstream_tls::certificate_failure(&e) {
                        Some(why) => SendError::Certificate(why),
                        None => SendError::Connect(e.to_string()),
                    })
                }
                Err(e) => Err(SendError::Other(e.to_string())),
            },
        }
    }
}

fn upstream_uri(scheme: Scheme, authority: &http::uri::Authority, pq: &PathAndQuery) -> Uri {
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(scheme);
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(pq.clone());
    Uri::from_parts(parts).expect("scheme, authority and path make a URI")
}

/// `host` → `host-shadow`, before any port.
fn shadow_host(host: Option<&HeaderValue>) -> Option<HeaderValue> {
    let host = host?.to_str().ok()?;
    let shadow = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => format!("{h}-shadow:{p}"),
        _ => format!("{host}-shadow"),
    };
    HeaderValue::from_str(&shadow).ok()
}

/// Jittered exponential backoff (Envoy's): uniform in `0..base·2^(n-1)`, capped at 10× base.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let cap = base * 10;
    let ceiling = base.saturating_mul(1 << (attempt - 1).min(16)).min(cap);
    let nanos = ceiling.as_nanos().max(1) as u64;
    Duration::from_nanos(rand::rng().random_range(0..nanos))
}

fn roll(percentage: f64) -> bool {
    percentage >= 100.0 || (percentage > 0.0 && rand::rng().random::<f64>() * 100.0 < percentage)
}

fn tunnel(downstream: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        if let (Ok(down), Ok(up)) = (downstream.await, upstream.await) {
            let _ =
                tokio::io::copy_bidirectional(&mut TokioIo::new(down), &mut TokioIo::new(up)).await;
        }
    });
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// `grpc-status` of a trailers-only response (in the headers).
fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
    headers.get(&GRPC_STATUS)?.to_str().ok()?.parse().ok()
}

/// Answers a CORS preflight at the gateway, or `None` to let the request through.
fn preflight(
    cors: &Cors,
    req: &Request<Incoming>,
    origin: Option<&HeaderValue>,
) -> Option<Response<ProxyBody>> {
    let origin = origin?;
    if req.method() != Method::OPTIONS
        || !req
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let allowed = origin.to_str().is_ok_and(|o| cors.allows(o));
    if !allowed {
        return (!cors.forward_unmatched_preflights).then(|| plain(StatusCode::OK, ""));
    }
    let mut resp = plain(StatusCode::OK, "");
    let h = resp.headers_mut();
    use http::header::*;
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    let optional = [
        (ACCESS_CONTROL_ALLOW_METHODS, &cors.allow_methods),
        (ACCESS_CONTROL_ALLOW_HEADERS, &cors.allow_headers),
        (ACCESS_CONTROL_MAX_AGE, &cors.max_age),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            h.insert(name, v.clone());
        }
    }
    if cors.allow_credentials {
        h.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    Some(resp)
}

/// CORS headers on the response to an actual (not preflight) cross-origin request.
fn cors_response_headers(cors: &Cors, origin: &HeaderValue, headers: &mut HeaderMap) {
    if !origin.to_str().is_ok_and(|o| cors.allows(o)) {
        return;
    }
    use http::header::*;
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if cors.allow_credentials {
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if let Some(v) = &cors.expose_headers {
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
    }
}

fn abort_reply(abort: Abort, grpc: bool) -> Response<ProxyBody> {
    match abort {
        Abort::Http(status) => local(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            Flag::FI,
            "fault filter abort",
            grpc,
        ),
        Abort::Grpc(code) => {
            let mut resp = grpc_reply(code, "fault filter abort");
            resp.extensions_mut().insert(Flag::FI);
            resp
        }
    }
}

/// A reply made by the gateway. gRPC clients get it as a trailers-only gRPC response with the
/// status gRPC maps the HTTP status to (504 → DEADLINE_EXCEEDED, 503 → UNAVAILABLE, …).
fn local(status: StatusCode, flag: Flag, body: &'static str, grpc: bool) -> Response<ProxyBody> {
    tracing::debug!(status = status.as_u16(), flag = ?flag, "local reply");
    let mut resp = local_reply(status, body, grpc);
    // Local replies are the rare path; the flag rides along for the access log.
    resp.extensions_mut().insert(flag);
    resp
}

fn local_reply(status: StatusCode, body: &'static str, grpc: bool) -> Response<ProxyBody> {
    if grpc {
        let code = match status.as_u16() {
            504 => 4,
            400 => 13,
            401 => 16,
            403 => 7,
            404 => 12,
            429 | 502 | 503 => 14,
            500 => 13,
            _ => 2,
        };
        return grpc_reply(code, body);
    }
    plain(status, body)
}

fn grpc_reply(code: u32, message: &'static str) -> Response<ProxyBody> {
    let mut resp = plain(StatusCode::OK, "");
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert(
        HeaderName::from_static("grpc-status"),
        HeaderValue::from(code),
    );
    if !message.is_empty() {
        h.insert(
            HeaderName::from_static("grpc-message"),
            HeaderValue::from_static(message),
        );
    }
    resp
}

fn plain(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    if !body.is_empty() {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    resp
}
