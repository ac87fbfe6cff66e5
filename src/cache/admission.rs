//! Which objects enter the disk tier: an admission policy that spares the SSDs. Objects are admitted
//! either when first stored or only on their first hit from RAM (a second request), never above a
//! size limit, and never past a daily budget of bytes written.
//! Invariants: partial (206) objects and objects with Vary never go to disk; the budget window is a
//! fixed 24 h from its start and the count never exceeds the budget by more than one object's
//! bytes refused (a write that would cross it is refused).

use super::object::StoredObject;
use std::time::{Duration, Instant};

/// When an object is written to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdmitOn {
    /// As soon as it is stored (fill complete).
    Store,
    /// On its first hit from RAM: one-hit wonders never cost a disk write.
    SecondHit,
}

/// The disk admission state of one shard.
#[derive(Debug)]
pub struct Admission {
    pub on: AdmitOn,
    max_object: u64,
    budget_per_day: u64,
    window_start: Instant,
    written: u64,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl Admission {
    /// `budget_per_day` 0 means unlimited.
    pub fn new(on: AdmitOn, max_object: u64, budget_per_day: u64) -> Self {
        Admission {
            on,
            max_object,
            budget_per_day,
            window_start: Instant::now(),
            written: 0,
        }
    }

    /// Whether `obj` may be written now (and counts it against the budget if so).
    pub fn admit(&mut self, obj: &StoredObject, disk_max: u64, now: Instant) -> bool {
        if obj.partial.is_some()
            || !obj.meta.vary.is_empty()
            || obj.body_len > self.max_object.min(disk_max)
        {
            return false;
        }
        if now.duration_since(self.window_start) >= DAY {
            self.window_start = now;
            self.written = 0;
        }
        let cost = obj.body_len + obj.meta.head.len() as u64;
        if self.budget_per_day != 0 && self.written + cost > self.budget_per_day {
            return false;
        }
        self.written += cost;
        true
    }

    fn roll_window(&mut self, now: Instant) {
        if now.duration_since(self.window_start) >= DAY {
            self.window_start = now;
            self.written = 0;
        }
    }

    /// Whether a disk-only (chunked, streamed in) object of `len` bytes, if known, may start:
    /// within the size limit and with budget left. Large objects skip second-hit admission (they
    /// are never in RAM to be hit there).
    pub fn large_allowed(&mut self, len: Option<u64>) -> bool {
        self.roll_window(Instant::now());
        let len = len.unwrap_or(0);
        len <= self.max_object
            && (self.budget_per_day == 0 || self.written + len <= self.budget_per_day)
    }

    /// Counts `add` more bytes of a disk-only object now `total` long; false (nothing counted)
    /// when the object passed the size limit or the budget would be crossed.
    pub fn charge_large(&mut self, add: u64, total: u64) -> bool {
        self.roll_window(Instant::now());
        if total > self.max_object
            || (self.budget_per_day != 0 && self.written + add > self.budget_per_day)
        {
            return false;
        }
        self.written += add;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::object::test_object;

    fn obj(len: usize, vary: bool, partial: bool) -> StoredObject {
        test_object(len, vary, partial)
    }

    #[test]
    fn size_vary_and_partial_are_refused() {
        let mut a = Admission::new(AdmitOn::Store, 1000, 0);
        let now = Instant::now();
        assert!(a.admit(&obj(1000, false, false), u64::MAX, now));
        assert!(!a.admit(&obj(1001, false, false), u64::MAX, now));
        assert!(
            !a.admit(&obj(500, false, false), 400, now),
            "the disk's own limit applies"
        );
        assert!(!a.admit(&obj(10, true, false), u64::MAX, now));
        assert!(!a.admit(&obj(10, false, true), u64::MAX, now));
    }

    #[test]
    fn the_daily_budget_is_enforced_and_renewed() {
        let mut a = Admission::new(AdmitOn::Store, u64::MAX, 3000);
        let t0 = Instant::now();
        let o = obj(1000, false, false);
        let cost = 1000 + o.meta.head.len() as u64;
        let fit = 3000 / cost;
        for _ in 0..fit {
            assert!(a.admit(&o, u64::MAX, t0));
        }
        assert!(!a.admit(&o, u64::MAX, t0), "over budget");
        assert!(a.admit(&o, u64::MAX, t0 + DAY), "a new day, a new budget");
    }
}
