//! Near copies across shards (two shards): hits on the shard that does not own a key are served
//! from a copy of the owner's object (`Cache-Status: ...; detail=near-copy`), and no copy outlives
//! a newer response. After an invalidation
//! (an unsafe method), an end-to-end reload (`Cache-Control: no-cache`) or a stale object's refetch,
//! every viewer on every shard gets the new response at once, although the copies are held for
//! a minute here.

mod common;
use common::*;
use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn versioned_origin(version: Arc<AtomicUsize>, max_age: u32) -> Origin {
    Origin::start(move |req, s| {
        if req.method == "POST" {
            return respond(s, "204 No Content", "", b"");
        }
        let v = version.load(Ordering::SeqCst);
        respond(
            s,
            "200 OK",
            &format!("Cache-Control: max-age={max_age}\r\n"),
            format!("{} v{v}", req.path).as_bytes(),
        )
    })
}

/// GETs `path` on `n` new connections (spread over both shards by the kernel); returns the
/// bodies seen.
fn sweep(v: &Verge, path: &str, n: usize) -> HashSet<String> {
    (0..n)
        .map(|_| {
            let r = get(v, path);
            assert_eq!(r.status, 200);
            String::from_utf8(r.body).unwrap()
        })
        .collect()
}

/// A keep-alive viewer connection.
struct Viewer(Reader);

impl Viewer {
    fn get(&mut self, path: &str) -> Response {
        let req = format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n");
        self.0.s.write_all(req.as_bytes()).unwrap();
        let r = self.0.response("GET").expect("a response");
        assert_eq!(r.status, 200);
        r
    }
}

fn is_near_copy(r: &Response) -> bool {
    r.header("cache-status")
        .is_some_and(|c| c.contains("detail=near-copy"))
}

/// An origin answering `PATH vN` (N from the returned counter, cacheable for `max_age` seconds)
/// and two shards in front of it that hold near copies for a minute. `path` is warmed at version
/// 1 until a connection on the shard that does not own it is answered from its near copy; that
/// connection is returned, and the version is then 2. `None` with fewer than 2 CPUs.
fn setup(path: &str, max_age: u32) -> Option<(Origin, Verge, Viewer)> {
    if cpus() < 2 {
        eprintln!("skipped: needs 2 CPUs for 2 shards");
        return None;
    }
    let version = Arc::new(AtomicUsize::new(1));
    let o = versioned_origin(version.clone(), max_age);
    let v = Verge::start(
        &o.url(),
        "[server]\nshards = 2\nshard_header = true\n[cache]\nnear_copy_hold = \"60s\"\n",
    );
    let want = format!("{path} v1");
    for _ in 0..100 {
        let mut c = Viewer(Reader::new(v.connect()));
        let first = c.get(path);
        assert_eq!(first.body, want.as_bytes());
        let second = c.get(path);
        assert_eq!(second.body, want.as_bytes());
        if is_near_copy(&second) {
            version.store(2, Ordering::SeqCst);
            return Some((o, v, c));
        }
    }
    panic!("no viewer was answered from a near copy");
}

#[test]
fn an_invalidation_reaches_every_shard_at_once() {
    let Some((o, v, mut near)) = setup("/hot", 300) else {
        return;
    };
    let (r, _) = raw(
        &v,
        b"POST /hot HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.unwrap().status, 204);
    assert_eq!(
        near.get("/hot").body,
        b"/hot v2",
        "the shard that held a copy asks the owner again"
    );
    let bodies = sweep(&v, "/hot", 40);
    assert_eq!(
        bodies,
        HashSet::from(["/hot v2".to_string()]),
        "no shard serves the invalidated response"
    );
    let gets = o
        .requests()
        .iter()
        .filter(|r| r.path == "/hot" && r.method == "GET")
        .count();
    assert_eq!(gets, 2, "one fill before and one after the invalidation");
}

#[test]
fn a_reload_replaces_every_shards_copy() {
    let Some((_o, v, mut near)) = setup("/reload", 300) else {
        return;
    };
    let r = get_with(&v, "/reload", "Cache-Control: no-cache\r\n");
    assert_eq!(r.body, b"/reload v2");
    assert_eq!(near.get("/reload").body, b"/reload v2");
    let bodies = sweep(&v, "/reload", 40);
    assert_eq!(
        bodies,
        HashSet::from(["/reload v2".to_string()]),
        "the most recent response is the one used (RFC 9111 section 4)"
    );
}

#[test]
fn a_stale_copy_is_not_served_and_the_refetch_replaces_it() {
    let Some((_o, v, mut near)) = setup("/short", 1) else {
        return;
    };
    std::thread::sleep(Duration::from_millis(2100));
    // The copy is stale now: the shard holding it asks first, and gets the owner's refetch.
    assert_eq!(near.get("/short").body, b"/short v2");
    let bodies = sweep(&v, "/short", 20);
    assert_eq!(bodies, HashSet::from(["/short v2".to_string()]));
}
