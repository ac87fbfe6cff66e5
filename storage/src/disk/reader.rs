//! Reading records back: whole, by byte range, or streamed block by block,
//! each byte verified before it is handed out.
//!
//! Owns: the choice between the aggregation buffer, the mapping and
//! `read_at` for every span, and all checks on records read.
//!
//! Invariants:
//! - bytes of a segment generation that are appended but not yet written
//!   (the writer's buffer, queued and in-flight writes) come from memory,
//!   and bytes past the open segment's appended end read as zero; anything
//!   else comes from the mapping only if `mincore` says it is resident and
//!   it is at least `mmap_min_read` long, otherwise from
//!   `SegmentIo::read_at` — a serving thread never takes a major fault;
//! - before any meta or body byte leaves this module: the location is still
//!   current (segment `seq`), the record header decodes, its self-location
//!   (`seq`, offset) matches, its lengths fit the segment, its CRC covers
//!   header + key + meta, its digest is the digest of its key, the key is
//!   the caller's (else: a miss), and every body block returned passed its
//!   CRC. Any failure is `Corrupt`; nothing partially checked escapes;
//! - a chunked object is read through its head: the head's descriptor block
//!   is verified, every chunk a range overlaps must be indexed before the
//!   first byte is returned, and each chunk is checked when reached (kind
//!   `Chunk`, its name — so parent digest, nonce and index — and its length)
//!   before its blocks are; only the chunks and blocks overlapping the range
//!   are read, one chunk's header and one block (stream) or one chunk's span
//!   (`read_range`) at a time;
//! - a [`BodyCursor`] outlives the borrow of the tier: every piece re-checks
//!   that its record's segment generation is still current before reading,
//!   so a record reclaimed in between is an error, never other bytes.

use bytes::Bytes;

use super::digest::{chunk_name, KeyDigest};
use super::error::{DiskError, Result};
use super::format::{
    block_crc, decode_summary, ChainDescriptor, RecordHeader, RecordKind, SegmentFooter,
    SummaryEntry, ALIGN, BLOCK_CRC_LEN, RECORD_HEADER_LEN, SEG_FOOTER_SIZE, SUMMARY_ENTRY_LEN,
};
use super::index::{Chain, EntryRole};
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
    /// Fills `out` with bytes `[off, off + len)` of segment `seg`'s current
    /// generation.
    pub(super) fn read_span(&self, seg: u32, off: u64, out: &mut [u8]) -> Result<()> {
        let end = off + out.len() as u64;
        let seq = self
            .segments
            .info(seg)
            .ok_or(DiskError::Corrupt("segment number out of range"))?
            .seq;
        let w = &self.writer;
        let open = w.open && w.seg == seg && w.seq == seq;
        let zero_from = if open { w.mem_end().max(off) } else { end };
        let buf = open.then(|| (w.buf_start, &w.buf[..]));
        let regions = || {
            w.queue
                .regions(seg, seq)
                .map(|(o, d)| (o, &d[..]))
                .chain(buf)
                .filter(|&(o, d)| o < end && o + d.len() as u64 > off)
        };
        if zero_from >= end && regions().next().is_none() {
            return self.read_file(seg, off, out);
        }
        // Read the file only if memory does not cover the whole span.
        let mut cover: Vec<(u64, u64)> = regions().map(|(o, d)| (o, o + d.len() as u64)).collect();
        cover.push((zero_from, end));
        cover.sort_unstable();
        let mut reached = off;
        for (s, e) in cover {
            if s > reached {
                break;
            }
            reached = reached.max(e);
        }
        if reached < end {
            self.read_file(seg, off, out)?;
        }
        for (o, d) in regions() {
            let from = off.max(o);
            let to = end.min(o + d.len() as u64);
            out[(from - off) as usize..(to - off) as usize]
                .copy_from_slice(&d[(from - o) as usize..(to - o) as usize]);
        }
        out[(zero_from.min(end) - off) as usize..].fill(0);
        Ok(())
    }

    /// Fills `out` from the file: through the mapping when resident and
    /// long enough, else with `read_at`.
    fn read_file(&self, seg: u32, off: u64, out: &mut [u8]) -> Result<()> {
        let (file, file_off) = self
            .segments
            .locate(seg, off)
            .ok_or(DiskError::Corrupt("segment number out of range"))?;
        if out.len() >= self.cfg.mmap_min_read && file.map.copy_if_resident(file_off, out) {
            self.read_stats
                .mmap_reads
                .set(self.read_stats.mmap_reads.get() + 1);
        } else {
            file.io.read_at(out, file_off)?;
            self.read_stats
                .io_reads
                .set(self.read_stats.io_reads.get() + 1);
        }
        Ok(())
    }

    /// Whether byte `off` of `seg`'s generation `seq` is still in memory.
    fn in_memory(&self, seg: u32, seq: u64, off: u64) -> bool {
        let w = &self.writer;
        (w.open && w.seg == seg && w.seq == seq && off >= w.buf_start)
            || w.queue
                .regions(seg, seq)
                .any(|(o, d)| off >= o && off < o + d.len() as u64)
    }

    /// The file span that reading `loc` will touch, when part of it is not
    /// in the page cache, so that a read now would wait for the device. A
    /// server warms that span asynchronously first (e.g. an io_uring
    /// buffered read), so that the synchronous read that follows only copies
    /// from the page cache. `None` when the record is resident, still in the
    /// write buffer, or no longer current.
    pub fn cold_span(&self, loc: &Location) -> Option<(std::path::PathBuf, u64, u64)> {
        if !self.is_current(loc) || self.in_memory(loc.seg, loc.seq, loc.offset) {
            return None;
        }
        let (file, file_off) = self.segments.locate(loc.seg, loc.offset)?;
        let len = loc
            .len_hint
            .min(self.cfg.segment_size.saturating_sub(loc.offset))
            .max(1);
        let n = usize::try_from(len).ok()?;
        (!file.map.resident(file_off, n)).then(|| (file.path.clone(), file_off, len))
    }

    /// Like [`DiskTier::cold_span`], for the record holding body byte
    /// `offset` of `key`'s object at `loc`: the object itself, or for a
    /// chunked object the chunk that holds it (its head is read to find it).
    pub fn cold_span_at(
        &self,
        loc: &Location,
        key: &[u8],
        offset: u64,
    ) -> Option<(std::path::PathBuf, u64, u64)> {
        if !self.is_current(loc) {
            return None;
        }
        let head = self.read_head(loc, HEAD_PROBE.min(loc.len_hint)).ok()?;
        if head.key != key {
            return None;
        }
        if head.hdr.kind != RecordKind::ChunkedHead {
            return self.cold_span(loc);
        }
        let desc = self.read_descriptor(loc, &head).ok()?;
        let chain = Chain {
            digest: head.hdr.digest,
            nonce: desc.nonce,
            chunks: desc.chunks,
        };
        let i = u32::try_from(offset / u64::from(desc.chunk_size)).ok()?;
        let e = self.index.get(chain.chunk_key(i))?;
        if e.role != EntryRole::Chunk {
            return None;
        }
        let chunk = Location {
            seg: e.seg,
            seq: self.segments.info(e.seg)?.seq,
            offset: e.offset,
            len_hint: e.len_hint(),
        };
        self.cold_span(&chunk)
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
    /// A chunked object is read whole too: prefer a stream for large ones.
    pub fn read_object(&self, loc: &Location, key: &[u8]) -> Result<Option<DiskObject>> {
        let probe = if loc.len_hint <= WHOLE_READ_MAX {
            loc.len_hint
        } else {
            HEAD_PROBE
        };
        let Some(mut stream) = self.open_stream(loc, key, 0, u64::MAX, probe)? else {
            return Ok(None);
        };
        let body = self.read_rest(&mut stream.cur)?;
        Ok(Some(DiskObject {
            meta: stream.cur.meta,
            body,
        }))
    }

    /// Reads body bytes `[start, end)` (end clamped to the body length),
    /// touching only the chunks and blocks that hold them.
    pub fn read_range(
        &self,
        loc: &Location,
        key: &[u8],
        start: u64,
        end: u64,
    ) -> Result<Option<DiskRange>> {
        let Some(mut stream) = self.stream_range(loc, key, start, end)? else {
            return Ok(None);
        };
        let body = self.read_rest(&mut stream.cur)?;
        Ok(Some(DiskRange {
            meta: stream.cur.meta,
            body,
            body_len: stream.cur.body_len,
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
        self.open_stream(loc, key, start, end, HEAD_PROBE.min(loc.len_hint))
    }

    /// Reads and checks the head at `loc` (reading at least `probe` bytes)
    /// and positions a stream on `[start, end)`.
    fn open_stream(
        &self,
        loc: &Location,
        key: &[u8],
        start: u64,
        end: u64,
        probe: u64,
    ) -> Result<Option<ObjectStream<'_>>> {
        if !self.is_current(loc) {
            return Ok(None);
        }
        let head = self.read_head(loc, probe)?;
        if head.key != key {
            return Ok(None);
        }
        let meta = head.meta.clone();
        let (body_len, src) = match head.hdr.kind {
            RecordKind::Object => (head.hdr.layout.body_len, Source::Single { loc: *loc, head }),
            RecordKind::ChunkedHead => {
                let desc = self.read_descriptor(loc, &head)?;
                let chain = Chain {
                    digest: head.hdr.digest,
                    nonce: desc.nonce,
                    chunks: desc.chunks,
                };
                let src = Source::Chained {
                    chain,
                    desc,
                    open: None,
                };
                (desc.body_len, src)
            }
            RecordKind::Tombstone => return Err(DiskError::Corrupt("index points at a tombstone")),
            RecordKind::Chunk => return Err(DiskError::Corrupt("index points at a chunk")),
        };
        let end = end.min(body_len);
        let start = start.min(end);
        if let Source::Chained { chain, desc, .. } = &src {
            if start < end {
                let cs = u64::from(desc.chunk_size);
                let (first, last) = ((start / cs) as u32, ((end - 1) / cs) as u32);
                if !(first..=last).all(|i| self.index.has_chunk(chain, i)) {
                    return Err(DiskError::Corrupt("chunk missing"));
                }
            }
        }
        Ok(Some(ObjectStream {
            tier: self,
            cur: BodyCursor {
                meta,
                body_len,
                pos: start,
                end,
                src,
            },
        }))
    }

    /// A cursor over body bytes `[start, end)` that does not borrow the
    /// tier, for streaming across other calls (e.g. awaits in between):
    /// read it with [`DiskTier::read_next`]. Same checks as `stream_range`.
    pub fn cursor_range(
        &self,
        loc: &Location,
        key: &[u8],
        start: u64,
        end: u64,
    ) -> Result<Option<BodyCursor>> {
        Ok(self
            .stream_range(loc, key, start, end)?
            .map(ObjectStream::into_cursor))
    }

    /// The next verified piece (at most one block) of `cur`'s range; `None`
    /// at the end. After an error the cursor is finished. If the record the
    /// cursor is in was reclaimed since (the tier changed between calls),
    /// this is a `Corrupt` error, never bytes of whatever replaced it.
    pub fn read_next(&self, cur: &mut BodyCursor) -> Option<Result<Bytes>> {
        self.next_piece(cur, false)
    }

    /// The next piece: one block, or with `whole_record` everything left in
    /// the current record (the object, or one chunk).
    fn next_piece(&self, cur: &mut BodyCursor, whole_record: bool) -> Option<Result<Bytes>> {
        if cur.pos >= cur.end {
            return None;
        }
        let piece = self.read_piece(cur, whole_record);
        if piece.is_err() {
            cur.pos = cur.end;
        }
        Some(piece)
    }

    fn read_piece(&self, cur: &mut BodyCursor, whole_record: bool) -> Result<Bytes> {
        let (loc, head, base) = match &mut cur.src {
            Source::Single { loc, head } => (&*loc, &*head, 0),
            Source::Chained { chain, desc, open } => {
                let cs = u64::from(desc.chunk_size);
                let ci = (cur.pos / cs) as u32;
                if open.as_ref().map(|c| c.0) != Some(ci) {
                    *open = None;
                    let (loc, head) = self.open_chunk(chain, desc, ci)?;
                    *open = Some((ci, loc, head));
                }
                match open {
                    Some((_, loc, head)) => (&*loc, &*head, u64::from(ci) * cs),
                    None => return Err(DiskError::Corrupt("chunk missing")),
                }
            }
        };
        if !self.is_current(loc) {
            return Err(DiskError::Corrupt("record reclaimed while being read"));
        }
        let layout = head.hdr.layout;
        let bs = u64::from(layout.block_size);
        let rel = cur.pos - base;
        let rec_end = cur.end.min(base + layout.body_len) - base;
        let first = rel / bs;
        let rel_stop = if whole_record {
            rec_end
        } else {
            rec_end.min((first + 1) * bs)
        };
        let data = self.read_blocks(loc, head, first, (rel_stop - 1) / bs)?;
        let skip = first * bs;
        cur.pos = base + rel_stop;
        Ok(Bytes::from(data).slice((rel - skip) as usize..(rel_stop - skip) as usize))
    }

    /// Everything left of `cur`, verified, in one buffer.
    fn read_rest(&self, cur: &mut BodyCursor) -> Result<Bytes> {
        let Some(first) = self.next_piece(cur, true) else {
            return Ok(Bytes::new());
        };
        let first = first?;
        if cur.pos >= cur.end {
            return Ok(first);
        }
        let mut all = Vec::with_capacity((cur.end - cur.pos) as usize + first.len());
        all.extend_from_slice(&first);
        while let Some(piece) = self.next_piece(cur, true) {
            all.extend_from_slice(&piece?);
        }
        Ok(Bytes::from(all))
    }

    /// Reads and verifies the descriptor in a chunked head's body.
    fn read_descriptor(&self, loc: &Location, head: &Head) -> Result<ChainDescriptor> {
        let bad = DiskError::Corrupt("chunked head descriptor");
        if head.hdr.layout.body_len != ChainDescriptor::LEN as u64 {
            return Err(bad);
        }
        let data = self.read_blocks(loc, head, 0, 0)?;
        ChainDescriptor::decode(&data).ok_or(bad)
    }

    /// Finds and checks chunk `i` of `chain`: indexed, current, a `Chunk`
    /// record with the chunk's own name and the length the head says.
    fn open_chunk(
        &self,
        chain: &Chain,
        desc: &ChainDescriptor,
        i: u32,
    ) -> Result<(Location, Head)> {
        let missing = DiskError::Corrupt("chunk missing");
        let e = match self.index.get(chain.chunk_key(i)) {
            Some(e) if e.role == EntryRole::Chunk => e,
            _ => return Err(missing),
        };
        let seq = self.segments.info(e.seg).ok_or(missing)?.seq;
        let loc = Location {
            seg: e.seg,
            seq,
            offset: e.offset,
            len_hint: e.len_hint(),
        };
        if !self.is_current(&loc) {
            return Err(DiskError::Corrupt("chunk missing"));
        }
        let head = self.read_head(&loc, HEAD_PROBE.min(loc.len_hint))?;
        if head.hdr.kind != RecordKind::Chunk
            || head.key != chunk_name(&chain.digest, chain.nonce, i)
            || head.hdr.layout.body_len != desc.chunk_len(i)
        {
            return Err(DiskError::Corrupt("chunk does not belong to its head"));
        }
        Ok((loc, head))
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

    /// The summary of a sealed segment: from its seal if that is still
    /// queued, else read (from memory or the file) and checked.
    pub(super) fn read_summary(&self, seg: u32) -> Result<Vec<SummaryEntry>> {
        let info = *self
            .segments
            .info(seg)
            .ok_or(DiskError::Corrupt("segment number out of range"))?;
        if let Some(s) = self.writer.queue.sealing(seg, info.seq) {
            return Ok(s.kept().copied().collect());
        }
        let file_id = self
            .segments
            .files
            .get(info.file)
            .ok_or(DiskError::Corrupt("segment number out of range"))?
            .file_id;
        let read = |buf: &mut [u8], off: u64| self.read_span(seg, off, buf);
        load_summary(&read, self.cfg.segment_size, info.seq, &file_id)?
            .ok_or(DiskError::Corrupt("segment summary"))
    }
}

/// Reads the footer and summary of a segment through `read` (segment
/// offsets); `Ok(None)` if the footer is missing, stale (another `seq` or
/// file) or the summary fails its CRC.
pub(super) fn load_summary(
    read: &dyn Fn(&mut [u8], u64) -> Result<()>,
    segment_size: u64,
    seq: u64,
    file_id: &[u8; 16],
) -> Result<Option<Vec<SummaryEntry>>> {
    let mut fb = [0u8; SegmentFooter::LEN];
    read(&mut fb, segment_size - SEG_FOOTER_SIZE)?;
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
    read(&mut sb, u64::from(f.summary_off))?;
    if crc32fast::hash(&sb) != f.summary_crc {
        return Ok(None);
    }
    Ok(decode_summary(&sb))
}

/// Where a cursor's bytes come from.
enum Source {
    /// One `Object` record.
    Single { loc: Location, head: Head },
    /// A chunked object; `open` is the chunk read last (index, place, head).
    Chained {
        chain: Chain,
        desc: ChainDescriptor,
        open: Option<(u32, Location, Head)>,
    },
}

/// A position in a body range, detached from the tier (see
/// [`DiskTier::cursor_range`]): the verified head, the range and, for a
/// chunked object, the chunk being read. Holds no body bytes.
pub struct BodyCursor {
    meta: Bytes,
    body_len: u64,
    /// Next body offset to return.
    pos: u64,
    end: u64,
    src: Source,
}

impl BodyCursor {
    /// The object's meta bytes (already verified).
    pub fn meta(&self) -> &Bytes {
        &self.meta
    }

    /// Length of the whole body.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Whether the object is stored as a chain of chunks.
    pub fn is_chunked(&self) -> bool {
        matches!(self.src, Source::Chained { .. })
    }

    /// Bytes of the range not yet returned.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }
}

/// Streams a body (or a range of it) block by block, verifying each block
/// before returning it. A chunked object is read chunk after chunk, each
/// chunk checked when the stream reaches it; memory held is one block.
pub struct ObjectStream<'a> {
    tier: &'a DiskTier,
    cur: BodyCursor,
}

impl ObjectStream<'_> {
    /// The object's meta bytes (already verified).
    pub fn meta(&self) -> &Bytes {
        self.cur.meta()
    }

    /// Length of the whole body.
    pub fn body_len(&self) -> u64 {
        self.cur.body_len()
    }

    /// Whether the object is stored as a chain of chunks.
    pub fn is_chunked(&self) -> bool {
        self.cur.is_chunked()
    }

    /// The next verified piece (at most one block) of the requested range;
    /// `None` at the end. After an error the stream is finished.
    pub fn next_chunk(&mut self) -> Option<Result<Bytes>> {
        self.tier.read_next(&mut self.cur)
    }

    /// The position, detached from the tier, to go on with
    /// [`DiskTier::read_next`].
    pub fn into_cursor(self) -> BodyCursor {
        self.cur
    }
}

impl Iterator for ObjectStream<'_> {
    type Item = Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk()
    }
}
