//! One request, start to end, by phase: edge checks (`edge`), routing with `select_route`,
//! local replies (`reply`), CORS (`cors`), faults (`fault`), the forward (`forward`) with its
//! tries (`retry`) and mirrors (`mirror`). The request's `record` is filled on the way and
//! read once when the response ends, by the metrics, the access log and the span.
mod cors;
mod edge;
mod fault;
mod forward;
mod mirror;
mod record;
mod reply;
mod retry;

use crate::access_log::AccessLog;
use crate::body::Inbound;
use crate::body::{full, ProxyBody};
use crate::dataplane::{Dataplane, PortKind};
use crate::headers::{self, View};
use crate::metrics::{Flags, Metrics};
use crate::tls::ClientCert;
use crate::upstream::Upstreams;
use arc_swap::ArcSwap;
use bytes::Bytes;
use forward::Context;
use http::header::{HeaderValue, CONTENT_TYPE, HOST, LOCATION};
use http::{Request, Response, StatusCode};
use record::Record;
pub(crate) use record::Recorded;
use reply::{local, plain};
use sluice_compile::{select_route, RequestView, RouteDecision};
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
    /// One line per request and connection, when enabled.
    pub access_log: Option<AccessLog>,
    /// Istio's metrics, by cluster.
    pub metrics: Arc<Metrics>,
    /// A span per request, when tracing is on.
    pub tracer: Option<crate::trace::Tracer>,
    /// Connections accepted, and those shed by the limits.
    pub accepted: std::sync::atomic::AtomicU64,
    pub shed: std::sync::atomic::AtomicU64,
    pub limits: Limits,
    /// Over the memory watermark: new requests get 503.
    pub overloaded: AtomicBool,
}

impl Shared {
    /// A TCP or TLS connection's peer, with where its record goes.
    pub(crate) fn l4_peer(
        &self,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) -> crate::l4::Peer<'_> {
        crate::l4::Peer {
            remote,
            local,
            log: self.access_log.as_ref(),
            metrics: &self.metrics,
        }
    }
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
    /// The address the client connected to (read only for the access log).
    pub local: Option<SocketAddr>,
}

impl Downstream {
    pub fn new(
        peer: SocketAddr,
        bind_port: u32,
        scheme: &'static str,
        sni: Option<String>,
        client_cert: Option<ClientCert>,
        local: Option<SocketAddr>,
    ) -> Downstream {
        Downstream {
            peer,
            bind_port,
            scheme,
            sni,
            client_cert,
            client_address: headers::client_address(peer.ip()),
            local,
        }
    }
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Downstream>,
    mut req: Request<Inbound>,
) -> Response<Recorded> {
    let dataplane = shared.current.load_full();
    // Completed when the response body ends, or when the request is dropped (client gone,
    // drain).
    let mut record = Record::start(&shared, &conn, &mut req);
    let resp = route(&shared, &dataplane, &conn, req, &mut record).await;
    record.respond(resp)
}

async fn route(
    shared: &Shared,
    dp: &Dataplane,
    conn: &Downstream,
    mut req: Request<Inbound>,
    rec: &mut Record,
) -> Response<ProxyBody> {
    let grpc = rec.grpc();
    if shared.overloaded.load(Ordering::Relaxed) {
        let mut resp = local(
            StatusCode::SERVICE_UNAVAILABLE,
            Flags::OM,
            "overloaded",
            grpc,
        );
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    }
    if let Some(refused) = edge::check(&shared.limits, &mut req, grpc) {
        return refused;
    }
    let Some(port) = dp.ports.get(&conn.bind_port) else {
        return local(StatusCode::NOT_FOUND, Flags::NR, "", grpc);
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
                        Flags::MISDIRECTED,
                        "misdirected request",
                        grpc,
                    );
                } else {
                    return local(StatusCode::NOT_FOUND, Flags::NR, "", grpc);
                }
            }
            None => return local(StatusCode::NOT_FOUND, Flags::NR, "", grpc),
        },
        // The port became a TCP port after this connection was opened.
        PortKind::Tcp(_) => return local(StatusCode::NOT_FOUND, Flags::NR, "", grpc),
    };
    let decision = select_route(table, &view);
    if let Some(route) = decision.route() {
        rec.route(route, decision.matched(), port.service_port);
    }
    match decision {
        RouteDecision::NoRoute { .. } => local(StatusCode::NOT_FOUND, Flags::NR, "", grpc),
        RouteDecision::DirectResponse { status, body, .. } => {
            rec.direct();
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
            rec.direct();
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
            };
            ctx.forward(forward, matched, req, rec).await
        }
    }
}
