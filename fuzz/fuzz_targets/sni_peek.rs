//! The SNI peek of TLS passthrough: a ClientHello fed to rustls' `Acceptor` in the pieces a
//! socket delivers, re-parsed from the start each time as `l4::read_sni` does. Any bytes give a
//! name, "need more" or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

/// What `l4` reads before giving up on a ClientHello.
const MAX_HELLO: usize = 16 * 1024 + 5;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece size, the rest is what the client sent.
    let Some((&piece, bytes)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut buf = Vec::new();
    for chunk in bytes.chunks(piece) {
        buf.extend_from_slice(chunk);
        let mut acceptor = rustls::server::Acceptor::default();
        let mut input = &buf[..];
        if acceptor.read_tls(&mut input).is_err() {
            return;
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let _ = accepted.client_hello().server_name().map(str::to_ascii_lowercase);
                return;
            }
            Ok(None) if buf.len() < MAX_HELLO => continue,
            _ => return,
        }
    }
});
