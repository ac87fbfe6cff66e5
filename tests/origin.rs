//! The origin client through the real binary: 502 for refused connections (fast) and garbage, 504 for
//! timeouts, strict response framing, keep-alive reuse, and the at-most-once re-send rule.

mod common;
use common::*;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn refused_origin_is_502_well_under_a_second() {
    let dead = free_port();
    let v = Verge::start(&format!("http://127.0.0.1:{dead}"), "");
    let t = Instant::now();
    let r = get(&v, "/x");
    assert_eq!(r.status, 502);
    assert_eq!(r.x_cache(), "Error from verge");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // The connection stays usable after a 502.
    let mut rd = send(
        &v,
        b"GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(rd.response("GET").unwrap().status, 502);
    assert_eq!(rd.response("GET").unwrap().status, 502);
}

#[test]
fn silent_origin_is_504_after_the_first_byte_timeout() {
    let o = Origin::start(|req, s| {
        if req.path == "/hang" {
            thread::sleep(Duration::from_secs(3));
        }
        respond(s, "200 OK", "", b"late")
    });
    let v = Verge::start(&o.url(), "[origin]\nfirst_byte_timeout = \"400ms\"\n");
    let t = Instant::now();
    let r = get(&v, "/hang");
    assert_eq!(r.status, 504);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(o.count("/hang"), 1, "a timed-out request is not re-sent");
}

#[test]
fn a_stalled_body_is_cut_not_stored() {
    let o = Origin::start(|_, s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 10\r\n\r\nabc",
        );
        thread::sleep(Duration::from_secs(2));
        Then::Close
    });
    let v = Verge::start(&o.url(), "[origin]\nread_timeout = \"300ms\"\n");
    let r = get(&v, "/stall");
    assert!(!r.complete);
    assert_eq!(r.body, b"abc");
    let r = get(&v, "/stall");
    assert!(!r.complete);
    assert_eq!(o.count("/stall"), 2);
}

#[test]
fn garbage_and_ambiguous_origin_responses_are_502() {
    let o = Origin::start(|req, s| {
        let bytes: &[u8] = match req.path.as_str() {
            "/garbage" => b"SPDY/9 what\r\n\r\n",
            "/cl-te" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "/two-cl" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "/bare-lf" => b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        };
        let _ = s.write_all(bytes);
        Then::Close
    });
    let v = Verge::start(&o.url(), "");
    for p in ["/garbage", "/cl-te", "/two-cl", "/bare-lf"] {
        let r = get(&v, p);
        assert_eq!(r.status, 502, "{p}: {r:?}");
    }
    assert_eq!(get(&v, "/fine").status, 200);
}

#[test]
fn keep_alive_to_the_origin_is_reused() {
    let o = Origin::start(|req, s| {
        respond(
            s,
            "200 OK",
            "Cache-Control: no-store\r\n",
            req.path.as_bytes(),
        )
    });
    let v = Verge::start(&o.url(), "[server]\nshards = 1\n");
    for i in 0..10 {
        assert_eq!(get(&v, &format!("/k{i}")).status, 200);
    }
    assert_eq!(
        o.connections.load(Ordering::SeqCst),
        1,
        "one pooled origin connection for sequential requests"
    );
}

#[test]
fn a_pooled_connection_closed_by_the_origin_is_retried_once() {
    // The origin answers keep-alive responses but closes each connection right after: the next request
    // on that pooled connection fails before any response byte and must be re-sent once, on a new one.
    let o = Origin::start(|req, s| {
        respond(
            s,
            "200 OK",
            "Cache-Control: no-store\r\n",
            req.path.as_bytes(),
        );
        Then::Close
    });
    let v = Verge::start(&o.url(), "[server]\nshards = 1\n");
    for i in 0..5 {
        let r = get(&v, &format!("/r{i}"));
        assert_eq!(r.status, 200, "{r:?}");
        thread::sleep(Duration::from_millis(50));
    }
    for i in 0..5 {
        assert_eq!(o.count(&format!("/r{i}")), 1);
    }
}

#[test]
fn a_request_is_never_sent_more_than_twice() {
    // Every connection is accepted, the request read, and the connection dropped without an answer.
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    let o = Origin::start(move |_, _| {
        s2.fetch_add(1, Ordering::SeqCst);
        Then::Close
    });
    let v = Verge::start(&o.url(), "[server]\nshards = 1\n");
    let r = get(&v, "/drop");
    assert_eq!(r.status, 502);
    thread::sleep(Duration::from_millis(100));
    assert!(
        seen.load(Ordering::SeqCst) <= 2,
        "sent {} times",
        seen.load(Ordering::SeqCst)
    );
    // A POST is never re-sent at all.
    let (r, _) = raw(
        &v,
        b"POST /drop-post HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
    );
    assert_eq!(r.unwrap().status, 502);
    assert_eq!(o.count("/drop-post"), 1);
}
