//! Parsing of the `Cache-Control` header field (RFC 9111 §5.2) into a [`CacheControl`] value.
//!
//! This module owns only syntax: it turns every `Cache-Control` field line of a [`Headers`] into one
//! struct of directives, request and response directives alike. What the directives *mean* for storing,
//! freshness and reuse is decided in `cache::policy`.
//!
//! Invariants and error handling (no input can make it panic):
//! - Grammar is `#( token [ "=" ( token / quoted-string ) ] )`; directive names are matched
//!   case-insensitively, commas inside a quoted-string never split, quoted-pairs (`\x`) are unescaped.
//!   No whitespace is allowed around `=` (`max-age =5` and `max-age= 5` are malformed).
//! - delta-seconds are `1*DIGIT`, in token or quoted form (`max-age="5"` is accepted, as RFC 9111 §5.2
//!   asks of recipients); values above 2^31 saturate to 2^31 (§1.2.2); leading zeros are fine.
//! - A malformed, empty or duplicated-with-a-different-value `max-age` / `s-maxage` sets
//!   [`CacheControl::invalid_max_age`]; callers must then treat the response as stale (§4.2.1, §1.2.2).
//! - Other malformed elements are ignored, except that the *restrictive* directives (`no-store`,
//!   `no-cache`, `private`, `must-revalidate`, `proxy-revalidate`, `no-transform`) are honoured in their
//!   broadest (unqualified) form when their name is recognisable but the rest of the element is not.
//!   Permissive directives (`public`, `immutable`, `must-understand`, `stale-*`, `max-stale`, ...) are
//!   dropped when malformed. Unknown directives are ignored.
//! - Field-name lists (`no-cache="a, b"`, `private="x"`) are lowercased, deduplicated, and only hold
//!   valid tokens.

use crate::http::framing::is_tchar;
use crate::http::headers::Headers;

/// Largest delta-seconds value we represent (RFC 9111 §1.2.2: "2147483648 (2^31)").
pub const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// Every directive of all `Cache-Control` fields of one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `max-age` in seconds. When the directive occurs several times with different values this holds
    /// the smallest one and `invalid_max_age` is set.
    pub max_age: Option<u64>,
    /// `s-maxage` in seconds; duplicates are handled like `max_age`.
    pub s_maxage: Option<u64>,
    pub no_store: bool,
    /// Unqualified `no-cache`.
    pub no_cache: bool,
    /// Field names of a qualified `no-cache="a, b"` (lowercased).
    pub no_cache_fields: Vec<String>,
    /// Unqualified `private`.
    pub private: bool,
    /// Field names of a qualified `private="a, b"` (lowercased).
    pub private_fields: Vec<String>,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub must_understand: bool,
    pub no_transform: bool,
    pub immutable: bool,
    /// RFC 5861; the smallest value wins when duplicated.
    pub stale_while_revalidate: Option<u64>,
    /// RFC 5861; the smallest value wins when duplicated.
    pub stale_if_error: Option<u64>,
    /// Request `max-stale`: `Some(None)` without a value (any staleness), `Some(Some(n))` with one.
    /// Duplicates keep the most restrictive (smallest) limit.
    pub max_stale: Option<Option<u64>>,
    /// Request `min-fresh`; duplicates keep the largest (most restrictive) value.
    pub min_fresh: Option<u64>,
    pub only_if_cached: bool,
    /// A `max-age` or `s-maxage` was present but malformed, valueless, or duplicated with conflicting
    /// values: the response must be treated as stale (RFC 9111 §4.2.1, §1.2.2).
    pub invalid_max_age: bool,
}

impl CacheControl {
    /// Parses every `Cache-Control` field line of `headers`, in order, as one combined list.
    pub fn parse(headers: &Headers) -> Self {
        let mut cc = CacheControl::default();
        for line in headers.get_all("cache-control") {
            let mut p = Parser { s: line, i: 0 };
            while let Some(el) = p.next_element() {
                cc.apply(el);
            }
        }
        cc
    }

    /// Folds one parsed element into `self`.
    fn apply(&mut self, el: Element<'_>) {
        let Some(name) = el.name else {
            return; // nothing recognisable: ignore
        };
        let lname = name.to_ascii_lowercase();
        match lname.as_slice() {
            b"max-age" => apply_freshness(&mut self.max_age, &mut self.invalid_max_age, &el),
            b"s-maxage" => apply_freshness(&mut self.s_maxage, &mut self.invalid_max_age, &el),
            b"no-store" => self.no_store = true,
            b"no-cache" => match qualified_fields(&el) {
                Some(fields) => merge_fields(&mut self.no_cache_fields, fields),
                None => self.no_cache = true,
            },
            b"private" => match qualified_fields(&el) {
                Some(fields) => merge_fields(&mut self.private_fields, fields),
                None => self.private = true,
            },
            b"must-revalidate" => self.must_revalidate = true,
            b"proxy-revalidate" => self.proxy_revalidate = true,
            b"no-transform" => self.no_transform = true,
            // Permissive directives: only honoured when well formed and valueless.
            b"public" if el.ok && el.value.is_none() => self.public = true,
            b"must-understand" if el.ok && el.value.is_none() => self.must_understand = true,
            b"immutable" if el.ok && el.value.is_none() => self.immutable = true,
            b"only-if-cached" if el.ok && el.value.is_none() => self.only_if_cached = true,
            b"stale-while-revalidate" => {
                if let Some(v) = el_delta(&el) {
                    self.stale_while_revalidate = Some(min_opt(self.stale_while_revalidate, v));
                }
            }
            b"stale-if-error" => {
                if let Some(v) = el_delta(&el) {
                    self.stale_if_error = Some(min_opt(self.stale_if_error, v));
                }
            }
            b"min-fresh" => {
                if let Some(v) = el_delta(&el) {
                    self.min_fresh = Some(self.min_fresh.map_or(v, |old| old.max(v)));
                }
            }
            b"max-stale" => {
                if !el.ok {
                    return;
                }
                let new = match &el.value {
                    None => None,
                    Some(v) => match parse_delta(v) {
                        Some(n) => Some(n),
                        None => return, // malformed limit: ignore (do not widen)
                    },
                };
                self.max_stale = Some(match (self.max_stale, new) {
                    (None, n) => n,
                    (Some(None), n) => n,
                    (Some(Some(a)), None) => Some(a),
                    (Some(Some(a)), Some(b)) => Some(a.min(b)),
                });
            }
            _ => {}
        }
    }
}

/// `max-age` / `s-maxage`: a valid value is recorded; a malformed one or a conflicting duplicate marks
/// the whole message invalid (stale).
///
/// Duplicates: RFC 9111 §4.2.1 says that when a directive has more than one value "either the first
/// occurrence should be used or the response should be considered stale". The public cache-tests suite
/// (`freshness-max-age-two-*`) only *checks* (does not grade) this case. We take the conservative
/// RFC option: conflicting values make the response stale (`invalid_max_age`). The field keeps the
/// smallest value, so a request-side caller (request `max-age`) gets the most restrictive reading.
/// Identical duplicates (`max-age=5, max-age=5`) are harmless and accepted.
fn apply_freshness(slot: &mut Option<u64>, invalid: &mut bool, el: &Element<'_>) {
    match el_delta(el) {
        Some(v) => match *slot {
            None => *slot = Some(v),
            Some(old) if old == v => {}
            Some(old) => {
                *slot = Some(old.min(v));
                *invalid = true;
            }
        },
        None => *invalid = true,
    }
}

fn min_opt(old: Option<u64>, v: u64) -> u64 {
    old.map_or(v, |o| o.min(v))
}

/// The delta-seconds value of a well-formed element with a value.
fn el_delta(el: &Element<'_>) -> Option<u64> {
    if !el.ok {
        return None;
    }
    parse_delta(el.value.as_deref()?)
}

/// `1*DIGIT`, saturating at 2^31.
pub(crate) fn parse_delta(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in v {
        n = (n * 10 + u64::from(d - b'0')).min(DELTA_SECONDS_MAX);
    }
    Some(n)
}

/// For `no-cache` / `private`: `Some(fields)` if the element is a well-formed qualified form with at
/// least one valid field name, `None` if it must be treated as the unqualified directive (no value,
/// empty list, or malformed — the broadest, most restrictive reading).
fn qualified_fields(el: &Element<'_>) -> Option<Vec<String>> {
    if !el.ok {
        return None;
    }
    let v = el.value.as_deref()?;
    let mut out = Vec::new();
    for part in v.split(|&b| b == b',') {
        let part = crate::http::headers::trim_ows(part);
        if part.is_empty() {
            continue;
        }
        if !part.iter().copied().all(is_tchar) {
            return None; // garbage in the list: fall back to the unqualified directive
        }
        // Every tchar is ASCII, so this is valid UTF-8.
        out.push(String::from_utf8_lossy(part).to_ascii_lowercase());
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

fn merge_fields(into: &mut Vec<String>, fields: Vec<String>) {
    for f in fields {
        if !into.contains(&f) {
            into.push(f);
        }
    }
}

/// One list element as found on the wire.
struct Element<'a> {
    /// The leading token, if the element starts with one.
    name: Option<&'a [u8]>,
    /// The argument (quoted-string already unescaped).
    value: Option<Vec<u8>>,
    /// The element matched `token [ "=" ( token / quoted-string ) ]` exactly.
    ok: bool,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// Skips to just past the next comma that is not inside a quoted-string (or to the end).
    fn skip_rest(&mut self) {
        let mut in_quote = false;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'\\' if in_quote => self.i += 1,
                b'"' => in_quote = !in_quote,
                b',' if !in_quote => return,
                _ => {}
            }
        }
    }

    fn token(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// A quoted-string starting at the opening quote; `None` if unterminated or holding a control
    /// character.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    out.push(e);
                }
                0x00..=0x08 | 0x0a..=0x1f | 0x7f => return None,
                _ => out.push(b),
            }
        }
    }

    /// The next non-empty element, or `None` at the end of the line.
    fn next_element(&mut self) -> Option<Element<'a>> {
        loop {
            self.skip_ows();
            match self.peek()? {
                b',' => self.i += 1,
                _ => break,
            }
        }
        let name = self.token();
        if name.is_empty() {
            self.skip_rest();
            return Some(Element {
                name: None,
                value: None,
                ok: false,
            });
        }
        let mut el = Element {
            name: Some(name),
            value: None,
            ok: true,
        };
        if self.peek() == Some(b'=') {
            self.i += 1;
            el.value = match self.peek() {
                Some(b'"') => self.quoted(),
                _ => {
                    let t = self.token();
                    (!t.is_empty()).then(|| t.to_vec())
                }
            };
            if el.value.is_none() {
                el.ok = false;
            }
        }
        // After the element only OWS then ',' or the end may follow.
        self.skip_ows();
        match self.peek() {
            None => {}
            Some(b',') => self.i += 1,
            Some(_) => {
                el.ok = false;
                self.skip_rest();
            }
        }
        Some(el)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(lines: &[&str]) -> CacheControl {
        let mut h = Headers::new();
        for l in lines {
            h.push("Cache-Control", l.to_string());
        }
        CacheControl::parse(&h)
    }

    #[test]
    fn empty_and_absent() {
        assert_eq!(cc(&[]), CacheControl::default());
        assert_eq!(cc(&[""]), CacheControl::default());
        assert_eq!(cc(&[" , ,, "]), CacheControl::default());
    }

    #[test]
    fn basic_response_directives_case_insensitive() {
        let c = cc(&["Max-Age=60, S-MAXAGE=120, PUBLIC, Must-Revalidate, proxy-revalidate"]);
        assert_eq!(c.max_age, Some(60));
        assert_eq!(c.s_maxage, Some(120));
        assert!(c.public && c.must_revalidate && c.proxy_revalidate);
        assert!(!c.invalid_max_age);
        let c = cc(&["No-StOrE", "no-transform, immutable, must-understand"]);
        assert!(c.no_store && c.no_transform && c.immutable && c.must_understand);
        let c = cc(&["stale-while-revalidate=30, stale-if-error=600"]);
        assert_eq!(c.stale_while_revalidate, Some(30));
        assert_eq!(c.stale_if_error, Some(600));
    }

    #[test]
    fn request_directives() {
        let c = cc(&["max-stale, min-fresh=10, only-if-cached, max-age=0"]);
        assert_eq!(c.max_stale, Some(None));
        assert_eq!(c.min_fresh, Some(10));
        assert!(c.only_if_cached);
        assert_eq!(c.max_age, Some(0));
        assert_eq!(cc(&["max-stale=5"]).max_stale, Some(Some(5)));
        // The most restrictive limit wins.
        assert_eq!(cc(&["max-stale, max-stale=5"]).max_stale, Some(Some(5)));
        assert_eq!(cc(&["max-stale=9, max-stale=5"]).max_stale, Some(Some(5)));
        assert_eq!(cc(&["max-stale=abc"]).max_stale, None);
        assert_eq!(cc(&["min-fresh=5, min-fresh=9"]).min_fresh, Some(9));
    }

    #[test]
    fn quoted_delta_seconds_accepted() {
        let c = cc(&["max-age=\"3600\""]);
        assert_eq!(c.max_age, Some(3600));
        assert!(!c.invalid_max_age);
        assert_eq!(cc(&["s-maxage=\"7\""]).s_maxage, Some(7));
    }

    #[test]
    fn leading_zeros_and_saturation() {
        assert_eq!(cc(&["max-age=003600"]).max_age, Some(3600));
        assert_eq!(
            cc(&["max-age=99999999999999999999999999999"]).max_age,
            Some(DELTA_SECONDS_MAX)
        );
        assert_eq!(cc(&["max-age=2147483649"]).max_age, Some(DELTA_SECONDS_MAX));
        assert_eq!(cc(&["max-age=2147483647"]).max_age, Some(2147483647));
    }

    #[test]
    fn malformed_max_age_is_invalid() {
        for v in [
            "max-age=abc",
            "max-age=-1",
            "max-age= 5",
            "max-age =5",
            "max-age=",
            "max-age",
            "max-age=3600.0",
            "max-age=3600a",
            "max-age=a3600",
            "max-age='3600'",
            "max-age=\"\"",
            "max-age=\"5",
            "max-age=5 6",
            "s-maxage=x",
        ] {
            let c = cc(&[v]);
            assert!(c.invalid_max_age, "{v}");
            assert_eq!(c.max_age, None, "{v}");
            assert_eq!(c.s_maxage, None, "{v}");
        }
    }

    #[test]
    fn conflicting_duplicates_are_invalid_and_keep_smallest() {
        for lines in [
            &["max-age=1, max-age=3600"][..],
            &["max-age=3600, max-age=1"],
            &["max-age=3600", "max-age=1"],
            &["max-age=1", "max-age=3600"],
        ] {
            let c = cc(lines);
            assert!(c.invalid_max_age, "{lines:?}");
            assert_eq!(c.max_age, Some(1), "{lines:?}");
        }
        // A valid value plus a malformed one is also invalid.
        let c = cc(&["max-age=60, max-age=zz"]);
        assert!(c.invalid_max_age);
        assert_eq!(c.max_age, Some(60));
        // Identical duplicates are fine.
        let c = cc(&["max-age=5, max-age=\"5\""]);
        assert!(!c.invalid_max_age);
        assert_eq!(c.max_age, Some(5));
    }

    #[test]
    fn quoted_strings_do_not_split() {
        let c = cc(&["extension=\"max-age=3600\", max-age=1"]);
        assert_eq!(c.max_age, Some(1));
        assert!(!c.invalid_max_age);
        let c = cc(&["max-age=1, extension=\"max-age=3600, no-store\""]);
        assert_eq!(c.max_age, Some(1));
        assert!(!c.no_store);
        let c = cc(&["ext=\"a\\\"b, no-store\", public"]);
        assert!(!c.no_store);
        assert!(c.public);
    }

    #[test]
    fn qualified_no_cache_and_private() {
        let c = cc(&["no-cache=\"A, b\", max-age=60"]);
        assert!(!c.no_cache);
        assert_eq!(c.no_cache_fields, vec!["a", "b"]);
        assert_eq!(c.max_age, Some(60));
        let c = cc(&[
            "private=\"Set-Cookie\"",
            "private=x-foo, private=\"set-cookie,,\"",
        ]);
        assert!(!c.private);
        assert_eq!(c.private_fields, vec!["set-cookie", "x-foo"]);
        // Unqualified forms, and degenerate qualified forms read as unqualified.
        assert!(cc(&["no-cache"]).no_cache);
        assert!(cc(&["private"]).private);
        assert!(cc(&["no-cache=\"\""]).no_cache);
        assert!(cc(&["private=\"a b\""]).private);
        assert!(cc(&["no-cache=\"unterminated"]).no_cache);
        assert!(cc(&["no-cache =\"a\""]).no_cache);
    }

    #[test]
    fn restrictive_directives_survive_malformation_permissive_do_not() {
        let c =
            cc(&["no-store junk, must-revalidate=1, public=1, immutable x, must-understand=\"\""]);
        assert!(c.no_store && c.must_revalidate);
        assert!(!c.public && !c.immutable && !c.must_understand);
    }

    #[test]
    fn unknown_and_garbage_ignored() {
        let c = cc(&["foo, bar=baz, =x, \"q\", ;;, max-age=10, @"]);
        assert_eq!(c.max_age, Some(10));
        assert!(!c.invalid_max_age);
        let c = cc(&["\u{e9}t\u{e9}, public"]);
        assert!(c.public);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"max-ge=s\"\\, \t0123456789noprivatcheu\x00\x7f\xff";
        for _ in 0..5000 {
            let mut v = Vec::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let mut h = Headers::new();
            h.push("cache-control", v);
            let _ = CacheControl::parse(&h);
        }
    }
}
