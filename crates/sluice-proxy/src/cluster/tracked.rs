//! A backend's response body, tied to its request's cluster accounting.
use super::InFlight;
use crate::body::{BodyTimeout, BoxError, ProxyBody};
use crate::pool::ResponseBody;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A backend's response body that keeps its endpoint's in-flight count until it ends (a pooled
/// body hands its connection back itself).
pub struct Tracked {
    inner: ResponseBody,
    _in_flight: InFlight,
    /// The route's timeout covers the whole response, body included (as Envoy's does).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Tracked {
    pub fn boxed(
        inner: ResponseBody,
        in_flight: InFlight,
        deadline: Option<tokio::time::Instant>,
    ) -> ProxyBody {
        Tracked {
            inner,
            _in_flight: in_flight,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
        }
        .boxed()
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame)),
            Poll::Pending => {
                let expired = self
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    let e = BodyTimeout("upstream request timeout while streaming the body");
                    Poll::Ready(Some(Err(e.into())))
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
