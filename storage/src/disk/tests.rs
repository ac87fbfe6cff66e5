//! Tests of the disk tier through its public API: round trips over every
//! read path, wrap-around reclaim with reinsertion, a model check with
//! restarts, corruption of every part of a record, damaged files and torn
//! tails. The kill -9 crash test lives in `tests/disk_crash.rs`.

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

/// Random inserts, replacements, removes, lookups and restarts against a
/// model. Allowed: an object older than the oldest live segment may be gone.
/// Never allowed: wrong bytes, a removed key coming back, a key inserted
/// into a live segment missing.
#[test]
fn model_check_with_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), 2, 3);
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    // key -> Some((version, len, seq written)) or None if removed.
    let mut model: HashMap<u64, Option<(u64, usize, u64)>> = HashMap::new();
    let mut rng = Rng(0x5eed_1234_abcd);
    for step in 0..6000u64 {
        let k = rng.below(400);
        let key = format!("key-{k}").into_bytes();
        match rng.below(100) {
            0..=49 => {
                let len = rng.below(9000) as usize;
                let loc = tier
                    .insert(&key, &step.to_le_bytes(), &body_for(&key, step, len))
                    .expect("inserts");
                model.insert(k, Some((step, len, loc.seq())));
            }
            50..=59 => {
                tier.remove(&key).expect("removes");
                model.insert(k, None);
            }
            60..=98 => {}
            _ => {
                if rng.below(2) == 0 {
                    tier.flush().expect("flushes");
                }
                drop(tier);
                tier = DiskTier::open(cfg.clone()).expect("reopens");
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
            let key = format!("key-{k}").into_bytes();
            let got = read(&mut tier, &key).expect("never corrupt");
            match (model.get(&k).copied().flatten(), got) {
                (None, None) => {}
                (None, Some(_)) => panic!("step {step}: removed key-{k} came back"),
                (Some((v, len, _)), Some(obj)) => {
                    assert_eq!(
                        &obj.meta[..],
                        &v.to_le_bytes(),
                        "step {step}: stale version of key-{k}"
                    );
                    assert_eq!(obj.body, body_for(&key, v, len));
                }
                (Some((_, _, seq)), None) => {
                    assert!(
                        seq < oldest,
                        "step {step}: key-{k} (seq {seq}) lost, oldest live {oldest}"
                    );
                }
            }
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
