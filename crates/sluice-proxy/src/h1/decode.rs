//! A response body's framing, decoded from the connection's read buffer: a fixed length,
//! chunked (with extensions ignored and trailers kept), or until the connection closes. Pure:
//! bytes in, frames out, so it is unit-tested and fuzzed without sockets.
use super::head::{Framing, MAX_HEAD, MAX_HEADERS};
use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

/// The longest chunk-size line (size and extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("invalid chunked encoding: {0}")]
    Chunked(&'static str),
    #[error("connection closed before the body ended")]
    Incomplete,
    #[error("invalid trailers")]
    Trailers,
}

/// What the buffer gave.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Data(Bytes),
    Trailers(HeaderMap),
    /// The body is complete.
    End,
    /// More bytes are needed.
    More,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk: bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailer fields, then the final CRLF.
    Trailers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunk),
    Close,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder(State);

impl Decoder {
    pub fn new(framing: Framing) -> Decoder {
        Decoder(match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size),
            Framing::Close => State::Close,
        })
    }

    pub fn is_done(&self) -> bool {
        self.0 == State::Done
    }

    /// Bytes still expected, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self.0 {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// The next frame from `buf` (consumed as decoded).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BodyError> {
        loop {
            match self.0 {
                State::Done => return Ok(Decoded::End),
                State::Length(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    self.0 = match left - n as u64 {
                        0 => State::Done,
                        rest => State::Length(rest),
                    };
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                State::Close => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                State::Chunked(Chunk::Size) => {
                    let Some(end) = find_crlf(buf) else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(BodyError::Chunked("chunk-size line too long"));
                        }
                        return Ok(Decoded::More);
                    };
                    if end > MAX_CHUNK_LINE {
                        return Err(BodyError::Chunked("chunk-size line too long"));
                    }
                    let size = chunk_size(&buf[..end])?;
                    buf.advance(end + 2);
                    self.0 = State::Chunked(match size {
                        0 => Chunk::Trailers,
                        n => Chunk::Data(n),
                    });
                }
                State::Chunked(Chunk::Data(left)) => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    self.0 = State::Chunked(match left - n as u64 {
                        0 => Chunk::DataEnd,
                        rest => Chunk::Data(rest),
                    });
                    return Ok(Decoded::Data(buf.split_to(n).freeze()));
                }
                State::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(Decoded::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(BodyError::Chunked("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.0 = State::Chunked(Chunk::Size);
                }
                State::Chunked(Chunk::Trailers) => {
                    if buf.starts_with(b"\r\n") {
                        buf.advance(2);
                        self.0 = State::Done;
                        return Ok(Decoded::End);
                    }
                    return match trailers(buf)? {
                        Some(map) => {
                            self.0 = State::Done;
                            Ok(Decoded::Trailers(map))
                        }
                        None => Ok(Decoded::More),
                    };
                }
            }
        }
    }

    /// The connection closed: the end of a body that ends so, an error for any other.
    pub fn eof(&mut self) -> Result<Decoded, BodyError> {
        match self.0 {
            State::Close | State::Done => {
                self.0 = State::Done;
                Ok(Decoded::End)
            }
            _ => Err(BodyError::Incomplete),
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// `1a;name=value` → 26. Extensions are ignored; whitespace before them is allowed (as
/// hyper allows), anything else is an error.
fn chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits == 0 {
        return Err(BodyError::Chunked("missing chunk size"));
    }
    if digits > 16 {
        return Err(BodyError::Chunked("chunk size too large"));
    }
    let rest = &line[digits..];
    // Only CRLF ends the line: a bare CR or LF inside it is refused, not skipped, since a
    // proxy in front that ends lines there would frame the body differently.
    if rest.iter().any(|b| *b == b'\r' || *b == b'\n' || *b == 0) {
        return Err(BodyError::Chunked("invalid chunk extension"));
    }
    // Whitespace before an extension is SP or HTAB (RFC 9112 §7.1.1's BWS), nothing else.
    let blank = rest
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    let rest = &rest[blank..];
    if !(rest.is_empty() || rest.starts_with(b";")) {
        return Err(BodyError::Chunked("invalid chunk size"));
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| BodyError::Chunked("size"))?;
    u64::from_str_radix(text, 16).map_err(|_| BodyError::Chunked("chunk size too large"))
}

/// The trailer section (fields, then an empty line) when complete.
fn trailers(buf: &mut BytesMut) -> Result<Option<HeaderMap>, BodyError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (len, fields) = match httparse::parse_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete((len, fields))) => (len, fields),
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(BodyError::Trailers),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(BodyError::Trailers),
    };
    // httparse takes a bare LF as a line end; in a body's framing sluice does not (hyper does
    // not either): two parsers reading one message differently is how requests are smuggled.
    let bare_lf = buf[..len]
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || buf[i - 1] != b'\r'));
    if bare_lf {
        return Err(BodyError::Trailers);
    }
    let mut map = HeaderMap::with_capacity(fields.len());
    for f in fields {
        let name = HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| BodyError::Trailers)?;
        let value = HeaderValue::from_bytes(f.value).map_err(|_| BodyError::Trailers)?;
        map.append(name, value);
    }
    buf.advance(len);
    Ok(Some(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `input` decodes to, fed `step` bytes at a time.
    fn run(
        framing: Framing,
        input: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, Option<HeaderMap>), BodyError> {
        let mut d = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let (mut data, mut trailers) = (Vec::new(), None);
        let mut fed = 0;
        loop {
            match d.decode(&mut buf)? {
                Decoded::Data(b) => data.extend_from_slice(&b),
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::End => return Ok((data, trailers)),
                Decoded::More if fed < input.len() => {
                    let n = step.min(input.len() - fed);
                    buf.extend_from_slice(&input[fed..fed + n]);
                    fed += n;
                }
                Decoded::More => match d.eof()? {
                    Decoded::End => return Ok((data, trailers)),
                    other => panic!("{other:?}"),
                },
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let input = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\n\r\n";
        for step in [1, 2, 3, 7, 64] {
            let (data, trailers) = run(Framing::Chunked, input, step).unwrap();
            assert_eq!(data, b"hello world", "step {step}");
            assert_eq!(trailers.unwrap()["grpc-status"], "0");
        }
        let (data, trailers) = run(Framing::Chunked, b"A\r\n0123456789\r\n0\r\n\r\n", 4).unwrap();
        assert_eq!((data.len(), trailers), (10, None));
    }

    #[test]
    fn lengths_and_close_delimited_bodies() {
        assert_eq!(run(Framing::Length(5), b"hello", 2).unwrap().0, b"hello");
        assert_eq!(
            run(Framing::Close, b"until close", 3).unwrap().0,
            b"until close"
        );
        assert_eq!(
            run(Framing::Length(5), b"hel", 2),
            Err(BodyError::Incomplete)
        );
        assert_eq!(run(Framing::Empty, b"", 1).unwrap().0, b"");
        // Bytes after a complete body stay in the buffer (the next response's, or garbage).
        let mut d = Decoder::new(Framing::Length(2));
        let mut buf = BytesMut::from(&b"okEXTRA"[..]);
        assert_eq!(
            d.decode(&mut buf),
            Ok(Decoded::Data(Bytes::from_static(b"ok")))
        );
        assert_eq!(d.decode(&mut buf), Ok(Decoded::End));
        assert_eq!(&buf[..], b"EXTRA");
    }

    proptest::proptest! {
        /// Any bytes, any read sizes: a frame or an error, never a panic, and a fixed length is
        /// never exceeded (what the `h1_response` fuzz target checks at length).
        #[test]
        fn any_bytes_decode_or_fail_cleanly(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            chunked_prefix in proptest::prelude::any::<bool>(),
            step in 1usize..64,
            length in 0u64..600,
        ) {
            let mut bytes = if chunked_prefix { b"3\r\nabc\r\n".to_vec() } else { Vec::new() };
            bytes.extend_from_slice(&input);
            let _ = run(Framing::Chunked, &bytes, step);
            let _ = run(Framing::Close, &bytes, step);
            if let Ok((data, _)) = run(Framing::Length(length), &bytes, step) {
                proptest::prop_assert!(data.len() as u64 <= length);
            }
        }
    }

    #[test]
    fn broken_chunked_encoding_is_an_error() {
        for bad in [
            &b"zz\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"-5\r\nhello\r\n",
            b"11111111111111111\r\n",
            b"5 x\r\nhello\r\n",
            b"0\r\nbad header\r\n\r\n",
            b"0\r\nx: y\n\n",
            b"5\r;x\r\nhello\r\n0\r\n\r\n",
            b"5\n\r\nhello\r\n0\r\n\r\n",
            b"5\x0c\r\nhello\r\n0\r\n\r\n",
            b"0\r\nx: y\r\n\n",
            b"5\r\nhel",
        ] {
            assert!(
                run(Framing::Chunked, bad, 3).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b'1'; MAX_CHUNK_LINE + 2];
        assert!(run(Framing::Chunked, &long, 4096).is_err());
    }
}
