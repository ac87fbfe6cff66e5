//! Forwarding a request to the origin as it is, without the cache ("pass"): unsafe methods with their
//! streamed bodies, requests with credentials, and URLs known to be uncacheable.
//!
//! Invariants: a request body is streamed piece by piece, never held whole, and never re-sent; a
//! successful unsafe method invalidates the stored response for its URL (RFC 9111 §4.4); the response
//! is streamed to the viewer as it arrives, and an origin body cut short leaves the viewer's response
//! visibly incomplete.

use super::origin_request::{forward_head, BodyOut};
use super::respond::{body_allowed, cache_fields};
use super::After;
use crate::cache::key::CacheKey;
use crate::http::chunked::{write_chunk_header, CHUNK_TRAILER, LAST_CHUNK};
use crate::http::framing::BodyFraming;
use crate::http::hop::strip_hop_by_hop;
use crate::http::request::{Method, RequestHead, Version};
use crate::http::write::{field, number_field, simple_response, status_line};
use crate::net::body::{BodyError, RequestBody};
use crate::net::conn::ViewerConn;
use crate::origin::{OriginError, OriginResponse};
use crate::shard::Shard;
use std::rc::Rc;

/// Forwards `req` and streams the answer. `cs` is the Cache-Status value to send.
pub async fn run(
    shard: &Rc<Shard>,
    vc: &mut ViewerConn,
    req: &RequestHead,
    key: &CacheKey,
    host: &[u8],
    cs: &str,
    close: bool,
) -> After {
    let is_head = req.method == Method::Head;
    let body_out = match req.framing {
        BodyFraming::Length(0) | BodyFraming::None | BodyFraming::UntilClose => BodyOut::None,
        BodyFraming::Length(n) => BodyOut::Length(n),
        BodyFraming::Chunked => BodyOut::Chunked,
    };
    let head = forward_head(req, host, vc.peer, body_out);
    let sent = if body_out == BodyOut::None {
        shard
            .origin
            .send(&head, is_head)
            .await
            .map_err(Failure::Origin)
    } else {
        send_with_body(shard, vc, req, &head, body_out).await
    };
    let resp = match sent {
        Ok(r) => r,
        Err(Failure::Origin(e)) => {
            let detail = format!("{cs}; detail=origin-error");
            let close = close || body_out != BodyOut::None;
            simple_response(&mut vc.out, e.status(), e.detail(), &detail, close, is_head);
            return After::from_close(close);
        }
        Err(Failure::Viewer(BodyError::TooLarge)) => {
            simple_response(
                &mut vc.out,
                413,
                "request body larger than the limit",
                cs,
                true,
                is_head,
            );
            return After::Close;
        }
        Err(Failure::Viewer(BodyError::Malformed)) => {
            simple_response(
                &mut vc.out,
                400,
                "malformed chunked request body",
                cs,
                true,
                is_head,
            );
            return After::Close;
        }
        Err(Failure::Viewer(BodyError::Timeout)) => {
            simple_response(
                &mut vc.out,
                408,
                "request body not received in time",
                cs,
                true,
                is_head,
            );
            return After::Close;
        }
        Err(Failure::Viewer(BodyError::Closed)) => return After::Close,
    };
    if !req.method.is_safe() && resp.head.status < 400 {
        invalidate_after_unsafe(shard, key, host, &resp.head.headers).await;
    }
    forward_response(shard, vc, req, resp, cs, close).await
}

/// RFC 9111 §4.4: a successful unsafe request invalidates its target URI and the URIs in the
/// response's Location and Content-Location, when those are on the same host. Returns once every
/// owner has dropped them, before the response goes to the viewer.
async fn invalidate_after_unsafe(
    shard: &Shard,
    key: &CacheKey,
    host: &[u8],
    resp: &crate::http::headers::Headers,
) {
    shard.invalidate(key).await;
    for name in ["location", "content-location"] {
        let Some(v) = resp.get(name) else { continue };
        let v = crate::http::headers::trim_ows(v);
        let target = if v.starts_with(b"/") && !v.starts_with(b"//") {
            Some(CacheKey::new("http", host, v))
        } else if let Some(rest) = v.strip_prefix(b"http://") {
            let split = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
            let (h, path) = rest.split_at(split);
            let path: &[u8] = if path.is_empty() { b"/" } else { path };
            let same_host = CacheKey::new("http", h, b"/") == CacheKey::new("http", host, b"/");
            same_host.then(|| CacheKey::new("http", h, path))
        } else {
            None
        };
        if let Some(t) = target {
            shard.invalidate(&t).await;
        }
    }
}

enum Failure {
    Origin(OriginError),
    Viewer(BodyError),
}

/// Sends head and streamed body on a fresh connection (a body is never re-sent, so no pooled
/// connection that might turn out closed is risked), then reads the response head.
async fn send_with_body(
    shard: &Rc<Shard>,
    vc: &mut ViewerConn,
    req: &RequestHead,
    head: &[u8],
    body_out: BodyOut,
) -> Result<OriginResponse, Failure> {
    // An oversized Content-Length was already refused (413) in `proxy::handle`.
    let http = &shard.cfg.http;
    let mut conn = shard.origin.connect().await.map_err(Failure::Origin)?;
    if req.expect_continue {
        vc.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        vc.flush()
            .await
            .map_err(|_| Failure::Viewer(BodyError::Closed))?;
    }
    conn.write_all(head).await.map_err(Failure::Origin)?;
    let mut body = RequestBody::new(
        req.framing,
        http.max_request_body.0,
        http.body_read_timeout.get(),
    );
    let mut hdr = Vec::with_capacity(20);
    while let Some(piece) = body.next(vc).await.map_err(Failure::Viewer)? {
        if body_out == BodyOut::Chunked {
            hdr.clear();
            write_chunk_header(piece.len(), &mut hdr);
            conn.write_all(&hdr).await.map_err(Failure::Origin)?;
            conn.write_all(&piece).await.map_err(Failure::Origin)?;
            conn.write_all(CHUNK_TRAILER)
                .await
                .map_err(Failure::Origin)?;
        } else {
            conn.write_all(&piece).await.map_err(Failure::Origin)?;
        }
    }
    if body_out == BodyOut::Chunked {
        conn.write_all(LAST_CHUNK).await.map_err(Failure::Origin)?;
    }
    conn.read_response(&shard.origin, req.method == Method::Head)
        .await
        .map_err(|(e, _)| Failure::Origin(e))
}

/// Streams an origin response to the viewer with Verge's own framing.
async fn forward_response(
    shard: &Shard,
    vc: &mut ViewerConn,
    req: &RequestHead,
    resp: OriginResponse,
    cs: &str,
    close: bool,
) -> After {
    let OriginResponse { head, mut body } = resp;
    let is_head = req.method == Method::Head;
    let origin_length = head.headers.get("content-length").map(|v| v.to_vec());
    let mut headers = head.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove("content-length");
    if !headers.contains("date") {
        headers.push(
            "Date",
            httpdate::fmt_http_date(std::time::SystemTime::now()),
        );
    }
    let out = &mut vc.out;
    status_line(out, head.status, &head.reason);
    headers.write_to(out);
    let has_body = body_allowed(head.status) && !is_head;
    let (chunked, until_close) = match head.framing {
        _ if !has_body => {
            if let (true, Some(len)) = (is_head, origin_length) {
                field(out, "Content-Length", &len);
            }
            (false, false)
        }
        BodyFraming::Length(n) => {
            number_field(out, "Content-Length", n);
            (false, false)
        }
        BodyFraming::None => {
            number_field(out, "Content-Length", 0);
            (false, false)
        }
        _ if req.version == Version::Http11 => {
            field(out, "Transfer-Encoding", b"chunked");
            (true, false)
        }
        _ => (false, true),
    };
    cache_fields(out, shard, cs.as_bytes(), false, close || until_close);
    out.extend_from_slice(b"\r\n");
    if vc.flush().await.is_err() {
        return After::Close;
    }
    loop {
        match body.next().await {
            Ok(Some(piece)) => {
                if !has_body {
                    continue;
                }
                if vc.send_piece(&piece, chunked).await.is_err() || vc.flush().await.is_err() {
                    return After::Close;
                }
            }
            Ok(None) => {
                if chunked && vc.send(LAST_CHUNK).await.is_err() {
                    return After::Close;
                }
                return After::from_close(close || until_close);
            }
            Err(_) => {
                let _ = vc.flush().await;
                return After::Close;
            }
        }
    }
}
