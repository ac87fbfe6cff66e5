//! Byte-range requests answered from a complete stored response (RFC 9110 §14, §13.1.5).
//!
//! This module owns the whole decision "200, 206 single, 206 multipart or 416" for a GET served from a
//! cached representation whose length is known, plus the pieces needed to build the answer: the
//! `Content-Range` values, zero-copy slicing of a chunked body and the `multipart/byteranges` body. It does
//! no I/O, never allocates in proportion to the body, never panics on any input and has no `unsafe`.
//!
//! Rules implemented (a `Full` answer is always a correct fallback: a server MAY ignore `Range`):
//! * Only GET honours `Range`; HEAD and every other method get `Full`.
//! * The unit is `bytes` (ASCII case-insensitive); any other unit, any syntax error, a `first > last`
//!   spec, a number that overflows `u64`, a range-set with no element at all or more than one `Range`
//!   field all make the header invalid, and an invalid header is ignored (`Full`), never a 416.
//! * OWS around commas and empty list elements are allowed (RFC 9110 §5.6.1); no whitespace is allowed
//!   inside a spec or around `=`.
//! * More than `max_ranges` specs (counted before resolution) -> `Full` (range-abuse defence).
//! * `If-Range` (evaluated only when `Range` is valid, before satisfiability): an entity-tag matches only
//!   if both it and the stored `ETag` are strong and byte-identical; an HTTP-date matches only if it
//!   equals the stored `Last-Modified` (compared as parsed dates, one-second resolution) and the stored
//!   `Date` is at least one second later than `Last-Modified` (the intermediate-cache rule of §8.8.2.2).
//!   A weak tag, an unparsable value, a missing validator or more than one `If-Range` field -> `Full`.
//! * Resolution: `first >= len` and `-0` are unsatisfiable and dropped; `last` is clamped to `len - 1`; a
//!   suffix longer than the representation selects all of it. For `len == 0` every spec is unsatisfiable
//!   (an empty range cannot be expressed in `Content-Range`), so a valid header yields `Unsatisfiable`.
//! * No satisfiable spec -> `Unsatisfiable` (416 with `Content-Range: bytes */LEN`).
//! * Overlapping or adjacent ranges are always coalesced (RFC 9110 §14.6 allows it). Each merged range
//!   takes the place of its earliest-listed member; ranges that were not merged keep the order in which
//!   they were requested. After coalescing the ranges are disjoint, so the bytes sent never exceed `len`
//!   plus per-part overhead (which `max_ranges` bounds): heavy overlap is neutralised, not refused.
//!   If one range remains the answer is `Single`.
//!
//! Invariants of the outputs: every `ByteRange` returned by `resolve`, `coalesce` or `decide` has
//! `start <= end < len`; the ranges of `Multi` are pairwise disjoint and non-adjacent and there are at
//! least two of them. `slice_chunks` and `multipart` assume the chunks hold exactly `len` bytes; if they
//! hold fewer they return what exists (never panic), and `Multipart::length` is always the exact total
//! of `Multipart::parts`.

use bytes::Bytes;

use super::headers::{trim_ows, Headers};

/// A satisfiable byte range, inclusive `start..=end`, already resolved against the representation length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range (`end - start + 1`; saturating so a malformed value cannot panic).
    pub fn length(&self) -> u64 {
        self.end.saturating_sub(self.start).saturating_add(1)
    }
}

/// One `range-spec` of a `Range: bytes=...` header, as written (not yet resolved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-last`
    FromTo(u64, u64),
    /// `first-`
    From(u64),
    /// `-suffix_length`
    Suffix(u64),
}

/// How to answer a request for a stored representation.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeDecision {
    /// Ignore `Range` and send the full 200 (no `Range`, not a GET, unknown unit, invalid syntax,
    /// `If-Range` not matching, or more than `max_ranges` specs).
    Full,
    /// One range -> 206 with `Content-Range`.
    Single(ByteRange),
    /// Two or more disjoint, non-adjacent ranges -> 206 `multipart/byteranges`.
    Multi(Vec<ByteRange>),
    /// No range satisfiable -> 416 with `Content-Range: bytes */LEN` (see [`unsatisfied_range`]).
    Unsatisfiable,
}

/// Decides how to answer a request for a stored representation of `len` bytes whose stored response
/// headers are `stored`. `max_ranges` bounds the number of specs (more -> `Full`); call sites use 64.
/// See the module documentation for the exact rules.
pub fn decide(
    req: &Headers,
    method_is_get: bool,
    stored: &Headers,
    len: u64,
    max_ranges: usize,
) -> RangeDecision {
    if !method_is_get {
        return RangeDecision::Full;
    }
    // Range is a singleton field: several of them is not something we try to interpret.
    let value = match (req.count("range"), req.get("range")) {
        (1, Some(v)) => v,
        _ => return RangeDecision::Full,
    };
    let specs = match parse_range(value) {
        Some(s) => s,
        None => return RangeDecision::Full,
    };
    if specs.len() > max_ranges {
        return RangeDecision::Full;
    }
    if req.contains("if-range") && !if_range_matches(req, stored) {
        return RangeDecision::Full;
    }
    let mut ranges = coalesce(&resolve(&specs, len));
    match ranges.len() {
        0 => RangeDecision::Unsatisfiable,
        1 => RangeDecision::Single(ranges.remove(0)),
        _ => RangeDecision::Multi(ranges),
    }
}

/// True if the request's `If-Range` condition holds for the stored response (RFC 9110 §13.1.5).
/// Call only when the request has an `If-Range` field; absent or repeated fields are "false".
pub fn if_range_matches(req: &Headers, stored: &Headers) -> bool {
    if req.count("if-range") != 1 {
        return false;
    }
    let cond = match req.get("if-range") {
        Some(v) => trim_ows(v),
        None => return false,
    };
    if cond.starts_with(b"W/") {
        // A weak entity-tag never matches (strong comparison is required).
        return false;
    }
    if cond.first() == Some(&b'"') {
        if !is_strong_etag(cond) {
            return false;
        }
        return match stored.get("etag").map(trim_ows) {
            Some(tag) => is_strong_etag(tag) && tag == cond,
            None => false,
        };
    }
    let when = match parse_date(cond) {
        Some(t) => t,
        None => return false,
    };
    let last_modified = match stored.get("last-modified").and_then(parse_date) {
        Some(t) => t,
        None => return false,
    };
    let date = match stored.get("date").and_then(parse_date) {
        Some(t) => t,
        None => return false,
    };
    when == last_modified
        && date
            .duration_since(last_modified)
            .is_ok_and(|d| d >= std::time::Duration::from_secs(1))
}

/// `"` *etagc `"` with etagc = %x21 / %x23-7E / obs-text (RFC 9110 §8.8.3).
fn is_strong_etag(v: &[u8]) -> bool {
    match v {
        [b'"', inner @ .., b'"'] => inner
            .iter()
            .all(|&c| c == 0x21 || (0x23..=0x7e).contains(&c) || c >= 0x80),
        _ => false,
    }
}

fn parse_date(v: &[u8]) -> Option<std::time::SystemTime> {
    let s = std::str::from_utf8(trim_ows(v)).ok()?;
    httpdate::parse_http_date(s).ok()
}

/// Parses a `Range` value (`bytes=0-4, 10-, -5`). `None` if the unit is not `bytes` or the value is
/// syntactically invalid (including `first > last`, overflow, and a set with no element). The specs
/// are returned in the order written, empty list elements skipped.
pub fn parse_range(value: &[u8]) -> Option<Vec<RangeSpec>> {
    let value = trim_ows(value);
    let eq = value.iter().position(|&b| b == b'=')?;
    let (unit, set) = (&value[..eq], &value[eq + 1..]);
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let mut specs = Vec::new();
    for elem in set.split(|&b| b == b',').map(trim_ows) {
        if elem.is_empty() {
            continue;
        }
        specs.push(parse_spec(elem)?);
    }
    if specs.is_empty() {
        None
    } else {
        Some(specs)
    }
}

fn parse_spec(elem: &[u8]) -> Option<RangeSpec> {
    let dash = elem.iter().position(|&b| b == b'-')?;
    let (first, last) = (&elem[..dash], &elem[dash + 1..]);
    match (first.is_empty(), last.is_empty()) {
        (true, true) => None,
        (true, false) => Some(RangeSpec::Suffix(parse_u64(last)?)),
        (false, true) => Some(RangeSpec::From(parse_u64(first)?)),
        (false, false) => {
            let (f, l) = (parse_u64(first)?, parse_u64(last)?);
            if l < f {
                None
            } else {
                Some(RangeSpec::FromTo(f, l))
            }
        }
    }
}

/// 1*DIGIT as a `u64`; `None` on an empty string, any non-digit or overflow.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Resolves specs against `len`, in request order: drops unsatisfiable ones (`first >= len`, `-0`,
/// anything when `len == 0`), clamps `last` to `len - 1`, and turns a suffix longer than the
/// representation into the whole of it. Does not coalesce (see [`coalesce`]).
pub fn resolve(specs: &[RangeSpec], len: u64) -> Vec<ByteRange> {
    let Some(max) = len.checked_sub(1) else {
        return Vec::new();
    };
    specs
        .iter()
        .filter_map(|spec| match *spec {
            RangeSpec::FromTo(first, last) if first <= max && first <= last => Some(ByteRange {
                start: first,
                end: last.min(max),
            }),
            RangeSpec::From(first) if first <= max => Some(ByteRange {
                start: first,
                end: max,
            }),
            RangeSpec::Suffix(n) if n > 0 => Some(ByteRange {
                start: len.saturating_sub(n),
                end: max,
            }),
            _ => None,
        })
        .collect()
}

/// Merges overlapping or adjacent ranges. Each merged range takes the position of its earliest-listed
/// member; ranges that were not merged keep their relative order (RFC 9110 §14.6). Ranges with
/// `start > end` are dropped.
pub fn coalesce(ranges: &[ByteRange]) -> Vec<ByteRange> {
    // (first index in the request, range), sorted by start to find the groups.
    let mut by_start: Vec<(usize, ByteRange)> = ranges
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, r)| r.start <= r.end)
        .collect();
    by_start.sort_by_key(|&(i, r)| (r.start, i));
    let mut merged: Vec<(usize, ByteRange)> = Vec::with_capacity(by_start.len());
    for (i, r) in by_start {
        match merged.last_mut() {
            Some((first, cur)) if r.start <= cur.end.saturating_add(1) => {
                cur.end = cur.end.max(r.end);
                *first = (*first).min(i);
            }
            _ => merged.push((i, r)),
        }
    }
    merged.sort_by_key(|&(i, _)| i);
    merged.into_iter().map(|(_, r)| r).collect()
}

/// The `Content-Range` value of a 206 part: `bytes START-END/LEN`.
pub fn content_range(r: ByteRange, len: u64) -> String {
    format!("bytes {}-{}/{}", r.start, r.end, len)
}

/// The `Content-Range` value of a 416: `bytes */LEN`.
pub fn unsatisfied_range(len: u64) -> String {
    format!("bytes */{len}")
}

/// The pieces of a body (given as consecutive chunks) that fall in `r`: zero-copy slices of the chunks,
/// in order, none empty. If the chunks end before `r.end` the result is simply shorter.
pub fn slice_chunks(chunks: &[Bytes], r: ByteRange) -> Vec<Bytes> {
    let mut out = Vec::new();
    if r.start > r.end {
        return out;
    }
    let mut offset: u64 = 0; // absolute position of the current chunk's first byte
    for chunk in chunks {
        let clen = chunk.len() as u64;
        let chunk_end = offset.saturating_add(clen); // exclusive
        if chunk_end > r.start && clen > 0 {
            // Both bounds lie within 0..=clen, so they fit in usize.
            let lo = r.start.saturating_sub(offset);
            let hi = (r.end.saturating_add(1))
                .min(chunk_end)
                .saturating_sub(offset);
            if lo < hi {
                out.push(chunk.slice(lo as usize..hi as usize));
            }
        }
        if chunk_end > r.end {
            break;
        }
        offset = chunk_end;
    }
    out
}

/// A `multipart/byteranges` body ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Multipart {
    /// The boundary string (without the leading `--`).
    pub boundary: String,
    /// The response `Content-Type` value: `multipart/byteranges; boundary=...`.
    pub content_type: String,
    /// The body, in order: per part a header block then zero-copy slices of the stored body, then the
    /// closing delimiter.
    pub parts: Vec<Bytes>,
    /// Exact total length of `parts` (the `Content-Length`).
    pub length: u64,
}

/// Builds a `multipart/byteranges` body (RFC 9110 §14.6) for `ranges` of a body of `len` bytes held in
/// `chunks`. Each part is `--B\r\n[Content-Type: CT\r\n]Content-Range: bytes a-b/len\r\n\r\n<bytes>\r\n`
/// and the body ends with `--B--\r\n`. The `Content-Type` line is omitted when `content_type` is `None`
/// or holds CR, LF or NUL. The boundary `VERGE` + 16 hex digits is derived deterministically from `seed`
/// (a caller-supplied counter); if it occurs in any selected byte range another candidate derived from
/// the same seed is tried, as RFC 2046 §5.1.1 forbids the delimiter inside a part (the scan is linear
/// in the bytes selected). Parts are emitted in the order of `ranges`.
pub fn multipart(
    chunks: &[Bytes],
    ranges: &[ByteRange],
    len: u64,
    content_type: Option<&[u8]>,
    seed: u64,
) -> Multipart {
    let bodies: Vec<Vec<Bytes>> = ranges.iter().map(|&r| slice_chunks(chunks, r)).collect();
    let content_type =
        content_type.filter(|ct| !ct.iter().any(|&b| matches!(b, b'\r' | b'\n' | b'\0')));

    let mut boundary = String::new();
    for attempt in 0u64..8 {
        boundary = format!(
            "VERGE{:016x}",
            mix(seed ^ attempt.wrapping_mul(0xa076_1d64_78bd_642f))
        );
        if !bodies.iter().any(|b| contains(b, boundary.as_bytes())) {
            break;
        }
        // Eight independent 64-bit candidates all occurring in the data is not a practical event;
        // if it happens the last candidate is used anyway.
    }

    let mut parts = Vec::with_capacity(ranges.len() * 3 + 1);
    for (i, (&r, body)) in ranges.iter().zip(bodies).enumerate() {
        let mut head = Vec::with_capacity(96 + boundary.len());
        if i > 0 {
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"--");
        head.extend_from_slice(boundary.as_bytes());
        head.extend_from_slice(b"\r\n");
        if let Some(ct) = content_type {
            head.extend_from_slice(b"Content-Type: ");
            head.extend_from_slice(ct);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"Content-Range: ");
        head.extend_from_slice(content_range(r, len).as_bytes());
        head.extend_from_slice(b"\r\n\r\n");
        parts.push(Bytes::from(head));
        parts.extend(body);
    }
    let tail = if ranges.is_empty() {
        format!("--{boundary}--\r\n")
    } else {
        format!("\r\n--{boundary}--\r\n")
    };
    parts.push(Bytes::from(tail));
    let length = parts.iter().map(|p| p.len() as u64).sum();
    Multipart {
        content_type: format!("multipart/byteranges; boundary={boundary}"),
        boundary,
        parts,
        length,
    }
}

/// splitmix64 finaliser: spreads consecutive seeds over the whole 64-bit space.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// True if `needle` occurs in the concatenation of `pieces` (KMP, streaming across piece boundaries).
fn contains(pieces: &[Bytes], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    // failure[i] = length of the longest proper border of needle[..=i].
    let mut failure = vec![0usize; needle.len()];
    let mut k = 0;
    for i in 1..needle.len() {
        while k > 0 && needle[i] != needle[k] {
            k = failure[k - 1];
        }
        if needle[i] == needle[k] {
            k += 1;
        }
        failure[i] = k;
    }
    let mut matched = 0;
    for &b in pieces.iter().flat_map(|p| p.iter()) {
        while matched > 0 && b != needle[matched] {
            matched = failure[matched - 1];
        }
        if b == needle[matched] {
            matched += 1;
            if matched == needle.len() {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEN: u64 = 10_000;

    fn br(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    fn req(range: &str) -> Headers {
        let mut h = Headers::new();
        h.push("Range", range.to_owned());
        h
    }

    fn get(range: &str, len: u64) -> RangeDecision {
        decide(&req(range), true, &Headers::new(), len, 64)
    }

    // ---- RFC 9110 §14.1.2 examples -------------------------------------------------------------

    #[test]
    fn rfc_examples_single() {
        assert_eq!(get("bytes=0-499", LEN), RangeDecision::Single(br(0, 499)));
        assert_eq!(
            get("bytes=500-999", LEN),
            RangeDecision::Single(br(500, 999))
        );
        assert_eq!(
            get("bytes=-500", LEN),
            RangeDecision::Single(br(9500, 9999))
        );
        assert_eq!(
            get("bytes=9500-", LEN),
            RangeDecision::Single(br(9500, 9999))
        );
    }

    #[test]
    fn rfc_first_and_last_byte_is_multi() {
        assert_eq!(
            get("bytes=0-0,-1", LEN),
            RangeDecision::Multi(vec![br(0, 0), br(9999, 9999)])
        );
    }

    #[test]
    fn rfc_adjacent_and_overlapping_are_coalesced() {
        assert_eq!(
            get("bytes=500-600,601-999", LEN),
            RangeDecision::Single(br(500, 999))
        );
        assert_eq!(
            get("bytes=500-700,601-999", LEN),
            RangeDecision::Single(br(500, 999))
        );
    }

    // ---- parsing --------------------------------------------------------------------------------

    #[test]
    fn parse_specs_in_order() {
        assert_eq!(
            parse_range(b"bytes=0-4, 10-, -5"),
            Some(vec![
                RangeSpec::FromTo(0, 4),
                RangeSpec::From(10),
                RangeSpec::Suffix(5)
            ])
        );
    }

    #[test]
    fn unit_is_case_insensitive() {
        assert_eq!(
            parse_range(b"BYTES=1-2"),
            Some(vec![RangeSpec::FromTo(1, 2)])
        );
        assert_eq!(get("Bytes=1-2", LEN), RangeDecision::Single(br(1, 2)));
    }

    #[test]
    fn ows_and_empty_elements_are_allowed() {
        assert_eq!(
            parse_range(b"bytes= ,\t0-1 ,, 5-6\t, "),
            Some(vec![RangeSpec::FromTo(0, 1), RangeSpec::FromTo(5, 6)])
        );
    }

    #[test]
    fn invalid_syntax_is_none() {
        for v in [
            "",
            "bytes",
            "bytes=",
            "bytes= , ,",
            "bytes=-",
            "bytes=5-2",
            "bytes=0-1,5-2",
            "bytes=a-1",
            "bytes=1-b",
            "bytes=+1-2",
            "bytes=1 -2",
            "bytes=1- 2",
            "bytes =1-2",
            "bytes= 1-2;",
            "bytes=1-2-3",
            "bytes=--1",
            "bytes=18446744073709551616-",
            "bytes=0-18446744073709551616",
            "bytes=-99999999999999999999999",
            "items=0-1",
            "=0-1",
        ] {
            assert_eq!(parse_range(v.as_bytes()), None, "{v:?}");
        }
        assert_eq!(
            parse_range(b"bytes=18446744073709551615-"),
            Some(vec![RangeSpec::From(u64::MAX)])
        );
    }

    #[test]
    fn invalid_header_means_full() {
        assert_eq!(get("bytes=5-2", LEN), RangeDecision::Full);
        assert_eq!(get("bytes=0-1,5-2", LEN), RangeDecision::Full);
        assert_eq!(get("bytes=99999999999999999999-", LEN), RangeDecision::Full);
        assert_eq!(get("pages=1-2", LEN), RangeDecision::Full);
        assert_eq!(get("bytes=", LEN), RangeDecision::Full);
    }

    #[test]
    fn no_range_or_not_get_is_full() {
        assert_eq!(
            decide(&Headers::new(), true, &Headers::new(), LEN, 64),
            RangeDecision::Full
        );
        assert_eq!(
            decide(&req("bytes=0-1"), false, &Headers::new(), LEN, 64),
            RangeDecision::Full
        );
        let mut two = req("bytes=0-1");
        two.push("range", "bytes=2-3");
        assert_eq!(
            decide(&two, true, &Headers::new(), LEN, 64),
            RangeDecision::Full
        );
    }

    // ---- resolution and satisfiability ----------------------------------------------------------

    #[test]
    fn suffix_larger_than_len_selects_everything() {
        assert_eq!(get("bytes=-20000", LEN), RangeDecision::Single(br(0, 9999)));
        assert_eq!(get("bytes=-10000", LEN), RangeDecision::Single(br(0, 9999)));
    }

    #[test]
    fn last_is_clamped() {
        assert_eq!(
            get("bytes=9000-20000", LEN),
            RangeDecision::Single(br(9000, 9999))
        );
        assert_eq!(
            get("bytes=0-18446744073709551615", LEN),
            RangeDecision::Single(br(0, 9999))
        );
    }

    #[test]
    fn first_beyond_len_is_unsatisfiable() {
        assert_eq!(get("bytes=10000-", LEN), RangeDecision::Unsatisfiable);
        assert_eq!(get("bytes=10000-10005", LEN), RangeDecision::Unsatisfiable);
        assert_eq!(get("bytes=-0", LEN), RangeDecision::Unsatisfiable);
        assert_eq!(
            get("bytes=10000-,-0,20000-30000", LEN),
            RangeDecision::Unsatisfiable
        );
        assert_eq!(unsatisfied_range(LEN), "bytes */10000");
    }

    #[test]
    fn unsatisfiable_specs_are_dropped_among_satisfiable_ones() {
        assert_eq!(
            get("bytes=20000-,5-6,-0", LEN),
            RangeDecision::Single(br(5, 6))
        );
    }

    #[test]
    fn zero_length_representation() {
        for v in [
            "bytes=0-",
            "bytes=0-0",
            "bytes=-1",
            "bytes=-0",
            "bytes=0-,-5",
        ] {
            assert_eq!(get(v, 0), RangeDecision::Unsatisfiable, "{v}");
        }
        assert_eq!(get("bytes=5-1", 0), RangeDecision::Full);
        assert_eq!(get("bytes=x", 0), RangeDecision::Full);
    }

    #[test]
    fn resolve_keeps_request_order_without_coalescing() {
        let specs = parse_range(b"bytes=-5,0-1,3-").unwrap_or_default();
        assert_eq!(resolve(&specs, 10), vec![br(5, 9), br(0, 1), br(3, 9)]);
    }

    #[test]
    fn one_byte_representation() {
        assert_eq!(get("bytes=0-0", 1), RangeDecision::Single(br(0, 0)));
        assert_eq!(get("bytes=-5", 1), RangeDecision::Single(br(0, 0)));
        assert_eq!(get("bytes=1-", 1), RangeDecision::Unsatisfiable);
    }

    // ---- coalescing and abuse -------------------------------------------------------------------

    #[test]
    fn disjoint_ranges_keep_request_order() {
        assert_eq!(
            get("bytes=900-999,0-9,500-509", LEN),
            RangeDecision::Multi(vec![br(900, 999), br(0, 9), br(500, 509)])
        );
    }

    #[test]
    fn merged_range_takes_earliest_position() {
        // 800-899 is listed first; 0-9 and 5-20 merge and take 0-9's place (second).
        assert_eq!(
            get("bytes=800-899,5-20,300-300,0-9", LEN),
            RangeDecision::Multi(vec![br(800, 899), br(0, 20), br(300, 300)])
        );
        assert_eq!(
            coalesce(&[br(10, 20), br(0, 5), br(6, 9), br(30, 40)]),
            vec![br(0, 20), br(30, 40)]
        );
    }

    #[test]
    fn heavy_overlap_is_coalesced_not_amplified() {
        let v = format!("bytes={}", vec!["0-"; 64].join(","));
        assert_eq!(get(&v, LEN), RangeDecision::Single(br(0, 9999)));
        let v = format!(
            "bytes={}",
            (0..50)
                .map(|i| format!("{i}-{}", i + 100))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(get(&v, LEN), RangeDecision::Single(br(0, 149)));
    }

    #[test]
    fn too_many_ranges_is_full() {
        let many = |n: usize| {
            format!(
                "bytes={}",
                (0..n)
                    .map(|i| format!("{}-{}", i * 10, i * 10))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        match get(&many(64), LEN) {
            RangeDecision::Multi(v) => assert_eq!(v.len(), 64),
            other => panic!("{other:?}"),
        }
        assert_eq!(get(&many(65), LEN), RangeDecision::Full);
        assert_eq!(
            decide(&req("bytes=0-1"), true, &Headers::new(), LEN, 0),
            RangeDecision::Full
        );
        // Empty elements are not counted.
        let sparse = format!("bytes=0-0{}", ",".repeat(1000));
        assert_eq!(
            decide(&req(&sparse), true, &Headers::new(), LEN, 1),
            RangeDecision::Single(br(0, 0))
        );
    }

    // ---- If-Range -------------------------------------------------------------------------------

    fn with_if_range(range: &str, if_range: &str) -> Headers {
        let mut h = req(range);
        h.push("If-Range", if_range.to_owned());
        h
    }

    fn stored(pairs: &[(&'static str, &'static str)]) -> Headers {
        let mut h = Headers::new();
        for &(n, v) in pairs {
            h.push(n, v);
        }
        h
    }

    #[test]
    fn if_range_strong_etag() {
        let s = stored(&[("ETag", "\"abc\"")]);
        let d = |ir: &str| decide(&with_if_range("bytes=0-9", ir), true, &s, LEN, 64);
        assert_eq!(d("\"abc\""), RangeDecision::Single(br(0, 9)));
        assert_eq!(d(" \"abc\" "), RangeDecision::Single(br(0, 9)));
        assert_eq!(d("\"abd\""), RangeDecision::Full);
        assert_eq!(d("W/\"abc\""), RangeDecision::Full);
        assert_eq!(d("\"abc"), RangeDecision::Full);
        assert_eq!(d("\"abc\", \"abc\""), RangeDecision::Full);
        // No stored ETag.
        assert_eq!(
            decide(
                &with_if_range("bytes=0-9", "\"abc\""),
                true,
                &Headers::new(),
                LEN,
                64
            ),
            RangeDecision::Full
        );
    }

    #[test]
    fn if_range_weak_stored_etag_never_matches() {
        let s = stored(&[("ETag", "W/\"abc\"")]);
        for ir in ["\"abc\"", "W/\"abc\""] {
            assert_eq!(
                decide(&with_if_range("bytes=0-9", ir), true, &s, LEN, 64),
                RangeDecision::Full
            );
        }
    }

    #[test]
    fn if_range_failing_means_full_even_when_unsatisfiable() {
        let s = stored(&[("ETag", "\"abc\"")]);
        assert_eq!(
            decide(&with_if_range("bytes=20000-", "\"zzz\""), true, &s, LEN, 64),
            RangeDecision::Full
        );
        assert_eq!(
            decide(&with_if_range("bytes=20000-", "\"abc\""), true, &s, LEN, 64),
            RangeDecision::Unsatisfiable
        );
    }

    const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn if_range_date_matches_with_strong_last_modified() {
        let s = stored(&[
            ("Last-Modified", LM),
            ("Date", "Sun, 06 Nov 1994 08:49:38 GMT"),
        ]);
        let d = |ir: &str| decide(&with_if_range("bytes=0-9", ir), true, &s, LEN, 64);
        assert_eq!(d(LM), RangeDecision::Single(br(0, 9)));
        // Same instant in the obsolete RFC 850 and asctime formats.
        assert_eq!(
            d("Sunday, 06-Nov-94 08:49:37 GMT"),
            RangeDecision::Single(br(0, 9))
        );
        assert_eq!(
            d("Sun Nov  6 08:49:37 1994"),
            RangeDecision::Single(br(0, 9))
        );
        // Not equal: earlier or later.
        assert_eq!(d("Sun, 06 Nov 1994 08:49:36 GMT"), RangeDecision::Full);
        assert_eq!(d("Sun, 06 Nov 1994 08:49:38 GMT"), RangeDecision::Full);
        assert_eq!(d("not a date"), RangeDecision::Full);
    }

    #[test]
    fn if_range_date_needs_date_one_second_later() {
        let d = |s: &Headers| decide(&with_if_range("bytes=0-9", LM), true, s, LEN, 64);
        assert_eq!(
            d(&stored(&[("Last-Modified", LM), ("Date", LM)])),
            RangeDecision::Full
        );
        assert_eq!(
            d(&stored(&[
                ("Last-Modified", LM),
                ("Date", "Sun, 06 Nov 1994 08:49:36 GMT")
            ])),
            RangeDecision::Full
        );
        assert_eq!(d(&stored(&[("Last-Modified", LM)])), RangeDecision::Full);
        assert_eq!(
            d(&stored(&[("Date", "Sun, 06 Nov 1994 09:00:00 GMT")])),
            RangeDecision::Full
        );
        assert_eq!(
            d(&stored(&[
                ("Last-Modified", LM),
                ("Date", "Mon, 07 Nov 1994 00:00:00 GMT")
            ])),
            RangeDecision::Single(br(0, 9))
        );
    }

    #[test]
    fn if_range_date_does_not_match_etag_and_vice_versa() {
        let s = stored(&[
            ("ETag", "\"abc\""),
            ("Last-Modified", LM),
            ("Date", "Mon, 07 Nov 1994 00:00:00 GMT"),
        ]);
        assert_eq!(
            decide(&with_if_range("bytes=0-9", "\"xyz\""), true, &s, LEN, 64),
            RangeDecision::Full
        );
        assert_eq!(
            decide(&with_if_range("bytes=0-9", LM), true, &s, LEN, 64),
            RangeDecision::Single(br(0, 9))
        );
        let mut two = with_if_range("bytes=0-9", "\"abc\"");
        two.push("If-Range", "\"abc\"");
        assert_eq!(decide(&two, true, &s, LEN, 64), RangeDecision::Full);
    }

    // ---- Content-Range and slicing --------------------------------------------------------------

    #[test]
    fn content_range_values() {
        assert_eq!(content_range(br(0, 499), 1234), "bytes 0-499/1234");
        assert_eq!(content_range(br(9999, 9999), LEN), "bytes 9999-9999/10000");
    }

    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Splits `data` into chunks of the given sizes (the last takes the rest).
    fn chunked(data: &[u8], sizes: &[usize]) -> Vec<Bytes> {
        let all = Bytes::copy_from_slice(data);
        let mut out = Vec::new();
        let mut at = 0;
        for &s in sizes {
            out.push(all.slice(at..at + s));
            at += s;
        }
        out.push(all.slice(at..));
        out
    }

    fn points_into(piece: &Bytes, chunks: &[Bytes]) -> bool {
        let (p0, p1) = (
            piece.as_ptr() as usize,
            piece.as_ptr() as usize + piece.len(),
        );
        chunks.iter().any(|c| {
            let (c0, c1) = (c.as_ptr() as usize, c.as_ptr() as usize + c.len());
            c0 <= p0 && p1 <= c1
        })
    }

    #[test]
    fn slice_chunks_across_boundaries_is_zero_copy() {
        let data = body(100);
        // Chunks: 0..10, 10..10 (empty), 10..40, 40..41, 41..100.
        let chunks = chunked(&data, &[10, 0, 30, 1]);
        for (s, e) in [
            (0, 99),
            (0, 0),
            (9, 10),
            (5, 45),
            (10, 39),
            (40, 40),
            (39, 41),
            (99, 99),
            (41, 99),
        ] {
            let pieces = slice_chunks(&chunks, br(s, e));
            assert!(pieces.iter().all(|p| !p.is_empty()));
            assert!(pieces.iter().all(|p| points_into(p, &chunks)), "{s}-{e}");
            let joined: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(joined, &data[s as usize..=e as usize], "{s}-{e}");
        }
        assert_eq!(slice_chunks(&chunks, br(5, 45)).len(), 4);
        assert_eq!(slice_chunks(&chunks, br(10, 39)).len(), 1);
    }

    #[test]
    fn slice_chunks_never_panics_on_short_or_odd_input() {
        let data = body(20);
        let chunks = chunked(&data, &[7]);
        let tail: Vec<u8> = slice_chunks(&chunks, br(15, 1000))
            .iter()
            .flat_map(|p| p.to_vec())
            .collect();
        assert_eq!(tail, &data[15..]);
        assert!(slice_chunks(&chunks, br(50, 60)).is_empty());
        assert!(slice_chunks(&chunks, br(5, 2)).is_empty());
        assert!(slice_chunks(&[], br(0, 0)).is_empty());
        assert_eq!(
            slice_chunks(&chunks, br(u64::MAX, u64::MAX)),
            Vec::<Bytes>::new()
        );
        assert_eq!(
            slice_chunks(&chunks, br(0, u64::MAX))
                .iter()
                .map(Bytes::len)
                .sum::<usize>(),
            20
        );
    }

    // ---- multipart ------------------------------------------------------------------------------

    fn concat(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    #[test]
    fn multipart_layout_and_exact_length() {
        let data = b"0123456789abcdefghij".to_vec();
        let chunks = chunked(&data, &[4, 9]);
        let ranges = [br(0, 0), br(3, 14), br(19, 19)];
        let m = multipart(&chunks, &ranges, 20, Some(b"text/plain"), 7);
        let b = &m.boundary;
        assert!(b.starts_with("VERGE") && b.len() == 21);
        assert_eq!(
            m.content_type,
            format!("multipart/byteranges; boundary={b}")
        );
        let expected = format!(
            "--{b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-0/20\r\n\r\n0\r\n\
             --{b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 3-14/20\r\n\r\n3456789abcde\r\n\
             --{b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 19-19/20\r\n\r\nj\r\n\
             --{b}--\r\n"
        );
        assert_eq!(
            String::from_utf8(concat(&m.parts)).unwrap_or_default(),
            expected
        );
        assert_eq!(m.length, expected.len() as u64);
        // The body bytes are zero-copy slices of the stored chunks.
        let data_pieces = m.parts.iter().filter(|p| points_into(p, &chunks)).count();
        assert_eq!(data_pieces, 1 + 3 + 1);
    }

    #[test]
    fn multipart_without_or_with_bad_content_type() {
        let chunks = vec![Bytes::from_static(b"hello world")];
        let ranges = [br(0, 1), br(6, 7)];
        for ct in [None, Some(&b"text/plain\r\nX-Evil: 1"[..])] {
            let m = multipart(&chunks, &ranges, 11, ct, 1);
            let b = &m.boundary;
            let expected = format!(
                "--{b}\r\nContent-Range: bytes 0-1/11\r\n\r\nhe\r\n--{b}\r\nContent-Range: bytes 6-7/11\r\n\r\nwo\r\n--{b}--\r\n"
            );
            assert_eq!(concat(&m.parts), expected.as_bytes());
            assert_eq!(m.length, expected.len() as u64);
        }
    }

    #[test]
    fn multipart_boundary_is_deterministic_and_varies_with_seed() {
        let chunks = vec![Bytes::from_static(b"abcdef")];
        let r = [br(0, 0), br(2, 2)];
        assert_eq!(
            multipart(&chunks, &r, 6, None, 42).boundary,
            multipart(&chunks, &r, 6, None, 42).boundary
        );
        assert_ne!(
            multipart(&chunks, &r, 6, None, 42).boundary,
            multipart(&chunks, &r, 6, None, 43).boundary
        );
    }

    #[test]
    fn multipart_boundary_avoids_the_selected_data() {
        let chunks = vec![Bytes::from_static(b"abcdef")];
        let r = [br(0, 0), br(2, 2)];
        let first = multipart(&chunks, &r, 6, None, 9).boundary;
        // A body that contains the first candidate, split across two chunks.
        let evil = format!("xx{first}yy");
        let (a, b) = evil.as_bytes().split_at(10);
        let chunks = vec![Bytes::copy_from_slice(a), Bytes::copy_from_slice(b)];
        let n = evil.len() as u64;
        let m = multipart(&chunks, &[br(0, 0), br(1, n - 1)], n, None, 9);
        assert_ne!(m.boundary, first);
        assert!(!contains(&chunks, m.boundary.as_bytes()));
        assert_eq!(m.length, concat(&m.parts).len() as u64);
    }

    #[test]
    fn contains_streams_across_pieces() {
        let p = [
            Bytes::from_static(b"aaab"),
            Bytes::from_static(b"aab"),
            Bytes::new(),
            Bytes::from_static(b"c"),
        ];
        assert!(contains(&p, b"aabaabc"));
        assert!(contains(&p, b"bc"));
        assert!(!contains(&p, b"abaaa"));
        assert!(!contains(&[], b"x"));
    }

    #[test]
    fn decide_then_build_end_to_end() {
        let data = body(1000);
        let chunks = chunked(&data, &[333, 333]);
        let ranges = match get("bytes=-10, 0-9", 1000) {
            RangeDecision::Multi(v) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(ranges, vec![br(990, 999), br(0, 9)]);
        let m = multipart(&chunks, &ranges, 1000, Some(b"application/octet-stream"), 0);
        assert_eq!(m.length, concat(&m.parts).len() as u64);
    }

    #[test]
    fn no_panic_on_arbitrary_bytes() {
        // A small deterministic fuzz over short strings of range-relevant bytes.
        let alphabet = b"bytes=-,0159 \t\xffB";
        let mut x: u64 = 1;
        for _ in 0..20_000 {
            x = mix(x);
            let n = (x % 14) as usize;
            let mut v = b"bytes=".to_vec();
            let mut y = x;
            for _ in 0..n {
                y = mix(y);
                v.push(alphabet[(y % alphabet.len() as u64) as usize]);
            }
            let mut h = Headers::new();
            h.push("Range", v);
            for len in [0, 1, 7, u64::MAX] {
                let rs = match decide_ranges(&h, len) {
                    RangeDecision::Multi(rs) => {
                        assert!(rs.len() >= 2);
                        rs
                    }
                    RangeDecision::Single(r) => vec![r],
                    _ => Vec::new(),
                };
                for r in rs {
                    assert!(r.start <= r.end && r.end < len);
                }
            }
        }
    }

    fn decide_ranges(h: &Headers, len: u64) -> RangeDecision {
        decide(h, true, &Headers::new(), len, 64)
    }
}
