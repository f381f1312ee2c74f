//! HTTP/1.1 from clients, on the connection's own task. The request head is parsed with
//! `httparse` where it was read (the target and header values point into those bytes); a
//! request body is decoded from the connection as the handler reads it (`decode`); the handler's
//! future is boxed per request, not per connection; the response head goes out with a small
//! body in one write. Between requests a connection holds its task and its socket, no buffer:
//! hyper's server kept a 16 KiB read buffer, an 8 KiB write buffer and the boxed handler for
//! as long as a connection lived, which was most of sluice's memory at 1,000 connections.
use super::decode::{Decoded, Decoder};
use super::head::{body_framing, has_token, Framing};
use super::Stream;
use crate::body::{BoxError, Inbound};
use crate::l4::Rewind;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, DATE, EXPECT, TRANSFER_ENCODING,
};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Frame, SizeHint};
use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// A client's connection: TCP, or TLS terminated here (after a peeked ClientHello).
pub type ClientStream = Stream<tokio_rustls::server::TlsStream<Rewind<tokio::net::TcpStream>>>;

/// What a client's request heads must stay within.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Request line and headers, in bytes; more → 431.
    pub head_bytes: usize,
    /// Header fields; more → 431 (at most `SLOTS`).
    pub headers: usize,
    /// Time for a request head to arrive: from accept for the first request, from the end of
    /// the previous response for the next (so it also closes idle connections).
    pub head_timeout: Duration,
}

/// Header fields parsed at most; a configured limit above it is this.
const SLOTS: usize = 256;
/// Reading a head reserves this much at first (nginx's client header buffer is 1 KiB too);
/// a longer head doubles the buffer on each read.
pub const HEAD_STEP: usize = 1024;
/// Body bytes are read in steps of this much.
const READ_STEP: usize = 8 * 1024;
/// Response data below this size is copied into the pending write (head and small bodies go
/// out in one write); larger data is written as it is.
const COPY_BELOW: usize = 16 * 1024;
/// A request body the handler left unread is drained, from what already arrived, up to this
/// much to keep the connection; beyond it the connection closes.
const DRAIN: usize = 64 * 1024;

/// The read side of a connection and what was read from it but not yet used.
struct Reader {
    io: ReadHalf<ClientStream>,
    buf: BytesMut,
}

impl super::Source for Reader {
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        self.poll_fill(cx, READ_STEP)
    }
}

impl Reader {
    /// Reads more into the buffer; `Ok(0)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>, step: usize) -> Poll<std::io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < step / 4 {
            self.buf.reserve(step);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }
}

/// Where a request body returns the read side to its connection, with how far it read.
type Home = Arc<Mutex<Option<(Reader, Decoder)>>>;

/// A request body, read from the client's connection as the handler reads it. When it ends
/// or is dropped, the read side goes back to the connection.
pub struct ClientBody {
    reader: Option<Reader>,
    decoder: Decoder,
    home: Home,
}

impl ClientBody {
    fn give_back(&mut self) {
        if let Some(reader) = self.reader.take() {
            *self.home.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((reader, self.decoder));
        }
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(reader) = this.reader.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(super::poll_decoded(cx, &mut this.decoder, reader)) {
            Ok(Some(frame)) => Poll::Ready(Some(Ok(frame))),
            Ok(None) => {
                this.give_back();
                Poll::Ready(None)
            }
            Err(e) => {
                // The connection is in an unknown state: it closes after this request.
                this.reader = None;
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

/// A client's connection after a 101: bytes it sent after the request come first.
pub type Upgraded = Rewind<ClientStream>;

/// In the extensions of a request that asks to switch protocols: the connection, handed over
/// once a 101 answer has been written. (Extensions must be `Clone`; only one taker gets it.)
#[derive(Clone)]
pub struct OnUpgrade(Arc<Mutex<Option<oneshot::Receiver<Upgraded>>>>);

impl OnUpgrade {
    /// The switched connection; `None` if the answer was not a 101 or the client left.
    pub async fn get(self) -> Option<Upgraded> {
        let rx = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        rx.await.ok()
    }
}

/// A request head refused before routing; the connection closes after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Malformed,
    TooLarge,
}

/// A parsed request head.
struct Head {
    request: Request<()>,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

/// Parses the request head at the start of `buf`. A complete head leaves `buf` (its target
/// and header values keep pointing into the bytes read); what follows it stays in `buf`.
fn parse_head(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Head>, Refusal> {
    let bytes = std::mem::take(buf).freeze();
    match parse_frozen(&bytes, limits)? {
        Some((head, len)) => {
            let rest = &bytes[len..];
            if !rest.is_empty() {
                *buf = BytesMut::from(rest);
            }
            Ok(Some(head))
        }
        None => {
            *buf = bytes
                .try_into_mut()
                .unwrap_or_else(|b| BytesMut::from(&b[..]));
            Ok(None)
        }
    }
}

fn parse_frozen(bytes: &Bytes, limits: &Limits) -> Result<Option<(Head, usize)>, Refusal> {
    // Uninitialised slots: setting 256 empty headers per request cost more than parsing.
    let mut slots = [const { MaybeUninit::uninit() }; SLOTS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(bytes, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if bytes.len() > limits.head_bytes => {
            return Err(Refusal::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooLarge),
        Err(_) => return Err(Refusal::Malformed),
    };
    if len > limits.head_bytes || parsed.headers.len() > limits.headers {
        return Err(Refusal::TooLarge);
    }
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| Refusal::Malformed)?;
    let target = parsed.path.unwrap_or_default().as_bytes();
    let uri = Uri::from_maybe_shared(bytes.slice_ref(target)).map_err(|_| Refusal::Malformed)?;
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    // Room for the headers the gateway adds (forwarding, request id) without a rehash.
    let mut headers = HeaderMap::with_capacity(parsed.headers.len() + 8);
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| Refusal::Malformed)?;
        let value = HeaderValue::from_maybe_shared(bytes.slice_ref(h.value))
            .map_err(|_| Refusal::Malformed)?;
        headers.append(name, value);
    }
    // RFC 9112 §6.1: Transfer-Encoding is HTTP/1.1's; a request whose body cannot be delimited
    // (a final coding other than chunked) is refused.
    let framing = match body_framing(&headers).map_err(|_| Refusal::Malformed)? {
        Some(Framing::Close) => return Err(Refusal::Malformed),
        Some(_) if version == Version::HTTP_10 && headers.contains_key(TRANSFER_ENCODING) => {
            return Err(Refusal::Malformed)
        }
        Some(framing) => framing,
        None => Framing::Empty,
    };
    if let Framing::Length(n) = framing {
        // A list (`5, 5`) or a repeated header is one length to us; the backend gets it once,
        // never in a form it could read differently.
        let mut values = headers.get_all(CONTENT_LENGTH).iter();
        let single = values.next().is_some_and(|v| !v.as_bytes().contains(&b','));
        if !single || values.next().is_some() {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
        }
    }
    let connection = |token: &[u8]| {
        headers
            .get_all(CONNECTION)
            .iter()
            .any(|v| has_token(v.as_bytes(), token))
    };
    let keep_alive =
        !connection(b"close") && (version == Version::HTTP_11 || connection(b"keep-alive"));
    // Envoy answers `100 Continue` itself and does not pass the expectation on.
    let expect_continue = version == Version::HTTP_11
        && framing != Framing::Empty
        && headers
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expect_continue {
        headers.remove(EXPECT);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    let head = Head {
        request,
        framing,
        keep_alive,
        expect_continue,
    };
    Ok(Some((head, len)))
}

/// A request head from the start of `buf` as the server reads it (for the fuzz target): the
/// request and its body's framing, `Ok(None)` while incomplete, or the status it is refused with.
pub fn parse_request_head(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<(Request<()>, Framing)>, StatusCode> {
    match parse_head(buf, limits) {
        Ok(head) => Ok(head.map(|h| (h.request, h.framing))),
        Err(Refusal::Malformed) => Err(StatusCode::BAD_REQUEST),
        Err(Refusal::TooLarge) => Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
    }
}

/// What a connection waits on between requests, made once per connection: the timer (moved
/// only when it fires before the current deadline, so a request does not touch the timer
/// wheel) and the listener's drain signal (registered once, not per request).
struct Waiting<T, D> {
    timer: T,
    deadline: Instant,
    drained: D,
    draining: bool,
}

/// Waits for the next request head: `Ok(None)` when the client closes or goes quiet past the
/// deadline, or the listener drains while no request has started.
async fn next_head<D: Future<Output = ()>>(
    reader: &mut Reader,
    limits: &Limits,
    waiting: &mut Waiting<Pin<&mut tokio::time::Sleep>, Pin<&mut D>>,
) -> Result<Option<Head>, Refusal> {
    loop {
        if !reader.buf.is_empty() {
            if let Some(head) = parse_head(&mut reader.buf, limits)? {
                return Ok(Some(head));
            }
        }
        let idle = reader.buf.is_empty();
        if idle && waiting.draining {
            return Ok(None);
        }
        let read = tokio::select! {
            biased;
            read = std::future::poll_fn(|cx| {
                let step = HEAD_STEP.max(reader.buf.len());
                reader.poll_fill(cx, step)
            }) => read,
            () = waiting.drained.as_mut(), if idle && !waiting.draining => {
                waiting.draining = true;
                return Ok(None);
            }
            () = waiting.timer.as_mut() => {
                if Instant::now() >= waiting.deadline {
                    return Ok(None);
                }
                let deadline = waiting.deadline;
                waiting.timer.as_mut().reset(deadline);
                continue;
            }
        };
        if !matches!(read, Ok(n) if n > 0) {
            return Ok(None);
        }
    }
}

/// Resolves once the listener drains (or is gone).
pub async fn drained(signal: &mut watch::Receiver<bool>) {
    let _ = signal.wait_for(|draining| *draining).await;
}

/// Serves HTTP/1.1 requests on `stream` until the client closes, a request ends the
/// connection, or the listener drains. `read`: bytes already read (the protocol sniff's);
/// `deadline`: when the first request head must have arrived by.
pub async fn serve<F, Fut, B>(
    stream: ClientStream,
    read: BytesMut,
    limits: &Limits,
    deadline: Instant,
    mut drain: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(Request<Inbound>) -> Fut,
    Fut: Future<Output = Response<B>> + Send,
    B: Body<Data = Bytes>,
{
    let (io, mut writer) = tokio::io::split(stream);
    let mut reader = Some(Reader { io, buf: read });
    // Made for the first request with a body, then reused.
    let mut away: Option<Home> = None;
    let signal = drain.clone();
    let drained = std::pin::pin!(drained(&mut drain));
    let timer = std::pin::pin!(tokio::time::sleep_until(deadline));
    let mut waiting = Waiting {
        timer,
        deadline,
        drained,
        draining: false,
    };
    loop {
        let Some(r) = reader.as_mut() else { return };
        let head = match next_head(r, limits, &mut waiting).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(refused) => return refuse(&mut writer, refused).await,
        };
        if head.expect_continue {
            let mut interim = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]);
            if flush(&mut writer, &mut interim).await.is_err() {
                return;
            }
        }
        let Head {
            request,
            framing,
            keep_alive,
            ..
        } = head;
        let method_head = request.method() == Method::HEAD;
        let old_client = request.version() == Version::HTTP_10;
        let upgrade =
            (!old_client && crate::headers::is_upgrade(request.headers())).then(oneshot::channel);
        let body = match framing {
            Framing::Empty => Inbound::Empty,
            framing => Inbound::H1(ClientBody {
                reader: reader.take(),
                decoder: Decoder::new(framing),
                home: away.get_or_insert_with(Home::default).clone(),
            }),
        };
        let mut request = request.map(|()| body);
        let handover = upgrade.map(|(tx, rx)| {
            let on = OnUpgrade(Arc::new(Mutex::new(Some(rx))));
            request.extensions_mut().insert(on);
            tx
        });
        let mut handling = Box::pin(handler(request));
        let response = match reader.as_mut() {
            Some(r) => match unless_gone(handling.as_mut(), r).await {
                Some(response) => response,
                None => return,
            },
            None => handling.await,
        };
        let (mut parts, body) = response.into_parts();
        let switching = parts.status == StatusCode::SWITCHING_PROTOCOLS && handover.is_some();
        // The request body's read side comes back before the head is written, so that the head
        // can say `connection: close` when the body cannot be skipped.
        if reader.is_none() {
            reader = reclaim(away.as_ref());
        }
        let mut close = !switching
            && (!keep_alive
                || *signal.borrow()
                || reader.is_none()
                || parts
                    .headers
                    .get_all(CONNECTION)
                    .iter()
                    .any(|v| has_token(v.as_bytes(), b"close")));
        let mut framing = if switching {
            Out::Nothing(None)
        } else {
            response_framing(&parts, &body, method_head, old_client)
        };
        if parts.status.is_informational() && !switching {
            // An interim status as the final answer would leave the client waiting for one.
            parts.status = StatusCode::INTERNAL_SERVER_ERROR;
            parts.headers.clear();
            framing = Out::Length(0);
            close = true;
        }
        close |= framing == Out::UntilClose;
        let mut out = BytesMut::new();
        write_head(&mut out, &parts, framing, close, old_client && keep_alive);
        if write_body(&mut writer, &mut out, body, framing)
            .await
            .is_err()
        {
            return;
        }
        if switching {
            if let (Some(tx), Some(r)) = (handover, reader) {
                let _ = tx.send(Rewind::new(r.buf.to_vec(), r.io.unsplit(writer)));
            }
            return;
        }
        let Some(r) = reader.as_mut().filter(|_| !close) else {
            let _ = writer.shutdown().await;
            return;
        };
        if r.buf.is_empty() {
            // A body's reads grew the buffer: nothing is kept while the connection idles.
            r.buf = BytesMut::new();
        }
        waiting.deadline = Instant::now() + limits.head_timeout;
    }
}

/// Runs the handler while watching the client's side: a client that closes (or resets) its
/// connection before the answer drops the request, and with it the upstream exchange, as hyper
/// did (the record says DC). Bytes that arrive meanwhile (a pipelined request) are kept.
async fn unless_gone<F: Future>(
    mut handling: Pin<&mut F>,
    reader: &mut Reader,
) -> Option<F::Output> {
    let mut watching = true;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = handling.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if watching {
            // A small probe on the stack: no buffer is reserved for a request in flight.
            let mut probe = [0u8; 256];
            let mut probe = ReadBuf::new(&mut probe);
            match Pin::new(&mut reader.io).poll_read(cx, &mut probe) {
                Poll::Ready(Ok(())) if probe.filled().is_empty() => return Poll::Ready(None),
                Poll::Ready(Ok(())) => {
                    reader.buf.extend_from_slice(probe.filled());
                    watching = false;
                }
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

/// The read side back from a request body. A body the handler did not read to its end is
/// decoded from what has already arrived, up to `DRAIN` bytes; if it does not end there, the
/// connection closes (`None`).
fn reclaim(home: Option<&Home>) -> Option<Reader> {
    let (mut reader, mut decoder) = home?
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()?;
    let mut drained = 0;
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        match decoder.decode(&mut reader.buf) {
            Ok(Decoded::End) => return Some(reader),
            Ok(Decoded::Data(data)) => {
                drained += data.len();
                if drained > DRAIN {
                    return None;
                }
            }
            Ok(Decoded::Trailers(_)) => {}
            Ok(Decoded::More) => match reader.poll_fill(&mut cx, READ_STEP) {
                Poll::Ready(Ok(n)) if n > 0 => {}
                _ => return None,
            },
            Err(_) => return None,
        }
    }
}

/// How a response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// No body bytes: HEAD, 1xx, 204, 304 (a body given is read and dropped). A HEAD answer
    /// announces the length its body has, when the response does not say it itself.
    Nothing(Option<u64>),
    Length(u64),
    Chunked,
    /// An HTTP/1.0 client and a body of unknown length: it ends with the connection.
    UntilClose,
}

fn response_framing<B: Body>(
    parts: &http::response::Parts,
    body: &B,
    method_head: bool,
    old_client: bool,
) -> Out {
    let status = parts.status;
    let hint = body.size_hint();
    if method_head {
        let declared = parts.headers.contains_key(CONTENT_LENGTH);
        return Out::Nothing(hint.exact().filter(|_| !declared));
    }
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Out::Nothing(None);
    }
    if let Some(n) = hint.exact() {
        return Out::Length(n);
    }
    match body_framing(&parts.headers) {
        Ok(Some(Framing::Length(n))) => return Out::Length(n),
        Ok(Some(Framing::Empty)) => return Out::Length(0),
        _ => {}
    }
    if old_client {
        Out::UntilClose
    } else {
        Out::Chunked
    }
}

/// Writes the status line and headers: the framing's own header (any the response carried
/// are replaced), `connection` when it closes or an HTTP/1.0 client keeps it, and `date` when
/// the response has none.
fn write_head(
    out: &mut BytesMut,
    parts: &http::response::Parts,
    framing: Out,
    close: bool,
    keep_alive_10: bool,
) {
    let status = parts.status;
    let size = parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + 128;
    out.reserve(size);
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.put_slice(b"\r\n");
    // A HEAD or 304 answer keeps the length the full response would have.
    let keep_length = matches!(framing, Out::Nothing(_))
        && status != StatusCode::NO_CONTENT
        && !status.is_informational();
    for (name, value) in &parts.headers {
        if name == TRANSFER_ENCODING || (name == CONTENT_LENGTH && !keep_length) {
            continue;
        }
        if name == CONNECTION && (close || keep_alive_10) {
            continue;
        }
        super::head::put_field(out, name, value);
    }
    match framing {
        // Writing to a BytesMut cannot fail.
        Out::Length(n) | Out::Nothing(Some(n)) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Out::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
        Out::Nothing(None) | Out::UntilClose => {}
    }
    if close {
        out.put_slice(b"connection: close\r\n");
    } else if keep_alive_10 {
        out.put_slice(b"connection: keep-alive\r\n");
    }
    if !parts.headers.contains_key(DATE) {
        out.put_slice(b"date: ");
        with_date(|date| out.put_slice(date));
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

/// Why a response could not be written to its end; the connection closes.
#[derive(Debug)]
struct Cut;

/// Writes the body after the head already in `out`: small data joins the pending write, which
/// goes out whenever the body has nothing ready (a streamed head is not held back).
async fn write_body<B: Body<Data = Bytes>>(
    writer: &mut WriteHalf<ClientStream>,
    out: &mut BytesMut,
    body: B,
    framing: Out,
) -> Result<(), Cut> {
    let mut body = std::pin::pin!(body);
    let mut left = match framing {
        Out::Length(n) => n,
        _ => u64::MAX,
    };
    loop {
        let polled = std::future::poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await;
        let frame = match polled {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                flush(writer, out).await?;
                std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(_)) => return Err(Cut),
            // Trailers are not sent over HTTP/1.1 (no client asked for them with `TE`).
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        if data.is_empty() || matches!(framing, Out::Nothing(_)) {
            continue;
        }
        let len = data.len() as u64;
        if len > left {
            return Err(Cut);
        }
        left -= len;
        if framing == Out::Chunked {
            let _ = write!(out, "{len:x}\r\n");
        }
        if data.len() < COPY_BELOW {
            out.extend_from_slice(&data);
        } else {
            flush(writer, out).await?;
            writer.write_all(&data).await.map_err(|_| Cut)?;
        }
        if framing == Out::Chunked {
            out.put_slice(b"\r\n");
        }
        if out.len() >= COPY_BELOW {
            flush(writer, out).await?;
        }
    }
    match framing {
        Out::Length(_) if left != 0 => return Err(Cut),
        Out::Chunked => out.put_slice(b"0\r\n\r\n"),
        _ => {}
    }
    flush(writer, out).await
}

async fn flush<W: AsyncWrite + Unpin>(writer: &mut W, out: &mut BytesMut) -> Result<(), Cut> {
    if !out.is_empty() {
        writer.write_all(out).await.map_err(|_| Cut)?;
        out.clear();
    }
    writer.flush().await.map_err(|_| Cut)
}

/// Answers a refused head and closes, as hyper did: 400 or 431, no body.
async fn refuse<W: AsyncWrite + Unpin>(writer: &mut W, refused: Refusal) {
    let status = match refused {
        Refusal::Malformed => StatusCode::BAD_REQUEST,
        Refusal::TooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    };
    let mut out = BytesMut::new();
    let parts = Response::builder()
        .status(status)
        .body(())
        .expect("a status makes a response")
        .into_parts()
        .0;
    write_head(&mut out, &parts, Out::Length(0), true, false);
    if flush(writer, &mut out).await.is_ok() {
        let _ = writer.shutdown().await;
    }
}

/// The `date` header's value, formatted once a second per thread.
fn with_date(f: impl FnOnce(&[u8])) {
    thread_local! {
        static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != second {
            let formatted = httpdate::fmt_http_date(now);
            if formatted.len() == text.len() {
                text.copy_from_slice(formatted.as_bytes());
                *at = second;
            }
        }
        f(&text[..])
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            head_bytes: 1024,
            headers: 8,
            head_timeout: Duration::from_secs(1),
        }
    }

    fn parse(text: &[u8]) -> Result<Option<Head>, Refusal> {
        let mut buf = BytesMut::from(text);
        parse_head(&mut buf, &limits())
    }

    #[test]
    fn heads_parse_with_their_framing_and_leave_what_follows() {
        let mut buf = BytesMut::from(
            &b"POST /a?b HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabcGET"[..],
        );
        let head = parse_head(&mut buf, &limits()).unwrap().unwrap();
        assert_eq!(head.request.uri(), "/a?b");
        assert_eq!(head.request.headers()["host"], "x");
        assert_eq!(head.framing, Framing::Length(3));
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"abcGET");
        let partial = &b"GET / HTTP/1.1\r\nhost: x\r\n"[..];
        let mut buf = BytesMut::from(partial);
        assert!(parse_head(&mut buf, &limits()).unwrap().is_none());
        assert_eq!(&buf[..], partial, "a partial head stays as it was read");

        let chunked = parse(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(chunked.unwrap().unwrap().framing, Framing::Chunked);
        let old = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!old.keep_alive);
        let old = parse(b"GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n");
        assert!(old.unwrap().unwrap().keep_alive);
        let close = parse(b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n");
        assert!(!close.unwrap().unwrap().keep_alive);
        let expect = parse(b"PUT / HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(expect.expect_continue);
        assert!(!expect.request.headers().contains_key(EXPECT));
    }

    #[test]
    fn ambiguous_oversized_or_malformed_heads_are_refused() {
        for bad in [
            &b"POST / HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked, chunked\r\n\r\n",
            b"POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nx-a: b\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nx a: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nx-a: b\x7f\r\n\r\n",
            b"GET / HTTP/1.1\r\nx-a: b\0\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\n\rx: y\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad).err(),
                Some(Refusal::Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let many: String = (0..9).map(|i| format!("x-{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse(many.as_bytes()).err(), Some(Refusal::TooLarge));
        let long = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(1100));
        assert_eq!(parse(long.as_bytes()).err(), Some(Refusal::TooLarge));
    }

    fn head_of(status: u16, headers: &[(&str, &str)], framing: Out, close: bool) -> String {
        let mut builder = Response::builder().status(status);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let parts = builder.body(()).unwrap().into_parts().0;
        let mut out = BytesMut::new();
        write_head(&mut out, &parts, framing, close, false);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn response_heads_carry_the_framing_written_not_the_one_given() {
        let h = head_of(
            200,
            &[
                ("content-length", "99"),
                ("transfer-encoding", "chunked"),
                ("x", "y"),
            ],
            Out::Length(5),
            false,
        );
        assert!(h.starts_with("HTTP/1.1 200 OK\r\nx: y\r\ncontent-length: 5\r\ndate: "));
        assert!(h.ends_with(" GMT\r\n\r\n"), "{h}");
        let h = head_of(200, &[("date", "then")], Out::Chunked, true);
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\ndate: then\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        let h = head_of(
            304,
            &[("content-length", "7"), ("date", "d")],
            Out::Nothing(None),
            false,
        );
        assert_eq!(
            h,
            "HTTP/1.1 304 Not Modified\r\ncontent-length: 7\r\ndate: d\r\n\r\n"
        );
    }
}
