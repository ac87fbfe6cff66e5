//! Near copies: a shard's short-lived references to small, fresh objects that another shard owns,
//! so that repeated hits on a hot key skip the owner hop (a mesh message and a cross-core wake-up
//! each way, which cost about as much as the hit itself).
//!
//! A copy is only an `Arc` of the owner's immutable object, taken from the owner's own answer to a
//! lookup. It is used again only while all of these hold:
//! - the key's generation (below) is the one the owner reported with the object;
//! - it is younger than the hold time (so the owner keeps seeing the key's hits at least that
//!   often, and its eviction keeps judging the key hot);
//! - the object is still fresh and usable for this request (`StoredObject::usable_for`).
//!
//! Otherwise the lookup goes to the owner as before.
//!
//! **Generations.** One table of counters is shared by every shard of the process, indexed by a hash
//! of the key. The owner bumps a key's counter whenever the response it would serve for the key
//! changes: a store (a new or revalidated response), an invalidation, an uncacheable mark, a disk-only
//! object replacing the RAM one (`OwnerState`). The owner reads the counter in the same step as the
//! lookup it answers, so a copy never outlives a newer response stored after it: RFC 9111 §4 asks a
//! cache to use the most recent response it has. Unrelated keys may share a counter; that only
//! costs them an extra hop.
//!
//! Invariants: copies never hold partial (206), disk-only or varying objects, and a copy found stale
//! is dropped; the bytes held (objects and keys) are bounded by the configured budget. Objects are
//! shared with the owner's RAM tier, so they cost memory only once the owner has evicted them; a
//! copy past its hold is released at the next lookup or offer on the shard.

use super::key::CacheKey;
use super::object::StoredObject;
use crate::http::headers::Headers;
use ahash::AHashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Counters in the shared generation table (8 bytes each: 512 KiB).
const GENERATION_SLOTS: usize = 1 << 16;

/// The process-wide table of key generations (see the module doc).
pub struct Generations {
    slots: Box<[AtomicU64]>,
}

impl Default for Generations {
    fn default() -> Self {
        Self::new()
    }
}

impl Generations {
    pub fn new() -> Self {
        Generations {
            slots: (0..GENERATION_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, key: &CacheKey) -> &AtomicU64 {
        // The route hash's low bits pick the owner; the high bits pick the slot.
        &self.slots[(key.route_hash() >> 32) as usize % self.slots.len()]
    }

    /// The key's current generation.
    pub fn current(&self, key: &CacheKey) -> u64 {
        self.slot(key).load(Ordering::Acquire)
    }

    /// Marks every near copy of `key` out of date. Called by the key's owner only.
    pub fn bump(&self, key: &CacheKey) {
        self.slot(key).fetch_add(1, Ordering::Release);
    }
}

/// Limits of one shard's near copies.
#[derive(Clone, Copy, Debug)]
pub struct NearLimits {
    /// Bytes of objects held (their `StoredObject::charge`); 0 turns near copies off.
    pub budget: u64,
    /// Largest body kept.
    pub max_object: u64,
    /// How long one copy serves hits before the owner is asked again.
    pub hold: Duration,
}

struct Copy {
    obj: Arc<StoredObject>,
    generation: u64,
    /// When it was taken; it serves hits until `since + hold`.
    since: Instant,
    charge: u64,
}

/// One shard's near copies.
pub struct NearCopies {
    limits: NearLimits,
    generations: Arc<Generations>,
    copies: AHashMap<CacheKey, Copy>,
    /// Insertion order, for eviction when over budget (oldest first). May name keys already
    /// removed or replaced; those are skipped.
    order: VecDeque<(CacheKey, Instant)>,
    held: u64,
}

impl NearCopies {
    pub fn new(limits: NearLimits, generations: Arc<Generations>) -> Self {
        NearCopies {
            limits,
            generations,
            copies: AHashMap::new(),
            order: VecDeque::new(),
            held: 0,
        }
    }

    fn enabled(&self) -> bool {
        self.limits.budget > 0
    }

    /// A copy of `key` usable for a request with fields `req` at `now` / `at`, if there is one.
    /// A copy that is past its hold, of an older generation or stale is dropped; one that only
    /// this request cannot use (its own directives, Authorization) is kept for the next.
    pub fn get(
        &mut self,
        key: &CacheKey,
        req: &Headers,
        now: Instant,
        at: SystemTime,
    ) -> Option<Arc<StoredObject>> {
        self.expire(now);
        let c = self.copies.get(key)?;
        if now >= c.since + self.limits.hold
            || c.generation != self.generations.current(key)
            || !c.obj.staleness(at).is_zero()
        {
            self.remove(key);
            return None;
        }
        c.obj.usable_for(req, at).then(|| c.obj.clone())
    }

    /// Releases the copies whose hold ended (the oldest first, in the order they were taken).
    fn expire(&mut self, now: Instant) {
        while self
            .order
            .front()
            .is_some_and(|(_, t)| *t + self.limits.hold <= now)
        {
            self.release_oldest();
        }
    }

    /// Takes the oldest entry off the order queue and releases its copy if it is still the one
    /// that entry was made for. False when the queue is empty.
    fn release_oldest(&mut self) -> bool {
        let Some((k, t)) = self.order.pop_front() else {
            return false;
        };
        if self.copies.get(&k).is_some_and(|c| c.since == t) {
            self.remove(&k);
        }
        true
    }

    /// Keeps `obj`, which the owner just returned as a hit for `key` at generation `generation`
    /// (judged at `at`), if it qualifies.
    pub fn offer(
        &mut self,
        key: &CacheKey,
        obj: &Arc<StoredObject>,
        generation: u64,
        now: Instant,
        at: SystemTime,
    ) {
        if !self.enabled()
            || obj.partial.is_some()
            || obj.disk_only
            || !obj.meta.vary.is_empty()
            || obj.body_len > self.limits.max_object
            || !obj.staleness(at).is_zero()
        {
            return;
        }
        self.expire(now);
        // The key is held twice: in the map and in the order queue.
        let charge = obj.charge(2 * key.heap_bytes());
        if charge > self.limits.budget {
            return;
        }
        self.remove(key);
        while self.held + charge > self.limits.budget && self.release_oldest() {}
        self.held += charge;
        self.order.push_back((key.clone(), now));
        self.copies.insert(
            key.clone(),
            Copy {
                obj: obj.clone(),
                generation,
                since: now,
                charge,
            },
        );
        // Entries of the order queue outlive their copies (replaced, dropped); keep it bounded.
        if self.order.len() > 2 * self.copies.len() + 64 {
            let copies = &self.copies;
            self.order
                .retain(|(k, t)| copies.get(k).is_some_and(|c| c.since == *t));
        }
    }

    fn remove(&mut self, key: &CacheKey) {
        if let Some(c) = self.copies.remove(key) {
            self.held -= c.charge;
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    fn held(&self) -> u64 {
        self.held
    }

    /// Copies held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.copies.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.copies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::object::test_object;

    fn limits() -> NearLimits {
        NearLimits {
            budget: 1 << 20,
            max_object: 64 << 10,
            hold: Duration::from_secs(1),
        }
    }

    fn key(p: &str) -> CacheKey {
        CacheKey::new("http", b"example.com", p.as_bytes())
    }

    /// Near copies with `limits()` over a fresh generation table.
    fn copies() -> NearCopies {
        NearCopies::new(limits(), Arc::new(Generations::new()))
    }

    fn offered(near: &mut NearCopies, k: &CacheKey, obj: StoredObject, now: Instant) -> bool {
        let g = near.generations.current(k);
        near.offer(k, &Arc::new(obj), g, now, SystemTime::now());
        near.copies.contains_key(k)
    }

    #[test]
    fn a_copy_serves_until_its_hold_ends() {
        let mut near = copies();
        let k = key("/a");
        let t0 = Instant::now();
        let at = SystemTime::now();
        assert!(near.get(&k, &Headers::new(), t0, at).is_none());
        assert!(offered(&mut near, &k, test_object(100, false, false), t0));
        let t = t0 + Duration::from_millis(999);
        assert!(near.get(&k, &Headers::new(), t, at).is_some());
        assert!(near
            .get(&k, &Headers::new(), t0 + Duration::from_secs(1), at)
            .is_none());
        assert!(near.is_empty(), "an expired copy is dropped");
        assert_eq!(near.held(), 0);
    }

    #[test]
    fn a_newer_generation_retires_the_copy() {
        let gens = Arc::new(Generations::new());
        let mut near = NearCopies::new(limits(), gens.clone());
        let (a, b) = (key("/a"), key("/b"));
        let now = Instant::now();
        let at = SystemTime::now();
        assert!(offered(&mut near, &a, test_object(100, false, false), now));
        assert!(offered(&mut near, &b, test_object(100, false, false), now));
        gens.bump(&a);
        assert!(near.get(&a, &Headers::new(), now, at).is_none());
        if !std::ptr::eq(gens.slot(&a), gens.slot(&b)) {
            assert!(near.get(&b, &Headers::new(), now, at).is_some());
        }
        // A copy offered with the generation read before a bump is never used.
        let old = gens.current(&a);
        gens.bump(&a);
        near.offer(
            &a,
            &Arc::new(test_object(100, false, false)),
            old,
            now,
            SystemTime::now(),
        );
        assert!(near.get(&a, &Headers::new(), now, at).is_none());
    }

    #[test]
    fn a_stale_copy_is_dropped_and_one_this_request_cannot_use_is_kept() {
        let mut near = copies();
        let k = key("/a");
        let now = Instant::now();
        let at = SystemTime::now();
        assert!(offered(&mut near, &k, test_object(100, false, false), now));
        // The request's own directives and credentials rule this copy out for it alone.
        let mut min_fresh = Headers::new();
        min_fresh.push("Cache-Control", "min-fresh=120");
        assert!(near.get(&k, &min_fresh, now, at).is_none());
        let mut auth = Headers::new();
        auth.push("Authorization", "Basic eDp5");
        assert!(near.get(&k, &auth, now, at).is_none());
        assert!(near.get(&k, &Headers::new(), now, at).is_some());
        // Stale at the time of the request (the object is fresh for 60 s): dropped.
        let later = at + Duration::from_secs(61);
        assert!(near.get(&k, &Headers::new(), now, later).is_none());
        assert!(near.is_empty());
        // A stale answer (a max-stale request's) is not kept.
        let mut stale = test_object(100, false, false);
        stale.freshness.response_time = at - Duration::from_secs(120);
        assert!(!offered(&mut near, &k, stale, now));
    }

    #[test]
    fn copies_past_their_hold_are_released_by_later_traffic() {
        let mut near = copies();
        let t0 = Instant::now();
        assert!(offered(
            &mut near,
            &key("/old"),
            test_object(100, false, false),
            t0
        ));
        let held = near.held();
        // A lookup of another key a hold later frees it, though "/old" is never asked for again.
        let t1 = t0 + Duration::from_secs(1);
        assert!(near
            .get(&key("/other"), &Headers::new(), t1, SystemTime::now())
            .is_none());
        assert_eq!((near.len(), near.held()), (0, 0));
        assert!(offered(
            &mut near,
            &key("/new"),
            test_object(100, false, false),
            t1
        ));
        assert_eq!(near.held(), held);
    }

    #[test]
    fn varying_partial_large_and_disk_only_objects_are_not_kept() {
        let mut near = copies();
        let now = Instant::now();
        assert!(!offered(
            &mut near,
            &key("/v"),
            test_object(10, true, false),
            now
        ));
        assert!(!offered(
            &mut near,
            &key("/p"),
            test_object(10, false, true),
            now
        ));
        assert!(!offered(
            &mut near,
            &key("/l"),
            test_object(64 << 10 | 1, false, false),
            now
        ));
        let mut d = test_object(10, false, false);
        d.disk_only = true;
        assert!(!offered(&mut near, &key("/d"), d, now));
        assert!(offered(
            &mut near,
            &key("/ok"),
            test_object(64 << 10, false, false),
            now
        ));
        let off = NearLimits {
            budget: 0,
            ..limits()
        };
        let mut near = NearCopies::new(off, Arc::new(Generations::new()));
        assert!(!offered(
            &mut near,
            &key("/ok"),
            test_object(10, false, false),
            now
        ));
    }

    #[test]
    fn the_budget_evicts_the_oldest_copies() {
        let gens = Arc::new(Generations::new());
        let one = test_object(40 << 10, false, false).charge(2 * key("/0").heap_bytes());
        let mut near = NearCopies::new(
            NearLimits {
                budget: 3 * one + one / 2,
                ..limits()
            },
            gens,
        );
        let now = Instant::now();
        for i in 0..5 {
            let k = key(&format!("/{i}"));
            let t = now + Duration::from_millis(i);
            assert!(offered(
                &mut near,
                &k,
                test_object(40 << 10, false, false),
                t
            ));
            assert!(near.held() <= 3 * one + one / 2);
        }
        assert_eq!(near.len(), 3);
        let at = SystemTime::now();
        for (i, kept) in [(0, false), (1, false), (2, true), (3, true), (4, true)] {
            let got = near.get(&key(&format!("/{i}")), &Headers::new(), now, at);
            assert_eq!(got.is_some(), kept, "copy {i}");
        }
        // Offering the same key again replaces its copy and its charge.
        let k = key("/4");
        assert!(offered(
            &mut near,
            &k,
            test_object(40 << 10, false, false),
            now
        ));
        assert_eq!(near.len(), 3);
        assert_eq!(near.held(), 3 * one);
    }
}
