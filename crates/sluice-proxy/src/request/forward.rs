//! Forwarding: the request rewritten for the backend (path, Host, forwarding headers, header
//! edits), its body read for replay, mirrors sent, then the tries (`retry`) under the route's
//! timeout, and the response's headers edited on the way back.
use super::mirror::shadow_host;
use super::record::{self, Record};
use super::reply::{local, Failure};
use super::{cors, fault, Downstream, Shared};
use crate::body::Inbound;
use crate::body::{Prepared, ProxyBody, ReadError, RequestBody};
use crate::cluster::{ClusterRuntime, EndpointState};
use crate::dataplane::Dataplane;
use crate::h1::server::OnUpgrade;
use crate::headers;
use crate::lb::pick_destination;
use crate::metrics::Flags;
use crate::pool::{ResponseBody, SendError};
use http::header::{HeaderMap, HeaderValue, HOST};
use http::uri::{PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use sluice_compile::snapshot::{Forward, Route, RouteMatch};
use std::sync::Arc;

pub(super) struct Context<'a> {
    pub shared: &'a Shared,
    pub dp: &'a Dataplane,
    pub conn: &'a Downstream,
    pub route: &'a Route,
    pub grpc: bool,
}

/// The request as it will be sent upstream, kept so each try can be rebuilt.
pub(super) struct Outgoing {
    pub method: Method,
    pub path_and_query: PathAndQuery,
    pub headers: HeaderMap,
}

impl Context<'_> {
    pub(super) async fn forward(
        &self,
        forward: &Forward,
        matched: Option<&RouteMatch>,
        mut req: Request<Inbound>,
        rec: &mut Record,
    ) -> Response<ProxyBody> {
        let policy = &self.route.policy;
        // Only a route with a CORS policy looks at Origin.
        let origin = policy
            .cors
            .as_ref()
            .and_then(|_| req.headers().get(http::header::ORIGIN).cloned());
        if let Some(cors) = &policy.cors {
            if let Some(resp) = cors::preflight(cors, &req, origin.as_ref()) {
                return resp;
            }
        }
        if let Some(fault) = &policy.fault {
            if let Some(abort) = fault::inject(fault, self.grpc, &mut rec.flags).await {
                return abort;
            }
        }

        let destination = pick_destination(&forward.destinations, forward.total_weight);
        let Some(balancer) = self.dp.clusters.get(&destination.cluster) else {
            return local(StatusCode::SERVICE_UNAVAILABLE, Flags::NC, "", self.grpc);
        };
        rec.cluster(balancer);
        if let Some(problem) = &balancer.cluster.problem {
            let status =
                StatusCode::from_u16(problem.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return local(status, Flags::NC, "", self.grpc);
        }
        let http2 = balancer.cluster.http2;
        let upgrade =
            req.version() <= Version::HTTP_11 && headers::is_upgrade(req.headers()) && !http2;
        let downstream_upgrade = upgrade
            .then(|| req.extensions_mut().remove::<OnUpgrade>())
            .flatten();
        let (hash, set_cookie) = self.hash_key(balancer, &req);

        let declared = record::declared_length(req.headers());
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
        rec.propagate(&mut out.headers);

        let limits = &self.shared.limits;
        let body = match Prepared::read(body, self.shared.replay_buffer, limits.body_timeout).await
        {
            Ok(b) => b,
            Err(ReadError::Idle) => {
                return local(
                    StatusCode::REQUEST_TIMEOUT,
                    Flags::SI,
                    "stream timeout",
                    self.grpc,
                )
            }
            Err(ReadError::Protocol) => {
                return local(StatusCode::BAD_REQUEST, Flags::DPE, "", self.grpc)
            }
        };
        rec.request_body(&body, declared);
        if let Some(bytes) = body.replayable() {
            for m in &policy.mirrors {
                if fault::roll(m.percentage) {
                    self.mirror(&m.cluster, &out, bytes.clone());
                }
            }
        }

        let deadline = policy.timeout.map(|t| tokio::time::Instant::now() + t);
        let attempts = self.attempts(balancer, out, body, downstream_upgrade, deadline, hash, rec);
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
            cors::response_headers(cors, &origin, resp.headers_mut());
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
        req: &Request<Inbound>,
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

    /// Sends the request to one endpoint of `balancer`'s cluster: HTTP/1.1 on the endpoint's
    /// pool (TLS or plaintext), HTTP/2 on a shared or the cluster's own client. A `mirror` copy
    /// may get Istio's old `-shadow` Host.
    pub(super) fn send(
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
}

/// A request ready to go, on its endpoint's own pool or on a shared client. It lives on the
/// stack for one await; boxing the request would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(super) enum Dispatch {
    Pool(Arc<crate::pool::EndpointPool>, Request<RequestBody>),
    Client(hyper_util::client::legacy::ResponseFuture),
}

impl Dispatch {
    pub(super) async fn run(
        self,
        limits: crate::pool::Limits<'_>,
    ) -> Result<Response<ResponseBody>, SendError> {
        match self {
            Dispatch::Pool(pool, req) => pool.send(req, &limits).await,
            Dispatch::Client(sent) => match sent.await {
                Ok(resp) => Ok(resp.map(ResponseBody::Shared)),
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

/// The backend's side of a switched protocol.
pub(super) enum Switched {
    /// A shared hyper client's connection.
    Hyper(hyper::upgrade::OnUpgrade),
    /// A pooled connection, taken out of its pool.
    Pooled(crate::h1::Upgraded),
}

impl Switched {
    /// The upgraded connection of a 101 response.
    pub(super) fn of(mut resp: Response<ResponseBody>) -> Option<Switched> {
        if let ResponseBody::Shared(_) = resp.body() {
            return Some(Switched::Hyper(hyper::upgrade::on(&mut resp)));
        }
        match resp.into_body() {
            ResponseBody::Pooled(body) => body.upgrade().map(Switched::Pooled),
            ResponseBody::Shared(_) => None,
        }
    }
}

/// Copies bytes both ways between the client's and the backend's switched connections.
pub(super) fn tunnel(downstream: OnUpgrade, upstream: Switched) {
    tokio::spawn(async move {
        let Some(mut down) = downstream.get().await else {
            return;
        };
        let _ = match upstream {
            Switched::Hyper(up) => match up.await {
                Ok(up) => tokio::io::copy_bidirectional(&mut down, &mut TokioIo::new(up)).await,
                Err(_) => return,
            },
            Switched::Pooled(mut up) => tokio::io::copy_bidirectional(&mut down, &mut up).await,
        };
    });
}
