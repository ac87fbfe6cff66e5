//! Objects larger than the RAM tier takes, through the real binary: they are written to the disk
//! tier as chunk chains while they stream to the first viewer (known length or chunked), served
//! from disk afterwards (whole or by range, reading only the chunks needed), survive a restart, and
//! are never stored when the origin cuts them short.

mod common;
use common::*;
use std::io::Write;
use std::thread;
use std::time::Duration;

const LEN: usize = 24 << 20;

fn body() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn origin() -> Origin {
    let b = body();
    Origin::start(move |req, s| {
        let p = req.path.as_str();
        if p.starts_with("/chunked") {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            for piece in b.chunks(1 << 20) {
                let _ = s.write_all(format!("{:x}\r\n", piece.len()).as_bytes());
                let _ = s.write_all(piece);
                let _ = s.write_all(b"\r\n");
            }
            let _ = s.write_all(b"0\r\n\r\n");
            return Then::KeepAlive;
        }
        if p.starts_with("/cut") {
            let _ = s.write_all(
                format!("HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nContent-Length: {LEN}\r\n\r\n")
                    .as_bytes(),
            );
            let _ = s.write_all(&b[..LEN / 2]);
            return Then::Close;
        }
        respond(
            s,
            "200 OK",
            "Cache-Control: max-age=3600\r\nETag: \"big\"\r\n",
            &b,
        )
    })
}

fn start(o: &Origin, dir: &TempDir) -> Verge {
    Verge::start_with(
        &o.url(),
        "[cache]\nmax_object_size = \"4MiB\"\ndisk_segment_size = \"16MiB\"\ndisk_flush_delay = \"100ms\"\n",
        &["--disk", &format!("{}=512MiB", dir.0.display()), "--ram", "32MiB"],
    )
}

fn assert_body(r: &Response, what: &str) {
    assert_eq!(r.body.len(), LEN, "{what}: length");
    assert!(r.body == body(), "{what}: bytes differ");
}

#[test]
fn large_objects_are_stored_on_disk_and_served_from_there() {
    let o = origin();
    let dir = temp_dir();
    let v = start(&o, &dir);
    for path in ["/known", "/chunked"] {
        let first = get(&v, path);
        assert_eq!(first.status, 200);
        assert_body(&first, path);
        assert!(first.x_cache().starts_with("Miss"), "{path}");
        let again = get(&v, path);
        assert_body(&again, path);
        assert_eq!(again.x_cache(), "Hit from verge", "{path}");
        let cs = again.header("cache-status").unwrap();
        assert!(
            cs.contains("hit") && cs.contains("detail=disk"),
            "{path}: {cs}"
        );
        // A range far into the object.
        let start = 20 * 1024 * 1024 + 12345;
        let r = get_with(
            &v,
            path,
            &format!("Range: bytes={start}-{}\r\n", start + 99),
        );
        assert_eq!(r.status, 206, "{path}");
        assert_eq!(r.body, &body()[start..start + 100], "{path}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes {start}-{}/{LEN}", start + 99)
        );
        assert_eq!(o.count(path), 1, "{path}: served from disk");
    }
}

#[test]
fn large_objects_survive_a_restart() {
    let o = origin();
    let dir = temp_dir();
    let mut v = start(&o, &dir);
    assert_body(&get(&v, "/restart"), "fill");
    thread::sleep(Duration::from_millis(300));
    v.signal("TERM");
    for _ in 0..300 {
        if v.child.try_wait().unwrap().is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    drop(v);
    let v = start(&o, &dir);
    let r = get(&v, "/restart");
    assert_body(&r, "after restart");
    assert_eq!(r.x_cache(), "Hit from verge");
    assert_eq!(o.count("/restart"), 1);
}

#[test]
fn a_cut_large_object_is_not_stored() {
    let o = origin();
    let dir = temp_dir();
    let v = start(&o, &dir);
    let r = get(&v, "/cut");
    assert!(r.body.len() < LEN, "a cut body must not look complete");
    assert!(!r.complete);
    thread::sleep(Duration::from_millis(200));
    let _ = get(&v, "/cut");
    assert_eq!(o.count("/cut"), 2, "the cut object was not stored");
}
