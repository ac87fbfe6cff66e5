//! The disk tier: an append-only, segment-structured object store on
//! preallocated files, read through a residency-checked read-only mapping.
//!
//! Owns: the [`DiskTier`] facade tying together the files and segment table
//! (`segments`), the RAM index (`index`), the writer (`writer`), chunked
//! inserts of large objects (`chunked`), the read paths (`reader`) and
//! start-up recovery (`recovery`). The byte format is
//! in `format`, the stable key digest in `digest`, the writes not yet
//! completed in `queue`, the syscalls behind the [`SegmentIo`] trait in
//! `io`, and `mincore` in `resident`.
//!
//! Single-threaded: one tier per owning shard, no locks. Keys, meta and
//! bodies are opaque bytes; the server stores the HTTP head in `meta`.
//!
//! Objects of any size: up to [`DiskTier::max_body_len`] as one `Object`
//! record ([`DiskTier::insert`]), or of any size as a chain of `Chunk`
//! records followed by a `ChunkedHead` record written last
//! ([`DiskTier::begin_chunked`], `append_chunked`, `finish_chunked`). The
//! head carries the key, meta, body length, chunk size, chunk count and a
//! per-insert random nonce; chunk `i` is indexed under a digest derived from
//! (key digest, nonce, `i`), so chunks of another insert of the same key
//! can never be combined with this head. Reads of either kind go through
//! the same calls and touch only the chunks and blocks a range needs.
//!
//! Writes: appending never does I/O; the aggregation buffer becomes a queued
//! write when full or flushed. By default every mutation then performs the
//! queued writes itself (`pwrite`, `fdatasync` before footers). With
//! [`DiskConfig::caller_writes`] the caller performs them instead, e.g. with
//! io_uring: [`DiskTier::take_write`] hands out an owned buffer with its file
//! and offset, [`DiskTier::complete_write`] reports the outcome; a written
//! byte stays readable from memory until then, a footer is handed out only
//! after every other write of its segment completed (flagged to be preceded
//! by `fdatasync` under `sync_on_seal`), and a failed write makes the
//! records it held unreachable. A typical loop on the serving thread:
//!
//! ```no_run
//! # fn run(tier: &mut verge_storage::DiskTier) -> verge_storage::disk::Result<()> {
//! tier.queue_flush_if_due(std::time::Instant::now());
//! while let Some(w) = tier.take_write() {
//!     // Submit `w.data` at `w.offset` of `tier.file_path(w.file)` (after
//!     // an fdatasync if `w.sync_before`), and when it completes:
//!     let result: std::io::Result<()> = Ok(());
//!     tier.complete_write(w.id, result);
//! }
//! # Ok(()) }
//! ```
//!
//! Invariants:
//! - the index holds at most one entry per 64-bit index key, pointing at the
//!   newest `Object` or `ChunkedHead` record of that key, or at a `Chunk`,
//!   in a non-free segment;
//! - every record reachable from the index is fully inside its segment and
//!   was completely appended (in memory — buffer or write queue — or on
//!   disk) before it became reachable, and no write of it has failed; a
//!   head is appended only after all its chunks, and only if all of them
//!   are still indexed;
//! - a head is served only if its chunks are all indexed: recovery drops
//!   heads with any chunk missing (holes come from damage or lost segments),
//!   and so does a failed write; otherwise chunks leave the index only by
//!   FIFO reclaim, which frees segments oldest first, so chunk 0 (the
//!   oldest) is indexed exactly when all are, and `lookup` checks the first
//!   and last chunk and drops the head when one is gone. A chunk that fails
//!   its checks on read is `Corrupt`, like any record;
//! - reclaim never copies chunks or chunked heads forward: a chunked object
//!   ages out whole (its chunks are older than its head, so copying the
//!   head alone would only keep a head whose chunks are about to go);
//! - nothing is ever written through the mapping, and no data file is
//!   truncated or hole-punched while open;
//! - a removed key stays removed across restarts: `remove` always appends a
//!   tombstone, and a tombstone stays in its segment's summary even if its
//!   own write failed;
//! - eviction is FIFO over segments: the oldest segment is reclaimed when
//!   the writer needs the space, dropping its entries except objects hit
//!   since their last write, which are copied forward (bounded per segment).

mod chunked;
mod digest;
mod error;
mod format;
mod index;
mod io;
mod queue;
mod reader;
mod recovery;
mod resident;
mod segments;
mod writer;

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use chunked::ChunkedInsert;
pub use digest::KeyDigest;
pub use error::{DiskError, Result};
pub use format::{RecordKind, ALIGN, FORMAT_VERSION};
pub use index::{DiskIndex, EntryRole, IndexEntry};
pub use io::{SegmentIo, StdFileIo};
pub use queue::{DiskWrite, WriteId};
pub use reader::{BodyCursor, DiskObject, DiskRange, ObjectStream};
pub use recovery::RecoveryReport;

use format::{RecordLayout, FILE_HEADER_SIZE, SEG_FOOTER_SIZE, SEG_HEADER_SIZE, SUMMARY_ENTRY_LEN};
use segments::Segments;
use writer::Writer;

/// How a [`DiskTier`] lays out and writes its files.
#[derive(Clone, Debug)]
pub struct DiskConfig {
    /// Data files and their sizes in bytes. Each is preallocated to its size
    /// and cut into `(size - 4096) / segment_size` segments.
    pub files: Vec<(PathBuf, u64)>,
    /// Segment size in bytes, a multiple of [`ALIGN`] (default 64 MiB).
    pub segment_size: u64,
    /// Body bytes per CRC-checked block (default 64 KiB).
    pub block_size: u32,
    /// `maybe_flush` writes the aggregation buffer once its oldest byte is
    /// this old (default 1 s).
    pub flush_delay: Duration,
    /// Aggregation buffer size in bytes (default 1 MiB).
    pub write_buffer: usize,
    /// Reads shorter than this never use the mapping (default 64 KiB): the
    /// copy costs less than the `mincore` call and skips its race.
    pub mmap_min_read: usize,
    /// `fdatasync` before writing a segment's footer, so a sealed footer
    /// never reaches the disk before the records it describes (default on).
    /// With `caller_writes`, the footer's write is flagged `sync_before`.
    pub sync_on_seal: bool,
    /// Body bytes per chunk of a chunked object. 0 (the default) picks the
    /// largest size of which 16 chunk records fill a segment: 4 MiB - 1 KiB
    /// with 64 MiB segments. Otherwise at least 512, and a chunk record must
    /// fit in an empty segment.
    pub chunk_size: u32,
    /// The caller performs the writes ([`DiskTier::take_write`],
    /// [`DiskTier::complete_write`]): mutations never write. `flush`,
    /// `maybe_flush`, `sync` and dropping the tier still write whatever is
    /// queued synchronously. Default off: every mutation writes its full
    /// buffers with `pwrite` before returning.
    pub caller_writes: bool,
}

impl DiskConfig {
    /// Defaults for everything but the files.
    pub fn new(files: Vec<(PathBuf, u64)>) -> Self {
        DiskConfig {
            files,
            segment_size: 64 << 20,
            block_size: 64 << 10,
            flush_delay: Duration::from_secs(1),
            write_buffer: 1 << 20,
            mmap_min_read: 64 << 10,
            sync_on_seal: true,
            chunk_size: 0,
            caller_writes: false,
        }
    }

    /// Largest aligned record that fits in an empty segment.
    fn max_record_len(&self) -> u64 {
        (self.segment_size - SEG_HEADER_SIZE - SUMMARY_ENTRY_LEN - SEG_FOOTER_SIZE) / ALIGN * ALIGN
    }

    /// Aligned length of a chunk record holding `body_len` bytes.
    fn chunk_record_len(&self, body_len: u64) -> u64 {
        RecordLayout {
            key_len: digest::CHUNK_NAME_LEN as u32,
            meta_len: 0,
            body_len,
            block_size: self.block_size,
        }
        .aligned_len()
    }

    /// The chunk size in use: `chunk_size`, or the automatic one.
    fn effective_chunk_size(&self) -> u32 {
        if self.chunk_size != 0 {
            return self.chunk_size;
        }
        const PER_SEGMENT: u64 = 16;
        let room = self.segment_size
            - SEG_HEADER_SIZE
            - SEG_FOOTER_SIZE
            - PER_SEGMENT * 2 * SUMMARY_ENTRY_LEN;
        let per = room / PER_SEGMENT / ALIGN * ALIGN;
        let mut body = per / ALIGN * ALIGN;
        while body > ALIGN && self.chunk_record_len(body) > per {
            body -= ALIGN;
        }
        u32::try_from(body).unwrap_or(u32::MAX / 2)
    }

    fn validate(&self) -> Result<()> {
        let bad = |why: &str| Err(DiskError::Config(why.to_string()));
        if self.files.is_empty() {
            return bad("no data files");
        }
        if self.segment_size % ALIGN != 0 || self.segment_size < 64 << 10 {
            return bad("segment_size must be a multiple of 512 and at least 64 KiB");
        }
        if self.segment_size > IndexEntry::MAX_OFFSET || self.segment_size > u64::from(u32::MAX) {
            return bad("segment_size too large for the index entry");
        }
        if self.block_size < 512 || u64::from(self.block_size) > self.segment_size / 4 {
            return bad("block_size must be at least 512 and at most segment_size / 4");
        }
        if self.write_buffer < ALIGN as usize {
            return bad("write_buffer must be at least 512 bytes");
        }
        if self.chunk_size != 0
            && (self.chunk_size < ALIGN as u32
                || self.chunk_record_len(u64::from(self.chunk_size)) > self.max_record_len())
        {
            return bad("chunk_size must be at least 512 and a chunk record must fit in a segment");
        }
        let mut segments = 0;
        for (path, size) in &self.files {
            let Some(n) = size
                .checked_sub(FILE_HEADER_SIZE)
                .map(|s| s / self.segment_size)
            else {
                return bad(&format!("{} is smaller than its header", path.display()));
            };
            segments += n;
        }
        if segments < 2 {
            return bad("the files must hold at least two segments");
        }
        Ok(())
    }
}

/// Where a record is: returned by [`DiskTier::lookup`] and `insert`, valid
/// until its segment is reclaimed (reads then answer a miss).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    seg: u32,
    seq: u64,
    offset: u64,
    len_hint: u64,
}

impl Location {
    /// Global segment number.
    pub fn segment(&self) -> u32 {
        self.seg
    }

    /// Sequence number of the segment generation holding the record.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Byte offset of the record inside its segment.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// Counters of the write side, monotonically increasing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    pub inserts: u64,
    pub removes: u64,
    /// Aligned record bytes appended (reinsertions included).
    pub bytes_written: u64,
    pub segments_sealed: u64,
    pub segments_reclaimed: u64,
    /// Index entries dropped by reclaim.
    pub evicted: u64,
    /// Hit objects copied forward by reclaim.
    pub reinserted: u64,
    /// Chunk records appended.
    pub chunks_written: u64,
    /// Chunked objects completed (heads written).
    pub chunked_inserts: u64,
    /// Heads dropped at lookup because a chunk was gone.
    pub chains_dropped: u64,
    /// Writes that failed (their records were made unreachable).
    pub write_errors: u64,
}

/// Counters of the read side (interior mutability: reads take `&self`).
#[derive(Debug, Default)]
struct ReadStats {
    mmap_reads: Cell<u64>,
    io_reads: Cell<u64>,
}

/// The disk tier of one shard.
pub struct DiskTier {
    cfg: DiskConfig,
    chunk_size: u32,
    segments: Segments,
    index: DiskIndex,
    writer: Writer,
    next_seq: u64,
    stats: DiskStats,
    read_stats: ReadStats,
    recovery: RecoveryReport,
}

impl DiskTier {
    /// Opens (creating or recovering) the files of `cfg`. See the
    /// `recovery` module for what is trusted and what is dropped.
    pub fn open(cfg: DiskConfig) -> Result<Self> {
        cfg.validate()?;
        let mut report = RecoveryReport::default();
        let started = Instant::now();
        let mut segments = recovery::open_files(&cfg, &mut report)?;
        let mut index = DiskIndex::new();
        let (newest, next_seq) = recovery::rebuild(&cfg, &mut segments, &mut index, &mut report)?;
        let mut tier = DiskTier {
            writer: Writer::new(cfg.write_buffer),
            chunk_size: cfg.effective_chunk_size(),
            cfg,
            segments,
            index,
            next_seq,
            stats: DiskStats::default(),
            read_stats: ReadStats::default(),
            recovery: report,
        };
        let first = newest.map_or(0, |s| tier.segments.next(s));
        tier.open_segment(first)?;
        tier.recovery.elapsed = started.elapsed();
        Ok(tier)
    }

    /// Stores `key` with `meta` and `body`, replacing any older version
    /// (plain or chunked). The record is visible to lookups at once and
    /// reaches the file when its buffer fills or at the next flush. An
    /// error from a write (this record's or an earlier one's) is returned;
    /// the records that write held are no longer reachable.
    pub fn insert(&mut self, key: &[u8], meta: &[u8], body: &[u8]) -> Result<Location> {
        let loc = self
            .append_record(RecordKind::Object, key, meta, body, true)?
            .ok_or(DiskError::Corrupt("record did not fit an empty segment"))?;
        self.stats.inserts += 1;
        self.settle()?;
        Ok(loc)
    }

    /// Removes `key` (also after a restart: a tombstone is written). Returns
    /// whether the index held it. Call it when a read returns `Corrupt`.
    pub fn remove(&mut self, key: &[u8]) -> Result<bool> {
        let had = self.index.remove(KeyDigest::of(key).index_key()).is_some();
        self.append_record(RecordKind::Tombstone, key, &[], &[], true)?;
        self.stats.removes += 1;
        self.settle()?;
        Ok(had)
    }

    /// Finds where `key`'s newest record is (for a chunked object, its
    /// head), and marks it hit (a hit object survives reclaim once). A `Some`
    /// may still read as a miss if another key shares the 64-bit index key.
    /// A chunked object whose first or last chunk has been evicted is
    /// dropped here and answers `None`.
    pub fn lookup(&mut self, key: &[u8]) -> Option<Location> {
        let ikey = KeyDigest::of(key).index_key();
        let e = self.index.get(ikey)?;
        match e.role {
            EntryRole::Object => {}
            // Another key's chunk shares the 64-bit index key: a miss.
            EntryRole::Chunk => return None,
            EntryRole::ChunkedHead => {
                if !self.chain_ends_indexed(ikey) {
                    self.index.remove(ikey);
                    self.stats.chains_dropped += 1;
                    return None;
                }
            }
        }
        let seq = self.segments.info(e.seg)?.seq;
        self.index.mark_hit(ikey);
        Some(Location {
            seg: e.seg,
            seq,
            offset: e.offset,
            len_hint: e.len_hint(),
        })
    }

    /// Writes out the aggregation buffer and every queued write, with
    /// `pwrite` on this thread (writes already taken by the caller stay the
    /// caller's, and a footer waiting for them stays queued).
    pub fn flush(&mut self) -> Result<()> {
        self.writer.close_buf();
        self.write_queue_sync()
    }

    /// Flushes if the oldest buffered byte is older than `flush_delay`.
    /// Returns whether it flushed.
    pub fn maybe_flush(&mut self, now: Instant) -> Result<bool> {
        if !self.flush_due(now) {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    /// Flushes and makes every file durable.
    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        for f in &self.segments.files {
            f.io.sync()?;
        }
        Ok(())
    }

    fn flush_due(&self, now: Instant) -> bool {
        matches!(self.writer.buf_since,
            Some(t) if now.saturating_duration_since(t) >= self.cfg.flush_delay)
    }

    /// Moves the aggregation buffer into the write queue (for
    /// [`DiskTier::take_write`]) without writing it. Returns whether it held
    /// anything.
    pub fn queue_flush(&mut self) -> bool {
        self.writer.close_buf()
    }

    /// [`DiskTier::queue_flush`] if the oldest buffered byte is older than
    /// `flush_delay`. Returns whether it queued.
    pub fn queue_flush_if_due(&mut self, now: Instant) -> bool {
        self.flush_due(now) && self.writer.close_buf()
    }

    /// The next write the caller may start now: an owned buffer, its data
    /// file number and offset, and whether to `fdatasync` the file first.
    /// Until it is reported with [`DiskTier::complete_write`] its bytes stay
    /// readable from memory. Several writes may be in flight at once, in
    /// any completion order; the tier holds back those that must wait (a
    /// footer for its segment's other writes, a reused segment for writes
    /// of its previous life). Call again after each completion.
    pub fn take_write(&mut self) -> Option<DiskWrite> {
        self.writer.queue.take(self.cfg.segment_size)
    }

    /// Reports the outcome of a write from [`DiskTier::take_write`]. On
    /// error the records that the write overlapped become unreachable (with
    /// the heads of chunked objects that lose a chunk) and are left out of
    /// the segment's summary. Returns false if `id` was not outstanding.
    pub fn complete_write(&mut self, id: WriteId, result: std::io::Result<()>) -> bool {
        self.finish_write(id, result.is_ok())
    }

    /// Writes queued or in flight, and their bytes.
    pub fn pending_writes(&self) -> (usize, usize) {
        (self.writer.queue.len(), self.writer.queue.bytes())
    }

    /// Path of data file number `file` (as in [`DiskWrite::file`]).
    pub fn file_path(&self, file: usize) -> Option<&Path> {
        self.cfg.files.get(file).map(|(p, _)| p.as_path())
    }

    /// Number of indexed objects (plain or chunked; chunks not counted).
    pub fn len(&self) -> usize {
        self.index.object_len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of indexed chunk records.
    pub fn chunk_entries(&self) -> usize {
        self.index.chunk_len()
    }

    /// Bytes of RAM held by the index (slots, chunks' included, and the
    /// chain table). Divided by [`DiskTier::len`] this is the per-object
    /// cost including chunked objects' chunk slots.
    pub fn index_bytes(&self) -> usize {
        self.index.memory_bytes()
    }

    pub fn stats(&self) -> DiskStats {
        self.stats
    }

    /// Reads served from the mapping and through `read_at`.
    pub fn read_counts(&self) -> (u64, u64) {
        (
            self.read_stats.mmap_reads.get(),
            self.read_stats.io_reads.get(),
        )
    }

    /// What `open` found.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Smallest `seq` of a segment still holding data: objects inserted into
    /// a segment with `seq >= oldest_live_seq()` have not been evicted.
    pub fn oldest_live_seq(&self) -> Option<u64> {
        self.segments.oldest_live_seq()
    }

    /// Largest body (with an empty key and meta) one record can hold.
    pub fn max_body_len(&self) -> u64 {
        let bs = u64::from(self.cfg.block_size);
        let room = self.max_record_len() - format::RECORD_HEADER_LEN;
        room - room.div_ceil(bs + format::BLOCK_CRC_LEN) * format::BLOCK_CRC_LEN
    }

    /// The data file and byte span `[start, start + len)` of the record at
    /// `loc` (exact length, no padding). For tests and tools that inspect
    /// or damage the files.
    #[doc(hidden)]
    pub fn record_span(&self, loc: &Location) -> Option<(PathBuf, u64, u64)> {
        let (file, start) = self.segments.locate(loc.seg, loc.offset)?;
        let mut hb = [0u8; format::RECORD_HEADER_LEN as usize];
        self.read_span(loc.seg, loc.offset, &mut hb).ok()?;
        let hdr = format::RecordHeader::decode_unchecked(&hb)?;
        Some((file.path.clone(), start, hdr.layout.total_len()))
    }

    /// Byte span of segment `seg` in its file, and that file's path.
    #[doc(hidden)]
    pub fn segment_span(&self, seg: u32) -> Option<(PathBuf, u64, u64)> {
        let (file, start) = self.segments.locate(seg, 0)?;
        Some((file.path.clone(), start, self.cfg.segment_size))
    }
}

impl Drop for DiskTier {
    /// Best effort: a clean shutdown keeps buffered records. A failure here
    /// only loses cache contents, which recovery tolerates.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
