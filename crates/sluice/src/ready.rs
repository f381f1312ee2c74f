//! `/healthz/ready`, as Istio's gateways answer it on :15021: 200 once every watcher has
//! synced and a configuration serves, 503 before that and while draining. Kept to that one
//! path until an admin server grows around it.
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_source::Readiness;
use std::net::SocketAddr;

/// Binds `addr` and answers in the background; returns once bound (the address is logged).
pub async fn serve(addr: SocketAddr, readiness: Readiness) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "readiness endpoint listening");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors, most likely: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let readiness = readiness.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let ready = readiness.is_ready();
                        async move {
                            let (status, body) = match (req.uri().path(), ready) {
                                ("/healthz/ready", true) => (StatusCode::OK, ""),
                                ("/healthz/ready", false) => {
                                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                                }
                                _ => (StatusCode::NOT_FOUND, ""),
                            };
                            let mut resp =
                                Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                            *resp.status_mut() = status;
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}
