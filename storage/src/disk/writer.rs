//! The segment writer: the aggregation buffer, record encoding, sealing,
//! and FIFO reclaim with reinsertion of hit objects.
//!
//! Owns: the open segment's write cursor, its unflushed bytes and the
//! summary entries of the records written to it so far.
//!
//! Invariants:
//! - `buf` holds exactly the bytes `[buf_start, cursor)` of the open
//!   segment; everything before `buf_start` has been written with
//!   `write_at`. Readers see `buf` (the buffer is visible to lookups);
//! - `cursor` is `ALIGN`-aligned and there is always room after it for the
//!   summary of every record so far (`summary_slots` slots) plus one more
//!   entry, and the footer;
//! - a record's index entry is published only after the whole record is in
//!   `buf` or on disk;
//! - the segment after the open one in ring order is kept free (reclaimed
//!   as soon as a segment opens), so reinserted objects always have a
//!   destination that is not the segment being reclaimed;
//! - reinsertion never seals a segment, so reclaim never recurses: it stops
//!   when the open segment is full or half a segment has been reinserted;
//! - only `Object` records are reinserted: chunks and chunked heads are
//!   dropped by reclaim (a chunked object ages out whole, see `mod.rs`).
//!
//! If a syscall fails mid-record, the record is abandoned: unflushed bytes of
//! it are dropped and the cursor is not advanced, so the next record
//! overwrites whatever reached the disk.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::digest::KeyDigest;
use super::error::{DiskError, Result};
use super::format::{
    block_crc, ChainDescriptor, RecordHeader, RecordKind, RecordLayout, SegmentFooter,
    SegmentHeader, SummaryEntry, ALIGN, SEG_FOOTER_SIZE, SEG_HEADER_SIZE, SUMMARY_ENTRY_LEN,
};
use super::index::{Chain, EntryRole, IndexEntry};
use super::io::SegmentIo;
use super::segments::SegState;
use super::{DiskTier, Location};

/// The open segment's append state.
pub struct Writer {
    /// False between sealing a segment and opening the next (only seen
    /// after an I/O error there): the next append opens a segment first.
    pub open: bool,
    pub seg: u32,
    pub seq: u64,
    pub cursor: u64,
    pub buf: Vec<u8>,
    pub buf_start: u64,
    /// When the oldest unflushed byte was buffered.
    pub buf_since: Option<Instant>,
    pub summary: Vec<SummaryEntry>,
    /// Summary slots `summary` takes (a head takes two).
    pub summary_slots: u64,
    pub capacity: usize,
}

impl Writer {
    pub fn new(capacity: usize) -> Self {
        Writer {
            open: false,
            seg: 0,
            seq: 0,
            cursor: 0,
            buf: Vec::with_capacity(capacity),
            buf_start: 0,
            buf_since: None,
            summary: Vec::new(),
            summary_slots: 0,
            capacity,
        }
    }

    /// Whether a record of `aligned_len` bytes fits, leaving room for the
    /// summary (with the record's `slots`) and the footer.
    pub fn fits(&self, aligned_len: u64, slots: u64, segment_size: u64) -> bool {
        let summary = (self.summary_slots + slots) * SUMMARY_ENTRY_LEN;
        self.cursor + aligned_len + summary + SEG_FOOTER_SIZE <= segment_size
    }

    fn push(&mut self, bytes: &[u8], io: &dyn SegmentIo, base: u64) -> std::io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = self.capacity.saturating_sub(self.buf.len()).max(1);
            let (now, later) = rest.split_at(room.min(rest.len()));
            if self.buf.is_empty() {
                self.buf_since = Some(Instant::now());
            }
            self.buf.extend_from_slice(now);
            if self.buf.len() >= self.capacity {
                self.flush(io, base)?;
            }
            rest = later;
        }
        Ok(())
    }

    fn pad_to(&mut self, end: u64, io: &dyn SegmentIo, base: u64) -> std::io::Result<()> {
        const ZEROS: [u8; ALIGN as usize] = [0; ALIGN as usize];
        let have = self.buf_start + self.buf.len() as u64;
        self.push(&ZEROS[..(end - have) as usize], io, base)
    }

    /// Writes the buffer out. Keeps it on failure, to retry later.
    pub fn flush(&mut self, io: &dyn SegmentIo, base: u64) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        io.write_at(&self.buf, base + self.buf_start)?;
        self.buf_start += self.buf.len() as u64;
        self.buf.clear();
        self.buf_since = None;
        Ok(())
    }

    /// Copies the buffered part of `[off, off + out.len())` into the tail of
    /// `out` (bytes past the cursor read as zero); returns how many leading
    /// bytes of `out` still have to come from the file.
    pub fn copy_buffered(&self, off: u64, out: &mut [u8]) -> usize {
        let end = off + out.len() as u64;
        if end <= self.buf_start {
            return out.len();
        }
        let split = self.buf_start.saturating_sub(off) as usize;
        let from = (off + split as u64 - self.buf_start) as usize;
        let avail = self.buf.len().saturating_sub(from).min(out.len() - split);
        out[split..split + avail].copy_from_slice(&self.buf[from..from + avail]);
        out[split + avail..].fill(0);
        split
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
        if let Err(e) = self.encode_record(kind, &digest, &layout, key, meta, body) {
            // Abandon the record: drop its unflushed bytes.
            let keep = offset.saturating_sub(self.writer.buf_start) as usize;
            self.writer.buf.truncate(keep);
            return Err(e.into());
        }
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
    ) -> std::io::Result<()> {
        let (file, base) = self.open_file_base()?;
        let io = self.segments.files[file].io.as_ref();
        let w = &mut self.writer;
        let header = RecordHeader::encode(kind, w.seq, w.cursor, digest, layout, &[key, meta]);
        let header_crc = u32::from_le_bytes([header[60], header[61], header[62], header[63]]);
        w.push(&header, io, base)?;
        w.push(key, io, base)?;
        w.push(meta, io, base)?;
        for (i, block) in body.chunks(layout.block_size as usize).enumerate() {
            w.push(block, io, base)?;
            w.push(
                &block_crc(header_crc, i as u64, block).to_le_bytes(),
                io,
                base,
            )?;
        }
        let end = w.cursor + layout.aligned_len();
        w.pad_to(end, io, base)
    }

    /// The open segment's file number and base offset.
    fn open_file_base(&self) -> std::io::Result<(usize, u64)> {
        self.segments
            .info(self.writer.seg)
            .map(|i| (i.file, i.base))
            .ok_or_else(|| std::io::Error::other("open segment out of range"))
    }

    /// Writes out the aggregation buffer.
    pub(super) fn flush_writer(&mut self) -> Result<()> {
        let (file, base) = self.open_file_base()?;
        let io = self.segments.files[file].io.as_ref();
        self.writer.flush(io, base)?;
        Ok(())
    }

    /// Seals the open segment and opens the next one.
    pub(super) fn seal_and_advance(&mut self) -> Result<()> {
        if self.writer.open {
            self.seal_open()?;
        }
        let next = self.segments.next(self.writer.seg);
        self.open_segment(next)
    }

    /// Writes the summary after the last record, then the footer.
    fn seal_open(&mut self) -> Result<()> {
        let (file, base) = self.open_file_base()?;
        let mut summary =
            Vec::with_capacity((self.writer.summary_slots * SUMMARY_ENTRY_LEN) as usize);
        for e in &self.writer.summary {
            e.encode_into(&mut summary);
        }
        let io = self.segments.files[file].io.as_ref();
        let data_end = self.writer.cursor;
        self.writer.push(&summary, io, base)?;
        self.writer.flush(io, base)?;
        let footer = SegmentFooter {
            seq: self.writer.seq,
            file_id: self.segments.files[file].file_id,
            summary_off: data_end as u32,
            count: self.writer.summary_slots as u32,
            data_end: data_end as u32,
            summary_crc: crc32fast::hash(&summary),
        };
        write_footer(
            io,
            base,
            self.cfg.segment_size,
            &footer,
            self.cfg.sync_on_seal,
        )?;
        self.segments.segs[self.writer.seg as usize].state = SegState::Sealed;
        self.writer.open = false;
        self.writer.summary.clear();
        self.writer.summary_slots = 0;
        self.stats.segments_sealed += 1;
        Ok(())
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
        let header = SegmentHeader {
            seq,
            file_id: self.segments.files[file].file_id,
            seg_index: index_in_file,
            created_unix_s: unix_now(),
        };
        let w = &mut self.writer;
        w.open = true;
        w.seg = seg;
        w.seq = seq;
        w.cursor = SEG_HEADER_SIZE;
        w.buf.clear();
        w.buf_start = 0;
        w.summary.clear();
        w.summary_slots = 0;
        let io = self.segments.files[file].io.as_ref();
        w.push(&header.encode(), io, base)?;
        w.pad_to(SEG_HEADER_SIZE, io, base)?;
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
        let entries = match self.read_summary(seg) {
            Ok(entries) => entries,
            Err(_) => {
                self.stats.evicted += self.index.remove_segment(seg) as u64;
                self.segments.segs[seg as usize].state = SegState::Free;
                self.stats.segments_reclaimed += 1;
                return Ok(());
            }
        };
        let seq = self.segments.segs[seg as usize].seq;
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
        self.segments.segs[seg as usize].state = SegState::Free;
        self.stats.segments_reclaimed += 1;
        Ok(())
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
