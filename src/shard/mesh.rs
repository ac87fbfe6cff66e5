//! Messages between shards. A shard reaches state it does not own (another shard's keys) only by
//! sending one of these to the owner's inbox; the owner answers on the channel in the message.
//! Invariant: messages carry only `Send` data (keys, `Bytes`, `Arc`s of immutable objects, channels).

use crate::cache::key::CacheKey;
use crate::cache::owner::Lookup;
use crate::http::headers::Headers;
use bytes::Bytes;

/// What an owner needs to run a fill for another shard's viewer.
pub struct FillRequest {
    /// The complete request head to send to the origin.
    pub head: Bytes,
    /// The viewer's request fields (for Vary and RFC 9111 storability).
    pub headers: Headers,
}

pub enum MeshMsg {
    /// Look a key up on its owner; start a fill with `fill` on a miss. The reply carries the key's
    /// generation as of the lookup (for a near copy of a hit).
    Lookup {
        key: CacheKey,
        fill: FillRequest,
        refresh: bool,
        reply: flume::Sender<(Lookup, u64)>,
    },
    /// Forget the stored response for `key`; `done` is answered once it is forgotten, so that the
    /// sender can hold its own response until then.
    Invalidate {
        key: CacheKey,
        done: flume::Sender<()>,
    },
    /// Stop accepting and drain.
    Shutdown,
}
