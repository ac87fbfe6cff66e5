//! Recovery throughput (run with `cargo test --release --test
//! disk_recovery_speed -- --ignored --nocapture`): fills 1 GiB of 64 MiB
//! segments with 32 KiB objects, then times a restart that loads summaries
//! and one that has to scan every segment (footers damaged). Page cache
//! warm: this measures CPU cost (CRC, parsing, index), not the device.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use verge_storage::{DiskConfig, DiskTier};

#[test]
#[ignore]
fn recovery_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seg: u64 = 64 << 20;
    let segs = 17;
    let path = dir.path().join("stripe-0.data");
    let mut cfg = DiskConfig::new(vec![(path.clone(), 4096 + segs * seg)]);
    cfg.sync_on_seal = false;
    let mut tier = DiskTier::open(cfg.clone()).expect("opens");
    let body: Vec<u8> = (0..32 << 10).map(|i| (i * 7 + 3) as u8).collect();
    let meta = vec![b'h'; 300];
    let t = Instant::now();
    let mut n = 0u64;
    // Fill every segment but the open one and the free reserve.
    while tier.stats().segments_sealed < segs - 1 {
        tier.insert(
            format!("https://example.com/o/{n}").as_bytes(),
            &meta,
            &body,
        )
        .expect("inserts");
        n += 1;
    }
    tier.flush().expect("flushes");
    let write = t.elapsed();
    let written = tier.stats().bytes_written;
    drop(tier);
    println!(
        "write: {n} objects, {:.2} GB in {:.2?} = {:.2} GB/s",
        written as f64 / 1e9,
        write,
        written as f64 / 1e9 / write.as_secs_f64()
    );

    let tier = DiskTier::open(cfg.clone()).expect("reopens");
    let r = tier.recovery_report().clone();
    drop(tier);
    println!(
        "recover from summaries: {} segments (+{} scanned), {} records, {:.2} GB of records in {:.2?} = {:.1} GB/s",
        r.segments_from_summary,
        r.segments_scanned,
        r.records,
        r.bytes_summarised as f64 / 1e9,
        r.elapsed,
        r.bytes_summarised as f64 / 1e9 / r.elapsed.as_secs_f64()
    );

    // Damage every footer so every segment is scanned and fully verified.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    for i in 0..segs {
        f.write_all_at(&[0xff; 8], 4096 + (i + 1) * seg - 512)
            .expect("damage footer");
    }
    drop(f);
    let tier = DiskTier::open(cfg).expect("reopens");
    let r = tier.recovery_report().clone();
    println!(
        "recover by scanning: {} segments, {} records, {:.2} GB read in {:.2?} = {:.2} GB/s",
        r.segments_scanned,
        r.records,
        r.bytes_scanned as f64 / 1e9,
        r.elapsed,
        r.bytes_scanned as f64 / 1e9 / r.elapsed.as_secs_f64()
    );
    assert_eq!(r.segments_from_summary, 0);
    assert!(r.records > 20_000, "{r:?}");
}
