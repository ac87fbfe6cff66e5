//! The S3-FIFO ghost queue: a bounded FIFO of 64-bit key hashes of objects
//! recently evicted from the small queue, without their keys or values.
//!
//! Owns: the hash FIFO and its membership index.
//!
//! Invariants:
//! - `fifo.len() <= cap` after every `push`/`trim` (the caller picks `cap`);
//! - a hash is a member iff `index` maps it to the sequence number of a FIFO
//!   record still in `fifo`. Taking a hash out removes it from `index` only;
//!   its FIFO record becomes stale and is skipped when it reaches the head.
//!   Stale records count toward `cap`, so memory stays bounded.

use std::collections::VecDeque;

use ahash::AHashMap;

/// One FIFO record: the hash and the sequence number it was pushed with.
pub(crate) type GhostRecord = (u64, u64);

pub(crate) struct Ghost {
    fifo: VecDeque<GhostRecord>,
    index: AHashMap<u64, u64>,
    next_seq: u64,
}

impl Ghost {
    pub(crate) fn new() -> Self {
        Ghost {
            fifo: VecDeque::new(),
            index: AHashMap::new(),
            next_seq: 0,
        }
    }

    /// Remembers `hash`, forgetting the oldest records beyond `cap`.
    pub(crate) fn push(&mut self, hash: u64, cap: usize) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.fifo.push_back((hash, seq));
        self.index.insert(hash, seq);
        self.trim(cap);
    }

    /// Drops the oldest records until at most `cap` remain.
    pub(crate) fn trim(&mut self, cap: usize) {
        while self.fifo.len() > cap {
            let Some((hash, seq)) = self.fifo.pop_front() else {
                break;
            };
            if self.index.get(&hash) == Some(&seq) {
                self.index.remove(&hash);
            }
        }
    }

    /// If `hash` is remembered, forgets it and returns true.
    pub(crate) fn take(&mut self, hash: u64) -> bool {
        self.index.remove(&hash).is_some()
    }

    #[cfg(test)]
    pub(crate) fn records(&self) -> usize {
        self.fifo.len()
    }

    #[cfg(test)]
    pub(crate) fn members(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_and_forgets_oldest() {
        let mut g = Ghost::new();
        for h in 0..10 {
            g.push(h, 4);
        }
        assert_eq!(g.records(), 4);
        assert!(!g.take(5));
        assert!(g.take(6));
        assert!(!g.take(6), "take forgets");
        assert!(g.take(9));
    }

    #[test]
    fn stale_record_does_not_evict_newer_membership() {
        let mut g = Ghost::new();
        g.push(7, 3);
        assert!(g.take(7));
        g.push(1, 3);
        g.push(7, 3); // re-remembered; the old record for 7 is stale
        g.push(2, 3); // pops the stale record for 7
        assert_eq!(g.records(), 3);
        assert!(g.take(7), "newer record must survive the stale pop");
        g.trim(0);
        assert_eq!((g.records(), g.members()), (0, 0));
    }
}
