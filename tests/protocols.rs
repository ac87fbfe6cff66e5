//! The cache behaviours run over every viewer protocol: HTTP/1.1 and HTTP/2 in cleartext (h2c with
//! prior knowledge), and both over TLS (ALPN), with curl as the client. Hits, streaming misses,
//! collapsing (many concurrent streams on one HTTP/2 connection), ranges, conditionals, HEAD,
//! uploads, origin errors and truncated origin bodies must behave the same on all four; a body
//! cached through one protocol is served byte-identical through the others.

mod common;
use common::*;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Proto {
    H1,
    H2c,
    TlsH1,
    TlsH2,
}

const ALL: [Proto; 4] = [Proto::H1, Proto::H2c, Proto::TlsH1, Proto::TlsH2];

struct Curl {
    exit: i32,
    status: u16,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Curl {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn url_and_flags(v: &Verge, p: Proto, path: &str) -> (String, Vec<String>) {
    let tls = |f: &str| {
        vec![
            f.to_string(),
            "--cacert".into(),
            fixture("ca.pem"),
            "--resolve".into(),
            format!("localhost:{}:127.0.0.1", v.tls_port),
        ]
    };
    match p {
        Proto::H1 => (
            format!("http://127.0.0.1:{}{path}", v.port),
            vec!["--http1.1".into()],
        ),
        Proto::H2c => (
            format!("http://127.0.0.1:{}{path}", v.port),
            vec!["--http2-prior-knowledge".into()],
        ),
        Proto::TlsH1 => (
            format!("https://localhost:{}{path}", v.tls_port),
            tls("--http1.1"),
        ),
        Proto::TlsH2 => (
            format!("https://localhost:{}{path}", v.tls_port),
            tls("--http2"),
        ),
    }
}

/// Runs curl once; `extra` are more curl arguments.
fn curl(v: &Verge, p: Proto, path: &str, extra: &[&str]) -> Curl {
    let dir = temp_dir();
    let hdr = dir.0.join("h");
    let body = dir.0.join("b");
    let (url, flags) = url_and_flags(v, p, path);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "15", "-D"])
        .arg(&hdr)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_version}"])
        .args(&flags)
        .args(extra)
        .arg(&url)
        .output()
        .expect("run curl");
    let head = std::fs::read_to_string(&hdr).unwrap_or_default();
    // The last head (after any 1xx).
    let block = head
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .last()
        .unwrap_or("")
        .to_string();
    let mut lines = block.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Curl {
        exit: out.status.code().unwrap_or(-1),
        status,
        version: String::from_utf8_lossy(&out.stdout).to_string(),
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

fn expected_version(p: Proto) -> &'static str {
    match p {
        Proto::H1 | Proto::TlsH1 => "1.1",
        Proto::H2c | Proto::TlsH2 => "2",
    }
}

fn big_body() -> Vec<u8> {
    (0..(3 << 20) + 17)
        .map(|i: u32| (i * 31 % 251) as u8)
        .collect()
}

fn origin() -> Origin {
    Origin::start(|req, s| {
        let p = req.path.as_str();
        if p.ends_with("/big") {
            return respond(s, "200 OK", "Cache-Control: max-age=300\r\n", &big_body());
        }
        if p.ends_with("/slow") {
            std::thread::sleep(Duration::from_millis(400));
            return respond(s, "200 OK", "Cache-Control: max-age=300\r\n", b"slow body");
        }
        if p.ends_with("/etag") {
            return respond(
                s,
                "200 OK",
                "Cache-Control: max-age=300\r\nETag: \"v1\"\r\n",
                b"tagged",
            );
        }
        if p.ends_with("/truncated") {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\nContent-Length: 100\r\n\r\nonly part",
            );
            return Then::Close;
        }
        if p.ends_with("/chunked") {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
            return Then::KeepAlive;
        }
        if p.ends_with("/fields") {
            return respond(
                s,
                "200 OK",
                "Cache-Control: max-age=300\r\nContent-Type: text/x-verge\r\nX-Multi: a\r\nX-Multi: b\r\nETag: \"f1\"\r\n",
                b"fields",
            );
        }
        if req.method == "POST" {
            return respond(s, "200 OK", "", &req.body);
        }
        respond(s, "200 OK", "Cache-Control: max-age=300\r\n", p.as_bytes())
    })
}

fn start(o: &Origin) -> Verge {
    Verge::start_tls(&o.url(), "", "[server]\nshard_header = false\n")
}

#[test]
fn miss_then_hit_on_every_protocol() {
    let o = origin();
    let v = start(&o);
    for p in ALL {
        let path = format!("/hit/{p:?}");
        let a = curl(&v, p, &path, &[]);
        assert_eq!((a.exit, a.status), (0, 200), "{p:?}");
        assert_eq!(a.version, expected_version(p), "{p:?}");
        assert_eq!(a.body, path.as_bytes(), "{p:?}");
        assert!(a.header("x-cache").unwrap().starts_with("Miss"), "{p:?}");
        let b = curl(&v, p, &path, &[]);
        assert_eq!(b.body, path.as_bytes(), "{p:?}");
        assert!(b.header("x-cache").unwrap().starts_with("Hit"), "{p:?}");
        assert!(b.header("age").is_some(), "{p:?}");
        assert!(b.header("connection").is_none() || p == Proto::H1 || p == Proto::TlsH1);
        assert_eq!(o.count(&path), 1, "{p:?}");
    }
}

/// A hit's fields, lowercased and in order, without those that differ per response or per
/// protocol (Age, the TTL in Cache-Status, connection management).
fn hit_fields(r: &Curl) -> Vec<(String, String)> {
    r.headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| !["age", "cache-status", "connection", "keep-alive"].contains(&n.as_str()))
        .collect()
}

#[test]
fn a_hit_carries_the_same_fields_on_every_protocol() {
    let o = origin();
    let v = start(&o);
    let host = ["-H", "Host: fields.example"];
    let miss = curl(&v, Proto::H1, "/f/fields", &host);
    assert_eq!(miss.status, 200);
    let reference = hit_fields(&curl(&v, Proto::H1, "/f/fields", &host));
    assert!(reference.contains(&("x-multi".into(), "a".into())));
    assert!(reference.contains(&("x-multi".into(), "b".into())));
    assert!(reference.contains(&("content-length".into(), "6".into())));
    assert!(reference.contains(&("x-cache".into(), "Hit from verge".into())));
    for p in ALL {
        for extra in [&[][..], &["-I"][..]] {
            let mut args = host.to_vec();
            args.extend_from_slice(extra);
            let r = curl(&v, p, "/f/fields", &args);
            assert_eq!((r.exit, r.status), (0, 200), "{p:?} {extra:?}");
            assert_eq!(hit_fields(&r), reference, "{p:?} {extra:?}");
            let cs = r.header("cache-status").unwrap();
            assert!(cs.starts_with("verge; hit; ttl="), "{p:?}: {cs}");
            assert!(r.header("age").unwrap().parse::<u64>().is_ok(), "{p:?}");
            if extra.is_empty() {
                assert_eq!(r.body, b"fields", "{p:?}");
            }
        }
    }
    assert_eq!(o.count("/f/fields"), 1);
}

#[test]
fn one_cached_body_is_identical_over_all_protocols() {
    let o = origin();
    let v = start(&o);
    // One Host for all (the cache key includes the Host, and the ports differ).
    let host = ["-H", "Host: shared.example"];
    let first = curl(&v, Proto::TlsH2, "/shared/big", &host);
    assert_eq!(first.status, 200);
    assert_eq!(first.body, big_body());
    for p in ALL {
        let r = curl(&v, p, "/shared/big", &host);
        assert_eq!(r.exit, 0, "{p:?}");
        assert!(r.header("x-cache").unwrap().starts_with("Hit"), "{p:?}");
        assert_eq!(r.body.len(), first.body.len(), "{p:?}");
        assert!(r.body == first.body, "{p:?}: bodies differ");
    }
    assert_eq!(o.count("/shared/big"), 1);
    // A chunked origin body is re-framed for every protocol.
    for p in ALL {
        let r = curl(&v, p, "/shared/chunked", &host);
        assert_eq!(r.body, b"hello world", "{p:?}");
    }
}

#[test]
fn streaming_miss_of_a_large_object_on_every_protocol() {
    let o = origin();
    let v = start(&o);
    for p in ALL {
        let path = format!("/stream/{p:?}/big");
        let r = curl(&v, p, &path, &[]);
        assert_eq!((r.exit, r.status), (0, 200), "{p:?}");
        assert!(r.body == big_body(), "{p:?}: body differs");
        assert_eq!(
            r.header("content-length").map(|s| s.to_string()),
            Some(big_body().len().to_string()),
            "{p:?}"
        );
    }
}

#[test]
fn ranges_conditionals_and_head_on_every_protocol() {
    let o = origin();
    let v = start(&o);
    for p in ALL {
        let path = format!("/rch/{p:?}/etag");
        // Range on the miss, then on the hit.
        for _ in 0..2 {
            let r = curl(&v, p, &path, &["-H", "Range: bytes=1-3"]);
            assert_eq!(r.status, 206, "{p:?}");
            assert_eq!(r.body, b"agg", "{p:?}");
            assert_eq!(r.header("content-range"), Some("bytes 1-3/6"), "{p:?}");
        }
        let r = curl(&v, p, &path, &["-H", "Range: bytes=0-0,4-5"]);
        assert_eq!(r.status, 206, "{p:?}");
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("multipart/byteranges"));
        let r = curl(&v, p, &path, &["-H", "If-None-Match: \"v1\""]);
        assert_eq!(r.status, 304, "{p:?}");
        assert!(r.body.is_empty(), "{p:?}");
        let r = curl(&v, p, &path, &["-I"]);
        assert_eq!((r.exit, r.status), (0, 200), "{p:?}");
        assert_eq!(r.header("content-length"), Some("6"), "{p:?}");
        assert_eq!(o.count(&path), 1, "{p:?}");
    }
}

#[test]
fn uploads_pass_through_on_every_protocol() {
    let o = origin();
    let v = start(&o);
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8 + b'a').collect();
    let dir = temp_dir();
    let f = dir.0.join("payload");
    std::fs::write(&f, &payload).unwrap();
    let arg = format!("@{}", f.display());
    for p in ALL {
        let r = curl(&v, p, &format!("/up/{p:?}"), &["--data-binary", &arg]);
        assert_eq!((r.exit, r.status), (0, 200), "{p:?}");
        assert!(r.body == payload, "{p:?}: echoed body differs");
    }
}

#[test]
fn truncated_origin_body_is_visibly_incomplete_on_every_protocol() {
    let o = origin();
    let v = start(&o);
    for p in ALL {
        let path = format!("/trunc/{p:?}/truncated");
        let r = curl(&v, p, &path, &[]);
        assert_ne!(r.exit, 0, "{p:?}: a cut body must not look complete");
        assert!(r.body.len() < 100, "{p:?}");
        // Never cached: the next request goes to the origin again.
        let _ = curl(&v, p, &path, &[]);
        assert_eq!(o.count(&path), 2, "{p:?}");
    }
}

#[test]
fn concurrent_streams_collapse_to_one_origin_request() {
    // 20 concurrent streams of one slow miss on one HTTP/2 connection (h2load -c 1 -m 20).
    let o = origin();
    let v = start(&o);
    for (name, url) in [
        (
            "h2c",
            format!("http://127.0.0.1:{}/collapse/h2c/slow", v.port),
        ),
        (
            "tls",
            format!("https://127.0.0.1:{}/collapse/tls/slow", v.tls_port),
        ),
    ] {
        let out = Command::new("h2load")
            .args(["-n", "20", "-c", "1", "-m", "20"])
            .arg(&url)
            .output()
            .expect("h2load (nghttp2-client) is installed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("20 succeeded, 0 failed"), "{name}: {text}");
        assert!(text.contains("20 2xx"), "{name}: {text}");
        assert_eq!(o.count(&format!("/collapse/{name}/slow")), 1, "{name}");
    }
}

#[test]
fn origin_errors_are_the_same_on_every_protocol() {
    // An origin that refuses connections: 502 from Verge itself.
    let port = free_port();
    let v = Verge::start_tls(&format!("http://127.0.0.1:{port}"), "", "");
    for p in ALL {
        let r = curl(&v, p, "/down", &[]);
        assert_eq!((r.exit, r.status), (0, 502), "{p:?}");
        assert!(String::from_utf8_lossy(&r.body).contains("origin"), "{p:?}");
    }
}

#[test]
fn h2load_completes_without_errors_over_h2c_and_tls() {
    let o = origin();
    let v = start(&o);
    let _ = curl(&v, Proto::H1, "/load", &[]);
    for url in [
        format!("http://127.0.0.1:{}/load", v.port),
        format!("https://127.0.0.1:{}/load", v.tls_port),
    ] {
        let out = Command::new("h2load")
            .args(["-n", "2000", "-c", "4", "-m", "16"])
            .arg(&url)
            .output()
            .expect("h2load (nghttp2-client) is installed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("2000 succeeded, 0 failed, 0 errored"),
            "{url}: {text}"
        );
        assert!(text.contains("Application protocol: h2"), "{url}: {text}");
    }
}
