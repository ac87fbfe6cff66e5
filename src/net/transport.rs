//! What a viewer connection's bytes travel over: plain TCP, TLS (rustls) over TCP, or one HTTP/2
//! stream (the `h2_bridge`), behind one `AsyncRead + AsyncWrite` type so that the HTTP/1.1 request
//! path above it is the same for all three.
//!
//! Invariants: read and write timeouts apply to every kind (TCP and TLS through the socket's own
//! timeouts, an HTTP/2 stream through a timer); `flush` pushes out everything TLS or HTTP/2 still
//! buffers; closing an HTTP/2 stream whose response is incomplete resets it, never ends it cleanly.

use super::h2_bridge::H2Stream;
use bytes::BytesMut;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_lite::AsyncWriteExt;
use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Bytes read from a viewer per read call.
pub const LANDING_SIZE: usize = 16 * 1024;

thread_local! {
    /// Where viewer reads land before the bytes that arrived are appended to their connection's
    /// buffer (one per shard thread; borrowed only inside one synchronous poll).
    static LANDING: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; LANDING_SIZE].into_boxed_slice());
}

/// A viewer connection's byte stream.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    H2(Box<H2Stream>),
}

impl Transport {
    /// Which scheme the viewer used (for the viewer protocol policy and redirects).
    pub fn is_secure(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(_) => true,
            Transport::H2(s) => s.secure,
        }
    }

    /// The HTTP/2 stream, when this transport is one.
    pub fn h2_mut(&mut self) -> Option<&mut H2Stream> {
        match self {
            Transport::H2(s) => Some(s),
            _ => None,
        }
    }

    /// The TCP socket under this transport, if it has one of its own.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Transport::Plain(s) => Some(s),
            Transport::Tls(s) => Some(s.get_ref().0),
            Transport::H2(_) => None,
        }
    }

    /// Reads what the viewer has sent into the end of `buf`, waiting at most `timeout` (then
    /// `ErrorKind::TimedOut`; `None`: no limit, for waits that `net::idle` ends). `Ok(0)`: closed.
    ///
    /// The bytes land in a per-thread buffer first and only what arrived is appended, so a read
    /// neither zeroes nor keeps a large buffer per connection.
    pub async fn read_into(
        &mut self,
        buf: &mut BytesMut,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let timeout = timeout.map(|t| t.max(Duration::from_millis(1)));
        if let Some(tcp) = self.tcp() {
            let _ = tcp.set_read_timeout(timeout);
            return std::future::poll_fn(|cx| self.poll_read_into(cx, buf)).await;
        }
        let read = std::future::poll_fn(|cx| self.poll_read_into(cx, buf));
        match timeout {
            Some(t) => with_timeout(t, read).await,
            None => read.await,
        }
    }

    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        LANDING.with(|landing| {
            let mut own;
            let mut shared = landing.try_borrow_mut();
            let area: &mut [u8] = match shared.as_mut() {
                Ok(l) => &mut l[..],
                Err(_) => {
                    // Only if a read were nested in another; never on the request path.
                    own = vec![0u8; LANDING_SIZE];
                    &mut own[..]
                }
            };
            match Pin::new(&mut *self).poll_read(cx, area) {
                Poll::Ready(Ok(n)) => {
                    buf.extend_from_slice(&area[..n]);
                    Poll::Ready(Ok(n))
                }
                other => other,
            }
        })
    }

    /// Writes all of `data` and flushes it, failing after `timeout` without progress for HTTP/2
    /// streams (TCP and TLS use the socket's write timeout, set once at accept).
    pub async fn write_all_flush(&mut self, data: &[u8], timeout: Duration) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.write_all(data).await,
            Transport::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Transport::H2(s) => {
                with_timeout(timeout, async {
                    s.write_all(data).await?;
                    s.flush().await
                })
                .await
            }
        }
    }

    /// Ends the response side: half-close for TCP, close_notify for TLS, end (or reset, when
    /// incomplete or when the viewer's window stays shut past `timeout`) for an HTTP/2 stream.
    pub async fn finish(&mut self, timeout: Duration) {
        match self {
            Transport::Plain(s) => {
                let _ = s.shutdown(std::net::Shutdown::Write).await;
            }
            Transport::Tls(s) => {
                let _ = s.close().await;
            }
            Transport::H2(s) => {
                if with_timeout(timeout, s.close()).await.is_err() {
                    s.reset();
                }
            }
        }
    }
}

/// Runs `fut`, failing with `TimedOut` if it takes longer than `timeout`.
pub async fn with_timeout<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    futures_lite::future::or(fut, async {
        glommio::timer::sleep(timeout).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
    })
    .await
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::H2(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::H2(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::H2(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_close(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Transport::H2(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// The byte stream an HTTP/2 connection runs over: a transport plus bytes already read from it
/// (the h2c preface that was sniffed on a plaintext port), adapted to the tokio I/O traits the
/// `h2` crate uses. No tokio runtime is involved: these are only poll functions.
///
/// Writes are combined: the `h2` crate writes each frame (and a DATA frame's payload) separately
/// and flushes after every frame whose payload it does not copy, so left alone it would send once
/// per response. Once `H2Flush::defer` is on, a flush only marks the bytes as due, and the
/// connection task writes them out through its `H2Flush` when it has nothing more to do (every
/// response its streams queued meanwhile leaves in one send). At most `COMBINE_MAX` bytes wait;
/// shutdown always writes everything out first.
pub struct H2Io(Rc<RefCell<H2IoState>>);

/// The connection task's handle on its `H2Io`'s combined writes.
pub struct H2Flush(Rc<RefCell<H2IoState>>);

struct H2IoState {
    prefix: bytes::Bytes,
    inner: Transport,
    wbuf: Vec<u8>,
    /// Bytes of `wbuf` already written.
    wpos: usize,
    /// Flushes leave the bytes for `H2Flush::poll_flush`.
    defer: bool,
    /// The writer whose last write had to wait. Its wake-up rode on the socket's writability, and a
    /// successful send through `H2Flush` uses that up (glommio drops the poll with its waiter), so
    /// `H2Flush::poll_flush` wakes it once the bytes are out.
    blocked_writer: Option<std::task::Waker>,
}

/// Most bytes combined before they are written out.
const COMBINE_MAX: usize = 64 * 1024;

impl H2Io {
    pub fn new(inner: Transport, prefix: bytes::Bytes) -> Self {
        H2Io(Rc::new(RefCell::new(H2IoState {
            prefix,
            inner,
            wbuf: Vec::new(),
            wpos: 0,
            defer: false,
            blocked_writer: None,
        })))
    }

    /// The handle that writes out deferred bytes.
    pub fn flusher(&self) -> H2Flush {
        H2Flush(self.0.clone())
    }
}

impl H2Flush {
    /// From now on (after the handshake), flushes leave the bytes for `poll_flush`.
    pub fn defer(&self) {
        self.0.borrow_mut().defer = true;
    }

    /// Writes out every combined byte and flushes the transport; then a writer that had to wait is
    /// woken to go on.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut me = self.0.borrow_mut();
        let done = me.poll_flush_all(cx);
        if done.is_ready() {
            if let Some(w) = me.blocked_writer.take() {
                w.wake();
            }
        }
        done
    }

    /// `poll_flush` as a future.
    pub async fn flush(&self) -> io::Result<()> {
        futures_lite::future::poll_fn(|cx| self.poll_flush(cx)).await
    }
}

impl H2IoState {
    /// Writes out everything combined so far.
    fn poll_write_combined(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.wbuf[self.wpos..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.wpos += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Poll::Ready(Ok(()))
    }

    /// Adds `buf` to the combined bytes, writing them out first when it would not fit.
    fn poll_write_buf(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.wbuf.len() + buf.len() > COMBINE_MAX {
            match self.poll_write_combined(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
            if buf.len() >= COMBINE_MAX / 2 {
                return Pin::new(&mut self.inner).poll_write(cx, buf);
            }
        }
        self.wbuf.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.poll_write_combined(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.inner).poll_flush(cx),
            other => other,
        }
    }
}

impl tokio::io::AsyncRead for H2Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut me = self.0.borrow_mut();
        if !me.prefix.is_empty() {
            let n = me.prefix.len().min(buf.remaining());
            let head = me.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        let dst = buf.initialize_unfilled();
        match Pin::new(&mut me.inner).poll_read(cx, dst) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for H2Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut me = self.0.borrow_mut();
        let written = me.poll_write_buf(cx, buf);
        me.blocked_writer = written.is_pending().then(|| cx.waker().clone());
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut me = self.0.borrow_mut();
        if me.defer {
            return Poll::Ready(Ok(()));
        }
        me.poll_flush_all(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut me = self.0.borrow_mut();
        match me.poll_write_combined(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut me.inner).poll_close(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// Reads everything the peer has sent so far.
    fn drain(c: &mut std::net::TcpStream) {
        let mut b = vec![0u8; 1 << 16];
        while let Ok(n) = c.read(&mut b) {
            if n == 0 {
                break;
            }
        }
    }

    #[test]
    fn a_flush_that_empties_the_buffer_wakes_the_writer_that_waited() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let l = glommio::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
                c.set_nonblocking(true).unwrap();
                let s = l.accept().await.unwrap();
                let mut io = H2Io::new(Transport::Plain(s), bytes::Bytes::new());
                let flusher = io.flusher();
                flusher.defer();
                // A writer (h2) fills the socket and the buffer until its write has to wait.
                let flag = Arc::new(Flag(AtomicBool::new(false)));
                let waker = std::task::Waker::from(flag.clone());
                let mut cx = Context::from_waker(&waker);
                let chunk = [7u8; 16 * 1024];
                loop {
                    match tokio::io::AsyncWrite::poll_write(Pin::new(&mut io), &mut cx, &chunk) {
                        Poll::Ready(Ok(_)) => {}
                        Poll::Ready(Err(e)) => panic!("{e}"),
                        Poll::Pending => break,
                    }
                }
                // The viewer reads; the flush then gets every byte out within this same poll, so
                // the socket's writability poll (which held the writer's waker) never completes.
                let noop = std::task::Waker::noop();
                let mut fcx = Context::from_waker(noop);
                loop {
                    drain(&mut c);
                    match flusher.poll_flush(&mut fcx) {
                        Poll::Ready(r) => break r.unwrap(),
                        Poll::Pending => {}
                    }
                }
                assert!(
                    flag.0.load(Ordering::SeqCst),
                    "the writer that waited for the buffer must be woken"
                );
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
