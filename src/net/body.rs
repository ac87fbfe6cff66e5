//! Reading a viewer's request body (Content-Length or chunked) piece by piece, so that an upload is
//! streamed to the origin and never held whole.
//! Invariants: no more than the configured maximum is ever accepted; a body cut short by the viewer is
//! an error, never a complete body; after `Ok(None)` the read buffer starts at the next request.

use super::conn::ViewerConn;
use crate::http::chunked::{ChunkedDecoder, ChunkedEvent};
use crate::http::framing::BodyFraming;
use bytes::Bytes;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("request body larger than the limit")]
    TooLarge,
    #[error("malformed chunked request body")]
    Malformed,
    #[error("request body not received in time")]
    Timeout,
    #[error("the viewer closed the connection inside the request body")]
    Closed,
}

enum State {
    Length(u64),
    Chunked(ChunkedDecoder),
    Done,
}

/// The body of one viewer request.
pub struct RequestBody {
    state: State,
    received: u64,
    limit: u64,
    timeout: Duration,
}

impl RequestBody {
    pub fn new(framing: BodyFraming, limit: u64, timeout: Duration) -> Self {
        let state = match framing {
            BodyFraming::Length(n) if n > 0 => State::Length(n),
            BodyFraming::Chunked => State::Chunked(ChunkedDecoder::new()),
            _ => State::Done,
        };
        RequestBody {
            state,
            received: 0,
            limit,
            timeout,
        }
    }

    /// The next piece of the body, `Ok(None)` at its end.
    pub async fn next(&mut self, vc: &mut ViewerConn) -> Result<Option<Bytes>, BodyError> {
        loop {
            let piece = match &mut self.state {
                State::Done => return Ok(None),
                State::Length(remaining) => {
                    if vc.rbuf.is_empty() {
                        None
                    } else {
                        let take = (*remaining).min(vc.rbuf.len() as u64) as usize;
                        *remaining -= take as u64;
                        if *remaining == 0 {
                            self.state = State::Done;
                        }
                        Some(vc.rbuf.split_to(take).freeze())
                    }
                }
                State::Chunked(dec) => match dec.next(&mut vc.rbuf) {
                    Ok(ChunkedEvent::Data(b)) => Some(b),
                    Ok(ChunkedEvent::Done) => {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    Ok(ChunkedEvent::NeedMore) => None,
                    Err(_) => return Err(BodyError::Malformed),
                },
            };
            if let Some(p) = piece {
                self.received += p.len() as u64;
                if self.received > self.limit {
                    return Err(BodyError::TooLarge);
                }
                return Ok(Some(p));
            }
            match vc.read_more(self.timeout).await {
                Ok(0) => return Err(BodyError::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(BodyError::Timeout)
                }
                Err(_) => return Err(BodyError::Closed),
            }
        }
    }
}
