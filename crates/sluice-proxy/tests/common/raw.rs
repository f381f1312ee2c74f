//! A backend that misbehaves on purpose: it answers every request with fixed bytes.
//! Shared with `crates/sluice/tests/run_cli.rs` (included there by path).
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers each connection's first request (once its head has arrived) with `answer`, raw, then
/// holds the connection open for `hold` before closing it.
pub async fn raw_backend(answer: &'static [u8], hold: Duration) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(answer).await;
                tokio::time::sleep(hold).await;
            });
        }
    });
    addr
}
