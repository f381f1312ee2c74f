//! The record of one request: filled as the request goes (cluster, upstream host, flags,
//! bytes) and read once when it ends — its response body finished, failed or dropped — by
//! the metrics and, when enabled, the access log and the request's span (`trace`). Without
//! either it holds no strings: a request costs a clock read at each end and a few atomic adds.
use super::reply::{grpc_status, is_grpc};
use super::{Downstream, Shared};
use crate::access_log::{AccessLog, Entry};
use crate::body::Inbound;
use crate::body::{BoxError, Prepared, ProxyBody};
use crate::cluster::ClusterRuntime;
use crate::headers;
use crate::metrics::{ClusterStats, Flags, HttpKey, HttpSample};
use crate::trace::{End, Span};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, USER_AGENT};
use http::uri::Authority;
use http::{Request, Response, Version};
use hyper::body::{Body, Frame, SizeHint};
use sluice_compile::snapshot::{Route, RouteMatch};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

pub(crate) struct Record {
    started: Instant,
    /// The cluster's series once one is chosen; the "unknown" destination's before.
    stats: Arc<ClusterStats>,
    grpc: bool,
    pub(super) flags: Flags,
    /// Header bytes (names and values, as Envoy counts them) and body bytes, both ways.
    request_headers: u64,
    request_body: u64,
    code: u16,
    grpc_status: Option<u16>,
    response_headers: u64,
    response_body: u64,
    /// Where the last try went.
    pub(super) upstream: Option<Authority>,
    /// From sending the last try to its response headers.
    pub(super) upstream_time: Option<Duration>,
    /// What only the access log needs, taken when it is enabled.
    log: Option<Box<Head>>,
    /// The request's span, when tracing is on.
    trace: Option<Box<Span>>,
    done: bool,
}

/// The request side of an access-log line.
struct Head {
    log: AccessLog,
    start_time: SystemTime,
    method: http::Method,
    path: String,
    protocol: &'static str,
    authority: String,
    forwarded_for: Option<HeaderValue>,
    user_agent: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    local: Option<std::net::SocketAddr>,
    remote: std::net::SocketAddr,
    server_name: Option<String>,
    route_name: Option<String>,
    /// Set when no route matched or the gateway answered without a backend.
    details: &'static str,
}

impl Record {
    pub(super) fn start(shared: &Shared, conn: &Downstream, req: &mut Request<Inbound>) -> Record {
        let log = shared.access_log.as_ref().map(|log| {
            // The id the backend will get, made now when absent, so the line carries it too.
            headers::ensure_request_id(req.headers_mut());
            Box::new(Head::of(log, conn, req))
        });
        let trace = shared
            .tracer
            .as_ref()
            .map(|t| t.start(req, conn.peer, conn.scheme));
        Record {
            started: Instant::now(),
            stats: shared.metrics.unknown().clone(),
            grpc: is_grpc(req.headers()),
            flags: Flags::NONE,
            request_headers: header_bytes(req.headers()),
            request_body: 0,
            code: 0,
            grpc_status: None,
            response_headers: 0,
            response_body: 0,
            upstream: None,
            upstream_time: None,
            log,
            trace,
            done: false,
        }
    }

    /// A gRPC request (`content-type: application/grpc…`), read once at its start.
    pub(super) fn grpc(&self) -> bool {
        self.grpc
    }

    /// Whether the access log is on.
    pub(super) fn logging(&self) -> bool {
        self.log.is_some()
    }

    /// The request goes to `cluster` (whatever happens next, its metrics count it).
    pub(super) fn cluster(&mut self, cluster: &ClusterRuntime) {
        self.stats = cluster.stats.clone();
    }

    /// The route that decided, with the match that chose it (`port`: the Gateway's port).
    pub(super) fn route(&mut self, route: &Route, matched: Option<&RouteMatch>, port: u32) {
        if let Some(head) = self.log.as_mut() {
            // Istio names an unnamed route `default`.
            head.route_name = Some(route.name.as_deref().unwrap_or("default").to_string());
        }
        if let Some(span) = self.trace.as_mut() {
            span.route(route, matched, port);
        }
    }

    /// The trace context the backend gets, when tracing is on.
    pub(super) fn propagate(&self, headers: &mut HeaderMap) {
        if let Some(span) = &self.trace {
            span.inject(headers);
        }
    }

    /// The response came from the gateway, not a backend (redirect, direct response).
    pub(super) fn direct(&mut self) {
        if let Some(head) = self.log.as_mut() {
            head.details = "direct_response";
        }
    }

    /// The request body as read for forwarding: its size when buffered, else as declared
    /// (`content-length` of the request, `declared`).
    pub(super) fn request_body(&mut self, body: &Prepared, declared: u64) {
        self.request_body = match body {
            Prepared::Replayable(b) => b.len() as u64,
            Prepared::Once(_) => declared,
        };
    }

    /// The response, its body watched so the record is written when it ends.
    pub(super) fn respond(mut self, resp: Response<ProxyBody>) -> Response<Recorded> {
        self.code = resp.status().as_u16();
        if let Some(flags) = resp.extensions().get::<Flags>() {
            self.flags |= *flags;
        }
        if self.grpc {
            self.grpc_status = grpc_status(resp.headers()).map(|s| s as u16);
        }
        self.response_headers = header_bytes(resp.headers());
        let (parts, body) = resp.into_parts();
        Response::from_parts(
            parts,
            Recorded {
                inner: body,
                record: self,
            },
        )
    }

    fn finish(&mut self, flags: Flags) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        self.flags |= flags;
        let duration = self.started.elapsed();
        if self.grpc && self.grpc_status.is_none() && self.code == 200 && self.flags.is_empty() {
            // A gRPC response without grpc-status in its headers or trailers.
            self.grpc_status = Some(2);
        }
        self.stats.request(&HttpSample {
            key: HttpKey {
                code: self.code,
                flags: self.flags,
                grpc: self.grpc,
                grpc_status: self.grpc_status,
            },
            duration,
            request_bytes: self.request_headers + self.request_body,
            response_bytes: self.response_headers + self.response_body,
        });
        if let Some(head) = self.log.take() {
            self.write_log(&head, duration);
        }
        if let Some(span) = self.trace.take() {
            span.finish(End {
                code: self.code,
                flags: self.flags,
                cluster: self.stats.name(),
                upstream: self.upstream.as_ref().map(|a| a.as_str()),
                duration,
            });
        }
    }

    fn write_log(&self, head: &Head, duration: Duration) {
        fn value(v: &Option<HeaderValue>) -> Option<&str> {
            v.as_ref().and_then(|v| v.to_str().ok())
        }

        let upstream = self.upstream.as_ref().map(|a| a.as_str());
        let cluster = self.stats.name();
        head.log.write(&Entry {
            start_time: Some(head.start_time),
            method: Some(head.method.as_str()),
            path: Some(&head.path),
            protocol: Some(head.protocol),
            code: self.code,
            flags: self.flags,
            details: details(self.flags, upstream.is_some(), head.details),
            bytes_received: self.request_body,
            bytes_sent: self.response_body,
            duration,
            upstream_service_time: self.upstream_time,
            forwarded_for: value(&head.forwarded_for),
            user_agent: value(&head.user_agent),
            request_id: value(&head.request_id),
            authority: Some(&head.authority),
            upstream_host: upstream,
            upstream_cluster: (!cluster.is_empty()).then_some(cluster),
            downstream_local: head.local,
            downstream_remote: Some(head.remote),
            server_name: head.server_name.as_deref(),
            route_name: head.route_name.as_deref(),
        });
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // No response, or a body that never ended: the client went away or the drain cut it.
        self.finish(Flags::DC);
    }
}

impl Head {
    fn of(log: &AccessLog, conn: &Downstream, req: &Request<Inbound>) -> Head {
        let h = req.headers();
        Head {
            log: log.clone(),
            start_time: SystemTime::now(),
            method: req.method().clone(),
            path: req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
            protocol: match req.version() {
                Version::HTTP_10 => "HTTP/1.0",
                Version::HTTP_2 => "HTTP/2",
                _ => "HTTP/1.1",
            },
            authority: headers::authority(req).unwrap_or("-").to_string(),
            // As the backend gets it, with the client appended (Envoy logs it so too).
            forwarded_for: headers::forwarded_for(
                h.get(&headers::X_FORWARDED_FOR),
                &conn.client_address,
            ),
            user_agent: h.get(USER_AGENT).cloned(),
            request_id: h.get(&headers::X_REQUEST_ID).cloned(),
            local: conn.local,
            remote: conn.peer,
            server_name: conn.sni.clone(),
            route_name: None,
            details: "",
        }
    }
}

/// Envoy's response code details for what the flags say (the access log's
/// `%RESPONSE_CODE_DETAILS%`).
fn details(flags: Flags, via_upstream: bool, otherwise: &'static str) -> &'static str {
    const BY_FLAG: [(Flags, &str); 11] = [
        (Flags::NR, "route_not_found"),
        (Flags::NC, "cluster_not_found"),
        (Flags::UH, "no_healthy_upstream"),
        (
            Flags::UF,
            "upstream_reset_before_response_started{connection_failure}",
        ),
        (
            Flags::UO,
            "upstream_reset_before_response_started{overflow}",
        ),
        (Flags::UT, "response_timeout"),
        (
            Flags::UC,
            "upstream_reset_before_response_started{connection_termination}",
        ),
        (Flags::FI, "fault_filter_abort"),
        (Flags::SI, "stream_idle_timeout"),
        (Flags::OM, "overload_manager"),
        (Flags::DC, "downstream_remote_disconnect"),
    ];
    match BY_FLAG.iter().find(|(f, _)| flags.contains(*f)) {
        Some((_, d)) => d,
        None if via_upstream => "via_upstream",
        None => otherwise,
    }
}

/// Header bytes as Envoy's `byteSize` counts them: names and values.
fn header_bytes(headers: &HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().len() + v.len()) as u64)
        .sum()
}

/// The declared size of a request body that streams through.
pub(super) fn declared_length(headers: &HeaderMap) -> u64 {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

/// A response body that completes its request's record when it ends.
pub(crate) struct Recorded {
    inner: ProxyBody,
    record: Record,
}

impl Body for Recorded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.record.response_body += data.len() as u64;
                } else if let Some(trailers) = frame.trailers_ref() {
                    if self.record.grpc {
                        self.record.grpc_status = grpc_status(trailers).map(|s| s as u16);
                    }
                }
            }
            Poll::Ready(None) => self.record.finish(Flags::NONE),
            Poll::Ready(Some(Err(e))) => {
                let flag = if e.is::<crate::body::BodyTimeout>() {
                    Flags::UT
                } else {
                    Flags::UC
                };
                self.record.finish(flag);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        // hyper need not poll a body that is known to be empty.
        if self.inner.is_end_stream() {
            self.record.finish(Flags::NONE);
        }
    }
}
