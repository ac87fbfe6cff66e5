//! The TLS client configuration for https origins: trusted roots from the system's store or a
//! configured PEM bundle, SNI and verification on by default. Turning verification off is possible
//! for the configured origin only and is logged loudly at start.

use super::{provider, TlsError};
use crate::config::Config;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// Builds the origin client configuration, or `None` for an http:// origin.
pub fn client_config(cfg: &Config) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    let addr = match cfg.origin_addr() {
        Ok(a) if a.tls => a,
        _ => return Ok(None),
    };
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let mut cc = if cfg.origin.tls_verify {
        builder
            .with_root_certificates(roots(&cfg.origin.ca_file)?)
            .with_no_client_auth()
    } else {
        eprintln!(
            "verge: WARNING: origin.tls_verify = false: the certificate of origin {} is NOT verified; \
             anyone on the path can impersonate it",
            addr.host
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    };
    cc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(cc)))
}

/// The name sent by SNI and checked against the origin's certificate.
pub fn server_name(cfg: &Config) -> Result<ServerName<'static>, TlsError> {
    let name = if cfg.origin.tls_server_name.is_empty() {
        cfg.origin_addr()
            .map(|a| {
                a.host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            })
            .unwrap_or_default()
    } else {
        cfg.origin.tls_server_name.clone()
    };
    ServerName::try_from(name.clone()).map_err(|e| TlsError::CaBundle {
        path: "origin.tls_server_name".into(),
        reason: format!("{name:?}: {e}"),
    })
}

fn roots(ca_file: &str) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    let bad = |reason: String| TlsError::CaBundle {
        path: if ca_file.is_empty() {
            "the system store".into()
        } else {
            ca_file.into()
        },
        reason,
    };
    if ca_file.is_empty() {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(bad(format!(
                "no usable CA certificates ({:?})",
                found.errors
            )));
        }
    } else {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let (added, _) = store.add_parsable_certificates(certs);
        if added == 0 {
            return Err(bad("no usable CA certificates".into()));
        }
    }
    Ok(store)
}

/// Accepts any certificate (signatures are still checked). Only with `origin.tls_verify = false`.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
