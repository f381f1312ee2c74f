//! Answers the gateway makes itself: not found, upstream failures, faults, refusals. gRPC
//! clients get them as trailers-only gRPC responses.
use crate::body::{full, ProxyBody};
use crate::metrics::Flags;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

/// Why the last try of a request got no response; the local reply is made only when no try
/// succeeds.
#[derive(Clone, Copy)]
pub(super) enum Failure {
    NoHealthyUpstream,
    Connect,
    Reset,
    Timeout,
    /// A circuit breaker of the cluster is open.
    Overflow,
}

impl Failure {
    pub(super) fn reply(self, grpc: bool) -> Response<ProxyBody> {
        let (status, flag, body) = match self {
            Failure::NoHealthyUpstream => (
                StatusCode::SERVICE_UNAVAILABLE,
                Flags::UH,
                "no healthy upstream",
            ),
            Failure::Connect => (
                StatusCode::SERVICE_UNAVAILABLE,
                Flags::UF,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
            Failure::Reset => (
                StatusCode::SERVICE_UNAVAILABLE,
                Flags::UC,
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            ),
            Failure::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                Flags::UT,
                "upstream request timeout",
            ),
            Failure::Overflow => {
                let mut resp = local(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Flags::UO,
                    "upstream connect error or disconnect/reset before headers. reset reason: overflow",
                    grpc,
                );
                // Envoy marks a circuit breaker's answer so clients can tell it from the backend's.
                resp.headers_mut().insert(
                    HeaderName::from_static("x-envoy-overloaded"),
                    HeaderValue::from_static("true"),
                );
                return resp;
            }
        };
        local(status, flag, body, grpc)
    }
}

/// A reply made by the gateway, with the response flag the log and metrics record. gRPC
/// clients get it as a trailers-only gRPC response with the status gRPC maps the HTTP status
/// to (504 → DEADLINE_EXCEEDED, 503 → UNAVAILABLE, …).
pub(super) fn local(
    status: StatusCode,
    flag: Flags,
    body: &'static str,
    grpc: bool,
) -> Response<ProxyBody> {
    tracing::debug!(status = status.as_u16(), flag = %flag.to_label(), "local reply");
    let mut resp = local_reply(status, body, grpc);
    flagged(&mut resp, flag);
    resp
}

/// Local replies are the rare path: the flag rides along in the response's extensions.
pub(super) fn flagged(resp: &mut Response<ProxyBody>, flag: Flags) {
    resp.extensions_mut().insert(flag);
}

fn local_reply(status: StatusCode, body: &'static str, grpc: bool) -> Response<ProxyBody> {
    if grpc {
        let code = match status.as_u16() {
            504 => 4,
            400 => 13,
            401 => 16,
            403 => 7,
            404 => 12,
            429 | 502 | 503 => 14,
            500 => 13,
            _ => 2,
        };
        return grpc_reply(code, body);
    }
    plain(status, body)
}

pub(super) fn grpc_reply(code: u32, message: &'static str) -> Response<ProxyBody> {
    let mut resp = plain(StatusCode::OK, "");
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert(
        HeaderName::from_static("grpc-status"),
        HeaderValue::from(code),
    );
    if !message.is_empty() {
        h.insert(
            HeaderName::from_static("grpc-message"),
            HeaderValue::from_static(message),
        );
    }
    resp
}

pub(super) fn plain(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    if !body.is_empty() {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    resp
}

pub(super) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// `grpc-status` in a header map (trailers, or the headers of a trailers-only response).
pub(super) fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
    headers.get(&GRPC_STATUS)?.to_str().ok()?.parse().ok()
}
