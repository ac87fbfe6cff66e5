//! Accepting a viewer on a TLS listener: the rustls handshake (bounded by `tls.handshake_timeout`;
//! its CPU work is a few hundred microseconds per full handshake, see benches/hot_path.rs), then
//! HTTP/2 or HTTP/1.1 by the protocol ALPN agreed.
//!
//! Invariants: a failed handshake (a plaintext request on the TLS port, an unknown protocol
//! version, a timeout) closes only that connection and is logged at most once per second per shard,
//! with the number of failures since the last line.

use super::conn;
use super::h2_conn;
use super::transport::{with_timeout, Transport};
use crate::shard::Shard;
use futures_rustls::TlsAcceptor;
use glommio::net::TcpStream;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

thread_local! {
    /// (last log line, failures not yet logged) for this shard's thread.
    static FAILURES: Cell<(Option<Instant>, u64)> = const { Cell::new((None, 0)) };
}

fn log_failure(shard: usize, peer: Option<std::net::SocketAddr>, why: &str) {
    FAILURES.with(|f| {
        let (last, n) = f.get();
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            f.set((last, n + 1));
            return;
        }
        let more = if n > 0 {
            format!(" ({n} more since the last report)")
        } else {
            String::new()
        };
        eprintln!(
            "verge: shard {shard}: TLS handshake with {} failed: {why}{more}",
            peer.map_or("?".to_string(), |p| p.to_string())
        );
        f.set((Some(now), 0));
    });
}

/// Serves one TLS viewer connection to its end.
pub async fn serve(shard: Rc<Shard>, tcp: TcpStream, acceptor: TlsAcceptor) {
    let peer = tcp.peer_addr().ok();
    conn::prepare_socket(&shard, &tcp);
    let timeout = shard.cfg.tls.handshake_timeout.get();
    let _ = tcp.set_read_timeout(Some(timeout));
    let tls = match with_timeout(timeout, acceptor.accept(tcp)).await {
        Ok(s) => s,
        Err(e) => {
            log_failure(shard.id, peer, &e.to_string());
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let transport = Transport::Tls(Box::new(tls));
    if h2 {
        h2_conn::serve(shard, transport, bytes::Bytes::new(), peer).await;
    } else {
        conn::serve(shard, transport, peer).await;
    }
}
