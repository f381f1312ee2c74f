//! Message heads: the request's written from its header map, the response's parsed with
//! `httparse` and checked as strictly as hyper checks them (RFC 9112: one framing, valid names
//! and values, no obs-fold, bounded size).
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, StatusCode, Version};
use std::fmt::Write as _;
use std::mem::MaybeUninit;

/// Response heads larger than this are refused (hyper's default read limit is ~400 KiB; Envoy's
/// header limit is 60 KiB, which is what sluice allows clients).
pub const MAX_HEAD: usize = 64 * 1024;
/// Headers in a response head.
pub const MAX_HEADERS: usize = 128;

/// How the body of a message ends (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304, or `content-length: 0`).
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// Why a response head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed response head: {0}")]
    Malformed(String),
    #[error("response head larger than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("ambiguous response framing: {0}")]
    Framing(&'static str),
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Parses a response head at the start of `buf`: `Ok(None)` when more bytes are needed, else
/// the head and its length in `buf`. Header values share `buf`'s memory (no copy).
pub fn parse_response(
    buf: &Bytes,
    method: &Method,
) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let code = resp.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| HeadError::Malformed(format!("status {code}")))?;
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    // Room for the headers routes add to responses without a rehash.
    let mut headers = HeaderMap::with_capacity(resp.headers.len() + 4);
    for h in resp.headers {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HeadError::Malformed(format!("header name {:?}", h.name)))?;
        let value = HeaderValue::from_maybe_shared(buf.slice_ref(h.value))
            .map_err(|_| HeadError::Malformed(format!("value of {}", h.name)))?;
        headers.append(name, value);
    }
    let framing = framing(status, method, &headers)?;
    let (mut close, mut keep_alive_10) = (false, false);
    for v in headers.get_all(CONNECTION) {
        close |= has_token(v.as_bytes(), b"close");
        keep_alive_10 |= has_token(v.as_bytes(), b"keep-alive");
    }
    // After a 101 the connection speaks another protocol: it never serves another request.
    let keep_alive = framing != Framing::Close
        && status != StatusCode::SWITCHING_PROTOCOLS
        && !close
        && (version == Version::HTTP_11 || keep_alive_10);
    Ok(Some((
        ResponseHead {
            status,
            version,
            headers,
            framing,
            keep_alive,
        },
        len,
    )))
}

/// RFC 9112 §6.3, refusing what a proxy must not guess at: Transfer-Encoding with
/// Content-Length, a coding other than chunked last, differing Content-Length values.
fn framing(status: StatusCode, method: &Method, headers: &HeaderMap) -> Result<Framing, HeadError> {
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    Ok(body_framing(headers)?.unwrap_or(Framing::Close))
}

/// The framing a message's headers declare (RFC 9112 §6.3), for requests and responses alike:
/// `None` without Transfer-Encoding or Content-Length; `Close` for a final coding other than
/// chunked (a response's body then ends with the connection; a request with it is refused).
/// Transfer-Encoding with Content-Length, chunked twice and differing lengths are errors.
pub(super) fn body_framing(headers: &HeaderMap) -> Result<Option<Framing>, HeadError> {
    let te: Vec<&HeaderValue> = headers.get_all(TRANSFER_ENCODING).iter().collect();
    if !te.is_empty() {
        if headers.contains_key(CONTENT_LENGTH) {
            return Err(HeadError::Framing("transfer-encoding and content-length"));
        }
        let codings = || {
            te.iter()
                .flat_map(|v| v.as_bytes().split(|b| *b == b','))
                .map(<[u8]>::trim_ascii)
        };
        return match codings().rfind(|t| !t.is_empty()) {
            Some(t) if t.eq_ignore_ascii_case(b"chunked") => {
                if codings()
                    .filter(|t| t.eq_ignore_ascii_case(b"chunked"))
                    .count()
                    > 1
                {
                    Err(HeadError::Framing("chunked applied twice"))
                } else {
                    Ok(Some(Framing::Chunked))
                }
            }
            Some(_) => Ok(Some(Framing::Close)),
            None => Err(HeadError::Framing("empty transfer-encoding")),
        };
    }
    let mut length: Option<u64> = None;
    for v in headers.get_all(CONTENT_LENGTH) {
        for part in v.as_bytes().split(|b| *b == b',') {
            let n = parse_decimal(part.trim_ascii())
                .ok_or(HeadError::Framing("invalid content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Framing("differing content-length values"));
            }
            length = Some(n);
        }
    }
    Ok(length.map(|n| match n {
        0 => Framing::Empty,
        n => Framing::Length(n),
    }))
}

fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

pub(super) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// One header field line, as both heads write it.
pub(super) fn put_field(out: &mut BytesMut, name: &HeaderName, value: &HeaderValue) {
    out.put_slice(name.as_str().as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// How the request body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// `content-length` as the headers (or the buffered body) say; no body bytes for 0.
    Length(u64),
    /// A body of unknown length: chunked.
    Chunked,
}

/// Writes the request line and headers into `out`, adding the framing header the body needs:
/// `content-length` for a buffered body the headers do not size, `transfer-encoding: chunked`
/// for a streamed body of unknown length. Returns how the body must be written.
pub fn write_request(
    out: &mut BytesMut,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: Option<u64>,
) -> RequestFraming {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| parse_decimal(v.as_bytes()));
    let framing = match (declared, body) {
        (Some(n), _) => RequestFraming::Length(n),
        (None, Some(n)) => RequestFraming::Length(n),
        (None, None) => RequestFraming::Chunked,
    };
    let size = method.as_str().len()
        + target.len()
        + 13
        + headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>()
        + 32;
    out.reserve(size);
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        // A length the gateway could not read never goes beside its own chunked framing.
        if framing == RequestFraming::Chunked && name == CONTENT_LENGTH {
            continue;
        }
        put_field(out, name, value);
    }
    match framing {
        RequestFraming::Length(n) if declared.is_none() => {
            // A body of 0 bytes needs no header unless the method expects a body.
            if n > 0 || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
                // Writing to a BytesMut cannot fail.
                let _ = write!(out, "content-length: {n}\r\n");
            }
        }
        RequestFraming::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
        RequestFraming::Length(_) => {}
    }
    out.put_slice(b"\r\n");
    framing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, method: Method) -> Result<Option<(ResponseHead, usize)>, HeadError> {
        parse_response(&Bytes::copy_from_slice(text.as_bytes()), &method)
    }

    fn framing_of(text: &str) -> Result<Framing, HeadError> {
        parse(text, Method::GET).map(|r| r.unwrap().0.framing)
    }

    #[test]
    fn heads_are_parsed_with_their_framing_and_reuse() {
        let (head, len) = parse(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\n\r\nhello",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!(len, 46);
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(head.headers["x-a"], "b");
        assert!(parse("HTTP/1.1 200 OK\r\ncontent-le", Method::GET)
            .unwrap()
            .is_none());
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"),
            Ok(Framing::Chunked)
        );
        assert_eq!(framing_of("HTTP/1.1 200 OK\r\n\r\n"), Ok(Framing::Close));
        assert_eq!(
            framing_of("HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n"),
            Ok(Framing::Empty)
        );
        let head = parse("HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", Method::HEAD)
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(head.framing, Framing::Empty);
        let close = parse(
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap()
        .0;
        assert!(!close.keep_alive);
        let old = parse("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n", Method::GET)
            .unwrap()
            .unwrap()
            .0;
        assert!(!old.keep_alive);
        let switched = parse(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap()
        .0;
        assert_eq!(
            (switched.framing, switched.keep_alive),
            (Framing::Empty, false)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n"),
            Ok(Framing::Length(3))
        );
    }

    #[test]
    fn ambiguous_or_malformed_heads_are_refused() {
        for bad in [
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: +1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nx-a: b\r\n folded\r\n\r\n",
            "HTTP/1.1 200 OK\r\nx a: b\r\n\r\n",
            "HTTP/1.1 200 OK\r\nx-a: b\x7f\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTX/1.1 200 OK\r\n\r\n",
        ] {
            assert!(parse(bad, Method::GET).is_err(), "{bad:?}");
        }
        let huge = format!("HTTP/1.1 200 OK\r\nx-a: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(&huge, Method::GET).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn request_heads_get_the_framing_their_body_needs() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("a.example"));
        let mut out = BytesMut::new();
        assert_eq!(
            write_request(&mut out, &Method::GET, "/x?y", &h, Some(0)),
            RequestFraming::Length(0)
        );
        assert_eq!(&out[..], b"GET /x?y HTTP/1.1\r\nhost: a.example\r\n\r\n");
        let mut out = BytesMut::new();
        write_request(&mut out, &Method::POST, "/", &h, Some(0));
        assert!(out.ends_with(b"content-length: 0\r\n\r\n"));
        let mut out = BytesMut::new();
        assert_eq!(
            write_request(&mut out, &Method::POST, "/", &h, None),
            RequestFraming::Chunked
        );
        assert!(out.ends_with(b"transfer-encoding: chunked\r\n\r\n"));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("7"));
        let mut out = BytesMut::new();
        assert_eq!(
            write_request(&mut out, &Method::PUT, "/", &h, None),
            RequestFraming::Length(7)
        );
        assert_eq!(
            std::str::from_utf8(&out)
                .unwrap()
                .matches("content-length")
                .count(),
            1
        );
    }
}
