//! HTTP/2 abuse against the real binary, with hand-built frames on a raw socket (h2c prior
//! knowledge): rapid reset, CONTINUATION floods, SETTINGS floods, zero-window stalls, and one bad
//! stream among good ones. Each attack must end with a bounded cost (GOAWAY, RST_STREAM or a closed
//! connection) while another viewer is still served promptly. One more test checks that the combined
//! writes never hold back a quiet connection's PING ACK or response.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 1;
const ACK: u8 = 1;
const END_HEADERS: u8 = 4;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK block for `GET path` (static-table names, literal values, no Huffman).
fn get_block(path: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x86]; // :method GET, :scheme http
    b.push(0x04); // :path, literal without indexing
    b.push(path.len() as u8);
    b.extend_from_slice(path.as_bytes());
    b.push(0x01); // :authority
    b.push(9);
    b.extend_from_slice(b"127.0.0.1");
    b
}

/// A received frame: type, flags, stream, payload.
type Frame = (u8, u8, u32, Vec<u8>);

/// Reads frames until `want` says stop or the peer closes / `timeout` passes; returns the frames
/// seen (type, flags, stream, payload) and whether the connection closed.
fn read_frames(
    s: &mut TcpStream,
    timeout: Duration,
    mut want: impl FnMut(u8, u8, u32, &[u8]) -> bool,
) -> (Vec<Frame>, bool) {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        while buf.len() >= 9 {
            let len = (buf[0] as usize) << 16 | (buf[1] as usize) << 8 | buf[2] as usize;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            let stop = want(kind, flags, stream, &payload);
            frames.push((kind, flags, stream, payload));
            if stop {
                return (frames, false);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (frames, false);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => return (frames, true),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return (frames, false)
            }
            Err(_) => return (frames, true),
        }
    }
}

fn connect(v: &Verge, settings: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", v.port)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, settings));
    s.write_all(&hello).unwrap();
    s
}

fn origin() -> Origin {
    Origin::start(|req, s| {
        let p = req.path.as_str();
        if p.starts_with("/slow") {
            std::thread::sleep(Duration::from_millis(300));
        }
        if p == "/big" {
            return respond(
                s,
                "200 OK",
                "Cache-Control: max-age=300\r\n",
                &vec![b'x'; 1 << 20],
            );
        }
        respond(s, "200 OK", "Cache-Control: max-age=300\r\n", p.as_bytes())
    })
}

/// Another viewer is answered within a second.
fn still_serving(v: &Verge, path: &str) {
    let start = Instant::now();
    let r = get(v, path);
    assert_eq!(r.status, 200);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn rapid_reset_is_bounded() {
    let o = origin();
    let v = Verge::start(&o.url(), "[server]\nshards = 1\n");
    let mut s = connect(&v, &[]);
    // 3000 streams for distinct slow misses, each cancelled at once.
    let mut burst = Vec::new();
    for i in 0..3000u32 {
        let id = 2 * i + 1;
        burst.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            id,
            &get_block(&format!("/slow/{i}")),
        ));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes())); // CANCEL
    }
    let _ = s.write_all(&burst);
    let (frames, closed) = read_frames(&mut s, Duration::from_secs(5), |k, _, _, _| k == GOAWAY);
    let goaway = frames.iter().any(|f| f.0 == GOAWAY);
    assert!(
        goaway || closed,
        "no GOAWAY and not closed after 3000 rapid resets"
    );
    still_serving(&v, "/after-reset");
    // The work the attack caused at the origin stayed far below one fetch per stream.
    std::thread::sleep(Duration::from_millis(500));
    let fetched = o
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/slow/"))
        .count();
    eprintln!("rapid reset: goaway={goaway} closed={closed}, {fetched} origin fetches");
    assert!(
        fetched < 1000,
        "{fetched} origin fetches for 3000 reset streams"
    );
}

#[test]
fn continuation_flood_gets_goaway() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let mut s = connect(&v, &[]);
    let mut block = get_block("/c");
    // Then an endless run of literal fields split into CONTINUATION frames.
    let _ = s.write_all(&frame(HEADERS, 0, 1, &std::mem::take(&mut block)));
    let mut field = vec![0x00, 0x7e]; // literal without indexing, new name of 126 bytes
    field.extend(vec![b'a'; 126]);
    field.push(0x7e); // value of 126 bytes
    field.extend(vec![b'b'; 126]);
    let cont = frame(CONTINUATION, 0, 1, &field.repeat(30));
    let start = Instant::now();
    let mut sent = 0usize;
    while start.elapsed() < Duration::from_secs(3) {
        if s.write_all(&cont).is_err() {
            break;
        }
        sent += cont.len();
        if sent > 64 << 20 {
            break;
        }
    }
    let (frames, closed) = read_frames(&mut s, Duration::from_secs(3), |k, _, _, _| k == GOAWAY);
    assert!(
        frames.iter().any(|f| f.0 == GOAWAY) || closed,
        "no GOAWAY after {sent} bytes of CONTINUATION"
    );
    assert!(
        sent < 64 << 20,
        "the server kept reading a header block of {sent} bytes"
    );
    still_serving(&v, "/after-continuation");
}

#[test]
fn settings_flood_does_not_hurt_others() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let mut s = connect(&v, &[]);
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    // SETTINGS frames without ever reading the ACKs.
    let one = frame(SETTINGS, 0, 0, &[0x00, 0x03, 0x00, 0x00, 0x00, 0x64]);
    let many = one.repeat(10_000);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        if s.write_all(&many).is_err() {
            break;
        }
    }
    still_serving(&v, "/after-settings");
}

#[test]
fn zero_window_stall_ends_with_a_reset_after_the_write_timeout() {
    let o = origin();
    let v = Verge::start(&o.url(), "[http]\nwrite_timeout = \"1s\"\n");
    let _ = get(&v, "/big");
    // INITIAL_WINDOW_SIZE = 0: the server may send headers but no body.
    let mut s = connect(&v, &[0x00, 0x04, 0x00, 0x00, 0x00, 0x00]);
    let _ = s.write_all(&frame(SETTINGS, 1, 0, &[])); // ACK the server's settings
    let _ = s.write_all(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &get_block("/big"),
    ));
    let start = Instant::now();
    let (frames, _) = read_frames(&mut s, Duration::from_secs(6), |k, _, id, _| {
        id == 1 && k == RST_STREAM
    });
    assert!(
        frames.iter().any(|f| f.0 == HEADERS && f.2 == 1),
        "no response head"
    );
    assert!(
        !frames
            .iter()
            .any(|f| f.0 == DATA && f.2 == 1 && !f.3.is_empty()),
        "body sent into a zero window"
    );
    let rst = frames.iter().any(|f| f.0 == RST_STREAM && f.2 == 1);
    assert!(
        rst,
        "stalled stream never reset: {:?}",
        frames.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    still_serving(&v, "/after-stall");
}

#[test]
fn one_reset_stream_does_not_hurt_its_siblings() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let mut s = connect(&v, &[]);
    let _ = s.write_all(&frame(SETTINGS, 1, 0, &[]));
    let mut out = Vec::new();
    out.extend(frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &get_block("/slow/a"),
    ));
    out.extend(frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &get_block("/slow/b"),
    ));
    out.extend(frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    s.write_all(&out).unwrap();
    let mut done3 = false;
    let (frames, _) = read_frames(&mut s, Duration::from_secs(5), |k, f, id, _| {
        if id == 3 && (k == DATA || k == HEADERS) && f & END_STREAM != 0 {
            done3 = true;
        }
        done3
    });
    assert!(
        done3,
        "sibling stream not completed: {:?}",
        frames.iter().map(|f| (f.0, f.2)).collect::<Vec<_>>()
    );
    let body: Vec<u8> = frames
        .iter()
        .filter(|f| f.0 == DATA && f.2 == 3)
        .flat_map(|f| f.3.clone())
        .collect();
    assert_eq!(body, b"/slow/b");
    assert!(!frames.iter().any(|f| f.0 == GOAWAY));
}

/// Verge combines a connection's frames and writes them when the connection has nothing left to
/// do: a PING on a quiet connection is acknowledged at once, and a lone request's response is not
/// held back waiting for more requests.
#[test]
fn quiet_connection_gets_its_ping_ack_and_responses_at_once() {
    let o = origin();
    let v = Verge::start(&o.url(), "");
    let mut s = connect(&v, &[]);
    let start = Instant::now();
    s.write_all(&frame(PING, 0, 0, b"verge-01")).unwrap();
    let (frames, _) = read_frames(&mut s, Duration::from_secs(5), |k, f, _, p| {
        k == PING && f & ACK != 0 && p == b"verge-01"
    });
    assert!(
        frames.iter().any(|f| f.0 == PING && f.1 & ACK != 0),
        "no PING ACK: {:?}",
        frames.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>()
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // A miss, then the same URL as a hit, one request at a time on the same connection.
    for (i, id) in [1u32, 3].into_iter().enumerate() {
        let start = Instant::now();
        s.write_all(&frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            id,
            &get_block("/quiet"),
        ))
        .unwrap();
        let mut body = Vec::new();
        let (frames, closed) = read_frames(&mut s, Duration::from_secs(5), |k, f, sid, p| {
            if sid == id && k == DATA {
                body.extend_from_slice(p);
            }
            sid == id && (k == DATA || k == HEADERS) && f & END_STREAM != 0
        });
        assert!(!closed, "request {i}: connection closed");
        assert_eq!(body, b"/quiet", "request {i}: {:?}", frames.len());
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "request {i}: {:?}",
            start.elapsed()
        );
    }
    assert_eq!(o.count("/quiet"), 1);
}
