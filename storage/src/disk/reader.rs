//! Reading records back: whole, by byte range, or streamed block by block,
//! each byte verified before it is handed out.
//!
//! Owns: the choice between the aggregation buffer, the mapping and
//! `read_at` for every span, and all checks on records read.
//!
//! Invariants:
//! - a span of the open segment at or after `buf_start` comes from the
//!   writer's buffer; anything else comes from the mapping only if `mincore`
//!   says it is resident and it is at least `mmap_min_read` long, otherwise
//!   from `SegmentIo::read_at` — a serving thread never takes a major fault;
//! - before any meta or body byte leaves this module: the location is still
//!   current (segment `seq`), the record header decodes, its self-location
//!   (`seq`, offset) matches, its lengths fit the segment, its CRC covers
//!   header + key + meta, its digest is the digest of its key, the key is
//!   the caller's (else: a miss), and every body block returned passed its
//!   CRC. Any failure is `Corrupt`; nothing partially checked escapes.

use bytes::Bytes;

use super::digest::KeyDigest;
use super::error::{DiskError, Result};
use super::format::{
    block_crc, RecordHeader, RecordKind, SegmentFooter, SummaryEntry, ALIGN, BLOCK_CRC_LEN,
    RECORD_HEADER_LEN, SEG_FOOTER_SIZE, SUMMARY_ENTRY_LEN,
};
use super::segments::SegState;
use super::{DiskTier, Location};

/// First read of a range or stream: header, key and meta usually fit.
const HEAD_PROBE: u64 = 4096;
/// Records whose size hint is at most this are read with one call.
const WHOLE_READ_MAX: u64 = 1 << 20;

/// An object read back whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskObject {
    /// The caller's opaque meta bytes.
    pub meta: Bytes,
    /// The whole body.
    pub body: Bytes,
}

/// Part of an object's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskRange {
    pub meta: Bytes,
    /// Bytes `[start, end)` of the body (end clamped to the body length).
    pub body: Bytes,
    /// Length of the whole body.
    pub body_len: u64,
}

/// A record read for reinsertion: any key.
pub(super) struct RawRecord {
    pub digest: KeyDigest,
    pub key: Vec<u8>,
    pub meta: Bytes,
    pub body: Bytes,
}

/// A checked record header with its key and meta, and the bytes read so far
/// from the record's start.
struct Head {
    hdr: RecordHeader,
    key: Vec<u8>,
    meta: Bytes,
    prefix: Vec<u8>,
}

impl DiskTier {
    /// Fills `out` with bytes `[off, off + len)` of segment `seg`.
    pub(super) fn read_span(&self, seg: u32, off: u64, out: &mut [u8]) -> Result<()> {
        let from_file = match self.segments.info(seg) {
            Some(i) if i.state == SegState::Open && self.writer.seg == seg => {
                self.writer.copy_buffered(off, out)
            }
            _ => out.len(),
        };
        if from_file == 0 {
            return Ok(());
        }
        let (file, file_off) = self
            .segments
            .locate(seg, off)
            .ok_or(DiskError::Corrupt("segment number out of range"))?;
        let part = &mut out[..from_file];
        if part.len() >= self.cfg.mmap_min_read && file.map.copy_if_resident(file_off, part) {
            self.read_stats
                .mmap_reads
                .set(self.read_stats.mmap_reads.get() + 1);
        } else {
            file.io.read_at(part, file_off)?;
            self.read_stats
                .io_reads
                .set(self.read_stats.io_reads.get() + 1);
        }
        Ok(())
    }

    /// The file span that reading `loc` will touch, when part of it is not
    /// in the page cache, so that a read now would wait for the device. A
    /// server warms that span asynchronously first (e.g. an io_uring
    /// buffered read), so that the synchronous read that follows only copies
    /// from the page cache. `None` when the record is resident, still in the
    /// write buffer, or no longer current.
    pub fn cold_span(&self, loc: &Location) -> Option<(std::path::PathBuf, u64, u64)> {
        if !self.is_current(loc) {
            return None;
        }
        if let Some(i) = self.segments.info(loc.seg) {
            if i.state == SegState::Open && self.writer.seg == loc.seg {
                let mut probe = [0u8; 1];
                if self.writer.copy_buffered(loc.offset, &mut probe) == 0 {
                    return None;
                }
            }
        }
        let (file, file_off) = self.segments.locate(loc.seg, loc.offset)?;
        let len = loc
            .len_hint
            .min(self.cfg.segment_size.saturating_sub(loc.offset))
            .max(1);
        let n = usize::try_from(len).ok()?;
        (!file.map.resident(file_off, n)).then(|| (file.path.clone(), file_off, len))
    }

    /// Whether `loc` still names the generation of the segment it was made
    /// for.
    fn is_current(&self, loc: &Location) -> bool {
        matches!(self.segments.info(loc.seg), Some(i) if i.seq == loc.seq && i.state != SegState::Free)
    }

    /// Reads and checks the header, key and meta of the record at `loc`,
    /// reading at least `probe` bytes (clamped to the segment).
    fn read_head(&self, loc: &Location, probe: u64) -> Result<Head> {
        let room = self
            .cfg
            .segment_size
            .checked_sub(loc.offset)
            .filter(|&r| r >= RECORD_HEADER_LEN)
            .ok_or(DiskError::Corrupt("record offset out of range"))?;
        let mut prefix = vec![0u8; probe.clamp(RECORD_HEADER_LEN, room) as usize];
        self.read_span(loc.seg, loc.offset, &mut prefix)?;
        let hdr = RecordHeader::decode_unchecked(&prefix)
            .ok_or(DiskError::Corrupt("record header magic or fields"))?;
        if hdr.seq != loc.seq || u64::from(hdr.offset_units) * ALIGN != loc.offset {
            return Err(DiskError::Corrupt("record self-location"));
        }
        let layout = hdr.layout;
        if layout.total_len() > room {
            return Err(DiskError::Corrupt("record length exceeds segment"));
        }
        let body_start = layout.body_start() as usize;
        if prefix.len() < body_start {
            let have = prefix.len();
            prefix.resize(body_start, 0);
            self.read_span(loc.seg, loc.offset + have as u64, &mut prefix[have..])?;
        }
        let key_end = RECORD_HEADER_LEN as usize + layout.key_len as usize;
        let (key, meta) = (
            &prefix[RECORD_HEADER_LEN as usize..key_end],
            &prefix[key_end..body_start],
        );
        if !hdr.check(&prefix, key, meta) {
            return Err(DiskError::Corrupt("record header crc"));
        }
        if KeyDigest::of(key) != hdr.digest {
            return Err(DiskError::Corrupt("record digest"));
        }
        Ok(Head {
            hdr,
            key: key.to_vec(),
            meta: Bytes::copy_from_slice(meta),
            prefix,
        })
    }

    /// Reads and verifies body blocks `first..=last`, returning their data
    /// concatenated. Reuses bytes already in `head.prefix`.
    fn read_blocks(&self, loc: &Location, head: &Head, first: u64, last: u64) -> Result<Vec<u8>> {
        let layout = head.hdr.layout;
        let (start, _) = layout.block_span(first);
        let (last_off, last_len) = layout.block_span(last);
        let end = last_off + last_len + BLOCK_CRC_LEN;
        let span = if end as usize <= head.prefix.len() {
            head.prefix[start as usize..end as usize].to_vec()
        } else {
            let mut v = vec![0u8; (end - start) as usize];
            self.read_span(loc.seg, loc.offset + start, &mut v)?;
            v
        };
        let mut data = Vec::with_capacity((end - start) as usize);
        for i in first..=last {
            let (off, len) = layout.block_span(i);
            let at = (off - start) as usize;
            let block = &span[at..at + len as usize];
            let crc = &span[at + len as usize..at + len as usize + BLOCK_CRC_LEN as usize];
            if block_crc(head.hdr.header_crc, i, block).to_le_bytes() != crc {
                return Err(DiskError::Corrupt("body block crc"));
            }
            data.extend_from_slice(block);
        }
        Ok(data)
    }

    fn read_whole(&self, loc: &Location) -> Result<(Head, Bytes)> {
        let probe = if loc.len_hint <= WHOLE_READ_MAX {
            loc.len_hint
        } else {
            HEAD_PROBE
        };
        let head = self.read_head(loc, probe)?;
        if head.hdr.kind != RecordKind::Object {
            return Err(DiskError::Corrupt("index points at a tombstone"));
        }
        let blocks = head.hdr.layout.block_count();
        let body = if blocks == 0 {
            Bytes::new()
        } else {
            Bytes::from(self.read_blocks(loc, &head, 0, blocks - 1)?)
        };
        Ok((head, body))
    }

    /// Reads the whole object at `loc` if it is `key`'s. `Ok(None)` is a
    /// miss: the location went stale or another key shares the index slot.
    pub fn read_object(&self, loc: &Location, key: &[u8]) -> Result<Option<DiskObject>> {
        if !self.is_current(loc) {
            return Ok(None);
        }
        let (head, body) = self.read_whole(loc)?;
        if head.key != key {
            return Ok(None);
        }
        Ok(Some(DiskObject {
            meta: head.meta,
            body,
        }))
    }

    /// Reads body bytes `[start, end)` (end clamped to the body length),
    /// touching only the blocks that hold them.
    pub fn read_range(
        &self,
        loc: &Location,
        key: &[u8],
        start: u64,
        end: u64,
    ) -> Result<Option<DiskRange>> {
        let Some(stream) = self.stream_range(loc, key, start, end)? else {
            return Ok(None);
        };
        let (first, last) = (stream.next_block, stream.end_block);
        let body = if first >= last {
            Bytes::new()
        } else {
            let data = self.read_blocks(loc, &stream.head, first, last - 1)?;
            let skip =
                (stream.start - first * u64::from(stream.head.hdr.layout.block_size)) as usize;
            Bytes::from(data).slice(skip..skip + (stream.end - stream.start) as usize)
        };
        Ok(Some(DiskRange {
            meta: stream.head.meta.clone(),
            body,
            body_len: stream.head.hdr.layout.body_len,
        }))
    }

    /// A block-by-block reader of the whole body.
    pub fn stream_object(&self, loc: &Location, key: &[u8]) -> Result<Option<ObjectStream<'_>>> {
        self.stream_range(loc, key, 0, u64::MAX)
    }

    /// A block-by-block reader of body bytes `[start, end)`.
    pub fn stream_range(
        &self,
        loc: &Location,
        key: &[u8],
        start: u64,
        end: u64,
    ) -> Result<Option<ObjectStream<'_>>> {
        if !self.is_current(loc) {
            return Ok(None);
        }
        let head = self.read_head(loc, HEAD_PROBE.min(loc.len_hint))?;
        if head.key != key {
            return Ok(None);
        }
        if head.hdr.kind != RecordKind::Object {
            return Err(DiskError::Corrupt("index points at a tombstone"));
        }
        let layout = head.hdr.layout;
        let end = end.min(layout.body_len);
        let start = start.min(end);
        let bs = u64::from(layout.block_size);
        let (first, last) = if start < end {
            (start / bs, (end - 1) / bs + 1)
        } else {
            (0, 0)
        };
        Ok(Some(ObjectStream {
            tier: self,
            loc: *loc,
            head,
            start,
            end,
            next_block: first,
            end_block: last,
        }))
    }

    /// Reads the record at `loc` whatever its key (for reinsertion).
    pub(super) fn read_record_any_key(&self, loc: &Location) -> Result<Option<RawRecord>> {
        if !self.is_current(loc) {
            return Ok(None);
        }
        let (head, body) = self.read_whole(loc)?;
        Ok(Some(RawRecord {
            digest: head.hdr.digest,
            key: head.key,
            meta: head.meta,
            body,
        }))
    }

    /// Reads and checks the summary of a sealed segment.
    pub(super) fn read_summary(&self, seg: u32) -> Result<Vec<SummaryEntry>> {
        let info = *self
            .segments
            .info(seg)
            .ok_or(DiskError::Corrupt("segment number out of range"))?;
        let (file, base) = self
            .segments
            .locate(seg, 0)
            .ok_or(DiskError::Corrupt("segment number out of range"))?;
        load_summary(
            file.io.as_ref(),
            base,
            self.cfg.segment_size,
            info.seq,
            &file.file_id,
        )?
        .ok_or(DiskError::Corrupt("segment summary"))
    }
}

/// Reads the footer and summary of the segment at `base`; `Ok(None)` if the
/// footer is missing, stale (another `seq` or file) or the summary fails its
/// CRC.
pub(super) fn load_summary(
    io: &dyn super::io::SegmentIo,
    base: u64,
    segment_size: u64,
    seq: u64,
    file_id: &[u8; 16],
) -> Result<Option<Vec<SummaryEntry>>> {
    let mut fb = [0u8; SegmentFooter::LEN];
    io.read_at(&mut fb, base + segment_size - SEG_FOOTER_SIZE)?;
    let Some(f) = SegmentFooter::decode(&fb) else {
        return Ok(None);
    };
    let len = u64::from(f.count) * SUMMARY_ENTRY_LEN;
    if f.seq != seq
        || &f.file_id != file_id
        || u64::from(f.summary_off) + len > segment_size - SEG_FOOTER_SIZE
    {
        return Ok(None);
    }
    let mut sb = vec![0u8; len as usize];
    io.read_at(&mut sb, base + u64::from(f.summary_off))?;
    if crc32fast::hash(&sb) != f.summary_crc {
        return Ok(None);
    }
    let entries: Option<Vec<_>> = sb
        .chunks_exact(SUMMARY_ENTRY_LEN as usize)
        .map(SummaryEntry::decode)
        .collect();
    Ok(entries)
}

/// Streams a body (or a range of it) block by block, verifying each block
/// before returning it.
pub struct ObjectStream<'a> {
    tier: &'a DiskTier,
    loc: Location,
    head: Head,
    start: u64,
    end: u64,
    next_block: u64,
    end_block: u64,
}

impl ObjectStream<'_> {
    /// The object's meta bytes (already verified).
    pub fn meta(&self) -> &Bytes {
        &self.head.meta
    }

    /// Length of the whole body.
    pub fn body_len(&self) -> u64 {
        self.head.hdr.layout.body_len
    }

    /// The next verified piece of the requested range; `None` at the end.
    /// After an error the stream is finished.
    pub fn next_chunk(&mut self) -> Option<Result<Bytes>> {
        if self.next_block >= self.end_block {
            return None;
        }
        let i = self.next_block;
        self.next_block += 1;
        match self.tier.read_blocks(&self.loc, &self.head, i, i) {
            Ok(data) => {
                let bs = u64::from(self.head.hdr.layout.block_size);
                let block_start = i * bs;
                let from = self.start.saturating_sub(block_start) as usize;
                let to = (self.end.min(block_start + data.len() as u64) - block_start) as usize;
                Some(Ok(Bytes::from(data).slice(from..to)))
            }
            Err(e) => {
                self.next_block = self.end_block;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for ObjectStream<'_> {
    type Item = Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk()
    }
}
