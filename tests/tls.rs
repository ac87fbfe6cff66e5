//! TLS through the real binary: certificates by SNI (exact, wildcard, default), a certificate swap
//! on disk picked up by new connections while an old one finishes, a plaintext request on the TLS
//! port, the minimum version, session resumption (within one instance, and between two instances
//! sharing a ticket key file), https origins (verified, refused, verification off), and the viewer
//! protocol policy.

mod common;
use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn origin() -> Origin {
    Origin::start(|req, s| {
        let p = req.path.as_str();
        if p == "/big" {
            let body: Vec<u8> = (0..(2 << 20)).map(|i: u32| (i % 253) as u8).collect();
            return respond(s, "200 OK", "Cache-Control: max-age=300\r\n", &body);
        }
        respond(s, "200 OK", "Cache-Control: max-age=300\r\n", p.as_bytes())
    })
}

/// `curl -v` over TLS to `name` (resolved to 127.0.0.1); returns (exit code, stderr, body).
fn curl_tls(port: u16, name: &str, path: &str, extra: &[&str]) -> (i32, String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "15", "--cacert"])
        .arg(fixture("ca.pem"))
        .arg("--resolve")
        .arg(format!("{name}:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("https://{name}:{port}{path}"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
        out.stdout,
    )
}

fn sni_toml() -> String {
    format!(
        "reload_interval = \"200ms\"\nsni = [{{ names = [\"exact.test\"], cert = {:?}, key = {:?} }}, \
         {{ names = [\"*.wild.test\"], cert = {:?}, key = {:?} }}]\n",
        fixture("exact.pem"),
        fixture("exact.key"),
        fixture("wild.pem"),
        fixture("wild.key")
    )
}

#[test]
fn certificates_are_chosen_by_sni() {
    let o = origin();
    let v = Verge::start_tls(&o.url(), &sni_toml(), "");
    let (code, log, body) = curl_tls(v.tls_port, "exact.test", "/a", &[]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("CN=verge-exact"), "{log}");
    assert_eq!(body, b"/a");
    let (code, log, _) = curl_tls(v.tls_port, "a.wild.test", "/a", &[]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("CN=verge-wildcard"), "{log}");
    // No match: the default certificate (for localhost).
    let (code, log, _) = curl_tls(v.tls_port, "localhost", "/a", &[]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("CN=verge-default"), "{log}");
    let (code, log, _) = curl_tls(v.tls_port, "other.test", "/a", &["-k"]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("CN=verge-default"), "{log}");
}

#[test]
fn certificate_swap_reaches_new_connections_while_old_ones_finish() {
    let o = origin();
    let v = Verge::start_tls(&o.url(), "reload_interval = \"200ms\"\n", "");
    let (_, log, _) = curl_tls(v.tls_port, "localhost", "/big", &[]);
    assert!(
        log.contains("CN=verge-default\n") || log.contains("CN=verge-default\r"),
        "{log}"
    );
    // A slow download (about 3 s) on the old certificate.
    let slow = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--limit-rate",
            "700K",
            "--cacert",
        ])
        .arg(fixture("ca.pem"))
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", v.tls_port))
        .arg(format!("https://localhost:{}/big", v.tls_port))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::copy(fixture("localhost2.key"), v.dir.0.join("key.pem")).unwrap();
    std::fs::copy(fixture("localhost2.pem"), v.dir.0.join("cert.pem")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (code, log, _) = curl_tls(v.tls_port, "localhost", "/a", &[]);
        assert_eq!(code, 0, "{log}");
        if log.contains("CN=verge-default-2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate not picked up: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = slow.wait_with_output().unwrap();
    assert!(out.status.success(), "the old connection was disturbed");
    assert_eq!(out.stdout.len(), 2 << 20);
}

#[test]
fn plaintext_on_the_tls_port_is_closed_without_harm() {
    let o = origin();
    let v = Verge::start_tls(&o.url(), "", "");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", v.tls_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let start = Instant::now();
    let _ = s.read_to_end(&mut buf);
    assert!(start.elapsed() < Duration::from_secs(4), "not closed");
    assert!(!String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"));
    let (code, log, body) = curl_tls(v.tls_port, "localhost", "/after", &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(body, b"/after");
}

#[test]
fn minimum_version_is_enforced() {
    let o = origin();
    let v = Verge::start_tls(&o.url(), "min_version = \"1.3\"\n", "");
    let (code, _, _) = curl_tls(v.tls_port, "localhost", "/a", &["--tls-max", "1.2"]);
    assert_ne!(code, 0, "TLS 1.2 accepted despite min_version 1.3");
    let (code, log, _) = curl_tls(v.tls_port, "localhost", "/a", &[]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("TLSv1.3"), "{log}");
}

/// One `openssl s_client` exchange; returns its stdout. `sess_in`/`sess_out` carry the session.
fn s_client(port: u16, version: &str, sess_flag: &str, sess: &std::path::Path) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", "localhost", version, "-ign_eof", sess_flag])
        .arg(sess)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /r HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn sessions_resume_within_an_instance_and_across_instances_sharing_ticket_keys() {
    let o = origin();
    let dir = temp_dir();
    let keys = dir.0.join("tickets.keys");
    std::fs::write(
        &keys,
        "# test key\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let tls = format!("ticket_key_file = {:?}\n", keys.display().to_string());
    let a = Verge::start_tls(&o.url(), &tls, "");
    let b = Verge::start_tls(&o.url(), &tls, "");
    let plain = Verge::start_tls(&o.url(), "", "");
    for version in ["-tls1_3", "-tls1_2"] {
        let sess = dir.0.join(format!("sess{version}"));
        let first = s_client(a.tls_port, version, "-sess_out", &sess);
        assert!(first.contains("New, TLSv1."), "{version}: {first}");
        assert!(first.contains("HTTP/1.1 200"), "{version}: {first}");
        let again = s_client(a.tls_port, version, "-sess_in", &sess);
        assert!(
            again.contains("Reused, TLSv1."),
            "{version} same host: {again}"
        );
        let other = s_client(b.tls_port, version, "-sess_in", &sess);
        assert!(
            other.contains("Reused, TLSv1."),
            "{version} other host: {other}"
        );
        // An instance with its own random keys cannot open the ticket: a full handshake.
        let stranger = s_client(plain.tls_port, version, "-sess_in", &sess);
        assert!(stranger.contains("New, TLSv1."), "{version}: {stranger}");
        assert!(stranger.contains("HTTP/1.1 200"), "{version}: {stranger}");
    }
}

#[test]
fn https_origin_is_verified_by_default() {
    let o = origin();
    let front = Verge::start_tls(&o.url(), "", "");
    let url = format!("https://127.0.0.1:{}", front.tls_port);
    let good = Verge::start(
        &url,
        &format!(
            "[origin]\nca_file = {:?}\ntls_server_name = \"localhost\"\n",
            fixture("ca.pem")
        ),
    );
    let r = get(&good, "/through-tls");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, b"/through-tls");
    // This Verge's own X-Cache comes last (the front's is passed through before it).
    let again = get(&good, "/through-tls");
    assert_eq!(again.header_all("x-cache").last(), Some(&"Hit from verge"));
    assert_eq!(o.count("/through-tls"), 1);
    // Pooled: a second miss reuses the TLS connection (the front saw one connection's requests).
    assert_eq!(get(&good, "/second").body, b"/second");
    // A bundle that does not hold the issuer: refused, 502.
    let wrong = Verge::start(
        &url,
        &format!(
            "[origin]\nca_file = {:?}\ntls_server_name = \"localhost\"\n",
            fixture("localhost.pem")
        ),
    );
    assert_eq!(get(&wrong, "/refused").status, 502);
    // A name the certificate does not carry: refused.
    let misnamed = Verge::start(
        &url,
        &format!(
            "[origin]\nca_file = {:?}\ntls_server_name = \"exact.test\"\n",
            fixture("ca.pem")
        ),
    );
    assert_eq!(get(&misnamed, "/refused").status, 502);
    // Verification off (loudly): served.
    let off = Verge::start(&url, "[origin]\ntls_verify = false\n");
    assert_eq!(get(&off, "/unverified").status, 200);
}

#[test]
fn viewer_protocol_policy() {
    let o = origin();
    let v = Verge::start_tls(
        &o.url(),
        "",
        "[server]\nviewer_protocol_policy = \"redirect-to-https\"\n\
         host_policy = { \"open.test\" = \"allow-all\", \"secure.test\" = \"https-only\" }\n",
    );
    let host = |h: &str, path: &str| {
        raw(
            &v,
            format!("GET {path} HTTP/1.1\r\nHost: {h}\r\n\r\n").as_bytes(),
        )
        .0
        .expect("a response")
    };
    let r = host("site.test", "/p?q=1");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location").unwrap(),
        format!("https://site.test:{}/p?q=1", v.tls_port)
    );
    assert_eq!(host("open.test", "/p").status, 200);
    assert_eq!(host("secure.test:80", "/p").status, 403);
    assert_eq!(o.count("/p?q=1"), 0);
    // Over TLS every host is served.
    for host in ["site.test", "secure.test"] {
        let (code, log, body) = curl_tls(
            v.tls_port,
            "localhost",
            "/p",
            &["-H", &format!("Host: {host}")],
        );
        assert_eq!(code, 0, "{log}");
        assert_eq!(body, b"/p", "{host}");
    }
}
