//! The upstream HTTP/1.1 client's parsing of what a backend sends: a response head, then its
//! body decoded from the bytes that follow, fed in pieces of every size. Never a panic; a body
//! decoded by a fixed length never yields more bytes than the length; the head's own checks
//! (one framing, bounded size) hold for every input.
#![no_main]
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sluice_proxy::h1::decode::{Decoded, Decoder};
use sluice_proxy::h1::head::{self, Framing};

fuzz_target!(|input: (u8, bool, &[u8])| {
    let (step, head_request, data) = input;
    let step = usize::from(step).max(1);
    let method = if head_request {
        http::Method::HEAD
    } else {
        http::Method::GET
    };
    let bytes = Bytes::copy_from_slice(data);
    let Ok(Some((parsed, len))) = head::parse_response(&bytes, &method) else {
        return;
    };
    assert!(len <= data.len() && len <= head::MAX_HEAD);
    let limit = match parsed.framing {
        Framing::Length(n) => Some(n),
        Framing::Empty => Some(0),
        _ => None,
    };
    let mut decoder = Decoder::new(parsed.framing);
    let mut buf = BytesMut::new();
    let rest = &data[len..];
    let (mut fed, mut out) = (0, 0u64);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Decoded::Data(b)) => out += b.len() as u64,
            Ok(Decoded::Trailers(_)) | Ok(Decoded::End) => break,
            Ok(Decoded::More) if fed < rest.len() => {
                let n = step.min(rest.len() - fed);
                buf.extend_from_slice(&rest[fed..fed + n]);
                fed += n;
            }
            Ok(Decoded::More) => {
                let _ = decoder.eof();
                break;
            }
            Err(_) => break,
        }
    }
    if let Some(limit) = limit {
        assert!(out <= limit);
    }
});
