//! Opening a tier: files, headers, summaries, scanning the unsealed tail,
//! and rebuilding the index.
//!
//! Owns: the decisions about what on-disk state is trusted at start-up.
//!
//! Policy (documented choices):
//! - a missing file is created (and counts as empty); a missing directory is
//!   an `Io` error;
//! - a file whose header is unreadable, or whose segment size, block size
//!   or file size differ from the configuration, is reformatted: a new random
//!   file id makes every old segment header invalid, so its contents are
//!   dropped (a cache may lose data, never serve wrong data);
//! - a file shorter than configured (truncated) is extended again with
//!   fallocate before it is mapped; what was cut off reads as zeros and
//!   recovery keeps whatever was intact before the cut;
//! - a segment with a valid header and a valid footer+summary of the same
//!   `seq` is loaded from its summary; a segment with a valid header but no
//!   valid summary (the open segment at crash time, or a torn seal) is
//!   scanned record by record from its start, fully verified (header CRC,
//!   self-location, digest, every body block), stopping at the first invalid
//!   record — never skipping ahead — and is then sealed at that point;
//! - segments apply in `seq` order, records in offset order: the newest
//!   record of a key wins, tombstones delete; a chunked head's chain comes
//!   from its summary's descriptor slot (or, when scanning, its verified
//!   body), so heads are never read;
//! - once everything is applied, a head any of whose chunks is not indexed
//!   (its segment lost, cut by a scan, or evicted) is dropped: after
//!   recovery every indexed head has all its chunks, which is what lets
//!   `lookup` check only the chain's ends. Chunks whose head never made it
//!   (a crash mid-chain) stay unreachable and age out with their segment;
//! - the writer then opens the segment after the newest one.

use std::fs::OpenOptions;
use std::time::{Duration, Instant};

use super::digest::KeyDigest;
use super::error::{DiskError, Result};
use super::format::{
    block_crc, ChainDescriptor, FileHeader, RecordHeader, RecordKind, SegmentFooter, SegmentHeader,
    SummaryEntry, ALIGN, FILE_HEADER_SIZE, RECORD_HEADER_LEN, SEG_FOOTER_SIZE, SEG_HEADER_SIZE,
    SUMMARY_ENTRY_LEN,
};
use super::index::{Chain, DiskIndex, EntryRole, IndexEntry};
use super::io::{preallocate, random_id, SegmentIo, StdFileIo};
use super::reader::load_summary;
use super::resident::Mapping;
use super::segments::{DataFile, SegInfo, SegState, Segments};
use super::writer::write_footer;
use super::DiskConfig;

/// What happened while opening the tier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub files_created: usize,
    pub files_reformatted: usize,
    pub segments_from_summary: usize,
    pub segments_scanned: usize,
    /// Records (objects and tombstones) applied to the index.
    pub records: usize,
    /// Bytes read while scanning unsealed segments.
    pub bytes_scanned: u64,
    /// Bytes of record data covered by the loaded summaries.
    pub bytes_summarised: u64,
    /// Chunked heads dropped because a chunk was missing.
    pub chains_dropped: usize,
    pub elapsed: Duration,
}

/// A segment found valid at start-up.
struct Found {
    seg: u32,
    seq: u64,
    entries: Vec<SummaryEntry>,
    /// Set when the segment was scanned: where its valid records end.
    scanned_end: Option<u64>,
}

/// Opens every file, returning the segment table and the report so far.
pub(super) fn open_files(cfg: &DiskConfig, report: &mut RecoveryReport) -> Result<Segments> {
    let mut files = Vec::new();
    let mut segs = Vec::new();
    for (fi, (path, size)) in cfg.files.iter().enumerate() {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let old_len = file.metadata()?.len();
        if old_len == 0 {
            report.files_created += 1;
        }
        preallocate(&file, *size)?;
        let count = (size - FILE_HEADER_SIZE) / cfg.segment_size;
        let io = StdFileIo::new(file);
        let mut hb = [0u8; FileHeader::LEN];
        io.read_at(&mut hb, 0)?;
        let want = FileHeader {
            segment_size: cfg.segment_size,
            block_size: cfg.block_size,
            file_size: *size,
            segment_count: count as u32,
            file_id: [0; 16],
        };
        let file_id = match FileHeader::decode(&hb) {
            Some(h)
                if h == FileHeader {
                    file_id: h.file_id,
                    ..want
                } =>
            {
                h.file_id
            }
            _ => {
                if old_len != 0 {
                    report.files_reformatted += 1;
                }
                let h = FileHeader {
                    file_id: random_id(),
                    ..want
                };
                io.write_at(&h.encode(), 0)?;
                io.sync()?;
                h.file_id
            }
        };
        let map = Mapping::new(io.file(), *size)?;
        for i in 0..count {
            segs.push(SegInfo {
                file: fi,
                index_in_file: i as u32,
                base: FILE_HEADER_SIZE + i * cfg.segment_size,
                seq: 0,
                state: SegState::Free,
            });
        }
        files.push(DataFile {
            path: path.clone(),
            io: Box::new(io),
            map,
            file_id,
        });
    }
    if segs.len() > u32::MAX as usize {
        return Err(DiskError::Config("too many segments".into()));
    }
    Ok(Segments { files, segs })
}

/// Loads every valid segment into `index`, seals scanned ones, and returns
/// the newest segment and the next `seq` to use.
pub(super) fn rebuild(
    cfg: &DiskConfig,
    segments: &mut Segments,
    index: &mut DiskIndex,
    report: &mut RecoveryReport,
) -> Result<(Option<u32>, u64)> {
    let start = Instant::now();
    let mut found = Vec::new();
    let mut scratch = Vec::new();
    for seg in 0..segments.segs.len() as u32 {
        if let Some(f) = examine(cfg, segments, seg, &mut scratch, report)? {
            found.push(f);
        }
    }
    found.sort_by_key(|f| f.seq);
    for f in &found {
        let info = &mut segments.segs[f.seg as usize];
        info.seq = f.seq;
        info.state = SegState::Sealed;
        for e in &f.entries {
            apply(index, f.seg, e);
            report.records += 1;
        }
        if let Some(end) = f.scanned_end {
            seal_scanned(cfg, segments, f, end)?;
        }
    }
    report.chains_dropped = index.drop_incomplete_chains();
    report.elapsed = start.elapsed();
    let newest = found.last().map(|f| f.seg);
    let next_seq = found.last().map_or(1, |f| f.seq + 1);
    Ok((newest, next_seq))
}

/// Applies one summary entry of segment `seg` to the index.
fn apply(index: &mut DiskIndex, seg: u32, e: &SummaryEntry) {
    let key = e.digest.index_key();
    let entry = |role| IndexEntry {
        seg,
        offset: e.offset,
        size_class: IndexEntry::size_class_for(e.len.div_ceil(ALIGN) * ALIGN),
        hit: false,
        role,
    };
    match (e.kind, e.chain) {
        (RecordKind::Object, _) => {
            index.insert(key, entry(EntryRole::Object));
        }
        (RecordKind::Chunk, _) => {
            index.insert(key, entry(EntryRole::Chunk));
        }
        (RecordKind::ChunkedHead, Some(c)) => {
            let chain = Chain {
                digest: e.digest,
                nonce: c.nonce,
                chunks: c.chunks,
            };
            index.insert_head(key, entry(EntryRole::ChunkedHead), chain);
        }
        // A head without a chain cannot be served; it still replaces.
        (RecordKind::Tombstone, _) | (RecordKind::ChunkedHead, None) => {
            index.remove(key);
        }
    }
}

/// Reads one segment's header, then its summary or its records.
fn examine(
    cfg: &DiskConfig,
    segments: &Segments,
    seg: u32,
    scratch: &mut Vec<u8>,
    report: &mut RecoveryReport,
) -> Result<Option<Found>> {
    let info = segments.segs[seg as usize];
    let file = &segments.files[info.file];
    let io = file.io.as_ref();
    let mut hb = [0u8; SegmentHeader::LEN];
    io.read_at(&mut hb, info.base)?;
    let hdr = match SegmentHeader::decode(&hb) {
        Some(h) if h.file_id == file.file_id && h.seg_index == info.index_in_file => h,
        _ => return Ok(None),
    };
    let read = |buf: &mut [u8], off: u64| Ok(io.read_at(buf, info.base + off)?);
    if let Some(entries) = load_summary(&read, cfg.segment_size, hdr.seq, &file.file_id)? {
        report.segments_from_summary += 1;
        report.bytes_summarised += entries.iter().map(|e| e.len).sum::<u64>();
        return Ok(Some(Found {
            seg,
            seq: hdr.seq,
            entries,
            scanned_end: None,
        }));
    }
    scratch.resize(cfg.segment_size as usize, 0);
    io.read_at(scratch, info.base)?;
    report.segments_scanned += 1;
    report.bytes_scanned += cfg.segment_size;
    let (entries, end) = scan_records(scratch, hdr.seq);
    Ok(Some(Found {
        seg,
        seq: hdr.seq,
        entries,
        scanned_end: Some(end),
    }))
}

/// Parses records from the start of `seg_bytes` until the first one that
/// fails any check; returns them and the offset where valid data ends.
pub(super) fn scan_records(seg_bytes: &[u8], seq: u64) -> (Vec<SummaryEntry>, u64) {
    let mut entries = Vec::new();
    let mut slots = 0;
    let mut off = SEG_HEADER_SIZE;
    let limit = seg_bytes.len() as u64 - SEG_FOOTER_SIZE;
    while let Some(e) = check_record(seg_bytes, off, seq, limit, slots) {
        off += e.len.div_ceil(ALIGN) * ALIGN;
        slots += e.slots();
        entries.push(e);
    }
    (entries, off)
}

/// Verifies the record at `off` completely (header, key, digest, every
/// block, a head's descriptor); `slots` summary slots are already taken.
fn check_record(b: &[u8], off: u64, seq: u64, limit: u64, slots: u64) -> Option<SummaryEntry> {
    if off + RECORD_HEADER_LEN > limit {
        return None;
    }
    let rec = &b[off as usize..limit as usize];
    let hdr = RecordHeader::decode_unchecked(rec)?;
    let layout = hdr.layout;
    // The record and the summary it would need must fit before the footer.
    let summary = (slots + hdr.kind.summary_slots()) * SUMMARY_ENTRY_LEN;
    if hdr.seq != seq
        || u64::from(hdr.offset_units) * ALIGN != off
        || layout.aligned_len().saturating_add(summary) > limit - off
    {
        return None;
    }
    let key_end = (RECORD_HEADER_LEN + u64::from(layout.key_len)) as usize;
    let body_start = layout.body_start() as usize;
    let (key, meta) = (
        &rec[RECORD_HEADER_LEN as usize..key_end],
        &rec[key_end..body_start],
    );
    if !hdr.check(rec, key, meta) || KeyDigest::of(key) != hdr.digest {
        return None;
    }
    for i in 0..layout.block_count() {
        let (at, len) = layout.block_span(i);
        let (at, len) = (at as usize, len as usize);
        let crc = &rec[at + len..at + len + 4];
        if block_crc(hdr.header_crc, i, &rec[at..at + len]).to_le_bytes() != crc {
            return None;
        }
    }
    let chain = match hdr.kind {
        RecordKind::ChunkedHead => {
            if layout.body_len != ChainDescriptor::LEN as u64 {
                return None;
            }
            let (at, _) = layout.block_span(0);
            Some(ChainDescriptor::decode(&rec[at as usize..])?)
        }
        _ => None,
    };
    Some(SummaryEntry {
        digest: hdr.digest,
        offset: off,
        len: layout.total_len(),
        kind: hdr.kind,
        chain,
    })
}

/// Writes a summary and footer for a segment recovered by scanning.
fn seal_scanned(cfg: &DiskConfig, segments: &Segments, f: &Found, end: u64) -> Result<()> {
    let info = segments.segs[f.seg as usize];
    let file = &segments.files[info.file];
    let mut summary = Vec::new();
    for e in &f.entries {
        e.encode_into(&mut summary);
    }
    file.io.write_at(&summary, info.base + end)?;
    let footer = SegmentFooter {
        seq: f.seq,
        file_id: file.file_id,
        summary_off: end as u32,
        count: (summary.len() as u64 / SUMMARY_ENTRY_LEN) as u32,
        data_end: end as u32,
        summary_crc: crc32fast::hash(&summary),
    };
    write_footer(
        file.io.as_ref(),
        info.base,
        cfg.segment_size,
        &footer,
        cfg.sync_on_seal,
    )?;
    Ok(())
}
