//! The in-RAM disk index: a flat Robin Hood open-addressing table of 16-byte
//! slots, keyed by the 64-bit [`super::digest::KeyDigest::index_key`].
//!
//! Owns: the map from index key to the newest record's place on disk, and
//! the side table of chains (one small entry per chunked object).
//!
//! Slot layout (two `u64`): `key` (0 = empty), and `val` packing
//! `seg u32 | offset in ALIGN units u24 | size class u5 | role u2 | hit u1`.
//! The role says what the record is: a plain object, the head of a chunked
//! object, or one chunk (indexed under its own derived key, see
//! [`super::digest::KeyDigest::of_chunk`]).
//! The full key is not kept: two keys with the same 64-bit index key share
//! one slot (the newer wins), and the reader compares the full key stored in
//! the record, so a collision reads as a miss, never as the wrong object.
//!
//! Invariants:
//! - Robin Hood order: along a probe run, no slot is further from its home
//!   than the slot before it plus one; lookups stop at the first slot closer
//!   to home than the probe distance, and removal shifts the run back, so
//!   there are no tombstones;
//! - `len <= capacity * 7/8`; growth is by 5/4 (homes by multiply-shift,
//!   `(key * capacity) >> 64`, so any capacity works), which keeps the load
//!   between 0.7 and 0.875 once grown: 16 B / load = 18.3–22.9 B per object;
//! - an entry has role `ChunkedHead` exactly when `chains` holds its key;
//! - removing or replacing a head (for any reason: remove, replace, reclaim,
//!   a failed check) also removes the entries of its chunks, so replaced
//!   chains leave no slots behind; `chunk_len` counts `Chunk` entries.
//!
//! A chunked object costs one slot per chunk plus one for the head, and one
//! `chains` entry (key, digest, nonce, count: 40 B plus the hash table's
//! control byte and slack). Measured (`bytes_per_chunked_object_at_1m`):
//! 186 B per 16 MiB object in 4 MiB chunks, 11.6 B per MiB of body.

use std::collections::HashMap;

use super::digest::KeyDigest;
use super::format::ALIGN;

const MAX_LOAD_NUM: usize = 7;
const MAX_LOAD_DEN: usize = 8;
const MIN_CAPACITY: usize = 64;

/// What an index entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryRole {
    /// A single-record object.
    Object = 0,
    /// The head of a chunked object; its chain is in the side table.
    ChunkedHead = 1,
    /// One chunk of a chunked object.
    Chunk = 2,
}

impl EntryRole {
    fn from_bits(v: u64) -> Self {
        match v & 3 {
            1 => EntryRole::ChunkedHead,
            2 => EntryRole::Chunk,
            _ => EntryRole::Object,
        }
    }
}

/// What the index keeps about a chunked object besides its head's entry:
/// enough to derive its chunks' index keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The object's key digest.
    pub digest: KeyDigest,
    pub nonce: u64,
    pub chunks: u32,
}

impl Chain {
    /// Index key of chunk `i`.
    pub fn chunk_key(&self, i: u32) -> u64 {
        KeyDigest::of_chunk(&self.digest, self.nonce, i).index_key()
    }
}

/// Where the newest record of a key lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Global segment number.
    pub seg: u32,
    /// Record offset inside the segment, a multiple of `ALIGN`.
    pub offset: u64,
    /// The record's aligned length is at most `ALIGN << size_class`.
    pub size_class: u8,
    /// Read since it was written (or last reinserted).
    pub hit: bool,
    /// What the record is.
    pub role: EntryRole,
}

impl IndexEntry {
    /// Largest segment-relative offset an entry can hold.
    pub const MAX_OFFSET: u64 = ((1 << 24) - 1) * ALIGN;

    /// The size class covering a record of `aligned_len` bytes.
    pub fn size_class_for(aligned_len: u64) -> u8 {
        let units = aligned_len.div_ceil(ALIGN).max(1);
        (64 - (units - 1).leading_zeros()) as u8
    }

    /// Upper bound on the record's aligned length.
    pub fn len_hint(&self) -> u64 {
        ALIGN << self.size_class
    }

    /// Largest size class (5 bits: records up to 1 TiB, beyond any segment).
    pub const MAX_SIZE_CLASS: u8 = 31;

    fn pack(&self) -> u64 {
        debug_assert!(self.size_class <= Self::MAX_SIZE_CLASS);
        u64::from(self.seg)
            | ((self.offset / ALIGN) & 0xff_ffff) << 32
            | u64::from(self.size_class & 0x1f) << 56
            | (self.role as u64) << 61
            | u64::from(self.hit) << 63
    }

    fn unpack(v: u64) -> Self {
        IndexEntry {
            seg: v as u32,
            offset: ((v >> 32) & 0xff_ffff) * ALIGN,
            size_class: ((v >> 56) & 0x1f) as u8,
            role: EntryRole::from_bits(v >> 61),
            hit: (v >> 63) & 1 == 1,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Slot {
    key: u64,
    val: u64,
}

/// A Robin Hood hash table from index key to [`IndexEntry`].
pub struct DiskIndex {
    slots: Vec<Slot>,
    len: usize,
    /// Entries with role `Chunk`.
    chunk_len: usize,
    /// The chain of every `ChunkedHead` entry, by index key.
    chains: HashMap<u64, Chain, ahash::RandomState>,
}

impl Default for DiskIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl DiskIndex {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A table that holds `n` entries without growing.
    pub fn with_capacity(n: usize) -> Self {
        let cap = (n * MAX_LOAD_DEN / MAX_LOAD_NUM + 1).max(MIN_CAPACITY);
        DiskIndex {
            slots: vec![Slot::default(); cap],
            len: 0,
            chunk_len: 0,
            // Fixed seeds: in-memory only, so stability does not matter,
            // but runs replay identically.
            chains: HashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4)),
        }
    }

    /// Entries of every role.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries with role `Chunk`.
    pub fn chunk_len(&self) -> usize {
        self.chunk_len
    }

    /// Entries that are objects (plain or chunked heads), not chunks.
    pub fn object_len(&self) -> usize {
        self.len - self.chunk_len
    }

    /// Bytes held by the slots and the chain table (estimated from its
    /// capacity: one control byte per bucket; the struct itself is not
    /// counted).
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
            + self.chains.capacity() * (std::mem::size_of::<(u64, Chain)>() + 1)
    }

    fn home(&self, key: u64) -> usize {
        ((u128::from(key) * self.slots.len() as u128) >> 64) as usize
    }

    fn dist(&self, pos: usize, key: u64) -> usize {
        let home = self.home(key);
        if pos >= home {
            pos - home
        } else {
            pos + self.slots.len() - home
        }
    }

    fn next(&self, pos: usize) -> usize {
        if pos + 1 == self.slots.len() {
            0
        } else {
            pos + 1
        }
    }

    fn find(&self, key: u64) -> Option<usize> {
        let mut pos = self.home(key);
        let mut d = 0;
        loop {
            let s = self.slots[pos];
            if s.key == key {
                return Some(pos);
            }
            if s.key == 0 || self.dist(pos, s.key) < d {
                return None;
            }
            pos = self.next(pos);
            d += 1;
        }
    }

    pub fn get(&self, key: u64) -> Option<IndexEntry> {
        self.find(key)
            .map(|p| IndexEntry::unpack(self.slots[p].val))
    }

    /// Sets the hit bit; returns whether the key was present.
    pub fn mark_hit(&mut self, key: u64) -> bool {
        match self.find(key) {
            Some(p) => {
                self.slots[p].val |= 1 << 63;
                true
            }
            None => false,
        }
    }

    /// Inserts or replaces an entry that is not a head (see
    /// [`DiskIndex::insert_head`]); returns the previous entry. A replaced
    /// head takes its chunks' entries with it. `key` must not be 0.
    pub fn insert(&mut self, key: u64, entry: IndexEntry) -> Option<IndexEntry> {
        debug_assert_ne!(entry.role, EntryRole::ChunkedHead);
        self.insert_raw(key, entry)
    }

    /// Inserts or replaces the head of a chunked object and its chain.
    pub fn insert_head(&mut self, key: u64, entry: IndexEntry, chain: Chain) -> Option<IndexEntry> {
        debug_assert_eq!(entry.role, EntryRole::ChunkedHead);
        let old = self.insert_raw(key, entry);
        self.chains.insert(key, chain);
        old
    }

    fn insert_raw(&mut self, key: u64, entry: IndexEntry) -> Option<IndexEntry> {
        debug_assert_ne!(key, 0);
        let val = entry.pack();
        let old = if let Some(p) = self.find(key) {
            let old = IndexEntry::unpack(self.slots[p].val);
            self.slots[p].val = val;
            Some(old)
        } else {
            if (self.len + 1) * MAX_LOAD_DEN > self.slots.len() * MAX_LOAD_NUM {
                self.grow();
            }
            self.place(Slot { key, val });
            self.len += 1;
            None
        };
        if entry.role == EntryRole::Chunk {
            self.chunk_len += 1;
        }
        if let Some(o) = old {
            self.forget(key, o.role);
        }
        old
    }

    /// Bookkeeping for an entry of `role` that left the slot `key`.
    fn forget(&mut self, key: u64, role: EntryRole) {
        match role {
            EntryRole::Object => {}
            EntryRole::Chunk => self.chunk_len -= 1,
            EntryRole::ChunkedHead => {
                if let Some(chain) = self.chains.remove(&key) {
                    for i in 0..chain.chunks {
                        self.remove_chunk(chain.chunk_key(i));
                    }
                }
            }
        }
    }

    /// Removes `key` only if it is a chunk entry.
    pub fn remove_chunk(&mut self, key: u64) -> bool {
        match self.get(key) {
            Some(e) if e.role == EntryRole::Chunk => self.remove(key).is_some(),
            _ => false,
        }
    }

    /// The chain of the head at `key`.
    pub fn chain(&self, key: u64) -> Option<&Chain> {
        self.chains.get(&key)
    }

    /// Whether chunk `i` of `chain` is indexed.
    pub fn has_chunk(&self, chain: &Chain, i: u32) -> bool {
        matches!(self.get(chain.chunk_key(i)), Some(e) if e.role == EntryRole::Chunk)
    }

    /// Whether every chunk of `chain` is indexed.
    pub fn chain_complete(&self, chain: &Chain) -> bool {
        (0..chain.chunks).all(|i| self.has_chunk(chain, i))
    }

    /// Removes every head whose chain is not complete (after recovery or a
    /// failed write, when holes are possible). Returns how many.
    pub fn drop_incomplete_chains(&mut self) -> usize {
        let doomed: Vec<u64> = self
            .chains
            .iter()
            .filter(|(_, c)| !self.chain_complete(c))
            .map(|(&k, _)| k)
            .collect();
        for &k in &doomed {
            self.remove(k);
        }
        doomed.len()
    }

    /// Robin Hood placement of a key known to be absent.
    fn place(&mut self, mut cur: Slot) {
        let mut pos = self.home(cur.key);
        let mut d = 0;
        loop {
            let s = self.slots[pos];
            if s.key == 0 {
                self.slots[pos] = cur;
                return;
            }
            let sd = self.dist(pos, s.key);
            if sd < d {
                self.slots[pos] = cur;
                cur = s;
                d = sd;
            }
            pos = self.next(pos);
            d += 1;
        }
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 5 / 4).max(MIN_CAPACITY);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); cap]);
        for s in old.into_iter().filter(|s| s.key != 0) {
            self.place(s);
        }
    }

    pub fn remove(&mut self, key: u64) -> Option<IndexEntry> {
        let mut pos = self.find(key)?;
        let old = IndexEntry::unpack(self.slots[pos].val);
        loop {
            let next = self.next(pos);
            let s = self.slots[next];
            if s.key == 0 || self.dist(next, s.key) == 0 {
                self.slots[pos] = Slot::default();
                break;
            }
            self.slots[pos] = s;
            pos = next;
        }
        self.len -= 1;
        self.forget(key, old.role);
        Some(old)
    }

    /// Removes `key` only if it still points at `(seg, offset)`; returns the
    /// removed entry.
    pub fn remove_if_at(&mut self, key: u64, seg: u32, offset: u64) -> Option<IndexEntry> {
        match self.get(key) {
            Some(e) if e.seg == seg && e.offset == offset => self.remove(key),
            _ => None,
        }
    }

    /// Removes every entry in segment `seg` (a full sweep; the fallback when
    /// a segment's summary cannot be read). Returns how many were removed.
    pub fn remove_segment(&mut self, seg: u32) -> usize {
        let doomed: Vec<u64> = self
            .slots
            .iter()
            .filter(|s| s.key != 0 && IndexEntry::unpack(s.val).seg == seg)
            .map(|s| s.key)
            .collect();
        // A head removed first may take some of the doomed chunks with it.
        doomed.iter().filter(|&&k| self.remove(k).is_some()).count()
    }

    /// Mean probe length of successful lookups (for tests and tuning).
    pub fn mean_probe_len(&self) -> f64 {
        let total: usize = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.key != 0)
            .map(|(p, s)| self.dist(p, s.key) + 1)
            .sum();
        total as f64 / self.len.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(i: u64) -> IndexEntry {
        IndexEntry {
            seg: (i % 1000) as u32,
            offset: (i % 4096) * ALIGN,
            size_class: (i % 20) as u8,
            hit: i % 3 == 0,
            role: EntryRole::Object,
        }
    }

    /// splitmix64: random-looking nonzero keys, like real index keys.
    fn mix(i: u64) -> u64 {
        let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) | 1
    }

    #[test]
    fn pack_round_trips_and_size_classes() {
        for i in 0..5000 {
            let e = entry(i);
            assert_eq!(IndexEntry::unpack(e.pack()), e);
        }
        assert_eq!(IndexEntry::size_class_for(512), 0);
        assert_eq!(IndexEntry::size_class_for(1024), 1);
        assert_eq!(IndexEntry::size_class_for(1536), 2);
        assert_eq!(IndexEntry::size_class_for(64 << 20), 17);
        for role in [EntryRole::Object, EntryRole::ChunkedHead, EntryRole::Chunk] {
            for hit in [false, true] {
                let e = IndexEntry {
                    seg: u32::MAX,
                    offset: IndexEntry::MAX_OFFSET,
                    size_class: IndexEntry::MAX_SIZE_CLASS,
                    hit,
                    role,
                };
                assert_eq!(IndexEntry::unpack(e.pack()), e);
            }
        }
        assert_eq!(std::mem::size_of::<Slot>(), 16);
    }

    #[test]
    fn model_check_against_hashmap() {
        let mut idx = DiskIndex::new();
        let mut model = HashMap::new();
        let mut x = 0x1234_5678_u64;
        for step in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = mix(x % 5000);
            match x % 10 {
                0..=5 => assert_eq!(idx.insert(k, entry(step)), model.insert(k, entry(step))),
                6..=7 => assert_eq!(idx.remove(k), model.remove(&k)),
                _ => assert_eq!(idx.get(k), model.get(&k).copied()),
            }
            assert_eq!(idx.len(), model.len());
        }
        for (k, v) in &model {
            assert_eq!(idx.get(*k), Some(*v));
        }
        let seg = 7;
        let expect = model.values().filter(|e| e.seg == seg).count();
        assert_eq!(idx.remove_segment(seg), expect);
        assert!(model
            .keys()
            .all(|k| idx.get(*k).map_or(true, |e| e.seg != seg)));
    }

    #[test]
    fn remove_if_at_and_hit_bit() {
        let mut idx = DiskIndex::new();
        let e = entry(1);
        idx.insert(5, e);
        assert!(idx.remove_if_at(5, e.seg + 1, e.offset).is_none());
        assert!(idx.mark_hit(5));
        assert!(idx.get(5).map(|e| e.hit).unwrap_or(false));
        assert!(idx.remove_if_at(5, e.seg, e.offset).is_some());
        assert!(idx.is_empty());
    }

    #[test]
    fn heads_own_their_chunks() {
        let mut idx = DiskIndex::new();
        let chain = Chain {
            digest: KeyDigest::of(b"big"),
            nonce: 42,
            chunks: 5,
        };
        let chunk = |i: u64| IndexEntry {
            role: EntryRole::Chunk,
            ..entry(i)
        };
        for i in 0..chain.chunks {
            idx.insert(chain.chunk_key(i), chunk(u64::from(i)));
        }
        let hkey = chain.digest.index_key();
        let head = IndexEntry {
            role: EntryRole::ChunkedHead,
            ..entry(9)
        };
        idx.insert_head(hkey, head, chain);
        idx.insert(mix(1), entry(1));
        assert_eq!((idx.len(), idx.chunk_len(), idx.object_len()), (7, 5, 2));
        assert!(idx.chain_complete(&chain));
        assert_eq!(idx.drop_incomplete_chains(), 0);
        // A hole: the head goes at the next validation, with its chunks.
        assert!(idx.remove_chunk(chain.chunk_key(2)));
        assert!(!idx.remove_chunk(mix(1)), "not a chunk");
        assert!(!idx.chain_complete(&chain));
        assert_eq!(idx.drop_incomplete_chains(), 1);
        assert_eq!((idx.len(), idx.chunk_len(), idx.object_len()), (1, 0, 1));
        assert!(idx.chain(hkey).is_none());
        // Replacing a head by a plain object drops the chain too.
        for i in 0..chain.chunks {
            idx.insert(chain.chunk_key(i), chunk(u64::from(i)));
        }
        idx.insert_head(hkey, head, chain);
        assert_eq!(
            idx.insert(hkey, entry(3)).map(|e| e.role),
            Some(EntryRole::ChunkedHead)
        );
        assert_eq!((idx.len(), idx.chunk_len()), (2, 0));
        assert!(idx.chain(hkey).is_none());
        // And so does sweeping a segment that holds only the head.
        for i in 0..chain.chunks {
            idx.insert(chain.chunk_key(i), chunk(u64::from(i)));
        }
        let head_seg = IndexEntry { seg: 4242, ..head };
        idx.insert_head(hkey, head_seg, chain);
        assert_eq!(idx.remove_segment(4242), 1);
        assert_eq!((idx.len(), idx.chunk_len()), (1, 0));
    }

    /// Bytes per chunked object: 1 million objects of 16 MiB in 4 MiB - 1 KiB
    /// chunks (5 chunk slots, a head slot and a chain entry each), run with
    /// `--ignored`.
    #[test]
    #[ignore]
    fn bytes_per_chunked_object_at_1m() {
        let n = 1_000_000u64;
        let mut idx = DiskIndex::new();
        for i in 0..n {
            let chain = Chain {
                digest: KeyDigest::of(&i.to_le_bytes()),
                nonce: mix(i),
                chunks: 5,
            };
            for c in 0..chain.chunks {
                let e = IndexEntry {
                    role: EntryRole::Chunk,
                    ..entry(i)
                };
                idx.insert(chain.chunk_key(c), e);
            }
            let head = IndexEntry {
                role: EntryRole::ChunkedHead,
                ..entry(i)
            };
            idx.insert_head(chain.digest.index_key(), head, chain);
        }
        assert_eq!(
            (idx.object_len() as u64, idx.chunk_len() as u64),
            (n, 5 * n)
        );
        let per = (idx.memory_bytes() + std::mem::size_of::<DiskIndex>()) as f64 / n as f64;
        println!(
            "disk index: {n} chunked objects of 16 MiB, {:.1} bytes/object ({:.2} per MiB of body)",
            per,
            per / 16.0
        );
        assert!(per <= 6.0 * 24.0 + 64.0, "{per} bytes per chunked object");
    }

    /// Bytes per object at 10 million entries (run with `--ignored`).
    #[test]
    #[ignore]
    fn bytes_per_object_at_10m() {
        let n = 10_000_000u64;
        let mut idx = DiskIndex::new();
        let t = std::time::Instant::now();
        for i in 0..n {
            idx.insert(mix(i), entry(i));
        }
        let insert = t.elapsed();
        let t = std::time::Instant::now();
        let mut found = 0;
        for i in 0..n {
            found += usize::from(idx.get(mix(i)).is_some());
        }
        let lookup = t.elapsed();
        assert_eq!(found as u64, n);
        let per = (idx.memory_bytes() + std::mem::size_of::<DiskIndex>()) as f64 / n as f64;
        println!(
            "disk index: {n} entries, capacity {}, load {:.3}, {:.2} bytes/object, mean probe {:.2}, \
             insert {:.0} ns/op, lookup {:.0} ns/op",
            idx.slots.len(),
            n as f64 / idx.slots.len() as f64,
            per,
            idx.mean_probe_len(),
            insert.as_nanos() as f64 / n as f64,
            lookup.as_nanos() as f64 / n as f64,
        );
        assert!(per <= 24.0, "{per} bytes per object");
    }
}
