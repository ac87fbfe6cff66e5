//! The cache state a shard owns: for every key whose owner it is, the RAM entry, the in-flight fill
//! and the "uncacheable" mark. Only the owner shard touches this state; other shards reach it with
//! mesh messages (see `shard::mesh`).
//!
//! Invariants: at most one fill per key exists at any time (single-flight across the whole process);
//! a key marked uncacheable is never collapsed until the mark expires; the uncacheable table is bounded;
//! every change of the response a key would be served from bumps the key's generation (so other
//! shards' near copies of the old one are no longer used, see `near`).

use super::admission::{Admission, AdmitOn};
use super::fill::{Fill, FillEvent};
use super::key::CacheKey;
use super::near::Generations;
use super::object::{join_values, StoredObject};
use super::persist;
use crate::http::headers::Headers;
use ahash::AHashMap;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use verge_storage::{DiskTier, RamTier};

/// Most uncacheable marks kept; past it the expired ones are swept, then the oldest half dropped.
const MAX_UNCACHEABLE_MARKS: usize = 100_000;

/// Why a request was sent to the origin without collapsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassReason {
    /// The URL recently answered with an uncacheable response.
    Uncacheable,
    /// Too many viewers already wait on this URL's fill.
    WaitingListFull,
}

/// How a hit is answered (it shows in the response's Cache-Status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HitKind {
    /// A fresh stored object from its owner.
    Fresh,
    /// Served stale while a background revalidation runs (`stale-while-revalidate`).
    StaleWhileRevalidate,
    /// A fresh object from this shard's near copy of the owner's answer (`near`).
    NearCopy,
}

/// The owner's answer to a lookup.
pub enum Lookup {
    /// A stored object usable for this request.
    Hit {
        obj: Arc<StoredObject>,
        kind: HitKind,
        /// The time freshness was judged at; the response's Age and TTL are computed from it,
        /// so they agree with the decision (and the hit path reads the clock once).
        at: SystemTime,
    },
    /// Follow this fill. `started` is true when this lookup created it (a plain miss), false when it
    /// joined one already under way (collapsed).
    Follow {
        events: flume::Receiver<FillEvent>,
        started: bool,
    },
    Pass(PassReason),
    /// A fresh object kept only on disk (larger than the RAM tier takes): the owner streams it
    /// from disk (`proxy::disk_stream`) and hands the viewer a `Follow` of that stream.
    Disk(Arc<StoredObject>),
}

/// A fill the caller must start (see `proxy::fill_task`).
pub struct NewFill {
    pub fill: Rc<RefCell<Fill>>,
    /// The stored object being revalidated: the fill sends its validators, a 304 refreshes it, and
    /// it may be served if the origin fails within its stale-if-error allowance.
    /// (A 304 is only expected when the stored object has validators; see `StoredObject::has_validators`.)
    pub stale: Option<Arc<StoredObject>>,
}

/// What the RAM tier holds under a key: an object, or (for a URL whose responses carry `Vary`) the
/// index of its variants, each stored under `CacheKey::variant(generation, values)`. A new generation
/// is taken whenever the index is (re)created, so variants orphaned by an invalidation never become
/// reachable again.
enum Entry {
    Object(Arc<StoredObject>),
    Variants {
        names: Arc<[String]>,
        generation: u64,
    },
}

/// Bytes charged for a variant index entry (names and bookkeeping).
fn index_charge(names: &[String]) -> u64 {
    (names
        .iter()
        .map(|n| n.len() + std::mem::size_of::<String>())
        .sum::<usize>()
        + 64) as u64
}

/// One shard's owned cache state.
pub struct OwnerState {
    ram: RamTier<CacheKey, Entry>,
    next_generation: u64,
    fills: AHashMap<CacheKey, Rc<RefCell<Fill>>>,
    uncacheable: AHashMap<CacheKey, Instant>,
    max_waiters: usize,
    /// This shard's stripe of the disk tier, if one is configured. Holds objects without Vary.
    disk: Option<DiskTier>,
    admission: Admission,
    /// Largest body the RAM tier takes; larger objects live on disk only.
    ram_max_object: u64,
    /// The process-wide key generations (see `near`).
    generations: Arc<Generations>,
}

impl OwnerState {
    pub fn new(
        ram_bytes: u64,
        max_object_bytes: u64,
        max_waiters: usize,
        disk: Option<DiskTier>,
        admission: Admission,
        generations: Arc<Generations>,
    ) -> Self {
        let mut ram = RamTier::new(ram_bytes);
        ram.set_max_object_bytes(max_object_bytes);
        OwnerState {
            ram,
            next_generation: 0,
            fills: AHashMap::new(),
            uncacheable: AHashMap::new(),
            max_waiters,
            disk,
            admission,
            ram_max_object: max_object_bytes,
            generations,
        }
    }

    /// `key`'s generation now: a near copy taken from this shard's answer is valid while it lasts.
    pub fn generation(&self, key: &CacheKey) -> u64 {
        self.generations.current(key)
    }

    /// Looks `key` up for a request with headers `req`. `refresh` skips stored objects without
    /// validation (the viewer asked for an end-to-end reload). On a miss with no fill under way, a fill
    /// is created and returned in the second slot: the caller must start it. A stored object that is
    /// stale (or must be revalidated) and has validators makes that fill a conditional one.
    pub fn lookup(
        &mut self,
        key: &CacheKey,
        req: &Headers,
        refresh: bool,
        now: SystemTime,
    ) -> (Lookup, Option<NewFill>) {
        // A stored partial response only counts for ranges inside it.
        let stored = self
            .find(key, req)
            .filter(|o| o.partial.is_none() || o.covered_range(req).is_some());
        if let Some(obj) = &stored {
            if obj.disk_only {
                // Streamed from disk when fresh; otherwise fetched again whole (a disk-only object
                // has no body in RAM to revalidate in place or to serve stale).
                if !refresh && obj.usable_for(req, now) {
                    return (Lookup::Disk(obj.clone()), None);
                }
                return self.lookup_miss(key, None);
            }
            if !refresh && obj.usable_for(req, now) {
                if self.admission.on == AdmitOn::SecondHit && obj.meta.vary.is_empty() {
                    self.store_on_disk(key, obj);
                }
                return (
                    Lookup::Hit {
                        obj: obj.clone(),
                        kind: HitKind::Fresh,
                        at: now,
                    },
                    None,
                );
            }
        }
        // The stored variant for this request, stale or due for validation: the fill sends its
        // validators (if it has any), a 304 refreshes it, and an origin failure may fall back to it
        // within its stale-if-error allowance.
        let stale = stored.filter(|o| o.meta.vary.matches(req));
        let auth_ok =
            |o: &StoredObject| !req.contains("authorization") || o.shareable_with_authorization();
        if let Some(obj) = &stale {
            if !refresh && auth_ok(obj) && obj.within_stale_while_revalidate(now) {
                // Serve it now; refresh it in the background unless a fill already runs.
                let new_fill = (!self.fills.contains_key(key)).then(|| {
                    let fill = Rc::new(RefCell::new(Fill::new(self.max_waiters)));
                    self.fills.insert(key.clone(), fill.clone());
                    NewFill {
                        fill,
                        stale: Some(obj.clone()),
                    }
                });
                return (
                    Lookup::Hit {
                        obj: obj.clone(),
                        kind: HitKind::StaleWhileRevalidate,
                        at: now,
                    },
                    new_fill,
                );
            }
        }
        self.lookup_miss(key, stale)
    }

    /// The miss half of `lookup`: an uncacheable mark, a fill to join, or a new fill.
    fn lookup_miss(
        &mut self,
        key: &CacheKey,
        stale: Option<Arc<StoredObject>>,
    ) -> (Lookup, Option<NewFill>) {
        if let Some(until) = self.uncacheable.get(key) {
            if *until > Instant::now() {
                return (Lookup::Pass(PassReason::Uncacheable), None);
            }
            self.uncacheable.remove(key);
        }
        if let Some(fill) = self.fills.get(key) {
            return match fill.borrow_mut().subscribe() {
                Some(events) => (
                    Lookup::Follow {
                        events,
                        started: false,
                    },
                    None,
                ),
                None => (Lookup::Pass(PassReason::WaitingListFull), None),
            };
        }
        let fill = Rc::new(RefCell::new(Fill::new(self.max_waiters)));
        let events = fill
            .borrow_mut()
            .subscribe()
            .expect("a new fill has room for its first subscriber");
        self.fills.insert(key.clone(), fill.clone());
        (
            Lookup::Follow {
                events,
                started: true,
            },
            Some(NewFill { fill, stale }),
        )
    }

    /// Ends the fill of `key` for new subscribers (those already following keep receiving).
    pub fn finish_fill(&mut self, key: &CacheKey, fill: &Rc<RefCell<Fill>>) {
        if let Some(f) = self.fills.get(key) {
            if Rc::ptr_eq(f, fill) {
                self.fills.remove(key);
            }
        }
    }

    /// The stored object for `key` that matches `req`'s varying fields, if any.
    fn find(&mut self, key: &CacheKey, req: &Headers) -> Option<Arc<StoredObject>> {
        let Some(entry) = self.ram.get(key) else {
            return self.load_from_disk(key);
        };
        let (names, generation) = match entry {
            Entry::Object(o) => return Some(o.clone()),
            Entry::Variants { names, generation } => (names.clone(), *generation),
        };
        let values: Vec<Option<bytes::Bytes>> = names.iter().map(|n| join_values(req, n)).collect();
        let vk = key.variant(
            generation,
            names
                .iter()
                .map(String::as_str)
                .zip(values.iter().map(|v| v.as_deref())),
        );
        match self.ram.get(&vk)? {
            Entry::Object(o) => Some(o.clone()),
            Entry::Variants { .. } => None,
        }
    }

    /// A disk hit, promoted into the RAM tier; an object too large for RAM comes back as its head
    /// only (`disk_only`), its body to be streamed. A record that fails its checks is dropped (a miss).
    fn load_from_disk(&mut self, key: &CacheKey) -> Option<Arc<StoredObject>> {
        let ram_max = self.ram_max_object;
        let disk = self.disk.as_mut()?;
        let k = key.as_str().as_bytes();
        let loc = disk.lookup(k)?;
        let head = match disk.stream_object(&loc, k) {
            Ok(Some(s)) => Some((
                s.is_chunked() || s.body_len() > ram_max,
                s.meta().clone(),
                s.body_len(),
            )),
            _ => None,
        };
        let obj = match head {
            Some((true, meta, len)) => {
                return match persist::decode_head(&meta, len) {
                    Some(o) => Some(Arc::new(o)),
                    None => {
                        let _ = disk.remove(k);
                        None
                    }
                };
            }
            Some((false, _, _)) => match disk.read_object(&loc, k) {
                Ok(Some(found)) => persist::decode(&found.meta, found.body),
                _ => None,
            },
            None => None,
        };
        let Some(obj) = obj.map(Arc::new) else {
            let _ = disk.remove(key.as_str().as_bytes());
            return None;
        };
        let charge = obj.charge(key.heap_bytes());
        let _ = self
            .ram
            .insert(key.clone(), Entry::Object(obj.clone()), charge);
        Some(obj)
    }

    /// Writes a complete object without Vary to this shard's disk stripe (when there is one and the
    /// object fits). A write error is not fatal for serving: the object stays in RAM.
    fn store_on_disk(&mut self, key: &CacheKey, obj: &StoredObject) {
        use std::sync::atomic::Ordering;
        let Some(disk) = self.disk.as_mut() else {
            return;
        };
        if obj.on_disk.load(Ordering::Relaxed)
            || !self
                .admission
                .admit(obj, disk.max_body_len(), Instant::now())
        {
            return;
        }
        let meta = persist::encode(obj);
        let body = persist::body_bytes(obj);
        if disk.insert(key.as_str().as_bytes(), &meta, &body).is_ok() {
            obj.on_disk.store(true, Ordering::Relaxed);
        }
    }

    /// When `key` is not in RAM but on disk in pages that are not cached, the file span to warm
    /// (asynchronously) before `lookup` reads it, so the read never stalls this core on the device.
    pub fn disk_cold_span(&mut self, key: &CacheKey) -> Option<(std::path::PathBuf, u64, u64)> {
        if self.disk.is_none() || self.ram.contains(key) {
            return None;
        }
        let disk = self.disk.as_mut()?;
        let loc = disk.lookup(key.as_str().as_bytes())?;
        disk.cold_span(&loc)
    }

    /// Like `disk_cold_span`, for the disk record holding body byte `offset` of `key`.
    pub fn disk_cold_span_at(
        &mut self,
        key: &CacheKey,
        offset: u64,
    ) -> Option<(std::path::PathBuf, u64, u64)> {
        let disk = self.disk.as_mut()?;
        let k = key.as_str().as_bytes();
        let loc = disk.lookup(k)?;
        disk.cold_span_at(&loc, k, offset)
    }

    /// Removes `key` from the disk stripe (a tombstone, so it stays gone after a restart).
    fn disk_forget(&mut self, key: &CacheKey) {
        if let Some(d) = self.disk.as_mut() {
            if d.lookup(key.as_str().as_bytes()).is_some() {
                let _ = d.remove(key.as_str().as_bytes());
            }
        }
    }

    pub fn has_disk(&self) -> bool {
        self.disk.is_some()
    }

    /// Queues the disk stripe's write buffer if its oldest byte is older than the flush delay.
    pub fn disk_queue_flush_if_due(&mut self, now: Instant) {
        if let Some(d) = self.disk.as_mut() {
            d.queue_flush_if_due(now);
        }
    }

    /// The next disk write to perform (see `shard::disk_writer`).
    pub fn disk_take_write(&mut self) -> Option<verge_storage::disk::DiskWrite> {
        self.disk.as_mut()?.take_write()
    }

    /// Reports a disk write's outcome.
    pub fn disk_complete_write(
        &mut self,
        id: verge_storage::disk::WriteId,
        result: std::io::Result<()>,
    ) {
        if let Some(d) = self.disk.as_mut() {
            d.complete_write(id, result);
        }
    }

    /// The path of the disk stripe's data file number `i`.
    pub fn disk_file_path(&self, i: usize) -> Option<std::path::PathBuf> {
        self.disk.as_ref()?.file_path(i).map(|p| p.to_path_buf())
    }

    /// Writes out and syncs the disk stripe (at shutdown).
    pub fn sync_disk(&mut self) {
        if let Some(d) = self.disk.as_mut() {
            let _ = d.flush();
            let _ = d.sync();
        }
    }

    /// Stores a complete object (under its variant key when it varies). Returns false if the RAM tier
    /// refused it (too large).
    pub fn store(&mut self, key: CacheKey, obj: Arc<StoredObject>) -> bool {
        self.generations.bump(&key);
        if obj.meta.vary.is_empty() {
            if self.admission.on == AdmitOn::Store {
                self.store_on_disk(&key, &obj);
            }
            // An older version on disk must not come back once RAM evicts this one (RFC 9111 §4:
            // the most recent response is the one to use). With second-hit admission this one is
            // written on its next hit. (A 304 refresh the disk did not take also drops the record,
            // which only held the same body with older headers.)
            if !obj.on_disk.load(std::sync::atomic::Ordering::Relaxed) {
                self.disk_forget(&key);
            }
            let charge = obj.charge(key.heap_bytes());
            return self.insert_or_forget(key, Entry::Object(obj), charge);
        }
        // A varying response replaces whatever single object the disk held for the URL.
        self.disk_forget(&key);
        let names: Arc<[String]> = obj.meta.vary.names().into();
        let generation = match self.ram.peek(&key) {
            Some(Entry::Variants {
                names: n,
                generation,
            }) if *n == names => *generation,
            _ => {
                self.next_generation += 1;
                let charge = index_charge(&names) + key.heap_bytes() as u64;
                let index = Entry::Variants {
                    names: names.clone(),
                    generation: self.next_generation,
                };
                if self.ram.insert(key.clone(), index, charge).is_err() {
                    return false;
                }
                self.next_generation
            }
        };
        let vk = key.variant(
            generation,
            names.iter().map(String::as_str).zip(obj.meta.vary.values()),
        );
        let charge = obj.charge(vk.heap_bytes());
        self.insert_or_forget(vk, Entry::Object(obj), charge)
    }

    /// Inserts into the RAM tier; when it refuses (too large), drops what it held under `key`
    /// instead, so an older version is never served after a newer one arrived.
    fn insert_or_forget(&mut self, key: CacheKey, entry: Entry, charge: u64) -> bool {
        if !self.ram.admits(charge) {
            self.ram.remove(&key);
            return false;
        }
        self.ram.insert(key, entry, charge).is_ok()
    }

    /// Marks `key` uncacheable for `ttl`: requests go to the origin uncollapsed until then.
    pub fn mark_uncacheable(&mut self, key: CacheKey, ttl: Duration) {
        let now = Instant::now();
        if self.uncacheable.len() >= MAX_UNCACHEABLE_MARKS {
            self.uncacheable.retain(|_, until| *until > now);
            if self.uncacheable.len() >= MAX_UNCACHEABLE_MARKS / 2 {
                let mut v: Vec<_> = self.uncacheable.drain().collect();
                v.sort_by_key(|(_, until)| std::cmp::Reverse(*until));
                v.truncate(MAX_UNCACHEABLE_MARKS / 2);
                self.uncacheable.extend(v);
            }
        }
        self.generations.bump(&key);
        self.ram.remove(&key);
        self.disk_forget(&key);
        self.uncacheable.insert(key, now + ttl);
    }

    /// Body bytes `[start, end)` of `key`'s disk-only object, verified; `None` when it is gone or
    /// damaged (a damaged one is dropped).
    pub fn disk_read_range(
        &mut self,
        key: &CacheKey,
        start: u64,
        end: u64,
    ) -> Option<bytes::Bytes> {
        let disk = self.disk.as_mut()?;
        let k = key.as_str().as_bytes();
        let loc = disk.lookup(k)?;
        match disk.read_range(&loc, k, start, end) {
            Ok(Some(r)) => Some(r.body),
            Ok(None) => None,
            Err(_) => {
                let _ = disk.remove(k);
                None
            }
        }
    }

    /// Whether an object of `len` bytes (if known) would be kept on disk only: larger than the RAM
    /// tier takes, within the disk's limit, a disk tier present and today's write budget allowing.
    pub fn wants_disk_only(&mut self, len: Option<u64>) -> bool {
        self.disk.is_some()
            && len.is_none_or(|n| n > self.ram_max_object)
            && self.admission.large_allowed(len)
    }

    /// Starts writing `key` (head `obj`, body to follow) to disk as a chunk chain.
    pub fn begin_disk_only(
        &mut self,
        key: &CacheKey,
        obj: &StoredObject,
    ) -> Option<verge_storage::disk::ChunkedInsert> {
        let disk = self.disk.as_mut()?;
        disk.begin_chunked(key.as_str().as_bytes(), &persist::encode(obj))
            .ok()
    }

    /// Appends body bytes to a disk-only insert; false when it failed (the insert is dead) or the
    /// object grew past the disk's object limit or the write budget.
    pub fn append_disk_only(
        &mut self,
        ins: &mut verge_storage::disk::ChunkedInsert,
        data: &[u8],
    ) -> bool {
        if !self
            .admission
            .charge_large(data.len() as u64, ins.body_len() + data.len() as u64)
        {
            return false;
        }
        match self.disk.as_mut() {
            Some(d) => d.append_chunked(ins, data).is_ok(),
            None => false,
        }
    }

    /// Completes a disk-only insert: the object becomes the stored one for `key` (any RAM copy of
    /// an older version is dropped). False if the write failed.
    pub fn finish_disk_only(
        &mut self,
        key: &CacheKey,
        ins: verge_storage::disk::ChunkedInsert,
    ) -> bool {
        let Some(disk) = self.disk.as_mut() else {
            return false;
        };
        let ok = disk.finish_chunked(ins).is_ok();
        self.generations.bump(key);
        self.ram.remove(key);
        if !ok {
            // An older record of the key must not stand in for the failed one.
            self.disk_forget(key);
        }
        ok
    }

    /// Abandons a disk-only insert (nothing of it becomes reachable).
    pub fn abort_disk_only(&mut self, ins: verge_storage::disk::ChunkedInsert) {
        if let Some(d) = self.disk.as_mut() {
            d.abort_chunked(ins);
        }
    }

    /// Drops the stored response for `key` (after a successful unsafe request).
    pub fn invalidate(&mut self, key: &CacheKey) {
        self.generations.bump(key);
        self.ram.remove(key);
        self.disk_forget(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::object::test_object;
    use verge_storage::DiskConfig;

    /// An owner with a RAM tier of `ram` bytes and a 16 MiB disk stripe in a fresh directory
    /// (removed when the returned guard drops). The disk takes objects of up to `disk_max` bytes.
    fn owner(ram: u64, disk_max: u64) -> (OwnerState, TempDir) {
        let dir = std::env::temp_dir().join(format!(
            "verge-owner-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut dc = DiskConfig::new(vec![(dir.join("stripe.dat"), 16 << 20)]);
        dc.segment_size = 1 << 20;
        let disk = DiskTier::open(dc).unwrap();
        let o = OwnerState::new(
            ram,
            ram,
            100,
            Some(disk),
            Admission::new(AdmitOn::Store, disk_max, 0),
            Arc::new(Generations::new()),
        );
        (o, TempDir(dir))
    }

    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn key(p: &str) -> CacheKey {
        CacheKey::new("http", b"example.com", p.as_bytes())
    }

    fn hit_len(o: &mut OwnerState, k: &CacheKey) -> Option<u64> {
        match o.lookup(k, &Headers::new(), false, SystemTime::now()).0 {
            Lookup::Hit { obj, .. } => Some(obj.body_len),
            _ => None,
        }
    }

    #[test]
    fn an_older_version_on_disk_never_comes_back() {
        let (mut o, _dir) = owner(64 << 10, 2000);
        let k = key("/doc");
        // Version 1 fits the disk's object limit and is written there; version 2 does not.
        assert!(o.store(k.clone(), Arc::new(test_object(1000, false, false))));
        let kb = k.as_str().as_bytes().to_vec();
        let on_disk = |o: &mut OwnerState| o.disk.as_mut().unwrap().lookup(&kb);
        assert!(on_disk(&mut o).is_some(), "version 1 was written to disk");
        assert!(o.store(k.clone(), Arc::new(test_object(3000, false, false))));
        assert!(
            on_disk(&mut o).is_none(),
            "and forgotten there when version 2 came"
        );
        // Push version 2 out of RAM (no lookups: nothing is hot).
        for i in 0..64 {
            o.store(
                key(&format!("/filler/{i}")),
                Arc::new(test_object(4000, false, false)),
            );
        }
        assert!(!o.ram.contains(&k), "version 2 was evicted from RAM");
        assert_eq!(
            hit_len(&mut o, &k),
            None,
            "a miss, not version 1 from disk (RFC 9111 section 4: the most recent response)"
        );
    }

    #[test]
    fn a_version_ram_refuses_does_not_leave_the_older_one_servable() {
        // Nothing goes to disk (its object limit is 10 bytes): only RAM holds versions.
        let (mut o, _dir) = owner(64 << 10, 10);
        let k = key("/big");
        assert!(o.store(k.clone(), Arc::new(test_object(1000, false, false))));
        assert_eq!(hit_len(&mut o, &k), Some(1000));
        assert!(!o.store(k.clone(), Arc::new(test_object(100 << 10, false, false))));
        assert_eq!(hit_len(&mut o, &k), None, "a miss, not version 1");
    }

    #[test]
    fn every_change_of_a_keys_response_bumps_its_generation() {
        let (mut o, _dir) = owner(1 << 20, 1 << 20);
        let k = key("/g");
        let mut last = o.generation(&k);
        let mut changed = |o: &OwnerState, what: &str| {
            let g = o.generation(&k);
            assert_ne!(g, last, "{what} bumps the generation");
            last = g;
        };
        o.store(k.clone(), Arc::new(test_object(10, false, false)));
        changed(&o, "a store");
        o.store(k.clone(), Arc::new(test_object(10, true, false)));
        changed(&o, "a varying store");
        o.invalidate(&k);
        changed(&o, "an invalidation");
        o.mark_uncacheable(k.clone(), Duration::from_secs(1));
        changed(&o, "an uncacheable mark");
        let ins = o
            .begin_disk_only(&k, &test_object(0, false, false))
            .unwrap();
        assert!(o.finish_disk_only(&k, ins));
        changed(&o, "a disk-only object");
        // A lookup does not.
        let g = o.generation(&k);
        let _ = o.lookup(&k, &Headers::new(), false, SystemTime::now());
        assert_eq!(o.generation(&k), g);
    }
}
