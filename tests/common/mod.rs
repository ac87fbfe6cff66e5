//! Integration-test harness: a scripted origin on loopback (raw sockets, so it can misbehave on
//! purpose), the real `verge` binary started as a child process, and a small raw HTTP/1.1 client.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One request as the origin received it.
#[derive(Clone, Debug)]
pub struct OriginRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OriginRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the handler does with the connection after writing: keep serving it or close it.
pub enum Then {
    KeepAlive,
    Close,
}

type Handler = dyn Fn(&OriginRequest, &mut TcpStream) -> Then + Send + Sync;

/// A scripted origin. `handler` writes whatever bytes it likes for each request.
pub struct Origin {
    pub port: u16,
    pub log: Arc<Mutex<Vec<OriginRequest>>>,
    pub connections: Arc<AtomicUsize>,
}

impl Origin {
    pub fn start(
        handler: impl Fn(&OriginRequest, &mut TcpStream) -> Then + Send + Sync + 'static,
    ) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (l2, c2) = (log.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                c2.fetch_add(1, Ordering::SeqCst);
                let (log, handler) = (l2.clone(), handler.clone());
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    while let Some(req) = read_request(&mut s, &mut buf) {
                        log.lock().unwrap().push(req.clone());
                        if let Then::Close = handler(&req, &mut s) {
                            let _ = s.shutdown(Shutdown::Both);
                            return;
                        }
                    }
                });
            }
        });
        Origin {
            port,
            log,
            connections,
        }
    }

    /// Requests received for `path`.
    pub fn count(&self, path: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    pub fn requests(&self) -> Vec<OriginRequest> {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A well-formed response with a body and extra header lines (each ending in \r\n).
pub fn respond(s: &mut TcpStream, status: &str, extra: &str, body: &[u8]) -> Then {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    Then::KeepAlive
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Reads one request (head + Content-Length or chunked body) from the origin's side of a connection.
fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<OriginRequest> {
    let end = loop {
        if let Some(e) = find_head_end(buf) {
            break e;
        }
        let mut tmp = [0u8; 8192];
        let n = s.read(&mut tmp).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    buf.drain(..end);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(cl) = get("content-length") {
        let n: usize = cl.parse().ok()?;
        while buf.len() < n {
            let mut tmp = [0u8; 65536];
            let r = s.read(&mut tmp).ok()?;
            if r == 0 {
                return None;
            }
            buf.extend_from_slice(&tmp[..r]);
        }
        body = buf.drain(..n).collect();
    } else if get("transfer-encoding").is_some() {
        body = read_chunked(s, buf)?;
    }
    Some(OriginRequest {
        method,
        path,
        headers,
        body,
    })
}

fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
                break p;
            }
            let mut tmp = [0u8; 65536];
            let r = s.read(&mut tmp).ok()?;
            if r == 0 {
                return None;
            }
            buf.extend_from_slice(&tmp[..r]);
        };
        let size = usize::from_str_radix(
            std::str::from_utf8(&buf[..line_end])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        buf.drain(..line_end + 2);
        while buf.len() < size + 2 {
            let mut tmp = [0u8; 65536];
            let r = s.read(&mut tmp).ok()?;
            if r == 0 {
                return None;
            }
            buf.extend_from_slice(&tmp[..r]);
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
        if size == 0 {
            return Some(body);
        }
    }
}

/// A running `verge` process; killed on drop.
pub struct Verge {
    pub child: Child,
    pub port: u16,
    /// The TLS listener's port, when started with `start_tls`.
    pub tls_port: u16,
    pub dir: TempDir,
}

/// A test TLS fixture file (tests/fixtures/tls).
pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub struct TempDir(pub std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir() -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "verge-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}

/// A port for a verge under test. Verge binds with SO_REUSEPORT, so two instances could share a port
/// picked by the kernel; ports are therefore handed out from a per-process sequence below the
/// ephemeral range (where the scripted origins and outgoing connections get theirs), skipping any that
/// cannot be bound right now.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = (std::process::id() as usize * 97) % 12_000;
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = 20_000 + ((base + n * 7) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Verge {
    /// Starts verge in front of `origin_url` with `extra_toml` appended to a generated config.
    pub fn start(origin_url: &str, extra_toml: &str) -> Verge {
        Self::start_with(origin_url, extra_toml, &[])
    }

    /// Starts verge with a TLS listener too (certificate for localhost/127.0.0.1 from the test CA,
    /// copied into the instance's directory as cert.pem/key.pem so that tests may replace them).
    /// `tls_toml` is added under `[tls]`; `extra_toml` after it.
    pub fn start_tls(origin_url: &str, tls_toml: &str, extra_toml: &str) -> Verge {
        let dir = temp_dir();
        let tls_port = free_port();
        let cert = dir.0.join("cert.pem");
        let key = dir.0.join("key.pem");
        std::fs::copy(fixture("localhost.pem"), &cert).unwrap();
        std::fs::copy(fixture("localhost.key"), &key).unwrap();
        let toml = format!(
            "[tls]\nlisten = [\"127.0.0.1:{tls_port}\"]\ncert = {:?}\nkey = {:?}\n{tls_toml}\n{extra_toml}",
            cert.display().to_string(),
            key.display().to_string()
        );
        let mut v = Self::start_in(dir, origin_url, &toml, &[]);
        v.tls_port = tls_port;
        v
    }

    pub fn start_with(origin_url: &str, extra_toml: &str, args: &[&str]) -> Verge {
        Self::start_in(temp_dir(), origin_url, extra_toml, args)
    }

    fn start_in(dir: TempDir, origin_url: &str, extra_toml: &str, args: &[&str]) -> Verge {
        let port = free_port();
        let cfg = dir.0.join("verge.toml");
        std::fs::write(&cfg, extra_toml).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_verge"))
            .arg("--config")
            .arg(&cfg)
            .arg("--origin")
            .arg(origin_url)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start verge");
        let mut child = child;
        // Wait for this child's own "listening" line (not just any listener on the port).
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            use std::io::BufRead;
            let mut log = String::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("verge: listening on") {
                    let _ = tx.send(Ok(()));
                }
                log.push_str(&line);
                log.push('\n');
            }
            let _ = tx.send(Err(log));
        });
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(Ok(())) => {}
            Ok(Err(log)) => panic!("verge exited before listening:\n{log}"),
            Err(_) => panic!("verge did not start listening"),
        }
        Verge {
            child,
            port,
            tls_port: 0,
            dir,
        }
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s
    }
}

impl Drop for Verge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed response as the viewer saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was complete per its framing (false: the connection closed early).
    pub complete: bool,
    pub chunked: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("")
    }
}

/// Reads responses off a viewer connection.
pub struct Reader {
    pub s: TcpStream,
    pub buf: Vec<u8>,
}

impl Reader {
    pub fn new(s: TcpStream) -> Self {
        Reader { s, buf: Vec::new() }
    }

    fn more(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        match self.s.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Reads one response to a request with method `method`.
    pub fn response(&mut self, method: &str) -> Option<Response> {
        let end = loop {
            if let Some(e) = find_head_end(&self.buf) {
                break e;
            }
            if !self.more() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        self.buf.drain(..end);
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let mut r = Response {
            status,
            headers: headers.clone(),
            body: Vec::new(),
            complete: true,
            chunked: false,
        };
        if method == "HEAD" || status == 204 || status == 304 || status < 200 {
            return Some(r);
        }
        if get("transfer-encoding").is_some() {
            r.chunked = true;
            loop {
                let line_end = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    if !self.more() {
                        r.complete = false;
                        return Some(r);
                    }
                };
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&self.buf[..line_end]).trim(),
                    16,
                )
                .ok()?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    if !self.more() {
                        r.body.extend_from_slice(&self.buf);
                        self.buf.clear();
                        r.complete = false;
                        return Some(r);
                    }
                }
                r.body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
                if size == 0 {
                    return Some(r);
                }
            }
        } else if let Some(cl) = get("content-length") {
            let n: usize = cl.parse().ok()?;
            while self.buf.len() < n {
                if !self.more() {
                    r.body = std::mem::take(&mut self.buf);
                    r.complete = false;
                    return Some(r);
                }
            }
            r.body = self.buf.drain(..n).collect();
        } else {
            while self.more() {}
            r.body = std::mem::take(&mut self.buf);
        }
        Some(r)
    }

    /// True if the peer closed the connection (reads EOF within the timeout).
    pub fn closed(&mut self) -> bool {
        !self.more()
    }
}

/// Sends raw bytes on a new connection; read the responses from the returned reader.
pub fn send(v: &Verge, bytes: &[u8]) -> Reader {
    let mut s = v.connect();
    s.write_all(bytes).unwrap();
    Reader::new(s)
}

/// Sends raw bytes on a new connection and reads one response (to a non-HEAD request).
pub fn raw(v: &Verge, bytes: &[u8]) -> (Option<Response>, Reader) {
    let mut r = send(v, bytes);
    (r.response("GET"), r)
}

/// GET `path` on a new connection with extra header lines.
pub fn get_with(v: &Verge, path: &str, extra: &str) -> Response {
    let req = format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n{extra}\r\n");
    raw(v, req.as_bytes()).0.expect("a response")
}

pub fn get(v: &Verge, path: &str) -> Response {
    get_with(v, path, "")
}

/// Counts origin requests per path (for handlers).
pub fn counter() -> Arc<Mutex<HashMap<String, usize>>> {
    Arc::new(Mutex::new(HashMap::new()))
}

/// CPUs this test process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
