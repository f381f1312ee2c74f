//! HTTP/1.1 keep-alive connections to one endpoint, within the cluster's circuit breakers: a
//! request takes an idle connection, or opens one while the cluster has fewer than
//! `maxConnections`, or waits as one of at most `http1MaxPendingRequests` pending requests;
//! beyond that it fails at once (`SendError::Overflow`). Knows bodies, not balancers.
use crate::body::RequestBody;
use crate::breaker::{Gauge, Permit};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What one send may use: the cluster's counters and the policy of the current snapshot (read
/// per request, so a reload changes limits without replacing pools).
pub struct Limits<'a> {
    /// Open connections of the whole cluster.
    pub connections: &'a Arc<Gauge>,
    pub max_connections: u32,
    /// Requests of the whole cluster waiting for a connection.
    pub pending: &'a Arc<Gauge>,
    pub max_pending: u32,
    pub connect_timeout: Duration,
    pub keepalive: Option<&'a sluice_compile::policy::cluster::TcpKeepalive>,
    /// TLS clusters: the handshake after the TCP connect (within the same timeout).
    pub tls: Option<&'a crate::upstream_tls::TlsConnect>,
    pub reuse: Reuse,
}

/// When a connection may serve another request.
#[derive(Debug, Clone, Copy)]
pub struct Reuse {
    pub idle_timeout: Duration,
    pub max_idle: usize,
    pub max_requests: Option<u32>,
    pub max_duration: Option<Duration>,
}

pub struct EndpointPool {
    authority: String,
    /// Idle connections, most recently used last, with the time they became idle.
    idle: Mutex<Vec<(Conn, Instant)>>,
    /// Open connections to this endpoint (idle or busy).
    open: Arc<AtomicU32>,
    /// Wakes a pending request when a connection is returned or closed.
    freed: Arc<Notify>,
}

/// A connection and what limits its reuse.
struct Conn {
    sender: SendRequest<RequestBody>,
    opened: Instant,
    served: u32,
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
    /// A circuit breaker is open: too many connections and pending requests (nothing was sent).
    Overflow,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "connect: {e}"),
            SendError::Certificate(why) => f.write_str(why),
            SendError::Reset(e) => write!(f, "{e}"),
            SendError::Other(e) => f.write_str(e),
            SendError::Overflow => f.write_str("circuit breaker open: too many pending requests"),
        }
    }
}

/// A connection lent to one request; it goes back to the pool when the response has been read
/// to its end.
pub struct Lease {
    conn: Option<Conn>,
    pool: Arc<EndpointPool>,
    reuse: Reuse,
}

impl Lease {
    /// The response ended cleanly: the connection can serve another request, unless it served
    /// its quota or lived its time.
    pub fn give_back(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let spent = self.reuse.max_requests.is_some_and(|m| conn.served >= m)
            || self
                .reuse
                .max_duration
                .is_some_and(|d| conn.opened.elapsed() >= d);
        if !spent {
            let mut idle = self.pool.idle.lock().expect("pool");
            if idle.len() < self.reuse.max_idle {
                idle.push((conn, Instant::now()));
            }
        }
        // Either way a pending request may go on: with this connection, or with a new one once
        // this one has closed.
        self.pool.freed.notify_one();
    }
}

impl EndpointPool {
    pub fn new(authority: String) -> EndpointPool {
        EndpointPool {
            authority,
            idle: Mutex::default(),
            open: Arc::default(),
            freed: Arc::default(),
        }
    }

    /// Sends `req` on an idle connection, or a new one. A request that a stale kept-alive
    /// connection could not take is sent again on a fresh connection.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<RequestBody>,
        limits: &Limits<'_>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        loop {
            let (mut conn, reused) = self.connection(limits).await?;
            conn.served += 1;
            match conn.sender.try_send_request(req).await {
                Ok(resp) => {
                    return Ok((
                        resp,
                        Lease {
                            conn: Some(conn),
                            pool: self.clone(),
                            reuse: limits.reuse,
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

    /// An idle connection, a new one within the limits, or one freed while pending.
    async fn connection(&self, limits: &Limits<'_>) -> Result<(Conn, bool), SendError> {
        let mut pending: Option<Permit> = None;
        loop {
            if let Some(conn) = self.take(&limits.reuse).await {
                return Ok((conn, true));
            }
            // Envoy opens a host's first connection even when the cluster is at its limit, so
            // that pending requests are never stuck behind other hosts' connections. The
            // endpoint's count is taken first, so of requests racing for it one alone is first.
            let first = self.open.fetch_add(1, Ordering::AcqRel) == 0;
            let permit = limits
                .connections
                .try_acquire(limits.max_connections)
                .or_else(|| first.then(|| limits.connections.acquire()));
            match permit {
                Some(permit) => {
                    let open = Open {
                        _permit: permit,
                        open: self.open.clone(),
                        freed: self.freed.clone(),
                    };
                    // Boxed: connecting (a TLS handshake's state above all) is rare next to
                    // reusing a connection, and would otherwise grow every request's future.
                    return Ok((Box::pin(self.connect(open, limits)).await?, false));
                }
                None => {
                    self.open.fetch_sub(1, Ordering::AcqRel);
                }
            }
            if pending.is_none() {
                pending = Some(
                    limits
                        .pending
                        .try_acquire(limits.max_pending)
                        .ok_or(SendError::Overflow)?,
                );
            }
            // A connection freed before this wait left a permit in `freed`: no wake-up is lost.
            self.freed.notified().await;
        }
    }

    /// An idle connection that is ready for a request.
    async fn take(&self, reuse: &Reuse) -> Option<Conn> {
        loop {
            let mut conn = {
                let mut idle = self.idle.lock().expect("pool");
                // The oldest connections idled longest: past the timeout they are closed.
                let expired = idle
                    .iter()
                    .take_while(|(_, t)| t.elapsed() > reuse.idle_timeout)
                    .count();
                idle.drain(..expired);
                idle.pop()?.0
            };
            if conn.sender.ready().await.is_ok() {
                return Some(conn);
            }
        }
    }

    async fn connect(&self, guard: Open, limits: &Limits<'_>) -> Result<Conn, SendError> {
        let connected = tokio::time::timeout(limits.connect_timeout, async {
            let tcp = connect_tcp(&self.authority, limits.connect_timeout, limits.keepalive)
                .await
                .map_err(SendError::Connect)?;
            match limits.tls {
                None => handshake(tcp, guard).await,
                Some(tls) => {
                    let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                        .connect(tls.sni.clone(), tcp)
                        .await
                        .map_err(|e| match crate::upstream_tls::certificate_failure(&e) {
                            Some(why) => SendError::Certificate(why),
                            None => SendError::Connect(e.to_string()),
                        })?;
                    handshake(stream, guard).await
                }
            }
        });
        let sender = connected
            .await
            .map_err(|_| SendError::Connect("connect timeout (TLS handshake)".into()))??;
        Ok(Conn {
            sender,
            opened: Instant::now(),
            served: 0,
        })
    }
}

/// An open connection's place in its cluster's and endpoint's counts (both taken before
/// connecting), given back when the connection is gone or never came up.
struct Open {
    _permit: Permit,
    open: Arc<AtomicU32>,
    freed: Arc<Notify>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_one();
    }
}

/// HTTP/1.1 over `io`, the connection driven in the background until it closes.
async fn handshake<IO>(io: IO, open: Open) -> Result<SendRequest<RequestBody>, SendError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| SendError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
        drop(open);
    });
    Ok(sender)
}

/// A TCP connection to `authority` within `timeout`, with Nagle off and the DestinationRule's
/// keepalive probes; the error says why, in words.
pub async fn connect_tcp(
    authority: &str,
    timeout: Duration,
    keepalive: Option<&sluice_compile::policy::cluster::TcpKeepalive>,
) -> Result<tokio::net::TcpStream, String> {
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| format!("connect timeout ({timeout:?})"))?
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    if let Some(k) = keepalive {
        let mut ka = socket2::TcpKeepalive::new();
        if let Some(t) = k.time {
            ka = ka.with_time(t);
        }
        if let Some(i) = k.interval {
            ka = ka.with_interval(i);
        }
        if let Some(p) = k.probes {
            ka = ka.with_retries(p);
        }
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
    }
    Ok(stream)
}
