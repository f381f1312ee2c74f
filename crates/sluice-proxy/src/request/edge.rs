//! Edge checks: what a gateway must refuse before routing (RFC 9110/9112, as Envoy refuses
//! it), and the path normalised in place so the route decides on the path the backend gets.
use super::reply::{local, plain};
use super::Limits;
use crate::body::Inbound;
use crate::body::ProxyBody;
use crate::headers;
use crate::metrics::Flags;
use http::header::HOST;
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};

/// Refuses what a gateway must not route, as Envoy and RFC 9110/9112 do (the refusal is
/// returned), and normalises the path in place so that the route decides on the path the
/// backend gets.
pub(super) fn check(
    limits: &Limits,
    req: &mut Request<Inbound>,
    grpc: bool,
) -> Option<Response<ProxyBody>> {
    if req.method() == Method::CONNECT {
        // Envoy answers 404 unless a route allows CONNECT, and no Istio HTTP route can.
        return Some(local(StatusCode::NOT_FOUND, Flags::NR, "", grpc));
    }
    if req.version() <= Version::HTTP_11 && header_bytes(req) > limits.header_bytes {
        return Some(plain(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large",
        ));
    }
    let mut hosts = req.headers().get_all(HOST).iter();
    let host = hosts.next();
    // RFC 9112 §3.2: more than one Host is a 400, not a choice of the first.
    let host_ok = hosts.next().is_none()
        && host.is_none_or(|h| h.to_str().is_ok_and(headers::valid_authority))
        && req
            .uri()
            .authority()
            .is_none_or(|a| headers::valid_authority(a.as_str()));
    if !host_ok {
        return Some(plain(StatusCode::BAD_REQUEST, "invalid host"));
    }
    let Some(pq) = req.uri().path_and_query().filter(|_| {
        // `GET admin HTTP/1.1` parses as authority-form, which only CONNECT may use.
        req.uri().scheme().is_some() || req.uri().authority().is_none()
    }) else {
        return Some(plain(StatusCode::BAD_REQUEST, "invalid request target"));
    };
    let path = pq.path();
    if !path.starts_with('/') {
        // `OPTIONS *`: no route serves the asterisk form (Envoy answers 404 too).
        return Some(if path == "*" {
            local(StatusCode::NOT_FOUND, Flags::NR, "", grpc)
        } else {
            plain(StatusCode::BAD_REQUEST, "invalid request target")
        });
    }
    let normalized = match headers::normalize_path(path, limits.path_normalization) {
        Ok(std::borrow::Cow::Borrowed(_)) => return None,
        Ok(std::borrow::Cow::Owned(p)) => p,
        Err(headers::BadEscape) => {
            return Some(plain(StatusCode::BAD_REQUEST, "invalid percent-encoding"))
        }
    };
    let pq = match pq.query() {
        Some(q) => format!("{normalized}?{q}"),
        None => normalized,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = PathAndQuery::try_from(pq).ok();
    match Uri::from_parts(parts) {
        Ok(uri) => {
            *req.uri_mut() = uri;
            None
        }
        Err(_) => Some(plain(StatusCode::BAD_REQUEST, "invalid request target")),
    }
}

/// An HTTP/1.1 request's head as it was on the wire: request line and header lines.
pub(super) fn header_bytes<B>(req: &Request<B>) -> usize {
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n".len()
        + 1;
    req.headers()
        .iter()
        .fold(line + 2, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}
