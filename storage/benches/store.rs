//! Criterion benchmarks of Verge's object store (`verge-storage`), each standing for one step of
//! the request path or of start-up, measured through the crate's public API:
//!
//! - `store/ram_hit`: a RAM-tier hit, the cheapest way a request is served. `RamTier::get` of a
//!   random key among 100k live 4 KiB entries (S3-FIFO index lookup plus frequency bump; the
//!   value is an `Arc`, so no body copy).
//! - `store/ram_insert`: admitting an origin response into RAM. `RamTier::insert` of a new key
//!   into a tier that is exactly full (100k × 4 KiB), so every insert evicts one entry, in the
//!   steady state of main ≈ 90% / small ≈ 10%.
//! - `store/disk_insert_4k`: writing a 4 KiB object to the disk tier when it leaves RAM (or is
//!   admitted straight to disk). `DiskTier::insert` into a 256 MiB file of 8 MiB segments that has
//!   already wrapped once, so the cost includes, amortised: record encoding and block CRCs, the
//!   1 MiB aggregation-buffer `pwrite`s, sealing a segment every 8 MiB (summary, footer and the
//!   default `fdatasync`) and reclaiming the oldest segment (FIFO eviction).
//! - `store/disk_hit_warm_mmap_4k` / `store/disk_hit_warm_pread_4k`: a disk-tier hit whose bytes
//!   are in the page cache. `DiskTier::read_object` of a random flushed 4 KiB object (locations
//!   looked up beforehand), with `mmap_min_read = 0` (a `mincore` check, then a copy out of the
//!   mapping) and `mmap_min_read = usize::MAX` (always `pread`). Both verify the header CRC, digest,
//!   key and the body block CRC.
//! - `store/disk_hit_cold_64k`: a disk-tier hit that must wait for the device. Before every
//!   iteration (untimed) the data file is `fdatasync`ed and its page cache dropped with
//!   `posix_fadvise(POSIX_FADV_DONTNEED)`; the timed part is one `read_object` of a random 64 KiB
//!   object with the default configuration (`mincore` says "not resident", so it is a `pread`).
//!   This is what the synchronous fallback costs when a server does not warm `cold_span` first.
//! - `store/disk_chunked_insert_16m`: storing a 16 MiB object as a chunk chain, handed over in
//!   64 KiB pieces as an origin body arrives: `begin_chunked`, 256 × `append_chunked`,
//!   `finish_chunked`, into a 512 MiB file of 64 MiB segments (default 4 MiB - 1 KiB chunks) that
//!   has wrapped, so sealing (with its `fdatasync`) and reclaim are included, amortised.
//!   Throughput is body bytes.
//! - `store/disk_chunked_range_64k` / `store/disk_chunked_range_1m`: a range request inside a
//!   flushed 192 MiB chunked object, page cache warm: `stream_range` of 64 KiB or 1 MiB at a random
//!   offset, consumed block by block. Includes reading and checking the head (and its descriptor
//!   block), the index probes for the overlapping chunks, each chunk's header, and every block's
//!   CRC; a range crossing a chunk boundary opens both chunks.
//! - `store/crc32_64k`: `crc32fast` over 64 KiB, the checksum of one default-size body block,
//!   paid on every disk write and every disk read of that block.
//! - `store/recovery_64mib` / `store/recovery_64mib_scan`: start-up. `DiskTier::open` of a
//!   directory holding ~64 MiB of flushed records in 8 MiB segments (32 KiB objects) after a clean
//!   shutdown: eight sealed segments loaded from their summaries plus the open segment scanned,
//!   sealed and a new one opened; `_scan` damages every footer first, as after a crash that lost
//!   them, so every segment is read and fully verified. The file is restored (untimed) before each
//!   iteration, since `open` itself seals and advances segments. Page cache warm: this is the
//!   CPU and syscall cost, not the device's.
//!
//! Run with `cargo bench -p verge-storage --bench store`; add e.g. `-- store/disk_` to run some.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use verge_storage::{DiskConfig, DiskTier, Location, RamTier};

const KIB: usize = 1 << 10;
const MIB: u64 = 1 << 20;
/// The file header in front of the first segment (`format::FILE_HEADER_SIZE`).
const FILE_HEADER: u64 = 4096;
const RAM_ENTRIES: u64 = 100_000;

/// A tiny deterministic PRNG (xorshift64*), so every run uses the same key sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// A cache key shaped like the server's: scheme, host, path.
fn disk_key(i: u64) -> Vec<u8> {
    format!("http|cdn.example.com|/assets/img/{i:08x}.webp").into_bytes()
}

/// Stands for the stored HTTP response head.
fn meta() -> Vec<u8> {
    vec![b'h'; 256]
}

/// One data file of `segments` segments of `segment_size` in `dir`, otherwise defaults.
fn disk_config(dir: &Path, segment_size: u64, segments: u64) -> (DiskConfig, PathBuf) {
    let path = dir.join("stripe-0.data");
    let mut cfg = DiskConfig::new(vec![(path.clone(), FILE_HEADER + segments * segment_size)]);
    cfg.segment_size = segment_size;
    (cfg, path)
}

fn bench_ram(c: &mut Criterion) {
    type Tier = RamTier<u64, Arc<Vec<u8>>>;
    let value = Arc::new(body(4 * KIB));
    let charge = value.len() as u64;
    let cost = charge + Tier::ENTRY_OVERHEAD;
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(1));

    // Inserts of new keys into an exactly full tier: each evicts one entry. Warmed through twice
    // its capacity with every key read once, so the queues are in their steady-state shares.
    {
        let mut tier = Tier::new(cost * RAM_ENTRIES);
        let mut next = 0u64;
        while next < 2 * RAM_ENTRIES {
            tier.insert(next, value.clone(), charge).expect("admitted");
            tier.get(&next);
            next += 1;
        }
        assert_eq!(tier.len() as u64, RAM_ENTRIES);
        g.bench_function("ram_insert", |b| {
            b.iter(|| {
                next += 1;
                tier.insert(next, value.clone(), charge)
            })
        });
    }

    // Hits: room to spare, random keys among 100k live entries.
    {
        let mut tier = Tier::new(cost * RAM_ENTRIES * 2);
        for k in 0..RAM_ENTRIES {
            tier.insert(k, value.clone(), charge).expect("admitted");
        }
        assert_eq!(tier.len() as u64, RAM_ENTRIES);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let order: Vec<u64> = (0..1 << 16).map(|_| rng.next() % RAM_ENTRIES).collect();
        let mut i = 0;
        g.bench_function("ram_hit", |b| {
            b.iter(|| {
                i = (i + 1) & (order.len() - 1);
                tier.get(&order[i]).map(|v| v.len())
            })
        });
    }
    g.finish();
}

fn bench_disk_insert(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, _) = disk_config(dir.path(), 8 * MIB, 32);
    let mut tier = DiskTier::open(cfg).expect("opens");
    let body = body(4 * KIB);
    let meta = meta();
    // A pool of keys larger than the file holds, cycled: each insert is a new key by the time it
    // comes round again (its old record has been reclaimed).
    let keys: Vec<Vec<u8>> = (0..1 << 16).map(disk_key).collect();
    let mut i = 0;
    // Wrap the file once, so the timed inserts also seal and reclaim, as in steady state.
    while tier.stats().segments_reclaimed == 0 {
        i = (i + 1) & (keys.len() - 1);
        tier.insert(&keys[i], &meta, &body).expect("inserts");
    }
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("disk_insert_4k", |b| {
        b.iter(|| {
            i = (i + 1) & (keys.len() - 1);
            tier.insert(&keys[i], &meta, &body).expect("inserts")
        })
    });
    g.finish();
}

/// Looks up every key, returning the keys with their locations.
fn locate(tier: &mut DiskTier, keys: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Location)> {
    keys.into_iter()
        .map(|k| {
            let loc = tier.lookup(&k).expect("indexed");
            (k, loc)
        })
        .collect()
}

fn bench_disk_hit_warm(c: &mut Criterion) {
    const OBJECTS: u64 = 16 << 10; // ~72 MiB of records
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, _) = disk_config(dir.path(), 8 * MIB, 32);
    {
        let mut tier = DiskTier::open(cfg.clone()).expect("opens");
        let (body, meta) = (body(4 * KIB), meta());
        for i in 0..OBJECTS {
            tier.insert(&disk_key(i), &meta, &body).expect("inserts");
        }
        tier.flush().expect("flushes");
    }
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Bytes(4 * KIB as u64));
    for (name, mmap_min_read) in [
        ("disk_hit_warm_mmap_4k", 0),
        ("disk_hit_warm_pread_4k", usize::MAX),
    ] {
        let mut cfg = cfg.clone();
        cfg.mmap_min_read = mmap_min_read;
        let mut tier = DiskTier::open(cfg).expect("reopens");
        assert_eq!(tier.len() as u64, OBJECTS);
        let objects = locate(&mut tier, (0..OBJECTS).map(disk_key).collect());
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let order: Vec<usize> = (0..1 << 16).map(|_| rng.below(objects.len())).collect();
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & (order.len() - 1);
                let (key, loc) = &objects[order[i]];
                let obj = tier.read_object(loc, key).expect("reads").expect("hit");
                obj.body.len()
            })
        });
        let (mmap_reads, io_reads) = tier.read_counts();
        if mmap_min_read == 0 {
            assert!(mmap_reads > 0 && io_reads == 0, "{mmap_reads} / {io_reads}");
        } else {
            assert!(mmap_reads == 0 && io_reads > 0, "{mmap_reads} / {io_reads}");
        }
    }
    g.finish();
}

/// Writes back dirty pages, then drops the file's page cache.
fn drop_page_cache(file: &File) {
    file.sync_data().expect("fdatasync");
    // SAFETY: a plain syscall on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise");
}

fn bench_disk_hit_cold(c: &mut Criterion) {
    const OBJECTS: u64 = 1024; // ~64 MiB of records
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, path) = disk_config(dir.path(), 8 * MIB, 32);
    let mut tier = DiskTier::open(cfg).expect("opens");
    let (body, meta) = (body(64 * KIB), meta());
    for i in 0..OBJECTS {
        tier.insert(&disk_key(i), &meta, &body).expect("inserts");
    }
    tier.sync().expect("syncs");
    let objects = locate(&mut tier, (0..OBJECTS).map(disk_key).collect());
    let file = File::open(&path).expect("opens the data file");
    drop_page_cache(&file);
    assert!(
        objects.iter().all(|(_, loc)| tier.cold_span(loc).is_some()),
        "the page cache was not dropped"
    );
    let mut rng = Rng(0xc2b2_ae3d_27d4_eb4f);
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("disk_hit_cold_64k", |b| {
        b.iter_batched(
            || {
                drop_page_cache(&file);
                &objects[rng.below(objects.len())]
            },
            |(key, loc)| {
                let obj = tier.read_object(loc, key).expect("reads").expect("hit");
                obj.body.len()
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn bench_disk_chunked_insert(c: &mut Criterion) {
    const OBJECT: usize = 16 << 20;
    const PIECE: usize = 64 * KIB;
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, _) = disk_config(dir.path(), 64 * MIB, 8);
    let mut tier = DiskTier::open(cfg).expect("opens");
    let body = body(OBJECT);
    let meta = meta();
    let mut i = 0u64;
    let mut put = |tier: &mut DiskTier| {
        i += 1;
        let mut ins = tier
            .begin_chunked(&disk_key(i % 64), &meta)
            .expect("begins");
        for piece in body.chunks(PIECE) {
            tier.append_chunked(&mut ins, piece).expect("appends");
        }
        tier.finish_chunked(ins).expect("finishes")
    };
    // Wrap the file once, as in steady state.
    while tier.stats().segments_reclaimed == 0 {
        put(&mut tier);
    }
    let mut g = c.benchmark_group("store");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Bytes(OBJECT as u64));
    g.bench_function("disk_chunked_insert_16m", |b| b.iter(|| put(&mut tier)));
    g.finish();
}

fn bench_disk_chunked_range(c: &mut Criterion) {
    const OBJECT: usize = 192 << 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, _) = disk_config(dir.path(), 64 * MIB, 8);
    let mut tier = DiskTier::open(cfg).expect("opens");
    let key = disk_key(1);
    let body = body(OBJECT);
    let mut ins = tier.begin_chunked(&key, &meta()).expect("begins");
    for piece in body.chunks(1 << 20) {
        tier.append_chunked(&mut ins, piece).expect("appends");
    }
    tier.finish_chunked(ins).expect("finishes");
    tier.flush().expect("flushes");
    let loc = tier.lookup(&key).expect("indexed");
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut g = c.benchmark_group("store");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, len) in [
        ("disk_chunked_range_64k", 64 * KIB),
        ("disk_chunked_range_1m", 1 << 20),
    ] {
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let start = rng.below(OBJECT - len) as u64;
                let stream = tier
                    .stream_range(&loc, &key, start, start + len as u64)
                    .expect("opens")
                    .expect("hit");
                let mut n = 0;
                for piece in stream {
                    n += piece.expect("verified").len();
                }
                assert_eq!(n, len);
                n
            })
        });
    }
    g.finish();
}

fn bench_crc(c: &mut Criterion) {
    let block = body(64 * KIB);
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Bytes(block.len() as u64));
    g.bench_function("crc32_64k", |b| {
        b.iter(|| crc32fast::hash(black_box(&block)))
    });
    g.finish();
}

/// Saved copies of the byte ranges of a data file that `DiskTier::open` may write: the file
/// header, the head of every segment (segment header, and the summary of a nearly empty segment
/// sealed by recovery) and the tail of every segment (summary and footer).
struct Snapshot {
    path: PathBuf,
    regions: Vec<(u64, Vec<u8>)>,
}

impl Snapshot {
    const HEAD: u64 = 64 << 10;
    const TAIL: u64 = 256 << 10;

    fn take(path: &Path, segment_size: u64, segments: u64) -> Snapshot {
        let file = File::open(path).expect("opens the data file");
        let mut spans = vec![(0, FILE_HEADER)];
        for s in 0..segments {
            let base = FILE_HEADER + s * segment_size;
            spans.push((base, Self::HEAD));
            spans.push((base + segment_size - Self::TAIL, Self::TAIL));
        }
        let regions = spans
            .into_iter()
            .map(|(off, len)| {
                let mut buf = vec![0u8; len as usize];
                file.read_exact_at(&mut buf, off).expect("reads");
                (off, buf)
            })
            .collect();
        Snapshot {
            path: path.to_path_buf(),
            regions,
        }
    }

    /// Puts the saved bytes back and makes them durable, so the timed `open` only syncs its own
    /// writes.
    fn restore(&self) {
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .expect("opens the data file");
        for (off, buf) in &self.regions {
            file.write_all_at(buf, *off).expect("writes");
        }
        file.sync_data().expect("fdatasync");
    }
}

fn bench_recovery(c: &mut Criterion) {
    const SEGMENT: u64 = 8 * MIB;
    const SEGMENTS: u64 = 12;
    const SEALED: u64 = 8;
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, path) = disk_config(dir.path(), SEGMENT, SEGMENTS);
    let written = {
        let mut tier = DiskTier::open(cfg.clone()).expect("opens");
        let (body, meta) = (body(32 * KIB), meta());
        let mut n = 0;
        while tier.stats().segments_sealed < SEALED {
            tier.insert(&disk_key(n), &meta, &body).expect("inserts");
            n += 1;
        }
        tier.flush().expect("flushes");
        tier.stats().bytes_written
    };
    let clean = Snapshot::take(&path, SEGMENT, SEGMENTS);
    let records = {
        let tier = DiskTier::open(cfg.clone()).expect("reopens");
        let r = tier.recovery_report();
        assert_eq!(r.segments_from_summary as u64, SEALED, "{r:?}");
        r.records
    };

    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(written));
    g.bench_function("recovery_64mib", |b| {
        b.iter_batched(
            || {
                clean.restore();
                cfg.clone()
            },
            |cfg| DiskTier::open(cfg).expect("reopens"),
            BatchSize::PerIteration,
        )
    });

    // Damage every sealed segment's footer, so open scans and verifies all of them.
    clean.restore();
    {
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("opens the data file");
        for s in 0..SEALED {
            let footer = FILE_HEADER + (s + 1) * SEGMENT - 512;
            file.write_all_at(&[0xff; 8], footer)
                .expect("damages the footer");
        }
        file.sync_data().expect("fdatasync");
    }
    let damaged = Snapshot::take(&path, SEGMENT, SEGMENTS);
    {
        let tier = DiskTier::open(cfg.clone()).expect("reopens");
        let r = tier.recovery_report();
        assert_eq!(r.segments_from_summary, 0, "{r:?}");
        assert_eq!(r.records, records, "{r:?}");
    }
    g.bench_function("recovery_64mib_scan", |b| {
        b.iter_batched(
            || {
                damaged.restore();
                cfg.clone()
            },
            |cfg| DiskTier::open(cfg).expect("reopens"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_ram,
    bench_disk_insert,
    bench_disk_hit_warm,
    bench_disk_hit_cold,
    bench_disk_chunked_insert,
    bench_disk_chunked_range,
    bench_crc,
    bench_recovery
);
criterion_main!(benches);
