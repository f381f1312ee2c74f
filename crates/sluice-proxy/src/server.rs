//! The running gateway: one accept loop per bound port, connections served by sluice's own
//! HTTP/1.1 server (`h1::server`) or hyper's HTTP/2 (prior knowledge, told apart by the
//! connection preface on the same port), and `apply` to swap in a new snapshot.
use crate::body::Inbound;
use crate::dataplane::{Dataplane, PortKind};
use crate::h1::server::ClientStream;
use crate::request::{handle, Downstream, Shared};
use crate::tls::ClientCert;
use crate::upstream::{UpstreamOptions, Upstreams};
use crate::Error;
use arc_swap::ArcSwap;
use bytes::BytesMut;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sluice_compile::snapshot::ServerMode;
use sluice_compile::Snapshot;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

/// Edge limits, with Envoy-like defaults.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub bind_address: IpAddr,
    /// Total size of a request's headers (HTTP/1.1 request line included); larger → 431.
    pub max_request_headers_bytes: usize,
    /// Number of request headers; more → 431.
    pub max_request_headers: usize,
    /// Time a client has to send a request's headers. The clock starts at accept (after the
    /// handshake on TLS ports, which has its own timeout), so a connection that sends nothing is
    /// closed after it, as nginx does; on HTTP/1.1 it restarts at the end of each response, so
    /// it also closes idle kept-alive connections.
    pub request_headers_timeout: Duration,
    /// A request body that sends nothing for this long gets 408 (Envoy's stream idle timeout).
    pub request_body_timeout: Duration,
    /// HTTP/2 connections are pinged this often and closed when a ping goes unanswered.
    pub http2_keepalive: Duration,
    pub http2_max_concurrent_streams: u32,
    /// Connections over this are shed at once (503 with `retry-after` on plaintext HTTP ports,
    /// closed on others) instead of waiting in the kernel's accept queue.
    pub max_connections: usize,
    /// Open connections one client address may hold; more are shed like the above.
    pub max_connections_per_ip: Option<usize>,
    /// Above this resident memory, new requests and connections are shed with 503.
    pub max_rss_bytes: Option<u64>,
    /// Listen with SO_REUSEPORT, so a second instance (a new binary) can bind the same ports
    /// and take over while this one drains.
    pub reuse_port: bool,
    /// How paths are normalised before routing (Istio's `pathNormalization`).
    pub path_normalization: crate::headers::PathNormalization,
    /// How long a removed listener or a shutdown lets open requests finish.
    pub drain_timeout: Duration,
    /// Time a client has to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Request bodies up to this size are kept so the request can be retried or mirrored;
    /// larger ones stream through and get one try.
    pub replay_buffer_bytes: usize,
    pub max_mirrors_in_flight: usize,
    /// Mirrors get `Host: <host>-shadow`, as Istio before 1.28 sent them.
    pub mirror_host_suffix: bool,
    /// One line per request and TCP/TLS connection, in Istio's text or JSON format.
    pub access_log: Option<crate::access_log::AccessLog>,
    /// Who this gateway is, for the `source_*` labels of Istio's metrics.
    pub workload: crate::metrics::Workload,
    /// A span per request, handed to an exporter (`sluice-trace`); without one, trace headers
    /// pass through unchanged.
    pub tracer: Option<crate::trace::Tracer>,
    pub upstream: UpstreamOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            max_request_headers_bytes: 60 * 1024,
            max_request_headers: 100,
            request_headers_timeout: Duration::from_secs(60),
            request_body_timeout: Duration::from_secs(300),
            http2_keepalive: Duration::from_secs(300),
            http2_max_concurrent_streams: 1024,
            max_connections: 65_536,
            max_connections_per_ip: None,
            max_rss_bytes: None,
            reuse_port: false,
            path_normalization: Default::default(),
            drain_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            replay_buffer_bytes: 64 * 1024,
            max_mirrors_in_flight: 1024,
            mirror_host_suffix: false,
            access_log: None,
            workload: Default::default(),
            tracer: None,
            upstream: UpstreamOptions::default(),
        }
    }
}

struct RunningListener {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

/// What every accept loop and connection of a gateway uses.
struct Serving {
    shared: Arc<Shared>,
    http1: crate::h1::server::Limits,
    http2: http2::Builder<TokioExecutor>,
    connections: Arc<Semaphore>,
    /// Open connections by client address, when limited per address.
    per_ip: Option<crate::overload::PerIp>,
    /// Shed connections still being answered; beyond it they are closed without an answer.
    shedding: Arc<Semaphore>,
    drain_timeout: Duration,
    handshake_timeout: Duration,
}

/// A gateway instance: the current dataplane and its listeners.
pub struct Gateway {
    pub(crate) shared: Arc<Shared>,
    opts: ServerOptions,
    serving: Arc<Serving>,
    listeners: Mutex<BTreeMap<u32, RunningListener>>,
    /// Sockets bound by the caller (tests, socket activation), taken by port before binding.
    prebound: Mutex<HashMap<u32, std::net::TcpListener>>,
    drains: Mutex<JoinSet<()>>,
    /// Per-cluster and per-endpoint runtime state (pools, counters, ejections), kept across
    /// snapshots for the clusters and endpoints that stay.
    clusters: crate::cluster::Registry,
}

impl Gateway {
    pub fn new(opts: ServerOptions) -> Gateway {
        let http1 = crate::h1::server::Limits {
            head_bytes: opts.max_request_headers_bytes,
            headers: opts.max_request_headers,
            head_timeout: opts.request_headers_timeout,
        };
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(opts.max_request_headers_bytes as u32)
            .max_concurrent_streams(opts.http2_max_concurrent_streams)
            .keep_alive_interval(opts.http2_keepalive);
        let shared = Arc::new(Shared {
            current: ArcSwap::from_pointee(Dataplane::default()),
            upstreams: Upstreams::new(&opts.upstream),
            replay_buffer: opts.replay_buffer_bytes,
            mirror_slots: Arc::new(Semaphore::new(opts.max_mirrors_in_flight)),
            mirror_host_suffix: opts.mirror_host_suffix,
            access_log: opts.access_log.clone(),
            metrics: Arc::new(crate::metrics::Metrics::new(opts.workload.clone())),
            tracer: opts.tracer.clone(),
            accepted: Default::default(),
            shed: Default::default(),
            limits: crate::request::Limits {
                headers_timeout: opts.request_headers_timeout,
                body_timeout: opts.request_body_timeout,
                header_bytes: opts.max_request_headers_bytes,
                path_normalization: opts.path_normalization,
            },
            overloaded: Default::default(),
        });
        if let Some(limit) = opts.max_rss_bytes {
            crate::overload::watch_memory(Arc::downgrade(&shared), limit);
        }
        Gateway {
            serving: Arc::new(Serving {
                shared: shared.clone(),
                http1,
                http2,
                connections: Arc::new(Semaphore::new(opts.max_connections)),
                per_ip: opts.max_connections_per_ip.map(crate::overload::PerIp::new),
                shedding: Arc::new(Semaphore::new(1024)),
                drain_timeout: opts.drain_timeout,
                handshake_timeout: opts.tls_handshake_timeout,
            }),
            shared,
            opts,
            listeners: Mutex::default(),
            prebound: Mutex::default(),
            drains: Mutex::default(),
            clusters: crate::cluster::Registry::default(),
        }
    }

    /// Hands the gateway an already bound socket for `bind_port`.
    pub fn prebind(&self, bind_port: u32, listener: std::net::TcpListener) {
        self.prebound
            .lock()
            .expect("prebound")
            .insert(bind_port, listener);
    }

    /// Istio's metrics of this gateway, to register with a Prometheus registry.
    pub fn metrics(&self) -> Arc<crate::metrics::Metrics> {
        self.shared.metrics.clone()
    }

    /// The gateway's own gauges and counters (connections, pools, breakers, ejections), read
    /// when scraped.
    pub fn runtime_metrics(&self) -> crate::metrics::Runtime {
        crate::metrics::Runtime {
            shared: self.shared.clone(),
            connections: self.serving.connections.clone(),
            max_connections: self.opts.max_connections,
        }
    }

    /// The snapshot now serving.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.current.load().snapshot.clone()
    }

    /// Where the listener for `bind_port` accepts.
    pub fn local_addr(&self, bind_port: u32) -> Option<SocketAddr> {
        self.listeners
            .lock()
            .expect("listeners")
            .get(&bind_port)
            .map(|l| l.addr)
    }

    /// Serves `snapshot` from now on: opens listeners it adds (all or nothing: if one port
    /// cannot be bound, nothing changes), swaps the dataplane atomically (requests in flight keep
    /// the one they started with) and drains listeners it removes. Needs a Tokio runtime.
    pub fn apply(&self, snapshot: Arc<Snapshot>) -> Result<(), Error> {
        let dataplane = Dataplane::new(
            snapshot,
            &self.opts.upstream,
            &self.clusters,
            &self.shared.metrics,
        );
        let mut listeners = self.listeners.lock().expect("listeners");
        let mut opened = Vec::new();
        for &port in dataplane.ports.keys() {
            if !listeners.contains_key(&port) {
                opened.push((port, self.bind(port)?));
            }
        }
        let removed: Vec<u32> = listeners
            .keys()
            .filter(|p| !dataplane.ports.contains_key(p))
            .copied()
            .collect();
        self.shared.current.store(Arc::new(dataplane));
        for (port, listener) in opened {
            let addr = listener
                .local_addr()
                .map_err(|source| Error::Bind { port, source })?;
            let (stop, stopped) = watch::channel(false);
            self.drains.lock().expect("drains").spawn(accept_loop(
                listener,
                port,
                stopped,
                self.serving.clone(),
            ));
            tracing::info!(%addr, listener = format!("0.0.0.0_{port}"), "listening");
            listeners.insert(port, RunningListener { addr, stop });
        }
        for port in removed {
            if let Some(l) = listeners.remove(&port) {
                tracing::info!(addr = %l.addr, "listener removed; draining");
                let _ = l.stop.send(true);
            }
        }
        Ok(())
    }

    fn bind(&self, port: u32) -> Result<TcpListener, Error> {
        let err = |source| Error::Bind { port, source };
        if let Some(l) = self.prebound.lock().expect("prebound").remove(&port) {
            l.set_nonblocking(true).map_err(err)?;
            return TcpListener::from_std(l).map_err(err);
        }
        let port16 = u16::try_from(port).map_err(|_| {
            err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "port out of range",
            ))
        })?;
        let addr = SocketAddr::new(self.opts.bind_address, port16);
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(err)?;
        socket.set_reuseaddr(true).map_err(err)?;
        if self.opts.reuse_port {
            socket.set_reuseport(true).map_err(err)?;
        }
        socket.bind(addr).map_err(err)?;
        socket.listen(1024).map_err(err)
    }

    /// Stops accepting on every port and waits (up to the drain timeout) for open requests.
    pub async fn shutdown(&self) {
        for (_, l) in std::mem::take(&mut *self.listeners.lock().expect("listeners")) {
            let _ = l.stop.send(true);
        }
        let mut drains = std::mem::take(&mut *self.drains.lock().expect("drains"));
        while drains.join_next().await.is_some() {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    bind_port: u32,
    mut stop: watch::Receiver<bool>,
    serving: Arc<Serving>,
) {
    let (draining, signal) = watch::channel(false);
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let drain = Drain {
        signal,
        _open: open,
    };
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Accepting before checking the limits keeps the kernel's queue empty: a flood of idle
        // connections is answered at once instead of locking out everyone behind it.
        let admitted = crate::overload::admit(
            &serving.shared,
            &serving.connections,
            serving.per_ip.as_ref(),
            peer.ip(),
        );
        let counter = match admitted {
            Some(_) => &serving.shared.accepted,
            None => &serving.shared.shed,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(admitted) = admitted else {
            crate::overload::shed(stream, &serving.shared, &serving.shedding, bind_port);
            continue;
        };
        let conn = serve(stream, peer, bind_port, serving.clone(), drain.clone());
        connections.spawn(async move {
            conn.await;
            drop(admitted);
        });
    }
    // Connections already queued for this socket would be reset when it closes; with
    // SO_REUSEPORT another instance may be taking over, so serve what has arrived.
    while let Some(Ok((stream, peer))) = queued(&listener).await {
        let conn = serve(stream, peer, bind_port, serving.clone(), drain.clone());
        connections.spawn(conn);
    }
    drop(listener);
    // Draining closes a connection that has not sent its request yet; one accepted a moment
    // ago gets that moment to send it.
    tokio::time::sleep(LAST_ACCEPTED_GRACE.min(serving.drain_timeout)).await;
    let _ = draining.send(true);
    drop(drain);
    if tokio::time::timeout(serving.drain_timeout, all_closed.recv())
        .await
        .is_err()
    {
        tracing::info!(
            port = bind_port,
            "drain timeout; closing remaining connections"
        );
    }
    connections.shutdown().await;
}

/// What a connection watches to finish its requests and close when its listener drains; the
/// listener waits (up to the drain timeout) until every copy is dropped. A TCP connection has
/// no requests to finish: it holds its copy until it ends, as Envoy lets it drain.
#[derive(Clone)]
struct Drain {
    signal: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
}

/// How long the last connections accepted before a drain have to send their first request.
const LAST_ACCEPTED_GRACE: Duration = Duration::from_millis(500);

/// A connection the kernel has already queued for `listener`, without waiting for one.
async fn queued(listener: &TcpListener) -> Option<std::io::Result<(TcpStream, SocketAddr)>> {
    std::future::poll_fn(|cx| match listener.poll_accept(cx) {
        std::task::Poll::Ready(r) => std::task::Poll::Ready(Some(r)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    bind_port: u32,
    serving: Arc<Serving>,
    drain: Drain,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let _ = stream.set_nodelay(true);
    // The address the client connected to, read only for the access log.
    let local = serving
        .shared
        .access_log
        .as_ref()
        .and_then(|_| stream.local_addr().ok());
    async move {
        let shared = serving.shared.clone();
        let dataplane = shared.current.load_full();
        let kind = dataplane.ports.get(&bind_port).map(|p| &p.kind);
        // A TCP connection has no requests to finish: draining waits for it as for any.
        // Every branch but plain HTTP is boxed: the task of each connection is as large as its
        // largest branch, and most connections are plain HTTP.
        let result = match kind {
            Some(PortKind::Tcp(routes)) => {
                let _draining = drain;
                let peer = shared.l4_peer(peer, local);
                Box::pin(crate::l4::tcp(stream, &dataplane, routes, peer, None)).await
            }
            Some(PortKind::Tls { passthrough, .. }) => {
                let peek = *passthrough;
                drop(dataplane);
                let conn = (peer, local);
                Box::pin(tls(stream, conn, bind_port, peek, &serving, drain)).await
            }
            Some(PortKind::Plain(_)) | None => {
                drop(dataplane);
                let downstream = Downstream::new(peer, bind_port, "http", None, None, local);
                let stream = ClientStream::Plain(stream);
                http(stream, downstream, &serving, drain).await;
                Ok(())
            }
        };
        if let Err(reason) = result {
            tracing::debug!(%peer, reason, "connection closed");
        }
    }
}

/// The HTTP/2 connection preface, which tells an HTTP/2 client from an HTTP/1.1 one.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves HTTP/1.1 or HTTP/2 on an accepted (and, for TLS, handshaken) connection, told apart
/// by the first bytes. The headers timeout runs from here: a client that sends nothing, or
/// half a preface, is closed after it.
async fn http(stream: ClientStream, downstream: Downstream, serving: &Serving, drain: Drain) {
    let shared = &serving.shared;
    let deadline = tokio::time::Instant::now() + shared.limits.headers_timeout;
    let mut stream = stream;
    let mut read = BytesMut::new();
    let is_http2 = loop {
        let n = read.len().min(PREFACE.len());
        if read[..n] != PREFACE[..n] {
            break false;
        }
        if n == PREFACE.len() {
            break true;
        }
        read.reserve(crate::h1::server::HEAD_STEP);
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut read)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    };
    let downstream = Arc::new(downstream);
    if !is_http2 {
        let handler = |req| handle(shared.clone(), downstream.clone(), req);
        let signal = drain.signal.clone();
        crate::h1::server::serve(stream, read, &serving.http1, deadline, signal, handler).await;
        return;
    }
    // Boxed: a connection's task is as large as its largest branch, and most are HTTP/1.1.
    Box::pin(http2(stream, read, downstream, serving, drain)).await;
}

/// Serves HTTP/2 with hyper until the client is done or the listener drains (then GOAWAY, and
/// the streams open finish).
async fn http2(
    stream: ClientStream,
    read: BytesMut,
    downstream: Arc<Downstream>,
    serving: &Serving,
    drain: Drain,
) {
    let peer = downstream.peer;
    let shared = serving.shared.clone();
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let answer = handle(shared.clone(), downstream.clone(), req.map(Inbound::H2));
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    });
    let io = TokioIo::new(crate::l4::Rewind::new(read.to_vec(), stream));
    let mut conn = std::pin::pin!(serving.http2.serve_connection(io, service));
    let mut signal = drain.signal.clone();
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = crate::h1::server::drained(&mut signal) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// A connection to a TLS port. With a passthrough server on the port, the ClientHello is read
/// first and its SNI decides: pass the bytes through, or replay them into a handshake here.
async fn tls(
    mut stream: TcpStream,
    (peer, local): (SocketAddr, Option<SocketAddr>),
    bind_port: u32,
    peek: bool,
    serving: &Serving,
    drain: Drain,
) -> Result<(), String> {
    let timeout = serving.handshake_timeout;
    let shared = &serving.shared;
    let mut hello = Vec::new();
    if peek {
        let (read, sni) = crate::l4::read_hello(&mut stream, timeout).await?;
        let dataplane = shared.current.load_full();
        let port = dataplane.ports.get(&bind_port).ok_or("listener removed")?;
        if let Some((server, _)) = port.tls_server(sni.as_deref()) {
            if let ServerMode::Passthrough { routes } = &server.mode {
                let peer = shared.l4_peer(peer, local);
                return crate::l4::passthrough(
                    stream,
                    &read,
                    sni.as_deref(),
                    &dataplane,
                    routes,
                    peer,
                )
                .await;
            }
        }
        hello = read;
    }
    let io = crate::l4::Rewind::new(hello, stream);
    let (stream, sni, client_cert, dataplane, index) =
        match tokio::time::timeout(timeout, handshake(io, bind_port, shared)).await {
            Ok(Ok(done)) => done,
            Ok(Err(reason)) => return Err(format!("TLS handshake refused: {reason}")),
            Err(_) => return Err("TLS handshake timed out".into()),
        };
    if let Some(PortKind::Tls { servers, .. }) = dataplane.ports.get(&bind_port).map(|p| &p.kind) {
        if let ServerMode::Tcp { routes, .. } = &servers[index].mode {
            let peer = shared.l4_peer(peer, local);
            return crate::l4::tcp(stream, &dataplane, routes, peer, sni.as_deref()).await;
        }
    }
    drop(dataplane);
    let downstream = Downstream::new(peer, bind_port, "https", sni, client_cert, local);
    http(
        ClientStream::Tls(Box::new(stream)),
        downstream,
        serving,
        drain,
    )
    .await;
    Ok(())
}

type TlsStream = tokio_rustls::server::TlsStream<crate::l4::Rewind<TcpStream>>;

/// What a completed handshake gives: the stream, the SNI, the verified client certificate, the
/// dataplane the server was chosen from and the server's position on the port.
type Handshaken = (
    TlsStream,
    Option<String>,
    Option<ClientCert>,
    Arc<Dataplane>,
    usize,
);

/// Reads the ClientHello, picks the server by SNI from the current dataplane, completes the
/// handshake and checks the client certificate against the server's rules.
async fn handshake(
    stream: crate::l4::Rewind<TcpStream>,
    bind_port: u32,
    shared: &Shared,
) -> Result<Handshaken, String> {
    let start = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream)
        .await
        .map_err(|e| e.to_string())?;
    let sni = start
        .client_hello()
        .server_name()
        .map(str::to_ascii_lowercase);
    let dataplane = shared.current.load_full();
    let port = dataplane.ports.get(&bind_port).ok_or("listener removed")?;
    let PortKind::Tls {
        servers, runtimes, ..
    } = &port.kind
    else {
        return Err("the port no longer serves TLS".into());
    };
    let index =
        sluice_compile::tls::select_index(servers, sni.as_deref()).ok_or_else(|| match &sni {
            Some(sni) => format!("no TLS server for SNI {sni}"),
            None => "no TLS server for a ClientHello without SNI".to_string(),
        })?;
    let (server, runtime) = (&servers[index], &runtimes[index]);
    let config = runtime
        .config
        .clone()
        .ok_or("the server passes TLS through")?;
    let stream = start.into_stream(config).await.map_err(|e| e.to_string())?;
    let client_cert = match (
        stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first()),
        server.settings(),
    ) {
        (Some(der), Some(settings)) => Some(crate::tls::check_client_cert(settings, der)?),
        _ => None,
    };
    Ok((stream, sni, client_cert, dataplane, index))
}
