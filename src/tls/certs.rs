//! Viewer certificates: PEM chains and keys, the SNI table (exact names, then `*.domain` wildcards
//! matching exactly one label, then the default), and reload when any of the files changes.
//!
//! Invariants: the table in use is always a complete, consistent one (every chain matches its key);
//! a handshake reads it under a short read lock and keeps its own `Arc`, so a swap never disturbs a
//! handshake or an open connection.

use super::{stamp, TlsError};
use crate::config::TlsConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// Loads a chain and its key and checks they belong together.
pub fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_error(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(cert, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.into() });
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    CertifiedKey::from_der(chain, der, provider).map_err(|e| TlsError::Key {
        cert: cert.into(),
        key: key.into(),
        reason: e.to_string(),
    })
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> TlsError {
    match e {
        rustls::pki_types::pem::Error::Io(source) => TlsError::Read {
            path: path.into(),
            source,
        },
        other => TlsError::Pem {
            path: path.into(),
            reason: other.to_string(),
        },
    }
}

/// Certificates by server name.
#[derive(Debug)]
pub struct CertTable {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` is stored under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl CertTable {
    /// Builds the table from the configuration's files.
    pub fn load(cfg: &TlsConfig, provider: &CryptoProvider) -> Result<CertTable, TlsError> {
        let default = Arc::new(load_pair(
            Path::new(&cfg.cert),
            Path::new(&cfg.key),
            provider,
        )?);
        let mut t = CertTable {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default,
        };
        for s in &cfg.sni {
            let ck = Arc::new(load_pair(Path::new(&s.cert), Path::new(&s.key), provider)?);
            for name in &s.names {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                match name.strip_prefix("*.") {
                    Some(domain) => t.wildcard.insert(domain.to_string(), ck.clone()),
                    None => t.exact.insert(name, ck.clone()),
                };
            }
        }
        Ok(t)
    }

    /// The certificate for `sni` (absent SNI, or no match: the default).
    pub fn pick(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni else {
            return self.default.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(ck) = self.exact.get(&name) {
            return ck.clone();
        }
        if let Some((_, domain)) = name.split_once('.') {
            if let Some(ck) = self.wildcard.get(domain) {
                return ck.clone();
            }
        }
        self.default.clone()
    }
}

/// The resolver rustls asks for every handshake; reloadable.
#[derive(Debug)]
pub struct CertResolver {
    cfg: TlsConfig,
    provider: Arc<CryptoProvider>,
    table: RwLock<Arc<CertTable>>,
    stamps: Mutex<Vec<Option<(SystemTime, u64)>>>,
}

impl CertResolver {
    pub fn new(cfg: &TlsConfig, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamps = Self::stamps(cfg);
        let table = CertTable::load(cfg, &provider)?;
        Ok(CertResolver {
            cfg: cfg.clone(),
            provider,
            table: RwLock::new(Arc::new(table)),
            stamps: Mutex::new(stamps),
        })
    }

    fn files(cfg: &TlsConfig) -> Vec<PathBuf> {
        let mut v = vec![PathBuf::from(&cfg.cert), PathBuf::from(&cfg.key)];
        for s in &cfg.sni {
            v.push(PathBuf::from(&s.cert));
            v.push(PathBuf::from(&s.key));
        }
        v
    }

    fn stamps(cfg: &TlsConfig) -> Vec<Option<(SystemTime, u64)>> {
        Self::files(cfg).iter().map(|p| stamp(p)).collect()
    }

    /// Reloads the table if any file changed since the last successful load. `Ok(true)`: swapped.
    /// On error the old table stays in use and the next call tries again.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = Self::stamps(&self.cfg);
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if *stamps == now {
            return Ok(false);
        }
        let table = CertTable::load(&self.cfg, &self.provider)?;
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        *stamps = now;
        Ok(true)
    }

    fn current(&self) -> Arc<CertTable> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().pick(hello.server_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(n: u8) -> Arc<CertifiedKey> {
        // A table test needs distinct entries, not real keys: compare by pointer.
        let key = rustls::crypto::ring::sign::any_supported_type(
            &PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap(),
        )
        .unwrap();
        Arc::new(CertifiedKey::new(vec![CertificateDer::from(vec![n])], key))
    }

    const TEST_KEY: &str = include_str!("../../tests/fixtures/tls/localhost.key");

    #[test]
    fn exact_then_wildcard_then_default() {
        let (d, e, w) = (fake(1), fake(2), fake(3));
        let mut t = CertTable {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default: d.clone(),
        };
        t.exact.insert("a.example.com".into(), e.clone());
        t.wildcard.insert("example.com".into(), w.clone());
        assert!(Arc::ptr_eq(&t.pick(Some("A.Example.com")), &e));
        assert!(Arc::ptr_eq(&t.pick(Some("b.example.com")), &w));
        // A wildcard matches one label only.
        assert!(Arc::ptr_eq(&t.pick(Some("x.b.example.com")), &d));
        assert!(Arc::ptr_eq(&t.pick(Some("example.com")), &d));
        assert!(Arc::ptr_eq(&t.pick(None), &d));
    }
}
