//! Caching: keys and their owner shard, RFC 9111 policy, stored objects, in-flight fills, the
//! per-shard owned state and a shard's near copies of hot objects other shards own. Storage mechanics (RAM budget, eviction) live in the `verge-storage` crate.

pub mod admission;
pub mod cache_control;
pub mod fill;
pub mod key;
pub mod near;
pub mod object;
pub mod owner;
pub mod persist;
pub mod policy;
pub mod surrogate;
