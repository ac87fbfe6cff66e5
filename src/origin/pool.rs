//! The per-shard origin connection pool and one request/response exchange on a pooled connection.
//!
//! Invariants: a connection goes back to the pool only after a response was read completely and both
//! sides allowed keep-alive, with no stray bytes left over; idle connections older than the idle
//! timeout are closed, never reused; a request is re-sent at most once, only when it carried no body,
//! only on a fresh connection, and only if the reused connection failed before any response byte.

use super::body::OriginBody;
use super::error::OriginError;
use super::stream::OriginStream;
pub use super::stream::OriginTls;
use crate::http::framing::HeadLimits;
use crate::http::response::{parse_response, ResponseError, ResponseHead};
use bytes::BytesMut;
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Bytes read from the origin per read call.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// Timeouts and limits for one origin.
#[derive(Clone, Debug)]
pub struct OriginSettings {
    pub addr: SocketAddr,
    /// Set for an https origin.
    pub tls: Option<OriginTls>,
    pub authority: String,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_idle: usize,
    pub limits: HeadLimits,
}

/// One origin as seen by one shard: its settings and its idle connections.
pub struct Origin {
    pub settings: OriginSettings,
    idle: RefCell<Vec<(OriginConn, Instant)>>,
}

/// A connection to the origin with its read buffer.
pub struct OriginConn {
    pub(crate) stream: OriginStream,
    pub(crate) buf: BytesMut,
    reused: bool,
}

/// A response head and the body still to be read.
pub struct OriginResponse {
    pub head: ResponseHead,
    pub body: OriginBody,
}

impl Origin {
    pub fn new(settings: OriginSettings) -> Rc<Self> {
        Rc::new(Origin {
            settings,
            idle: RefCell::new(Vec::new()),
        })
    }

    /// A pooled connection if a live one is idle, else a new one.
    pub async fn checkout(&self) -> Result<OriginConn, OriginError> {
        if let Some(conn) = self.take_idle() {
            return Ok(conn);
        }
        self.connect().await
    }

    /// The most recently used idle connection that has not outlived the idle timeout.
    fn take_idle(&self) -> Option<OriginConn> {
        let now = Instant::now();
        let mut idle = self.idle.borrow_mut();
        while let Some((mut conn, since)) = idle.pop() {
            if now.duration_since(since) < self.settings.idle_timeout {
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    }

    /// A new connection (connect timeout applies).
    pub async fn connect(&self) -> Result<OriginConn, OriginError> {
        let s = &self.settings;
        let stream = TcpStream::connect_timeout(s.addr, s.connect_timeout)
            .await
            .map_err(|e| match e {
                glommio::GlommioError::IoError(io) if io.kind() != std::io::ErrorKind::TimedOut => {
                    OriginError::Connect(io)
                }
                glommio::GlommioError::IoError(_) | glommio::GlommioError::TimedOut(_) => {
                    OriginError::ConnectTimeout
                }
                other => OriginError::Connect(std::io::Error::other(other.to_string())),
            })?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(s.read_timeout));
        let stream = match &s.tls {
            None => OriginStream::Plain(stream),
            Some(tls) => {
                // The handshake is bounded by the connect timeout.
                let _ = stream.set_read_timeout(Some(s.connect_timeout));
                let hs = tls.connector.connect(tls.server_name.clone(), stream);
                let tls_stream = crate::net::transport::with_timeout(s.connect_timeout, hs)
                    .await
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::TimedOut => OriginError::ConnectTimeout,
                        _ => OriginError::Tls(e),
                    })?;
                OriginStream::Tls(Box::new(tls_stream))
            }
        };
        Ok(OriginConn {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            reused: false,
        })
    }

    /// Returns a connection whose exchange ended cleanly.
    pub(crate) fn checkin(&self, conn: OriginConn) {
        if !conn.buf.is_empty() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let now = Instant::now();
        idle.retain(|(_, since)| now.duration_since(*since) < self.settings.idle_timeout);
        if idle.len() < self.settings.max_idle {
            idle.push((conn, now));
        }
    }

    /// Sends a request without a body and reads the response head. If a reused connection turns out
    /// to have been closed by the origin before any response byte, the request is sent once more on a
    /// fresh connection (never more).
    pub async fn send(
        self: &Rc<Self>,
        head: &[u8],
        is_head: bool,
    ) -> Result<OriginResponse, OriginError> {
        let mut conn = self.checkout().await?;
        if conn.reused {
            if conn.write_all(head).await.is_ok() {
                match conn.read_response(self, is_head).await {
                    // A pooled connection the origin had already closed: expected now and then.
                    Err((_, true)) => {}
                    other => return other.map_err(|(e, _)| e),
                }
            }
            conn = self.connect().await?;
        }
        conn.write_all(head).await?;
        conn.read_response(self, is_head).await.map_err(|(e, _)| e)
    }
}

impl OriginConn {
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), OriginError> {
        self.stream.write_all(data).await.map_err(OriginError::Io)
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    pub(crate) async fn fill(
        &mut self,
        timeout: Duration,
        on_timeout: OriginError,
    ) -> Result<usize, OriginError> {
        self.stream.set_read_timeout(timeout);
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        let r = self.stream.read(&mut self.buf[start..]).await;
        let n = *r.as_ref().unwrap_or(&0);
        self.buf.truncate(start + n);
        r.map_err(|e| OriginError::from_read(e, on_timeout))
    }

    /// Reads the response head (skipping 1xx interim responses). On error, the flag says whether the
    /// connection failed before any response byte (so that a reused connection may be retried once).
    pub async fn read_response(
        mut self,
        origin: &Rc<Origin>,
        is_head: bool,
    ) -> Result<OriginResponse, (OriginError, bool)> {
        let s = &origin.settings;
        let mut received_any = false;
        loop {
            match parse_response(&mut self.buf, &s.limits, is_head) {
                Ok(Some(head)) if head.status < 200 => {
                    if head.status == 101 {
                        return Err((OriginError::Malformed("unexpected protocol switch"), false));
                    }
                    continue;
                }
                Ok(Some(head)) => {
                    let body = OriginBody::new(self, origin.clone(), &head);
                    return Ok(OriginResponse { head, body });
                }
                Ok(None) => {}
                Err(ResponseError::TooLarge) => {
                    return Err((OriginError::Malformed("response head too large"), false))
                }
                Err(ResponseError::Malformed(m)) => return Err((OriginError::Malformed(m), false)),
            }
            let fresh = !received_any;
            match self
                .fill(s.first_byte_timeout, OriginError::FirstByteTimeout)
                .await
            {
                Ok(0) if self.buf.is_empty() && fresh => {
                    return Err((OriginError::ClosedBeforeHead, true))
                }
                Ok(0) => {
                    return Err((
                        OriginError::Malformed("connection closed inside the head"),
                        false,
                    ))
                }
                Ok(_) => received_any = true,
                Err(e @ OriginError::Io(_)) => return Err((e, fresh)),
                Err(e) => return Err((e, false)),
            }
        }
    }
}
