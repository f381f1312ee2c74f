//! TCP proxying: `tcp[]` routes (raw TCP) and `tls[]` routes (TLS passed through by SNI,
//! read from the ClientHello without terminating it), then bytes copied both ways.
use crate::access_log::{AccessLog, Entry};
use crate::dataplane::Dataplane;
use crate::metrics::{ClusterStats, Flags, Metrics, TcpBytes};
use crate::outlier::Outcome;
use sluice_compile::snapshot::L4Route;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The most of a ClientHello read while looking for SNI.
const MAX_HELLO: usize = 16 * 1024;

/// Who is on the other end of a TCP or TLS connection, and where its record goes.
pub(crate) struct Peer<'a> {
    pub remote: SocketAddr,
    pub local: Option<SocketAddr>,
    pub log: Option<&'a AccessLog>,
    pub metrics: &'a Metrics,
}

/// The record of a TCP or TLS connection, for the metrics and the access log.
struct Connection {
    started: std::time::Instant,
    start_time: std::time::SystemTime,
    /// The route's cluster's series once one is picked.
    stats: Arc<ClusterStats>,
    /// Set at the upstream connect, when `istio_tcp_connections_opened_total` is counted:
    /// the series the bytes are counted on as they pass.
    bytes: Option<TcpBytes>,
    host: Option<String>,
    /// Bytes from the client, and to it.
    received: u64,
    sent: u64,
    flags: Flags,
}

impl Connection {
    fn new(peer: &Peer<'_>) -> Connection {
        Connection {
            started: std::time::Instant::now(),
            start_time: std::time::SystemTime::now(),
            stats: peer.metrics.unknown().clone(),
            bytes: None,
            host: None,
            received: 0,
            sent: 0,
            flags: Flags::NONE,
        }
    }

    fn count(&self, received: u64, sent: u64) {
        if let Some(bytes) = &self.bytes {
            bytes.add(received, sent);
        }
    }

    /// Counts the connection's end, and logs it as Istio logs TCP connections (`"- - -"`).
    fn close(&self, peer: &Peer<'_>, sni: Option<&str>) {
        if self.bytes.is_none() {
            self.stats.tcp_opened(self.flags);
        }
        self.stats.tcp_closed(self.flags);
        let Some(log) = peer.log else {
            return;
        };
        let cluster = self.stats.name();
        log.write(&Entry {
            start_time: Some(self.start_time),
            flags: self.flags,
            details: "-",
            bytes_received: self.received,
            bytes_sent: self.sent,
            duration: self.started.elapsed(),
            upstream_host: self.host.as_deref(),
            upstream_cluster: (!cluster.is_empty()).then_some(cluster),
            downstream_local: peer.local,
            downstream_remote: Some(peer.remote),
            server_name: sni,
            ..Default::default()
        });
    }
}

/// A TCP connection (plain, or TLS terminated here) by `tcp[]` routes: the first route.
pub(crate) async fn tcp<S>(
    client: S,
    dp: &Dataplane,
    routes: &[L4Route],
    peer: Peer<'_>,
    sni: Option<&str>,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Connection::new(&peer);
    let result = match routes.first() {
        Some(route) => forward(client, &[], dp, route, true, &mut conn).await,
        None => {
            conn.flags = Flags::NR;
            Err("no tcp route".into())
        }
    };
    conn.close(&peer, sni);
    result
}

/// A TLS connection passed through untouched, by the SNI of its ClientHello (`hello` holds the
/// bytes read to find it; they are sent on first).
pub(crate) async fn passthrough<S>(
    client: S,
    hello: &[u8],
    sni: Option<&str>,
    dp: &Dataplane,
    routes: &[L4Route],
    peer: Peer<'_>,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Connection::new(&peer);
    let route = sni.and_then(|sni| routes.iter().find(|r| r.takes_sni(sni)));
    let result = match route {
        // The client's own TLS goes through as it is: no TLS of ours around it.
        Some(route) => forward(client, hello, dp, route, false, &mut conn).await,
        None => {
            conn.flags = Flags::NR;
            Err(format!("no tls route for SNI {}", sni.unwrap_or("(none)")))
        }
    };
    conn.close(&peer, sni);
    result
}

/// Connects to an endpoint of the route's cluster (with TLS when the cluster speaks it and
/// `originate`), sends `first`, then copies both ways.
async fn forward<S>(
    client: S,
    first: &[u8],
    dp: &Dataplane,
    route: &L4Route,
    originate: bool,
    conn: &mut Connection,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let destination = crate::lb::pick_destination(&route.destinations, route.total_weight);
    conn.flags = Flags::NC;
    let runtime = dp
        .clusters
        .get(&destination.cluster)
        .ok_or_else(|| format!("no cluster {}", destination.cluster))?;
    conn.stats = runtime.stats.clone();
    if runtime.cluster.problem.is_some() {
        return Err(format!("cluster {} cannot be used", destination.cluster));
    }
    let in_flight = runtime.pick(None, None).map_err(|e| match e {
        crate::cluster::NoPick::NoHealthy => {
            conn.flags = Flags::UH;
            "no healthy upstream (UH)"
        }
        crate::cluster::NoPick::Overflow => {
            conn.flags = Flags::UO;
            "upstream overflow (UO)"
        }
    })?;
    conn.host = Some(in_flight.endpoint().authority.to_string());
    let pool = &runtime.cluster.policy.pool;
    conn.flags = Flags::UO;
    // Envoy's TCP proxy closes a connection over the cluster's `maxConnections` (flag UO).
    let _connection = runtime
        .state
        .connections
        .try_acquire(pool.max_connections)
        .ok_or("upstream overflow (UO): maxConnections reached")?;
    conn.flags = Flags::UF;
    let connected = crate::pool::connect_tcp(
        in_flight.endpoint().authority.as_str(),
        runtime.connect_timeout(),
        pool.tcp_keepalive.as_ref(),
    )
    .await;
    let index = in_flight.index();
    let upstream = match connected {
        Ok(s) => {
            runtime.record(index, Outcome::Status(200));
            conn.flags = Flags::NONE;
            conn.stats.tcp_opened(Flags::NONE);
            conn.bytes = Some(conn.stats.tcp_bytes());
            s
        }
        Err(e) => {
            runtime.record(
                index,
                Outcome::Local {
                    timeout: e.starts_with("connect timeout"),
                },
            );
            return Err(format!("upstream connect (UF): {e}"));
        }
    };
    let idle = pool.tcp_idle_timeout;
    match runtime.tls_connect().filter(|_| originate) {
        // A cluster whose TLS material is unusable has a problem and never gets here: no
        // plaintext where TLS was asked for.
        Some(tls) => {
            let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                .connect(tls.sni.clone(), upstream)
                .await
                .map_err(|e| format!("upstream TLS (UF): {e}"))?;
            relay(client, first, stream, idle, conn).await
        }
        None => relay(client, first, upstream, idle, conn).await,
    }
}

/// Sends `first` upstream, then copies both ways.
async fn relay<A, B>(
    mut client: A,
    first: &[u8],
    mut upstream: B,
    idle: Duration,
    conn: &mut Connection,
) -> Result<(), String>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    upstream.write_all(first).await.map_err(|e| e.to_string())?;
    conn.received = first.len() as u64;
    conn.count(conn.received, 0);
    splice(&mut client, &mut upstream, idle, conn).await
}

/// Copies both ways until both sides are done; each direction is shut down for writing when
/// its source ends (half-close). No bytes either way for `idle` closes both.
async fn splice<A, B>(
    a: &mut A,
    b: &mut B,
    idle: Duration,
    conn: &mut Connection,
) -> Result<(), String>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let (mut a_buf, mut b_buf) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let (mut a_done, mut b_done) = (false, false);
    let io = |e: std::io::Error| e.to_string();
    while !(a_done && b_done) {
        tokio::select! {
            n = a_read.read(&mut a_buf), if !a_done => match n.map_err(io)? {
                0 => { b_write.shutdown().await.map_err(io)?; a_done = true; }
                n => {
                    b_write.write_all(&a_buf[..n]).await.map_err(io)?;
                    conn.received += n as u64;
                    conn.count(n as u64, 0);
                }
            },
            n = b_read.read(&mut b_buf), if !b_done => match n.map_err(io)? {
                0 => { a_write.shutdown().await.map_err(io)?; b_done = true; }
                n => {
                    a_write.write_all(&b_buf[..n]).await.map_err(io)?;
                    conn.sent += n as u64;
                    conn.count(0, n as u64);
                }
            },
            _ = tokio::time::sleep(idle) => return Err(format!("idle for {idle:?}")),
        }
    }
    Ok(())
}

/// Reads until the ClientHello is complete (within `timeout`); returns the bytes read, to be
/// sent on or replayed, and the SNI, lower-cased.
pub(crate) async fn read_hello<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<(Vec<u8>, Option<String>), String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(timeout, read_sni(stream, &mut buf)).await {
        Ok(sni) => Ok((buf, sni?)),
        Err(_) => Err("no ClientHello in time".into()),
    }
}

async fn read_sni<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<String>, String> {
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the ClientHello".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        // rustls parses the ClientHello for us; it only needs to see the bytes.
        let mut acceptor = rustls::server::Acceptor::default();
        let mut input = &buf[..];
        acceptor.read_tls(&mut input).map_err(|e| e.to_string())?;
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                return Ok(accepted
                    .client_hello()
                    .server_name()
                    .map(str::to_ascii_lowercase))
            }
            Ok(None) if buf.len() < MAX_HELLO => continue,
            Ok(None) => return Err("ClientHello too large".into()),
            Err((e, _)) => return Err(format!("not a TLS ClientHello: {e}")),
        }
    }
}

/// A stream that first gives back bytes already read from it (a peeked ClientHello).
pub struct Rewind<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Rewind<S> {
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Rewind {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
