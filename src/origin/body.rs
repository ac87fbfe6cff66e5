//! Reading an origin response body according to its framing (Content-Length, chunked, or until close),
//! one piece at a time as bytes arrive.
//!
//! Invariants: `next` returns `Ok(None)` only when the body is complete per its framing; a connection
//! that closes early is `Err(Truncated)` (never a clean end); a chunked body must end with its last
//! chunk. The connection returns to the pool only after a complete, keep-alive body.

use super::error::OriginError;
use super::pool::{Origin, OriginConn};
use crate::http::chunked::{ChunkedDecoder, ChunkedEvent};
use crate::http::framing::BodyFraming;
use crate::http::response::ResponseHead;
use bytes::Bytes;
use std::rc::Rc;

enum State {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// The body of one origin response.
pub struct OriginBody {
    conn: Option<OriginConn>,
    origin: Rc<Origin>,
    state: State,
    keep_alive: bool,
    declared: Option<u64>,
}

impl OriginBody {
    pub(crate) fn new(conn: OriginConn, origin: Rc<Origin>, head: &ResponseHead) -> Self {
        let (state, declared) = match head.framing {
            BodyFraming::None => (State::Done, None),
            BodyFraming::Length(0) => (State::Done, Some(0)),
            BodyFraming::Length(n) => (State::Length(n), Some(n)),
            BodyFraming::Chunked => (State::Chunked(ChunkedDecoder::new()), None),
            BodyFraming::UntilClose => (State::UntilClose, None),
        };
        let mut body = OriginBody {
            conn: Some(conn),
            origin,
            state,
            keep_alive: head.keep_alive,
            declared,
        };
        if matches!(body.state, State::Done) {
            body.finish();
        }
        body
    }

    /// The body length the origin declared (Content-Length), if any.
    pub fn declared_length(&self) -> Option<u64> {
        self.declared
    }

    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take() {
            if self.keep_alive {
                self.origin.checkin(conn);
            }
        }
    }

    /// The next piece of the body; `Ok(None)` at its complete end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, OriginError> {
        let read_timeout = self.origin.settings.read_timeout;
        loop {
            let conn = match (&self.state, self.conn.as_mut()) {
                (State::Done, _) => return Ok(None),
                (_, Some(c)) => c,
                (_, None) => return Err(OriginError::Truncated),
            };
            match &mut self.state {
                State::Done => return Ok(None),
                State::Length(remaining) => {
                    if !conn.buf.is_empty() {
                        let take = (*remaining).min(conn.buf.len() as u64) as usize;
                        let piece = conn.buf.split_to(take).freeze();
                        *remaining -= take as u64;
                        if *remaining == 0 {
                            self.finish();
                        }
                        return Ok(Some(piece));
                    }
                }
                State::Chunked(dec) => match dec.next(&mut conn.buf) {
                    Ok(ChunkedEvent::Data(b)) => return Ok(Some(b)),
                    Ok(ChunkedEvent::Done) => {
                        self.finish();
                        return Ok(None);
                    }
                    Ok(ChunkedEvent::NeedMore) => {}
                    Err(_) => {
                        self.conn = None;
                        return Err(OriginError::Malformed("bad chunked encoding"));
                    }
                },
                State::UntilClose => {
                    if !conn.buf.is_empty() {
                        let piece = conn.buf.split().freeze();
                        return Ok(Some(piece));
                    }
                }
            }
            let conn = self.conn.as_mut().ok_or(OriginError::Truncated)?;
            match conn.fill(read_timeout, OriginError::ReadTimeout).await {
                Ok(0) => {
                    self.conn = None;
                    if matches!(self.state, State::UntilClose) {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    return Err(OriginError::Truncated);
                }
                Ok(_) => {}
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
    }
}
