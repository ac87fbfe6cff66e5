//! RFC 9112 framing at the viewer edge through the real binary: every ambiguous or malformed request
//! is answered 400 (or its specific 4xx) and the connection closed; keep-alive, pipelining (responses in
//! order), the configured limits and timeouts.

mod common;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

fn origin() -> Origin {
    Origin::start(|req, s| {
        respond(
            s,
            "200 OK",
            "Cache-Control: max-age=300\r\n",
            req.path.as_bytes(),
        )
    })
}

/// Sends `bytes`, expects `status` and a closed connection; the origin must not have been asked.
fn rejected(v: &Verge, o: &Origin, bytes: &[u8], status: u16) {
    let before = o.requests().len();
    let (r, mut rd) = raw(v, bytes);
    let r = r.unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(bytes)));
    assert_eq!(
        r.status,
        status,
        "{:?} -> {r:?}",
        String::from_utf8_lossy(bytes)
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(rd.closed(), "connection must be closed after {status}");
    assert_eq!(
        o.requests().len(),
        before,
        "a rejected request must not reach the origin"
    );
}

#[test]
fn ambiguous_framing_is_rejected_with_400() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x012\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    for c in cases {
        rejected(&v, &o, c, 400);
    }
}

#[test]
fn bad_chunked_request_bodies_are_rejected() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    for body in [
        &b"zz\r\nabc\r\n0\r\n\r\n"[..],
        b"3\nabc\r\n0\r\n\r\n",
        b"3\r\nabcX\r\n0\r\n\r\n",
        b"fffffffffffffffff\r\n",
    ] {
        let mut req =
            b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        req.extend_from_slice(body);
        let (r, mut rd) = raw(&v, &req);
        let r = r.unwrap();
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert!(rd.closed());
    }
}

#[test]
fn limits_answer_414_431_413() {
    let o = origin();
    let v = Verge::start(&o.url(), "[http]\nmax_request_line = 200\nmax_headers = 10\nmax_header_bytes = 2048\nmax_request_body = 1000\n");
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(300));
    rejected(&v, &o, long.as_bytes(), 414);
    let many: String = (0..20).map(|i| format!("X-{i}: 1\r\n")).collect();
    rejected(
        &v,
        &o,
        format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes(),
        431,
    );
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "y".repeat(3000)
    );
    rejected(&v, &o, big.as_bytes(), 431);
    rejected(
        &v,
        &o,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n",
        413,
    );
    // A chunked upload that grows past the limit is cut off with 413 too.
    let mut req = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        req.extend_from_slice(b"200\r\n");
        req.extend_from_slice(&[b'q'; 512]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (r, _) = raw(&v, &req);
    assert_eq!(r.unwrap().status, 413);
}

#[test]
fn keep_alive_and_pipelined_responses_in_order() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    get(&v, "/p1");
    let mut rd = send(
        &v,
        b"GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /p3 HTTP/1.1\r\nHost: a\r\n\r\nGET /p4 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(rd.response("GET").unwrap().body, b"/p1");
    assert_eq!(rd.response("GET").unwrap().body, b"/p2");
    let h = rd.response("HEAD").unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(rd.response("GET").unwrap().body, b"/p4");
    // Still open: another request on the same connection works.
    rd.s.write_all(b"GET /p2 HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let again = rd.response("GET").unwrap();
    assert_eq!(again.body, b"/p2");
    assert_eq!(again.x_cache(), "Hit from verge");
}

#[test]
fn http10_and_connection_close() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let (r, mut rd) = raw(&v, b"GET /c HTTP/1.0\r\n\r\n");
    assert_eq!(r.unwrap().body, b"/c");
    assert!(rd.closed());
    let (r, mut rd) = raw(
        &v,
        b"GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.unwrap().header("connection"), Some("close"));
    assert!(rd.closed());
}

#[test]
fn request_cap_closes_after_n() {
    let o = origin();
    let v = Verge::start(&o.url(), "[http]\nmax_requests_per_connection = 2\n");
    let mut rd = send(&v, b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(rd.response("GET").unwrap().header("connection").is_none());
    assert_eq!(
        rd.response("GET").unwrap().header("connection"),
        Some("close")
    );
    assert!(
        rd.response("GET").is_none(),
        "the third request is not answered on this connection"
    );
}

#[test]
fn slowloris_head_times_out_and_idle_connections_close() {
    let o = origin();
    let v = Verge::start(
        &o.url(),
        "[http]\nheader_read_timeout = \"600ms\"\nkeepalive_timeout = \"400ms\"\n",
    );
    let mut s = v.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
    let t = Instant::now();
    let mut rd = Reader::new(s);
    let r = rd.response("GET").expect("408");
    assert_eq!(r.status, 408);
    assert!(t.elapsed() < Duration::from_secs(3));
    // Dribbling a byte at a time does not extend the head deadline.
    let mut s = v.connect();
    let t = Instant::now();
    for b in b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: "
        .iter()
        .chain(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter())
    {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if t.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the head deadline must cut a dribbling client"
    );
    // An idle keep-alive connection is closed after keepalive_timeout.
    let s = v.connect();
    let t = Instant::now();
    let mut rd = Reader::new(s);
    assert!(rd.closed());
    assert!(t.elapsed() < Duration::from_secs(3));
}
