//! Criterion benchmarks of the CPU a TLS viewer costs a shard: a full TLS 1.3 handshake (ECDSA
//! P-256 certificate, X25519), a TLS 1.2 full handshake, a TLS 1.3 resumption from a ticket, and
//! the record encryption of a 16 KiB response piece. Both ends run in memory through rustls with
//! Verge's own server configuration (`tls::viewer::ViewerTls`), so the server's share is measured
//! together with the client's (roughly half of each figure is the client).
//!
//! Run with `cargo bench --bench tls`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};
use verge::config::Config;
use verge::tls::viewer::ViewerTls;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn server() -> Arc<rustls::ServerConfig> {
    let mut cfg = Config::default();
    cfg.tls.cert = fixture("localhost.pem");
    cfg.tls.key = fixture("localhost.key");
    ViewerTls::new(&cfg)
        .expect("test certificate loads")
        .config
        .clone()
}

fn client(versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(fixture("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cc =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    Arc::new(cc)
}

/// Runs one handshake to completion in memory; returns both ends.
fn handshake(
    server: &Arc<rustls::ServerConfig>,
    client: &Arc<ClientConfig>,
) -> (ClientConnection, ServerConnection) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = ClientConnection::new(client.clone(), name).unwrap();
    let mut s = ServerConnection::new(server.clone()).unwrap();
    let mut buf = Vec::with_capacity(8192);
    while c.is_handshaking() || s.is_handshaking() {
        buf.clear();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        s.process_new_packets().unwrap();
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
        }
        c.process_new_packets().unwrap();
    }
    (c, s)
}

fn bench_handshakes(cr: &mut Criterion) {
    let server = server();
    let mut g = cr.benchmark_group("tls");
    g.sample_size(30);
    let no_resume = |versions: &[&'static rustls::SupportedProtocolVersion]| {
        let mut c = (*client(versions)).clone();
        c.resumption = rustls::client::Resumption::disabled();
        Arc::new(c)
    };
    let tls13 = client(&[&rustls::version::TLS13]);
    let v13: [&'static rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    let v12: [&'static rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
    let full13 = no_resume(&v13);
    let full12 = no_resume(&v12);
    for (name, c) in [
        ("full handshake TLS 1.3", &full13),
        ("full handshake TLS 1.2", &full12),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let (c, _s) = handshake(&server, c);
                assert_eq!(c.handshake_kind(), Some(rustls::HandshakeKind::Full));
            })
        });
    }
    g.bench_function("resumed handshake TLS 1.3 (ticket)", |b| {
        b.iter(|| {
            // Same client config: its session store holds the tickets of earlier handshakes.
            let (c, _s) = handshake(&server, &tls13);
            c.handshake_kind()
        })
    });
    let (c, _) = handshake(&server, &tls13);
    let (c2, _) = handshake(&server, &tls13);
    eprintln!(
        "handshake kinds with a shared session store: {:?} then {:?}",
        c.handshake_kind(),
        c2.handshake_kind()
    );
    let (mut c, mut s) = handshake(&server, &tls13);
    let piece = vec![7u8; 16 << 10];
    g.throughput(Throughput::Bytes(piece.len() as u64));
    g.bench_function("encrypt 16 KiB record", |b| {
        let mut out = Vec::with_capacity(32 << 10);
        b.iter(|| {
            use std::io::Write;
            s.writer().write_all(&piece).unwrap();
            out.clear();
            while s.wants_write() {
                s.write_tls(&mut out).unwrap();
            }
            out.len()
        })
    });
    let _ = c.reader();
    g.finish();
}

criterion_group!(benches, bench_handshakes);
criterion_main!(benches);
