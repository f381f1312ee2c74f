//! HTTP/1.1 keep-alive connections to one endpoint. Each endpoint of a plaintext HTTP/1.1
//! cluster holds its pool directly, so a request finds its connections without a keyed lookup;
//! pools outlive reloads (the registry hands the same pool to the next dataplane).
use crate::upstream::RequestBody;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct EndpointPool {
    authority: String,
    /// Idle connections, most recently used last, with the time they became idle.
    idle: Mutex<Vec<(SendRequest<RequestBody>, Instant)>>,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for EndpointPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointPool")
            .field("authority", &self.authority)
            .finish()
    }
}

#[derive(Debug)]
pub enum SendError {
    /// No connection could be made (nothing was sent).
    Connect(String),
    /// TLS refused the backend's certificate (nothing was sent); why, in words.
    Certificate(String),
    /// The connection failed after the request was (or may have been) sent.
    Reset(hyper::Error),
    /// A shared client's failure after connecting.
    Other(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "connect: {e}"),
            SendError::Certificate(why) => f.write_str(why),
            SendError::Reset(e) => write!(f, "{e}"),
            SendError::Other(e) => f.write_str(e),
        }
    }
}

/// A connection lent to one request; it goes back to the pool when the response has been read
/// to its end.
pub struct Lease {
    sender: Option<SendRequest<RequestBody>>,
    pool: Arc<EndpointPool>,
}

impl Lease {
    /// The response ended cleanly: the connection can serve another request.
    pub fn give_back(&mut self) {
        if let Some(sender) = self.sender.take() {
            let mut idle = self.pool.idle.lock().expect("pool");
            if idle.len() < self.pool.max_idle {
                idle.push((sender, Instant::now()));
            }
        }
    }
}

impl EndpointPool {
    /// Sends `req` on an idle connection, or a new one. A request that a stale kept-alive
    /// connection could not take is sent again on a fresh connection.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        loop {
            let (mut sender, reused) = match self.take().await {
                Some(s) => (s, true),
                None => (self.connect().await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    return Ok((
                        resp,
                        Lease {
                            sender: Some(sender),
                            pool: self.clone(),
                        },
                    ))
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(SendError::Reset(e.into_error())),
                },
            }
        }
    }

    /// An idle connection that is ready for a request.
    async fn take(&self) -> Option<SendRequest<RequestBody>> {
        loop {
            let mut sender = {
                let mut idle = self.idle.lock().expect("pool");
                // The oldest connections idled longest: past the timeout they are closed.
                let expired = idle
                    .iter()
                    .take_while(|(_, t)| t.elapsed() > self.idle_timeout)
                    .count();
                idle.drain(..expired);
                idle.pop()?.0
            };
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<RequestBody>, SendError> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(&self.authority),
        )
        .await
        .map_err(|_| SendError::Connect("connect timeout".into()))?
        .map_err(|e| SendError::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }
}

/// Pools by endpoint, shared by every dataplane of a gateway; consulted only when a snapshot is
/// applied.
#[derive(Default)]
pub struct Registry {
    pools: Mutex<HashMap<String, Arc<EndpointPool>>>,
}

impl Registry {
    pub fn pool(
        &self,
        authority: &str,
        opts: &crate::upstream::UpstreamOptions,
    ) -> Arc<EndpointPool> {
        self.pools
            .lock()
            .expect("registry")
            .entry(authority.to_string())
            .or_insert_with(|| {
                Arc::new(EndpointPool {
                    authority: authority.to_string(),
                    idle: Mutex::default(),
                    max_idle: opts.max_idle_per_endpoint,
                    idle_timeout: opts.pool_idle_timeout,
                    connect_timeout: opts.connect_timeout,
                })
            })
            .clone()
    }
}
