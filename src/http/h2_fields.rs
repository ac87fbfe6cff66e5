//! Response fields as an HTTP/2 field map (`http::HeaderMap`), for the HTTP/2 hit path that sends a
//! stored object's HEADERS without writing and re-parsing an HTTP/1.1 head.
//!
//! Invariants: connection-specific fields never appear in a map built here (RFC 9113 §8.2.2); a
//! list that holds a field HTTP/2 cannot carry gives no map at all (the caller falls back to the
//! HTTP/1.1 bridge, which rejects it the same way), never a map with the field silently dropped.

use super::headers::Headers;
use super::write::FieldSink;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Fields that are meaningless or forbidden in HTTP/2 (RFC 9113 §8.2.2).
fn connection_specific(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

/// The map of `headers` without connection-specific fields; values share the list's buffers.
/// `None` when a name or value is not valid for HTTP/2.
pub fn from_headers(headers: &Headers) -> Option<HeaderMap> {
    let mut map = HeaderMap::with_capacity(headers.len() + 6);
    for (n, v) in headers.entries() {
        if connection_specific(n) {
            continue;
        }
        let name = HeaderName::from_bytes(n).ok()?;
        let value = HeaderValue::from_maybe_shared(v.clone()).ok()?;
        map.append(name, value);
    }
    Some(map)
}

/// The lowercase name of a per-response field Verge adds (no parsing for the usual ones).
fn name_of(name: &'static str) -> Option<HeaderName> {
    Some(match name {
        "Age" => http::header::AGE,
        "Content-Length" => http::header::CONTENT_LENGTH,
        "Via" => http::header::VIA,
        "Cache-Status" => HeaderName::from_static("cache-status"),
        "X-Cache" => HeaderName::from_static("x-cache"),
        _ => return HeaderName::from_bytes(name.as_bytes()).ok(),
    })
}

impl FieldSink for HeaderMap {
    /// Connection-specific fields (`Connection: close`) are left out: HTTP/2 ends streams, not
    /// connections, per response.
    fn field(&mut self, name: &'static str, value: &[u8]) {
        if connection_specific(name.as_bytes()) {
            return;
        }
        if let (Some(n), Ok(v)) = (name_of(name), HeaderValue::from_bytes(value)) {
            self.append(n, v);
        }
    }

    fn number_field(&mut self, name: &'static str, v: u64) {
        if let Some(n) = name_of(name) {
            self.append(n, HeaderValue::from(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn headers(fields: &[(&'static str, &'static str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in fields {
            h.push(
                Bytes::from_static(n.as_bytes()),
                Bytes::from_static(v.as_bytes()),
            );
        }
        h
    }

    #[test]
    fn keeps_order_and_repeats_and_drops_connection_fields() {
        let h = headers(&[
            ("Content-Type", "text/plain"),
            ("Set-Cookie", "a=1"),
            ("Connection", "close"),
            ("Set-Cookie", "b=2"),
            ("Transfer-Encoding", "chunked"),
        ]);
        let m = from_headers(&h).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m["content-type"], "text/plain");
        let cookies: Vec<_> = m.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert!(!m.contains_key("connection"));
        assert!(!m.contains_key("transfer-encoding"));
    }

    #[test]
    fn invalid_field_gives_no_map() {
        let h = headers(&[("Bad Name", "x")]);
        assert!(from_headers(&h).is_none());
    }

    #[test]
    fn sink_adds_fields_and_skips_connection() {
        let mut m = HeaderMap::new();
        m.number_field("Age", 12);
        m.field("Cache-Status", b"verge; hit");
        m.field("X-Verge-Shard", b"1");
        m.field("Connection", b"close");
        assert_eq!(m["age"], "12");
        assert_eq!(m["cache-status"], "verge; hit");
        assert_eq!(m["x-verge-shard"], "1");
        assert!(!m.contains_key("connection"));
    }
}
