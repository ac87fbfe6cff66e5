//! A fill, run on the key's owner shard: one origin request whose response is fanned out to every
//! follower as it arrives and, when complete and storable, kept in the owner's RAM tier. When a stored
//! response is being revalidated, the request is conditional: a 304 refreshes the stored headers and
//! freshness (RFC 9111 §4.3.4) and the stored body is served; an origin failure may serve the stale
//! copy within its stale-if-error allowance (RFC 5861).
//!
//! Invariants: the object is stored only after the origin's framing was satisfied (a truncated body is
//! never stored, and its followers get `Abort`); the fill goes on when followers leave, as long as it is
//! being stored; an uncacheable answer releases every follower but the first to fetch on its own, and
//! marks the key uncacheable for a while so later requests are not serialised behind fills; a stale copy
//! is never served when its response forbids it (must-revalidate, proxy-revalidate, s-maxage, no-cache).

use crate::cache::cache_control::CacheControl;
use crate::cache::fill::{Fill, FillEvent, FillHead};
use crate::cache::key::CacheKey;
use crate::cache::object::{Freshness, PartialSpan, ResponseMeta, StoredObject, VarySpec};
use crate::cache::owner::NewFill;
use crate::cache::policy;
use crate::cache::surrogate::SurrogateControl;
use crate::http::headers::Headers;
use crate::http::hop::strip_hop_by_hop;
use crate::http::response::ResponseHead;
use crate::origin::OriginResponse;
use crate::shard::mesh::FillRequest;
use crate::shard::Shard;
use bytes::Bytes;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use verge_storage::disk::ChunkedInsert;

/// Fields a 304 must not change in the stored response (RFC 9111 §3.2 and the framing of the stored
/// body): the body's own length, coding, digest and range, its validator, and Age (computed here).
const NOT_UPDATED_BY_304: &[&str] = &[
    "content-length",
    "content-encoding",
    "content-md5",
    "content-range",
    "etag",
    "age",
];

/// The forwarded head and what the cache will do with the response.
struct Prepared {
    meta: Arc<ResponseMeta>,
    /// The head as stored, when it must differ from the forwarded one (fields the origin named in
    /// qualified `private` / `no-cache` are not stored).
    stored_meta: Option<Arc<ResponseMeta>>,
    decision: Result<Freshness, &'static str>,
    corrected_initial_age: Duration,
    /// For a 206: where its bytes sit in the complete representation.
    partial: Option<PartialSpan>,
}

/// Counts a shard's running fills for as long as one lives.
struct RunningFill(Rc<Shard>);
impl Drop for RunningFill {
    fn drop(&mut self) {
        self.0.active_fills.set(self.0.active_fills.get() - 1);
    }
}

/// Runs the fill of `key` to its end.
pub async fn run(shard: Rc<Shard>, key: CacheKey, req: FillRequest, nf: NewFill) {
    shard.active_fills.set(shard.active_fills.get() + 1);
    let _running = RunningFill(shard.clone());
    let NewFill { fill, stale } = nf;
    let head = match &stale {
        Some(obj) => conditional_head(&req.head, obj),
        None => req.head.clone(),
    };
    let request_time = SystemTime::now();
    let resp = match shard.origin.send(&head, false).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(obj) = stale_if_error(&shard, stale.as_ref(), &req.headers) {
                serve_stored(&shard, &key, &fill, obj, Err("stale-if-error"));
                return;
            }
            fill.borrow_mut()
                .publish(FillEvent::Error(e.status(), e.detail()));
            shard.owner.borrow_mut().finish_fill(&key, &fill);
            return;
        }
    };
    let response_time = SystemTime::now();
    if let Some(obj) = &stale {
        if resp.head.status == 304 && obj.has_validators() {
            refresh_from_304(
                &shard,
                &key,
                &fill,
                obj,
                &req.headers,
                resp.head,
                request_time,
                response_time,
            );
            return;
        }
        if resp.head.status >= 500 {
            if let Some(obj) = stale_if_error(&shard, Some(obj), &req.headers) {
                serve_stored(&shard, &key, &fill, obj, Err("stale-if-error"));
                return;
            }
        }
    }
    stream_and_store(
        &shard,
        key,
        &req.headers,
        fill,
        resp,
        request_time,
        response_time,
    )
    .await;
}

/// Streams a full origin response to the followers and stores it when allowed and complete.
async fn stream_and_store(
    shard: &Rc<Shard>,
    key: CacheKey,
    req_headers: &Headers,
    fill: Rc<RefCell<Fill>>,
    resp: OriginResponse,
    request_time: SystemTime,
    response_time: SystemTime,
) {
    let OriginResponse { head, mut body } = resp;
    let declared = body.declared_length();
    let max_object = shard.cfg.cache.max_object_size.0;
    let mut p = prepare(
        shard,
        req_headers,
        head,
        declared,
        request_time,
        response_time,
    );
    let persistable = p.partial.is_none() && p.meta.vary.is_empty();
    let mut large: Option<ChunkedInsert> = None;
    if let (Some(n), Ok(freshness)) = (declared, p.decision.as_ref()) {
        if n > max_object {
            // Too large for RAM: stored on disk only, as a chunk chain written as it arrives.
            let mut owner = shard.owner.borrow_mut();
            if persistable && owner.wants_disk_only(Some(n)) {
                large = owner.begin_disk_only(&key, &disk_only_head(&p, freshness));
            }
            if large.is_none() {
                p.decision = Err("too-large");
            }
        }
    }
    let fill_head = Arc::new(FillHead {
        meta: p.meta.clone(),
        content_length: declared,
        store: p.decision.as_ref().map(|f| f.lifetime).map_err(|e| *e),
        age: p.corrected_initial_age,
        fwd: None,
        start: 0,
        hit: false,
    });
    let mut storing = p.decision.is_ok();
    // A request with credentials says nothing about what other viewers would get: its uncacheable
    // answer neither marks the URL nor evicts what is stored.
    let mark = !req_headers.contains("authorization");
    if !storing {
        // Before the head goes out, so that only the first follower ever sees it.
        release(shard, &key, &fill, true, mark);
    }
    if large.is_some() {
        // Nothing is kept in RAM: late viewers cannot be replayed the start, they fetch alone.
        fill.borrow_mut().stop_keeping();
    }
    fill.borrow_mut().publish(FillEvent::Head(fill_head));
    let mut received: u64 = 0;
    loop {
        match body.next().await {
            Ok(Some(piece)) => {
                received += piece.len() as u64;
                if storing && large.is_none() && received > max_object {
                    // An unannounced length just outgrew RAM: move to disk with what came so far.
                    large = switch_to_disk(shard, &key, &fill, &p, persistable);
                    if large.is_none() {
                        storing = false;
                        release(shard, &key, &fill, false, mark);
                    }
                }
                if let Some(ins) = large.as_mut() {
                    let ok = shard.owner.borrow_mut().append_disk_only(ins, &piece);
                    if !ok {
                        if let Some(ins) = large.take() {
                            shard.owner.borrow_mut().abort_disk_only(ins);
                        }
                        storing = false;
                    }
                }
                let mut f = fill.borrow_mut();
                f.publish(FillEvent::Data(piece));
                if !storing && f.is_empty() {
                    // Nobody listens and nothing is kept: stop reading (the connection is dropped).
                    return;
                }
            }
            Ok(None) => {
                if let Some(ins) = large.take() {
                    shard.owner.borrow_mut().finish_disk_only(&key, ins);
                } else if let (true, Ok(freshness)) = (storing, p.decision) {
                    // One contiguous buffer: a hit is then written with one send instead of one
                    // per origin read (S3, 1 MiB hits, measured in the commit).
                    let chunks = coalesce(fill.borrow_mut().take_chunks(), received);
                    let obj = StoredObject {
                        meta: p.stored_meta.take().unwrap_or_else(|| p.meta.clone()),
                        body: chunks,
                        body_len: received,
                        freshness,
                        partial: p.partial,
                        on_disk: Default::default(),
                        disk_only: false,
                    };
                    shard.owner.borrow_mut().store(key.clone(), Arc::new(obj));
                }
                shard.owner.borrow_mut().finish_fill(&key, &fill);
                fill.borrow_mut().publish(FillEvent::End);
                return;
            }
            Err(_) => {
                if let Some(ins) = large.take() {
                    shard.owner.borrow_mut().abort_disk_only(ins);
                }
                shard.owner.borrow_mut().finish_fill(&key, &fill);
                fill.borrow_mut().publish(FillEvent::Abort);
                return;
            }
        }
    }
}

/// The pieces of a body as one buffer (a single piece is kept as it is).
fn coalesce(chunks: Vec<Bytes>, len: u64) -> Vec<Bytes> {
    if chunks.len() <= 1 {
        return chunks;
    }
    let mut all = Vec::with_capacity(len as usize);
    for c in &chunks {
        all.extend_from_slice(c);
    }
    vec![Bytes::from(all)]
}

/// The head (meta and freshness, no body) written with a disk-only object.
fn disk_only_head(p: &Prepared, freshness: &Freshness) -> StoredObject {
    StoredObject {
        meta: p.stored_meta.clone().unwrap_or_else(|| p.meta.clone()),
        body: Vec::new(),
        body_len: 0,
        freshness: freshness.clone(),
        partial: None,
        on_disk: Default::default(),
        disk_only: true,
    }
}

/// Moves a fill whose body outgrew RAM to a disk-only insert, writing the pieces received so far;
/// `None` when it cannot go to disk (no disk tier, Vary, partial, budget, write error).
fn switch_to_disk(
    shard: &Rc<Shard>,
    key: &CacheKey,
    fill: &Rc<RefCell<Fill>>,
    p: &Prepared,
    persistable: bool,
) -> Option<ChunkedInsert> {
    let freshness = p.decision.as_ref().ok()?;
    let mut owner = shard.owner.borrow_mut();
    if !persistable || !owner.wants_disk_only(None) {
        return None;
    }
    let mut ins = owner.begin_disk_only(key, &disk_only_head(p, freshness))?;
    let mut f = fill.borrow_mut();
    for c in f.take_chunks() {
        if !owner.append_disk_only(&mut ins, &c) {
            owner.abort_disk_only(ins);
            return None;
        }
    }
    f.stop_keeping();
    Some(ins)
}

/// The fill's request head with the stored response's validators added (RFC 9111 §4.3.1).
fn conditional_head(head: &Bytes, obj: &StoredObject) -> Bytes {
    let mut out = Vec::with_capacity(head.len() + 128);
    out.extend_from_slice(&head[..head.len() - 2]);
    if let Some(etag) = obj.meta.headers.get("etag") {
        crate::http::write::field(&mut out, "If-None-Match", etag);
    }
    if let Some(lm) = obj.meta.headers.get("last-modified") {
        crate::http::write::field(&mut out, "If-Modified-Since", lm);
    }
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// The stored copy, if the origin's failure may be answered with it: stale serving not forbidden, and
/// its staleness within the larger of the response's and the request's `stale-if-error` and the
/// configured grace.
fn stale_if_error(
    shard: &Shard,
    stale: Option<&Arc<StoredObject>>,
    req: &Headers,
) -> Option<Arc<StoredObject>> {
    let obj = stale?;
    if obj.stale_forbidden() {
        return None;
    }
    let req_sie = if req.contains("cache-control") {
        CacheControl::parse(req).stale_if_error
    } else {
        None
    };
    let allowed = [obj.freshness.cc.stale_if_error, req_sie]
        .into_iter()
        .flatten()
        .map(Duration::from_secs)
        .chain(std::iter::once(shard.cfg.cache.stale_if_error.get()))
        .max()
        .unwrap_or(Duration::ZERO);
    (obj.staleness(SystemTime::now()) <= allowed && !allowed.is_zero()).then(|| obj.clone())
}

/// Answers every follower with a stored object (refreshed, or stale under stale-if-error).
fn serve_stored(
    shard: &Shard,
    key: &CacheKey,
    fill: &Rc<RefCell<Fill>>,
    obj: Arc<StoredObject>,
    store: Result<Duration, &'static str>,
) {
    shard.owner.borrow_mut().finish_fill(key, fill);
    let head = Arc::new(FillHead {
        meta: obj.meta.clone(),
        content_length: Some(obj.body_len),
        store,
        age: obj.freshness.age(SystemTime::now()),
        fwd: Some("stale"),
        start: 0,
        hit: false,
    });
    let mut f = fill.borrow_mut();
    f.publish(FillEvent::Head(head));
    for chunk in &obj.body {
        f.publish(FillEvent::Data(chunk.clone()));
    }
    f.publish(FillEvent::End);
}

/// A 304 for a revalidation: merge its fields into the stored response, recompute freshness, store
/// the refreshed object (when still storable) and serve it.
#[allow(clippy::too_many_arguments)]
fn refresh_from_304(
    shard: &Shard,
    key: &CacheKey,
    fill: &Rc<RefCell<Fill>>,
    stale: &Arc<StoredObject>,
    req_headers: &Headers,
    head: ResponseHead,
    request_time: SystemTime,
    response_time: SystemTime,
) {
    let mut update = head.headers;
    strip_hop_by_hop(&mut update);
    let corrected_initial_age = policy::corrected_initial_age(&update, request_time, response_time);
    let mut merged = stale.meta.headers.clone();
    let replaced: Vec<Vec<u8>> = update
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| {
            !NOT_UPDATED_BY_304
                .iter()
                .any(|x| x.as_bytes() == n.as_slice())
        })
        .collect();
    merged.retain(|n, _| !replaced.iter().any(|r| n.eq_ignore_ascii_case(r)));
    for (n, v) in update.iter() {
        if replaced.iter().any(|r| n.eq_ignore_ascii_case(r)) {
            merged.push(Bytes::copy_from_slice(n), Bytes::copy_from_slice(v));
        }
    }
    let sc = SurrogateControl::parse(&merged);
    if sc.targeted {
        merged.remove("surrogate-control");
    }
    let status = stale.meta.status;
    let cc = CacheControl::parse(&merged);
    let decision = decide(
        shard,
        req_headers,
        status,
        &merged,
        &cc,
        &sc,
        response_time,
        corrected_initial_age,
    );
    let meta = Arc::new(ResponseMeta::new(
        status,
        &stale.meta.reason,
        merged,
        stale.meta.vary.clone(),
    ));
    let freshness = decision.clone().unwrap_or(Freshness {
        response_time,
        corrected_initial_age,
        lifetime: Duration::ZERO,
        cc,
    });
    let obj = Arc::new(StoredObject {
        meta,
        body: stale.body.clone(),
        body_len: stale.body_len,
        freshness,
        partial: stale.partial,
        on_disk: Default::default(),
        disk_only: false,
    });
    match &decision {
        Ok(_) => {
            shard.owner.borrow_mut().store(key.clone(), obj.clone());
        }
        Err(_) => shard.owner.borrow_mut().invalidate(key),
    }
    serve_stored(shard, key, fill, obj, decision.map(|f| f.lifetime));
}

/// The response will not be stored: new requests for the key go to the origin uncollapsed for a
/// while; with `bypass`, followers other than the first are sent to the origin now.
fn release(shard: &Shard, key: &CacheKey, fill: &Rc<RefCell<Fill>>, bypass: bool, mark: bool) {
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
    if mark {
        owner.mark_uncacheable(key.clone(), shard.cfg.cache.uncacheable_ttl.get());
    }
}

/// Cleans the origin's head for forwarding and decides whether (and how long) to store.
fn prepare(
    shard: &Shard,
    req_headers: &Headers,
    head: ResponseHead,
    declared: Option<u64>,
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
    let sc = SurrogateControl::parse(&headers);
    if sc.targeted {
        headers.remove("surrogate-control");
    }
    let vary = VarySpec::capture(&headers, req_headers);
    let cc = CacheControl::parse(&headers);
    // A 206 with one known span is stored as a partial object (RFC 9111 §3.3), judged like a 200.
    let partial = match (status, declared, headers.get("content-range")) {
        (206, Some(n), Some(cr)) => PartialSpan::from_content_range(cr, n),
        _ => None,
    };
    let decision = decide(
        shard,
        req_headers,
        if partial.is_some() { 200 } else { status },
        &headers,
        &cc,
        &sc,
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
        partial,
    }
}

/// RFC 9111 §3 storability and §4.2.1 freshness, with Surrogate-Control taking precedence. A response
/// that is stale on arrival (or must always be revalidated) is stored only if it has a validator.
#[allow(clippy::too_many_arguments)]
fn decide(
    shard: &Shard,
    req_headers: &Headers,
    status: u16,
    headers: &Headers,
    cc: &CacheControl,
    sc: &SurrogateControl,
    response_time: SystemTime,
    corrected_initial_age: Duration,
) -> Result<Freshness, &'static str> {
    if policy::request_forbids_store(req_headers) {
        return Err("request-no-store");
    }
    if sc.no_store {
        return Err("surrogate-no-store");
    }
    let (lifetime, reuse_cc) = match sc.max_age {
        Some(max_age) if !req_headers.contains("authorization") => {
            if !(200..600).contains(&status) || status == 206 || status == 304 {
                return Err("status");
            }
            (Duration::from_secs(max_age), CacheControl::default())
        }
        _ => {
            policy::storable(b"GET", req_headers, status, headers).map_err(|n| n.as_str())?;
            let (lifetime, _) =
                policy::freshness_lifetime(status, headers, response_time, &shard.policy);
            (lifetime, cc.clone())
        }
    };
    let validators = headers.contains("etag") || headers.contains("last-modified");
    if !validators && (reuse_cc.no_cache || lifetime <= corrected_initial_age) {
        return Err(if reuse_cc.no_cache {
            "no-cache"
        } else {
            "stale-on-arrival"
        });
    }
    Ok(Freshness {
        response_time,
        corrected_initial_age,
        lifetime,
        cc: reuse_cc,
    })
}
