//! The data plane: listeners, the HTTP server (hyper, HTTP/1.1 and HTTP/2 cleartext), upstream
//! connection pools, load balancing, and the request path that applies a compiled `Snapshot`.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod body;
pub mod breaker;
mod client_verifier;
pub mod cluster;
pub mod dataplane;
pub mod h1;
pub mod hash;
pub mod headers;
pub mod inspect;
mod l4;
pub mod lb;
pub mod metrics;
pub mod outlier;
mod overload;
pub mod pool;
mod request;
pub mod server;
pub mod tls;
pub mod trace;
pub mod upstream;
pub mod upstream_tls;

pub use headers::PathNormalization;
pub use overload::rss_bytes;
pub use server::{Gateway, ServerOptions};
pub use upstream::UpstreamOptions;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on port {port}: {source}")]
    Bind {
        port: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS server {server}: {reason}")]
    Tls { server: String, reason: String },
}
