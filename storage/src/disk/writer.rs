//! The segment writer: the aggregation buffer, record encoding, sealing,
//! FIFO reclaim with reinsertion of hit objects, and the two ways writes
//! reach the files (the tier's own `pwrite`s, or the caller's).
//!
//! Owns: the open segment's write cursor, its unqueued bytes, the summary
//! entries of the records appended to it so far, and the write queue
//! (`queue`) of everything appended but not yet written.
//!
//! Invariants:
//! - `buf` holds exactly the bytes `[buf_start, buf_start + buf.len())` of
//!   the open segment, which end at `cursor` between records; everything
//!   before `buf_start` has been queued. Readers see `buf` and the queue
//!   (appended bytes are visible to lookups at once);
//! - `cursor` is `ALIGN`-aligned and there is always room after it for the
//!   summary of every record so far (`summary_slots` slots) plus one more
//!   entry, and the footer; the seal writes the summary just before the
//!   footer, at the end of the segment;
//! - a record's index entry is published only after the whole record is in
//!   `buf` or the queue;
//! - the segment after the open one in ring order is kept free (reclaimed
//!   as soon as a segment opens), so reinserted objects always have a
//!   destination that is not the segment being reclaimed;
//! - reinsertion never seals a segment, so reclaim never recurses: it stops
//!   when the open segment is full or half a segment has been reinserted;
//! - only `Object` records are reinserted: chunks and chunked heads are
//!   dropped by reclaim (a chunked object ages out whole, see `mod.rs`);
//! - appending never does I/O. A full `buf` becomes a queued write; with
//!   `DiskConfig::caller_writes` off, every public mutation ends by writing
//!   the queue out with `pwrite` (`settle`), so the synchronous path is the
//!   asynchronous one driven to completion on the spot;
//! - a failed write makes the records it overlapped unreachable at once
//!   (with the heads of chains that lose a chunk; a failed segment header
//!   counts as the whole generation), and they are left out of the
//!   segment's summary (tombstones excepted, see `queue`). A segment that
//!   suffered a failed write is sealed at once, so the records after the
//!   damage are summarised rather than cut off by recovery's scan.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

use super::digest::KeyDigest;
use super::error::{DiskError, Result};
use super::format::{
    block_crc, ChainDescriptor, RecordHeader, RecordKind, RecordLayout, SegmentFooter,
    SegmentHeader, SummaryEntry, ALIGN, SEG_FOOTER_SIZE, SEG_HEADER_SIZE, SUMMARY_ENTRY_LEN,
};
use super::index::{Chain, EntryRole, IndexEntry};
use super::io::SegmentIo;
use super::queue::{Sealing, WriteId, WriteQueue};
use super::segments::SegState;
use super::{DiskTier, Location};

/// The open segment's append state and the write queue.
pub struct Writer {
    /// False between sealing a segment and opening the next (only seen
    /// after an error there): the next append opens a segment first.
    pub open: bool,
    pub seg: u32,
    pub seq: u64,
    /// The open segment's data file, its file offset and the file's id.
    pub file: usize,
    pub base: u64,
    pub file_id: [u8; 16],
    pub cursor: u64,
    pub buf: BytesMut,
    pub buf_start: u64,
    /// When the oldest unqueued byte was buffered.
    pub buf_since: Option<Instant>,
    pub summary: Vec<SummaryEntry>,
    /// Summary slots `summary` takes (a head takes two).
    pub summary_slots: u64,
    /// Byte ranges of the open segment whose write failed.
    pub failed: Vec<(u64, u64)>,
    pub capacity: usize,
    pub queue: WriteQueue,
}

impl Writer {
    pub fn new(capacity: usize) -> Self {
        Writer {
            open: false,
            seg: 0,
            seq: 0,
            file: 0,
            base: 0,
            file_id: [0; 16],
            cursor: 0,
            buf: BytesMut::with_capacity(capacity),
            buf_start: 0,
            buf_since: None,
            summary: Vec::new(),
            summary_slots: 0,
            failed: Vec::new(),
            capacity,
            queue: WriteQueue::default(),
        }
    }

    /// Whether a record of `aligned_len` bytes fits, leaving room for the
    /// summary (with the record's `slots`) and the footer.
    pub fn fits(&self, aligned_len: u64, slots: u64, segment_size: u64) -> bool {
        let summary = (self.summary_slots + slots) * SUMMARY_ENTRY_LEN;
        self.cursor + aligned_len + summary + SEG_FOOTER_SIZE <= segment_size
    }

    /// End of the open segment's appended bytes.
    pub fn mem_end(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    fn push(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.buf.is_empty() {
                self.buf_since = Some(Instant::now());
                // Takes the previous buffer back once its write completed.
                self.buf.reserve(self.capacity);
            }
            let room = self.capacity.saturating_sub(self.buf.len()).max(1);
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buf.extend_from_slice(now);
            if self.buf.len() >= self.capacity {
                self.close_buf();
            }
            rest = later;
        }
    }

    fn pad_to(&mut self, end: u64) {
        const ZEROS: [u8; ALIGN as usize] = [0; ALIGN as usize];
        let have = self.mem_end();
        self.push(&ZEROS[..(end - have) as usize]);
    }

    /// Moves the buffer into the write queue; returns whether it held bytes.
    pub fn close_buf(&mut self) -> bool {
        if self.buf.is_empty() {
            return false;
        }
        let data = self.buf.split().freeze();
        let len = data.len() as u64;
        self.queue.push_data(
            self.seg,
            self.seq,
            self.file,
            self.base,
            self.buf_start,
            data,
        );
        self.buf_start += len;
        self.buf_since = None;
        true
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl DiskTier {
    /// Largest aligned record that fits in an empty segment.
    pub(super) fn max_record_len(&self) -> u64 {
        self.cfg.max_record_len()
    }

    /// Appends one record; `None` if it does not fit and `may_seal` is false.
    /// The body of a `ChunkedHead` must be its encoded [`ChainDescriptor`].
    pub(super) fn append_record(
        &mut self,
        kind: RecordKind,
        key: &[u8],
        meta: &[u8],
        body: &[u8],
        may_seal: bool,
    ) -> Result<Option<Location>> {
        let too_large = || DiskError::TooLarge {
            len: body.len() as u64,
            max: 0,
        };
        let layout = RecordLayout {
            key_len: u32::try_from(key.len()).map_err(|_| too_large())?,
            meta_len: u32::try_from(meta.len()).map_err(|_| too_large())?,
            body_len: body.len() as u64,
            block_size: self.cfg.block_size,
        };
        let aligned = layout.aligned_len();
        if aligned > self.max_record_len() {
            return Err(DiskError::TooLarge {
                len: aligned,
                max: self.max_record_len(),
            });
        }
        let chain = match kind {
            RecordKind::ChunkedHead => Some(ChainDescriptor::decode(body).ok_or(
                DiskError::Corrupt("chunked head without a valid descriptor"),
            )?),
            _ => None,
        };
        let slots = kind.summary_slots();
        if !self.writer.open || !self.writer.fits(aligned, slots, self.cfg.segment_size) {
            if !may_seal {
                return Ok(None);
            }
            self.seal_and_advance()?;
        }
        let digest = KeyDigest::of(key);
        let (seg, offset) = (self.writer.seg, self.writer.cursor);
        self.encode_record(kind, &digest, &layout, key, meta, body);
        self.writer.cursor += aligned;
        self.writer.summary.push(SummaryEntry {
            digest,
            offset,
            len: layout.total_len(),
            kind,
            chain,
        });
        self.writer.summary_slots += slots;
        self.stats.bytes_written += aligned;
        let ikey = digest.index_key();
        let entry = |role| IndexEntry {
            seg,
            offset,
            size_class: IndexEntry::size_class_for(aligned),
            hit: false,
            role,
        };
        match (kind, chain) {
            (RecordKind::Object, _) => {
                self.index.insert(ikey, entry(EntryRole::Object));
            }
            (RecordKind::Chunk, _) => {
                self.index.insert(ikey, entry(EntryRole::Chunk));
            }
            (RecordKind::ChunkedHead, Some(c)) => {
                let chain = Chain {
                    digest,
                    nonce: c.nonce,
                    chunks: c.chunks,
                };
                self.index
                    .insert_head(ikey, entry(EntryRole::ChunkedHead), chain);
            }
            (RecordKind::Tombstone, _) | (RecordKind::ChunkedHead, None) => {
                self.index.remove(ikey);
            }
        }
        Ok(Some(Location {
            seg,
            seq: self.writer.seq,
            offset,
            len_hint: entry(EntryRole::Object).len_hint(),
        }))
    }

    fn encode_record(
        &mut self,
        kind: RecordKind,
        digest: &KeyDigest,
        layout: &RecordLayout,
        key: &[u8],
        meta: &[u8],
        body: &[u8],
    ) {
        let w = &mut self.writer;
        let header = RecordHeader::encode(kind, w.seq, w.cursor, digest, layout, &[key, meta]);
        let header_crc = u32::from_le_bytes([header[60], header[61], header[62], header[63]]);
        w.push(&header);
        w.push(key);
        w.push(meta);
        for (i, block) in body.chunks(layout.block_size as usize).enumerate() {
            w.push(block);
            w.push(&block_crc(header_crc, i as u64, block).to_le_bytes());
        }
        let end = w.cursor + layout.aligned_len();
        w.pad_to(end);
    }

    /// Seals the open segment and opens the next one.
    pub(super) fn seal_and_advance(&mut self) -> Result<()> {
        if self.writer.open {
            self.seal_open();
        }
        let next = self.segments.next(self.writer.seg);
        self.open_segment(next)
    }

    /// Queues the rest of the open segment, then its seal (summary and
    /// footer, built once everything before it is written).
    fn seal_open(&mut self) {
        let w = &mut self.writer;
        w.close_buf();
        let sealing = Sealing {
            entries: std::mem::take(&mut w.summary),
            failed: std::mem::take(&mut w.failed),
            data_end: w.cursor,
            file_id: w.file_id,
        };
        w.queue
            .push_seal(w.seg, w.seq, w.file, w.base, sealing, self.cfg.sync_on_seal);
        w.open = false;
        w.summary_slots = 0;
        self.segments.segs[w.seg as usize].state = SegState::Sealed;
        self.stats.segments_sealed += 1;
    }

    /// Makes `seg` the open segment (dropping whatever it held), then keeps
    /// the segment after it free by reclaiming it with reinsertion.
    pub(super) fn open_segment(&mut self, seg: u32) -> Result<()> {
        if self.segments.segs[seg as usize].state != SegState::Free {
            self.reclaim(seg, false)?;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let info = &mut self.segments.segs[seg as usize];
        info.state = SegState::Open;
        info.seq = seq;
        let (file, base, index_in_file) = (info.file, info.base, info.index_in_file);
        let file_id = self.segments.files[file].file_id;
        let header = SegmentHeader {
            seq,
            file_id,
            seg_index: index_in_file,
            created_unix_s: unix_now(),
        };
        let w = &mut self.writer;
        // Whatever an earlier generation left unqueued goes with it.
        w.close_buf();
        w.open = true;
        w.seg = seg;
        w.seq = seq;
        w.file = file;
        w.base = base;
        w.file_id = file_id;
        w.cursor = SEG_HEADER_SIZE;
        w.buf_start = 0;
        w.summary.clear();
        w.summary_slots = 0;
        w.failed.clear();
        w.push(&header.encode());
        w.pad_to(SEG_HEADER_SIZE);
        let next = self.segments.next(seg);
        if next != seg && self.segments.segs[next as usize].state == SegState::Sealed {
            self.reclaim(next, true)?;
        }
        Ok(())
    }

    /// Drops every index entry that points into `seg` and frees it. With
    /// `reinsert`, objects hit since they were written are first copied to
    /// the open segment (bounded, see the module doc).
    pub(super) fn reclaim(&mut self, seg: u32, reinsert: bool) -> Result<()> {
        let seq = self.segments.segs[seg as usize].seq;
        let entries = match self.read_summary(seg) {
            Ok(entries) => entries,
            Err(_) => {
                self.stats.evicted += self.index.remove_segment(seg) as u64;
                self.free_segment(seg, seq);
                return Ok(());
            }
        };
        let mut budget = self.cfg.segment_size / 2;
        for e in entries.iter().filter(|e| e.kind != RecordKind::Tombstone) {
            let ikey = e.digest.index_key();
            let Some(ie) = self.index.get(ikey) else {
                continue;
            };
            if ie.seg != seg || ie.offset != e.offset {
                continue;
            }
            let mut moved = false;
            // Only plain objects move; chunks and heads age out whole.
            if reinsert && ie.hit && e.len <= budget && e.kind == RecordKind::Object {
                let loc = Location {
                    seg,
                    seq,
                    offset: e.offset,
                    len_hint: ie.len_hint(),
                };
                if let Ok(Some(obj)) = self.read_record_any_key(&loc) {
                    if obj.digest == e.digest {
                        moved = self
                            .append_record(
                                RecordKind::Object,
                                &obj.key,
                                &obj.meta,
                                &obj.body,
                                false,
                            )?
                            .is_some();
                    }
                }
                if moved {
                    budget -= e.len;
                    self.stats.reinserted += 1;
                }
            }
            if !moved {
                self.index.remove(ikey);
                self.stats.evicted += 1;
            }
        }
        self.free_segment(seg, seq);
        Ok(())
    }

    /// Marks generation `seq` of `seg` free, dropping its unsent writes.
    fn free_segment(&mut self, seg: u32, seq: u64) {
        self.writer.queue.cancel_generation(seg, seq);
        self.segments.segs[seg as usize].state = SegState::Free;
        self.stats.segments_reclaimed += 1;
    }

    /// With `caller_writes` off, performs every queued write.
    pub(super) fn settle(&mut self) -> Result<()> {
        if self.cfg.caller_writes {
            return Ok(());
        }
        self.write_queue_sync()
    }

    /// Performs every write that may start, in order, with `pwrite` (and
    /// `fdatasync` before footers), completing each before the next.
    /// Writes the caller has taken are left to the caller. Returns the first
    /// error; the failed writes' records are already unreachable.
    pub(super) fn write_queue_sync(&mut self) -> Result<()> {
        let mut first_error = None;
        while let Some(w) = self.writer.queue.take(self.cfg.segment_size) {
            let io = self.segments.files[w.file].io.as_ref();
            let sync = if w.sync_before { io.sync() } else { Ok(()) };
            let result = sync.and_then(|()| io.write_at(&w.data, w.offset));
            let ok = result.is_ok();
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
            self.finish_write(w.id, ok);
        }
        first_error.map_or(Ok(()), |e| Err(e.into()))
    }

    /// Retires a handed-out write; returns whether `id` was outstanding.
    pub(super) fn finish_write(&mut self, id: WriteId, ok: bool) -> bool {
        let Some(job) = self.writer.queue.complete(id) else {
            return false;
        };
        if !ok {
            self.stats.write_errors += 1;
            // A lost seal needs nothing more: without a valid footer the
            // segment is scanned at the next start.
            if let (false, Some(data)) = (job.is_seal(), job.data()) {
                let end = job.off + data.len() as u64;
                self.write_failed(job.seg, job.seq, job.off, end);
            }
        }
        true
    }

    /// Bytes `[start, end)` of generation `seq` of `seg` did not reach the
    /// file: their records become unreachable, now and after a restart.
    fn write_failed(&mut self, seg: u32, seq: u64, start: u64, end: u64) {
        let current = matches!(self.segments.info(seg),
            Some(i) if i.seq == seq && i.state != SegState::Free);
        if !current {
            return;
        }
        // Without its header the generation is invisible after a restart.
        let (start, end) = if start < SEG_HEADER_SIZE {
            (0, self.cfg.segment_size)
        } else {
            (start, end)
        };
        let hit = |e: &SummaryEntry| {
            (e.offset < end && e.offset + e.len > start).then(|| (e.digest.index_key(), e.offset))
        };
        let w = &mut self.writer;
        let open = w.open && w.seg == seg && w.seq == seq;
        let doomed: Vec<(u64, u64)> = if open {
            w.failed.push((start, end));
            w.summary.iter().filter_map(hit).collect()
        } else if let Some(s) = w.queue.sealing_mut(seg, seq) {
            s.failed.push((start, end));
            s.entries.iter().filter_map(hit).collect()
        } else {
            // Not expected (a sealed generation keeps its seal queued until
            // its last write completes): drop the whole segment's entries.
            self.index.remove_segment(seg);
            Vec::new()
        };
        for (ikey, offset) in doomed {
            self.index.remove_if_at(ikey, seg, offset);
        }
        // A lost chunk takes its chain's head along.
        self.index.drop_incomplete_chains();
        if open {
            // Nothing more goes into a damaged segment. Opening the next
            // one cannot fail for I/O (appending does none); if it failed
            // anyway, the next append retries it.
            let _ = self.seal_and_advance();
        }
    }
}

/// Writes `footer` into the last `SEG_FOOTER_SIZE` bytes of the segment at
/// `base`, after making the records and summary durable if `sync`.
pub(super) fn write_footer(
    io: &dyn SegmentIo,
    base: u64,
    segment_size: u64,
    footer: &SegmentFooter,
    sync: bool,
) -> std::io::Result<()> {
    if sync {
        io.sync()?;
    }
    io.write_at(&footer.encode(), base + segment_size - SEG_FOOTER_SIZE)
}
