//! One request, start to end: route it with `select_route`, answer locally or forward it to an
//! endpoint chosen by the cluster's balancer, and stream the response back.
use crate::dataplane::Dataplane;
use crate::headers::{self, View};
use crate::upstream::{full, ProxyBody, Tracked, Upstreams};
use arc_swap::ArcSwap;
use http::header::{HeaderValue, CONTENT_TYPE, HOST, LOCATION};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::Rng;
use sluice_compile::select::{normalize_path, pick_weighted};
use sluice_compile::snapshot::Forward;
use sluice_compile::{select_route, RequestView, RouteDecision};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// What every connection of a gateway shares.
pub(crate) struct Shared {
    pub current: ArcSwap<Dataplane>,
    pub upstreams: Upstreams,
}

/// The downstream connection a request came on.
pub(crate) struct Downstream {
    pub peer: SocketAddr,
    pub bind_port: u32,
    pub scheme: &'static str,
}

/// Envoy's response flags, for the log line of a request that did not reach a backend.
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
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Downstream>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let dataplane = shared.current.load_full();
    Ok(route(&shared.upstreams, &dataplane, &conn, req).await)
}

async fn route(
    upstreams: &Upstreams,
    dp: &Dataplane,
    conn: &Downstream,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(port) = dp.ports.get(&conn.bind_port) else {
        return local(StatusCode::NOT_FOUND, Flag::NR, "");
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
    match select_route(&port.table, &view) {
        RouteDecision::NoRoute { .. } => local(StatusCode::NOT_FOUND, Flag::NR, ""),
        RouteDecision::DirectResponse { status, body, .. } => {
            let mut resp = Response::new(full(bytes::Bytes::copy_from_slice(body)));
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
        RouteDecision::Forward { forward, .. } => {
            forward_request(upstreams, dp, conn, forward, req).await
        }
    }
}

async fn forward_request(
    upstreams: &Upstreams,
    dp: &Dataplane,
    conn: &Downstream,
    forward: &Forward,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let destination = match forward.destinations.len() {
        1 => &forward.destinations[0],
        _ => pick_weighted(forward, rand::rng().random_range(0..forward.total_weight)),
    };
    let Some(balancer) = dp.balancers.get(&destination.cluster) else {
        return local(StatusCode::SERVICE_UNAVAILABLE, Flag::NC, "");
    };
    if balancer.cluster.problem.is_some() {
        return local(StatusCode::SERVICE_UNAVAILABLE, Flag::NC, "");
    }
    let Some(in_flight) = balancer.pick(None) else {
        return local(
            StatusCode::SERVICE_UNAVAILABLE,
            Flag::UH,
            "no healthy upstream",
        );
    };
    let http2 = balancer.cluster.http2;
    let upgrade = req.version() <= Version::HTTP_11 && headers::is_upgrade(req.headers()) && !http2;
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    // The backend sees the authority the client asked for as Host, whatever the HTTP version.
    if let Some(v) = parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(HOST, v);
    }
    headers::strip_hop_by_hop(&mut parts.headers, upgrade);
    headers::add_forwarding(&mut parts.headers, conn.peer.ip(), conn.scheme);
    let pq = parts.uri.path_and_query().cloned();
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(in_flight.endpoint().authority.clone());
    uri.path_and_query = Some(normalized(pq));
    parts.uri = match Uri::from_parts(uri) {
        Ok(u) => u,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "invalid request target"),
    };
    parts.version = if http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    let client = if http2 {
        &upstreams.http2
    } else {
        &upstreams.http1
    };

    let mut resp = match client.request(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            tracing::debug!(error = %e, cluster = %balancer.cluster.name, "upstream connect failed");
            return local(
                StatusCode::SERVICE_UNAVAILABLE,
                Flag::UF,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            );
        }
        Err(e) => {
            tracing::debug!(error = %e, cluster = %balancer.cluster.name, "upstream reset");
            return local(
                StatusCode::SERVICE_UNAVAILABLE,
                Flag::UC,
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            );
        }
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(downstream) = downstream_upgrade {
            let upstream = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                if let (Ok(down), Ok(up)) = (downstream.await, upstream.await) {
                    let _ = tokio::io::copy_bidirectional(
                        &mut TokioIo::new(down),
                        &mut TokioIo::new(up),
                    )
                    .await;
                }
            });
            let (parts, _) = resp.into_parts();
            return Response::from_parts(parts, full(""));
        }
    }
    let (mut parts, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers, false);
    Response::from_parts(parts, Tracked::boxed(body, in_flight))
}

/// Istio's default path normalisation applies to what the backend sees too.
fn normalized(pq: Option<PathAndQuery>) -> PathAndQuery {
    let Some(pq) = pq else {
        return PathAndQuery::from_static("/");
    };
    let (path, query) = match pq.as_str().split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pq.as_str(), None),
    };
    match normalize_path(path) {
        std::borrow::Cow::Borrowed(_) => pq,
        std::borrow::Cow::Owned(p) => {
            let s = match query {
                Some(q) => format!("{p}?{q}"),
                None => p,
            };
            s.parse().unwrap_or(pq)
        }
    }
}

fn local(status: StatusCode, flag: Flag, body: &'static str) -> Response<ProxyBody> {
    tracing::debug!(status = status.as_u16(), flag = ?flag, "local reply");
    plain(status, body)
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
