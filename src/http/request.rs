//! Strict HTTP/1.1 request-head parser (RFC 9112 §2–3, §6, §9.3; RFC 9110 §7.2, §10.1.1).
//!
//! Owns `Method`, `Version`, `RequestHead`, `RequestError` and `parse_request`.
//!
//! Invariants of a returned `RequestHead`: the head ended in CRLFCRLF with CRLF-only line endings,
//! no NUL, no obs-fold; the request-line is exactly `token SP request-target SP HTTP/1.x`; the target
//! is ASCII without controls, SP, DEL or `#`, with well-formed percent-encoding, and its form
//! matches the method (`*` only for OPTIONS, authority-form only and always for CONNECT); an
//! HTTP/1.1 request has exactly one valid `Host`, an HTTP/1.0 one at most one; the framing came
//! from at most one valid `Content-Length` or a single `Transfer-Encoding: chunked` (never both,
//! never TE on HTTP/1.0). Anything ambiguous is an error, never a guess. Every `Bytes` in the head
//! is a zero-copy slice of the received head (except `path` for `http://host?query`, which has to
//! gain its leading `/`).

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::framing::{
    body_length, is_tchar, parse_fields, scan_head, BodyFraming, FieldError, HeadLimits, ScanError,
};
use super::headers::Headers;

/// Empty lines (CRLF) skipped before a request-line (RFC 9112 §2.2); more is an error.
const MAX_LEADING_EMPTY_LINES: usize = 4;

/// A request method. Methods are case-sensitive: `get` is `Other("get")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
    /// Any other token, as received.
    Other(Bytes),
}

impl Method {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Method::Get => b"GET",
            Method::Head => b"HEAD",
            Method::Post => b"POST",
            Method::Put => b"PUT",
            Method::Delete => b"DELETE",
            Method::Options => b"OPTIONS",
            Method::Patch => b"PATCH",
            Method::Trace => b"TRACE",
            Method::Connect => b"CONNECT",
            Method::Other(m) => m,
        }
    }

    /// Safe methods (RFC 9110 §9.2.1): GET, HEAD, OPTIONS, TRACE.
    pub fn is_safe(&self) -> bool {
        matches!(
            self,
            Method::Get | Method::Head | Method::Options | Method::Trace
        )
    }

    fn from_token(token: &[u8], head: &Bytes) -> Method {
        match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            b"CONNECT" => Method::Connect,
            other => Method::Other(head.slice_ref(other)),
        }
    }
}

/// HTTP/1.x protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_bytes(&self) -> &'static [u8] {
        match self {
            Version::Http10 => b"HTTP/1.0",
            Version::Http11 => b"HTTP/1.1",
        }
    }
}

/// A parsed request head.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub method: Method,
    pub version: Version,
    /// Raw request-target as received.
    pub target: Bytes,
    /// Authority of an absolute-form target if any, else the Host header; `None` only for
    /// HTTP/1.0 without Host.
    pub host: Option<Bytes>,
    /// Origin-form path+query; for absolute-form the path+query part (`/` if empty); `*` for
    /// asterisk-form; the authority itself for CONNECT's authority-form.
    pub path: Bytes,
    /// All fields as received.
    pub headers: Headers,
    /// `None`, `Length(n)` (including `Length(0)`) or `Chunked`; never `UntilClose`.
    pub framing: BodyFraming,
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request (ignored on HTTP/1.0, RFC 9110 §10.1.1).
    pub expect_continue: bool,
}

/// Why a request head was refused; each maps to the status to answer with before closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// 400, with a short human reason.
    BadRequest(&'static str),
    /// 414: request-line longer than `max_request_line`.
    UriTooLong,
    /// 431: head longer than `max_header_bytes` or more than `max_headers` fields.
    HeaderFieldsTooLarge,
    /// 505: a well-formed HTTP version other than 1.0 / 1.1.
    VersionNotSupported,
}

impl RequestError {
    pub fn status(&self) -> u16 {
        match self {
            RequestError::BadRequest(_) => 400,
            RequestError::UriTooLong => 414,
            RequestError::HeaderFieldsTooLarge => 431,
            RequestError::VersionNotSupported => 505,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            RequestError::BadRequest(why) => why,
            RequestError::UriTooLong => "request-line too long",
            RequestError::HeaderFieldsTooLarge => "request header fields too large",
            RequestError::VersionNotSupported => "HTTP version not supported",
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.reason())
    }
}

impl std::error::Error for RequestError {}

/// Parses one request head at the start of `buf`.
///
/// `Ok(None)`: the head is incomplete and nothing seen so far breaks a rule or a limit; read more.
/// `Ok(Some(head))`: the head (through its final CRLFCRLF, including skipped leading empty lines)
/// has been split off the front of `buf`, which now starts at the body or the next request.
/// `Err(_)`: answer with `status()` and close the connection; `buf` may or may not still hold the
/// head.
pub fn parse_request(
    buf: &mut BytesMut,
    limits: &HeadLimits,
) -> Result<Option<RequestHead>, RequestError> {
    let scan = match scan_head(buf, limits, MAX_LEADING_EMPTY_LINES) {
        Ok(Some(scan)) => scan,
        Ok(None) => return Ok(None),
        Err(ScanError::StartLineTooLong) => return Err(RequestError::UriTooLong),
        Err(ScanError::HeadTooLarge | ScanError::TooManyFields) => {
            return Err(RequestError::HeaderFieldsTooLarge)
        }
        Err(e) => return Err(RequestError::BadRequest(e.reason())),
    };
    let head = buf.split_to(scan.len).freeze();
    let line = &head[scan.start..scan.line_end];

    // request-line = method SP request-target SP HTTP-version, single SPs only.
    let bad_line = RequestError::BadRequest("malformed request-line");
    let first_sp = line.iter().position(|&b| b == b' ').ok_or(bad_line)?;
    let last_sp = line.iter().rposition(|&b| b == b' ').ok_or(bad_line)?;
    if first_sp == last_sp {
        return Err(bad_line);
    }
    let method = &line[..first_sp];
    let target = &line[first_sp + 1..last_sp];
    let version = parse_version(&line[last_sp + 1..])?;
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(RequestError::BadRequest("invalid method"));
    }
    if target.is_empty() || target.contains(&b' ') {
        return Err(bad_line);
    }
    if !valid_target_bytes(target) {
        return Err(RequestError::BadRequest("invalid request-target"));
    }
    let method = Method::from_token(method, &head);

    let headers = parse_fields(&head, &scan).map_err(|e| match e {
        FieldError::TooMany => RequestError::HeaderFieldsTooLarge,
        FieldError::Bad(why) => RequestError::BadRequest(why),
    })?;

    // Host (RFC 9112 §3.2): one valid field, required on HTTP/1.1.
    let host_header = match headers.count("host") {
        0 if version == Version::Http11 => return Err(RequestError::BadRequest("missing Host")),
        0 => None,
        1 => {
            let h = headers.get("host").unwrap_or_default();
            if !valid_authority(h, false) {
                return Err(RequestError::BadRequest("invalid Host"));
            }
            Some(head.slice_ref(h))
        }
        _ => return Err(RequestError::BadRequest("more than one Host")),
    };

    // Request-target forms (RFC 9112 §3.2.1–3.2.4).
    let (host, path) = if target == b"*" {
        if method != Method::Options {
            return Err(RequestError::BadRequest(
                "asterisk-form target for a method other than OPTIONS",
            ));
        }
        (host_header, head.slice_ref(target))
    } else if method == Method::Connect {
        if !valid_authority(target, true) {
            return Err(RequestError::BadRequest(
                "CONNECT needs an authority-form target",
            ));
        }
        (host_header, head.slice_ref(target))
    } else if target[0] == b'/' {
        (host_header, head.slice_ref(target))
    } else {
        let (authority, rest) = split_absolute_form(target)
            .ok_or(RequestError::BadRequest("invalid request-target"))?;
        let path = match rest.first() {
            None => Bytes::from_static(b"/"),
            Some(b'/') => head.slice_ref(rest),
            Some(_) => Bytes::from([&b"/"[..], rest].concat()),
        };
        (Some(head.slice_ref(authority)), path)
    };

    let framing =
        body_length(&headers, version == Version::Http10).map_err(RequestError::BadRequest)?;

    let keep_alive = match version {
        Version::Http11 => !headers.has_token("connection", "close"),
        Version::Http10 => {
            headers.has_token("connection", "keep-alive")
                && !headers.has_token("connection", "close")
        }
    };
    let expect_continue = version == Version::Http11
        && headers
            .get_all("expect")
            .any(|v| v.eq_ignore_ascii_case(b"100-continue"));

    Ok(Some(RequestHead {
        method,
        version,
        target: head.slice_ref(target),
        host,
        path,
        headers,
        framing,
        keep_alive,
        expect_continue,
    }))
}

/// `HTTP/1.0` and `HTTP/1.1` are supported; any other `HTTP/d.d` is 505; anything else is 400.
fn parse_version(v: &[u8]) -> Result<Version, RequestError> {
    match v {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(RequestError::VersionNotSupported)
        }
        _ => Err(RequestError::BadRequest("invalid HTTP version")),
    }
}

/// Every byte of a request-target: visible ASCII except `#` (no fragment on the wire), and every
/// `%` starts a `%XX` escape. (SP, controls, DEL and non-ASCII are refused.)
fn valid_target_bytes(t: &[u8]) -> bool {
    let mut i = 0;
    while i < t.len() {
        match t[i] {
            b'%' => {
                if !(t.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && t.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 3;
            }
            b'#' => return false,
            b'!'..=b'~' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Splits an absolute-form target `http[s]://authority[/path][?query]` into a validated authority
/// (no userinfo) and the rest (empty, or starting with `/` or `?`).
fn split_absolute_form(t: &[u8]) -> Option<(&[u8], &[u8])> {
    let after_scheme = if t.len() >= 7 && t[..7].eq_ignore_ascii_case(b"http://") {
        &t[7..]
    } else if t.len() >= 8 && t[..8].eq_ignore_ascii_case(b"https://") {
        &t[8..]
    } else {
        return None;
    };
    let end = after_scheme
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(after_scheme.len());
    let (authority, rest) = after_scheme.split_at(end);
    valid_authority(authority, false).then_some((authority, rest))
}

/// `host [":" port]` where host is a DNS-style reg-name / IPv4 (ALPHA, DIGIT, `-`, `.`, `_`, `~`)
/// or a bracketed IPv6 literal, and port is 1–5 digits up to 65535. Stricter than RFC 3986's
/// reg-name on purpose: no sub-delims (`,` `;` …), no percent-encoding, no userinfo.
pub(crate) fn valid_authority(a: &[u8], require_port: bool) -> bool {
    let (host_ok, port) = if let Some(inner) = a.strip_prefix(b"[") {
        let Some(close) = inner.iter().position(|&b| b == b']') else {
            return false;
        };
        let ip = &inner[..close];
        let ok = !ip.is_empty()
            && ip.contains(&b':')
            && ip
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        match &inner[close + 1..] {
            [] => (ok, None),
            [b':', port @ ..] => (ok, Some(port)),
            _ => return false,
        }
    } else {
        let (host, port) = match a.iter().position(|&b| b == b':') {
            Some(c) => (&a[..c], Some(&a[c + 1..])),
            None => (a, None),
        };
        let ok = !host.is_empty()
            && host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        (ok, port)
    };
    let port_ok = match port {
        None => !require_port,
        Some(p) => {
            (1..=5).contains(&p.len())
                && p.iter().all(u8::is_ascii_digit)
                && p.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535
        }
    };
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Option<RequestHead>, RequestError> {
        parse_request(&mut BytesMut::from(input), &HeadLimits::default())
    }

    fn ok(input: &[u8]) -> RequestHead {
        match parse(input) {
            Ok(Some(h)) => h,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }

    fn bad(input: &[u8]) -> &'static str {
        match parse(input) {
            Err(RequestError::BadRequest(why)) => why,
            other => panic!(
                "{:?}: expected 400, got {other:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    #[test]
    fn get_origin_form() {
        let h = ok(b"GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.version, Version::Http11);
        assert_eq!(&h.target[..], b"/a/b?c=d");
        assert_eq!(&h.path[..], b"/a/b?c=d");
        assert_eq!(h.host.as_deref(), Some(&b"example.com"[..]));
        assert_eq!(h.headers.len(), 2);
        assert_eq!(h.headers.get("accept"), Some(&b"*/*"[..]));
        assert_eq!(h.framing, BodyFraming::None);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert!(h.method.is_safe());
    }

    #[test]
    fn absolute_form_uses_target_authority() {
        let h = ok(b"GET http://example.com:8080/a?b HTTP/1.1\r\nHost: other.org\r\n\r\n");
        assert_eq!(h.host.as_deref(), Some(&b"example.com:8080"[..]));
        assert_eq!(&h.path[..], b"/a?b");
        assert_eq!(&h.target[..], b"http://example.com:8080/a?b");
        let h = ok(b"GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(&h.path[..], b"/");
        let h = ok(b"GET http://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(&h.path[..], b"/?q");
        assert_eq!(h.host.as_deref(), Some(&b"example.com"[..]));
    }

    #[test]
    fn absolute_form_rejects_bad_authority_or_scheme() {
        bad(b"GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
        bad(b"GET http:///a HTTP/1.1\r\nHost: example.com\r\n\r\n");
        bad(b"GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
        bad(b"GET example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
    }

    #[test]
    fn options_asterisk() {
        let h = ok(b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(h.method, Method::Options);
        assert_eq!(&h.path[..], b"*");
        assert_eq!(
            bad(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
            "asterisk-form target for a method other than OPTIONS"
        );
    }

    #[test]
    fn connect_authority_form() {
        let h = ok(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        assert_eq!(h.method, Method::Connect);
        assert_eq!(&h.path[..], b"example.com:443");
        bad(b"CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
        bad(b"CONNECT / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    }

    #[test]
    fn post_with_content_length_leaves_body() {
        let mut buf =
            BytesMut::from(&b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"[..]);
        let h = parse_request(&mut buf, &HeadLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(h.method, Method::Post);
        assert!(!h.method.is_safe());
        assert_eq!(h.framing, BodyFraming::Length(5));
        assert_eq!(&buf[..], b"hello");
    }

    #[test]
    fn post_chunked() {
        let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Chunked);
    }

    #[test]
    fn http10_keep_alive_and_host_optional() {
        let h = ok(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(h.version, Version::Http10);
        assert!(h.keep_alive);
        assert!(h.host.is_none());
        let h = ok(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n");
        assert!(!h.keep_alive);
        assert_eq!(h.host.as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn connection_close_and_expect() {
        let h = ok(b"PUT / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
        assert!(!h.keep_alive);
        assert!(h.expect_continue);
        let h = ok(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
        assert!(!h.expect_continue);
    }

    #[test]
    fn pipelined_requests() {
        let mut buf = BytesMut::from(
            &b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        );
        let l = HeadLimits::default();
        let h1 = parse_request(&mut buf, &l).unwrap().unwrap();
        assert_eq!(&h1.path[..], b"/1");
        assert_eq!(&buf[..], b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\n");
        let h2 = parse_request(&mut buf, &l).unwrap().unwrap();
        assert_eq!(&h2.path[..], b"/2");
        assert!(buf.is_empty());
        assert!(parse_request(&mut buf, &l).unwrap().is_none());
    }

    #[test]
    fn incomplete_head_returns_none_and_keeps_buf() {
        let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        for n in 0..full.len() {
            let mut buf = BytesMut::from(&full[..n]);
            assert!(
                parse_request(&mut buf, &HeadLimits::default())
                    .unwrap()
                    .is_none(),
                "{n}"
            );
            assert_eq!(buf.len(), n);
        }
    }

    #[test]
    fn unknown_and_lowercase_methods_are_other() {
        let h = ok(b"PURGE / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.method, Method::Other(Bytes::from_static(b"PURGE")));
        assert_eq!(h.method.as_bytes(), b"PURGE");
        let h = ok(b"get / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.method.as_bytes(), b"get");
    }

    #[test]
    fn leading_empty_lines_are_skipped_a_few_times() {
        let mut buf = BytesMut::from(&b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nX"[..]);
        let h = parse_request(&mut buf, &HeadLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(&h.path[..], b"/");
        assert_eq!(&buf[..], b"X");
        bad(b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn rejects_cl_with_te() {
        assert_eq!(
            bad(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "both Content-Length and Transfer-Encoding"
        );
        bad(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
    }

    #[test]
    fn rejects_repeated_or_list_content_length() {
        bad(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        bad(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n");
        bad(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n");
    }

    #[test]
    fn rejects_malformed_content_length() {
        for v in [
            "+5",
            "-5",
            "5 5",
            "0x5",
            "5a",
            "",
            "18446744073709551616",
            "1e3",
        ] {
            let req = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {v}\r\n\r\n");
            assert_eq!(bad(req.as_bytes()), "invalid Content-Length", "{v:?}");
        }
        let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  42 \r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Length(42));
    }

    #[test]
    fn rejects_transfer_encodings_other_than_single_chunked() {
        for v in [
            "gzip",
            "chunked, gzip",
            "gzip, chunked",
            "chunked, chunked",
            "identity",
            "",
            "chunked;q=1",
        ] {
            let req = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {v}\r\n\r\n");
            bad(req.as_bytes());
        }
        bad(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n");
    }

    #[test]
    fn rejects_te_in_http10() {
        assert_eq!(
            bad(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "Transfer-Encoding in an HTTP/1.0 message"
        );
    }

    #[test]
    fn rejects_bare_lf_and_lone_cr() {
        bad(b"GET / HTTP/1.1\nHost: a\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\r\n\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n");
        bad(b"GET / HTTP/1.1\rHost: a\r\n\r\n");
        // Detected before the head is complete.
        bad(b"GET / HTTP/1.1\nHost");
    }

    #[test]
    fn rejects_obs_fold() {
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n");
    }

    #[test]
    fn rejects_bad_field_names() {
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo : b\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n");
    }

    #[test]
    fn rejects_control_bytes_and_nul() {
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x1bb\r\n\r\n");
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n");
        bad(b"GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"G\0T / HTTP/1.1\r\nHost: a\r\n\r\n");
        // HTAB and obs-text are fine inside a value.
        let h = ok(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\xff\r\n\r\n");
        assert_eq!(h.headers.get("x"), Some(&b"a\tb\xff"[..]));
    }

    #[test]
    fn rejects_bad_targets() {
        bad(b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET /a%2 HTTP/1.1\r\nHost: a\r\n\r\n");
        ok(b"GET /a%2F%c3%A9 HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn host_rules() {
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"),
            "missing Host"
        );
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
            "more than one Host"
        );
        bad(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n");
        for h in [
            "a b", "a,b", "a/b", "a@b", "", "a:", "a:x", "a:99999", "[::1", "[zz]", "a:1:2", "%41",
            "a;b",
        ] {
            let req = format!("GET / HTTP/1.1\r\nHost: {h}\r\n\r\n");
            assert_eq!(bad(req.as_bytes()), "invalid Host", "{h:?}");
        }
        for h in [
            "example.com",
            "EXAMPLE.com:8080",
            "127.0.0.1:80",
            "[::1]",
            "[2001:db8::1]:443",
            "my_host-1.x~y",
        ] {
            let req = format!("GET / HTTP/1.1\r\nHost: {h}\r\n\r\n");
            assert_eq!(ok(req.as_bytes()).host.as_deref(), Some(h.as_bytes()));
        }
    }

    #[test]
    fn rejects_malformed_request_lines() {
        bad(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n");
        bad(b" GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET /\r\nHost: a\r\n\r\n");
        bad(b"GET\r\n\r\n");
        bad(b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"G:T / HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"GET / / HTTP/1.1\r\nHost: a\r\n\r\n");
    }

    #[test]
    fn versions() {
        for v in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"] {
            let req = format!("GET / {v}\r\nHost: a\r\n\r\n");
            assert_eq!(
                parse(req.as_bytes()).unwrap_err(),
                RequestError::VersionNotSupported,
                "{v}"
            );
        }
        assert_eq!(
            parse(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .unwrap_err()
                .status(),
            505
        );
        for v in [
            "HTTP/1",
            "http/1.1",
            "HTTP/1.10",
            "HTTP/11",
            "FOO",
            "HTTP/1.x",
        ] {
            let req = format!("GET / {v}\r\nHost: a\r\n\r\n");
            assert_eq!(bad(req.as_bytes()), "invalid HTTP version", "{v}");
        }
    }

    #[test]
    fn request_line_limit() {
        let l = HeadLimits {
            max_request_line: 32,
            ..HeadLimits::default()
        };
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(40));
        let err = parse_request(&mut BytesMut::from(long.as_bytes()), &l).unwrap_err();
        assert_eq!(err, RequestError::UriTooLong);
        assert_eq!(err.status(), 414);
        // Still incomplete, but already too long.
        let partial = format!("GET /{}", "a".repeat(40));
        assert_eq!(
            parse_request(&mut BytesMut::from(partial.as_bytes()), &l).unwrap_err(),
            RequestError::UriTooLong
        );
        // Exactly at the limit is fine.
        let exact = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(32 - 14));
        assert!(parse_request(&mut BytesMut::from(exact.as_bytes()), &l)
            .unwrap()
            .is_some());
    }

    #[test]
    fn header_bytes_limit() {
        let l = HeadLimits {
            max_header_bytes: 64,
            ..HeadLimits::default()
        };
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "b".repeat(60));
        let err = parse_request(&mut BytesMut::from(big.as_bytes()), &l).unwrap_err();
        assert_eq!(err, RequestError::HeaderFieldsTooLarge);
        assert_eq!(err.status(), 431);
        // No end of head within the limit: stopped early.
        let trickle = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "b".repeat(60));
        assert_eq!(
            parse_request(&mut BytesMut::from(trickle.as_bytes()), &l).unwrap_err(),
            RequestError::HeaderFieldsTooLarge
        );
        let fits = b"GET / HTTP/1.1\r\nHost: a\r\nX: 01234567890123456789012345678901\r\n\r\n";
        assert_eq!(fits.len(), 64);
        assert!(parse_request(&mut BytesMut::from(&fits[..]), &l)
            .unwrap()
            .is_some());
    }

    #[test]
    fn header_count_limit() {
        let l = HeadLimits {
            max_headers: 3,
            ..HeadLimits::default()
        };
        let three = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(
            parse_request(&mut BytesMut::from(&three[..]), &l)
                .unwrap()
                .unwrap()
                .headers
                .len(),
            3
        );
        let four = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            parse_request(&mut BytesMut::from(&four[..]), &l).unwrap_err(),
            RequestError::HeaderFieldsTooLarge
        );
        // Beyond the 128-slot stack array.
        let l = HeadLimits {
            max_headers: 300,
            ..HeadLimits::default()
        };
        let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..250 {
            many.push_str(&format!("X-{i}: {i}\r\n"));
        }
        many.push_str("\r\n");
        let h = parse_request(&mut BytesMut::from(many.as_bytes()), &l)
            .unwrap()
            .unwrap();
        assert_eq!(h.headers.len(), 251);
        assert_eq!(h.headers.get("x-249"), Some(&b"249"[..]));
        let l = HeadLimits::default();
        assert_eq!(
            parse_request(&mut BytesMut::from(many.as_bytes()), &l).unwrap_err(),
            RequestError::HeaderFieldsTooLarge
        );
    }

    #[test]
    fn error_display() {
        let e = RequestError::BadRequest("missing Host");
        assert_eq!(e.to_string(), "400 missing Host");
        assert_eq!(RequestError::VersionNotSupported.status(), 505);
        let _: &dyn std::error::Error = &e;
    }

    #[test]
    fn headers_are_zero_copy_and_values_trimmed() {
        let h = ok(b"GET / HTTP/1.1\r\nHost:a\r\nX-Empty:\r\nX-Pad: \t v w \t\r\n\r\n");
        assert_eq!(h.headers.get("x-empty"), Some(&b""[..]));
        assert_eq!(h.headers.get("x-pad"), Some(&b"v w"[..]));
        assert_eq!(h.host.as_deref(), Some(&b"a"[..]));
    }
}
