//! One HTTP/2 stream seen as an HTTP/1.1 byte stream, so that every cache behaviour (hits, streaming
//! misses, collapsing, ranges, conditionals, errors) runs through the one request path and is the same
//! over both protocols.
//!
//! Reading yields the request body (chunked-encoded when the viewer gave no Content-Length), with
//! flow-control capacity released as it is consumed. Writing takes the HTTP/1.1 response Verge
//! produced: its head becomes a HEADERS frame (connection-specific fields dropped, RFC 9113 §8.2.2),
//! its body (Content-Length, chunked or close-delimited) becomes DATA frames sent only as the peer's
//! flow-control window allows, so a stalled viewer stalls its writer (and the writer's timeout ends
//! it) instead of growing a buffer. A whole-object hit may skip the HTTP/1.1 head: `send_head`
//! takes its fields ready-made and `send_body` its stored body pieces, without copies.
//!
//! Invariants: END_STREAM is sent only after a complete body (all declared bytes, or the last
//! chunk); closing the stream earlier resets it (RST_STREAM INTERNAL_ERROR), so a cut fill is never
//! presented as complete; at most one write call's worth of body is buffered here.

use crate::http::chunked::{write_chunk_header, ChunkedDecoder, ChunkedEvent, CHUNK_TRAILER};
use crate::http::framing::{BodyFraming, HeadLimits};
use crate::http::h2_fields::from_headers;
use crate::http::response::parse_response;
use bytes::{Bytes, BytesMut};
use futures_lite::io::{AsyncRead, AsyncWrite};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Where the response written so far stands.
enum Resp {
    /// Collecting the head.
    Head(BytesMut),
    /// This many body bytes still to come.
    Length(u64),
    Chunked(ChunkedDecoder, BytesMut),
    UntilClose,
    /// The body is complete (END_STREAM queued or sent).
    Done,
    /// Reset or failed: further writes are errors.
    Broken,
}

/// A viewer's HTTP/2 stream as a byte stream (see the module doc).
pub struct H2Stream {
    /// The viewer came over TLS.
    pub secure: bool,
    body: RecvStream,
    chunk_request: bool,
    request_done: bool,
    read_pending: Bytes,
    respond: Option<SendResponse<Bytes>>,
    send: Option<SendStream<Bytes>>,
    request_was_head: bool,
    limits: HeadLimits,
    resp: Resp,
    pending: VecDeque<Bytes>,
    /// END_STREAM goes with the last pending piece.
    end_after_pending: bool,
    ended: bool,
    reset_sent: bool,
}

fn broken(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, e.to_string())
}

impl H2Stream {
    /// `chunk_request`: the request body has no Content-Length and is handed up chunked-encoded.
    pub fn new(
        body: RecvStream,
        chunk_request: bool,
        respond: SendResponse<Bytes>,
        request_was_head: bool,
        limits: HeadLimits,
        secure: bool,
    ) -> Self {
        let request_done = body.is_end_stream();
        H2Stream {
            secure,
            body,
            chunk_request,
            request_done,
            read_pending: Bytes::new(),
            respond: Some(respond),
            send: None,
            request_was_head,
            limits,
            resp: Resp::Head(BytesMut::new()),
            pending: VecDeque::new(),
            end_after_pending: false,
            ended: false,
            reset_sent: false,
        }
    }

    /// Sends a response head built by the caller (the HTTP/2 hit path), in place of an HTTP/1.1 head
    /// written to this stream. `body_len`: the body that follows through `send_body`; 0 ends the
    /// stream with the HEADERS.
    pub fn send_head(
        &mut self,
        status: u16,
        fields: http::HeaderMap,
        body_len: u64,
    ) -> io::Result<()> {
        if !matches!(&self.resp, Resp::Head(b) if b.is_empty()) {
            return Err(broken("response head already started"));
        }
        self.send_headers(status, fields, body_len == 0)?;
        self.resp = if body_len == 0 {
            Resp::Done
        } else {
            Resp::Length(body_len)
        };
        Ok(())
    }

    /// Sends the HEADERS frame (with END_STREAM when `end`), after which the body goes to `send`.
    fn send_headers(&mut self, status: u16, fields: http::HeaderMap, end: bool) -> io::Result<()> {
        let mut resp = http::Response::new(());
        *resp.status_mut() = http::StatusCode::from_u16(status).map_err(broken)?;
        *resp.headers_mut() = fields;
        let respond = self
            .respond
            .as_mut()
            .ok_or_else(|| broken("response sent twice"))?;
        let send = respond.send_response(resp, end).map_err(broken)?;
        self.respond = None;
        self.send = Some(send);
        self.ended = end;
        Ok(())
    }

    /// Sends one piece of the body announced by `send_head`, without copying it, waiting at most
    /// `timeout` for the viewer's flow-control window. The piece that completes the body ends the
    /// stream.
    pub async fn send_body(&mut self, piece: Bytes, timeout: Duration) -> io::Result<()> {
        let Resp::Length(rem) = &mut self.resp else {
            return Err(broken("no body expected"));
        };
        if piece.len() as u64 > *rem {
            return Err(broken("body longer than announced"));
        }
        *rem -= piece.len() as u64;
        if *rem == 0 {
            self.resp = Resp::Done;
            self.end_after_pending = true;
        }
        self.pending.push_back(piece);
        super::transport::with_timeout(
            timeout,
            futures_lite::future::poll_fn(|cx| self.poll_drain(cx)),
        )
        .await
    }

    /// Parses the response head once complete and sends it; leftover bytes go to the body.
    fn take_head(&mut self, data: &[u8]) -> io::Result<()> {
        let Resp::Head(buf) = &mut self.resp else {
            return Ok(());
        };
        buf.extend_from_slice(data);
        loop {
            let Resp::Head(buf) = &mut self.resp else {
                return Ok(());
            };
            let head = match parse_response(buf, &self.limits, self.request_was_head) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.resp = Resp::Broken;
                    return Err(broken(e));
                }
            };
            if head.status < 200 {
                continue; // 100 Continue and friends: not forwarded
            }
            let rest = buf.split();
            // Values share the head's buffer.
            let fields = from_headers(&head.headers)
                .ok_or_else(|| broken("a response field HTTP/2 cannot carry"))?;
            let no_body = matches!(head.framing, BodyFraming::None | BodyFraming::Length(0));
            self.send_headers(head.status, fields, no_body)?;
            self.resp = match head.framing {
                _ if no_body => Resp::Done,
                BodyFraming::Length(n) => Resp::Length(n),
                BodyFraming::Chunked => Resp::Chunked(ChunkedDecoder::new(), BytesMut::new()),
                _ => Resp::UntilClose,
            };
            if !rest.is_empty() {
                self.take_body(&rest)?;
            }
            return Ok(());
        }
    }

    /// Queues body bytes as DATA pieces.
    fn take_body(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.resp {
            Resp::Length(rem) => {
                let take = (*rem).min(data.len() as u64) as usize;
                if take > 0 {
                    self.pending
                        .push_back(Bytes::copy_from_slice(&data[..take]));
                }
                *rem -= take as u64;
                if *rem == 0 {
                    self.resp = Resp::Done;
                    self.end_after_pending = true;
                }
            }
            Resp::Chunked(dec, input) => {
                input.extend_from_slice(data);
                loop {
                    match dec.next(input) {
                        Ok(ChunkedEvent::Data(b)) => self.pending.push_back(b),
                        Ok(ChunkedEvent::NeedMore) => break,
                        Ok(ChunkedEvent::Done) => {
                            self.resp = Resp::Done;
                            self.end_after_pending = true;
                            break;
                        }
                        Err(e) => {
                            self.resp = Resp::Broken;
                            return Err(broken(e));
                        }
                    }
                }
            }
            Resp::UntilClose => self.pending.push_back(Bytes::copy_from_slice(data)),
            Resp::Head(_) => unreachable!("body bytes before the head"),
            Resp::Done => {}
            Resp::Broken => return Err(broken("stream reset")),
        }
        Ok(())
    }

    /// Sends pending pieces as the flow-control window allows.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(send) = self.send.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while let Some(front) = self.pending.front_mut() {
            if front.is_empty() {
                self.pending.pop_front();
                continue;
            }
            if send.capacity() == 0 {
                send.reserve_capacity(front.len());
                match send.poll_capacity(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => return Poll::Ready(Err(broken("stream closed"))),
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(broken(e))),
                    Poll::Ready(Some(Ok(_))) => continue,
                }
            }
            let n = send.capacity().min(front.len());
            let piece = front.split_to(n);
            let last = front.is_empty() && self.pending.len() == 1 && self.end_after_pending;
            if let Err(e) = send.send_data(piece, last) {
                self.resp = Resp::Broken;
                return Poll::Ready(Err(broken(e)));
            }
            if last {
                self.ended = true;
            }
        }
        if self.end_after_pending && !self.ended {
            send.send_data(Bytes::new(), true).map_err(broken)?;
            self.ended = true;
        }
        Poll::Ready(Ok(()))
    }

    /// Resets the stream (INTERNAL_ERROR) unless it already ended or was reset.
    pub fn reset(&mut self) {
        if self.ended || self.reset_sent {
            return;
        }
        self.reset_sent = true;
        if let Some(r) = self.respond.as_mut() {
            r.send_reset(Reason::INTERNAL_ERROR);
        } else if let Some(s) = self.send.as_mut() {
            s.send_reset(Reason::INTERNAL_ERROR);
        }
        self.resp = Resp::Broken;
    }
}

impl Drop for H2Stream {
    fn drop(&mut self) {
        self.reset();
    }
}

impl AsyncRead for H2Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        loop {
            if !me.read_pending.is_empty() {
                let n = me.read_pending.len().min(buf.len());
                buf[..n].copy_from_slice(&me.read_pending.split_to(n));
                return Poll::Ready(Ok(n));
            }
            if me.request_done {
                return Poll::Ready(Ok(0));
            }
            match me.body.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(b))) => {
                    let _ = me.body.flow_control().release_capacity(b.len());
                    if b.is_empty() {
                        continue;
                    }
                    me.read_pending = if me.chunk_request {
                        let mut v = Vec::with_capacity(b.len() + 16);
                        write_chunk_header(b.len(), &mut v);
                        v.extend_from_slice(&b);
                        v.extend_from_slice(CHUNK_TRAILER);
                        Bytes::from(v)
                    } else {
                        b
                    };
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(broken(e))),
                Poll::Ready(None) => {
                    me.request_done = true;
                    if me.chunk_request {
                        me.read_pending = Bytes::from_static(b"0\r\n\r\n");
                    }
                }
            }
        }
    }
}

impl AsyncWrite for H2Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        match me.poll_drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|_| 0)),
        }
        if matches!(me.resp, Resp::Head(_)) {
            me.take_head(buf)?;
        } else {
            me.take_body(buf)?;
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drain(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if matches!(me.resp, Resp::UntilClose) {
            me.resp = Resp::Done;
            me.end_after_pending = true;
        }
        match me.poll_drain(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => {
                me.reset();
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Ok(())) => {}
        }
        if !me.ended {
            me.reset();
        }
        Poll::Ready(Ok(()))
    }
}
