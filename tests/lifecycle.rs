//! The process: configuration errors stop it before it listens, naming the field; SIGTERM drains
//! in-flight requests within the bound; bounded waiting lists.

mod common;
use common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

fn run_verge(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_verge"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_bad_config_names_the_field_and_exits_before_listening() {
    let dir = temp_dir();
    let port = free_port();
    for (text, field) in [
        ("[http]\nmax_headers = \"lots\"\n", "max_headers"),
        ("[cache]\nram = \"12 parsecs\"\n", "ram"),
        ("[origin]\nurl = \"ftp://x\"\n", "origin.url"),
        ("[server]\nbogus = 1\n", "bogus"),
        ("[http]\nkeepalive_timeout = 0\n", "http.keepalive_timeout"),
    ] {
        let cfg = dir.0.join("bad.toml");
        std::fs::write(&cfg, text).unwrap();
        let listen = format!("127.0.0.1:{port}");
        let (code, err) = run_verge(&["--config", cfg.to_str().unwrap(), "--listen", &listen]);
        assert_ne!(code, 0, "{text}");
        assert!(
            err.contains(field),
            "{text:?}: stderr {err:?} must name {field}"
        );
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
    let (code, err) = run_verge(&["--origin", "http://127.0.0.1:1", "--ram", "lots"]);
    assert_ne!(code, 0);
    assert!(err.contains("--ram"), "{err}");
    let (code, _) = run_verge(&["--check-config"]);
    assert_eq!(code, 0);
    let out = Command::new(env!("CARGO_BIN_EXE_verge"))
        .arg("--print-default-config")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("max_request_body"));
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits() {
    let o = Origin::start(|_, s| {
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nCache-Control: no-store\r\n\r\nhello",
        );
        thread::sleep(Duration::from_millis(800));
        let _ = s.write_all(b"world");
        Then::KeepAlive
    });
    let mut v = Verge::start(&o.url(), "[server]\ndrain_timeout = \"5s\"\n");
    let mut s = v.connect();
    s.write_all(b"GET /drain HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut tmp = [0u8; 512];
    let n = s.read(&mut tmp).unwrap();
    let mut all = tmp[..n].to_vec();
    let idle = v.connect();
    let t = Instant::now();
    v.signal("TERM");
    // The in-flight response completes.
    loop {
        let mut more = [0u8; 512];
        match s.read(&mut more) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&more[..n]),
        }
    }
    let text = String::from_utf8_lossy(&all);
    assert!(text.ends_with("\r\n\r\nhelloworld"), "{text:?}");
    // The idle connection was closed, new connections are refused, and the process exits.
    let mut idle_rd = Reader::new(idle);
    assert!(idle_rd.closed());
    let status = loop {
        if let Some(st) = v.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "verge did not exit after SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", v.port)).is_err());
}

#[test]
fn waiting_lists_are_bounded() {
    let o = Origin::start(|_, s| {
        thread::sleep(Duration::from_millis(600));
        respond(s, "200 OK", "Cache-Control: max-age=60\r\n", b"slow")
    });
    let v = Verge::start(&o.url(), "[server]\nshards = 1\n[cache]\nmax_waiters = 2\n");
    let port = v.port;
    let hs: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50 * i));
                let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(b"GET /wl HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
                Reader::new(s).response("GET").unwrap()
            })
        })
        .collect();
    let rs: Vec<Response> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(rs.iter().all(|r| r.body == b"slow"));
    let full = rs
        .iter()
        .filter(|r| {
            r.header("cache-status")
                .unwrap()
                .contains("waiting-list-full")
        })
        .count();
    assert_eq!(
        full, 2,
        "two viewers past the bound went to the origin on their own"
    );
    assert_eq!(o.count("/wl"), 3);
}

#[test]
fn a_waiter_gives_up_on_a_slow_fill_after_the_collapse_timeout() {
    let o = Origin::start(|_, s| {
        thread::sleep(Duration::from_millis(1500));
        respond(s, "200 OK", "Cache-Control: max-age=60\r\n", b"slow")
    });
    let v = Verge::start(
        &o.url(),
        "[server]\nshards = 1\n[cache]\ncollapse_timeout = \"300ms\"\n",
    );
    let port = v.port;
    let first = thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /ct HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        Reader::new(s).response("GET").unwrap()
    });
    thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let second = get(&v, "/ct");
    assert_eq!(second.body, b"slow");
    // It waited the collapse timeout, then fetched on its own (1.5 s more), instead of riding the fill.
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(first.join().unwrap().body, b"slow");
    assert_eq!(o.count("/ct"), 2);
}
