//! `bench-upstream [--listen ADDR] [--body-bytes N] [--threads N]`: answers every request with
//! 200 and N bytes, over HTTP/1.1 keep-alive or HTTP/2 prior knowledge. As cheap as hyper gets,
//! so the benchmark measures the proxy, not the backend.
#![forbid(unsafe_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen", "127.0.0.1:9000");
    let size: usize = arg(&args, "--body-bytes", "0")
        .parse()
        .expect("--body-bytes N");
    let threads: usize = arg(&args, "--threads", "1").parse().expect("--threads N");
    let body = Bytes::from(vec![b'x'; size]);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            eprintln!(
                "bench-upstream: {} bytes on {}",
                size,
                listener.local_addr()?
            );
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                let body = body.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let body = body.clone();
                            async move {
                                // Read the request body so keep-alive connections stay usable.
                                let _ = req.into_body().collect().await;
                                Ok::<_, Infallible>(Response::new(Full::new(body)))
                            }
                        });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}
