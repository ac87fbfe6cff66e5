//! The request path: what Verge does with one parsed viewer request. Classify it, look its key up on
//! the owner shard, and answer from a stored object, from a fill (collapsed or new), or by passing the
//! request to the origin.
//!
//! Life of a GET: `handle` -> `Shard::lookup` (local or over the mesh) -> `Hit` (respond::hit) |
//! `Follow` (respond::follow; the owner runs fill_task::run) | `Pass` (pass::run).

pub mod disk_stream;
pub mod fill_task;
pub mod origin_request;
pub mod pass;
pub mod respond;

use crate::cache::key::CacheKey;
use crate::cache::owner::{Lookup, PassReason};
use crate::cache::policy;
use crate::http::framing::BodyFraming;
use crate::http::request::{Method, RequestHead};
use crate::http::write::{redirect_response, simple_response};
use crate::net::conn::ViewerConn;
use crate::net::policy::Policy;
use crate::shard::mesh::FillRequest;
use crate::shard::Shard;
use respond::Followed;
use std::rc::Rc;

/// What the connection does after a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    KeepAlive,
    Close,
}

impl After {
    /// `Close` when the response said `Connection: close`, else `KeepAlive`.
    pub fn from_close(close: bool) -> After {
        if close {
            After::Close
        } else {
            After::KeepAlive
        }
    }
}

/// Handles one request; its response is written (or queued) on `vc`. `close`: the connection ends
/// after this response (the response says so).
pub async fn handle(
    shard: &Rc<Shard>,
    vc: &mut ViewerConn,
    req: RequestHead,
    close: bool,
) -> After {
    let is_head = req.method == Method::Head;
    if req.method == Method::Connect {
        simple_response(
            &mut vc.out,
            405,
            "CONNECT is not supported",
            "verge; fwd=method",
            true,
            false,
        );
        return After::Close;
    }
    if let BodyFraming::Length(n) = req.framing {
        if n > shard.cfg.http.max_request_body.0 {
            simple_response(
                &mut vc.out,
                413,
                "request body larger than the limit",
                "verge; fwd=request",
                true,
                is_head,
            );
            return After::Close;
        }
    }
    let host: &[u8] = match &req.host {
        Some(h) => h,
        None => shard.origin.settings.authority.as_bytes(),
    };
    if !vc.is_secure() {
        let has_body = !matches!(req.framing, BodyFraming::None | BodyFraming::Length(0));
        // An unread request body would be taken for the next request: close after answering.
        let close = close || has_body;
        match shard.policies.for_host(host) {
            Policy::AllowAll => {}
            Policy::HttpsOnly => {
                simple_response(
                    &mut vc.out,
                    403,
                    "this site is served over HTTPS only",
                    "verge; fwd=request; detail=https-only",
                    close,
                    is_head,
                );
                return After::from_close(close);
            }
            Policy::RedirectToHttps => {
                let location = shard.policies.redirect_location(host, &req.path);
                redirect_response(&mut vc.out, &location, close, is_head);
                return After::from_close(close);
            }
        }
    }
    let key = CacheKey::new("http", host, &req.path);
    let has_body = !matches!(req.framing, BodyFraming::None | BodyFraming::Length(0));
    let cs_pass = if !matches!(req.method, Method::Get | Method::Head) {
        Some("verge; fwd=method")
    } else if has_body || policy::request_forbids_store(&req.headers) {
        Some("verge; fwd=request")
    } else {
        None
    };
    if let Some(cs) = cs_pass {
        return pass::run(shard, vc, &req, &key, host, cs, close).await;
    }
    let refresh = policy::request_requires_validation(&req.headers);
    let peer = vc.peer;
    let make_fill = || FillRequest {
        head: origin_request::fill_head(&req, host, peer),
        headers: req.headers.clone(),
    };
    let found = shard.lookup(&key, &req.headers, make_fill, refresh).await;
    let cs_fwd = if refresh { "request" } else { "miss" };
    match found {
        Some(Lookup::Hit { obj, kind, at }) => {
            respond::hit(shard, vc, &req, &obj, kind, at, close).await
        }
        Some(Lookup::Follow { events, started }) => {
            match respond::follow(shard, vc, &req, events, cs_fwd, !started, close).await {
                Followed::Done(after) => after,
                Followed::Bypass => {
                    pass::run(
                        shard,
                        vc,
                        &req,
                        &key,
                        host,
                        "verge; fwd=uri-miss; detail=uncacheable",
                        close,
                    )
                    .await
                }
            }
        }
        // Turned into a `Follow` of a disk stream by the owner; never reaches a viewer.
        Some(Lookup::Disk(_)) => {
            simple_response(
                &mut vc.out,
                500,
                "unexpected disk lookup",
                "verge; fwd=miss",
                close,
                is_head,
            );
            After::from_close(close)
        }
        Some(Lookup::Pass(reason)) => {
            let cs = match reason {
                PassReason::Uncacheable => "verge; fwd=uri-miss; detail=uncacheable",
                PassReason::WaitingListFull => "verge; fwd=miss; detail=waiting-list-full",
            };
            pass::run(shard, vc, &req, &key, host, cs, close).await
        }
        None => {
            simple_response(
                &mut vc.out,
                503,
                "owner shard unavailable",
                "verge; fwd=miss",
                close,
                is_head,
            );
            After::from_close(close)
        }
    }
}
