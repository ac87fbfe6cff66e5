//! One viewer connection: reads request heads (with the header-read and idle timeouts), hands each
//! request to `proxy::handle`, and writes responses in request order.
//!
//! Invariants: responses leave in the order requests arrived (requests are handled one at a time;
//! pipelined requests wait in the read buffer); output for pipelined hits is batched and flushed when no
//! further complete request is buffered; a malformed head is answered with its 4xx and the connection
//! is closed; a connection never outlives a drain.

use super::h2_conn::PREFACE;
use super::transport::Transport;
use crate::http::request::{parse_request, RequestError, RequestHead};
use crate::http::write::simple_response;
use crate::proxy::{self, After};
use crate::shard::Shard;
use bytes::BytesMut;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Initial size of a connection's read buffer; it grows as a head or body needs.
const RBUF_INITIAL: usize = 2048;
/// Output is written out once this much is buffered.
pub const OUT_HIGH_WATER: usize = 64 * 1024;

/// A viewer connection's transport and buffers.
pub struct ViewerConn {
    pub stream: Transport,
    pub rbuf: BytesMut,
    pub out: Vec<u8>,
    pub peer: Option<SocketAddr>,
    write_timeout: Duration,
}

impl ViewerConn {
    /// `rbuf`: bytes already received; `out_capacity`: initial output buffer size.
    pub fn new(
        stream: Transport,
        rbuf: BytesMut,
        out_capacity: usize,
        peer: Option<SocketAddr>,
        write_timeout: Duration,
    ) -> Self {
        ViewerConn {
            stream,
            rbuf,
            out: Vec::with_capacity(out_capacity),
            peer,
            write_timeout,
        }
    }

    /// True when the viewer came over TLS.
    pub fn is_secure(&self) -> bool {
        self.stream.is_secure()
    }

    /// Writes out everything buffered.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream
                .write_all_flush(&self.out, self.write_timeout)
                .await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Queues `data` for the viewer, writing when the buffer is large. Large pieces are written
    /// straight from their own memory, without a copy.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if self.out.len() + data.len() <= OUT_HIGH_WATER {
            self.out.extend_from_slice(data);
            return Ok(());
        }
        self.flush().await?;
        if data.len() >= OUT_HIGH_WATER / 4 {
            self.stream.write_all_flush(data, self.write_timeout).await
        } else {
            self.out.extend_from_slice(data);
            Ok(())
        }
    }

    /// Queues one piece of a response body, as a chunk when the response is chunked.
    pub async fn send_piece(&mut self, piece: &[u8], chunked: bool) -> io::Result<()> {
        if !chunked {
            return self.send(piece).await;
        }
        let mut hdr = Vec::with_capacity(20);
        crate::http::chunked::write_chunk_header(piece.len(), &mut hdr);
        self.send(&hdr).await?;
        self.send(piece).await?;
        self.send(crate::http::chunked::CHUNK_TRAILER).await
    }

    /// Reads more bytes into `rbuf` waiting at most `timeout`; `Ok(0)` when the viewer closed.
    pub async fn read_more(&mut self, timeout: Duration) -> io::Result<usize> {
        self.stream.read_into(&mut self.rbuf, Some(timeout)).await
    }

    /// Waits for the next request with no timer of its own: the shard's idle set ends the wait at
    /// the keep-alive timeout or at a drain (the read then sees end-of-file).
    async fn read_idle(
        &mut self,
        idle: &crate::net::idle::IdleSet,
        timeout: Duration,
    ) -> io::Result<usize> {
        let Some(fd) = self.stream.tcp().map(std::os::fd::AsRawFd::as_raw_fd) else {
            return self.read_more(timeout).await;
        };
        let _idle = idle.enter(fd);
        self.stream.read_into(&mut self.rbuf, None).await
    }
}

/// Counts a shard's open connections for as long as it lives.
pub(crate) struct OpenGuard(pub(crate) Rc<Shard>);
impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0
            .open_connections
            .set(self.0.open_connections.get() - 1);
    }
}

/// Why no request head was read.
enum HeadOutcome {
    /// The viewer closed, went idle too long, or the shard is draining: close quietly.
    Quiet,
    /// Answer this and close.
    Reject(u16, &'static str),
    /// A cleartext HTTP/2 connection preface (prior knowledge): hand the connection to HTTP/2.
    H2c,
}

/// Prepares an accepted socket: no Nagle delay, the write timeout, and a fixed send buffer for a
/// near viewer (`net::send_buffer`).
pub fn prepare_socket(shard: &Shard, stream: &glommio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(shard.cfg.http.write_timeout.get()));
    let s = &shard.cfg.server;
    super::send_buffer::fit_to_rtt(
        std::os::fd::AsRawFd::as_raw_fd(stream),
        Duration::from_micros(s.near_viewer_rtt_us),
        s.near_viewer_send_buffer.0,
    );
}

/// Serves one viewer HTTP/1.x connection (plain or TLS) to its end; a cleartext connection that
/// opens with the HTTP/2 preface is served as HTTP/2 (h2c with prior knowledge).
pub async fn serve(shard: Rc<Shard>, stream: Transport, peer: Option<SocketAddr>) {
    shard.open_connections.set(shard.open_connections.get() + 1);
    let _guard = OpenGuard(shard.clone());
    let mut vc = ViewerConn::new(
        stream,
        BytesMut::with_capacity(RBUF_INITIAL),
        OUT_HIGH_WATER,
        peer,
        shard.cfg.http.write_timeout.get(),
    );
    let max_requests = shard.cfg.http.max_requests_per_connection;
    let mut served: u64 = 0;
    loop {
        let head = match read_head(&shard, &mut vc, served == 0).await {
            Ok(h) => h,
            Err(HeadOutcome::H2c) => {
                let prefix = vc.rbuf.split().freeze();
                super::h2_conn::serve_inner(&shard, vc.stream, prefix, peer).await;
                return;
            }
            Err(HeadOutcome::Quiet) => break,
            Err(HeadOutcome::Reject(status, reason)) => {
                simple_response(
                    &mut vc.out,
                    status,
                    reason,
                    "verge; fwd=request",
                    true,
                    false,
                );
                break;
            }
        };
        served += 1;
        let close = !head.keep_alive || served >= max_requests || shard.draining.get();
        if proxy::handle(&shard, &mut vc, head, close).await == After::Close || close {
            break;
        }
        if !has_complete_head(&vc.rbuf) && vc.flush().await.is_err() {
            return;
        }
    }
    let _ = vc.flush().await;
    vc.stream.finish(shard.cfg.http.write_timeout.get()).await;
}

/// True when `buf` holds at least one complete request head (pipelining: keep batching output).
fn has_complete_head(buf: &[u8]) -> bool {
    memchr::memmem::find(buf, b"\r\n\r\n").is_some()
}

/// Reads until one request head is complete.
/// `first`: this is the connection's first request (an h2c preface may come instead).
async fn read_head(
    shard: &Rc<Shard>,
    vc: &mut ViewerConn,
    first: bool,
) -> Result<RequestHead, HeadOutcome> {
    let http = &shard.cfg.http;
    let mut head_deadline: Option<Instant> = None;
    let sniff_h2c = first && shard.cfg.http2.h2c && !vc.is_secure();
    loop {
        if sniff_h2c && !vc.rbuf.is_empty() {
            let n = vc.rbuf.len().min(PREFACE.len());
            if vc.rbuf[..n] == PREFACE[..n] {
                if n == PREFACE.len() {
                    return Err(HeadOutcome::H2c);
                }
                // A prefix of the preface so far: read on.
                match vc.read_more(http.header_read_timeout.get()).await {
                    Ok(0) | Err(_) => return Err(HeadOutcome::Quiet),
                    Ok(_) => continue,
                }
            }
        }
        match parse_request(&mut vc.rbuf, &shard.limits) {
            Ok(Some(h)) => return Ok(h),
            Ok(None) => {}
            Err(e) => return Err(HeadOutcome::Reject(e.status(), reject_reason(&e))),
        }
        let idle = vc.rbuf.is_empty();
        let read = if idle {
            if shard.draining.get() {
                return Err(HeadOutcome::Quiet);
            }
            // Between requests: flush what is queued, then wait for the next one (the idle set
            // ends the wait at the keep-alive timeout or a drain).
            if vc.flush().await.is_err() || shard.draining.get() {
                return Err(HeadOutcome::Quiet);
            }
            vc.read_idle(&shard.idle, http.keepalive_timeout.get())
                .await
        } else {
            let deadline = *head_deadline
                .get_or_insert_with(|| Instant::now() + http.header_read_timeout.get());
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HeadOutcome::Reject(
                    408,
                    "request head not received in time",
                ));
            }
            vc.read_more(left).await
        };
        match read {
            Ok(0) => return Err(HeadOutcome::Quiet),
            // The head deadline starts when a head is found incomplete (above), at most one
            // read after its first byte: a head that arrives whole never reads the clock.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut && !idle => {
                return Err(HeadOutcome::Reject(
                    408,
                    "request head not received in time",
                ))
            }
            Err(_) => return Err(HeadOutcome::Quiet),
        }
    }
}

fn reject_reason(e: &RequestError) -> &'static str {
    e.reason()
}
