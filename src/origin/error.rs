//! Errors talking to the origin, and the status a viewer gets for each.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("cannot connect to the origin: {0}")]
    Connect(io::Error),
    #[error("TLS with the origin failed: {0}")]
    Tls(io::Error),
    #[error("connecting to the origin timed out")]
    ConnectTimeout,
    #[error("the origin sent no response head in time")]
    FirstByteTimeout,
    #[error("the origin stalled inside the response body")]
    ReadTimeout,
    #[error("the origin closed the connection before a response head")]
    ClosedBeforeHead,
    #[error("the origin's response is malformed: {0}")]
    Malformed(&'static str),
    #[error("the origin's body ended before its declared length")]
    Truncated,
    #[error("I/O error with the origin: {0}")]
    Io(io::Error),
}

impl OriginError {
    /// 504 for timeouts, 502 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            OriginError::ConnectTimeout | OriginError::FirstByteTimeout => 504,
            _ => 502,
        }
    }

    /// A short text for the error body.
    pub fn detail(&self) -> &'static str {
        match self {
            OriginError::Connect(_) => "origin unreachable",
            OriginError::Tls(_) => "origin TLS handshake failed",
            OriginError::ConnectTimeout => "origin connect timeout",
            OriginError::FirstByteTimeout => "origin response timeout",
            OriginError::ReadTimeout => "origin body timeout",
            OriginError::ClosedBeforeHead => "origin closed the connection",
            OriginError::Malformed(m) => m,
            OriginError::Truncated => "origin body truncated",
            OriginError::Io(_) => "origin I/O error",
        }
    }

    /// Maps an I/O error while waiting for bytes, given which timeout applied.
    pub(crate) fn from_read(e: io::Error, timeout: OriginError) -> OriginError {
        if e.kind() == io::ErrorKind::TimedOut {
            timeout
        } else {
            OriginError::Io(e)
        }
    }
}
