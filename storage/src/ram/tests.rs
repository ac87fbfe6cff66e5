//! Tests for the RAM tier: invariants under randomized workloads (a tiny
//! xorshift PRNG, no external crates), a model check against a `HashMap`, and
//! S3-FIFO behaviour (scan resistance, ghost admission, promotion).

use std::collections::HashMap;
use std::hash::Hash;

use super::slab::QueueId;
use super::{RamStats, RamTier, Rejected};

type Tier = RamTier<u64, u64>;
const OH: u64 = Tier::ENTRY_OVERHEAD;

use crate::test_rng::Rng;

impl<K: Hash + Eq + Clone, V> RamTier<K, V> {
    /// Walks both queues and checks every invariant in the module doc.
    fn check_invariants(&self) {
        let mut live = 0;
        for q in [QueueId::Small, QueueId::Main] {
            let slots = self.slab.walk(q);
            let mut bytes = 0;
            for &idx in &slots {
                let e = self.slab.get(idx).expect("walked slot is live");
                assert_eq!(self.map.get(&e.key), Some(&idx), "map/slab disagree");
                assert!(e.freq <= 3);
                bytes += e.cost;
            }
            assert_eq!(slots.len(), self.slab.queue(q).len);
            assert_eq!(bytes, self.slab.queue(q).bytes);
            live += slots.len();
        }
        assert_eq!(live, self.map.len());
        assert!(self.ghost.records() <= self.map.len(), "ghost over its cap");
        assert!(self.ghost.members() <= self.ghost.records());
    }

    fn queue_of(&self, key: &K) -> Option<QueueId> {
        let idx = *self.map.get(key)?;
        self.slab.get(idx).map(|e| e.queue())
    }
}

#[test]
fn overhead_is_derived_from_struct_sizes() {
    // The key is held twice (slab slot and index bucket), the value once.
    let bigger_key = RamTier::<[u64; 8], u64>::ENTRY_OVERHEAD;
    let bigger_value = RamTier::<u64, [u64; 8]>::ENTRY_OVERHEAD;
    assert_eq!(bigger_key - OH, 2 * 56);
    assert_eq!(bigger_value - OH, 56);
    // Slot (key, value, cost, 2 links, freq/queue) + bucket + ghost share.
    let floor: u64 = 8 + 8 + 8 + 16 + 2 + (16 + 1) + (16 + 16 + 1);
    assert!(OH >= floor, "overhead {OH} < {floor}");
}

#[test]
fn budget_never_exceeded_under_random_workloads() {
    for (seed, budget) in [(1, 0), (2, 300), (3, 5_000), (4, 64_000), (5, 1 << 20)] {
        let mut rng = Rng(0x9e37_79b9 + seed);
        let mut tier = Tier::new(budget);
        for step in 0..20_000u64 {
            let key = rng.below(2_000).min(rng.below(2_000)); // skewed
            match rng.below(10) {
                0..=5 => {
                    let charge = rng.below(budget / 6 + 1);
                    let _ = tier.insert(key, step, charge);
                    assert!(tier.used_bytes() <= tier.budget_bytes());
                }
                6..=8 => {
                    tier.get(&key);
                }
                _ => {
                    tier.remove(&key);
                }
            }
            if step % 1_000 == 0 {
                tier.check_invariants();
            }
        }
        tier.check_invariants();
    }
}

#[test]
fn model_check_against_hashmap() {
    let mut rng = Rng(0xdead_beef_cafe);
    let budget = 40_000;
    let mut tier = Tier::new(budget);
    // key -> (value, charge); kept equal to the tier's contents.
    let mut model: HashMap<u64, (u64, u64)> = HashMap::new();
    for step in 0..50_000u64 {
        let key = rng.below(96);
        match rng.below(8) {
            0..=2 => {
                let charge = match rng.below(20) {
                    0 => tier.max_object_bytes(), // always too large with overhead
                    _ => rng.below(2_500),
                };
                let (before_len, before_used) = (tier.len(), tier.used_bytes());
                match tier.insert(key, step, charge) {
                    Ok(evicted) => {
                        let existed = model.insert(key, (step, charge)).is_some();
                        let gone = model.len() - tier.len();
                        model.retain(|k, _| tier.contains(k));
                        assert_eq!(evicted, gone, "eviction count");
                        assert_eq!(before_len + usize::from(!existed), tier.len() + evicted);
                        assert_eq!(tier.peek(&key), Some(&step), "insert never self-evicts");
                    }
                    Err(Rejected::TooLarge) => {
                        assert!(charge + OH > tier.max_object_bytes());
                        assert_eq!((tier.len(), tier.used_bytes()), (before_len, before_used));
                    }
                }
            }
            3..=4 => {
                let got = tier.get(&key).copied();
                assert_eq!(got, model.get(&key).map(|&(v, _)| v));
            }
            5 => {
                assert_eq!(tier.peek(&key), model.get(&key).map(|(v, _)| v));
            }
            _ => {
                let removed = tier.remove(&key);
                assert_eq!(removed, model.remove(&key).map(|(v, _)| v));
                assert!(!tier.contains(&key) && tier.peek(&key).is_none());
            }
        }
        let expected: u64 = model.values().map(|&(_, c)| c + OH).sum();
        assert_eq!(tier.used_bytes(), expected);
        assert!(tier.used_bytes() <= budget);
        assert_eq!(tier.len(), model.len());
        assert_eq!(tier.is_empty(), model.is_empty());
        if step % 500 == 0 {
            tier.check_invariants();
        }
    }
    let s = tier.stats();
    assert!(
        s.evictions > 0 && s.ghost_hits > 0 && s.rejections > 0,
        "{s:?}"
    );
}

#[test]
fn one_hit_wonder_scan_keeps_hot_working_set() {
    let mut tier = Tier::new(100_000);
    let hot: Vec<u64> = (0..20).collect();
    for &k in &hot {
        tier.insert(k, k, 1_000).expect("fits");
    }
    for _ in 0..3 {
        for &k in &hot {
            assert!(tier.get(&k).is_some());
        }
    }
    for k in 1_000..11_000 {
        tier.insert(k, k, 1_000).expect("fits");
        // Keep the hot set warm, as real traffic would.
        if k % 50 == 0 {
            for &h in &hot {
                tier.get(&h);
            }
        }
    }
    for &k in &hot {
        assert!(tier.contains(&k), "hot key {k} was evicted by the scan");
        assert_eq!(tier.queue_of(&k), Some(QueueId::Main));
    }
    assert!(tier.stats().evictions > 9_000);
    tier.check_invariants();
}

#[test]
fn scan_without_rewarming_still_spares_accessed_keys() {
    let mut tier = Tier::new(100_000);
    for k in 0..10 {
        tier.insert(k, k, 1_000).expect("fits");
        tier.get(&k);
    }
    for k in 100..5_000 {
        tier.insert(k, k, 1_000).expect("fits");
    }
    assert!((0..10).all(|k| tier.contains(&k)));
}

#[test]
fn ghost_hit_admits_to_main() {
    let mut tier = Tier::new(100_000);
    tier.insert(7, 70, 1_000).expect("fits");
    assert_eq!(tier.queue_of(&7), Some(QueueId::Small));
    let mut k = 100;
    while tier.contains(&7) {
        tier.insert(k, k, 1_000).expect("fits");
        k += 1;
    }
    assert_eq!(tier.stats().ghost_hits, 0);
    tier.insert(7, 71, 1_000).expect("fits");
    assert_eq!(tier.queue_of(&7), Some(QueueId::Main));
    assert_eq!(tier.stats().ghost_hits, 1);
    // A key never seen before still goes to S.
    tier.insert(99_999, 0, 1_000).expect("fits");
    assert_eq!(tier.queue_of(&99_999), Some(QueueId::Small));
    tier.check_invariants();
}

#[test]
fn accessed_small_entry_is_promoted_not_dropped() {
    let mut tier = Tier::new(100_000);
    tier.insert(1, 1, 1_000).expect("fits");
    tier.get(&1);
    for k in 100..200 {
        tier.insert(k, k, 1_000).expect("fits");
    }
    assert_eq!(tier.queue_of(&1), Some(QueueId::Main));
    assert_eq!(tier.stats().ghost_hits, 0);
}

#[test]
fn too_large_is_rejected_and_cache_unchanged() {
    let mut tier = Tier::new(80_000);
    assert_eq!(tier.max_object_bytes(), 10_000);
    for k in 0..100 {
        tier.insert(k, k, 500).expect("fits");
    }
    let (len, used, stats) = (tier.len(), tier.used_bytes(), tier.stats());
    let err = tier.insert(5, 555, 10_000 - OH + 1).unwrap_err();
    assert_eq!(err, Rejected::TooLarge);
    assert!(!err.to_string().is_empty());
    assert_eq!((tier.len(), tier.used_bytes()), (len, used));
    assert_eq!(
        tier.peek(&5),
        Some(&5),
        "old value kept on rejected replace"
    );
    let expected = RamStats {
        rejections: stats.rejections + 1,
        ..stats
    };
    assert_eq!(tier.stats(), expected);
    // Exactly the limit is admitted.
    assert!(tier.insert(5, 555, 10_000 - OH).is_ok());
    tier.set_max_object_bytes(u64::MAX);
    assert_eq!(tier.max_object_bytes(), 80_000, "setter clamps to budget");
    assert_eq!(Tier::new(0).insert(1, 1, 0), Err(Rejected::TooLarge));
}

#[test]
fn replacing_a_key_adjusts_bytes_and_keeps_queue() {
    let mut tier = Tier::new(1_000_000);
    tier.insert(1, 10, 100).expect("fits");
    tier.insert(2, 20, 300).expect("fits");
    assert_eq!(tier.used_bytes(), 400 + 2 * OH);
    assert_eq!(tier.insert(1, 11, 5_000), Ok(0));
    assert_eq!(tier.used_bytes(), 5_300 + 2 * OH);
    assert_eq!(tier.insert(1, 12, 7), Ok(0));
    assert_eq!(tier.used_bytes(), 307 + 2 * OH);
    assert_eq!(tier.len(), 2);
    assert_eq!(tier.get(&1), Some(&12));
    assert_eq!(tier.queue_of(&1), Some(QueueId::Small));
    assert_eq!(tier.stats().inserts, 4);
    tier.check_invariants();
}

#[test]
fn remove_frees_bytes_and_stats_count_hits() {
    let mut tier: RamTier<String, Vec<u8>> = RamTier::new(1 << 20);
    let oh = RamTier::<String, Vec<u8>>::ENTRY_OVERHEAD;
    tier.insert("a".into(), vec![1; 64], 64 + 1).expect("fits");
    assert_eq!(tier.used_bytes(), 65 + oh);
    assert_eq!(tier.get(&"a".to_string()).map(Vec::len), Some(64));
    assert!(tier.get(&"b".to_string()).is_none());
    assert_eq!(tier.remove(&"a".to_string()).map(|v| v.len()), Some(64));
    assert!(tier.remove(&"a".to_string()).is_none());
    assert_eq!((tier.used_bytes(), tier.len()), (0, 0));
    assert!(tier.is_empty());
    let s = tier.stats();
    assert_eq!((s.hits, s.misses, s.inserts), (1, 1, 1));
    assert!(format!("{tier:?}").contains("RamTier"));
}
