//! Header rules of a gateway (as Envoy applies them at an Istio ingress): hop-by-hop headers
//! stripped both ways, the client appended to `x-forwarded-for`, `x-forwarded-proto` set,
//! `x-request-id` generated when absent, Host kept; the request path normalised before routing
//! and the Host checked, so what a route decides on is what the backend gets.
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use rand::Rng;
use sluice_compile::HeaderLookup;
use std::borrow::Cow;
use std::net::IpAddr;

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_FORWARDED_CLIENT_CERT: HeaderName = HeaderName::from_static("x-forwarded-client-cert");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// `select_route` reads headers through this view: no copy of the map.
pub struct View<'a>(pub &'a HeaderMap);

impl HeaderLookup for View<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request that asks to switch protocols (WebSocket and the like). `h2c` is not honoured:
/// RFC 9113 deprecated the upgrade, and Envoy ignores it too; the request is served as HTTP/1.1.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"h2c"))
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| has_token(v, "upgrade"))
}

fn has_token(value: &HeaderValue, token: &str) -> bool {
    value
        .as_bytes()
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Removes the headers that belong to one connection, including those the `Connection` header
/// names. With `upgrade`, `Upgrade` and `Connection: upgrade` are kept for the next hop.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // Most messages carry none of them: one pass over the names instead of a lookup per name.
    if !upgrade && !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
            .filter(|n| !(upgrade && *n == header::UPGRADE))
            .collect();
        for n in named {
            headers.remove(n);
        }
    }
    headers.remove(header::CONNECTION);
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::TRANSFER_ENCODING);
    if headers
        .get(header::TE)
        .is_some_and(|v| !has_token(v, "trailers"))
    {
        headers.remove(header::TE);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// A header `strip_hop_by_hop` may remove (the names `Connection` lists come with `Connection`).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::TE
        || name == header::UPGRADE
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

/// The client's address as `x-forwarded-for` spells it (IPv4-mapped addresses as IPv4); made
/// once per connection.
pub fn client_address(client: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&client.to_canonical().to_string()).expect("an address is a valid value")
}

/// Adds what a gateway tells the backend about the client.
pub fn add_forwarding(headers: &mut HeaderMap, client: &HeaderValue, scheme: &'static str) {
    if let Some(xff) = forwarded_for(headers.get(&X_FORWARDED_FOR), client) {
        headers.insert(X_FORWARDED_FOR.clone(), xff);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(scheme));
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID.clone(), request_id());
    }
}

/// `x-forwarded-for` as the backend gets it: the client's list with the client appended.
pub fn forwarded_for(prev: Option<&HeaderValue>, client: &HeaderValue) -> Option<HeaderValue> {
    match prev {
        Some(prev) if !prev.is_empty() => {
            let mut v = Vec::with_capacity(prev.len() + 2 + client.len());
            v.extend_from_slice(prev.as_bytes());
            v.extend_from_slice(b", ");
            v.extend_from_slice(client.as_bytes());
            HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).ok()
        }
        _ => Some(client.clone()),
    }
}

/// The request's `x-request-id`, made now (and set on the request) when it has none, so the
/// access log and the span name the id the backend gets.
pub fn ensure_request_id(headers: &mut HeaderMap) -> &HeaderValue {
    headers
        .entry(X_REQUEST_ID.clone())
        .or_insert_with(request_id)
}

/// The authority a request names: its URI's (HTTP/2, absolute form), else its Host.
pub fn authority<B>(req: &http::Request<B>) -> Option<&str> {
    req.uri().authority().map(|a| a.as_str()).or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
    })
}

/// A random (version 4) UUID, as Envoy generates for `x-request-id`.
pub fn request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut out = [0u8; 36];
    let mut o = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[o] = b'-';
            o += 1;
        }
        out[o] = HEX[usize::from(byte >> 4)];
        out[o + 1] = HEX[usize::from(byte & 0xf)];
        o += 2;
    }
    HeaderValue::from_bytes(&out).expect("hex digits and dashes are a valid header value")
}

/// How far paths are normalised before routing, as Istio's `meshConfig.pathNormalization`.
/// Istio's `NONE` is not offered: routes always see at least `BASE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PathNormalization {
    /// RFC 3986: percent-encoded unreserved characters decoded (so `%2e%2e` is `..`),
    /// dot-segments removed, `\` taken for `/`; `//`, `%2F` and `%5C` kept.
    #[default]
    Base,
    /// `Base`, then repeated slashes merged.
    MergeSlashes,
    /// `%2F` and `%5C` decoded too (into `/`), then `MergeSlashes`.
    DecodeAndMergeSlashes,
}

/// A `%` not followed by two hex digits: refused (400) rather than guessed at, since a backend
/// might read it differently (nginx answers 400 too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEscape;

/// The path (no query) as routes see it and the backend gets it. Borrowed when nothing changes,
/// which is nearly every path. Idempotent, and the result has no `.` or `..` segment, encoded
/// or not.
pub fn normalize_path(path: &str, mode: PathNormalization) -> Result<Cow<'_, str>, BadEscape> {
    let decoded = if path.contains('%') {
        decode_unreserved(path, mode == PathNormalization::DecodeAndMergeSlashes)?
    } else {
        Cow::Borrowed(path)
    };
    let based = match decoded {
        Cow::Borrowed(p) => sluice_compile::select::normalize_path(p),
        Cow::Owned(p) => Cow::Owned(sluice_compile::select::normalize_path(&p).into_owned()),
    };
    if mode == PathNormalization::Base || !based.contains("//") {
        return Ok(based);
    }
    let mut merged = String::with_capacity(based.len());
    for c in based.chars() {
        if !(c == '/' && merged.ends_with('/')) {
            merged.push(c);
        }
    }
    Ok(Cow::Owned(merged))
}

/// Decodes `%XX` escapes of RFC 3986's unreserved characters (and, with `slashes`, of `/` and
/// `\`); other escapes are kept as sent.
fn decode_unreserved(path: &str, slashes: bool) -> Result<Cow<'_, str>, BadEscape> {
    let b = path.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            if let Some(o) = out.as_mut() {
                o.push(b[i]);
            }
            i += 1;
            continue;
        }
        let hex = |c: u8| (c as char).to_digit(16);
        let (Some(hi), Some(lo)) = (
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(BadEscape);
        };
        let c = (hi * 16 + lo) as u8;
        let decode = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~')
            || (slashes && matches!(c, b'/' | b'\\'));
        let o = out.get_or_insert_with(|| b[..i].to_vec());
        if decode {
            o.push(c);
        } else {
            o.extend_from_slice(&b[i..i + 3]);
        }
        i += 3;
    }
    Ok(match out {
        // Only ASCII was decoded into ASCII positions: still UTF-8.
        Some(o) => Cow::Owned(String::from_utf8(o).expect("ASCII replaced by ASCII")),
        None => Cow::Borrowed(path),
    })
}

/// A Host (or `:authority`) a gateway can route on: `host[:port]` with an RFC 3986 reg-name or
/// IP literal, no user info, no path, no list. Envoy answers 400 to anything else.
pub fn valid_authority(authority: &str) -> bool {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) => {
                let ok = !ip.is_empty()
                    && ip
                        .bytes()
                        .all(|c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.'));
                if !ok {
                    return false;
                }
                ("0", port)
            }
            None => return false,
        },
        None => match authority.find(':') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        },
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()));
    port_ok
        && !host.is_empty()
        && host.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b'%'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b';'
                        | b'='
                )
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn hop_by_hop_headers_go_and_named_ones_with_them() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "gzip"),
            ("upgrade", "websocket"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn upgrades_keep_their_headers() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
        ]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["te"], "trailers");
        let h2c = map(&[
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "h2c"),
        ]);
        assert!(!is_upgrade(&h2c));
    }

    #[test]
    fn forwarding_headers() {
        let mut h = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
        ]);
        add_forwarding(
            &mut h,
            &client_address("127.0.0.1".parse().unwrap()),
            "http",
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        let id = h["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        let dashes: Vec<usize> = id.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!(dashes, [8, 13, 18, 23]);
        assert!(id.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit()));
        assert_ne!(request_id(), request_id());
        let mut kept = map(&[("x-request-id", "abc")]);
        add_forwarding(
            &mut kept,
            &client_address("::ffff:10.1.2.3".parse().unwrap()),
            "http",
        );
        assert_eq!(kept["x-request-id"], "abc");
        assert_eq!(kept["x-forwarded-for"], "10.1.2.3");
    }
}
