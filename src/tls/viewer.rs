//! The viewer-facing TLS configuration: versions, ALPN, the SNI certificate resolver, resumption
//! (tickets: rotating random keys, or the shared key file; plus a session-ID cache), and the
//! periodic reload of the files behind them.

use super::certs::CertResolver;
use super::tickets::KeyFileTicketer;
use super::{provider, TlsError};
use crate::config::Config;
use rustls::server::{ServerConfig, ServerSessionMemoryCache};
use std::path::Path;
use std::sync::Arc;

/// Everything the TLS listeners of every shard share.
#[derive(Debug)]
pub struct ViewerTls {
    pub config: Arc<ServerConfig>,
    certs: Arc<CertResolver>,
    tickets: Option<Arc<KeyFileTicketer>>,
}

impl ViewerTls {
    /// Builds the configuration, loading every certificate and key (errors name the file).
    pub fn new(cfg: &Config) -> Result<ViewerTls, TlsError> {
        let t = &cfg.tls;
        let provider = provider();
        let versions: &[&rustls::SupportedProtocolVersion] = if t.min_version == "1.3" {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let certs = Arc::new(CertResolver::new(t, provider.clone())?);
        let mut sc = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        sc.alpn_protocols = if cfg.http2.tls {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        sc.session_storage = ServerSessionMemoryCache::new(t.session_cache.max(1));
        let mut tickets = None;
        if t.session_tickets {
            if t.ticket_key_file.is_empty() {
                sc.ticketer = rustls::crypto::ring::Ticketer::new()?;
            } else {
                let k = Arc::new(KeyFileTicketer::open(Path::new(&t.ticket_key_file))?);
                sc.ticketer = k.clone();
                tickets = Some(k);
            }
        } else {
            sc.send_tls13_tickets = 0;
        }
        Ok(ViewerTls {
            config: Arc::new(sc),
            certs,
            tickets,
        })
    }

    /// Checks the certificate, key and ticket-key files and swaps in whatever changed. Errors keep
    /// the previous material in use; they are returned for logging.
    pub fn reload_if_changed(&self) -> Vec<String> {
        let mut log = Vec::new();
        match self.certs.reload_if_changed() {
            Ok(true) => log.push("certificates reloaded".to_string()),
            Ok(false) => {}
            Err(e) => log.push(format!(
                "certificate reload failed, keeping the old ones: {e}"
            )),
        }
        if let Some(k) = &self.tickets {
            match k.reload_if_changed() {
                Ok(true) => log.push("ticket keys reloaded".to_string()),
                Ok(false) => {}
                Err(e) => log.push(format!(
                    "ticket key reload failed, keeping the old ones: {e}"
                )),
            }
        }
        log
    }
}
