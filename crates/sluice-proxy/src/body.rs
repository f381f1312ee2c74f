//! Bodies, a leaf every other module may use: what the proxy sends downstream (`ProxyBody`),
//! what it sends upstream (`RequestBody`, buffered for replay or streamed), and the timeouts that
//! cut them.
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Why a response body stopped early.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the proxy sends downstream: a backend's body or one made here.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A body cut by a timeout: the route's (response) or the idle one (request). Typed so the
/// access log can tell it from a connection that broke.
#[derive(Debug)]
pub struct BodyTimeout(pub &'static str);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BodyTimeout {}

/// A body made by the gateway itself.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A client's request body: none, read from an HTTP/1.1 connection by sluice's own server,
/// or an HTTP/2 stream's (hyper's).
pub enum Inbound {
    Empty,
    H1(crate::h1::server::ClientBody),
    H2(Incoming),
}

impl Body for Inbound {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Inbound::Empty => Poll::Ready(None),
            Inbound::H1(body) => Pin::new(body).poll_frame(cx),
            Inbound::H2(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Inbound::Empty => true,
            Inbound::H1(body) => body.is_end_stream(),
            Inbound::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Inbound::Empty => SizeHint::with_exact(0),
            Inbound::H1(body) => body.size_hint(),
            Inbound::H2(body) => body.size_hint(),
        }
    }
}

/// What the proxy sends upstream: a body buffered for replay (retries, mirrors), or the
/// client's body streamed through after whatever was read while deciding.
pub enum RequestBody {
    Buffered(Option<Bytes>),
    Streaming {
        prefix: Option<Bytes>,
        rest: Inbound,
        idle: Idle,
    },
}

/// Fails a request body that sends nothing for `timeout` (Envoy's stream idle timeout): one
/// timer per body, re-armed when a pause starts.
pub struct Idle {
    timeout: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl Idle {
    pub fn new(timeout: Duration) -> Idle {
        Idle {
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
        }
    }

    /// Call when the body had nothing to give: true once the pause has lasted too long.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.armed {
            let at = tokio::time::Instant::now() + self.timeout;
            self.timer.as_mut().reset(at);
            self.armed = true;
        }
        self.timer.as_mut().poll(cx).is_ready()
    }
}

/// Why a request body could not be read.
pub enum ReadError {
    /// Malformed (hyper refused it) or cut.
    Protocol,
    /// Nothing arrived for the idle timeout.
    Idle,
}

/// A request body after the proxy looked at it.
pub enum Prepared {
    /// Small enough to keep: can be sent any number of times.
    Replayable(Bytes),
    /// Larger than the replay buffer: can be sent once.
    Once(RequestBody),
}

impl Prepared {
    /// Reads up to `limit` bytes of `body`; a body that ends within it becomes replayable.
    /// A pause longer than `idle` fails the read.
    pub async fn read(
        mut body: Inbound,
        limit: usize,
        idle: Duration,
    ) -> Result<Prepared, ReadError> {
        if body.is_end_stream() {
            return Ok(Prepared::Replayable(Bytes::new()));
        }
        let mut buf = bytes::BytesMut::new();
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Ok(Some(frame)) => frame.map_err(|_| ReadError::Protocol)?,
                Ok(None) => break,
                Err(_) => return Err(ReadError::Idle),
            };
            // Request trailers are rare outside gRPC streaming; a buffered body drops them.
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    return Ok(Prepared::Once(RequestBody::Streaming {
                        prefix: Some(buf.freeze()),
                        rest: body,
                        idle: Idle::new(idle),
                    }));
                }
            }
        }
        Ok(Prepared::Replayable(buf.freeze()))
    }

    pub fn replayable(&self) -> Option<&Bytes> {
        match self {
            Prepared::Replayable(b) => Some(b),
            Prepared::Once(_) => None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Buffered(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RequestBody::Streaming { prefix, rest, idle } => {
                if let Some(p) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                match Pin::new(rest).poll_frame(cx) {
                    Poll::Pending if idle.expired(cx) => {
                        let e = BodyTimeout("request body idle timeout");
                        Poll::Ready(Some(Err(e.into())))
                    }
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(frame) => {
                        idle.armed = false;
                        Poll::Ready(frame)
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Buffered(b) => b.as_ref().is_none_or(|b| b.is_empty()),
            RequestBody::Streaming { prefix, rest, .. } => prefix.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Buffered(b) => {
                SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            RequestBody::Streaming { prefix, rest, .. } => {
                let p = prefix.as_ref().map_or(0, |b| b.len() as u64);
                let r = rest.size_hint();
                let mut h = SizeHint::new();
                h.set_lower(r.lower() + p);
                if let Some(u) = r.upper() {
                    h.set_upper(u + p);
                }
                h
            }
        }
    }
}
