//! Misses stream from the first byte; concurrent misses collapse into one origin request across
//! shards; a viewer leaving does not stop a fill; an origin that closes early is never stored and
//! never presented as complete.

mod common;
use common::*;
use std::io::Write;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const FIRST: usize = 16 * 1024;
const TOTAL: usize = 256 * 1024;

/// `/slow*`: 16 KiB at once, a pause, then the rest. `/trunc`: declares more than it sends.
/// `/trunc-chunked`: a chunked body that never ends. `/nostore-slow`: uncacheable and slow.
fn origin(pause: Duration) -> Origin {
    Origin::start(move |req, s| {
        let p = req.path.as_str();
        if p.starts_with("/slow") {
            let head = format!(
                "HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\nContent-Length: {TOTAL}\r\n\r\n"
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&vec![b'a'; FIRST]);
            thread::sleep(pause);
            let _ = s.write_all(&vec![b'b'; TOTAL - FIRST]);
            Then::KeepAlive
        } else if p == "/trunc" {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\nContent-Length: 100000\r\n\r\n",
            );
            let _ = s.write_all(&vec![b'x'; 50_000]);
            thread::sleep(Duration::from_millis(100));
            Then::Close
        } else if p == "/trunc-chunked" {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
            thread::sleep(Duration::from_millis(100));
            Then::Close
        } else if p == "/nostore-slow" {
            thread::sleep(Duration::from_millis(300));
            respond(s, "200 OK", "Cache-Control: no-store\r\n", b"private stuff")
        } else {
            respond(s, "200 OK", "Cache-Control: max-age=300\r\n", b"ok")
        }
    })
}

/// GET on a fresh connection; returns (time to first body byte, response).
fn timed_get(port: u16, path: &str) -> (Duration, Response) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t = Instant::now();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes())
        .unwrap();
    let mut rd = Reader::new(s);
    // Read until the head and some body bytes are in.
    let mut first = None;
    loop {
        let mut tmp = [0u8; 65536];
        let n = std::io::Read::read(&mut rd.s, &mut tmp).unwrap_or(0);
        if n == 0 {
            break;
        }
        rd.buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = rd.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if rd.buf.len() > p + 4 {
                first = Some(t.elapsed());
                break;
            }
        }
    }
    let r = rd.response("GET").unwrap();
    (first.unwrap_or(t.elapsed()), r)
}

#[test]
fn miss_streams_from_the_first_byte() {
    let o = origin(Duration::from_secs(2));
    let v = Verge::start(&o.url(), "");
    let t = Instant::now();
    let (ttfb, r) = timed_get(v.port, "/slow-ttfb");
    assert!(
        ttfb < Duration::from_millis(300),
        "first byte after {ttfb:?}: not streamed"
    );
    assert!(t.elapsed() >= Duration::from_secs(2));
    assert_eq!(r.body.len(), TOTAL);
    assert!(r.complete);
    let (_, hit) = timed_get(v.port, "/slow-ttfb");
    assert_eq!(hit.x_cache(), "Hit from verge");
    assert_eq!(o.count("/slow-ttfb"), 1);
}

#[test]
fn concurrent_viewers_on_every_shard_collapse_into_one_origin_request() {
    let o = origin(Duration::from_millis(1500));
    let v = Verge::start(&o.url(), "[server]\nshards = 2\nshard_header = true\n");
    let n = 200;
    let barrier = Arc::new(Barrier::new(n));
    let port = v.port;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let b = barrier.clone();
            thread::spawn(move || {
                b.wait();
                timed_get(port, "/slow-collapse")
            })
        })
        .collect();
    let results: Vec<(Duration, Response)> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        o.count("/slow-collapse"),
        1,
        "one origin request for all viewers"
    );
    let mut shards = std::collections::HashSet::new();
    let slowest = results.iter().map(|(t, _)| *t).max().unwrap();
    eprintln!("{n} collapsed viewers: slowest first byte after {slowest:?}");
    for (ttfb, r) in &results {
        assert_eq!(r.status, 200);
        assert!(r.complete);
        assert_eq!(r.body.len(), TOTAL);
        assert!(
            r.body[..FIRST].iter().all(|&b| b == b'a')
                && r.body[FIRST..].iter().all(|&b| b == b'b')
        );
        assert!(
            *ttfb < Duration::from_millis(1000),
            "waiters stream too: first byte after {ttfb:?}"
        );
        shards.insert(r.header("x-verge-shard").unwrap().to_string());
    }
    if common::cpus() >= 2 {
        assert_eq!(
            shards.len(),
            2,
            "viewers arrived on both shards: {shards:?}"
        );
    }
}

#[test]
fn a_viewer_leaving_does_not_stop_the_fill() {
    let o = origin(Duration::from_millis(500));
    let v = Verge::start(&o.url(), "");
    let mut s = v.connect();
    s.write_all(b"GET /slow-leave HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .unwrap();
    let mut tmp = [0u8; 1024];
    let _ = std::io::Read::read(&mut s, &mut tmp).unwrap();
    drop(s);
    thread::sleep(Duration::from_millis(1200));
    let r = get(&v, "/slow-leave");
    assert_eq!(r.x_cache(), "Hit from verge", "{r:?}");
    assert_eq!(r.body.len(), TOTAL);
    assert_eq!(o.count("/slow-leave"), 1);
}

#[test]
fn truncated_origin_bodies_are_never_stored_or_presented_complete() {
    let o = origin(Duration::from_millis(10));
    let v = Verge::start(&o.url(), "");
    for _ in 0..2 {
        let r = get(&v, "/trunc");
        assert!(
            !r.complete,
            "viewer must see the body cut short: {} bytes",
            r.body.len()
        );
        assert!(r.body.len() < 100_000);
        let r = get(&v, "/trunc-chunked");
        assert!(
            r.chunked && !r.complete,
            "a chunked body must not be terminated"
        );
    }
    assert_eq!(o.count("/trunc"), 2, "a truncated body must not be stored");
    assert_eq!(o.count("/trunc-chunked"), 2);
}

#[test]
fn collapsed_waiters_of_an_uncacheable_response_go_to_the_origin_at_once() {
    let o = origin(Duration::from_millis(10));
    let v = Verge::start(&o.url(), "[server]\nshards = 1\n");
    let n = 5;
    let barrier = Arc::new(Barrier::new(n));
    let port = v.port;
    let t = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let b = barrier.clone();
            thread::spawn(move || {
                b.wait();
                timed_get(port, "/nostore-slow").1
            })
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert_eq!(r.body, b"private stuff", "{r:?}");
    }
    assert_eq!(
        o.count("/nostore-slow"),
        n,
        "every viewer got its own origin response"
    );
    // Waiters were released after the first head, not serialised one after another (5 x 300 ms).
    assert!(
        t.elapsed() < Duration::from_millis(1200),
        "took {:?}",
        t.elapsed()
    );
    // And the URL is remembered as uncacheable: later requests are not collapsed behind a fill.
    let r = get(&v, "/nostore-slow");
    assert!(
        r.header("cache-status").unwrap().contains("uncacheable"),
        "{r:?}"
    );
}
