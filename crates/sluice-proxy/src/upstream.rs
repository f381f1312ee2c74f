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
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What the proxy sends downstream: a backend's body or one made here.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Istio's default connect timeout.
    pub connect_timeout: Duration,
    /// Idle pooled connections are closed after this long.
    pub pool_idle_timeout: Duration,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

#[derive(Clone)]
pub struct Upstreams {
    pub http1: Client<HttpConnector, Incoming>,
    pub http2: Client<HttpConnector, Incoming>,
}

impl Upstreams {
    pub fn new(opts: &UpstreamOptions) -> Upstreams {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(opts.connect_timeout));
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let builder = |http2: bool| {
            let mut b = Client::builder(TokioExecutor::new());
            b.timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(opts.pool_idle_timeout)
                .http2_only(http2);
            b.build(connector.clone())
        };
        Upstreams {
            http1: builder(false),
            http2: builder(true),
        }
    }
}

/// A backend's response body that keeps its endpoint's in-flight count until it ends.
pub struct Tracked {
    inner: Incoming,
    _in_flight: InFlight,
}

impl Tracked {
    pub fn boxed(inner: Incoming, in_flight: InFlight) -> ProxyBody {
        Tracked {
            inner,
            _in_flight: in_flight,
        }
        .boxed()
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
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
