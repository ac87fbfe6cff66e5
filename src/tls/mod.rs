//! TLS with rustls (ring provider): viewer certificates chosen by SNI and reloaded when their files
//! change (`certs`), session-ticket keys shared through a key file (`tickets`), the viewer-side
//! `ServerConfig` (`viewer`), and the client configuration for https origins (`origin`).
//!
//! Invariants: one `ViewerTls` is built at start and shared read-only by every shard (only the
//! certificate table and ticket keys behind it are swapped, atomically, by a reload); a reload that
//! fails keeps serving the previous certificates and says why.

pub mod certs;
pub mod origin;
pub mod tickets;
pub mod viewer;

use std::path::PathBuf;

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("{path}: no certificate found")]
    NoCertificate { path: PathBuf },
    #[error(
        "certificate {cert} and key {key} do not belong together or the key is unusable: {reason}"
    )]
    Key {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("ticket key file {path}: {reason}")]
    TicketKeys { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("CA bundle {path}: {reason}")]
    CaBundle { path: String, reason: String },
}

/// The crypto provider every TLS configuration uses.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// A file's identity for change detection: modification time and length.
pub(crate) fn stamp(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}
