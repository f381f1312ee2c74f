//! The HTTP/1.1 server's parsing of what a client sends, fed in pieces of every size: never a
//! panic; a head is accepted only whole, within the limits, with one unambiguous framing (no
//! Transfer-Encoding beside Content-Length, nothing but chunked last); bytes after the head
//! stay for the body; a head split anywhere parses as the whole head does.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice_proxy::h1::head::Framing;
use sluice_proxy::h1::server::{parse_request_head, Limits};
use std::time::Duration;

fuzz_target!(|input: (u8, &[u8])| {
    let (step, data) = input;
    let step = usize::from(step).max(1);
    let limits = Limits {
        head_bytes: 4096,
        headers: 32,
        head_timeout: Duration::from_secs(1),
    };
    let whole = parse_request_head(&mut BytesMut::from(data), &limits);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let pieces = loop {
        match parse_request_head(&mut buf, &limits) {
            Ok(None) if fed < data.len() => {
                let n = step.min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            other => break other,
        }
    };
    match (&whole, &pieces) {
        (Ok(Some((a, fa))), Ok(Some((b, fb)))) => {
            assert_eq!((a.method(), a.uri(), a.headers()), (b.method(), b.uri(), b.headers()));
            assert_eq!(fa, fb);
            assert_ne!(*fa, Framing::Close);
            let h = a.headers();
            assert!(!(h.contains_key("transfer-encoding") && h.contains_key("content-length")));
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        // Pieces can be refused earlier (an oversized partial head) or still be partial.
        _ => {}
    }
});
