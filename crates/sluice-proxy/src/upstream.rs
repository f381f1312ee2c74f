//! Connections to the backends: pooled HTTP/1.1 keep-alive and multiplexed HTTP/2, one pool per
//! endpoint (the pool key is the endpoint's `address:port`).
use crate::lb::InFlight;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Why a response body stopped early.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the proxy sends downstream: a backend's body or one made here.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A body cut by a timeout: the route's (response) or the idle one (request). Typed so the
/// access log can tell it from a connection that broke.
#[derive(Debug)]
pub struct BodyTimeout(&'static str);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BodyTimeout {}

#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Istio's default connect timeout.
    pub connect_timeout: Duration,
    /// Idle pooled connections are closed after this long.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per endpoint after a burst (like nginx's `keepalive`).
    pub max_idle_per_endpoint: usize,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            max_idle_per_endpoint: 256,
        }
    }
}

/// The shared client for plaintext HTTP/2 clusters (connections multiplexed per endpoint).
/// Plaintext HTTP/1.1 endpoints have their own pools (`pool`), TLS clusters their own clients.
#[derive(Clone)]
pub struct Upstreams {
    pub http2: Client<HttpConnector, RequestBody>,
}

impl Upstreams {
    pub fn new(opts: &UpstreamOptions) -> Upstreams {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(opts.connect_timeout));
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let mut b = Client::builder(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(opts.pool_idle_timeout)
            .pool_max_idle_per_host(opts.max_idle_per_endpoint)
            .http2_only(true);
        Upstreams {
            http2: b.build(connector),
        }
    }
}

/// A backend's response body that keeps its endpoint's in-flight count until it ends, and
/// hands the connection back to its pool when it was read to the end.
pub struct Tracked {
    inner: Incoming,
    _in_flight: InFlight,
    lease: Option<crate::pool::Lease>,
    /// The route's timeout covers the whole response, body included (as Envoy's does).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Tracked {
    pub fn boxed(
        inner: Incoming,
        in_flight: InFlight,
        lease: Option<crate::pool::Lease>,
        deadline: Option<tokio::time::Instant>,
    ) -> ProxyBody {
        Tracked {
            inner,
            _in_flight: in_flight,
            lease,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
        }
        .boxed()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // A body that ended (or never had bytes) leaves the connection ready for the next request.
        if self.inner.is_end_stream() {
            if let Some(lease) = self.lease.as_mut() {
                lease.give_back();
            }
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                if let Some(lease) = self.lease.as_mut() {
                    lease.give_back();
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame.map_err(Into::into))),
            Poll::Pending => {
                let expired = self
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    let e = BodyTimeout("upstream request timeout while streaming the body");
                    Poll::Ready(Some(Err(e.into())))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body made by the gateway itself.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// What the proxy sends upstream: a body buffered for replay (retries, mirrors), or the
/// client's body streamed through after whatever was read while deciding.
pub enum RequestBody {
    Buffered(Option<Bytes>),
    Streaming {
        prefix: Option<Bytes>,
        rest: Incoming,
        idle: Idle,
    },
}

/// Fails a request body that sends nothing for `timeout` (Envoy's stream idle timeout): one
/// timer per body, re-armed when a pause starts.
pub struct Idle {
    timeout: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl Idle {
    pub fn new(timeout: Duration) -> Idle {
        Idle {
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
        }
    }

    /// Call when the body had nothing to give: true once the pause has lasted too long.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.armed {
            let at = tokio::time::Instant::now() + self.timeout;
            self.timer.as_mut().reset(at);
            self.armed = true;
        }
        self.timer.as_mut().poll(cx).is_ready()
    }
}

/// Why a request body could not be read.
pub enum ReadError {
    /// Malformed (hyper refused it) or cut.
    Protocol,
    /// Nothing arrived for the idle timeout.
    Idle,
}

/// A request body after the proxy looked at it.
pub enum Prepared {
    /// Small enough to keep: can be sent any number of times.
    Replayable(Bytes),
    /// Larger than the replay buffer: can be sent once.
    Once(RequestBody),
}

impl Prepared {
    /// Reads up to `limit` bytes of `body`; a body that ends within it becomes replayable.
    /// A pause longer than `idle` fails the read.
    pub async fn read(
        mut body: Incoming,
        limit: usize,
        idle: Duration,
    ) -> Result<Prepared, ReadError> {
        if body.is_end_stream() {
            return Ok(Prepared::Replayable(Bytes::new()));
        }
        let mut buf = bytes::BytesMut::new();
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Ok(Some(frame)) => frame.map_err(|_| ReadError::Protocol)?,
                Ok(None) => break,
                Err(_) => return Err(ReadError::Idle),
            };
            // Request trailers are rare outside gRPC streaming; a buffered body drops them.
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    return Ok(Prepared::Once(RequestBody::Streaming {
                        prefix: Some(buf.freeze()),
                        rest: body,
                        idle: Idle::new(idle),
                    }));
                }
            }
        }
        Ok(Prepared::Replayable(buf.freeze()))
    }

    pub fn replayable(&self) -> Option<&Bytes> {
        match self {
            Prepared::Replayable(b) => Some(b),
            Prepared::Once(_) => None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Buffered(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RequestBody::Streaming { prefix, rest, idle } => {
                if let Some(p) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                match Pin::new(rest).poll_frame(cx) {
                    Poll::Pending if idle.expired(cx) => {
                        let e = BodyTimeout("request body idle timeout");
                        Poll::Ready(Some(Err(e.into())))
                    }
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(frame) => {
                        idle.armed = false;
                        Poll::Ready(frame.map(|f| f.map_err(Into::into)))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Buffered(b) => b.as_ref().is_none_or(|b| b.is_empty()),
            RequestBody::Streaming { prefix, rest, .. } => prefix.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Buffered(b) => {
                SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            RequestBody::Streaming { prefix, rest, .. } => {
                let p = prefix.as_ref().map_or(0, |b| b.len() as u64);
                let r = rest.size_hint();
                let mut h = SizeHint::new();
                h.set_lower(r.lower() + p);
                if let Some(u) = r.upper() {
                    h.set_upper(u + p);
                }
                h
            }
        }
    }
}
