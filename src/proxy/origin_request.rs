//! Building the request head Verge sends to the origin from a viewer's request.
//! Invariants: hop-by-hop fields never cross (RFC 9110 §7.6.1); `Via` and `X-Forwarded-For` are
//! appended; framing is Verge's own (the viewer's Content-Length / Transfer-Encoding are replaced);
//! a fill (a request made to fill the cache) is unconditional and asks for the whole object.

use crate::cache::surrogate::CAPABILITY;
use crate::http::headers::Headers;
use crate::http::hop::{strip_hop_by_hop, VIA};
use crate::http::request::RequestHead;
use crate::http::write::{field, number_field};
use bytes::Bytes;
use std::net::SocketAddr;

/// Fields removed from a fill so the origin sends the complete, current object.
const FILL_DROPS: &[&str] = &[
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
    "range",
];

/// How the request body is framed towards the origin.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BodyOut {
    None,
    Length(u64),
    Chunked,
}

/// The head for a cache fill: GET, unconditional.
pub fn fill_head(req: &RequestHead, host: &[u8], peer: Option<SocketAddr>) -> Bytes {
    build(req, b"GET", host, peer, BodyOut::None, FILL_DROPS)
}

/// The head for forwarding the request as it is (pass).
pub fn forward_head(
    req: &RequestHead,
    host: &[u8],
    peer: Option<SocketAddr>,
    body: BodyOut,
) -> Bytes {
    build(req, req.method.as_bytes(), host, peer, body, &[])
}

fn build(
    req: &RequestHead,
    method: &[u8],
    host: &[u8],
    peer: Option<SocketAddr>,
    body: BodyOut,
    drops: &[&str],
) -> Bytes {
    let mut h: Headers = req.headers.clone();
    strip_hop_by_hop(&mut h);
    for d in ["host", "content-length", "expect", "x-forwarded-for"]
        .iter()
        .chain(drops)
    {
        h.remove(d);
    }
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(&req.path);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    field(&mut out, "Host", host);
    h.write_to(&mut out);
    field(&mut out, "Via", VIA);
    field(&mut out, "Surrogate-Capability", CAPABILITY);
    let mut xff = Vec::new();
    for v in req.headers.get_all("x-forwarded-for") {
        xff.extend_from_slice(v);
        xff.extend_from_slice(b", ");
    }
    if let Some(p) = peer {
        xff.extend_from_slice(p.ip().to_string().as_bytes());
    }
    if !xff.is_empty() {
        field(
            &mut out,
            "X-Forwarded-For",
            xff.strip_suffix(b", ").unwrap_or(&xff),
        );
    }
    match body {
        BodyOut::None => {}
        BodyOut::Length(n) => number_field(&mut out, "Content-Length", n),
        BodyOut::Chunked => field(&mut out, "Transfer-Encoding", b"chunked"),
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}
