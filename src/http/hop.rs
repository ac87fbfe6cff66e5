//! Hop-by-hop header handling (RFC 9110 §7.6.1) and the proxy's own additions (Via, X-Forwarded-For).
//! Invariant: after `strip_hop_by_hop`, no field that only concerns one connection remains, including
//! every field that the message's own `Connection` header named.

use super::headers::Headers;

/// Fields that never cross a proxy.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "trailer",
];

/// The value Verge appends to `Via`.
pub const VIA: &[u8] = b"1.1 verge";

/// Removes the hop-by-hop fields and those named in `Connection`.
pub fn strip_hop_by_hop(h: &mut Headers) {
    let named: Vec<Vec<u8>> = h
        .list("connection")
        .map(|t| t.to_ascii_lowercase())
        .collect();
    h.retain(|name, _| {
        !HOP_BY_HOP
            .iter()
            .any(|x| name.eq_ignore_ascii_case(x.as_bytes()))
            && !named.iter().any(|n| name.eq_ignore_ascii_case(n))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_listed_and_named() {
        let mut h = Headers::new();
        h.push("Connection", "close, X-Secret");
        h.push("X-Secret", "1");
        h.push("Keep-Alive", "timeout=5");
        h.push("TE", "trailers");
        h.push("Cache-Control", "max-age=5");
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains("cache-control"));
    }
}
