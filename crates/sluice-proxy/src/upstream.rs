//! Transport options and the shared HTTP/2 client for plaintext HTTP/2 clusters (connections
//! multiplexed per endpoint). HTTP/1.1 endpoints have their own pools (`pool`), TLS clusters
//! their own clients (`upstream_tls`).
use crate::body::RequestBody;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

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
        Upstreams {
            http2: http2_client(opts, opts.connect_timeout),
        }
    }
}

/// A client for plaintext HTTP/2 endpoints (prior knowledge), one multiplexed connection pool
/// per endpoint.
pub fn http2_client(
    opts: &UpstreamOptions,
    connect_timeout: Duration,
) -> Client<HttpConnector, RequestBody> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    http2_builder(opts).build(connector)
}

/// hyper-util's pooled HTTP/2 client, with the gateway's idle-connection settings.
pub fn http2_builder(opts: &UpstreamOptions) -> hyper_util::client::legacy::Builder {
    let mut b = Client::builder(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(opts.pool_idle_timeout)
        .pool_max_idle_per_host(opts.max_idle_per_endpoint)
        .http2_only(true);
    b
}
