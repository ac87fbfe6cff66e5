//! Near copies across shards (two shards): hits on the shard that does not own a key are served
//! from a copy of the owner's object, and no copy outlives a newer response. After an invalidation
//! (an unsafe method), an end-to-end reload (`Cache-Control: no-cache`) or a stale object's refetch,
//! every viewer on every shard gets the new response at once, although the copies are held for
//! a minute here.

mod common;
use common::*;
use std::collections::HashSet;
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
/// bodies seen and the shards that answered with hits.
fn sweep(v: &Verge, path: &str, n: usize) -> (HashSet<String>, HashSet<String>) {
    let mut bodies = HashSet::new();
    let mut hit_shards = HashSet::new();
    for _ in 0..n {
        let r = get(v, path);
        assert_eq!(r.status, 200);
        bodies.insert(String::from_utf8(r.body.clone()).unwrap());
        if r.x_cache() == "Hit from verge" {
            hit_shards.insert(r.header("x-verge-shard").unwrap().to_string());
        }
    }
    (bodies, hit_shards)
}

/// An origin answering `PATH vN` (N from the returned counter, cacheable for `max_age` seconds)
/// and two shards in front of it that hold near copies for a minute, warmed with `path` at
/// version 1 until both shards answered hits for it. `None` with fewer than 2 CPUs.
fn setup(path: &str, max_age: u32) -> Option<(Arc<AtomicUsize>, Origin, Verge)> {
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
    warm(&v, path, &format!("{path} v1"));
    version.store(2, Ordering::SeqCst);
    Some((version, o, v))
}

/// Warms `path` until both shards have answered hits for it (so the non-owner holds a copy).
fn warm(v: &Verge, path: &str, want: &str) {
    let mut shards = HashSet::new();
    for _ in 0..20 {
        let (bodies, hits) = sweep(v, path, 10);
        assert_eq!(bodies, HashSet::from([want.to_string()]));
        shards.extend(hits);
        if shards.len() == 2 {
            return;
        }
    }
    panic!("hits came from both shards: {shards:?}");
}

#[test]
fn an_invalidation_reaches_every_shard_at_once() {
    let Some((_version, o, v)) = setup("/hot", 300) else {
        return;
    };
    let (r, _) = raw(
        &v,
        b"POST /hot HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.unwrap().status, 204);
    let (bodies, _) = sweep(&v, "/hot", 40);
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
    let Some((_version, _o, v)) = setup("/reload", 300) else {
        return;
    };
    let r = get_with(&v, "/reload", "Cache-Control: no-cache\r\n");
    assert_eq!(r.body, b"/reload v2");
    let (bodies, _) = sweep(&v, "/reload", 40);
    assert_eq!(
        bodies,
        HashSet::from(["/reload v2".to_string()]),
        "the most recent response is the one used (RFC 9111 section 4)"
    );
}

#[test]
fn a_stale_copy_is_not_served_and_the_refetch_replaces_it() {
    let Some((_version, _o, v)) = setup("/short", 1) else {
        return;
    };
    std::thread::sleep(Duration::from_millis(2100));
    // The copies are stale now; whichever shard asks first refetches, and everyone gets v2.
    let (bodies, _) = sweep(&v, "/short", 20);
    assert_eq!(bodies, HashSet::from(["/short v2".to_string()]));
}
