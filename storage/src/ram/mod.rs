//! The RAM tier: a byte-budgeted S3-FIFO cache (Yang et al., SOSP'23, "FIFO
//! queues are all you need for cache eviction"), weighted by bytes.
//!
//! Owns: the key index (`map`), the entries and their small/main FIFOs
//! (`slab`), the ghost FIFO of evicted-from-small key hashes (`ghost`), the
//! budget and the counters.
//!
//! Invariants (checked by `check_invariants` in tests):
//! - `map` and the slab hold the same keys; `map[k]` is the slot holding `k`;
//! - `used_bytes()` = sum over live entries of `charge + ENTRY_OVERHEAD`, and
//!   after every successful `insert` it is `<= budget_bytes()`;
//! - every entry's `freq` is in `0..=3`;
//! - the ghost holds at most as many records as there are live entries
//!   (counting, during an insert, the entry being inserted), so its memory is
//!   covered by the per-entry overhead.
//!
//! Policy, per the paper, with these choices:
//! - New keys enter the small queue S with freq 0, unless their hash is in the
//!   ghost G, in which case they enter the main queue M (and leave G).
//! - S's target share is 10% of the budget. Eviction takes from S while S
//!   holds at least its share (or M is empty), else from M.
//! - An S head with `freq >= 1` moves to M's tail with freq 0; otherwise it is
//!   dropped and its hash recorded in G. We promote on a single hit (the
//!   paper's prose; some reference variants require two) because S only sees
//!   10% of the bytes: a re-reference inside that short window already shows
//!   the object is not a one-hit wonder, and demanding two would send most
//!   reused CDN objects through the slower ghost detour.
//! - An M head with `freq > 0` is decremented and reinserted at M's tail;
//!   otherwise it is dropped.
//! - Replacing a live key drops the old value and re-enqueues the new one at
//!   the tail of the queue the old one was on, keeping its freq: the fresh
//!   body counts as a new write but keeps the popularity it earned.
//! - Room is made *before* the new entry is linked, so an insert never evicts
//!   the very object it is inserting.

mod ghost;
mod slab;
#[cfg(test)]
mod tests;

use std::fmt;
use std::hash::Hash;
use std::mem::size_of;

use ahash::AHashMap;

use ghost::{Ghost, GhostRecord};
use slab::{Entry, QueueId, Slab, Slot};

/// Maximum S3-FIFO frequency.
const MAX_FREQ: u8 = 3;
/// Fixed seeds so ghost hashes are deterministic across runs.
const GHOST_SEEDS: [u64; 4] = [
    0x5652_4745_5f52_414d, // "VRGE_RAM"
    0x9e37_79b9_7f4a_7c15,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
];

/// Counters, all monotonically increasing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RamStats {
    /// `get` calls that found the key.
    pub hits: u64,
    /// `get` calls that did not.
    pub misses: u64,
    /// Successful `insert`s, replacements included.
    pub inserts: u64,
    /// Entries dropped by the eviction policy (not promotions, not `remove`).
    pub evictions: u64,
    /// `insert`s refused as too large.
    pub rejections: u64,
    /// New keys found in the ghost queue and admitted straight to main.
    pub ghost_hits: u64,
}

/// Why an insert was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    /// `charge + ENTRY_OVERHEAD` exceeds `max_object_bytes()`.
    TooLarge,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::TooLarge => f.write_str("object is larger than the RAM tier admits"),
        }
    }
}

impl std::error::Error for Rejected {}

/// A byte-budgeted S3-FIFO cache. Single-threaded: one per shard, no locks.
pub struct RamTier<K, V> {
    map: AHashMap<K, usize>,
    slab: Slab<K, V>,
    ghost: Ghost,
    ghost_hasher: ahash::RandomState,
    budget: u64,
    max_object: u64,
    stats: RamStats,
}

impl<K: Hash + Eq + Clone, V> RamTier<K, V> {
    /// Bookkeeping bytes charged per entry on top of the caller's charge,
    /// computed from the sizes of the structures that hold an entry:
    /// - its slab slot (`Slot<K, V>`: key, value, cost, freq, queue links);
    /// - its index bucket (`(K, usize)` plus hashbrown's 1 control byte);
    /// - one ghost record's worth (`(u64, u64)` in the FIFO plus a `(u64, u64)`
    ///   index bucket and control byte), since the ghost never holds more
    ///   records than there are live entries.
    ///
    /// Allocator slack and hash-table/Vec growth headroom are not counted.
    pub const ENTRY_OVERHEAD: u64 = (size_of::<Slot<K, V>>()
        + size_of::<(K, usize)>()
        + 1
        + size_of::<GhostRecord>()
        + size_of::<(u64, u64)>()
        + 1) as u64;

    /// An empty tier that keeps `used_bytes() <= budget_bytes`. The largest
    /// admitted object defaults to `budget_bytes / 8`.
    pub fn new(budget_bytes: u64) -> Self {
        RamTier {
            map: AHashMap::new(),
            slab: Slab::new(),
            ghost: Ghost::new(),
            ghost_hasher: ahash::RandomState::with_seeds(
                GHOST_SEEDS[0],
                GHOST_SEEDS[1],
                GHOST_SEEDS[2],
                GHOST_SEEDS[3],
            ),
            budget: budget_bytes,
            max_object: budget_bytes / 8,
            stats: RamStats::default(),
        }
    }

    /// Largest `charge + ENTRY_OVERHEAD` that `insert` admits.
    pub fn max_object_bytes(&self) -> u64 {
        self.max_object
    }

    /// Whether `insert` would admit a value of `charge` bytes (else it answers
    /// `Rejected::TooLarge`).
    pub fn admits(&self, charge: u64) -> bool {
        charge.saturating_add(Self::ENTRY_OVERHEAD) <= self.max_object
    }

    /// Sets the largest admitted object size, clamped to the budget. Values
    /// near the budget let one insert flush most of the cache.
    pub fn set_max_object_bytes(&mut self, bytes: u64) {
        self.max_object = bytes.min(self.budget);
    }

    /// Looks up `key` and records an access (freq + 1, saturating at 3).
    pub fn get(&mut self, key: &K) -> Option<&V> {
        let entry = match self.map.get(key) {
            Some(&idx) => self.slab.get_mut(idx),
            None => None,
        };
        match entry {
            Some(e) => {
                self.stats.hits += 1;
                e.freq = (e.freq + 1).min(MAX_FREQ);
                Some(&e.value)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Looks up `key` without recording an access or touching the stats.
    pub fn peek(&self, key: &K) -> Option<&V> {
        let idx = *self.map.get(key)?;
        self.slab.get(idx).map(|e| &e.value)
    }

    /// Inserts or replaces `key`. `charge` is the bytes the value holds (body,
    /// headers, key heap bytes); the tier adds `ENTRY_OVERHEAD` and evicts
    /// until the whole fits. Returns how many entries were evicted, or
    /// `Rejected::TooLarge`, with the cache untouched, if the object exceeds
    /// `max_object_bytes()`.
    pub fn insert(&mut self, key: K, value: V, charge: u64) -> Result<usize, Rejected> {
        if !self.admits(charge) {
            self.stats.rejections += 1;
            return Err(Rejected::TooLarge);
        }
        let cost = charge + Self::ENTRY_OVERHEAD;
        let old = self.map.remove(&key).and_then(|idx| self.slab.remove(idx));
        let (queue, freq) = match old {
            Some(old) => (old.queue(), old.freq),
            None if self.ghost.take(self.ghost_hasher.hash_one(&key)) => {
                self.stats.ghost_hits += 1;
                (QueueId::Main, 0)
            }
            None => (QueueId::Small, 0),
        };
        let evicted = self.make_room(cost);
        let idx = self
            .slab
            .push_back(queue, Entry::new(key.clone(), value, cost, freq));
        self.map.insert(key, idx);
        // Evictions from M after the last ghost push may have shrunk the cap.
        self.ghost.trim(self.map.len());
        self.stats.inserts += 1;
        Ok(evicted)
    }

    /// Removes `key`, returning its value. O(1).
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let idx = self.map.remove(key)?;
        let entry = self.slab.remove(idx)?;
        self.ghost.trim(self.map.len());
        Some(entry.value)
    }

    /// Whether `key` is cached; records no access.
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no entries are live.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes charged by live entries, per-entry overhead included.
    pub fn used_bytes(&self) -> u64 {
        self.slab.queue(QueueId::Small).bytes + self.slab.queue(QueueId::Main).bytes
    }

    /// The byte budget given to [`RamTier::new`].
    pub fn budget_bytes(&self) -> u64 {
        self.budget
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> RamStats {
        self.stats
    }

    /// Evicts until `cost` more bytes fit in the budget; returns the number
    /// of entries dropped. Stops early only if both queues are empty.
    fn make_room(&mut self, cost: u64) -> usize {
        let small_target = self.budget / 10;
        let mut evicted = 0;
        while self.used_bytes().saturating_add(cost) > self.budget {
            let small = *self.slab.queue(QueueId::Small);
            let main = *self.slab.queue(QueueId::Main);
            let step = if small.len > 0 && (small.bytes >= small_target || main.len == 0) {
                self.evict_small(small.head)
            } else if main.len > 0 {
                self.evict_main(main.head)
            } else {
                None
            };
            match step {
                Some(dropped) => evicted += usize::from(dropped),
                None => break,
            }
        }
        evicted
    }

    /// Handles the head of S: promote to M if accessed, else drop into G.
    /// Returns whether an entry was dropped; `None` if `idx` is not live.
    fn evict_small(&mut self, idx: usize) -> Option<bool> {
        let entry = self.slab.get_mut(idx)?;
        if entry.freq >= 1 {
            entry.freq = 0;
            self.slab.move_to_back(idx, QueueId::Main);
            return Some(false);
        }
        let entry = self.drop_entry(idx)?;
        let hash = self.ghost_hasher.hash_one(&entry.key);
        // `+ 1` counts the entry whose insert triggered this eviction.
        self.ghost.push(hash, self.map.len() + 1);
        Some(true)
    }

    /// Handles the head of M: reinsert with freq - 1 if accessed, else drop.
    /// Returns whether an entry was dropped; `None` if `idx` is not live.
    fn evict_main(&mut self, idx: usize) -> Option<bool> {
        let entry = self.slab.get_mut(idx)?;
        if entry.freq > 0 {
            entry.freq -= 1;
            self.slab.move_to_back(idx, QueueId::Main);
            return Some(false);
        }
        self.drop_entry(idx).map(|_| true)
    }

    fn drop_entry(&mut self, idx: usize) -> Option<Entry<K, V>> {
        let entry = self.slab.remove(idx)?;
        self.map.remove(&entry.key);
        self.stats.evictions += 1;
        Some(entry)
    }
}

impl<K, V> fmt::Debug for RamTier<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (small, main) = (
            self.slab.queue(QueueId::Small),
            self.slab.queue(QueueId::Main),
        );
        f.debug_struct("RamTier")
            .field("budget", &self.budget)
            .field("max_object", &self.max_object)
            .field("small", &(small.len, small.bytes))
            .field("main", &(main.len, main.bytes))
            .field("stats", &self.stats)
            .finish()
    }
}
