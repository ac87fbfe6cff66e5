//! Caching through the real binary: miss then hit, what is and is not stored (RFC 9111), Age,
//! Cache-Status / X-Cache, invalidation by unsafe methods, HEAD, Vary and viewer conditionals.

mod common;
use common::*;
use std::io::Write;

fn origin() -> Origin {
    Origin::start(|req, s| {
        let p = req.path.as_str();
        match p {
            "/cached" => respond(s, "200 OK", "Cache-Control: max-age=300\r\nETag: \"v1\"\r\n", b"cached body"),
            "/aged" => respond(s, "200 OK", "Cache-Control: max-age=300\r\nAge: 100\r\n", b"old"),
            "/no-store" => respond(s, "200 OK", "Cache-Control: no-store\r\n", b"x"),
            "/private" => respond(s, "200 OK", "Cache-Control: private, max-age=300\r\n", b"x"),
            "/no-cache" => respond(s, "200 OK", "Cache-Control: no-cache, max-age=300\r\n", b"x"),
            "/public-auth" => respond(s, "200 OK", "Cache-Control: public, max-age=300\r\n", b"x"),
            "/expires" => {
                let exp = httpdate(std::time::SystemTime::now() + std::time::Duration::from_secs(600));
                respond(s, "200 OK", &format!("Expires: {exp}\r\n"), b"x")
            }
            "/expired" => respond(s, "200 OK", "Expires: Thu, 01 Jan 1970 00:00:00 GMT\r\n", b"x"),
            "/bad-expires" => respond(s, "200 OK", "Expires: 0\r\n", b"x"),
            "/heuristic" => respond(s, "200 OK", "Last-Modified: Thu, 01 Jan 2015 00:00:00 GMT\r\n", b"x"),
            "/no-validator" => respond(s, "200 OK", "", b"x"),
            "/error" => respond(s, "500 Internal Server Error", "Last-Modified: Thu, 01 Jan 2015 00:00:00 GMT\r\n", b"boom"),
            "/not-found" => respond(s, "404 Not Found", "Last-Modified: Thu, 01 Jan 2015 00:00:00 GMT\r\n", b"nf"),
            "/vary" => {
                let ae = req.header("accept-encoding").unwrap_or("none").to_string();
                respond(s, "200 OK", "Cache-Control: max-age=300\r\nVary: Accept-Encoding\r\n", ae.as_bytes())
            }
            "/chunked" => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
                Then::KeepAlive
            }
            "/hop" => respond(s, "200 OK", "Connection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nCache-Control: max-age=300\r\n", b"x"),
            _ if req.method == "POST" || req.method == "PUT" || req.method == "PURGEISH" => {
                respond(s, "200 OK", "", &req.body)
            }
            _ => respond(s, "200 OK", "Cache-Control: max-age=300\r\n", p.as_bytes()),
        }
    })
}

fn httpdate(t: std::time::SystemTime) -> String {
    // RFC 7231 IMF-fixdate without extra crates.
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86400;
    let (h, m, s) = ((secs % 86400) / 3600, (secs % 3600) / 60, secs % 60);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // civil from days (Howard Hinnant)
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!("{wd}, {d:02} {mon} {y} {h:02}:{m:02}:{s:02} GMT")
}

#[test]
fn miss_then_hit_with_one_origin_request() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let a = get(&v, "/cached");
    assert_eq!(a.status, 200);
    assert_eq!(a.body, b"cached body");
    assert_eq!(a.x_cache(), "Miss from verge");
    assert!(
        a.header("cache-status").unwrap().contains("fwd=miss"),
        "{a:?}"
    );
    assert!(
        a.header("cache-status").unwrap().contains("stored"),
        "{a:?}"
    );
    let b = get(&v, "/cached");
    assert_eq!(b.body, b"cached body");
    assert_eq!(b.x_cache(), "Hit from verge");
    assert!(
        b.header("cache-status").unwrap().starts_with("verge; hit"),
        "{b:?}"
    );
    assert!(b.header("age").is_some());
    assert_eq!(b.header("via"), Some("1.1 verge"));
    assert_eq!(o.count("/cached"), 1);
}

#[test]
fn age_includes_the_origins_age() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let a = get(&v, "/aged");
    assert_eq!(
        a.header("age"),
        Some("100"),
        "a miss forwards the age the response arrived with"
    );
    let b = get(&v, "/aged");
    assert_eq!(b.x_cache(), "Hit from verge");
    let age: u64 = b.header("age").unwrap().parse().unwrap();
    assert!((100..110).contains(&age), "age {age}");
    assert_eq!(o.count("/aged"), 1);
}

#[test]
fn explicit_and_heuristic_freshness_are_stored() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    for p in ["/expires", "/heuristic", "/not-found", "/chunked"] {
        get(&v, p);
        let b = get(&v, p);
        assert_eq!(b.x_cache(), "Hit from verge", "{p}: {b:?}");
        assert_eq!(o.count(p), 1, "{p}");
    }
}

#[test]
fn what_rfc_9111_forbids_is_not_stored() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    for p in [
        "/no-store",
        "/private",
        "/no-cache",
        "/expired",
        "/bad-expires",
        "/no-validator",
        "/error",
    ] {
        let a = get(&v, p);
        assert_eq!(a.x_cache(), "Miss from verge", "{p}");
        let b = get(&v, p);
        assert_eq!(b.x_cache(), "Miss from verge", "{p}: {b:?}");
        assert_eq!(o.count(p), 2, "{p}");
    }
}

#[test]
fn authorization_requests_are_not_served_from_or_stored_in_cache() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    get(&v, "/auth-x");
    let r = get_with(&v, "/auth-x", "Authorization: Bearer t\r\n");
    assert_eq!(r.x_cache(), "Miss from verge");
    get_with(&v, "/private", "Authorization: Bearer t\r\n");
    let r = get(&v, "/private");
    assert_eq!(r.x_cache(), "Miss from verge");
    assert_eq!(o.count("/auth-x"), 2);
}

#[test]
fn chunked_origin_body_is_rechunked_then_served_with_length() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let a = get(&v, "/chunked");
    assert!(a.chunked && a.complete);
    assert_eq!(a.body, b"hello world");
    let b = get(&v, "/chunked");
    assert_eq!(b.header("content-length"), Some("11"));
    assert_eq!(b.body, b"hello world");
}

#[test]
fn head_is_answered_from_cache_without_body() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    get(&v, "/cached");
    let mut rd = send(&v, b"HEAD /cached HTTP/1.1\r\nHost: example.test\r\n\r\nGET /cached HTTP/1.1\r\nHost: example.test\r\n\r\n");
    let r = rd.response("HEAD").unwrap();
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.x_cache(), "Hit from verge");
    // The next response on the connection starts right after the head (no body was sent).
    let g = rd.response("GET").unwrap();
    assert_eq!(g.body, b"cached body");
    assert_eq!(o.count("/cached"), 1);
}

#[test]
fn viewer_conditionals_get_304_from_cache() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    get(&v, "/cached");
    let r = get_with(&v, "/cached", "If-None-Match: W/\"v1\"\r\n");
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some("\"v1\""));
    let r = get_with(&v, "/cached", "If-None-Match: \"v2\"\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(o.count("/cached"), 1);
}

#[test]
fn vary_keeps_variants_apart() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let a = get_with(&v, "/vary", "Accept-Encoding: gzip\r\n");
    assert_eq!(a.body, b"gzip");
    let b = get_with(&v, "/vary", "Accept-Encoding: br\r\n");
    assert_eq!(
        b.body, b"br",
        "a different Accept-Encoding must not get the gzip variant"
    );
    assert_eq!(b.x_cache(), "Miss from verge");
    let c = get_with(&v, "/vary", "Accept-Encoding: br\r\n");
    assert_eq!(c.body, b"br");
    assert_eq!(c.x_cache(), "Hit from verge");
    // Both variants are kept.
    let d = get_with(&v, "/vary", "Accept-Encoding: gzip\r\n");
    assert_eq!(
        (d.body.as_slice(), d.x_cache()),
        (&b"gzip"[..], "Hit from verge")
    );
    // Order, case and spacing of Accept-Encoding do not make a new variant.
    get_with(&v, "/vary", "Accept-Encoding: gzip, br\r\n");
    let e = get_with(&v, "/vary", "Accept-Encoding: BR,gzip\r\n");
    assert_eq!(
        (e.body.as_slice(), e.x_cache()),
        (&b"gzip, br"[..], "Hit from verge")
    );
    assert_eq!(o.count("/vary"), 3);
    // A POST invalidates every variant.
    let (r, _) = raw(
        &v,
        b"POST /vary HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.unwrap().status, 200);
    assert_eq!(
        get_with(&v, "/vary", "Accept-Encoding: br\r\n").x_cache(),
        "Miss from verge"
    );
    assert_eq!(
        get_with(&v, "/vary", "Accept-Encoding: gzip\r\n").x_cache(),
        "Miss from verge"
    );
}

#[test]
fn unsafe_methods_stream_to_origin_and_invalidate() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    get(&v, "/doc");
    assert_eq!(get(&v, "/doc").x_cache(), "Hit from verge");
    let body = vec![b'z'; 300_000];
    let mut req = format!(
        "POST /doc HTTP/1.1\r\nHost: example.test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let (r, _) = raw(&v, &req);
    let r = r.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), body.len(), "origin echoed the whole body");
    assert_eq!(r.x_cache(), "Miss from verge");
    let after = get(&v, "/doc");
    assert_eq!(
        after.x_cache(),
        "Miss from verge",
        "POST must invalidate the stored GET"
    );
    // Unknown methods are forwarded too, and invalidate as well.
    assert_eq!(get(&v, "/doc").x_cache(), "Hit from verge");
    let (r, _) = raw(
        &v,
        b"PURGEISH /doc HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.unwrap().status, 200);
    assert_eq!(get(&v, "/doc").x_cache(), "Miss from verge");
    // A chunked upload is forwarded chunked, intact.
    let (r, _) = raw(&v, b"PUT /up HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    assert_eq!(r.unwrap().body, b"abcde");
    let put = o.requests().into_iter().find(|r| r.path == "/up").unwrap();
    assert_eq!(put.body, b"abcde");
}

#[test]
fn hop_by_hop_fields_are_dropped_and_via_xff_added() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let r = get_with(
        &v,
        "/hop",
        "Connection: X-Mine\r\nX-Mine: secret\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\n",
    );
    assert!(r.header("x-secret").is_none(), "{r:?}");
    assert!(r.header("keep-alive").is_none());
    let req = o.requests().into_iter().find(|r| r.path == "/hop").unwrap();
    assert!(req.header("x-mine").is_none());
    assert!(req.header("te").is_none());
    assert_eq!(req.header("via"), Some("1.1 verge"));
    assert_eq!(req.header("x-forwarded-for"), Some("10.0.0.1, 127.0.0.1"));
}

#[test]
fn absolute_form_targets_share_the_cache_key() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    get(&v, "/abs");
    let (r, _) = raw(
        &v,
        b"GET http://example.test/abs HTTP/1.1\r\nHost: example.test\r\n\r\n",
    );
    assert_eq!(r.unwrap().x_cache(), "Hit from verge");
    let (r, _) = raw(
        &v,
        b"GET http://EXAMPLE.test:80/abs HTTP/1.1\r\nHost: other\r\n\r\n",
    );
    assert_eq!(r.unwrap().x_cache(), "Hit from verge");
    assert_eq!(o.count("/abs"), 1);
}
