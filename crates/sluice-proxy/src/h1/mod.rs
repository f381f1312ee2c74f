//! HTTP/1.1 to an endpoint on the request's own task: the request head written from the
//! header map into the connection's buffer (with a small body, one write), the response head
//! parsed with `httparse` (`head`), the body decoded from the same connection as the client
//! reads it (`decode`), and the connection handed back to its endpoint's pool when the body
//! ends. No channel, no second task, no boxed body: hyper's client connection would add both
//! a task wake-up each way and a second copy of the codec's state.
pub mod decode;
pub mod head;
pub mod server;

use crate::body::{BoxError, RequestBody};
use bytes::{Buf, Bytes, BytesMut};
use decode::{Decoded, Decoder};
use head::{RequestFraming, ResponseHead};
use http::{HeaderMap, Method};
use hyper::body::{Body as _, Frame, SizeHint};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Request bodies up to this size go out in the same write as the head.
const INLINE_BODY: usize = 16 * 1024;
/// A response is read in steps of this much at first: a head and a small body fit. Each read
/// that fills its step doubles the next, up to `MAX_STEP`, so large bodies take few reads.
const FIRST_STEP: usize = 2 * 1024;
const MAX_STEP: usize = 64 * 1024;

/// A connection's transport: plaintext or TLS. Upstream (the default) the cluster decides;
/// downstream the port does, with the server side's TLS stream.
pub enum Stream<T = tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    Plain(tokio::net::TcpStream),
    Tls(Box<T>),
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One kept-alive connection and what limits its reuse. Its place in the cluster's and
/// endpoint's counts (`slot`) goes with it and is given back when it is dropped.
pub struct Conn {
    io: Stream,
    /// Bytes read and not yet decoded; empty (no allocation) while idle.
    read: BytesMut,
    /// The request head being written; released with the read buffer while idle.
    write: BytesMut,
    /// How much the next read reserves (see `FIRST_STEP`).
    step: usize,
    pub opened: Instant,
    pub served: u32,
    _slot: Box<dyn Send + Sync>,
}

/// Why an exchange failed, and whether the request can go again on another connection.
#[derive(Debug)]
pub struct Failed {
    pub error: BoxError,
    /// A kept-alive connection the server had closed refused the request's head: it was not
    /// processed and may be sent again.
    pub unsent: bool,
}

impl Conn {
    pub fn new(io: Stream, slot: Box<dyn Send + Sync>) -> Conn {
        Conn {
            io,
            read: BytesMut::new(),
            write: BytesMut::new(),
            step: FIRST_STEP,
            opened: Instant::now(),
            served: 0,
            _slot: slot,
        }
    }

    /// Whether an idle connection is still open: the server has neither closed it nor sent
    /// anything unasked (either makes it unusable).
    pub fn usable(&mut self) -> bool {
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut buf),
            Poll::Pending
        )
    }

    /// Sends a request and reads its response head (1xx informational heads skipped, 101
    /// returned). `reused`: the connection served before, so a write refused by it means the
    /// server had given it up, not that it failed the request.
    pub async fn exchange(
        &mut self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: RequestBody,
        reused: bool,
    ) -> Result<ResponseHead, Failed> {
        let fail = |error: BoxError, unsent: bool| Failed { error, unsent };
        self.write.clear();
        match body {
            RequestBody::Buffered(bytes) => {
                let bytes = bytes.unwrap_or_default();
                let framing = head::write_request(
                    &mut self.write,
                    method,
                    target,
                    headers,
                    Some(bytes.len() as u64),
                );
                let sent = match framing {
                    RequestFraming::Length(n) if n as usize == bytes.len() => {
                        if bytes.len() <= INLINE_BODY {
                            self.write.extend_from_slice(&bytes);
                            self.io.write_all(&self.write).await
                        } else {
                            match self.io.write_all(&self.write).await {
                                Ok(()) => self.io.write_all(&bytes).await,
                                Err(e) => Err(e),
                            }
                        }
                    }
                    _ => {
                        return Err(fail(
                            "the request's content-length differs from its body".into(),
                            false,
                        ))
                    }
                };
                // A kept-alive connection the server closed may refuse the write itself.
                sent.map_err(|e| fail(e.into(), reused))?;
                self.read_head(method).await
            }
            RequestBody::Streaming { .. } => {
                let framing = head::write_request(&mut self.write, method, target, headers, None);
                self.io
                    .write_all(&self.write)
                    .await
                    .map_err(|e| fail(e.into(), reused))?;
                // The body goes while the response is awaited: a server may answer (and stop
                // reading) before the body ends.
                self.stream_body(body, framing, method).await
            }
        }
    }

    async fn stream_body(
        &mut self,
        mut body: RequestBody,
        framing: RequestFraming,
        method: &Method,
    ) -> Result<ResponseHead, Failed> {
        let fail = |error: BoxError| Failed {
            error,
            unsent: false,
        };
        let mut state = Sending::Body;
        let mut pending: Option<Bytes> = None;
        std::future::poll_fn(|cx| {
            // Write what the body gives, as far as the socket takes it.
            while state != Sending::Done {
                if let Some(chunk) = pending.as_mut() {
                    match Pin::new(&mut self.io).poll_write(cx, chunk) {
                        Poll::Ready(Ok(0)) => {
                            return Poll::Ready(Err(fail("upstream closed while writing".into())))
                        }
                        Poll::Ready(Ok(n)) => {
                            chunk.advance(n);
                            if chunk.is_empty() {
                                pending = None;
                            }
                            continue;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(fail(e.into()))),
                        Poll::Pending => break,
                    }
                }
                if state == Sending::Last {
                    state = Sending::Done;
                    break;
                }
                match Pin::new(&mut body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data() {
                            if !data.is_empty() {
                                pending = Some(match framing {
                                    RequestFraming::Chunked => chunk(&data),
                                    RequestFraming::Length(_) => data,
                                });
                            }
                        }
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(fail(e))),
                    Poll::Ready(None) => {
                        state = Sending::Last;
                        if framing == RequestFraming::Chunked {
                            pending = Some(Bytes::from_static(b"0\r\n\r\n"));
                        }
                    }
                    Poll::Pending => break,
                }
            }
            // Meanwhile, or after, the response head. A server that answered before the body
            // ended left the connection mid-request: it must not carry another one.
            let mut head = ready!(self.poll_head(cx, method))?;
            if state != Sending::Done {
                head.keep_alive = false;
            }
            Poll::Ready(Ok(head))
        })
        .await
    }

    async fn read_head(&mut self, method: &Method) -> Result<ResponseHead, Failed> {
        std::future::poll_fn(|cx| self.poll_head(cx, method)).await
    }

    /// Reads until a final response head (or 101) is complete.
    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        method: &Method,
    ) -> Poll<Result<ResponseHead, Failed>> {
        loop {
            if !self.read.is_empty() {
                match self.parse_head(method) {
                    Ok(Some(h)) if h.status.is_informational() && h.status != 101 => continue,
                    Ok(Some(h)) => return Poll::Ready(Ok(h)),
                    Ok(None) => {}
                    Err(e) => {
                        return Poll::Ready(Err(Failed {
                            error: e.into(),
                            unsent: false,
                        }))
                    }
                }
            }
            // The request went out: whatever happens now, the server may have acted on it.
            match ready!(self.poll_fill(cx)) {
                Ok(0) => {
                    return Poll::Ready(Err(Failed {
                        error: "upstream closed the connection before responding".into(),
                        unsent: false,
                    }))
                }
                Ok(_) => {}
                Err(e) => {
                    return Poll::Ready(Err(Failed {
                        error: e.into(),
                        unsent: false,
                    }))
                }
            }
        }
    }

    /// Parses the response head at the start of the read buffer, in place: the head's header
    /// values point into the bytes read; what follows the head (the body's first bytes) stays
    /// in the buffer.
    fn parse_head(&mut self, method: &Method) -> Result<Option<ResponseHead>, head::HeadError> {
        let bytes = std::mem::take(&mut self.read).freeze();
        let parsed = head::parse_response(&bytes, method);
        match &parsed {
            Ok(Some((_, len))) if *len < bytes.len() => self.read = BytesMut::from(&bytes[*len..]),
            Ok(Some(_)) => {}
            _ => {
                self.read = bytes
                    .try_into_mut()
                    .unwrap_or_else(|b| BytesMut::from(&b[..]))
            }
        }
        parsed.map(|p| p.map(|(head, _)| head))
    }

    /// Reads more into the buffer; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.read.capacity() - self.read.len() < self.step / 2 {
            self.read.reserve(self.step);
        }
        let spare = self.read.capacity() - self.read.len();
        let read = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.io),
            cx,
            &mut self.read
        ));
        if matches!(read, Ok(n) if n == spare) {
            self.step = (self.step * 2).min(MAX_STEP);
        }
        Poll::Ready(read)
    }

    /// Ready for the pool: nothing left over, and no buffer kept while idle (a pool of a
    /// thousand idle connections would otherwise hold a thousand read buffers).
    fn idle(mut self) -> Option<Conn> {
        if !self.read.is_empty() {
            return None;
        }
        self.read = BytesMut::new();
        self.write = BytesMut::new();
        self.step = FIRST_STEP;
        Some(self)
    }

    /// After a 101: the raw stream, with what was already read after the head.
    pub fn upgrade(self) -> Upgraded {
        Upgraded {
            leftover: self.read.freeze(),
            io: self.io,
            _slot: self._slot,
        }
    }
}

/// Where writing a streamed request body is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sending {
    Body,
    /// The body ended; the last bytes (a chunked body's terminator) are being written.
    Last,
    Done,
}

/// One chunk of a chunked body: size line, data, CRLF.
fn chunk(data: &Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 20);
    use std::fmt::Write as _;
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out.freeze()
}

/// Where a connection goes when its response ended cleanly.
pub trait Home {
    fn give_back(&self, conn: Conn);
}

/// A response body read from its connection as the client reads it.
pub struct Body<H: Home> {
    conn: Option<Conn>,
    decoder: Decoder,
    keep_alive: bool,
    home: Option<H>,
}

impl<H: Home> Body<H> {
    pub fn new(conn: Conn, head: &ResponseHead, home: H) -> Body<H> {
        Body {
            conn: Some(conn),
            decoder: Decoder::new(head.framing),
            keep_alive: head.keep_alive,
            home: Some(home),
        }
    }

    /// The connection of a 101 response, for the tunnel.
    pub fn upgrade(mut self) -> Option<Upgraded> {
        self.home = None;
        self.conn.take().map(Conn::upgrade)
    }

    fn finish(&mut self) {
        let (Some(conn), Some(home)) = (self.conn.take(), self.home.take()) else {
            return;
        };
        if self.keep_alive {
            if let Some(conn) = conn.idle() {
                home.give_back(conn);
            }
        }
    }
}

impl<H: Home> Drop for Body<H> {
    fn drop(&mut self) {
        // A body that ended without being polled to its end (no bytes, or hyper knew the
        // length) still leaves its connection ready.
        if self.decoder.is_done() {
            self.finish();
        }
    }
}

impl<H: Home + Unpin> hyper::body::Body for Body<H> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(conn) = this.conn.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(poll_decoded(cx, &mut this.decoder, conn)) {
            Ok(Some(frame)) => Poll::Ready(Some(Ok(frame))),
            Ok(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Err(e) => {
                // The connection is in an unknown state: it closes with this body.
                this.conn = None;
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A connection a body is read from: its buffer, and more read into it.
pub(crate) trait Source {
    fn buf(&mut self) -> &mut BytesMut;
    /// Reads more into the buffer; `Ok(0)` at the end of the stream.
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>>;
}

impl Source for Conn {
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.read
    }

    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        self.poll_fill(cx)
    }
}

/// The next frame of a body, decoded from `source`'s buffer and read as the decoder needs:
/// `Ok(None)` when the body ended. After an error the connection's state is unknown.
pub(crate) fn poll_decoded<S: Source>(
    cx: &mut Context<'_>,
    decoder: &mut Decoder,
    source: &mut S,
) -> Poll<Result<Option<Frame<Bytes>>, BoxError>> {
    loop {
        let decoded = match decoder.decode(source.buf()) {
            Ok(Decoded::More) => match ready!(source.poll_more(cx)) {
                Ok(0) => decoder.eof(),
                Ok(_) => continue,
                Err(e) => return Poll::Ready(Err(e.into())),
            },
            other => other,
        };
        return Poll::Ready(match decoded {
            Ok(Decoded::Data(b)) => Ok(Some(Frame::data(b))),
            Ok(Decoded::Trailers(t)) => Ok(Some(Frame::trailers(t))),
            Ok(Decoded::End) => Ok(None),
            Ok(Decoded::More) => continue,
            Err(e) => Err(e.into()),
        });
    }
}

/// An upgraded connection (after 101): bytes already read come first.
pub struct Upgraded {
    leftover: Bytes,
    io: Stream,
    _slot: Box<dyn Send + Sync>,
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.leftover.is_empty() {
            let n = self.leftover.len().min(buf.remaining());
            buf.put_slice(&self.leftover[..n]);
            self.leftover.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
