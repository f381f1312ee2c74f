//! HTTP/1.1 keep-alive connections to one endpoint, within the cluster's circuit breakers: a
//! request takes an idle connection, or opens one while the cluster has fewer than
//! `maxConnections`, or waits as one of at most `http1MaxPendingRequests` pending requests;
//! beyond that it fails at once (`SendError::Overflow`). Requests go over the connections with
//! sluice's own HTTP/1.1 client (`h1`), on the request's task. Knows bodies, not balancers.
use crate::body::{BoxError, RequestBody};
use crate::breaker::{Gauge, Permit};
use crate::h1::{self, Conn};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
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
    Reset(BoxError),
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

/// Where a pooled connection goes back when its response ended cleanly: the endpoint's idle
/// list, unless it served its quota or lived its time.
pub struct Returning {
    pool: Arc<EndpointPool>,
    reuse: Reuse,
}

impl h1::Home for Returning {
    fn give_back(&self, conn: Conn) {
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

/// A backend's response body: from a pooled HTTP/1.1 connection, or from a shared hyper client
/// (HTTP/2, TLS with HTTP/2).
pub enum ResponseBody {
    Pooled(h1::Body<Returning>),
    Shared(Incoming),
}

impl Body for ResponseBody {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Pooled(b) => Pin::new(b).poll_frame(cx),
            ResponseBody::Shared(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Pooled(b) => b.is_end_stream(),
            ResponseBody::Shared(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Pooled(b) => b.size_hint(),
            ResponseBody::Shared(b) => b.size_hint(),
        }
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

    /// Sends `req` on an idle connection, or a new one. A buffered request that a stale
    /// kept-alive connection could not take is sent again on a fresh connection.
    pub async fn send(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        limits: &Limits<'_>,
    ) -> Result<Response<ResponseBody>, SendError> {
        let (parts, mut body) = req.into_parts();
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        loop {
            let (mut conn, reused) = self.connection(limits).await?;
            conn.served += 1;
            let this_try = match &body {
                RequestBody::Buffered(b) => RequestBody::Buffered(b.clone()),
                RequestBody::Streaming { .. } => {
                    std::mem::replace(&mut body, RequestBody::Buffered(None))
                }
            };
            let replayable = matches!(body, RequestBody::Buffered(_));
            match conn
                .exchange(&parts.method, target, &parts.headers, this_try, reused)
                .await
            {
                Ok(head) => {
                    let home = Returning {
                        pool: self.clone(),
                        reuse: limits.reuse,
                    };
                    let pooled = h1::Body::new(conn, &head, home);
                    let mut resp = Response::new(ResponseBody::Pooled(pooled));
                    *resp.status_mut() = head.status;
                    *resp.version_mut() = head.version;
                    *resp.headers_mut() = head.headers;
                    return Ok(resp);
                }
                Err(failed) if failed.unsent && replayable => continue,
                Err(failed) => return Err(SendError::Reset(failed.error)),
            }
        }
    }

    /// An idle connection, a new one within the limits, or one freed while pending.
    async fn connection(&self, limits: &Limits<'_>) -> Result<(Conn, bool), SendError> {
        let mut pending: Option<Permit> = None;
        loop {
            if let Some(conn) = self.take(&limits.reuse) {
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
    fn take(&self, reuse: &Reuse) -> Option<Conn> {
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
            if conn.usable() {
                return Some(conn);
            }
        }
    }

    async fn connect(&self, guard: Open, limits: &Limits<'_>) -> Result<Conn, SendError> {
        let connected = tokio::time::timeout(limits.connect_timeout, async {
            let tcp = connect_tcp(&self.authority, limits.connect_timeout, limits.keepalive)
                .await
                .map_err(SendError::Connect)?;
            let stream = match limits.tls {
                None => h1::Stream::Plain(tcp),
                Some(tls) => {
                    let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                        .connect(tls.sni.clone(), tcp)
                        .await
                        .map_err(|e| match crate::upstream_tls::certificate_failure(&e) {
                            Some(why) => SendError::Certificate(why),
                            None => SendError::Connect(e.to_string()),
                        })?;
                    h1::Stream::Tls(Box::new(stream))
                }
            };
            Ok::<_, SendError>(stream)
        });
        let stream = connected
            .await
            .map_err(|_| SendError::Connect("connect timeout (TLS handshake)".into()))??;
        Ok(Conn::new(stream, Box::new(guard)))
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
