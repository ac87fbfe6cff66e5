//! Writing responses to a viewer: stored objects (hits, 304s for the viewer's own conditionals), and
//! the live events of a fill, streamed as they arrive.
//!
//! Invariants: every response carries Cache-Status (RFC 9211), X-Cache and Via; a body's framing is
//! Verge's own (Content-Length when known, else chunked, else close-delimited for HTTP/1.0); a fill that
//! aborts leaves the viewer's response visibly incomplete: the connection closes before the declared
//! length or without the last chunk.

use super::After;
use crate::cache::fill::{FillEvent, FillHead};
use crate::cache::object::StoredObject;
use crate::cache::owner::HitKind;
use crate::http::chunked::LAST_CHUNK;
use crate::http::headers::{trim_ows, Headers};
use crate::http::hop::VIA;
use crate::http::range::{self, RangeDecision};
use crate::http::request::{RequestHead, Version};
use crate::http::write::{field, number_field, simple_response, status_line, FieldSink};
use crate::net::conn::ViewerConn;
use crate::net::h2_bridge::H2Stream;
use crate::shard::Shard;
use bytes::Bytes;
use std::sync::Arc;
use std::time::SystemTime;

/// Most ranges one request may ask for; more and the whole body is sent (range abuse defence).
const MAX_RANGES: usize = 64;

/// True when a response with this status carries no body (RFC 9110 §6.4.1).
pub fn body_allowed(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

/// Appends the per-response fields every answer carries, then `Connection: close` if asked.
pub fn cache_fields(
    out: &mut impl FieldSink,
    shard: &Shard,
    cache_status: &[u8],
    hit: bool,
    close: bool,
) {
    out.field("Cache-Status", cache_status);
    out.field(
        "X-Cache",
        if hit {
            b"Hit from verge"
        } else {
            b"Miss from verge"
        },
    );
    out.field("Via", VIA);
    if shard.cfg.server.shard_header {
        out.number_field("X-Verge-Shard", shard.id as u64);
    }
    if close {
        out.field("Connection", b"close");
    }
}

/// Answers from a stored object. `kind`: how the lookup found it (Cache-Status shows it). `now`: the
/// time the lookup judged the object usable at.
pub async fn hit(
    shard: &Shard,
    vc: &mut ViewerConn,
    req: &RequestHead,
    obj: &Arc<StoredObject>,
    kind: HitKind,
    now: SystemTime,
    close: bool,
) -> After {
    let age = obj.freshness.age(now);
    let ttl = obj.freshness.lifetime.saturating_sub(age).as_secs();
    let status = HitStatus::new(kind, ttl);
    let cs = status.as_bytes();
    let is_get = req.method == crate::http::request::Method::Get;
    let out = &mut vc.out;
    if not_modified(&req.headers, &obj.meta.headers) {
        not_modified_head(out, &obj.meta.headers);
        number_field(out, "Age", age.as_secs());
        cache_fields(out, shard, cs, true, close);
        out.extend_from_slice(b"\r\n");
        return After::KeepAlive;
    }
    if let (Some(p), Some(r)) = (obj.partial, obj.covered_range(&req.headers)) {
        // A stored 206 answering a range inside it (the owner checked the coverage).
        status_line(out, 206, b"Partial Content");
        let mut h = obj.meta.headers.clone();
        h.remove("content-range");
        h.write_to(out);
        let whole = range::ByteRange {
            start: r.start + p.start,
            end: r.end + p.start,
        };
        field(
            out,
            "Content-Range",
            range::content_range(whole, p.complete_len).as_bytes(),
        );
        number_field(out, "Content-Length", r.length());
        number_field(out, "Age", age.as_secs());
        cache_fields(out, shard, cs, true, close);
        out.extend_from_slice(b"\r\n");
        if is_get {
            for chunk in range::slice_chunks(&obj.body, r) {
                if vc.send(&chunk).await.is_err() {
                    return After::Close;
                }
            }
        }
        return After::KeepAlive;
    }
    let ranges = if obj.meta.status == 200 && req.headers.contains("range") {
        range::decide(
            &req.headers,
            is_get,
            &obj.meta.headers,
            obj.body_len,
            MAX_RANGES,
        )
    } else {
        RangeDecision::Full
    };
    if let (RangeDecision::Full, Some(h2), Some(fields)) =
        (&ranges, vc.stream.h2_mut(), obj.meta.h2_fields())
    {
        debug_assert!(vc.out.is_empty(), "nothing is written before a hit's head");
        return h2_full_hit(shard, h2, req, obj, fields, age.as_secs(), cs).await;
    }
    let out = &mut vc.out;
    // The head, and the pieces of body to send: the stored ones themselves for a whole body.
    let parts: Vec<Bytes>;
    let body: &[Bytes] = match ranges {
        RangeDecision::Full => {
            out.extend_from_slice(&obj.meta.head);
            if body_allowed(obj.meta.status) {
                number_field(out, "Content-Length", obj.body_len);
            }
            &obj.body
        }
        RangeDecision::Single(r) => {
            status_line(out, 206, b"Partial Content");
            obj.meta.headers.write_to(out);
            field(
                out,
                "Content-Range",
                range::content_range(r, obj.body_len).as_bytes(),
            );
            number_field(out, "Content-Length", r.length());
            parts = range::slice_chunks(&obj.body, r);
            &parts
        }
        RangeDecision::Multi(rs) => {
            let ct = obj.meta.headers.get("content-type");
            let seed = shard.next_boundary_seed();
            let m = range::multipart(&obj.body, &rs, obj.body_len, ct, seed);
            status_line(out, 206, b"Partial Content");
            let mut h = obj.meta.headers.clone();
            h.remove("content-type");
            h.write_to(out);
            field(out, "Content-Type", m.content_type.as_bytes());
            number_field(out, "Content-Length", m.length);
            parts = m.parts;
            &parts
        }
        RangeDecision::Unsatisfiable => {
            status_line(out, 416, b"Range Not Satisfiable");
            for name in ["date", "etag", "last-modified", "cache-control"] {
                for v in obj.meta.headers.get_all(name) {
                    field(out, name, v);
                }
            }
            field(
                out,
                "Content-Range",
                range::unsatisfied_range(obj.body_len).as_bytes(),
            );
            number_field(out, "Content-Length", 0);
            &[]
        }
    };
    number_field(out, "Age", age.as_secs());
    cache_fields(out, shard, cs, true, close);
    out.extend_from_slice(b"\r\n");
    if req.method != crate::http::request::Method::Head && body_allowed(obj.meta.status) {
        for chunk in body {
            if vc.send(chunk).await.is_err() {
                return After::Close;
            }
        }
    }
    After::KeepAlive
}

/// A hit's Cache-Status value, built on the stack: a hit allocates nothing for it.
struct HitStatus {
    buf: [u8; 64],
    len: usize,
}

impl HitStatus {
    /// `verge; hit; ttl=N` (with `; detail=near-copy` for a near copy), or the
    /// stale-while-revalidate form.
    fn new(kind: HitKind, ttl: u64) -> HitStatus {
        let mut s = HitStatus {
            buf: [0; 64],
            len: 0,
        };
        if kind == HitKind::StaleWhileRevalidate {
            s.push(b"verge; hit; fwd=stale; detail=stale-while-revalidate");
            return s;
        }
        s.push(b"verge; hit; ttl=");
        s.push(itoa::Buffer::new().format(ttl).as_bytes()); // at most 20 digits
        if kind == HitKind::NearCopy {
            s.push(b"; detail=near-copy");
        }
        s
    }

    fn push(&mut self, b: &[u8]) {
        let end = self.len + b.len();
        self.buf[self.len..end].copy_from_slice(b);
        self.len = end;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A whole stored object over HTTP/2: the HEADERS come from the object's cached field map and the
/// body pieces are handed to the stream without copies (no HTTP/1.1 head is written or parsed).
/// The fields are those the HTTP/1.1 path writes for the same hit.
async fn h2_full_hit(
    shard: &Shard,
    h2: &mut H2Stream,
    req: &RequestHead,
    obj: &StoredObject,
    stored: &http::HeaderMap,
    age_secs: u64,
    cache_status: &[u8],
) -> After {
    let mut fields = stored.clone();
    let with_body = body_allowed(obj.meta.status);
    if with_body {
        fields.number_field("Content-Length", obj.body_len);
    }
    fields.number_field("Age", age_secs);
    cache_fields(&mut fields, shard, cache_status, true, false);
    let send_len = if with_body && req.method != crate::http::request::Method::Head {
        obj.body_len
    } else {
        0
    };
    if h2.send_head(obj.meta.status, fields, send_len).is_err() {
        return After::Close;
    }
    let timeout = shard.cfg.http.write_timeout.get();
    for piece in obj.body.iter().filter(|p| send_len > 0 && !p.is_empty()) {
        if h2.send_body(piece.clone(), timeout).await.is_err() {
            return After::Close;
        }
    }
    After::KeepAlive
}

/// The head of a 304 built from a stored response's fields (RFC 9110 §15.4.5), without the final
/// per-response fields.
fn not_modified_head(out: &mut Vec<u8>, stored: &Headers) {
    status_line(out, 304, b"Not Modified");
    for name in [
        "cache-control",
        "content-location",
        "date",
        "etag",
        "expires",
        "last-modified",
        "vary",
    ] {
        for v in stored.get_all(name) {
            field(out, name, v);
        }
    }
}

/// RFC 9110 §13.1.2 / §13.1.3 evaluated against a stored response (weak comparison for If-None-Match).
fn not_modified(req: &Headers, stored: &Headers) -> bool {
    if req.contains("if-none-match") {
        let Some(etag) = stored.get("etag") else {
            return false;
        };
        let etag = strip_weak(trim_ows(etag));
        return req
            .list("if-none-match")
            .any(|t| t == b"*" || strip_weak(t) == etag);
    }
    if let Some(ims) = req.get("if-modified-since") {
        // Without Last-Modified, the stored Date stands in for it (RFC 9110 §13.1.3).
        let last_modified = stored.get("last-modified").or_else(|| stored.get("date"));
        let (Some(ims), Some(lm)) = (parse_date(ims), last_modified.and_then(parse_date)) else {
            return false;
        };
        return lm <= ims;
    }
    false
}

fn strip_weak(t: &[u8]) -> &[u8] {
    t.strip_prefix(b"W/").unwrap_or(t)
}

fn parse_date(v: &[u8]) -> Option<SystemTime> {
    httpdate::parse_http_date(std::str::from_utf8(v).ok()?).ok()
}

/// How following a fill ended.
pub enum Followed {
    Done(After),
    /// Not served: go to the origin on your own.
    Bypass,
}

/// Streams a fill's events to the viewer. `cs_fwd` is the Cache-Status `fwd=` reason.
pub async fn follow(
    shard: &Shard,
    vc: &mut ViewerConn,
    req: &RequestHead,
    events: flume::Receiver<FillEvent>,
    cs_fwd: &str,
    collapsed: bool,
    close: bool,
) -> Followed {
    // A collapsed waiter gives up after the collapse timeout and fetches on its own; the viewer that
    // started the fill waits for it (the fill itself ends with an error on the origin's timeouts).
    let wait = shard.cfg.cache.collapse_timeout.get();
    let first = futures_lite::future::or(async { events.recv_async().await.ok() }, async {
        if collapsed {
            glommio::timer::sleep(wait).await;
        } else {
            std::future::pending::<()>().await;
        }
        None
    })
    .await;
    let head = match first {
        None | Some(FillEvent::Bypass) => return Followed::Bypass,
        Some(FillEvent::Error(status, detail)) => {
            let cs = format!("verge; fwd={cs_fwd}; detail=origin-error");
            simple_response(
                &mut vc.out,
                status,
                detail,
                &cs,
                close,
                req.method == crate::http::request::Method::Head,
            );
            return Followed::Done(After::from_close(close));
        }
        Some(FillEvent::Head(h)) => h,
        Some(FillEvent::Data(_) | FillEvent::End | FillEvent::Abort) => {
            return Followed::Done(After::Close);
        }
    };
    if collapsed && !head.meta.vary.matches(&req.headers) {
        return Followed::Bypass;
    }
    Followed::Done(stream(shard, vc, req, &head, &events, cs_fwd, collapsed, close).await)
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    shard: &Shard,
    vc: &mut ViewerConn,
    req: &RequestHead,
    head: &FillHead,
    events: &flume::Receiver<FillEvent>,
    cs_fwd: &str,
    collapsed: bool,
    close: bool,
) -> After {
    let is_head = req.method == crate::http::request::Method::Head;
    let has_body = body_allowed(head.meta.status);
    let mut cs = if head.hit {
        // A disk-only object streamed from disk: `store` holds its remaining freshness.
        let ttl = head.store.map(|t| t.as_secs()).unwrap_or(0);
        format!("verge; hit; ttl={ttl}; detail=disk")
    } else {
        format!("verge; fwd={}", head.fwd.unwrap_or(cs_fwd))
    };
    if !head.hit {
        match head.store {
            Ok(ttl) => cs.push_str(&format!("; stored; ttl={}", ttl.as_secs())),
            Err(why) => cs.push_str(&format!("; detail={why}")),
        }
        if collapsed {
            cs.push_str("; collapsed");
        }
    }
    let out = &mut vc.out;
    if head.meta.status == 200 && not_modified(&req.headers, &head.meta.headers) {
        // The viewer's own validators match the fresh response: 304, and leave the fill to others.
        not_modified_head(out, &head.meta.headers);
        number_field(out, "Age", head.age.as_secs());
        cache_fields(out, shard, cs.as_bytes(), head.hit, close);
        out.extend_from_slice(b"\r\n");
        return After::from_close(close);
    }
    // A single range of a response of known length is answered 206 from the fill's bytes as they
    // arrive (the fill itself fetches the whole object, so the cache is filled).
    let mut window: Option<range::ByteRange> = None;
    if let (200, Some(len), true) = (
        head.meta.status,
        head.content_length,
        req.headers.contains("range"),
    ) {
        let is_get = req.method == crate::http::request::Method::Get;
        match range::decide(&req.headers, is_get, &head.meta.headers, len, MAX_RANGES) {
            RangeDecision::Single(r) => window = Some(r),
            RangeDecision::Unsatisfiable => {
                status_line(out, 416, b"Range Not Satisfiable");
                field(
                    out,
                    "Content-Range",
                    range::unsatisfied_range(len).as_bytes(),
                );
                number_field(out, "Content-Length", 0);
                cache_fields(out, shard, cs.as_bytes(), head.hit, close);
                out.extend_from_slice(b"\r\n");
                return After::from_close(close);
            }
            // Several ranges on a miss: the whole body (a 200 is always a valid answer).
            RangeDecision::Full | RangeDecision::Multi(_) => {}
        }
    }
    match window {
        Some(r) => {
            status_line(out, 206, b"Partial Content");
            head.meta.headers.write_to(out);
            field(
                out,
                "Content-Range",
                range::content_range(r, head.content_length.unwrap_or(0)).as_bytes(),
            );
        }
        None => out.extend_from_slice(&head.meta.head),
    }
    let (chunked, until_close) = match (has_body, head.content_length) {
        (false, _) => (false, false),
        (true, Some(n)) => {
            number_field(out, "Content-Length", window.map_or(n, |r| r.length()));
            (false, false)
        }
        (true, None) if req.version == Version::Http11 => {
            if !is_head {
                field(out, "Transfer-Encoding", b"chunked");
            }
            (true, false)
        }
        (true, None) => (false, true),
    };
    number_field(out, "Age", head.age.as_secs());
    cache_fields(out, shard, cs.as_bytes(), head.hit, close || until_close);
    out.extend_from_slice(b"\r\n");
    if vc.flush().await.is_err() {
        return After::Close;
    }
    if is_head || !has_body {
        return After::from_close(close);
    }
    // Offset of the next fill byte, for range windows (a disk stream may start past 0, at the
    // piece holding the range's first byte; a viewer without a window then needs it from 0).
    let mut offset: u64 = head.start;
    if offset > window.map_or(0, |w| w.start) {
        let _ = vc.flush().await;
        return After::Close;
    }
    loop {
        let ev = match events.recv_async().await {
            Ok(ev) => ev,
            Err(_) => return After::Close,
        };
        match ev {
            FillEvent::Data(mut b) => {
                if let Some(w) = window {
                    let start = offset;
                    offset += b.len() as u64;
                    if offset <= w.start {
                        continue;
                    }
                    let from = w.start.saturating_sub(start) as usize;
                    let to = ((w.end + 1).min(offset) - start) as usize;
                    b = b.slice(from..to);
                    if vc.send(&b).await.is_err() {
                        return After::Close;
                    }
                    if offset > w.end {
                        // The window is complete; the fill goes on without this viewer.
                        return After::from_close(close);
                    }
                    if events.is_empty() && vc.flush().await.is_err() {
                        return After::Close;
                    }
                    continue;
                }
                if vc.send_piece(&b, chunked).await.is_err() {
                    return After::Close;
                }
                if events.is_empty() && vc.flush().await.is_err() {
                    return After::Close;
                }
            }
            FillEvent::End => {
                if chunked && vc.send(LAST_CHUNK).await.is_err() {
                    return After::Close;
                }
                return After::from_close(close || until_close);
            }
            // Incomplete: close without the final chunk / before the declared length.
            _ => {
                let _ = vc.flush().await;
                return After::Close;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{HitKind, HitStatus};

    #[test]
    fn hit_status_forms_fit_the_stack_buffer() {
        assert_eq!(
            HitStatus::new(HitKind::Fresh, 0).as_bytes(),
            b"verge; hit; ttl=0"
        );
        assert_eq!(
            HitStatus::new(HitKind::Fresh, u64::MAX).as_bytes(),
            b"verge; hit; ttl=18446744073709551615"
        );
        assert_eq!(
            HitStatus::new(HitKind::NearCopy, u64::MAX).as_bytes(),
            b"verge; hit; ttl=18446744073709551615; detail=near-copy"
        );
        assert_eq!(
            HitStatus::new(HitKind::StaleWhileRevalidate, 5).as_bytes(),
            b"verge; hit; fwd=stale; detail=stale-while-revalidate"
        );
    }
}
