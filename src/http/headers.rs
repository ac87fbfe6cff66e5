//! An ordered, owned list of HTTP header fields.
//!
//! Names and values are `Bytes`, usually zero-copy slices of the head that was received, so building a
//! `Headers` from a parsed message allocates only the list itself. Lookup is ASCII case-insensitive on
//! the name. Invariant: every name is a valid RFC 9110 token and no value holds CR, LF or NUL; the parsers
//! that build a `Headers` from the wire enforce this, and `push` is only called with such values.

use bytes::Bytes;

/// Header fields in the order they were received or added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(Bytes, Bytes)>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
        }
    }

    /// Appends a field (does not replace an existing one with the same name).
    pub fn push(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Replaces every field called `name` with one field holding `value`.
    pub fn set(&mut self, name: &'static str, value: impl Into<Bytes>) {
        self.remove(name);
        self.push(Bytes::from_static(name.as_bytes()), value);
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_ref())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_ref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Number of fields called `name`.
    pub fn count(&self, name: &str) -> usize {
        self.entries
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .count()
    }

    /// Removes every field called `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
        before - self.entries.len()
    }

    /// Keeps only the fields for which `keep(name, value)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &[u8]) -> bool) {
        self.entries.retain(|(n, v)| keep(n, v));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// The fields as (name, value) pairs, sharing the buffers they were parsed from.
    pub fn entries(&self) -> &[(Bytes, Bytes)] {
        &self.entries
    }

    /// The fields as received, names and values sharing the head's buffer.
    pub fn into_entries(self) -> Vec<(Bytes, Bytes)> {
        self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every comma-separated element of every `name` field, trimmed of optional whitespace,
    /// empty elements skipped (RFC 9110 §5.6.1).
    pub fn list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(trim_ows)
            .filter(|e| !e.is_empty())
    }

    /// True if the list field `name` has an element equal to `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.list(name)
            .any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Serialises every field as `Name: value\r\n`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for (n, v) in &self.entries {
            out.extend_from_slice(n);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Bytes this list holds (names, values and per-field overhead), for cache accounting.
    pub fn heap_bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2 * std::mem::size_of::<Bytes>())
            .sum()
    }
}

/// Trims optional whitespace (SP / HTAB) from both ends.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_ordered() {
        let mut h = Headers::new();
        h.push("Cache-Control", "max-age=1");
        h.push("cache-control", "public");
        assert_eq!(h.get("CACHE-CONTROL"), Some(&b"max-age=1"[..]));
        assert_eq!(h.count("cache-control"), 2);
        assert!(h.has_token("Cache-Control", "PUBLIC"));
        assert_eq!(h.remove("Cache-control"), 2);
        assert!(h.is_empty());
    }

    #[test]
    fn list_splits_and_trims() {
        let mut h = Headers::new();
        h.push("Connection", " keep-alive ,, X-Foo\t");
        let v: Vec<&[u8]> = h.list("connection").collect();
        assert_eq!(v, vec![&b"keep-alive"[..], &b"X-Foo"[..]]);
    }
}
