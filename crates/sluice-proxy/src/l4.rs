//! TCP proxying: `tcp[]` routes (raw TCP) and `tls[]` routes (TLS passed through by SNI,
//! read from the ClientHello without terminating it), then bytes copied both ways.
use crate::dataplane::Dataplane;
use sluice_compile::snapshot::L4Route;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most of a ClientHello read while looking for SNI.
const MAX_HELLO: usize = 16 * 1024;

/// Proxies one TCP connection by the routes of its port; `passthrough` reads SNI first.
pub(crate) async fn proxy<S>(
    mut client: S,
    dp: &Dataplane,
    routes: &[L4Route],
    passthrough: bool,
    hello_timeout: Duration,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut hello = Vec::new();
    let route = if passthrough {
        let sni = tokio::time::timeout(hello_timeout, read_sni(&mut client, &mut hello))
            .await
            .map_err(|_| "no ClientHello in time".to_string())??;
        routes
            .iter()
            .find(|r| r.takes_sni(&sni))
            .ok_or_else(|| format!("no tls route for SNI {sni}"))?
    } else {
        routes.first().ok_or("no tcp route")?
    };
    let destination = crate::lb::pick_destination(&route.destinations, route.total_weight);
    let balancer = dp
        .balancers
        .get(&destination.cluster)
        .filter(|b| b.cluster.problem.is_none())
        .ok_or_else(|| format!("no cluster {}", destination.cluster))?;
    let in_flight = balancer.pick(None).ok_or("no healthy upstream")?;
    let mut upstream = TcpStream::connect(in_flight.endpoint().authority.as_str())
        .await
        .map_err(|e| format!("upstream connect: {e}"))?;
    let _ = upstream.set_nodelay(true);
    upstream
        .write_all(&hello)
        .await
        .map_err(|e| e.to_string())?;
    splice(
        &mut client,
        &mut upstream,
        balancer.cluster.tcp_idle_timeout,
    )
    .await
}

/// Copies both ways until both sides are done; each direction is shut down for writing when
/// its source ends (half-close). No bytes either way for `idle` closes both.
async fn splice<A, B>(a: &mut A, b: &mut B, idle: Duration) -> Result<(), String>
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
                n => b_write.write_all(&a_buf[..n]).await.map_err(io)?,
            },
            n = b_read.read(&mut b_buf), if !b_done => match n.map_err(io)? {
                0 => { a_write.shutdown().await.map_err(io)?; b_done = true; }
                n => a_write.write_all(&b_buf[..n]).await.map_err(io)?,
            },
            _ = tokio::time::sleep(idle) => return Err(format!("idle for {idle:?}")),
        }
    }
    Ok(())
}

/// Reads until the ClientHello is complete and returns its SNI; the bytes read stay in `buf`
/// to be sent on.
async fn read_sni<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<String, String> {
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
                return accepted
                    .client_hello()
                    .server_name()
                    .map(str::to_ascii_lowercase)
                    .ok_or_else(|| "ClientHello without SNI".to_string())
            }
            Ok(None) if buf.len() < MAX_HELLO => continue,
            Ok(None) => return Err("ClientHello too large".into()),
            Err((e, _)) => return Err(format!("not a TLS ClientHello: {e}")),
        }
    }
}
