//! Shared pieces of HTTP/1.1 message-head parsing (RFC 9112): body framing, the head limits,
//! the strict byte-level pre-scan of a head, the field-section parse, and the evaluation of
//! `Content-Length` / `Transfer-Encoding`.
//!
//! Invariants this module establishes for `request.rs` and `response.rs`:
//! * `scan_head` accepts a head only if every line ends in exactly CRLF (no bare LF, no lone CR),
//!   it holds no NUL, no line of the field section starts with SP/HTAB (obs-fold, or whitespace
//!   between the start-line and the first field), and the limits hold. Its verdict depends only on
//!   the bytes seen so far, in order, so feeding a head in pieces gives the same result as feeding
//!   it whole, and a limit is reported as soon as the prefix breaks it.
//! * `parse_fields` yields a `Headers` whose names are tokens and whose values hold no control
//!   byte other than HTAB (and no DEL), as `Headers` requires; names and values are zero-copy
//!   slices of the head.
//! * `body_length` never guesses: anything but one well-formed `Content-Length` or one
//!   `Transfer-Encoding: chunked` is an error.

use bytes::Bytes;

use super::headers::Headers;

/// How the body of a message is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// The body runs until the connection closes (responses only).
    UntilClose,
}

/// Size limits applied while a head is being received.
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    /// Longest start-line (request-line or status-line), not counting its CRLF.
    pub max_request_line: usize,
    /// Longest head, counting everything through the final CRLFCRLF (and any skipped empty lines).
    pub max_header_bytes: usize,
    /// Most header fields.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_request_line: 8192,
            max_header_bytes: 65536,
            max_headers: 100,
        }
    }
}

/// Why `scan_head` refused a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanError {
    StartLineTooLong,
    HeadTooLarge,
    TooManyFields,
    BareLf,
    LoneCr,
    Nul,
    ObsFold,
    TooManyEmptyLines,
}

impl ScanError {
    /// Short human reason (for the protocol errors; the limits have their own status codes).
    pub(crate) fn reason(self) -> &'static str {
        match self {
            ScanError::StartLineTooLong => "start-line too long",
            ScanError::HeadTooLarge => "header section too large",
            ScanError::TooManyFields => "too many header fields",
            ScanError::BareLf => "bare LF line ending",
            ScanError::LoneCr => "CR not followed by LF",
            ScanError::Nul => "NUL byte in message head",
            ScanError::ObsFold => "line folding or whitespace before a header field",
            ScanError::TooManyEmptyLines => "empty lines before the start-line",
        }
    }
}

/// Where the parts of a complete head are, as offsets into the scanned buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeadScan {
    /// Start of the start-line (after skipped empty lines).
    pub start: usize,
    /// Index of the CR ending the start-line.
    pub line_end: usize,
    /// Number of field lines.
    pub fields: usize,
    /// Length of the whole head, through the final CRLFCRLF.
    pub len: usize,
}

/// Scans the head at the front of `buf`. `Ok(None)`: no violation so far but the head is not
/// complete. Up to `max_empty_lines` CRLFs before the start-line are skipped.
pub(crate) fn scan_head(
    buf: &[u8],
    limits: &HeadLimits,
    max_empty_lines: usize,
) -> Result<Option<HeadScan>, ScanError> {
    // The byte at `i`, if received; a received byte past the head limit is an error.
    let at = |i: usize| -> Result<Option<u8>, ScanError> {
        match buf.get(i) {
            None => Ok(None),
            Some(_) if i >= limits.max_header_bytes => Err(ScanError::HeadTooLarge),
            Some(&b) => Ok(Some(b)),
        }
    };
    // Finds the CRLF ending the line that starts at `from`; returns the index of its CR. The bytes
    // up to the first CR, LF or NUL are skipped with one vectorised search (memchr3); the checks are
    // the same as byte-by-byte: a NUL or bare LF is an error, so is a lone CR, a line longer than
    // `max_len`, or a received byte at or past the head limit.
    let line_end = |from: usize, max_len: usize| -> Result<Option<usize>, ScanError> {
        let hay_end = buf.len().min(limits.max_header_bytes);
        let region_end = hay_end.min(from.saturating_add(max_len).saturating_add(1));
        let region = buf.get(from..region_end).unwrap_or_default();
        let Some(p) = memchr::memchr3(b'\r', b'\n', 0, region) else {
            if region.len() > max_len {
                // The byte at `from + max_len` is received, below the head limit, and not a CR.
                return Err(ScanError::StartLineTooLong);
            }
            // Stopped at the head limit or the end of what was received.
            return at(from + region.len()).map(|_| None);
        };
        let j = from + p;
        match buf[j] {
            0 => Err(ScanError::Nul),
            b'\n' => Err(ScanError::BareLf),
            _ => match at(j + 1)? {
                None => Ok(None),
                Some(b'\n') => Ok(Some(j)),
                Some(_) => Err(ScanError::LoneCr),
            },
        }
    };

    let mut i = 0;
    let mut empty_lines = 0;
    loop {
        match at(i)? {
            None => return Ok(None),
            Some(b'\r') => match at(i + 1)? {
                None => return Ok(None),
                Some(b'\n') => {
                    empty_lines += 1;
                    if empty_lines > max_empty_lines {
                        return Err(ScanError::TooManyEmptyLines);
                    }
                    i += 2;
                }
                Some(_) => return Err(ScanError::LoneCr),
            },
            Some(b'\n') => return Err(ScanError::BareLf),
            Some(_) => break,
        }
    }

    let start = i;
    let Some(start_end) = line_end(start, limits.max_request_line)? else {
        return Ok(None);
    };
    i = start_end + 2;
    let mut fields = 0;
    loop {
        match at(i)? {
            None => return Ok(None),
            Some(b'\r') => {
                return match at(i + 1)? {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some(HeadScan {
                        start,
                        line_end: start_end,
                        fields,
                        len: i + 2,
                    })),
                    Some(_) => Err(ScanError::LoneCr),
                }
            }
            Some(b'\n') => return Err(ScanError::BareLf),
            Some(0) => return Err(ScanError::Nul),
            Some(b' ' | b'\t') => return Err(ScanError::ObsFold),
            Some(_) => {
                fields += 1;
                if fields > limits.max_headers {
                    return Err(ScanError::TooManyFields);
                }
                let Some(end) = line_end(i, usize::MAX)? else {
                    return Ok(None);
                };
                i = end + 2;
            }
        }
    }
}

/// Why `parse_fields` refused a field section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldError {
    TooMany,
    Bad(&'static str),
}

/// Parses the field section of a head that `scan_head` accepted: `head` is the whole head
/// (exactly `scan.len` bytes) and the fields start after the start-line's CRLF.
pub(crate) fn parse_fields(head: &Bytes, scan: &HeadScan) -> Result<Headers, FieldError> {
    let section = head
        .get(scan.line_end + 2..)
        .ok_or(FieldError::Bad("malformed header section"))?;
    // The pre-scan counted the field lines exactly (no folding), so exactly that many slots are
    // handed to httparse: from a small stack array for ordinary requests (initialising a large one
    // on every request cost more than the parse), from the heap past it.
    let mut stack = [httparse::EMPTY_HEADER; 32];
    let mut heap;
    let slots: &mut [httparse::Header<'_>] = if scan.fields <= stack.len() {
        &mut stack[..scan.fields]
    } else {
        heap = vec![httparse::EMPTY_HEADER; scan.fields];
        &mut heap[..]
    };
    let parsed = match httparse::parse_headers(section, slots) {
        Ok(httparse::Status::Complete((n, parsed))) if n == section.len() => parsed,
        Ok(_) => return Err(FieldError::Bad("malformed header section")),
        Err(httparse::Error::TooManyHeaders) => return Err(FieldError::TooMany),
        Err(httparse::Error::HeaderName) => {
            return Err(FieldError::Bad("invalid header field name"))
        }
        Err(httparse::Error::HeaderValue) => {
            return Err(FieldError::Bad("invalid header field value"))
        }
        Err(_) => return Err(FieldError::Bad("malformed header section")),
    };
    // httparse (default config) already refuses a name that is not a token
    // (`Error::HeaderName`) and a value byte outside HTAB / SP / VCHAR / obs-text
    // (`Error::HeaderValue`): exactly `is_tchar` and `is_field_vchar`, which
    // `httparse_enforces_field_bytes` checks byte by byte so that an httparse upgrade cannot loosen
    // this unnoticed. Checking every byte again here cost about a tenth of the parse.
    let mut headers = Headers::with_capacity(parsed.len());
    for h in parsed.iter() {
        let name = h.name.as_bytes();
        debug_assert!(!name.is_empty() && name.iter().all(|&b| is_tchar(b)));
        debug_assert!(h.value.iter().all(|&b| is_field_vchar(b)));
        headers.push(head.slice_ref(name), head.slice_ref(h.value));
    }
    Ok(headers)
}

/// RFC 9110 `tchar`, one lookup per byte (names are checked byte by byte on every request).
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    t
};

/// A byte allowed inside a field value or reason phrase: HTAB, SP, VCHAR, obs-text.
pub(crate) fn is_field_vchar(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// Parses a `Content-Length` value: 1*DIGIT fitting in a u64, nothing else (no sign, no
/// whitespace inside, no list).
pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Evaluates `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.1–6.3) for a message that can
/// carry a body. Returns `Length`, `Chunked`, or `None` when neither field is present (a response
/// maps that to `UntilClose`). Errors, with a short reason: both fields; a repeated or list-valued
/// field; a malformed length; any transfer coding other than a single `chunked`; any
/// `Transfer-Encoding` in an HTTP/1.0 message.
pub fn body_length(headers: &Headers, http10: bool) -> Result<BodyFraming, &'static str> {
    let te = headers.count("transfer-encoding");
    let cl = headers.count("content-length");
    if te > 0 {
        if cl > 0 {
            return Err("both Content-Length and Transfer-Encoding");
        }
        if http10 {
            return Err("Transfer-Encoding in an HTTP/1.0 message");
        }
        if te > 1 {
            return Err("repeated Transfer-Encoding field");
        }
        match headers.get("transfer-encoding") {
            Some(v) if v.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
            _ => Err("unsupported Transfer-Encoding (only a single \"chunked\" is accepted)"),
        }
    } else if cl > 0 {
        if cl > 1 {
            return Err("repeated Content-Length field");
        }
        headers
            .get("content-length")
            .and_then(parse_content_length)
            .map(BodyFraming::Length)
            .ok_or("invalid Content-Length")
    } else {
        Ok(BodyFraming::None)
    }
}

/// A tiny deterministic mutator for the no-panic tests (shared with `chunked.rs`).
#[cfg(test)]
pub(crate) mod fuzz {
    /// xorshift64*; deterministic so failures reproduce.
    pub(crate) struct Rng(pub u64);

    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const INTERESTING: &[u8] = b"\r\n\0 \t:;,=\"\\\x7f\xff0f9/H?#%@[]-+";

    /// Applies 1–4 random edits (replace, insert, delete, truncate, duplicate a range) to `seed`.
    pub(crate) fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(v.len() + 1);
            let byte = if rng.below(3) == 0 {
                rng.next() as u8
            } else {
                INTERESTING[rng.below(INTERESTING.len())]
            };
            match rng.below(5) {
                0 if at < v.len() => v[at] = byte,
                1 => v.insert(at, byte),
                2 if at < v.len() => {
                    v.remove(at);
                }
                3 => v.truncate(at),
                _ => {
                    let end = (at + rng.below(16)).min(v.len());
                    let dup = v[at..end].to_vec();
                    v.splice(at..at, dup);
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::parse_request;
    use super::super::response::parse_response;
    use super::fuzz::{mutate, Rng};
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn tchar_table_is_rfc_9110_tchar() {
        let specials = b"!#$%&'*+-.^_`|~";
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || specials.contains(&b);
            assert_eq!(is_tchar(b), want, "byte {b:#04x}");
        }
    }

    /// `parse_fields` leaves the byte checks of names and values to httparse: every byte, in a
    /// short and a long (vectorised) name and value, must be accepted exactly when `is_tchar` /
    /// `is_field_vchar` allow it.
    #[test]
    fn httparse_enforces_field_bytes() {
        let parses = |raw: Vec<u8>| {
            let mut buf = BytesMut::from(&raw[..]);
            matches!(parse_request(&mut buf, &lim()), Ok(Some(_)))
        };
        let pad = "p".repeat(40);
        for b in 0..=255u8 {
            if b == b':' {
                continue; // ends the name: a different, valid field
            }
            for (pre, post) in [("X", "Y"), (pad.as_str(), "Y"), ("X", pad.as_str())] {
                let mut raw = format!("GET / HTTP/1.1\r\nHost: h\r\n{pre}").into_bytes();
                raw.push(b);
                raw.extend_from_slice(format!("{post}: v\r\n\r\n").as_bytes());
                assert_eq!(parses(raw), is_tchar(b), "name byte {b:#04x}, {pre}/{post}");

                let mut raw = format!("GET / HTTP/1.1\r\nHost: h\r\nX-V: {pre}").into_bytes();
                raw.push(b);
                raw.extend_from_slice(format!("{post}\r\n\r\n").as_bytes());
                assert_eq!(
                    parses(raw),
                    is_field_vchar(b),
                    "value byte {b:#04x}, {pre}/{post}"
                );
            }
        }
    }

    fn lim() -> HeadLimits {
        HeadLimits::default()
    }

    #[test]
    fn content_length_values() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"007"), Some(7));
        assert_eq!(
            parse_content_length(b"18446744073709551615"),
            Some(u64::MAX)
        );
        for bad in [
            &b""[..],
            b"+5",
            b"-5",
            b"5 5",
            b"0x5",
            b"5,5",
            b"a",
            b"18446744073709551616",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn scan_finds_head_and_counts_fields() {
        let s = scan_head(b"\r\nGET / HTTP/1.1\r\nA: b\r\nC: d\r\n\r\nbody", &lim(), 4)
            .unwrap()
            .unwrap();
        assert_eq!((s.start, s.line_end, s.fields, s.len), (2, 16, 2, 32));
    }

    #[test]
    fn scan_rejects_line_ending_abuse() {
        let cases: &[(&[u8], ScanError)] = &[
            (b"GET / HTTP/1.1\nHost: a\r\n\r\n", ScanError::BareLf),
            (b"GET / HTTP/1.1\r\nHost: a\n\r\n", ScanError::BareLf),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\n", ScanError::BareLf),
            (b"\nGET / HTTP/1.1\r\n\r\n", ScanError::BareLf),
            (b"GET / HTTP/1.1\rHost: a\r\n\r\n", ScanError::LoneCr),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\rx", ScanError::LoneCr),
            (b"GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n", ScanError::Nul),
            (b"GET / HTTP/1.1\r\n\0\r\n\r\n", ScanError::Nul),
            (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", ScanError::ObsFold),
            (b"GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", ScanError::ObsFold),
        ];
        for (input, want) in cases {
            assert_eq!(scan_head(input, &lim(), 4).unwrap_err(), *want, "{input:?}");
        }
    }

    #[test]
    fn scan_limits_apply_to_incomplete_heads() {
        let l = HeadLimits {
            max_request_line: 10,
            max_header_bytes: 40,
            max_headers: 2,
        };
        assert_eq!(
            scan_head(b"GET /12345", &l, 4).unwrap().map(|s| s.len),
            None
        );
        assert_eq!(
            scan_head(b"GET /123456", &l, 4).unwrap_err(),
            ScanError::StartLineTooLong
        );
        let long = b"GET / H\r\nA: 0123456789012345678901234567890";
        assert_eq!(scan_head(long, &l, 4).unwrap_err(), ScanError::HeadTooLarge);
        assert_eq!(
            scan_head(b"GET / H\r\nA: b\r\nB: c\r\nC", &l, 4).unwrap_err(),
            ScanError::TooManyFields
        );
        assert_eq!(
            scan_head(b"\r\n\r\n\r\nGET", &l, 2).unwrap_err(),
            ScanError::TooManyEmptyLines
        );
    }

    /// Result of parsing `input` all at once, and of feeding it one byte at a time, as comparable
    /// strings (the parsed head's Debug form plus what is left in the buffer, or the error).
    fn outcomes<T: std::fmt::Debug, E: std::fmt::Debug>(
        input: &[u8],
        parse: impl Fn(&mut BytesMut) -> Result<Option<T>, E>,
    ) -> (String, String) {
        let mut buf = BytesMut::from(input);
        let all = match parse(&mut buf) {
            Ok(Some(h)) => format!("{h:?} rest={:?}", &buf[..]),
            other => format!("{other:?}"),
        };
        let mut buf = BytesMut::new();
        let mut one = format!("{:?}", Ok::<Option<T>, E>(None));
        for (i, &b) in input.iter().enumerate() {
            buf.extend_from_slice(&[b]);
            match parse(&mut buf) {
                Ok(None) => continue,
                Ok(Some(h)) => {
                    buf.extend_from_slice(&input[i + 1..]);
                    one = format!("{h:?} rest={:?}", &buf[..]);
                }
                other => one = format!("{other:?}"),
            }
            break;
        }
        (all, one)
    }

    #[test]
    fn mutated_heads_never_panic_and_parse_the_same_bytewise() {
        let requests: &[&[u8]] = &[
            b"GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
            b"POST http://example.com:8080/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            b"\r\nPUT /u HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
            b"OPTIONS * HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        ];
        let responses: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nCache-Control: max-age=60\r\n\r\nabc",
            b"HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
            b"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ];
        let limits = HeadLimits {
            max_request_line: 48,
            max_header_bytes: 160,
            max_headers: 4,
        };
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut parsed, mut refused) = (0, 0);
        for round in 0..3000 {
            let req = mutate(&mut rng, requests[round % requests.len()]);
            let (all, one) = outcomes(&req, |b| parse_request(b, &limits));
            assert_eq!(all, one, "request {:?}", String::from_utf8_lossy(&req));
            if all.starts_with("RequestHead") {
                parsed += 1;
            } else if all.starts_with("Err") {
                refused += 1;
            }
            let resp = mutate(&mut rng, responses[round % responses.len()]);
            let head_req = round % 7 == 0;
            let (all, one) = outcomes(&resp, |b| parse_response(b, &limits, head_req));
            assert_eq!(all, one, "response {:?}", String::from_utf8_lossy(&resp));
            // Pure noise too.
            let noise: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            let _ = parse_request(&mut BytesMut::from(&noise[..]), &limits);
            let _ = parse_response(&mut BytesMut::from(&noise[..]), &limits, false);
        }
        // The mutations exercise both sides.
        assert!(
            parsed > 300 && refused > 300,
            "parsed {parsed}, refused {refused}"
        );
    }
}
