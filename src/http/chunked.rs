//! The chunked transfer coding (RFC 9112 §7.1): an incremental, zero-copy decoder and the few
//! helpers needed to encode.
//!
//! Decoder invariants:
//! * It only ever consumes from the front of the caller's buffer, and only whole syntactic units:
//!   a complete chunk-size line, chunk data (possibly part of a chunk), a complete CRLF after the
//!   data, a complete trailer line. A partial line stays in the buffer until the rest arrives.
//! * Its verdict depends only on the bytes seen so far, in order: feeding input one byte at a time
//!   yields the same data and the same final `Done` or error as feeding it all at once, and an
//!   oversized line is refused as soon as the prefix exceeds the limit.
//! * Strict syntax: chunk-size is 1 to 16 hex digits (so it always fits a u64), optionally
//!   followed by BWS and well-formed `;name[=token|"quoted"]` extensions, which are discarded; the
//!   size line is at most 4 KiB; every line ends in exactly CRLF; chunk data is followed by exactly
//!   CRLF; the trailer section (discarded) is well-formed field lines totalling at most 8 KiB.
//! * After `Done`, the buffer starts at whatever followed the message (pipelining) and further
//!   calls return `Done` without consuming anything.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::framing::{is_field_vchar, is_tchar};

/// Longest chunk-size line (size + extensions), not counting its CRLF.
const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section, counting line endings and the final CRLF.
const MAX_TRAILER_BYTES: usize = 8192;
/// 16 hex digits always fit in a u64.
const MAX_SIZE_DIGITS: usize = 16;

/// Written after each chunk's data.
pub const CHUNK_TRAILER: &[u8] = b"\r\n";
/// The last chunk with an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Writes the chunk-size line (`1a\r\n`) for a chunk of `len` bytes. `len` must be > 0: a zero
/// size would end the body.
pub fn write_chunk_header(len: usize, out: &mut Vec<u8>) {
    debug_assert!(len > 0, "a zero-length chunk ends the body; use LAST_CHUNK");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 2 * std::mem::size_of::<usize>()];
    let mut i = digits.len();
    let mut n = len;
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// What `ChunkedDecoder::next` produced.
#[derive(Debug)]
pub enum ChunkedEvent {
    /// A zero-copy piece of chunk data (never empty).
    Data(Bytes),
    /// Everything usable was consumed; read more and call again.
    NeedMore,
    /// The body is over (last chunk, trailers and final CRLF consumed).
    Done,
}

/// Why a chunked body was refused; the connection must not be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    /// Malformed chunk-size line: no digits, a non-hex digit, more than 16 digits, stray
    /// whitespace, or a malformed extension.
    BadChunkSize,
    /// A line not ended by exactly CRLF, or chunk data not followed by exactly CRLF.
    BadLineEnding,
    /// The chunk-size line (with extensions) is longer than 4 KiB.
    ExtensionTooLong,
    /// The trailer section is larger than 8 KiB.
    TrailersTooLarge,
    /// A trailer line that is not a well-formed field line.
    BadTrailer,
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkedError::BadChunkSize => "invalid chunk-size line",
            ChunkedError::BadLineEnding => "invalid line ending in chunked body",
            ChunkedError::ExtensionTooLong => "chunk-size line too long",
            ChunkedError::TrailersTooLarge => "chunked trailer section too large",
            ChunkedError::BadTrailer => "invalid trailer field",
        })
    }
}

impl std::error::Error for ChunkedError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data; `remaining` bytes to go.
    Data,
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailers,
    Done,
}

/// Incremental decoder for one chunked body.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    remaining: u64,
    trailer_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self {
            state: State::Size,
            remaining: 0,
            trailer_bytes: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes from the front of `input`; see the module doc for the guarantees.
    pub fn next(&mut self, input: &mut BytesMut) -> Result<ChunkedEvent, ChunkedError> {
        loop {
            match self.state {
                State::Size => {
                    let Some((size, line_len)) = scan_size_line(input)? else {
                        return Ok(ChunkedEvent::NeedMore);
                    };
                    input.advance(line_len);
                    if size == 0 {
                        self.state = State::Trailers;
                    } else {
                        self.remaining = size;
                        self.state = State::Data;
                    }
                }
                State::Data => {
                    if input.is_empty() {
                        return Ok(ChunkedEvent::NeedMore);
                    }
                    let take = self.remaining.min(input.len() as u64);
                    let data = input.split_to(take as usize).freeze();
                    self.remaining -= take;
                    if self.remaining == 0 {
                        self.state = State::DataEnd;
                    }
                    return Ok(ChunkedEvent::Data(data));
                }
                State::DataEnd => {
                    match input.first() {
                        None => return Ok(ChunkedEvent::NeedMore),
                        Some(b'\r') => {}
                        Some(_) => return Err(ChunkedError::BadLineEnding),
                    }
                    match input.get(1) {
                        None => return Ok(ChunkedEvent::NeedMore),
                        Some(b'\n') => {}
                        Some(_) => return Err(ChunkedError::BadLineEnding),
                    }
                    input.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => {
                    let budget = MAX_TRAILER_BYTES - self.trailer_bytes;
                    let Some((line_len, last)) = scan_trailer_line(input, budget)? else {
                        return Ok(ChunkedEvent::NeedMore);
                    };
                    input.advance(line_len);
                    self.trailer_bytes += line_len;
                    if last {
                        self.state = State::Done;
                    }
                }
                State::Done => return Ok(ChunkedEvent::Done),
            }
        }
    }
}

/// Where the chunk-size line scanner is (RFC 9112 §7.1 / §7.1.1 grammar).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    Digits,
    /// Whitespace after the size, before a `;`.
    SizeBws,
    /// After `;`, before the extension name.
    ExtStart,
    ExtName,
    /// Whitespace after a name, before `=` or `;`.
    ExtNameBws,
    /// After `=`, before the value.
    ExtValStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    ExtQuotedEnd,
    /// Whitespace after a value, before `;`.
    ExtValBws,
}

/// Scans the chunk-size line at the front of `input`. `Ok(Some((size, len)))`: a complete line of
/// `len` bytes including CRLF; `Ok(None)`: a valid but incomplete prefix.
fn scan_size_line(input: &[u8]) -> Result<Option<(u64, usize)>, ChunkedError> {
    use ChunkedError::BadChunkSize as Bad;
    let mut state = Line::Digits;
    let mut size = 0u64;
    let mut digits = 0usize;
    for (i, &b) in input.iter().enumerate() {
        if b == b'\r' {
            return match input.get(i + 1) {
                None => Ok(None),
                Some(b'\n') => match state {
                    Line::Digits if digits > 0 => Ok(Some((size, i + 2))),
                    Line::ExtName | Line::ExtToken | Line::ExtQuotedEnd => Ok(Some((size, i + 2))),
                    _ => Err(Bad),
                },
                Some(_) => Err(ChunkedError::BadLineEnding),
            };
        }
        if b == b'\n' {
            return Err(ChunkedError::BadLineEnding);
        }
        if i >= MAX_SIZE_LINE {
            return Err(ChunkedError::ExtensionTooLong);
        }
        let ws = b == b' ' || b == b'\t';
        state = match state {
            Line::Digits => {
                if let Some(v) = hex_value(b) {
                    digits += 1;
                    if digits > MAX_SIZE_DIGITS {
                        return Err(Bad);
                    }
                    size = (size << 4) | u64::from(v);
                    Line::Digits
                } else if digits == 0 {
                    return Err(Bad);
                } else if ws {
                    Line::SizeBws
                } else if b == b';' {
                    Line::ExtStart
                } else {
                    return Err(Bad);
                }
            }
            Line::SizeBws | Line::ExtValBws => match b {
                b';' => Line::ExtStart,
                _ if ws => state,
                _ => return Err(Bad),
            },
            Line::ExtStart => match b {
                _ if ws => state,
                _ if is_tchar(b) => Line::ExtName,
                _ => return Err(Bad),
            },
            Line::ExtName | Line::ExtNameBws => match b {
                _ if is_tchar(b) && state == Line::ExtName => Line::ExtName,
                b'=' => Line::ExtValStart,
                b';' => Line::ExtStart,
                _ if ws => Line::ExtNameBws,
                _ => return Err(Bad),
            },
            Line::ExtValStart => match b {
                b'"' => Line::ExtQuoted,
                _ if ws => state,
                _ if is_tchar(b) => Line::ExtToken,
                _ => return Err(Bad),
            },
            Line::ExtToken | Line::ExtQuotedEnd => match b {
                _ if is_tchar(b) && state == Line::ExtToken => Line::ExtToken,
                b';' => Line::ExtStart,
                _ if ws => Line::ExtValBws,
                _ => return Err(Bad),
            },
            Line::ExtQuoted => match b {
                b'"' => Line::ExtQuotedEnd,
                b'\\' => Line::ExtQuotedEscape,
                _ if is_field_vchar(b) => Line::ExtQuoted,
                _ => return Err(Bad),
            },
            Line::ExtQuotedEscape => {
                if is_field_vchar(b) {
                    Line::ExtQuoted
                } else {
                    return Err(Bad);
                }
            }
        };
    }
    Ok(None)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Scans one trailer line at the front of `input`, allowed at most `budget` bytes including its
/// CRLF. `Ok(Some((len, last)))`: a complete line of `len` bytes; `last` if it was the empty line
/// ending the trailer section. `Ok(None)`: a valid but incomplete prefix.
fn scan_trailer_line(input: &[u8], budget: usize) -> Result<Option<(usize, bool)>, ChunkedError> {
    for (i, &b) in input.iter().enumerate() {
        if i >= budget {
            return Err(ChunkedError::TrailersTooLarge);
        }
        match b {
            b'\r' => {
                return match input.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') if i + 1 >= budget => Err(ChunkedError::TrailersTooLarge),
                    Some(b'\n') => {
                        let line = &input[..i];
                        if !line.is_empty() && !valid_field_line(line) {
                            return Err(ChunkedError::BadTrailer);
                        }
                        Ok(Some((i + 2, line.is_empty())))
                    }
                    Some(_) => Err(ChunkedError::BadLineEnding),
                }
            }
            b'\n' => return Err(ChunkedError::BadLineEnding),
            b' ' | b'\t' if i == 0 => return Err(ChunkedError::BadTrailer),
            _ if !is_field_vchar(b) => return Err(ChunkedError::BadTrailer),
            _ => {}
        }
    }
    Ok(None)
}

/// `token ":" OWS field-value OWS` (the value bytes are already known to be HTAB/SP/VCHAR/obs-text).
fn valid_field_line(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(colon) => colon > 0 && line[..colon].iter().all(|&b| is_tchar(b)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes everything at once: (data, result after the last event, what is left in input).
    fn decode_all(input: &[u8]) -> (Vec<u8>, Result<bool, ChunkedError>, Vec<u8>) {
        let mut dec = ChunkedDecoder::new();
        let mut buf = BytesMut::from(input);
        let mut data = Vec::new();
        loop {
            match dec.next(&mut buf) {
                Ok(ChunkedEvent::Data(d)) => {
                    assert!(!d.is_empty());
                    data.extend_from_slice(&d);
                }
                Ok(ChunkedEvent::NeedMore) => return (data, Ok(false), buf.to_vec()),
                Ok(ChunkedEvent::Done) => {
                    assert!(dec.is_done());
                    return (data, Ok(true), buf.to_vec());
                }
                Err(e) => return (data, Err(e), buf.to_vec()),
            }
        }
    }

    /// Decodes feeding one byte at a time: (data, Ok(done) or the error).
    fn decode_bytewise(input: &[u8]) -> (Vec<u8>, Result<bool, ChunkedError>, Vec<u8>) {
        let mut dec = ChunkedDecoder::new();
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut fed = 0;
        loop {
            match dec.next(&mut buf) {
                Ok(ChunkedEvent::Data(d)) => data.extend_from_slice(&d),
                Ok(ChunkedEvent::NeedMore) => {
                    if fed == input.len() {
                        return (data, Ok(false), buf.to_vec());
                    }
                    buf.extend_from_slice(&input[fed..fed + 1]);
                    fed += 1;
                }
                Ok(ChunkedEvent::Done) => {
                    buf.extend_from_slice(&input[fed..]);
                    return (data, Ok(true), buf.to_vec());
                }
                Err(e) => return (data, Err(e), Vec::new()),
            }
        }
    }

    fn err(input: &[u8]) -> ChunkedError {
        decode_all(input).1.unwrap_err()
    }

    #[test]
    fn decodes_simple_body_and_leaves_the_rest() {
        let (data, res, rest) = decode_all(
            b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
        );
        assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(res, Ok(true));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn done_is_sticky_and_consumes_nothing() {
        let mut dec = ChunkedDecoder::new();
        let mut buf = BytesMut::from(&b"0\r\n\r\nXYZ"[..]);
        assert!(matches!(dec.next(&mut buf), Ok(ChunkedEvent::Done)));
        assert!(matches!(dec.next(&mut buf), Ok(ChunkedEvent::Done)));
        assert_eq!(&buf[..], b"XYZ");
    }

    #[test]
    fn data_is_zero_copy_and_may_be_partial() {
        let mut dec = ChunkedDecoder::new();
        let mut buf = BytesMut::from(&b"a\r\n01234"[..]);
        match dec.next(&mut buf) {
            Ok(ChunkedEvent::Data(d)) => assert_eq!(&d[..], b"01234"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(dec.next(&mut buf), Ok(ChunkedEvent::NeedMore)));
        buf.extend_from_slice(b"56789\r\n0\r\n\r\n");
        match dec.next(&mut buf) {
            Ok(ChunkedEvent::Data(d)) => assert_eq!(&d[..], b"56789"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(dec.next(&mut buf), Ok(ChunkedEvent::Done)));
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_size_line_is_kept() {
        let mut dec = ChunkedDecoder::new();
        let mut buf = BytesMut::from(&b"1a;ext=1\r"[..]);
        assert!(matches!(dec.next(&mut buf), Ok(ChunkedEvent::NeedMore)));
        assert_eq!(&buf[..], b"1a;ext=1\r");
        buf.extend_from_slice(b"\n");
        assert!(matches!(dec.next(&mut buf), Ok(ChunkedEvent::NeedMore)));
        assert!(buf.is_empty());
    }

    #[test]
    fn extensions_and_trailers_are_discarded() {
        let body = b"3 ;a=b;c ; d = \"q \\\" ;\"\r\nabc\r\n3;x\r\ndef\r\n0;last=\"1\"\r\nX-Trailer: 1\r\nY:\r\n\r\nNEXT";
        let (data, res, rest) = decode_all(body);
        assert_eq!(res, Ok(true));
        assert_eq!(data, b"abcdef");
        assert_eq!(rest, b"NEXT");
    }

    #[test]
    fn size_accepts_hex_both_cases_and_16_digits() {
        assert_eq!(scan_size_line(b"1aF\r\n"), Ok(Some((0x1af, 5))));
        assert_eq!(
            scan_size_line(b"ffffffffffffffff\r\n"),
            Ok(Some((u64::MAX, 18)))
        );
        assert_eq!(scan_size_line(b"000000000000000a\r\n"), Ok(Some((10, 18))));
    }

    #[test]
    fn rejects_bad_chunk_sizes() {
        for bad in [
            &b"0x4\r\nWiki\r\n0\r\n\r\n"[..],
            b"-4\r\n",
            b"+4\r\n",
            b" 4\r\n",
            b"4 \r\n",
            b"4\t\r\n",
            b"\r\n",
            b"g\r\n",
            b";a\r\n",
            b"10000000000000000\r\n",
            b"4;\r\n",
            b"4;a=\r\n",
            b"4;a \r\n",
            b"4;a=b \r\n",
            b"4;a=\"b\r\n",
            b"4;=b\r\n",
            b"4;a=b=c\r\n",
            b"4;a=\"x\0\"\r\n",
            b"4\x00\r\n",
            b"4,5\r\n",
        ] {
            assert_eq!(
                err(bad),
                ChunkedError::BadChunkSize,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rejects_bad_line_endings() {
        for bad in [
            &b"4\nWiki\r\n0\r\n\r\n"[..],
            b"4\rWiki",
            b"4\r\nWikiX\r\n0\r\n\r\n",
            b"4\r\nWiki\n0\r\n\r\n",
            b"4\r\nWiki\r\r",
            b"4;a=b\n",
            b"0\r\n\n",
            b"0\r\nX: 1\n\r\n",
            b"0\r\nX: 1\r\n\r\r",
            b"0\r\n\rX",
        ] {
            assert_eq!(
                err(bad),
                ChunkedError::BadLineEnding,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn size_line_limit_applies_before_the_line_is_complete() {
        let mut long = b"1;a=".to_vec();
        long.extend_from_slice(&vec![b'x'; MAX_SIZE_LINE]);
        assert_eq!(err(&long), ChunkedError::ExtensionTooLong);
        let mut fits = b"1;a=".to_vec();
        fits.extend_from_slice(&vec![b'x'; MAX_SIZE_LINE - 4]);
        fits.extend_from_slice(b"\r\nZ\r\n0\r\n\r\n");
        assert_eq!(decode_all(&fits).1, Ok(true));
    }

    #[test]
    fn trailer_limits_and_syntax() {
        let mut big = b"0\r\n".to_vec();
        for i in 0..1000 {
            big.extend_from_slice(format!("X-{i}: value\r\n").as_bytes());
        }
        big.extend_from_slice(b"\r\n");
        assert_eq!(err(&big), ChunkedError::TrailersTooLarge);
        // Stopped early, without the end of the trailers.
        assert_eq!(
            err(&big[..MAX_TRAILER_BYTES + 100]),
            ChunkedError::TrailersTooLarge
        );
        for bad in [
            &b"0\r\nNoColon\r\n\r\n"[..],
            b"0\r\n: v\r\n\r\n",
            b"0\r\nX y: v\r\n\r\n",
            b"0\r\n folded\r\n\r\n",
            b"0\r\nX: 1\r\n\tmore\r\n\r\n",
            b"0\r\nX: a\x01b\r\n\r\n",
            b"0\r\nX: a\0b\r\n\r\n",
        ] {
            assert_eq!(
                err(bad),
                ChunkedError::BadTrailer,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bytewise_equals_all_at_once() {
        let mut cases: Vec<Vec<u8>> = vec![
            b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nrest".to_vec(),
            b"3 ;a=b;c ; d = \"q \\\" ;\"\r\nabc\r\n0;x\r\nT: 1\r\n\r\nNEXT".to_vec(),
            b"4\r\nWikiX".to_vec(),
            b"4\nWiki".to_vec(),
            b"10000000000000000\r\n".to_vec(),
            b"0\r\nX y: z\r\n\r\n".to_vec(),
            b"4\r\nWiki\r\n".to_vec(),
            b"4;a=\"b\r\n".to_vec(),
        ];
        let mut long = b"1;a=".to_vec();
        long.extend_from_slice(&vec![b'x'; MAX_SIZE_LINE + 10]);
        cases.push(long);
        let mut big = b"0\r\n".to_vec();
        for i in 0..1000 {
            big.extend_from_slice(format!("X-{i}: value\r\n").as_bytes());
        }
        cases.push(big);
        for case in &cases {
            let all = decode_all(case);
            let one = decode_bytewise(case);
            assert_eq!(all.0, one.0, "{:?}", String::from_utf8_lossy(case));
            assert_eq!(all.1, one.1, "{:?}", String::from_utf8_lossy(case));
            if all.1 == Ok(true) {
                assert_eq!(all.2, one.2);
            }
        }
    }

    #[test]
    fn encoder_round_trip() {
        let mut out = Vec::new();
        write_chunk_header(26, &mut out);
        assert_eq!(out, b"1a\r\n");
        out.clear();
        write_chunk_header(1, &mut out);
        assert_eq!(out, b"1\r\n");
        out.clear();
        write_chunk_header(usize::MAX, &mut out);
        assert_eq!(out, format!("{:x}\r\n", usize::MAX).as_bytes());

        let pieces: [&[u8]; 3] = [b"hello", &[b'x'; 300], b"!"];
        let mut wire = Vec::new();
        for p in pieces {
            write_chunk_header(p.len(), &mut wire);
            wire.extend_from_slice(p);
            wire.extend_from_slice(CHUNK_TRAILER);
        }
        wire.extend_from_slice(LAST_CHUNK);
        let (data, res, rest) = decode_all(&wire);
        assert_eq!(res, Ok(true));
        assert_eq!(data, pieces.concat());
        assert!(rest.is_empty());
    }

    #[test]
    fn error_display() {
        assert_eq!(
            ChunkedError::BadChunkSize.to_string(),
            "invalid chunk-size line"
        );
        let _: &dyn std::error::Error = &ChunkedError::BadTrailer;
    }

    #[test]
    fn mutated_bodies_never_panic_and_decode_the_same_bytewise() {
        use crate::http::framing::fuzz::{mutate, Rng};
        let seeds: &[&[u8]] = &[
            b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nrest",
            b"3 ;a=b;c ; d = \"q \\\" ;\"\r\nabc\r\n0;x\r\nT: 1\r\nU: 2\r\n\r\nNEXT",
            b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\nFFFF\r\nxy",
            b"0\r\n\r\n",
        ];
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        for round in 0..3000 {
            let input = mutate(&mut rng, seeds[round % seeds.len()]);
            let all = decode_all(&input);
            let one = decode_bytewise(&input);
            assert_eq!(all.0, one.0, "{:?}", String::from_utf8_lossy(&input));
            assert_eq!(all.1, one.1, "{:?}", String::from_utf8_lossy(&input));
            if all.1 == Ok(true) {
                assert_eq!(all.2, one.2);
            }
            let noise: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            let _ = decode_all(&noise);
        }
    }
}
