//! Streaming an object kept only on disk (larger than the RAM tier takes) to one viewer, on the
//! key's owner shard: the same events as a fill (`Head`, `Data`*, `End` | `Abort`), so the viewer's
//! shard serves it with `respond::follow` wherever it is.
//!
//! Invariants: the body is read one piece (at most `PIECE` bytes) at a time, each verified by the
//! disk tier before it leaves, through a bounded channel, so a slow viewer holds at most a few pieces
//! in memory however large the object; a single range starts at the piece holding its first byte
//! (the head says where), so a range read touches only the chunks it needs; a piece that cannot be
//! read (evicted mid-stream, damaged) ends the stream with `Abort`, and the viewer's response is cut,
//! never completed with wrong bytes; a cold piece is first warmed through io_uring so the owner core
//! never waits on the device inside a read.

use crate::cache::fill::{FillEvent, FillHead};
use crate::cache::key::CacheKey;
use crate::cache::object::StoredObject;
use crate::http::headers::Headers;
use crate::http::range::{self, RangeDecision};
use crate::shard::Shard;
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

/// Body bytes read per step.
const PIECE: u64 = 1 << 20;
/// Pieces queued ahead of the viewer.
const AHEAD: usize = 4;

/// Starts streaming `obj` (disk-only) for a request with `req` headers; the receiver is followed
/// like a fill.
pub fn start(
    shard: &Rc<Shard>,
    key: CacheKey,
    obj: Arc<StoredObject>,
    req: Headers,
) -> flume::Receiver<FillEvent> {
    let (tx, rx) = flume::bounded(AHEAD);
    glommio::spawn_local(run(shard.clone(), key, obj, req, tx)).detach();
    rx
}

async fn run(
    shard: Rc<Shard>,
    key: CacheKey,
    obj: Arc<StoredObject>,
    req: Headers,
    tx: flume::Sender<FillEvent>,
) {
    let len = obj.body_len;
    let (mut pos, end) = match range::decide(&req, true, &obj.meta.headers, len, 64) {
        RangeDecision::Single(r) => (r.start - r.start % PIECE, r.end + 1),
        _ => (0, len),
    };
    let now = SystemTime::now();
    let age = obj.freshness.age(now);
    let head = Arc::new(FillHead {
        meta: obj.meta.clone(),
        content_length: Some(len),
        store: Ok(obj.freshness.lifetime.saturating_sub(age)),
        age,
        fwd: None,
        start: pos,
        hit: true,
    });
    if tx.send_async(FillEvent::Head(head)).await.is_err() {
        return;
    }
    while pos < end {
        let stop = end.min(pos + PIECE);
        shard.warm_disk_at(&key, pos).await;
        let piece = shard.owner.borrow_mut().disk_read_range(&key, pos, stop);
        match piece {
            Some(b) if b.len() as u64 == stop - pos => {
                pos = stop;
                if tx.send_async(FillEvent::Data(b)).await.is_err() {
                    return; // the viewer left
                }
            }
            _ => {
                let _ = tx.send_async(FillEvent::Abort).await;
                return;
            }
        }
    }
    let _ = tx.send_async(FillEvent::End).await;
}
