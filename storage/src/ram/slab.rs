//! Entry storage for the RAM tier: a slab of entries threaded onto two
//! intrusive doubly-linked FIFO queues (small and main).
//!
//! Owns: the entries themselves, their queue links and per-queue totals.
//!
//! Invariants:
//! - every occupied slot is linked into exactly one queue, the one named by
//!   its `queue` field; vacant slots form a singly-linked free list;
//! - a queue's `len` and `bytes` equal the count and the sum of `cost` of the
//!   entries linked into it;
//! - `head`/`tail`/`prev`/`next` are slot indices or [`NIL`].
//!
//! Because the links are intrusive, unlinking is O(1) and queues never hold
//! stale entries, so nothing needs compaction. Vacant slots are reused before
//! the slab grows, so the slab is as large as the peak live entry count.

/// The "no slot" link value.
pub(crate) const NIL: usize = usize::MAX;

/// Which FIFO an entry lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueId {
    Small,
    Main,
}

/// One cached object and its bookkeeping.
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// Bytes charged to the budget: caller's charge plus entry overhead.
    pub(crate) cost: u64,
    /// S3-FIFO access frequency, 0..=3.
    pub(crate) freq: u8,
    queue: QueueId,
    prev: usize,
    next: usize,
}

impl<K, V> Entry<K, V> {
    pub(crate) fn new(key: K, value: V, cost: u64, freq: u8) -> Self {
        Entry {
            key,
            value,
            cost,
            freq,
            queue: QueueId::Small,
            prev: NIL,
            next: NIL,
        }
    }

    pub(crate) fn queue(&self) -> QueueId {
        self.queue
    }
}

/// A slab slot: an entry or a link in the free list.
pub(crate) enum Slot<K, V> {
    Occupied(Entry<K, V>),
    Vacant { next_free: usize },
}

/// Head, tail and totals of one FIFO. Pop from `head`, push at `tail`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Queue {
    pub(crate) head: usize,
    pub(crate) tail: usize,
    pub(crate) len: usize,
    pub(crate) bytes: u64,
}

impl Queue {
    const EMPTY: Queue = Queue {
        head: NIL,
        tail: NIL,
        len: 0,
        bytes: 0,
    };
}

pub(crate) struct Slab<K, V> {
    slots: Vec<Slot<K, V>>,
    free_head: usize,
    small: Queue,
    main: Queue,
}

impl<K, V> Slab<K, V> {
    pub(crate) fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free_head: NIL,
            small: Queue::EMPTY,
            main: Queue::EMPTY,
        }
    }

    pub(crate) fn queue(&self, q: QueueId) -> &Queue {
        match q {
            QueueId::Small => &self.small,
            QueueId::Main => &self.main,
        }
    }

    fn queue_mut(&mut self, q: QueueId) -> &mut Queue {
        match q {
            QueueId::Small => &mut self.small,
            QueueId::Main => &mut self.main,
        }
    }

    pub(crate) fn get(&self, idx: usize) -> Option<&Entry<K, V>> {
        match self.slots.get(idx) {
            Some(Slot::Occupied(e)) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, idx: usize) -> Option<&mut Entry<K, V>> {
        match self.slots.get_mut(idx) {
            Some(Slot::Occupied(e)) => Some(e),
            _ => None,
        }
    }

    /// Stores `entry` and links it at the tail of `q`; returns its slot.
    pub(crate) fn push_back(&mut self, q: QueueId, entry: Entry<K, V>) -> usize {
        let idx = match self.slots.get(self.free_head) {
            Some(&Slot::Vacant { next_free }) => {
                let idx = self.free_head;
                self.free_head = next_free;
                self.slots[idx] = Slot::Occupied(entry);
                idx
            }
            _ => {
                self.slots.push(Slot::Occupied(entry));
                self.slots.len() - 1
            }
        };
        self.link_back(idx, q);
        idx
    }

    /// Unlinks and frees slot `idx`, returning its entry.
    pub(crate) fn remove(&mut self, idx: usize) -> Option<Entry<K, V>> {
        if !self.unlink(idx) {
            return None;
        }
        let vacant = Slot::Vacant {
            next_free: self.free_head,
        };
        let slot = std::mem::replace(self.slots.get_mut(idx)?, vacant);
        self.free_head = idx;
        match slot {
            Slot::Occupied(e) => Some(e),
            Slot::Vacant { .. } => None,
        }
    }

    /// Moves slot `idx` to the tail of `q` (reinsertion or promotion).
    pub(crate) fn move_to_back(&mut self, idx: usize, q: QueueId) {
        if self.unlink(idx) {
            self.link_back(idx, q);
        }
    }

    /// Detaches slot `idx` from its queue, leaving it occupied but unlinked.
    fn unlink(&mut self, idx: usize) -> bool {
        let (prev, next, q, cost) = match self.get(idx) {
            Some(e) => (e.prev, e.next, e.queue, e.cost),
            None => return false,
        };
        match self.get_mut(prev) {
            Some(p) => p.next = next,
            None => self.queue_mut(q).head = next,
        }
        match self.get_mut(next) {
            Some(n) => n.prev = prev,
            None => self.queue_mut(q).tail = prev,
        }
        let queue = self.queue_mut(q);
        queue.len -= 1;
        queue.bytes -= cost;
        true
    }

    /// Links the (occupied, unlinked) slot `idx` at the tail of `q`.
    fn link_back(&mut self, idx: usize, q: QueueId) {
        let tail = self.queue(q).tail;
        let cost = match self.get_mut(idx) {
            Some(e) => {
                e.prev = tail;
                e.next = NIL;
                e.queue = q;
                e.cost
            }
            None => return,
        };
        match self.get_mut(tail) {
            Some(t) => t.next = idx,
            None => self.queue_mut(q).head = idx,
        }
        let queue = self.queue_mut(q);
        queue.tail = idx;
        queue.len += 1;
        queue.bytes += cost;
    }

    /// Slot indices of `q`, head first, checking the back links on the way.
    #[cfg(test)]
    pub(crate) fn walk(&self, q: QueueId) -> Vec<usize> {
        let mut out = Vec::new();
        let (mut prev, mut idx) = (NIL, self.queue(q).head);
        while let Some(e) = self.get(idx) {
            assert_eq!(e.prev, prev, "broken back link");
            assert_eq!(e.queue, q, "entry on the wrong queue");
            out.push(idx);
            prev = idx;
            idx = e.next;
        }
        assert_eq!(self.queue(q).tail, prev, "tail mismatch");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(slab: &Slab<u32, ()>, q: QueueId) -> Vec<u32> {
        let walked = slab.walk(q);
        walked
            .iter()
            .filter_map(|&i| slab.get(i))
            .map(|e| e.key)
            .collect()
    }

    #[test]
    fn push_move_remove_keep_links_and_totals() {
        let mut slab = Slab::new();
        let a = slab.push_back(QueueId::Small, Entry::new(1, (), 10, 0));
        let b = slab.push_back(QueueId::Small, Entry::new(2, (), 20, 0));
        let c = slab.push_back(QueueId::Small, Entry::new(3, (), 30, 0));
        assert_eq!(keys(&slab, QueueId::Small), vec![1, 2, 3]);
        slab.move_to_back(b, QueueId::Main);
        assert_eq!(keys(&slab, QueueId::Small), vec![1, 3]);
        assert_eq!(keys(&slab, QueueId::Main), vec![2]);
        assert_eq!(slab.queue(QueueId::Small).bytes, 40);
        assert_eq!(slab.queue(QueueId::Main).bytes, 20);
        assert_eq!(slab.remove(a).map(|e| e.key), Some(1));
        assert!(slab.remove(a).is_none());
        assert_eq!(keys(&slab, QueueId::Small), vec![3]);
        // The freed slot is reused.
        let d = slab.push_back(QueueId::Main, Entry::new(4, (), 5, 0));
        assert_eq!(d, a);
        assert_eq!(keys(&slab, QueueId::Main), vec![2, 4]);
        assert_eq!(slab.remove(c).map(|e| e.cost), Some(30));
        assert_eq!(slab.queue(QueueId::Small).len, 0);
        assert_eq!(slab.queue(QueueId::Small).head, NIL);
    }
}
