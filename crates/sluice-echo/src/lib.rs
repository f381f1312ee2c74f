//! A small HTTP backend that answers every request with what it saw, as JSON:
//! `{service, version, pod, namespace, method, path, host, proto, headers, body_bytes}`.
//! `sluice demo` runs three of them; the end-to-end tests run many.
//!
//! It also misbehaves on request, so tests can drive retries and timeouts: any `Upgrade` request is
//! accepted and its bytes echoed, `?status=N` answers with status N, `?sleep_ms=N` answers late,
//! `fail_next`/`reset_next` fail the next requests; the body of a request is counted (not kept),
//! so a large upload costs no memory.
#![forbid(unsafe_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Who this backend pretends to be.
#[derive(Clone, Debug)]
pub struct Identity {
    pub service: String,
    pub version: String,
    pub pod: String,
    pub namespace: String,
    /// Wait this long before answering (a slow pod, for load-balancing tests).
    pub latency: std::time::Duration,
}

impl Identity {
    pub fn new(service: &str, version: &str, pod: &str) -> Identity {
        Identity {
            service: service.into(),
            version: version.into(),
            pod: pod.into(),
            namespace: "default".into(),
            latency: std::time::Duration::ZERO,
        }
    }
}

/// Misbehaviour on demand, for tests of retries and timeouts, and what was last seen.
#[derive(Default)]
pub struct Faults {
    last_host: std::sync::Mutex<Option<String>>,
    /// The next N requests get `fail_status`.
    fail_next: AtomicU64,
    fail_status: AtomicU64,
    /// The next N requests have their connection closed without an answer.
    reset_next: AtomicU64,
}

fn take_one(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// A running echo backend.
pub struct Echo {
    pub addr: SocketAddr,
    pub id: Arc<Identity>,
    /// Requests received so far (answered or not).
    pub hits: Arc<AtomicU64>,
    faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl Echo {
    /// Binds `addr` (port 0 for any) and serves HTTP/1.1 and HTTP/2 (prior knowledge) on it.
    pub async fn start(addr: SocketAddr, id: Identity) -> std::io::Result<Echo> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let hits = Arc::new(AtomicU64::new(0));
        let faults = Arc::new(Faults::default());
        let id = Arc::new(id);
        let shared_id = id.clone();
        let counter = hits.clone();
        let shared_faults = faults.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let id = id.clone();
                let counter = counter.clone();
                let faults = shared_faults.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counter.fetch_add(1, Ordering::Relaxed);
                        answer(req, id.clone(), faults.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Echo {
            addr,
            id: shared_id,
            hits,
            faults,
            task,
        })
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// The next `n` requests are answered with `status`.
    pub fn fail_next(&self, n: u64, status: u16) {
        self.faults
            .fail_status
            .store(u64::from(status), Ordering::Relaxed);
        self.faults.fail_next.store(n, Ordering::Relaxed);
    }

    /// The Host (or :authority) of the last request received.
    pub fn last_host(&self) -> Option<String> {
        self.faults.last_host.lock().expect("last_host").clone()
    }

    /// The next `n` requests get their connection closed instead of an answer.
    pub fn reset_next(&self, n: u64) {
        self.faults.reset_next.store(n, Ordering::Relaxed);
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the echo backend dropped a connection on purpose.
#[derive(Debug)]
pub struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset on purpose")
    }
}

impl std::error::Error for Reset {}

async fn answer(
    mut req: Request<Incoming>,
    id: Arc<Identity>,
    faults: Arc<Faults>,
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    *faults.last_host.lock().expect("last_host") = host;
    if take_one(&faults.reset_next) {
        // An error from the service makes hyper close the connection without an answer.
        return Err(Box::new(Reset));
    }
    if is_upgrade(&req) {
        return Ok(upgrade_echo(&mut req));
    }
    let query = req.uri().query().unwrap_or("");
    let mut status = query_param(query, "status")
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    if take_one(&faults.fail_next) {
        status = StatusCode::from_u16(faults.fail_status.load(Ordering::Relaxed) as u16)
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    }
    let sleep = query_param(query, "sleep_ms")
        .and_then(|s| s.parse::<u64>().ok())
        .map(std::time::Duration::from_millis)
        .unwrap_or(id.latency);
    if !sleep.is_zero() {
        tokio::time::sleep(sleep).await;
    }
    let head = describe(&req, &id);
    let mut body = req.into_body();
    let mut body_bytes: u64 = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            body_bytes += data.len() as u64;
        }
    }
    let mut head = head;
    head["body_bytes"] = body_bytes.into();
    let mut resp = Response::new(Full::new(Bytes::from(head.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

fn describe(req: &Request<Incoming>, id: &Identity) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned().into(),
            )
        })
        .collect();
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    serde_json::json!({
        "service": id.service,
        "version": id.version,
        "pod": id.pod,
        "namespace": id.namespace,
        "method": req.method().as_str(),
        "path": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "host": host,
        "proto": format!("{:?}", req.version()),
        "headers": headers,
    })
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.headers().contains_key(hyper::header::UPGRADE)
        && req
            .headers()
            .get(hyper::header::UPGRADE)
            .map(|v| v.as_bytes())
            != Some(b"h2c")
}

/// Accepts any upgrade and echoes the raw bytes of the upgraded stream back.
fn upgrade_echo(req: &mut Request<Incoming>) -> Response<Full<Bytes>> {
    let protocol = req.headers()[hyper::header::UPGRADE].clone();
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut io = TokioIo::new(upgraded);
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    resp.headers_mut().insert(hyper::header::UPGRADE, protocol);
    resp.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("upgrade"),
    );
    resp
}
