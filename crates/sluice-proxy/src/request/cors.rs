//! CORS: preflights answered at the gateway, and the headers of an allowed cross-origin
//! response.
use super::reply::plain;
use crate::body::ProxyBody;
use http::header::{HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use sluice_compile::policy::Cors;

/// Answers a CORS preflight at the gateway, or `None` to let the request through.
pub(super) fn preflight<B>(
    cors: &Cors,
    req: &Request<B>,
    origin: Option<&HeaderValue>,
) -> Option<Response<ProxyBody>> {
    let origin = origin?;
    if req.method() != Method::OPTIONS
        || !req
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let allowed = origin.to_str().is_ok_and(|o| cors.allows(o));
    if !allowed {
        return (!cors.forward_unmatched_preflights).then(|| plain(StatusCode::OK, ""));
    }
    let mut resp = plain(StatusCode::OK, "");
    let h = resp.headers_mut();
    use http::header::*;
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    let optional = [
        (ACCESS_CONTROL_ALLOW_METHODS, &cors.allow_methods),
        (ACCESS_CONTROL_ALLOW_HEADERS, &cors.allow_headers),
        (ACCESS_CONTROL_MAX_AGE, &cors.max_age),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            h.insert(name, v.clone());
        }
    }
    if cors.allow_credentials {
        h.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    Some(resp)
}

/// CORS headers on the response to an actual (not preflight) cross-origin request.
pub(super) fn response_headers(cors: &Cors, origin: &HeaderValue, headers: &mut HeaderMap) {
    if !origin.to_str().is_ok_and(|o| cors.allows(o)) {
        return;
    }
    use http::header::*;
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if cors.allow_credentials {
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if let Some(v) = &cors.expose_headers {
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
    }
}
