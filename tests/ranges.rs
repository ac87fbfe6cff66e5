//! Byte ranges through the real binary: a range on a miss fills the whole object while the viewer
//! gets its 206 from the arriving bytes; ranges on hits (single, suffix, open, multiple as
//! multipart/byteranges), 416 when unsatisfiable, If-Range.

mod common;
use common::*;

fn origin() -> Origin {
    Origin::start(|_, s| {
        respond(
            s,
            "200 OK",
            "Cache-Control: max-age=300\r\nETag: \"r1\"\r\nContent-Type: text/plain\r\n",
            b"0123456789",
        )
    })
}

#[test]
fn a_range_on_a_miss_fills_the_whole_object() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let r = get_with(&v, "/obj", "Range: bytes=2-5\r\n");
    assert_eq!(r.status, 206, "{r:?}");
    assert_eq!(r.body, b"2345");
    assert_eq!(r.header("content-range"), Some("bytes 2-5/10"));
    assert!(
        o.requests()[0].header("range").is_none(),
        "the fill asks for the whole object"
    );
    let full = get(&v, "/obj");
    assert_eq!((full.status, full.x_cache()), (200, "Hit from verge"));
    assert_eq!(full.body, b"0123456789");
    assert_eq!(o.count("/obj"), 1);
}

#[test]
fn ranges_on_hits() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    get(&v, "/obj");
    let r = get_with(&v, "/obj", "Range: bytes=-3\r\n");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"789"[..]));
    assert_eq!(r.header("content-range"), Some("bytes 7-9/10"));
    let r = get_with(&v, "/obj", "Range: bytes=8-\r\n");
    assert_eq!(r.body, b"89");
    let r = get_with(&v, "/obj", "Range: bytes=0-1, 5-6\r\n");
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap().to_string();
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let body = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        body.contains("Content-Range: bytes 0-1/10\r\n\r\n01\r\n"),
        "{body}"
    );
    assert!(
        body.contains("Content-Range: bytes 5-6/10\r\n\r\n56\r\n"),
        "{body}"
    );
    assert_eq!(
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        r.body.len()
    );
    let r = get_with(&v, "/obj", "Range: bytes=20-30\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */10"));
    let r = get_with(&v, "/obj", "Range: bytes=0-1\r\nIf-Range: \"other\"\r\n");
    assert_eq!(
        (r.status, r.body.len()),
        (200, 10),
        "If-Range mismatch: the whole object"
    );
    let r = get_with(&v, "/obj", "Range: bytes=0-1\r\nIf-Range: \"r1\"\r\n");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"01"[..]));
    let r = get_with(&v, "/obj", "Range: items=0-1\r\n");
    assert_eq!(r.status, 200, "unknown range units are ignored");
    assert_eq!(o.count("/obj"), 1);
}

#[test]
fn a_stored_partial_response_answers_ranges_inside_it() {
    // An origin that answers 206 with bytes 4-9 of a 10-byte representation whatever it is asked.
    let o = Origin::start(|_, s| {
        let _ = std::io::Write::write_all(
            s,
            b"HTTP/1.1 206 Partial Content\r\nCache-Control: max-age=300\r\nContent-Range: bytes 4-9/10\r\nContent-Length: 6\r\n\r\n456789",
        );
        Then::KeepAlive
    });
    let v = Verge::start(&o.url(), "");
    let r = get_with(&v, "/part", "Range: bytes=-6\r\n");
    assert_eq!((r.status, r.body.as_slice()), (206, &b"456789"[..]));
    for (range, body, cr) in [
        ("bytes=6-8", &b"678"[..], "bytes 6-8/10"),
        ("bytes=-1", b"9", "bytes 9-9/10"),
        ("bytes=5-", b"56789", "bytes 5-9/10"),
    ] {
        let r = get_with(&v, "/part", &format!("Range: {range}\r\n"));
        assert_eq!((r.status, r.body.as_slice()), (206, body), "{range}");
        assert_eq!(r.header("content-range"), Some(cr));
        assert_eq!(r.x_cache(), "Hit from verge");
    }
    assert_eq!(o.count("/part"), 1);
    // A range outside the stored span, or no range at all, goes to the origin.
    get_with(&v, "/part", "Range: bytes=0-1\r\n");
    assert_eq!(o.count("/part"), 2);
}
