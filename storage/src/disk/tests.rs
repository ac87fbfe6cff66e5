//! Tests of the disk tier through its public API: round trips over every
//! read path, wrap-around reclaim with reinsertion, model checks with
//! restarts (plain and chunked objects, synchronous and caller-performed
//! writes), corruption of every part of a record, damaged files and torn
//! tails; chunked objects (range reads touching only their chunks,
//! eviction, remove, crashes mid-chain, damaged chunks, lost files); writes
//! performed by the caller (reads in flight, seal ordering, failures,
//! segment reuse). The kill -9 crash test lives in `tests/disk_crash.rs`.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::format::{ALIGN, FILE_HEADER_SIZE};
use super::*;

use crate::test_rng::Rng;

/// Deterministic body of `len` bytes for `(key, version)`.
fn body_for(key: &[u8], version: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(
        u64::from_le_bytes(KeyDigest::of(key).0[..8].try_into().unwrap_or([1; 8])) ^ version | 1,
    );
    (0..len).map(|_| r.next() as u8).collect()
}

const SEG: u64 = 128 << 10;

/// `files` files of `segs` segments each, 4 KiB blocks, small buffer.
fn config(dir: &Path, files: usize, segs: u64) -> DiskConfig {
    let mut cfg = DiskConfig::new(
        (0..files)
            .map(|i| {
                (
                    dir.join(format!("stripe-{i}.data")),
                    FILE_HEADER_SIZE + segs * SEG,
                )
            })
            .collect(),
    );
    cfg.segment_size = SEG;
    cfg.block_size = 4096;
    cfg.write_buffer = 16 << 10;
    cfg.sync_on_seal = false;
    cfg
}

fn read(tier: &mut DiskTier, key: &[u8]) -> Result<Option<DiskObject>> {
    match tier.lookup(key) {
        Some(loc) => tier.read_object(&loc, key),
        None => Ok(None),
    }
}

fn must_read(tier: &mut DiskTier, key: &[u8]) -> DiskObject {
    match read(tier, key) {
        Ok(Some(o)) => o,
        other => panic!("{}: {other:?}", String::from_utf8_lossy(key)),
    }
}

fn flip_byte(path: &Path, at: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open data file");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read byte");
    b[0] ^= 0x5a;
    f.write_all_at(&b, at).expect("write byte");
}

fn sizes() -> Vec<usize> {
    vec![0, 1, 100, 4095, 4096, 4097, 3 * 4096, 50_000, 100_000]
}

fn check_all_paths(tier: &mut DiskTier, key: &[u8], meta: &[u8], body: &[u8]) {
    let loc = tier.lookup(key).expect("indexed");
    let obj = tier
        .read_object(&loc, key)
        .expect("reads")
        .expect("present");
    assert_eq!((&obj.meta[..], &obj.body[..]), (meta, body));
    // Streamed, block by block.
    let stream = tier
        .stream_object(&loc, key)
        .expect("opens")
        .expect("present");
    assert_eq!(stream.meta(), meta);
    assert_eq!(stream.body_len(), body.len() as u64);
    let mut streamed = Vec::new();
    for chunk in stream {
        let chunk = chunk.expect("verified block");
        assert!(chunk.len() <= 4096);
        streamed.extend_from_slice(&chunk);
    }
    assert_eq!(streamed, body);
    // Ranges, whole and streamed.
    let n = body.len() as u64;
    for (s, e) in [
        (0, n),
        (0, 1),
        (1, 4097),
        (4095, 4097),
        (n / 2, n),
        (n, n + 10),
        (3, 2),
        (0, u64::MAX),
    ] {
        let r = tier
            .read_range(&loc, key, s, e)
            .expect("range reads")
            .expect("present");
        let (cs, ce) = (s.min(n) as usize, e.min(n) as usize);
        let want: &[u8] = if cs < ce { &body[cs..ce] } else { &[] };
        assert_eq!(&r.body[..], want, "range {s}..{e} of {n}");
        assert_eq!(r.body_len, n);
        let streamed: Vec<u8> = tier
            .stream_range(&loc, key, s, e)
            .expect("opens")
            .expect("present")
            .flat_map(|c| c.expect("verified").to_vec())
            .collect();
        assert_eq!(streamed, want, "streamed range {s}..{e} of {n}");
    }
    // Another key never reads this record.
    assert_eq!(
        tier.read_object(&loc, b"some other key").expect("reads"),
        None
    );
}

#[test]
fn round_trip_every_read_path_buffer_mapping_and_pread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = sizes()
        .into_iter()
        .enumerate()
        .map(|(i, len)| {
            let key = format!("https://example.com/obj/{i}").into_bytes();
            let meta = format!("HTTP/1.1 200 OK\r\nx-len: {len}\r\n\r\n").into_bytes();
            let body = body_for(&key, 0, len);
            (key, meta, body)
        })
        .collect();
    for mmap_min_read in [0, usize::MAX] {
        let mut cfg = config(dir.path(), 1, 8);
        cfg.mmap_min_read = mmap_min_read;
        let mut tier = DiskTier::open(cfg.clone()).expect("opens");
        for (k, m, b) in &objects {
            tier.insert(k, m, b).expect("inserts");
        }
        // Part of it is still in the aggregation buffer: visible anyway.
        for (k, m, b) in &objects {
            check_all_paths(&mut tier, k, m, b);
        }
        tier.flush().expect("flushes");
        for (k, m, b) in &objects {
            check_all_paths(&mut tier, k, m, b);
        }
        let (mmap, io) = tier.read_counts();
        if mmap_min_read == 0 {
            assert!(mmap > 0, "resident pages read through the mapping");
        } else {
            assert_eq!(mmap, 0);
            assert!(io > 0);
        }
        drop(tier);
        let mut tier = DiskTier::open(cfg).expect("reopens");
        assert_eq!(tier.len(), objects.len());
        for (k, m, b) in &objects {
            check_all_paths(&mut tier, k, m, b);
        }
        // Start clean for the second pass.
        for (k, _, _) in &objects {
            assert!(tier.remove(k).expect("removes"));
        }
    }
}

#[test]
fn replace_and_remove_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 1, 4);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    tier.insert(b"a", b"m1", b"one").expect("inserts");
    tier.insert(b"b", b"m", b"bee").expect("inserts");
    tier.insert(b"a", b"m2", b"two").expect("inserts");
    assert!(tier.remove(b"b").expect("removes"));
    assert!(!tier.remove(b"never").expect("removes"));
    assert_eq!(must_read(&mut tier, b"a").body, &b"two"[..]);
    assert_eq!(read(&mut tier, b"b").expect("reads"), None);
    drop(tier);
    let mut tier = DiskTier::open(cfg).expect("reopens");
    assert_eq!(must_read(&mut tier, b"a").meta, &b"m2"[..]);
    assert_eq!(read(&mut tier, b"b").expect("reads"), None);
    assert_eq!(tier.len(), 1);
}

#[test]
fn too_large_is_refused_and_the_largest_fits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tier = DiskTier::open(config(dir.path(), 1, 4)).expect("opens");
    let max = tier.max_body_len() as usize;
    assert!(matches!(
        tier.insert(b"", b"", &vec![0; max + 1]),
        Err(DiskError::TooLarge { .. })
    ));
    let body = body_for(b"", 0, max);
    tier.insert(b"", b"", &body).expect("largest body fits");
    tier.insert(b"x", b"", b"forces a new segment")
        .expect("inserts");
    assert_eq!(must_read(&mut tier, b"").body, body);
}

#[test]
fn bad_configs_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), 1, 1);
    assert!(matches!(
        DiskTier::open(cfg.clone()),
        Err(DiskError::Config(_))
    ));
    cfg = config(dir.path(), 1, 4);
    cfg.segment_size = 100_000;
    assert!(matches!(
        DiskTier::open(cfg.clone()),
        Err(DiskError::Config(_))
    ));
    cfg = config(dir.path(), 1, 4);
    cfg.block_size = 100;
    assert!(matches!(DiskTier::open(cfg), Err(DiskError::Config(_))));
    let mut cfg = config(dir.path(), 1, 4);
    cfg.files[0].0 = dir.path().join("no/such/dir/file");
    assert!(matches!(DiskTier::open(cfg), Err(DiskError::Io(_))));
}

#[test]
fn wrap_around_reclaims_fifo_and_reinserts_hit_objects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 2, 4); // 8 segments of 128 KiB
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let hot: Vec<Vec<u8>> = (0..8).map(|i| format!("hot/{i}").into_bytes()).collect();
    for k in &hot {
        tier.insert(k, b"hot", &body_for(k, 0, 3000))
            .expect("inserts");
    }
    let mut inserted = Vec::new();
    for i in 0..2000u64 {
        let key = format!("cold/{i}").into_bytes();
        let len = 500 + (i as usize * 37) % 6000;
        tier.insert(&key, b"", &body_for(&key, i, len))
            .expect("inserts");
        inserted.push((key, i, len));
        // Keep the hot set hot.
        if i % 50 == 0 {
            for k in &hot {
                assert!(tier.lookup(k).is_some(), "hot object evicted at {i}");
            }
        }
    }
    let s = tier.stats();
    assert!(s.segments_reclaimed >= 8, "{s:?}");
    assert!(s.reinserted >= 8, "{s:?}");
    assert!(s.evicted > 1000, "{s:?}");
    for k in &hot {
        assert_eq!(must_read(&mut tier, k).body, body_for(k, 0, 3000));
    }
    // FIFO: what is left is a suffix of the cold inserts, read exactly.
    let oldest = tier.oldest_live_seq().expect("has data");
    let mut present = 0;
    for (key, v, len) in &inserted {
        if let Some(obj) = read(&mut tier, key).expect("no corruption") {
            assert_eq!(obj.body, body_for(key, *v, *len));
            present += 1;
        }
    }
    assert!(present > 100 && present < 2000, "{present}");
    let last = &inserted[inserted.len() - 1].0;
    assert!(tier
        .lookup(last)
        .map(|l| l.seq() >= oldest)
        .unwrap_or(false));
    drop(tier);
    let mut tier = DiskTier::open(cfg).expect("reopens");
    for k in &hot {
        assert_eq!(must_read(&mut tier, k).body, body_for(k, 0, 3000));
    }
}

/// Random inserts (plain and chunked, the chunked ones over several
/// segments and handed over in random pieces), replacements, removes,
/// abandoned chunked inserts, lookups and restarts against a model.
/// Allowed: an object whose first record (its first chunk) went into a
/// segment older than the oldest live one may be gone. Never allowed: wrong
/// bytes, a removed key coming back, an abandoned insert becoming visible,
/// a key written into a live segment missing.
#[test]
fn model_check_with_restarts() {
    model_check(false, 0x5eed_1234_abcd, 6000);
}

/// The same with the caller performing the writes, completing them in a
/// random order and keeping some in flight across later operations.
#[test]
fn model_check_with_caller_writes_in_random_order() {
    model_check(true, 0xca11_e7ee, 4000);
}

/// key -> Some((version, len, seq of its first record, chunked)), or None
/// once removed.
type Model = HashMap<u64, Option<(u64, usize, u64, bool)>>;

fn model_check(caller_writes: bool, seed: u64, steps: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), 2, 3);
    cfg.chunk_size = 8 << 10;
    cfg.caller_writes = caller_writes;
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let mut perf = Performer::new(&tier);
    let mut inflight: Vec<DiskWrite> = Vec::new();
    let mut model: Model = HashMap::new();
    let mut rng = Rng(seed);
    let mut chunked_inserts = 0;
    for step in 0..steps {
        let k = rng.below(400);
        let key = format!("key-{k}").into_bytes();
        match rng.below(100) {
            0..=39 => {
                let len = rng.below(9000) as usize;
                let loc = tier
                    .insert(&key, &step.to_le_bytes(), &body_for(&key, step, len))
                    .expect("inserts");
                model.insert(k, Some((step, len, loc.seq(), false)));
            }
            40..=49 => {
                let len = rng.below(200_000) as usize;
                let piece = 1 + rng.below(40_000) as usize;
                let body = body_for(&key, step, len);
                put_chunked(&mut tier, &key, &step.to_le_bytes(), &body, piece)
                    .expect("chunked insert");
                let first = match chunk_location(&tier, &key, 0) {
                    Some(l) => l.seq(),
                    None => tier.lookup(&key).expect("indexed").seq(),
                };
                model.insert(k, Some((step, len, first, true)));
                chunked_inserts += 1;
            }
            50..=59 => {
                tier.remove(&key).expect("removes");
                model.insert(k, None);
            }
            60..=62 => {
                // Abandoned: dropped, or aborted; the model does not change.
                let mut ins = tier.begin_chunked(&key, b"abandoned").expect("begins");
                let body = body_for(&key, step, rng.below(50_000) as usize);
                tier.append_chunked(&mut ins, &body).expect("appends");
                if rng.below(2) == 0 {
                    tier.abort_chunked(ins);
                }
            }
            63..=98 => {}
            _ => {
                // A clean restart: every write handed out completes first.
                for w in inflight.drain(..) {
                    perf.perform(&mut tier, w);
                }
                if rng.below(2) == 0 {
                    tier.flush().expect("flushes");
                }
                drop(tier);
                tier = DiskTier::open(cfg.clone()).expect("reopens");
                perf = Performer::new(&tier);
            }
        }
        if caller_writes {
            if rng.below(4) == 0 {
                tier.queue_flush();
            }
            inflight.extend(std::iter::from_fn(|| tier.take_write()));
            // Complete a random part of what is in flight, in random order.
            for _ in 0..rng.below(inflight.len() as u64 + 1) {
                let w = inflight.swap_remove(rng.below(inflight.len() as u64) as usize);
                perf.perform(&mut tier, w);
            }
        }
        let oldest = tier.oldest_live_seq().unwrap_or(u64::MAX);
        // Check the touched key every step, everything now and then.
        let keys: Vec<u64> = if step % 500 == 0 {
            model.keys().copied().collect()
        } else {
            vec![k]
        };
        for k in keys {
            check_model_key(&mut tier, &model, k, oldest, step);
        }
    }
    assert!(chunked_inserts > steps / 20, "{chunked_inserts}");
}

fn check_model_key(tier: &mut DiskTier, model: &Model, k: u64, oldest: u64, step: u64) {
    let key = format!("key-{k}").into_bytes();
    let got = read(tier, &key).expect("never corrupt");
    match (model.get(&k).copied().flatten(), got) {
        (None, None) => {}
        (None, Some(o)) => panic!(
            "step {step}: removed key-{k} came back ({})",
            String::from_utf8_lossy(&o.meta)
        ),
        (Some((v, len, _, chunked)), Some(obj)) => {
            assert_eq!(
                &obj.meta[..],
                &v.to_le_bytes(),
                "step {step}: stale or abandoned version of key-{k}"
            );
            let body = body_for(&key, v, len);
            assert_eq!(obj.body, body, "step {step}: key-{k}");
            if chunked {
                assert_eq!(
                    stream_all(tier, &key).expect("streams"),
                    Some(body),
                    "step {step}: key-{k} streamed"
                );
            }
        }
        (Some((_, _, seq, _)), None) => {
            assert!(
                seq < oldest,
                "step {step}: key-{k} (seq {seq}) lost, oldest live {oldest}"
            );
        }
    }
}

/// Writes `n` objects, seals their segment by filling the next one, and
/// returns the keys and their exact file spans.
fn sealed_objects(tier: &mut DiskTier, n: usize) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let objs: Vec<_> = (0..n)
        .map(|i| {
            let key = format!("victim/{i}").into_bytes();
            (
                key.clone(),
                format!("meta {i}").into_bytes(),
                body_for(&key, 9, 2000 + i * 1500),
            )
        })
        .collect();
    for (k, m, b) in &objs {
        tier.insert(k, m, b).expect("inserts");
    }
    tier.insert(
        b"filler",
        b"",
        &vec![7; tier.max_body_len() as usize - 1024],
    )
    .expect("seals");
    tier.flush().expect("flushes");
    objs
}

#[test]
fn a_flipped_byte_anywhere_in_a_record_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(77);
    for trial in 0..60 {
        let mut cfg = config(dir.path(), 1, 4);
        cfg.files[0].0 = dir.path().join(format!("t{trial}.data"));
        cfg.mmap_min_read = if trial % 2 == 0 { 0 } else { usize::MAX };
        let mut tier = DiskTier::open(cfg.clone()).expect("opens");
        let objs = sealed_objects(&mut tier, 6);
        let victim = rng.below(6) as usize;
        let loc = tier.lookup(&objs[victim].0).expect("indexed");
        let (path, start, len) = tier.record_span(&loc).expect("span");
        // Alternate between the header+key+meta and anywhere.
        let at = if trial % 3 == 0 {
            start + rng.below(64 + 20)
        } else {
            start + rng.below(len)
        };
        flip_byte(&path, at);
        // Live tier (reads go to the file through pread or the mapping), and
        // after a restart (the segment is sealed: loaded from its summary).
        for reopen in [false, true] {
            if reopen {
                drop(tier);
                tier = DiskTier::open(cfg.clone()).expect("reopens");
            }
            for (i, (k, m, b)) in objs.iter().enumerate() {
                match read(&mut tier, k) {
                    Ok(Some(o)) => {
                        assert_ne!(
                            i,
                            victim,
                            "trial {trial}: damaged record at +{} served",
                            at - start
                        );
                        assert_eq!((&o.meta[..], &o.body[..]), (&m[..], &b[..]));
                    }
                    Ok(None) => assert_eq!(i, victim, "trial {trial}: intact object {i} lost"),
                    Err(DiskError::Corrupt(_)) => assert_eq!(i, victim),
                    Err(e) => panic!("{e}"),
                }
                // Ranges and streams never hand out bad bytes either.
                if i == victim {
                    if let Some(loc) = tier.lookup(k) {
                        if let Ok(Some(r)) = tier.read_range(&loc, k, 0, u64::MAX) {
                            assert_eq!(&r.body[..], &b[..], "trial {trial}: bad range served");
                            assert_eq!(&r.meta[..], &m[..]);
                        }
                        if let Ok(Some(s)) = tier.stream_object(&loc, k) {
                            let mut off = 0;
                            for chunk in s {
                                let Ok(c) = chunk else { break };
                                assert_eq!(
                                    &c[..],
                                    &b[off..off + c.len()],
                                    "trial {trial}: bad block"
                                );
                                off += c.len();
                            }
                        }
                    }
                }
            }
        }
        // The caller drops the damaged entry.
        tier.remove(&objs[victim].0).expect("removes");
        assert_eq!(read(&mut tier, &objs[victim].0).expect("reads"), None);
    }
}

#[test]
fn torn_tail_of_the_open_segment_stops_recovery_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 1, 4);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let keys: Vec<Vec<u8>> = (0..5).map(|i| format!("tail/{i}").into_bytes()).collect();
    for k in &keys {
        tier.insert(k, b"m", &body_for(k, 1, 5000))
            .expect("inserts");
    }
    tier.flush().expect("flushes");
    // Damage the third record's last body block: a write that did not land.
    let loc = tier.lookup(&keys[2]).expect("indexed");
    let (path, start, len) = tier.record_span(&loc).expect("span");
    drop(tier);
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    f.write_all_at(&[0u8; 100], start + len - 200)
        .expect("tear");
    drop(f);
    let mut tier = DiskTier::open(cfg.clone()).expect("reopens");
    assert_eq!(tier.recovery_report().segments_scanned, 1);
    for (i, k) in keys.iter().enumerate() {
        let got = read(&mut tier, k).expect("never corrupt");
        if i < 2 {
            assert_eq!(
                got.expect("intact before the tear").body,
                body_for(k, 1, 5000)
            );
        } else {
            // Never skip ahead: records after the tear are dropped too.
            assert_eq!(got, None, "record {i}");
        }
    }
    // New writes go on; a second restart keeps both the old and the new.
    tier.insert(b"after", b"", b"restart").expect("inserts");
    drop(tier);
    let mut tier = DiskTier::open(cfg).expect("reopens");
    assert_eq!(must_read(&mut tier, b"after").body, &b"restart"[..]);
    assert_eq!(
        must_read(&mut tier, &keys[1]).body,
        body_for(&keys[1], 1, 5000)
    );
}

#[test]
fn a_damaged_summary_falls_back_to_scanning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 1, 4);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let objs = sealed_objects(&mut tier, 4);
    let loc = tier.lookup(&objs[0].0).expect("indexed");
    let (path, seg_start, seg_len) = tier.segment_span(loc.segment()).expect("span");
    drop(tier);
    flip_byte(&path, seg_start + seg_len - ALIGN + 8); // footer's seq
    let mut tier = DiskTier::open(cfg).expect("reopens");
    assert!(tier.recovery_report().segments_scanned >= 1);
    for (k, m, b) in &objs {
        let o = must_read(&mut tier, k);
        assert_eq!((&o.meta[..], &o.body[..]), (&m[..], &b[..]));
    }
}

#[test]
fn missing_truncated_and_mismatched_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 2, 4);
    let mut tier = DiskTier::open(cfg.clone()).expect("creates");
    assert_eq!(tier.recovery_report().files_created, 2);
    let mut keys = Vec::new();
    for i in 0..120u64 {
        let k = format!("f/{i}").into_bytes();
        tier.insert(&k, b"", &body_for(&k, i, 4000))
            .expect("inserts");
        keys.push((k, i));
    }
    drop(tier);
    // Missing file: recreated empty, the other file's objects survive.
    std::fs::remove_file(&cfg.files[1].0).expect("rm");
    let mut tier = DiskTier::open(cfg.clone()).expect("reopens");
    assert_eq!(tier.recovery_report().files_created, 1);
    let mut survivors = 0;
    for (k, i) in &keys {
        if let Some(o) = read(&mut tier, k).expect("never corrupt") {
            assert_eq!(o.body, body_for(k, *i, 4000));
            survivors += 1;
        }
    }
    assert!(survivors > 0);
    drop(tier);
    // Truncated file: what is before the cut survives, nothing is corrupt.
    let f = OpenOptions::new()
        .write(true)
        .open(&cfg.files[0].0)
        .expect("open");
    f.set_len(FILE_HEADER_SIZE + SEG + SEG / 2)
        .expect("truncate");
    drop(f);
    let mut tier = DiskTier::open(cfg.clone()).expect("reopens truncated");
    for (k, i) in &keys {
        if let Some(o) = read(&mut tier, k).expect("never corrupt") {
            assert_eq!(o.body, body_for(k, *i, 4000));
        }
    }
    assert_eq!(
        std::fs::metadata(&cfg.files[0].0).expect("stat").len(),
        cfg.files[0].1
    );
    drop(tier);
    // Changed geometry: the files are reformatted, the tier starts empty.
    let mut other = cfg.clone();
    other.block_size = 8192;
    let tier = DiskTier::open(other).expect("reformats");
    assert_eq!(tier.recovery_report().files_reformatted, 2);
    assert!(tier.is_empty());
}

#[test]
fn maybe_flush_waits_for_the_delay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), 1, 4);
    cfg.flush_delay = std::time::Duration::from_millis(50);
    let mut tier = DiskTier::open(cfg).expect("opens");
    tier.flush().expect("flushes");
    let t0 = std::time::Instant::now();
    tier.insert(b"k", b"", b"v").expect("inserts");
    assert!(!tier.maybe_flush(t0).expect("no flush yet"));
    assert!(tier
        .maybe_flush(t0 + std::time::Duration::from_millis(60))
        .expect("flushes"));
    assert!(!tier
        .maybe_flush(t0 + std::time::Duration::from_secs(9))
        .expect("nothing left"));
}

// ---------------------------------------------------------------------------
// Chunked objects.
// ---------------------------------------------------------------------------

/// Segments of the chunked tests: an object of 1 MiB spans four of them.
const BIG_SEG: u64 = 256 << 10;
const CHUNK: u32 = 32 << 10;

/// `files` files of `segs` segments of 256 KiB, 32 KiB chunks, 4 KiB blocks.
fn chunk_config(dir: &Path, files: usize, segs: u64) -> DiskConfig {
    let mut cfg = config(dir, files, 1);
    for (i, f) in cfg.files.iter_mut().enumerate() {
        *f = (
            dir.join(format!("chunked-{i}.data")),
            FILE_HEADER_SIZE + segs * BIG_SEG,
        );
    }
    cfg.segment_size = BIG_SEG;
    cfg.chunk_size = CHUNK;
    cfg
}

/// Stores `body` as a chunked object, handed over in pieces of `piece`.
fn put_chunked(
    tier: &mut DiskTier,
    key: &[u8],
    meta: &[u8],
    body: &[u8],
    piece: usize,
) -> Result<Location> {
    let mut ins = tier.begin_chunked(key, meta)?;
    for p in body.chunks(piece.max(1)) {
        tier.append_chunked(&mut ins, p)?;
    }
    tier.finish_chunked(ins)
}

/// The whole body through a stream, or the first error.
fn stream_all(tier: &mut DiskTier, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let Some(loc) = tier.lookup(key) else {
        return Ok(None);
    };
    let Some(stream) = tier.stream_object(&loc, key)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for piece in stream {
        out.extend_from_slice(&piece?);
    }
    Ok(Some(out))
}

/// The chain of `key`'s head as the index has it.
fn chain_of(tier: &DiskTier, key: &[u8]) -> index::Chain {
    *tier
        .index
        .chain(KeyDigest::of(key).index_key())
        .expect("a chunked head")
}

/// Location of chunk `i` of `key`'s chain.
fn chunk_location(tier: &DiskTier, key: &[u8], i: u32) -> Option<Location> {
    let e = tier.index.get(chain_of(tier, key).chunk_key(i))?;
    Some(Location {
        seg: e.seg,
        seq: tier.segments.info(e.seg)?.seq,
        offset: e.offset,
        len_hint: e.len_hint(),
    })
}

fn check_chunk_boundaries(tier: &mut DiskTier, key: &[u8], body: &[u8]) {
    let loc = tier.lookup(key).expect("indexed");
    let c = u64::from(tier.chunk_size());
    let n = body.len() as u64;
    for (s, e) in [
        (c - 1, c + 1),
        (c, 2 * c),
        (c - 5000, 3 * c + 7),
        (n.saturating_sub(c + 3), n),
        (2 * c + 100, 2 * c + 101),
    ] {
        let r = tier
            .read_range(&loc, key, s, e)
            .expect("range reads")
            .expect("present");
        let (cs, ce) = (s.min(n) as usize, e.min(n) as usize);
        let want: &[u8] = if cs < ce { &body[cs..ce] } else { &[] };
        assert_eq!(&r.body[..], want, "range {s}..{e} of {n}");
    }
}

#[test]
fn chunked_objects_larger_than_a_segment_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = chunk_config(dir.path(), 1, 16);
    let sizes = [
        0usize,
        1,
        CHUNK as usize - 1,
        CHUNK as usize,
        CHUNK as usize + 1,
        700 << 10,
        (1 << 20) + 4321,
    ];
    let objects: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let key = format!("https://example.com/big/{i}").into_bytes();
            (
                key.clone(),
                format!("meta {i}").into_bytes(),
                body_for(&key, 3, len),
            )
        })
        .collect();
    for mmap_min_read in [0, usize::MAX] {
        cfg.mmap_min_read = mmap_min_read;
        let mut tier = DiskTier::open(cfg.clone()).expect("opens");
        for (j, (k, m, b)) in objects.iter().enumerate() {
            // Pieces smaller than, equal to, and larger than a chunk.
            let piece = [1000, CHUNK as usize, 100_000, usize::MAX][j % 4];
            put_chunked(&mut tier, k, m, b, piece).expect("chunked insert");
        }
        assert_eq!(tier.len(), objects.len());
        let chunks: usize = sizes.iter().map(|s| s.div_ceil(CHUNK as usize)).sum();
        assert_eq!(tier.chunk_entries(), chunks);
        assert_eq!(tier.stats().chunked_inserts, objects.len() as u64);
        for pass in 0..3 {
            if pass == 1 {
                tier.flush().expect("flushes");
            }
            if pass == 2 {
                drop(tier);
                tier = DiskTier::open(cfg.clone()).expect("reopens");
                assert_eq!(tier.len(), objects.len());
                assert_eq!(tier.chunk_entries(), chunks);
                assert_eq!(tier.recovery_report().chains_dropped, 0);
            }
            for (k, m, b) in &objects {
                check_all_paths(&mut tier, k, m, b);
                if b.len() > 3 * CHUNK as usize {
                    check_chunk_boundaries(&mut tier, k, b);
                }
                let loc = tier.lookup(k).expect("indexed");
                let s = tier.stream_object(&loc, k).expect("opens").expect("hit");
                assert!(s.is_chunked());
            }
        }
        for (k, _, _) in &objects {
            assert!(tier.remove(k).expect("removes"));
        }
        assert_eq!((tier.len(), tier.chunk_entries()), (0, 0));
    }
}

/// A `SegmentIo` over a second descriptor of the same file that records
/// every read.
struct CountingIo {
    io: StdFileIo,
    reads: std::rc::Rc<std::cell::RefCell<Vec<(u64, u64)>>>,
}

impl SegmentIo for CountingIo {
    fn write_at(&self, buf: &[u8], off: u64) -> std::io::Result<()> {
        self.io.write_at(buf, off)
    }

    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        self.reads.borrow_mut().push((off, buf.len() as u64));
        self.io.read_at(buf, off)
    }

    fn sync(&self) -> std::io::Result<()> {
        self.io.sync()
    }
}

fn count_reads(
    tier: &mut DiskTier,
    file: usize,
) -> std::rc::Rc<std::cell::RefCell<Vec<(u64, u64)>>> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tier.cfg.files[file].0)
        .expect("opens the data file");
    let reads = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    tier.segments.files[file].io = Box::new(CountingIo {
        io: StdFileIo::new(f),
        reads: reads.clone(),
    });
    reads
}

#[test]
fn range_reads_touch_only_the_chunks_they_need() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = chunk_config(dir.path(), 1, 16);
    cfg.mmap_min_read = usize::MAX; // every read goes through read_at
    let mut tier = DiskTier::open(cfg).expect("opens");
    let key = b"https://example.com/movie.mp4".to_vec();
    let body = body_for(&key, 1, 20 * CHUNK as usize + 1234);
    put_chunked(&mut tier, &key, b"m", &body, 50_000).expect("inserts");
    tier.flush().expect("flushes");
    let reads = count_reads(&mut tier, 0);
    let loc = tier.lookup(&key).expect("indexed");
    let (_, head_start, head_len) = tier.record_span(&loc).expect("head span");
    let spans: Vec<(u64, u64)> = (0..21)
        .map(|i| {
            let l = chunk_location(&tier, &key, i).expect("chunk indexed");
            let (_, s, n) = tier.record_span(&l).expect("chunk span");
            (s, n)
        })
        .collect();
    let c = u64::from(CHUNK);
    for (s, e) in [
        (5 * c + 10, 5 * c + 20),
        (7 * c - 3, 9 * c + 3),
        (20 * c, 21 * c),
    ] {
        reads.borrow_mut().clear();
        let r = tier
            .read_range(&loc, &key, s, e)
            .expect("reads")
            .expect("hit");
        let want = &body[s as usize..(e as usize).min(body.len())];
        assert_eq!(&r.body[..], want);
        let needed: Vec<usize> = ((s / c) as usize..=((e - 1) / c) as usize).collect();
        let mut touched = std::collections::BTreeSet::new();
        for &(off, len) in reads.borrow().iter() {
            if off >= head_start && off + len <= head_start + BIG_SEG.min(4096).max(head_len) {
                continue; // the head (a probe of up to 4 KiB)
            }
            let i = spans
                .iter()
                .position(|&(cs, cn)| off >= cs && off < cs + cn)
                .unwrap_or_else(|| panic!("read at {off} is in no chunk"));
            touched.insert(i);
            // Probes may run past a chunk's end, never past the next one.
            assert!(off + len <= spans[i].0 + spans[i].1.max(4096));
        }
        assert_eq!(
            touched.into_iter().collect::<Vec<_>>(),
            needed,
            "range {s}..{e}"
        );
        // Streams read the same chunks, one block at a time.
        reads.borrow_mut().clear();
        let streamed: Vec<u8> = tier
            .stream_range(&loc, &key, s, e)
            .expect("opens")
            .expect("hit")
            .flat_map(|p| p.expect("verified").to_vec())
            .collect();
        assert_eq!(streamed, want);
        assert!(reads.borrow().iter().all(|&(off, _)| (off >= head_start
            && off < head_start + head_len)
            || needed
                .iter()
                .any(|&i| off >= spans[i].0 && off < spans[i].0 + spans[i].1)));
    }
}

#[test]
fn evicting_chunks_drops_the_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = chunk_config(dir.path(), 1, 8);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let key = b"big".to_vec();
    let body = body_for(&key, 1, 600 << 10); // chunks over three segments
    put_chunked(&mut tier, &key, b"m", &body, 64 << 10).expect("inserts");
    let head = tier.lookup(&key).expect("indexed");
    let first = chunk_location(&tier, &key, 0).expect("chunk 0");
    assert!(first.segment() != head.segment());
    // Write until the segment of chunk 0 is reclaimed but the head's is not.
    let mut i = 0u64;
    while tier.segments.info(first.segment()).map(|s| s.seq) == Some(first.seq()) {
        let k = format!("filler/{i}").into_bytes();
        tier.insert(&k, b"", &body_for(&k, 0, 20_000))
            .expect("inserts");
        i += 1;
    }
    assert_eq!(
        tier.segments.info(head.segment()).map(|s| s.seq),
        Some(head.seq()),
        "the head's segment is still live"
    );
    let before = tier.len();
    assert_eq!(
        tier.lookup(&key),
        None,
        "a head without its chunks is dropped"
    );
    assert_eq!(tier.stats().chains_dropped, 1);
    assert_eq!(tier.len(), before - 1);
    // The stale location reads as damaged or missing, never as bytes.
    assert!(!matches!(tier.read_object(&head, &key), Ok(Some(_))));
    drop(tier);
    let mut tier = DiskTier::open(cfg).expect("reopens");
    assert!(!matches!(stream_all(&mut tier, &key), Ok(Some(_))));
}

#[test]
fn an_object_larger_than_the_store_is_abandoned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = chunk_config(dir.path(), 1, 6);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    tier.insert(b"big", b"v1", b"old").expect("inserts");
    let body = body_for(b"big", 2, 3 << 20); // twice the ring
    let err = put_chunked(&mut tier, b"big", b"v2", &body, 100_000).expect_err("cannot fit");
    assert!(matches!(err, DiskError::Abandoned(_)), "{err}");
    // Whatever is left of "big" is the old version, never a torn new one.
    if let Some(o) = read(&mut tier, b"big").expect("not corrupt") {
        assert_eq!(&o.meta[..], b"v1");
    }
    drop(tier);
    let mut tier = DiskTier::open(cfg).expect("reopens");
    if let Some(o) = read(&mut tier, b"big").expect("not corrupt") {
        assert_eq!(&o.meta[..], b"v1");
    }
}

#[test]
fn remove_and_replace_chunked_objects_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = chunk_config(dir.path(), 1, 16);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let a1 = body_for(b"a", 1, 300_000);
    let b1 = body_for(b"b", 1, 250_000);
    let b2 = body_for(b"b", 2, 90_000);
    put_chunked(&mut tier, b"a", b"a1", &a1, 7777).expect("inserts");
    put_chunked(&mut tier, b"b", b"b1", &b1, 7777).expect("inserts");
    assert!(tier.remove(b"a").expect("removes"));
    put_chunked(&mut tier, b"b", b"b2", &b2, 7777).expect("replaces");
    // Only b2's chunks stay indexed: a replaced chain takes its chunks along.
    assert_eq!(tier.chunk_entries(), b2.len().div_ceil(CHUNK as usize));
    put_chunked(&mut tier, b"c", b"c1", &body_for(b"c", 1, 99_999), 1 << 20).expect("inserts");
    tier.insert(b"c", b"c2", b"plain now").expect("replaces");
    tier.insert(b"d", b"d1", b"plain first").expect("inserts");
    let d2 = body_for(b"d", 2, 123_456);
    put_chunked(&mut tier, b"d", b"d2", &d2, 5000).expect("replaces");
    let check = |tier: &mut DiskTier| {
        assert_eq!(read(tier, b"a").expect("reads"), None);
        assert_eq!(stream_all(tier, b"b").expect("reads"), Some(b2.clone()));
        assert_eq!(&must_read(tier, b"b").meta[..], b"b2");
        assert_eq!(&must_read(tier, b"c").body[..], b"plain now");
        assert_eq!(stream_all(tier, b"d").expect("reads"), Some(d2.clone()));
        assert_eq!(tier.len(), 3);
    };
    check(&mut tier);
    drop(tier);
    let mut tier = DiskTier::open(cfg.clone()).expect("reopens");
    check(&mut tier);
    assert_eq!(tier.recovery_report().chains_dropped, 0);
    // Removing after the restart sticks too.
    assert!(tier.remove(b"b").expect("removes"));
    drop(tier);
    let mut tier = DiskTier::open(cfg).expect("reopens");
    assert_eq!(read(&mut tier, b"b").expect("reads"), None);
}

#[test]
fn a_crash_mid_chain_serves_nothing_of_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = chunk_config(dir.path(), 1, 8);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let v1 = body_for(b"k", 1, 200_000);
    put_chunked(&mut tier, b"k", b"v1", &v1, 10_000).expect("inserts");
    // v2: most chunks written and flushed, no head; then the process dies.
    let v2 = body_for(b"k", 2, 400_000);
    let mut ins = tier.begin_chunked(b"k", b"v2").expect("begins");
    tier.append_chunked(&mut ins, &v2[..350_000])
        .expect("appends");
    assert_eq!(ins.chunks_written(), 10);
    tier.flush().expect("flushes");
    let orphans = tier.chunk_entries() - v1.len().div_ceil(CHUNK as usize);
    assert_eq!(orphans, 10);
    drop(ins);
    drop(tier);
    let mut tier = DiskTier::open(cfg.clone()).expect("reopens");
    assert_eq!(
        stream_all(&mut tier, b"k").expect("reads"),
        Some(v1.clone())
    );
    assert_eq!(&must_read(&mut tier, b"k").meta[..], b"v1");
    assert_eq!(tier.len(), 1);
    // The orphans age out with their segments.
    let mut i = 0u64;
    while tier.stats().segments_reclaimed < 8 {
        let k = format!("filler/{i}").into_bytes();
        tier.insert(&k, b"", &body_for(&k, 0, 30_000))
            .expect("inserts");
        i += 1;
    }
    assert_eq!(tier.chunk_entries(), 0);
    // An aborted insert drops its chunk entries at once.
    let mut ins = tier.begin_chunked(b"z", b"").expect("begins");
    tier.append_chunked(&mut ins, &v2[..100_000])
        .expect("appends");
    assert_eq!(tier.chunk_entries(), 3);
    tier.abort_chunked(ins);
    assert_eq!(tier.chunk_entries(), 0);
    assert_eq!(tier.lookup(b"z"), None);
}

#[test]
fn a_flipped_byte_in_a_chunk_is_never_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(4242);
    for trial in 0..16 {
        let mut cfg = chunk_config(dir.path(), 1, 8);
        cfg.files[0].0 = dir.path().join(format!("flip{trial}.data"));
        cfg.mmap_min_read = if trial % 2 == 0 { 0 } else { usize::MAX };
        let mut tier = DiskTier::open(cfg.clone()).expect("opens");
        let body = body_for(b"obj", trial, 10 * CHUNK as usize + 999);
        put_chunked(&mut tier, b"obj", b"meta", &body, 40_000).expect("inserts");
        tier.insert(b"seal", b"", &vec![1; tier.max_body_len() as usize - 4096])
            .expect("seals");
        tier.flush().expect("flushes");
        let victim = rng.below(11) as u32;
        let loc = chunk_location(&tier, b"obj", victim).expect("chunk");
        let (path, start, len) = tier.record_span(&loc).expect("span");
        flip_byte(&path, start + rng.below(len));
        for reopen in [false, true] {
            if reopen {
                drop(tier);
                tier = DiskTier::open(cfg.clone()).expect("reopens");
            }
            // Whole reads fail; streams fail at the victim, after correct bytes.
            assert!(matches!(
                read(&mut tier, b"obj"),
                Err(DiskError::Corrupt(_))
            ));
            let loc = tier.lookup(b"obj").expect("indexed");
            let stream = tier
                .stream_object(&loc, b"obj")
                .expect("opens")
                .expect("hit");
            let mut off = 0usize;
            let mut failed = false;
            for piece in stream {
                match piece {
                    Ok(p) => {
                        assert_eq!(&p[..], &body[off..off + p.len()], "trial {trial}");
                        off += p.len();
                    }
                    Err(DiskError::Corrupt(_)) => failed = true,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(failed, "trial {trial}: damage in chunk {victim} not caught");
            assert!(off <= (victim as usize + 1) * CHUNK as usize);
            // Ranges that avoid the victim chunk still read.
            let c = u64::from(CHUNK);
            let other = if victim == 0 { 1 } else { victim - 1 };
            let r = tier
                .read_range(
                    &loc,
                    b"obj",
                    u64::from(other) * c,
                    u64::from(other) * c + 100,
                )
                .expect("other chunks verify")
                .expect("hit");
            let o = (u64::from(other) * c) as usize;
            assert_eq!(&r.body[..], &body[o..o + 100]);
        }
        tier.remove(b"obj").expect("removes");
        assert_eq!(tier.lookup(b"obj"), None);
    }
}

#[test]
fn a_lost_or_truncated_file_drops_heads_whose_chunks_were_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = chunk_config(dir.path(), 2, 4); // segments 0-3 in file 0, 4-7 in file 1
    let body = body_for(b"span", 1, 500 << 10);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    // Fill until the writer is in the last segment of file 1, so that the
    // chain starts there and its head lands in file 0 after the wrap.
    let mut i = 0u64;
    while tier.writer.seg != 7 {
        let k = format!("filler/{i}").into_bytes();
        tier.insert(&k, b"", &body_for(&k, 0, 20_000))
            .expect("inserts");
        i += 1;
    }
    put_chunked(&mut tier, b"span", b"m", &body, 65_536).expect("inserts");
    assert!(tier.lookup(b"span").expect("indexed").segment() < 4);
    assert_eq!(
        chunk_location(&tier, b"span", 0)
            .expect("chunk 0")
            .segment(),
        7
    );
    drop(tier);
    let saved = std::fs::read(&cfg.files[1].0).expect("saves file 1");
    // Control: intact, it is served.
    let mut tier = DiskTier::open(cfg.clone()).expect("reopens");
    assert_eq!(
        stream_all(&mut tier, b"span").expect("reads"),
        Some(body.clone())
    );
    drop(tier);
    for damage in ["missing", "truncated"] {
        std::fs::write(&cfg.files[1].0, &saved).expect("restores file 1");
        if damage == "missing" {
            std::fs::remove_file(&cfg.files[1].0).expect("rm");
        } else {
            let f = OpenOptions::new()
                .write(true)
                .open(&cfg.files[1].0)
                .expect("open");
            f.set_len(FILE_HEADER_SIZE + 3 * BIG_SEG + 1000)
                .expect("truncates");
        }
        let mut tier = DiskTier::open(cfg.clone()).expect("reopens");
        assert_eq!(tier.recovery_report().chains_dropped, 1, "{damage}");
        assert_eq!(tier.lookup(b"span"), None, "{damage}");
        drop(tier);
    }
}

#[test]
fn files_of_another_format_version_are_reformatted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 1, 4);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    tier.insert(b"k", b"", b"v").expect("inserts");
    drop(tier);
    // Rewrite the header as version 1 with a valid CRC.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&cfg.files[0].0)
        .expect("open");
    let mut h = [0u8; 68];
    f.read_exact_at(&mut h, 0).expect("reads");
    h[8..10].copy_from_slice(&1u16.to_le_bytes());
    let crc = crc32fast::hash(&h[..64]);
    h[64..68].copy_from_slice(&crc.to_le_bytes());
    f.write_all_at(&h, 0).expect("writes");
    drop(f);
    let mut tier = DiskTier::open(cfg).expect("reformats");
    assert_eq!(tier.recovery_report().files_reformatted, 1);
    assert!(tier.is_empty());
    assert_eq!(read(&mut tier, b"k").expect("reads"), None);
}

// ---------------------------------------------------------------------------
// Writes performed by the caller (`caller_writes`), and failed writes.
// ---------------------------------------------------------------------------

/// Plays the server: performs handed-out writes on its own descriptors.
struct Performer {
    files: Vec<std::fs::File>,
}

impl Performer {
    fn new(tier: &DiskTier) -> Self {
        let files = (0..tier.cfg.files.len())
            .map(|i| {
                OpenOptions::new()
                    .write(true)
                    .open(tier.file_path(i).expect("file"))
                    .expect("opens the data file")
            })
            .collect();
        Performer { files }
    }

    fn perform(&self, tier: &mut DiskTier, w: DiskWrite) {
        let f = &self.files[w.file];
        if w.sync_before {
            f.sync_data().expect("fdatasync");
        }
        f.write_all_at(&w.data, w.offset).expect("writes");
        assert!(tier.complete_write(w.id, Ok(())));
    }

    /// Performs writes until none may start.
    fn drain(&self, tier: &mut DiskTier) {
        while let Some(w) = tier.take_write() {
            self.perform(tier, w);
        }
    }
}

fn take_all(tier: &mut DiskTier) -> Vec<DiskWrite> {
    std::iter::from_fn(|| tier.take_write()).collect()
}

fn caller_config(dir: &Path, segs: u64) -> DiskConfig {
    let mut cfg = config(dir, 1, segs);
    cfg.caller_writes = true;
    cfg
}

#[test]
fn caller_writes_stay_readable_until_completed_in_any_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = caller_config(dir.path(), 4);
    cfg.mmap_min_read = 0;
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let perf = Performer::new(&tier);
    // About 90 KiB: several writes, no seal yet.
    let objs: Vec<(Vec<u8>, Vec<u8>)> = (0..20)
        .map(|i| {
            let k = format!("async/{i}").into_bytes();
            let b = body_for(&k, 1, 3000 + i * 150);
            (k, b)
        })
        .collect();
    for (k, b) in &objs {
        tier.insert(k, b"m", b).expect("inserts");
    }
    let (queued, bytes) = tier.pending_writes();
    assert!(queued >= 5 && bytes >= 5 * (16 << 10), "{queued} {bytes}");
    let mut inflight = take_all(&mut tier);
    assert_eq!(inflight.len(), queued, "data writes may all start at once");
    assert!(inflight.iter().all(|w| !w.sync_before && w.file == 0));
    // Nothing has reached the file: the first write's span is still zeros.
    let raw = std::fs::read(&cfg.files[0].0).expect("reads the file");
    let w0 = &inflight[0];
    assert!(raw[w0.offset as usize..w0.offset as usize + w0.data.len()]
        .iter()
        .all(|&b| b == 0));
    let check = |tier: &mut DiskTier| {
        for (k, b) in &objs {
            assert_eq!(&must_read(tier, k).body[..], &b[..]);
            let loc = tier.lookup(k).expect("indexed");
            let streamed: Vec<u8> = tier
                .stream_object(&loc, k)
                .expect("opens")
                .expect("hit")
                .flat_map(|p| p.expect("verified").to_vec())
                .collect();
            assert_eq!(&streamed, b);
        }
    };
    check(&mut tier);
    let first = tier.lookup(&objs[0].0).expect("indexed");
    assert_eq!(tier.cold_span(&first), None, "in flight means in memory");
    let stale = inflight[0].id;
    // Completion in reverse order, reading everything after each one.
    while let Some(w) = inflight.pop() {
        perf.perform(&mut tier, w);
        check(&mut tier);
    }
    assert!(!tier.complete_write(stale, Ok(())), "completed once only");
    // The tail of the buffer, queued explicitly.
    assert!(tier.queue_flush());
    perf.drain(&mut tier);
    assert_eq!(tier.pending_writes(), (0, 0));
    check(&mut tier);
    drop(tier);
    cfg.caller_writes = false;
    let mut tier = DiskTier::open(cfg).expect("reopens");
    assert_eq!(tier.len(), objs.len());
    check(&mut tier);
}

#[test]
fn a_footer_waits_for_its_segment_and_its_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = caller_config(dir.path(), 4);
    cfg.sync_on_seal = true;
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let perf = Performer::new(&tier);
    let mut keys = Vec::new();
    let mut i = 0u64;
    while tier.stats().segments_sealed == 0 {
        let k = format!("seal/{i}").into_bytes();
        tier.insert(&k, b"", &body_for(&k, 0, 5000))
            .expect("inserts");
        keys.push(k);
        i += 1;
    }
    let seg0_end = FILE_HEADER_SIZE + SEG;
    let mut inflight = take_all(&mut tier);
    assert!(inflight.len() > 3);
    assert!(
        inflight.iter().all(|w| !w.sync_before),
        "no footer before its data"
    );
    // Complete all but one of segment 0's writes: still no footer.
    let last = inflight
        .iter()
        .rposition(|w| w.offset < seg0_end)
        .expect("a write of segment 0");
    let held = inflight.remove(last);
    for w in inflight {
        perf.perform(&mut tier, w);
    }
    let more = take_all(&mut tier);
    assert!(more.iter().all(|w| !w.sync_before));
    for w in more {
        perf.perform(&mut tier, w);
    }
    // Records of the held write read from memory meanwhile.
    for k in &keys {
        assert_eq!(must_read(&mut tier, k).body, body_for(k, 0, 5000));
    }
    perf.perform(&mut tier, held);
    let seal = tier.take_write().expect("the seal may start now");
    assert!(
        seal.sync_before,
        "sync_on_seal: fdatasync before the footer"
    );
    assert_eq!(
        seal.offset + seal.data.len() as u64,
        seg0_end,
        "summary + footer end the segment"
    );
    perf.perform(&mut tier, seal);
    tier.queue_flush();
    perf.drain(&mut tier);
    drop(tier);
    let mut tier = DiskTier::open(cfg).expect("reopens");
    assert_eq!(tier.recovery_report().segments_from_summary, 1);
    for k in &keys {
        assert_eq!(must_read(&mut tier, k).body, body_for(k, 0, 5000));
    }
}

/// What a failed write must leave: records that overlapped it unreachable
/// (a chunked object losing a chunk or its head is gone whole), everything
/// else intact, a remove that was in it still durable, and the same after a
/// restart.
#[test]
fn a_failed_write_leaves_nothing_torn_reachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = caller_config(dir.path(), 6);
    cfg.chunk_size = 2048;
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let perf = Performer::new(&tier);
    tier.insert(b"gone", b"", b"removed in the failed write")
        .expect("inserts");
    tier.queue_flush();
    perf.drain(&mut tier);
    // Plain objects around a chunked one and a remove, all in flight.
    let mut plain = Vec::new();
    for i in 0..6 {
        let k = format!("p/{i}").into_bytes();
        let loc = tier
            .insert(&k, b"", &body_for(&k, 0, 2500 + i * 700))
            .expect("inserts");
        plain.push((k, loc));
    }
    let chained = body_for(b"chain", 0, 20_000);
    put_chunked(&mut tier, b"chain", b"c", &chained, 3000).expect("chunked");
    let head = tier.lookup(b"chain").expect("indexed");
    let chain_spans: Vec<(u64, u64)> = (0..chain_of(&tier, b"chain").chunks)
        .map(|i| chunk_location(&tier, b"chain", i).expect("chunk"))
        .chain(Some(head))
        .map(|l| {
            let (_, s, n) = tier.record_span(&l).expect("span");
            (s, n)
        })
        .collect();
    let tomb_at = FILE_HEADER_SIZE + tier.writer.cursor; // segment 0
    assert!(tier.remove(b"gone").expect("removes"));
    for i in 6..12 {
        let k = format!("p/{i}").into_bytes();
        let loc = tier
            .insert(&k, b"", &body_for(&k, 0, 2500 + i * 700))
            .expect("inserts");
        plain.push((k, loc));
    }
    tier.queue_flush();
    let inflight = take_all(&mut tier);
    let victim = inflight
        .iter()
        .position(|w| w.offset <= tomb_at && tomb_at < w.offset + w.data.len() as u64)
        .expect("the tombstone's write");
    let (vs, ve) = (
        inflight[victim].offset,
        inflight[victim].offset + inflight[victim].data.len() as u64,
    );
    let overlaps = |(s, n): (u64, u64)| s < ve && s + n > vs;
    let chain_hit = chain_spans.iter().any(|&sp| overlaps(sp));
    assert!(
        chain_hit,
        "the scenario puts part of the chain in the failed write"
    );
    let spans: Vec<(u64, u64)> = plain
        .iter()
        .map(|(_, l)| {
            let (_, s, n) = tier.record_span(l).expect("span");
            (s, n)
        })
        .collect();
    let sealed_before = tier.stats().segments_sealed;
    for (i, w) in inflight.into_iter().enumerate() {
        if i == victim {
            assert!(tier.complete_write(w.id, Err(std::io::Error::other("EIO"))));
        } else {
            perf.perform(&mut tier, w);
        }
    }
    assert_eq!(tier.stats().write_errors, 1);
    assert_eq!(
        tier.stats().segments_sealed,
        sealed_before + 1,
        "damaged segment sealed"
    );
    let check = |tier: &mut DiskTier| {
        for ((k, _), &sp) in plain.iter().zip(&spans) {
            let got = read(tier, k).expect("never corrupt");
            if overlaps(sp) {
                assert_eq!(
                    got,
                    None,
                    "{}: torn record reachable",
                    String::from_utf8_lossy(k)
                );
            } else {
                let i: usize = String::from_utf8_lossy(&k[2..]).parse().expect("index");
                assert_eq!(got.expect("intact").body, body_for(k, 0, 2500 + i * 700));
            }
        }
        assert_eq!(
            tier.lookup(b"chain"),
            None,
            "a chain missing a chunk is gone"
        );
        assert_eq!(read(tier, b"gone").expect("reads"), None, "remove stays");
    };
    check(&mut tier);
    // New writes go to the next segment; then a clean restart.
    tier.insert(b"after", b"", b"still fine").expect("inserts");
    tier.queue_flush();
    perf.drain(&mut tier);
    assert_eq!(tier.pending_writes(), (0, 0));
    drop(tier);
    cfg.caller_writes = false;
    let mut tier = DiskTier::open(cfg).expect("reopens");
    assert_eq!(
        tier.recovery_report().segments_from_summary,
        1,
        "the damaged segment's summary"
    );
    check(&mut tier);
    assert_eq!(&must_read(&mut tier, b"after").body[..], b"still fine");
}

/// A `SegmentIo` whose next `fail` writes fail.
struct FaultyIo {
    io: StdFileIo,
    fail: std::rc::Rc<std::cell::Cell<u32>>,
}

impl SegmentIo for FaultyIo {
    fn write_at(&self, buf: &[u8], off: u64) -> std::io::Result<()> {
        if self.fail.get() > 0 {
            self.fail.set(self.fail.get() - 1);
            return Err(std::io::Error::other("injected EIO"));
        }
        self.io.write_at(buf, off)
    }

    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        self.io.read_at(buf, off)
    }

    fn sync(&self) -> std::io::Result<()> {
        self.io.sync()
    }
}

#[test]
fn a_failed_pwrite_in_the_synchronous_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 1, 6);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&cfg.files[0].0)
        .expect("opens");
    let fail = std::rc::Rc::new(std::cell::Cell::new(0));
    tier.segments.files[0].io = Box::new(FaultyIo {
        io: StdFileIo::new(f),
        fail: fail.clone(),
    });
    tier.insert(b"before", b"", &body_for(b"before", 0, 3000))
        .expect("inserts");
    tier.flush().expect("flushes");
    tier.insert(b"lost", b"", &body_for(b"lost", 0, 3000))
        .expect("buffered");
    fail.set(1);
    assert!(matches!(tier.flush(), Err(DiskError::Io(_))));
    assert_eq!(tier.lookup(b"lost"), None, "its write failed");
    assert_eq!(tier.stats().write_errors, 1);
    tier.insert(b"after", b"", &body_for(b"after", 0, 3000))
        .expect("inserts");
    assert_eq!(
        must_read(&mut tier, b"before").body,
        body_for(b"before", 0, 3000)
    );
    assert_eq!(
        must_read(&mut tier, b"after").body,
        body_for(b"after", 0, 3000)
    );
    drop(tier);
    let mut tier = DiskTier::open(cfg).expect("reopens");
    assert_eq!(read(&mut tier, b"lost").expect("never corrupt"), None);
    assert_eq!(
        must_read(&mut tier, b"before").body,
        body_for(b"before", 0, 3000)
    );
    assert_eq!(
        must_read(&mut tier, b"after").body,
        body_for(b"after", 0, 3000)
    );
}

#[test]
fn a_reused_segment_waits_for_writes_of_its_previous_life() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = caller_config(dir.path(), 3);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let perf = Performer::new(&tier);
    let seg0 = FILE_HEADER_SIZE..FILE_HEADER_SIZE + SEG;
    tier.insert(b"first", b"", &body_for(b"first", 0, 20_000))
        .expect("inserts");
    // Hold a write of segment 0's first life.
    let held = tier.take_write().expect("a write");
    assert!(seg0.contains(&held.offset));
    let first_seq = tier.writer.seq;
    let mut i = 0u64;
    let mut live = Vec::new();
    let mut after_reuse = 0;
    while after_reuse < 10 {
        let k = format!("wrap/{i}").into_bytes();
        tier.insert(&k, b"", &body_for(&k, i, 6000))
            .expect("inserts");
        live.push((k, i));
        i += 1;
        let reused = tier.segments.info(0).map(|s| s.seq) != Some(first_seq);
        after_reuse += usize::from(reused);
        while let Some(w) = tier.take_write() {
            assert!(
                !(reused && seg0.contains(&w.offset)),
                "a write of segment 0 started while its previous life's write is in flight"
            );
            perf.perform(&mut tier, w);
        }
    }
    assert!(tier.pending_writes().0 >= 2, "segment 0's new life waits");
    // Segment 0's new life is readable from memory meanwhile.
    let (k, v) = live.last().expect("inserted").clone();
    assert_eq!(tier.lookup(&k).map(|l| l.segment()), Some(0));
    assert_eq!(must_read(&mut tier, &k).body, body_for(&k, v, 6000));
    perf.perform(&mut tier, held);
    let next = tier.take_write().expect("segment 0 may be written now");
    assert!(seg0.contains(&next.offset));
    perf.perform(&mut tier, next);
    tier.queue_flush();
    perf.drain(&mut tier);
    drop(tier);
    let mut tier = DiskTier::open(cfg).expect("reopens");
    let oldest = tier.oldest_live_seq().expect("data");
    let mut present = 0;
    for (k, v) in &live {
        if let Some(o) = read(&mut tier, k).expect("never corrupt") {
            assert_eq!(o.body, body_for(k, *v, 6000));
            present += 1;
        }
    }
    assert!(present > 0 && oldest > first_seq);
}

#[test]
fn a_cursor_streams_across_mutations_and_notices_reclaim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = chunk_config(dir.path(), 1, 8);
    let mut tier = DiskTier::open(cfg).expect("opens");
    let body = body_for(b"film", 1, 600 << 10);
    put_chunked(&mut tier, b"film", b"m", &body, 100_000).expect("inserts");
    // Whole body, with the tier written to between pieces.
    let loc = tier.lookup(b"film").expect("indexed");
    let mut cur = tier
        .cursor_range(&loc, b"film", 0, u64::MAX)
        .expect("opens")
        .expect("hit");
    assert!(cur.is_chunked());
    assert_eq!(cur.remaining(), body.len() as u64);
    let mut got = Vec::new();
    let mut n = 0u64;
    while let Some(piece) = tier.read_next(&mut cur) {
        got.extend_from_slice(&piece.expect("verified"));
        let k = format!("small/{n}").into_bytes();
        tier.insert(&k, b"", &body_for(&k, 0, 1000))
            .expect("inserts");
        n += 1;
    }
    assert_eq!(got, body);
    // A cursor whose chunk is reclaimed under it errs, never returns bytes.
    let loc = tier.lookup(b"film").expect("indexed");
    let mut cur = tier
        .cursor_range(&loc, b"film", 10, 20_000)
        .expect("opens")
        .expect("hit");
    let first = tier
        .read_next(&mut cur)
        .expect("a piece")
        .expect("verified");
    assert_eq!(&first[..], &body[10..10 + first.len()]);
    let chunk0 = chunk_location(&tier, b"film", 0).expect("chunk 0");
    while tier.segments.info(chunk0.segment()).map(|s| s.seq) == Some(chunk0.seq()) {
        let k = format!("filler/{n}").into_bytes();
        tier.insert(&k, b"", &body_for(&k, 0, 20_000))
            .expect("inserts");
        n += 1;
    }
    assert!(matches!(
        tier.read_next(&mut cur),
        Some(Err(DiskError::Corrupt(_)))
    ));
    assert!(
        tier.read_next(&mut cur).is_none(),
        "finished after an error"
    );
}
