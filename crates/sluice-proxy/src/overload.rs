//! Edge protection around the accept loop: connection limits that shed instead of queueing,
//! and a memory watermark. (A connection that sends nothing is closed by the headers timeout,
//! which runs from accept: see `server::http`.)
use crate::dataplane::PortKind;
use crate::request::Shared;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a shed plaintext connection is told (Envoy's overload manager answers 503 too).
const SHED_REPLY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 11\r\nretry-after: 1\r\nconnection: close\r\n\r\noverloaded\n";

/// Open connections by client address.
type OpenByIp = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Open connections per client address, with the most one address may hold.
pub(crate) struct PerIp {
    limit: usize,
    open: OpenByIp,
}

impl PerIp {
    pub fn new(limit: usize) -> PerIp {
        PerIp {
            limit,
            open: Arc::default(),
        }
    }
}

/// A connection's place under the limits, given back when the connection ends.
pub(crate) struct Admitted {
    _permit: OwnedSemaphorePermit,
    ip: Option<(IpAddr, OpenByIp)>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some((ip, open)) = self.ip.take() {
            let mut open = open.lock().expect("per-ip counts");
            if let Some(n) = open.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&ip);
                }
            }
        }
    }
}

/// A place for a new connection, or `None` when it must be shed.
pub(crate) fn admit(
    shared: &Shared,
    connections: &Arc<Semaphore>,
    per_ip: Option<&PerIp>,
    ip: IpAddr,
) -> Option<Admitted> {
    if shared.overloaded.load(Ordering::Relaxed) {
        return None;
    }
    let permit = connections.clone().try_acquire_owned().ok()?;
    let ip = match per_ip {
        Some(p) => {
            let mut open = p.open.lock().expect("per-ip counts");
            let n = open.entry(ip).or_default();
            if *n >= p.limit {
                return None;
            }
            *n += 1;
            Some((ip, p.open.clone()))
        }
        None => None,
    };
    Some(Admitted {
        _permit: permit,
        ip,
    })
}

/// Answers a connection over the limits: 503 with `retry-after` on a plaintext HTTP port, then
/// closed. The answer is bounded in time and in number; past that the socket is just closed.
pub(crate) fn shed(stream: TcpStream, shared: &Shared, slots: &Arc<Semaphore>, bind_port: u32) {
    let plain = matches!(
        shared.current.load().ports.get(&bind_port).map(|p| &p.kind),
        Some(PortKind::Plain(_))
    );
    tracing::debug!(port = bind_port, "connection shed: over the limits");
    let Some(slot) = plain
        .then(|| slots.clone().try_acquire_owned().ok())
        .flatten()
    else {
        return;
    };
    tokio::spawn(async move {
        let _slot = slot;
        let mut stream = stream;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            // Answer once the request starts: a client (hyper's among them) may take an
            // answer that comes before its request for a broken connection.
            let mut sink = [0u8; 4096];
            if stream.read(&mut sink).await? == 0 {
                return Ok(());
            }
            stream.write_all(SHED_REPLY).await?;
            stream.shutdown().await?;
            // Read the rest before closing, or the kernel resets the connection and the
            // client may lose the answer.
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
    });
}

/// Samples resident memory while the gateway lives; above `limit` new work is shed.
pub(crate) fn watch_memory(shared: Weak<Shared>, limit: u64) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no runtime: memory limit not enforced");
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let over = rss_bytes().is_some_and(|rss| rss > limit);
            if shared.overloaded.swap(over, Ordering::Relaxed) != over {
                tracing::warn!(over, limit, "memory watermark crossed");
            }
        }
    });
}

/// Resident set size, from `/proc/self/statm` (Linux); `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
