//! Strict HTTP/1.1 response-head parser, for Verge as a client of an origin (RFC 9112 §4, §6).
//!
//! Owns `ResponseHead`, `ResponseError` and `parse_response`.
//!
//! Invariants of a returned `ResponseHead`: the head ended in CRLFCRLF with CRLF-only line endings,
//! no NUL, no obs-fold, no empty line before the status-line; the status-line is exactly
//! `HTTP/1.x SP 3DIGIT [SP reason-phrase]` with a status in 100..=599 and a reason of HTAB / SP /
//! VCHAR / obs-text only; field names are tokens and values hold no controls but HTAB. The framing
//! follows RFC 9112 §6.3 in order: a HEAD request or a 1xx/204/304 status has no body (its
//! `Content-Length` / `Transfer-Encoding` are then not evaluated); otherwise a single
//! `Transfer-Encoding: chunked`, a single valid `Content-Length`, or neither (`UntilClose`) —
//! anything else is `Malformed`, never a guess.

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::framing::{
    body_length, is_field_vchar, parse_fields, scan_head, BodyFraming, FieldError, HeadLimits,
    ScanError,
};
use super::headers::Headers;
use super::request::Version;

/// A parsed response head.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub version: Version,
    pub status: u16,
    /// The reason phrase as received (possibly empty).
    pub reason: Bytes,
    pub headers: Headers,
    pub framing: BodyFraming,
    /// False for HTTP/1.0 without `Connection: keep-alive`, with `Connection: close`, or when the
    /// body runs until close.
    pub keep_alive: bool,
}

/// Why an origin's response head was refused; the connection must not be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Not a valid (or not an unambiguous) HTTP/1.x response head; short reason.
    Malformed(&'static str),
    /// Status-line, head or field count over the limits.
    TooLarge,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Malformed(why) => write!(f, "malformed response head: {why}"),
            ResponseError::TooLarge => f.write_str("response head too large"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// Parses one response head at the start of `buf`; same contract as `parse_request`
/// (`max_request_line` bounds the status-line). `request_was_head`: the request was HEAD, so the
/// response has no body whatever its fields say.
pub fn parse_response(
    buf: &mut BytesMut,
    limits: &HeadLimits,
    request_was_head: bool,
) -> Result<Option<ResponseHead>, ResponseError> {
    let scan = match scan_head(buf, limits, 0) {
        Ok(Some(scan)) => scan,
        Ok(None) => return Ok(None),
        Err(ScanError::StartLineTooLong | ScanError::HeadTooLarge | ScanError::TooManyFields) => {
            return Err(ResponseError::TooLarge)
        }
        Err(e) => return Err(ResponseError::Malformed(e.reason())),
    };
    let head = buf.split_to(scan.len).freeze();
    let line = &head[scan.start..scan.line_end];

    // status-line = HTTP-version SP status-code SP [ reason-phrase ]; a missing final SP (no
    // reason at all) is tolerated, as it is unambiguous.
    let version = match line.get(..8) {
        Some(b"HTTP/1.1") => Version::Http11,
        Some(b"HTTP/1.0") => Version::Http10,
        _ => {
            return Err(ResponseError::Malformed(
                "invalid or unsupported HTTP version",
            ))
        }
    };
    let (status, reason) = match &line[8..] {
        [b' ', d1, d2, d3, rest @ ..]
            if d1.is_ascii_digit() && d2.is_ascii_digit() && d3.is_ascii_digit() =>
        {
            let status =
                u16::from(d1 - b'0') * 100 + u16::from(d2 - b'0') * 10 + u16::from(d3 - b'0');
            let reason: &[u8] = match rest {
                [] => &[],
                [b' ', reason @ ..] => reason,
                _ => return Err(ResponseError::Malformed("invalid status-line")),
            };
            (status, reason)
        }
        _ => return Err(ResponseError::Malformed("invalid status-line")),
    };
    if !(100..=599).contains(&status) {
        return Err(ResponseError::Malformed("status code out of range"));
    }
    if !reason.iter().all(|&b| is_field_vchar(b)) {
        return Err(ResponseError::Malformed(
            "control character in reason phrase",
        ));
    }

    let headers = parse_fields(&head, &scan).map_err(|e| match e {
        FieldError::TooMany => ResponseError::TooLarge,
        FieldError::Bad(why) => ResponseError::Malformed(why),
    })?;

    let framing = if request_was_head || status < 200 || status == 204 || status == 304 {
        BodyFraming::None
    } else {
        match body_length(&headers, version == Version::Http10).map_err(ResponseError::Malformed)? {
            BodyFraming::None => BodyFraming::UntilClose,
            framing => framing,
        }
    };

    let keep_alive = framing != BodyFraming::UntilClose
        && !headers.has_token("connection", "close")
        && (version == Version::Http11 || headers.has_token("connection", "keep-alive"));

    Ok(Some(ResponseHead {
        version,
        status,
        reason: head.slice_ref(reason),
        headers,
        framing,
        keep_alive,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_as(input: &[u8], head_req: bool) -> Result<Option<ResponseHead>, ResponseError> {
        parse_response(&mut BytesMut::from(input), &HeadLimits::default(), head_req)
    }

    fn ok(input: &[u8]) -> ResponseHead {
        match parse_as(input, false) {
            Ok(Some(h)) => h,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }

    fn bad(input: &[u8]) -> &'static str {
        match parse_as(input, false) {
            Err(ResponseError::Malformed(why)) => why,
            other => panic!(
                "{:?}: expected Malformed, got {other:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    #[test]
    fn simple_200_with_length() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX: y\r\n\r\nabcHTTP"[..]);
        let h = parse_response(&mut buf, &HeadLimits::default(), false)
            .unwrap()
            .unwrap();
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.status, 200);
        assert_eq!(&h.reason[..], b"OK");
        assert_eq!(h.framing, BodyFraming::Length(3));
        assert!(h.keep_alive);
        assert_eq!(h.headers.get("x"), Some(&b"y"[..]));
        assert_eq!(&buf[..], b"abcHTTP");
    }

    #[test]
    fn chunked_and_until_close() {
        let h = ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Chunked);
        assert!(h.keep_alive);
        let h = ok(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::UntilClose);
        assert!(!h.keep_alive);
    }

    #[test]
    fn bodiless_statuses_and_head() {
        for s in [
            "100 Continue",
            "101 Switching Protocols",
            "204 No Content",
            "304 Not Modified",
        ] {
            let resp = format!("HTTP/1.1 {s}\r\nContent-Length: 10\r\n\r\n");
            let h = ok(resp.as_bytes());
            assert_eq!(h.framing, BodyFraming::None, "{s}");
            assert!(h.keep_alive);
        }
        let h = parse_as(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, BodyFraming::None);
        let h = parse_as(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, BodyFraming::None);
        let h = parse_as(b"HTTP/1.1 200 OK\r\n\r\n", true).unwrap().unwrap();
        assert_eq!(h.framing, BodyFraming::None);
        assert!(h.keep_alive);
    }

    #[test]
    fn keep_alive_rules() {
        assert!(!ok(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        assert!(
            ok(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
        assert!(
            !ok(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive
        );
        assert!(!ok(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn reason_phrase_forms() {
        assert_eq!(
            &ok(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").reason[..],
            b""
        );
        assert_eq!(
            &ok(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n").reason[..],
            b""
        );
        assert_eq!(
            &ok(b"HTTP/1.1 404 Not  \tFound \xe9\r\nContent-Length: 0\r\n\r\n").reason[..],
            b"Not  \tFound \xe9"
        );
        bad(b"HTTP/1.1 200 O\x01K\r\n\r\n");
        bad(b"HTTP/1.1 200 O\x7fK\r\n\r\n");
    }

    #[test]
    fn rejects_bad_status_lines() {
        for line in [
            "HTTP/1.1 99 X",
            "HTTP/1.1 099 X",
            "HTTP/1.1 600 X",
            "HTTP/1.1 2000 X",
            "HTTP/1.1 20 X",
            "HTTP/1.1  200 X",
            "HTTP/1.1 -20 X",
            "HTTP/1.1\t200 X",
            "HTTP/1.1 200\tX",
            "HTTP/2.0 200 OK",
            "HTTP/1.2 200 OK",
            "http/1.1 200 OK",
            "HTTP/1.1",
            "ICY 200 OK",
            "HTTP/1.1 2x0 OK",
        ] {
            let resp = format!("{line}\r\nContent-Length: 0\r\n\r\n");
            bad(resp.as_bytes());
        }
        assert_eq!(
            ok(b"HTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n").status,
            599
        );
        assert_eq!(ok(b"HTTP/1.1 100 X\r\n\r\n").status, 100);
    }

    #[test]
    fn rejects_framing_ambiguity() {
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "both Content-Length and Transfer-Encoding"
        );
        bad(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
        bad(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n");
        for v in ["+3", "-3", "3 3", "0x3", "", "18446744073709551616"] {
            let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {v}\r\n\r\n");
            assert_eq!(bad(resp.as_bytes()), "invalid Content-Length", "{v:?}");
        }
        for v in [
            "gzip",
            "gzip, chunked",
            "chunked, gzip",
            "chunked, chunked",
            "identity",
        ] {
            let resp = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {v}\r\n\r\n");
            bad(resp.as_bytes());
        }
        bad(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n");
        bad(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n").framing,
            BodyFraming::Length(u64::MAX)
        );
    }

    #[test]
    fn rejects_line_ending_abuse_nul_and_folding() {
        bad(b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n");
        bad(b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\n");
        bad(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n");
        bad(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n");
        bad(b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n");
        bad(b"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n");
        bad(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n");
        bad(b"HTTP/1.1 200 OK\r\n X: a\r\n\r\n");
        bad(b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n");
        bad(b"HTTP/1.1 200 OK\r\n: a\r\n\r\n");
        bad(b"\r\nHTTP/1.1 200 OK\r\n\r\n");
        bad(b"HTTP/1.1 200 OK\nX");
    }

    #[test]
    fn limits() {
        let l = HeadLimits {
            max_request_line: 16,
            max_header_bytes: 48,
            max_headers: 2,
        };
        let p = |b: &[u8]| parse_response(&mut BytesMut::from(b), &l, false);
        assert_eq!(
            p(b"HTTP/1.1 200 OK, really").unwrap_err(),
            ResponseError::TooLarge
        );
        assert_eq!(
            p(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n").unwrap_err(),
            ResponseError::TooLarge
        );
        assert_eq!(
            p(b"HTTP/1.1 200 OK\r\nA: 0123456789012345678901234567890123").unwrap_err(),
            ResponseError::TooLarge
        );
        assert!(p(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n")
            .unwrap()
            .is_some());
        assert!(p(b"HTTP/1.1 200 OK\r\nA: 1\r\n").unwrap().is_none());
    }

    #[test]
    fn error_display() {
        assert_eq!(
            ResponseError::TooLarge.to_string(),
            "response head too large"
        );
        let e = ResponseError::Malformed("x");
        assert_eq!(e.to_string(), "malformed response head: x");
        let _: &dyn std::error::Error = &e;
    }
}
