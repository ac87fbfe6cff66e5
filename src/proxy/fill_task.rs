//! A fill, run on the key's owner shard: one origin request whose response is fanned out to every
//! follower as it arrives and, when complete and storable, kept in the owner's RAM tier.
//!
//! Invariants: the object is stored only after the origin's framing was satisfied (a truncated body is
//! never stored, and its followers get `Abort`); the fill goes on when followers leave, as long as it is
//! being stored; an uncacheable answer releases every follower but the first to fetch on its own, and
//! marks the key uncacheable for a while so later requests are not serialised behind fills.

use crate::cache::cache_control::CacheControl;
use crate::cache::fill::{Fill, FillEvent, FillHead};
use crate::cache::key::CacheKey;
use crate::cache::object::{Freshness, ResponseMeta, StoredObject, VarySpec};
use crate::cache::policy;
use crate::http::headers::Headers;
use crate::http::hop::strip_hop_by_hop;
use crate::http::response::ResponseHead;
use crate::origin::OriginResponse;
use crate::shard::mesh::FillRequest;
use crate::shard::Shard;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

/// The forwarded head and what the cache will do with the response.
struct Prepared {
    meta: Arc<ResponseMeta>,
    /// The head as stored, when it must differ from the forwarded one (fields the origin named in
    /// qualified `private` / `no-cache` are not stored).
    stored_meta: Option<Arc<ResponseMeta>>,
    decision: Result<Freshness, &'static str>,
    corrected_initial_age: std::time::Duration,
}

/// Runs the fill of `key` to its end.
pub async fn run(shard: Rc<Shard>, key: CacheKey, req: FillRequest, fill: Rc<RefCell<Fill>>) {
    shard.active_fills.set(shard.active_fills.get() + 1);
    let _running = RunningFill(shard.clone());
    let request_time = SystemTime::now();
    let resp = match shard.origin.send(&req.head, false).await {
        Ok(r) => r,
        Err(e) => {
            fill.borrow_mut()
                .publish(FillEvent::Error(e.status(), e.detail()));
            shard.owner.borrow_mut().finish_fill(&key, &fill);
            return;
        }
    };
    let response_time = SystemTime::now();
    let OriginResponse { head, mut body } = resp;
    let declared = body.declared_length();
    let max_object = shard.cfg.cache.max_object_size.0;
    let mut p = prepare(&shard, &req.headers, head, request_time, response_time);
    if matches!(declared, Some(n) if n > max_object) {
        p.decision = Err("too-large");
    }
    let fill_head = Arc::new(FillHead {
        meta: p.meta.clone(),
        content_length: declared,
        store: p.decision.as_ref().map(|f| f.lifetime).map_err(|e| *e),
        age: p.corrected_initial_age,
    });
    let mut storing = p.decision.is_ok();
    if !storing {
        // Before the head goes out, so that only the first follower ever sees it.
        release(&shard, &key, &fill, true);
    }
    fill.borrow_mut().publish(FillEvent::Head(fill_head));
    let mut received: u64 = 0;
    loop {
        match body.next().await {
            Ok(Some(piece)) => {
                received += piece.len() as u64;
                if storing && received > max_object {
                    storing = false;
                    release(&shard, &key, &fill, false);
                }
                let mut f = fill.borrow_mut();
                f.publish(FillEvent::Data(piece));
                if !storing && f.is_empty() {
                    // Nobody listens and nothing is kept: stop reading (the connection is dropped).
                    return;
                }
            }
            Ok(None) => {
                if let (true, Ok(freshness)) = (storing, p.decision) {
                    let chunks = fill.borrow_mut().take_chunks();
                    let obj = StoredObject {
                        meta: p.stored_meta.take().unwrap_or_else(|| p.meta.clone()),
                        body: chunks,
                        body_len: received,
                        freshness,
                    };
                    shard.owner.borrow_mut().store(key.clone(), Arc::new(obj));
                }
                shard.owner.borrow_mut().finish_fill(&key, &fill);
                fill.borrow_mut().publish(FillEvent::End);
                return;
            }
            Err(_) => {
                shard.owner.borrow_mut().finish_fill(&key, &fill);
                fill.borrow_mut().publish(FillEvent::Abort);
                return;
            }
        }
    }
}

/// Counts a shard's running fills for as long as one lives.
struct RunningFill(Rc<Shard>);
impl Drop for RunningFill {
    fn drop(&mut self) {
        self.0.active_fills.set(self.0.active_fills.get() - 1);
    }
}

/// The response will not be stored: new requests for the key go to the origin uncollapsed for a
/// while; with `bypass`, followers other than the first are sent to the origin now.
fn release(shard: &Shard, key: &CacheKey, fill: &Rc<RefCell<Fill>>, bypass: bool) {
    {
        let mut f = fill.borrow_mut();
        if bypass {
            f.bypass_all_but_first();
        } else {
            f.stop_keeping();
        }
    }
    let mut owner = shard.owner.borrow_mut();
    owner.finish_fill(key, fill);
    owner.mark_uncacheable(key.clone(), shard.cfg.cache.uncacheable_ttl.get());
}

/// Cleans the origin's head for forwarding and decides whether (and how long) to store.
fn prepare(
    shard: &Shard,
    req_headers: &Headers,
    head: ResponseHead,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Prepared {
    let status = head.status;
    let mut headers = head.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove("content-length");
    let corrected_initial_age =
        policy::corrected_initial_age(&headers, request_time, response_time);
    headers.remove("age");
    if !headers.contains("date") {
        headers.push("Date", httpdate::fmt_http_date(response_time));
    }
    let vary = VarySpec::capture(&headers, req_headers);
    let cc = CacheControl::parse(&headers);
    let decision = decide(
        shard,
        req_headers,
        status,
        &headers,
        &cc,
        response_time,
        corrected_initial_age,
    )
    .and_then(|f| {
        if vary.is_some() {
            Ok(f)
        } else {
            Err("vary-star")
        }
    });
    let vary = vary.unwrap_or_default();
    let unstored = policy::fields_not_to_store(&headers, &cc);
    let stored_meta = if decision.is_ok() && unstored.iter().any(|f| headers.contains(f)) {
        let mut h = headers.clone();
        h.retain(|n, _| {
            !unstored
                .iter()
                .any(|u| n.eq_ignore_ascii_case(u.as_bytes()))
        });
        Some(Arc::new(ResponseMeta::new(
            status,
            &head.reason,
            h,
            vary.clone(),
        )))
    } else {
        None
    };
    let meta = Arc::new(ResponseMeta::new(status, &head.reason, headers, vary));
    Prepared {
        meta,
        stored_meta,
        decision,
        corrected_initial_age,
    }
}

fn decide(
    shard: &Shard,
    req_headers: &Headers,
    status: u16,
    headers: &Headers,
    cc: &CacheControl,
    response_time: SystemTime,
    corrected_initial_age: std::time::Duration,
) -> Result<Freshness, &'static str> {
    if policy::request_forbids_store(req_headers) {
        return Err("request-no-store");
    }
    policy::storable(b"GET", req_headers, status, headers).map_err(|n| n.as_str())?;
    if headers.contains("set-cookie") {
        return Err("set-cookie");
    }
    if cc.no_cache {
        // Stored responses that need revalidation on every use are useless until revalidation exists.
        return Err("no-cache");
    }
    let (lifetime, _heuristic) =
        policy::freshness_lifetime(status, headers, response_time, &shard.policy);
    if lifetime <= corrected_initial_age {
        return Err("stale-on-arrival");
    }
    Ok(Freshness {
        response_time,
        corrected_initial_age,
        lifetime,
        cc: cc.clone(),
    })
}
