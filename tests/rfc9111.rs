//! RFC 9111 beyond the basics, through the real binary: revalidation with stored validators (304
//! refreshes headers and freshness), no-cache responses revalidated on every use, stale-while-revalidate,
//! stale-if-error (and its prohibition by must-revalidate), Surrogate-Control, and invalidation of
//! Location / Content-Location after unsafe methods.

mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// An origin whose answer depends on how many requests it has seen: `script(n, req)` with n from 1.
fn scripted(
    script: impl Fn(usize, &OriginRequest) -> (String, String, Vec<u8>) + Send + Sync + 'static,
) -> Origin {
    let n = Arc::new(AtomicUsize::new(0));
    Origin::start(move |req, s| {
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        let (status, extra, body) = script(i, req);
        if status.starts_with("304") {
            let head = format!("HTTP/1.1 {status}\r\n{extra}\r\n");
            let _ = std::io::Write::write_all(s, head.as_bytes());
            return Then::KeepAlive;
        }
        respond(s, &status, &extra, &body)
    })
}

#[test]
fn stale_responses_are_revalidated_and_304_refreshes_them() {
    let o = scripted(|n, req| match n {
        1 => (
            "200 OK".into(),
            "Cache-Control: max-age=1\r\nETag: \"e1\"\r\nX-Version: 1\r\n".into(),
            b"body".to_vec(),
        ),
        _ => {
            assert_eq!(
                req.header("if-none-match"),
                Some("\"e1\""),
                "the revalidation carries the stored validator"
            );
            (
                "304 Not Modified".into(),
                "Cache-Control: max-age=60\r\nETag: \"e1\"\r\nX-Version: 2\r\n".into(),
                vec![],
            )
        }
    });
    let v = Verge::start(&o.url(), "");
    assert_eq!(get(&v, "/r").body, b"body");
    thread::sleep(Duration::from_millis(1200));
    let r = get(&v, "/r");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"body", "the stored body is served after a 304");
    assert_eq!(
        r.header("x-version"),
        Some("2"),
        "headers are updated from the 304"
    );
    assert!(
        r.header("cache-status").unwrap().contains("fwd=stale"),
        "{r:?}"
    );
    let r = get(&v, "/r");
    assert_eq!(r.x_cache(), "Hit from verge", "fresh again for 60 s");
    assert_eq!(r.header("x-version"), Some("2"));
    assert_eq!(o.requests().len(), 2);
    // The viewer's own conditional is answered 304 after a revalidation too.
    let r = get_with(&v, "/r", "If-None-Match: \"e1\"\r\n");
    assert_eq!(r.status, 304);
}

#[test]
fn no_cache_responses_are_stored_but_revalidated_on_every_use() {
    let o = scripted(|n, _| match n {
        1 => (
            "200 OK".into(),
            "Cache-Control: no-cache\r\nLast-Modified: Thu, 01 Jan 2015 00:00:00 GMT\r\n".into(),
            b"nc".to_vec(),
        ),
        _ => (
            "304 Not Modified".into(),
            "Cache-Control: no-cache\r\n".into(),
            vec![],
        ),
    });
    let v = Verge::start(&o.url(), "");
    get(&v, "/nc");
    for _ in 0..2 {
        let r = get(&v, "/nc");
        assert_eq!(r.body, b"nc");
        assert!(
            r.header("cache-status").unwrap().contains("fwd=stale"),
            "{r:?}"
        );
    }
    let reqs = o.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs[1].header("if-modified-since").is_some());
}

#[test]
fn stale_while_revalidate_serves_stale_and_refreshes_in_the_background() {
    let o = scripted(|n, _| {
        (
            "200 OK".into(),
            format!("Cache-Control: max-age=1, stale-while-revalidate=60\r\nETag: \"v{n}\"\r\n"),
            format!("v{n}").into_bytes(),
        )
    });
    let v = Verge::start(&o.url(), "");
    assert_eq!(get(&v, "/swr").body, b"v1");
    thread::sleep(Duration::from_millis(1200));
    let r = get(&v, "/swr");
    assert_eq!(r.body, b"v1", "stale copy served at once");
    assert!(
        r.header("cache-status")
            .unwrap()
            .contains("stale-while-revalidate"),
        "{r:?}"
    );
    thread::sleep(Duration::from_millis(300));
    let r = get(&v, "/swr");
    assert_eq!(
        r.body, b"v2",
        "the background revalidation stored the new version"
    );
    assert_eq!(r.x_cache(), "Hit from verge");
    assert_eq!(o.requests().len(), 2);
}

#[test]
fn stale_if_error_serves_stale_unless_forbidden() {
    let o = scripted(|n, req| match (n, req.path.as_str()) {
        (1, _) | (2, _) => (
            "200 OK".into(),
            if req.path == "/sie" {
                "Cache-Control: max-age=1, stale-if-error=60\r\nETag: \"a\"\r\n".into()
            } else {
                "Cache-Control: max-age=1, stale-if-error=60, must-revalidate\r\nETag: \"a\"\r\n"
                    .into()
            },
            b"good".to_vec(),
        ),
        _ => (
            "503 Service Unavailable".into(),
            String::new(),
            b"down".to_vec(),
        ),
    });
    let v = Verge::start(&o.url(), "");
    get(&v, "/sie");
    get(&v, "/mr");
    thread::sleep(Duration::from_millis(1200));
    let r = get(&v, "/sie");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"good"[..]), "{r:?}");
    assert!(
        r.header("cache-status").unwrap().contains("stale-if-error"),
        "{r:?}"
    );
    let r = get(&v, "/mr");
    assert_eq!(
        r.status, 503,
        "must-revalidate forbids serving stale: {r:?}"
    );
}

#[test]
fn surrogate_control_takes_precedence_and_is_consumed() {
    let o = scripted(|_, req| match req.path.as_str() {
        "/sc-store" => (
            "200 OK".into(),
            "Cache-Control: no-store\r\nSurrogate-Control: max-age=60;verge\r\n".into(),
            b"s".to_vec(),
        ),
        "/sc-nostore" => (
            "200 OK".into(),
            "Cache-Control: max-age=60\r\nSurrogate-Control: no-store\r\n".into(),
            b"s".to_vec(),
        ),
        _ => (
            "200 OK".into(),
            "Cache-Control: max-age=60\r\nSurrogate-Control: max-age=60;other-cdn\r\n".into(),
            b"s".to_vec(),
        ),
    });
    let v = Verge::start(&o.url(), "");
    let a = get(&v, "/sc-store");
    assert!(
        a.header("surrogate-control").is_none(),
        "consumed directives are not forwarded"
    );
    assert_eq!(get(&v, "/sc-store").x_cache(), "Hit from verge");
    get(&v, "/sc-nostore");
    assert_eq!(get(&v, "/sc-nostore").x_cache(), "Miss from verge");
    let other = get(&v, "/sc-other");
    assert!(
        other.header("surrogate-control").is_some(),
        "directives for other devices are forwarded"
    );
    let reqs = o.requests();
    assert_eq!(
        reqs[0].header("surrogate-capability"),
        Some("verge=\"Surrogate/1.0\"")
    );
}

#[test]
fn unsafe_methods_invalidate_location_and_content_location() {
    let o = scripted(|_, req| match req.method.as_str() {
        "POST" => (
            "201 Created".into(),
            "Location: /loc\r\nContent-Location: http://example.test/cl\r\n".into(),
            vec![],
        ),
        _ => (
            "200 OK".into(),
            "Cache-Control: max-age=60\r\n".into(),
            req.path.clone().into_bytes(),
        ),
    });
    let v = Verge::start(&o.url(), "");
    for p in ["/loc", "/cl", "/other"] {
        get(&v, p);
        assert_eq!(get(&v, p).x_cache(), "Hit from verge");
    }
    let (r, _) = raw(
        &v,
        b"POST /form HTTP/1.1\r\nHost: example.test\r\nContent-Length: 1\r\n\r\nx",
    );
    assert_eq!(r.unwrap().status, 201);
    assert_eq!(get(&v, "/loc").x_cache(), "Miss from verge");
    assert_eq!(get(&v, "/cl").x_cache(), "Miss from verge");
    assert_eq!(get(&v, "/other").x_cache(), "Hit from verge");
}

#[test]
fn malformed_age_makes_a_response_stale() {
    let o = scripted(|_, _| {
        (
            "200 OK".into(),
            "Cache-Control: max-age=3600\r\nAge: 7200.0\r\n".into(),
            b"x".to_vec(),
        )
    });
    let v = Verge::start(&o.url(), "");
    get(&v, "/age");
    assert_eq!(get(&v, "/age").x_cache(), "Miss from verge");
}
