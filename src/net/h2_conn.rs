//! One viewer HTTP/2 connection (over TLS by ALPN, or cleartext with prior knowledge): the `h2` crate
//! does framing, HPACK, flow control and the protocol's abuse limits; this module configures those
//! limits, accepts streams, and runs each stream as its own task through the HTTP/1.1 request path
//! (`h2_bridge`).
//!
//! Invariants: a connection idle (no open stream) past the keep-alive timeout, or a draining shard,
//! gets GOAWAY and ends once its open streams finish; one stream's reset or failure never touches
//! the others; the request head handed up is rebuilt from the HTTP/2 fields and then parsed by the
//! same strict parser as HTTP/1.1, so anything it refuses is refused over HTTP/2 too.

use super::conn::{OpenGuard, ViewerConn};
use super::h2_bridge::H2Stream;
use super::transport::{H2Flush, H2Io, Transport};
use crate::http::request::parse_request;
use crate::http::write::simple_response;
use crate::proxy;
use crate::shard::Shard;
use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::RecvStream;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

/// The connection preface a prior-knowledge (h2c) client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves one HTTP/2 connection to its end. `prefix`: bytes already read from `io` (the sniffed
/// preface on a cleartext port).
pub async fn serve(shard: Rc<Shard>, io: Transport, prefix: Bytes, peer: Option<SocketAddr>) {
    shard.open_connections.set(shard.open_connections.get() + 1);
    let _guard = OpenGuard(shard.clone());
    serve_inner(&shard, io, prefix, peer).await;
}

pub(crate) async fn serve_inner(
    shard: &Rc<Shard>,
    io: Transport,
    prefix: Bytes,
    peer: Option<SocketAddr>,
) {
    let secure = io.is_secure();
    if let Some(tcp) = io.tcp() {
        // Idleness is judged per connection below; a socket read timeout would cut live streams.
        let _ = tcp.set_read_timeout(None);
    }
    let h = &shard.cfg.http2;
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(h.max_concurrent_streams)
        .initial_window_size(h.initial_window_size.0 as u32)
        .initial_connection_window_size(h.connection_window_size.0 as u32)
        .max_frame_size(h.max_frame_size.0 as u32)
        .max_header_list_size(shard.cfg.http.max_header_bytes.0 as u32)
        .max_send_buffer_size(h.max_send_buffer.0 as usize)
        .max_concurrent_reset_streams(h.max_concurrent_reset_streams)
        .max_pending_accept_reset_streams(h.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(Some(h.max_local_error_reset_streams));
    let io = H2Io::new(io, prefix);
    let flusher = io.flusher();
    let handshake = builder.handshake::<_, Bytes>(io);
    let timeout = shard.cfg.http.header_read_timeout.get();
    let mut conn = match futures_lite::future::or(async { Some(handshake.await) }, async {
        glommio::timer::sleep(timeout).await;
        None
    })
    .await
    {
        Some(Ok(c)) => c,
        _ => return,
    };
    let open_streams = Rc::new(Cell::new(0usize));
    let idle = shard.cfg.http.keepalive_timeout.get();
    let mut going_away = false;
    let mut served: u64 = 0;
    // Stream tasks may outlive their streams (a viewer reset does not stop a task waiting on a
    // fill); past twice the stream limit, stop reading this connection until they drain, so a
    // reset flood cannot run unbounded work.
    let max_tasks = 2 * h.max_concurrent_streams as usize;
    // From here on, responses are written out when the connection task has nothing left to do.
    flusher.defer();
    'serve: loop {
        while open_streams.get() >= max_tasks {
            if flusher.flush().await.is_err() {
                break 'serve;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        let next = futures_lite::future::or(async { Some(conn.accept().await) }, async {
            if going_away {
                std::future::pending::<()>().await;
            }
            let drain = shard.drain_rx.clone();
            futures_lite::future::or(
                async {
                    let _ = drain.recv_async().await;
                },
                glommio::timer::sleep(idle),
            )
            .await;
            None
        });
        let Ok(next) = flush_while_waiting(&flusher, next).await else {
            break;
        };
        match next {
            Some(Some(Ok((req, respond)))) => {
                served += 1;
                if served >= h.max_requests_per_connection && !going_away {
                    conn.graceful_shutdown();
                    going_away = true;
                }
                let open = open_streams.clone();
                open.set(open.get() + 1);
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    stream(&shard, req, respond, peer, secure).await;
                    open.set(open.get() - 1);
                })
                .detach();
            }
            Some(Some(Err(_))) | Some(None) => break,
            None => {
                // Draining, or idle: GOAWAY once, then let open streams finish.
                if shard.draining.get() || open_streams.get() == 0 {
                    conn.graceful_shutdown();
                    going_away = true;
                }
            }
        }
    }
    let _ =
        super::transport::with_timeout(shard.cfg.http.write_timeout.get(), flusher.flush()).await;
    // Let stream tasks that still hold handles finish (bounded by their own timeouts).
    while open_streams.get() > 0 {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `fut`; whenever it has to wait, first writes out what the connection has combined so far,
/// so every response queued since the last wait leaves in one send. A write error ends it. (A frame
/// write that waited for that buffer is woken by the flush: `H2Flush::poll_flush`.)
async fn flush_while_waiting<T>(
    flusher: &H2Flush,
    fut: impl std::future::Future<Output = T>,
) -> std::io::Result<T> {
    let mut fut = std::pin::pin!(fut);
    futures_lite::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match flusher.poll_flush(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Pending,
        }
    })
    .await
}

/// Rebuilds the HTTP/1.1 head of an HTTP/2 request (RFC 9113 §8.3.1: `:authority` becomes Host,
/// Cookie fields are joined with "; ", §8.2.3). Returns the head and whether its body is handed up
/// chunked-encoded (no Content-Length, body present).
fn h1_head(parts: &http::request::Parts, end_stream: bool) -> (BytesMut, bool) {
    let mut out = BytesMut::with_capacity(256);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.extend_from_slice(b" ");
    if parts.method == http::Method::CONNECT {
        if let Some(a) = parts.uri.authority() {
            out.extend_from_slice(a.as_str().as_bytes());
        }
    } else {
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        out.extend_from_slice(if pq.is_empty() { b"/" } else { pq.as_bytes() });
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let authority = parts.uri.authority();
    if let Some(a) = authority {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(a.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut cookies: Vec<&[u8]> = Vec::new();
    for (name, value) in parts.headers.iter() {
        if name == http::header::HOST && authority.is_some() {
            continue;
        }
        if name == http::header::COOKIE {
            cookies.push(value.as_bytes());
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !cookies.is_empty() {
        out.extend_from_slice(b"cookie: ");
        out.extend_from_slice(&cookies.join(&b"; "[..]));
        out.extend_from_slice(b"\r\n");
    }
    let chunked = !end_stream && !parts.headers.contains_key(http::header::CONTENT_LENGTH);
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
    (out, chunked)
}

/// Runs one stream through the request path.
async fn stream(
    shard: &Rc<Shard>,
    req: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    peer: Option<SocketAddr>,
    secure: bool,
) {
    let (parts, body) = req.into_parts();
    let (head, chunked) = h1_head(&parts, body.is_end_stream());
    let is_head = parts.method == http::Method::HEAD;
    let bridge = H2Stream::new(body, chunked, respond, is_head, shard.limits, secure);
    let mut vc = ViewerConn::new(
        Transport::H2(Box::new(bridge)),
        head,
        2048,
        peer,
        shard.cfg.http.write_timeout.get(),
    );
    match parse_request(&mut vc.rbuf, &shard.limits) {
        Ok(Some(h)) => {
            proxy::handle(shard, &mut vc, h, false).await;
        }
        Ok(None) => simple_response(
            &mut vc.out,
            400,
            "incomplete request",
            "verge; fwd=request",
            false,
            is_head,
        ),
        Err(e) => simple_response(
            &mut vc.out,
            e.status(),
            e.reason(),
            "verge; fwd=request",
            false,
            is_head,
        ),
    }
    let _ = vc.flush().await;
    vc.stream.finish(shard.cfg.http.write_timeout.get()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::Request<()>) -> http::request::Parts {
        req.into_parts().0
    }

    #[test]
    fn head_from_h2_fields() {
        let p = parts(
            http::Request::get("https://example.com/a?b=1")
                .header("accept", "*/*")
                .header("cookie", "a=1")
                .header("cookie", "b=2")
                .body(())
                .unwrap(),
        );
        let (h, chunked) = h1_head(&p, true);
        assert!(!chunked);
        assert_eq!(
            &h[..],
            b"GET /a?b=1 HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n"
        );
    }

    #[test]
    fn body_without_length_is_chunked() {
        let p = parts(http::Request::post("http://h/up").body(()).unwrap());
        let (h, chunked) = h1_head(&p, false);
        assert!(chunked);
        assert!(h.ends_with(b"transfer-encoding: chunked\r\n\r\n"));
        let p = parts(
            http::Request::post("http://h/up")
                .header("content-length", "3")
                .body(())
                .unwrap(),
        );
        assert!(!h1_head(&p, false).1);
    }
}
