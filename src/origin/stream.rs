//! The byte stream to the origin: plain TCP, or TLS (rustls client) over TCP for https origins.
//! Timeouts are the socket's own (set on the TCP stream under TLS too).

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::client::TlsStream;
use glommio::net::TcpStream;
use std::io;
use std::time::Duration;

/// How Verge reaches an https origin: the shared client configuration and the verified name.
#[derive(Clone)]
pub struct OriginTls {
    pub connector: futures_rustls::TlsConnector,
    pub server_name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for OriginTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OriginTls({:?})", self.server_name)
    }
}

/// One connection to the origin.
pub enum OriginStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl OriginStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            OriginStream::Plain(s) => s,
            OriginStream::Tls(s) => s.get_ref().0,
        }
    }

    pub fn set_read_timeout(&self, t: Duration) {
        let _ = self.tcp().set_read_timeout(Some(t));
    }

    /// Writes all of `data` (and, over TLS, flushes the records out).
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            OriginStream::Plain(s) => s.write_all(data).await,
            OriginStream::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
        }
    }

    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            OriginStream::Plain(s) => s.read(buf).await,
            OriginStream::Tls(s) => s.read(buf).await,
        }
    }
}
