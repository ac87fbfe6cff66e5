//! The on-disk format (version 2): byte layouts, encoders and validating
//! decoders. No I/O here.
//!
//! Owns: every constant and field offset that is persisted.
//!
//! Layout of a data file (all integers little-endian):
//! ```text
//! [0, 4096)            FileHeader, zero padded
//! [4096 + i*S, +S)     segment i (S = segment_size)
//!
//! segment:
//! [0, 512)             SegmentHeader (seq, file id, index)
//! [512, data_end)      records, each starting on a 512-byte boundary
//! [summary_off, +32*n) summary: n 32-byte slots, where the footer says:
//!                      ending just before the footer (sealed by the
//!                      writer) or at data_end (sealed by recovery)
//! [S-512, S)           SegmentFooter (written last when sealed)
//!
//! record:
//! RecordHeader (64 B) | key | meta | block 0 | crc 0 | block 1 | crc 1 | ...
//! ```
//! Record kinds: `Object` (key, meta, body), `Tombstone` (key only),
//! `Chunk` (key = [`super::digest::chunk_name`], no meta, body = one chunk of
//! a large object) and `ChunkedHead` (key, meta, body = a 24-byte
//! [`ChainDescriptor`]: total body length, chunk size, chunk count, nonce).
//! A chunked object is its chunks `0..n` in order, then its head, appended
//! last. Every chunk but the last holds exactly `chunk_size` body bytes.
//!
//! A summary is a list of 32-byte slots: one [`SummaryEntry`] per record,
//! and after the entry of a `ChunkedHead` one more slot holding its
//! descriptor (marked `CHAIN_SLOT` at byte 24), so recovery rebuilds chains
//! without reading heads.
//!
//! Version history: 1 had only `Object` and `Tombstone`. A file of another
//! version fails [`FileHeader::decode`] and is reformatted (its contents
//! dropped), never read.
//! Body blocks hold `block_size` bytes (the last may be shorter) and are each
//! followed by a CRC-32 seeded with the record's header CRC and the block
//! number, so a block from another record, another generation of the
//! segment, or another position never verifies.
//!
//! Invariants:
//! - every decoder checks magic, version and its own CRC and returns `None`
//!   on any mismatch; callers treat `None` as "not there";
//! - the record header CRC covers the header's first 60 bytes, the key and
//!   the meta, so a flip anywhere before the body is caught;
//! - a segment's footer is valid only if its `seq` and file id equal the
//!   header's: a footer left over from an earlier generation is ignored.

use super::digest::KeyDigest;

/// Format version written in every header.
pub const FORMAT_VERSION: u16 = 2;
/// Digest algorithm id: FNV-1a-128 ([`KeyDigest::of`]).
pub const DIGEST_FNV1A_128: u32 = 1;
/// Records, the segment header and the footer start on this boundary.
pub const ALIGN: u64 = 512;
/// Bytes reserved for the file header before segment 0.
pub const FILE_HEADER_SIZE: u64 = 4096;
/// Bytes reserved for the segment header.
pub const SEG_HEADER_SIZE: u64 = ALIGN;
/// Bytes reserved for the footer at the end of a segment.
pub const SEG_FOOTER_SIZE: u64 = ALIGN;
/// Length of a record header.
pub const RECORD_HEADER_LEN: u64 = 64;
/// Length of one summary entry.
pub const SUMMARY_ENTRY_LEN: u64 = 32;
/// Length of each body block's CRC.
pub const BLOCK_CRC_LEN: u64 = 4;

const FILE_MAGIC: [u8; 8] = *b"VERGEDSK";
const SEG_MAGIC: u32 = u32::from_le_bytes(*b"VRGS");
const FOOTER_MAGIC: u32 = u32::from_le_bytes(*b"VRGF");
const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"VRGR");
/// Byte 24 of the summary slot that follows a `ChunkedHead` entry (not a
/// valid [`RecordKind`], so a stray descriptor slot never decodes as one).
const CHAIN_SLOT: u8 = 0xc4;

/// Rounds `n` up to a multiple of [`ALIGN`].
/// Saturates instead of overflowing (lengths may come from damaged headers).
pub fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGN).saturating_mul(ALIGN)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn id_at(b: &[u8], at: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    a
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// The first bytes of every data file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub segment_size: u64,
    pub block_size: u32,
    pub file_size: u64,
    pub segment_count: u32,
    pub file_id: [u8; 16],
}

impl FileHeader {
    pub const LEN: usize = 68;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        put(&mut b, 0, &FILE_MAGIC);
        put(&mut b, 8, &FORMAT_VERSION.to_le_bytes());
        put(&mut b, 12, &(ALIGN as u32).to_le_bytes());
        put(&mut b, 16, &self.segment_size.to_le_bytes());
        put(&mut b, 24, &self.block_size.to_le_bytes());
        put(&mut b, 28, &DIGEST_FNV1A_128.to_le_bytes());
        put(&mut b, 32, &self.file_size.to_le_bytes());
        put(&mut b, 40, &self.segment_count.to_le_bytes());
        put(&mut b, 48, &self.file_id);
        let crc = crc32fast::hash(&b[..64]);
        put(&mut b, 64, &crc.to_le_bytes());
        b
    }

    /// Decodes a header written by this format version, or `None`.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < Self::LEN
            || b[..8] != FILE_MAGIC
            || u16_at(b, 8) != FORMAT_VERSION
            || u32_at(b, 12) != ALIGN as u32
            || u32_at(b, 28) != DIGEST_FNV1A_128
            || u32_at(b, 64) != crc32fast::hash(&b[..64])
        {
            return None;
        }
        Some(FileHeader {
            segment_size: u64_at(b, 16),
            block_size: u32_at(b, 24),
            file_size: u64_at(b, 32),
            segment_count: u32_at(b, 40),
            file_id: id_at(b, 48),
        })
    }
}

/// The first bytes of every segment; rewritten (with a new `seq`) on reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub seq: u64,
    pub file_id: [u8; 16],
    pub seg_index: u32,
    pub created_unix_s: u64,
}

impl SegmentHeader {
    pub const LEN: usize = 52;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        put(&mut b, 0, &SEG_MAGIC.to_le_bytes());
        put(&mut b, 4, &FORMAT_VERSION.to_le_bytes());
        put(&mut b, 8, &self.seq.to_le_bytes());
        put(&mut b, 16, &self.file_id);
        put(&mut b, 32, &self.seg_index.to_le_bytes());
        put(&mut b, 40, &self.created_unix_s.to_le_bytes());
        let crc = crc32fast::hash(&b[..48]);
        put(&mut b, 48, &crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < Self::LEN
            || u32_at(b, 0) != SEG_MAGIC
            || u16_at(b, 4) != FORMAT_VERSION
            || u32_at(b, 48) != crc32fast::hash(&b[..48])
        {
            return None;
        }
        Some(SegmentHeader {
            seq: u64_at(b, 8),
            file_id: id_at(b, 16),
            seg_index: u32_at(b, 32),
            created_unix_s: u64_at(b, 40),
        })
    }
}

/// Written last when a segment is sealed; points at the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentFooter {
    pub seq: u64,
    pub file_id: [u8; 16],
    pub summary_off: u32,
    pub count: u32,
    pub data_end: u32,
    pub summary_crc: u32,
}

impl SegmentFooter {
    pub const LEN: usize = 52;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        put(&mut b, 0, &FOOTER_MAGIC.to_le_bytes());
        put(&mut b, 4, &FORMAT_VERSION.to_le_bytes());
        put(&mut b, 8, &self.seq.to_le_bytes());
        put(&mut b, 16, &self.file_id);
        put(&mut b, 32, &self.summary_off.to_le_bytes());
        put(&mut b, 36, &self.count.to_le_bytes());
        put(&mut b, 40, &self.data_end.to_le_bytes());
        put(&mut b, 44, &self.summary_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[..48]);
        put(&mut b, 48, &crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < Self::LEN
            || u32_at(b, 0) != FOOTER_MAGIC
            || u16_at(b, 4) != FORMAT_VERSION
            || u32_at(b, 48) != crc32fast::hash(&b[..48])
        {
            return None;
        }
        Some(SegmentFooter {
            seq: u64_at(b, 8),
            file_id: id_at(b, 16),
            summary_off: u32_at(b, 32),
            count: u32_at(b, 36),
            data_end: u32_at(b, 40),
            summary_crc: u32_at(b, 44),
        })
    }
}

/// What a record says about its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A stored object: key, meta and body.
    Object = 1,
    /// The key was removed; no meta or body.
    Tombstone = 2,
    /// One chunk of a chunked object; the key is the chunk's name.
    Chunk = 3,
    /// The head of a chunked object, written after all its chunks; the body
    /// is its [`ChainDescriptor`].
    ChunkedHead = 4,
}

impl RecordKind {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(RecordKind::Object),
            2 => Some(RecordKind::Tombstone),
            3 => Some(RecordKind::Chunk),
            4 => Some(RecordKind::ChunkedHead),
            _ => None,
        }
    }

    /// Summary slots an entry of this kind takes.
    pub fn summary_slots(self) -> u64 {
        match self {
            RecordKind::ChunkedHead => 2,
            _ => 1,
        }
    }
}

/// How a chunked object is cut: the body of its head record, and the extra
/// summary slot after the head's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainDescriptor {
    /// Total body length.
    pub body_len: u64,
    /// Body bytes per chunk (the last chunk may be shorter).
    pub chunk_size: u32,
    /// Number of chunks: `body_len.div_ceil(chunk_size)`.
    pub chunks: u32,
    /// Per-insert random number mixed into the chunks' names.
    pub nonce: u64,
}

impl ChainDescriptor {
    pub const LEN: usize = 24;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        put(&mut b, 0, &self.body_len.to_le_bytes());
        put(&mut b, 8, &self.chunk_size.to_le_bytes());
        put(&mut b, 12, &self.chunks.to_le_bytes());
        put(&mut b, 16, &self.nonce.to_le_bytes());
        b
    }

    /// Decodes a descriptor whose fields agree, or `None`. (Integrity comes
    /// from the CRC around it: the head's block CRC or the summary's.)
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < Self::LEN {
            return None;
        }
        let d = ChainDescriptor {
            body_len: u64_at(b, 0),
            chunk_size: u32_at(b, 8),
            chunks: u32_at(b, 12),
            nonce: u64_at(b, 16),
        };
        (d.chunk_size > 0 && d.body_len.div_ceil(u64::from(d.chunk_size)) == u64::from(d.chunks))
            .then_some(d)
    }

    /// Body bytes of chunk `i` (`i < chunks`).
    pub fn chunk_len(&self, i: u32) -> u64 {
        let cs = u64::from(self.chunk_size);
        cs.min(self.body_len - u64::from(i) * cs)
    }
}

/// Sizes of one record's parts; all offsets are relative to its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLayout {
    pub key_len: u32,
    pub meta_len: u32,
    pub body_len: u64,
    pub block_size: u32,
}

impl RecordLayout {
    pub fn body_start(&self) -> u64 {
        RECORD_HEADER_LEN + u64::from(self.key_len) + u64::from(self.meta_len)
    }

    pub fn block_count(&self) -> u64 {
        self.body_len.div_ceil(u64::from(self.block_size))
    }

    /// Offset (from the record start) and data length of block `i`.
    pub fn block_span(&self, i: u64) -> (u64, u64) {
        let bs = u64::from(self.block_size);
        let off = self.body_start() + i * (bs + BLOCK_CRC_LEN);
        (off, bs.min(self.body_len - i * bs))
    }

    /// Exact length: header, key, meta, blocks and their CRCs. Saturates
    /// (lengths may come from damaged headers; callers bound-check it).
    pub fn total_len(&self) -> u64 {
        self.body_start()
            .saturating_add(self.body_len)
            .saturating_add(self.block_count().saturating_mul(BLOCK_CRC_LEN))
    }

    /// Length rounded up to [`ALIGN`]: the distance to the next record.
    pub fn aligned_len(&self) -> u64 {
        align_up(self.total_len())
    }
}

/// A decoded record header (its CRC already checked against key and meta).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: RecordKind,
    pub seq: u64,
    pub offset_units: u32,
    pub digest: KeyDigest,
    pub layout: RecordLayout,
    pub header_crc: u32,
}

impl RecordHeader {
    /// Encodes the header; `key_meta` must be the key followed by the meta.
    pub fn encode(
        kind: RecordKind,
        seq: u64,
        offset: u64,
        digest: &KeyDigest,
        layout: &RecordLayout,
        key_meta: &[&[u8]],
    ) -> [u8; RECORD_HEADER_LEN as usize] {
        let mut b = [0u8; RECORD_HEADER_LEN as usize];
        put(&mut b, 0, &RECORD_MAGIC.to_le_bytes());
        put(&mut b, 4, &FORMAT_VERSION.to_le_bytes());
        b[6] = kind as u8;
        put(&mut b, 8, &seq.to_le_bytes());
        put(&mut b, 16, &((offset / ALIGN) as u32).to_le_bytes());
        put(&mut b, 20, &layout.block_size.to_le_bytes());
        put(&mut b, 24, &digest.0);
        put(&mut b, 40, &layout.key_len.to_le_bytes());
        put(&mut b, 44, &layout.meta_len.to_le_bytes());
        put(&mut b, 48, &layout.body_len.to_le_bytes());
        put(&mut b, 56, &(layout.block_count() as u32).to_le_bytes());
        let crc = header_crc(&b[..60], key_meta);
        put(&mut b, 60, &crc.to_le_bytes());
        b
    }

    /// Decodes the fixed fields without checking the CRC (which needs the
    /// key and meta): use [`RecordHeader::check`] once they are read.
    pub fn decode_unchecked(b: &[u8]) -> Option<Self> {
        if b.len() < RECORD_HEADER_LEN as usize
            || u32_at(b, 0) != RECORD_MAGIC
            || u16_at(b, 4) != FORMAT_VERSION
        {
            return None;
        }
        let layout = RecordLayout {
            key_len: u32_at(b, 40),
            meta_len: u32_at(b, 44),
            body_len: u64_at(b, 48),
            block_size: u32_at(b, 20),
        };
        if layout.block_size == 0 || u64::from(u32_at(b, 56)) != layout.block_count() {
            return None;
        }
        Some(RecordHeader {
            kind: RecordKind::from_u8(b[6])?,
            seq: u64_at(b, 8),
            offset_units: u32_at(b, 16),
            digest: KeyDigest(id_at(b, 24)),
            layout,
            header_crc: u32_at(b, 60),
        })
    }

    /// Whether the stored CRC matches the header bytes `b` plus key and meta.
    pub fn check(&self, b: &[u8], key: &[u8], meta: &[u8]) -> bool {
        b.len() >= RECORD_HEADER_LEN as usize
            && header_crc(&b[..60], &[key, meta]) == self.header_crc
    }
}

fn header_crc(fixed: &[u8], key_meta: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(fixed);
    for part in key_meta {
        h.update(part);
    }
    h.finalize()
}

/// CRC of body block `index`, bound to its record through `header_crc`.
pub fn block_crc(header_crc: u32, index: u64, data: &[u8]) -> u32 {
    let seed = header_crc ^ (index as u32).wrapping_mul(0x9e37_79b1);
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(data);
    h.finalize()
}

/// One record of a sealed segment's summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SummaryEntry {
    pub digest: KeyDigest,
    pub offset: u64,
    pub len: u64,
    pub kind: RecordKind,
    /// The chain of a `ChunkedHead` (always `Some` for that kind only).
    pub chain: Option<ChainDescriptor>,
}

impl SummaryEntry {
    /// Appends the entry's slot, and the descriptor slot of a head.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        debug_assert_eq!(self.chain.is_some(), self.kind == RecordKind::ChunkedHead);
        let mut b = [0u8; SUMMARY_ENTRY_LEN as usize];
        put(&mut b, 0, &self.digest.0);
        put(&mut b, 16, &((self.offset / ALIGN) as u32).to_le_bytes());
        put(&mut b, 20, &(self.len as u32).to_le_bytes());
        b[24] = self.kind as u8;
        out.extend_from_slice(&b);
        if let Some(chain) = &self.chain {
            let mut c = [0u8; SUMMARY_ENTRY_LEN as usize];
            put(&mut c, 0, &chain.encode());
            c[24] = CHAIN_SLOT;
            out.extend_from_slice(&c);
        }
    }

    /// Summary slots this entry takes.
    pub fn slots(&self) -> u64 {
        self.kind.summary_slots()
    }
}

/// Decodes a whole summary (its CRC already checked); `None` if any slot is
/// malformed or a head lacks its descriptor slot.
pub fn decode_summary(b: &[u8]) -> Option<Vec<SummaryEntry>> {
    let mut slots = b.chunks_exact(SUMMARY_ENTRY_LEN as usize);
    let mut out = Vec::with_capacity(slots.len());
    while let Some(s) = slots.next() {
        let kind = RecordKind::from_u8(s[24])?;
        let chain = if kind == RecordKind::ChunkedHead {
            let c = slots.next().filter(|c| c[24] == CHAIN_SLOT)?;
            Some(ChainDescriptor::decode(c)?)
        } else {
            None
        };
        out.push(SummaryEntry {
            digest: KeyDigest(id_at(s, 0)),
            offset: u64::from(u32_at(s, 16)) * ALIGN,
            len: u64::from(u32_at(s, 20)),
            kind,
            chain,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_reject_flips() {
        let fh = FileHeader {
            segment_size: 1 << 20,
            block_size: 65536,
            file_size: 9 << 20,
            segment_count: 8,
            file_id: [7; 16],
        };
        let b = fh.encode();
        assert_eq!(FileHeader::decode(&b), Some(fh));
        for i in 0..b.len() {
            let mut c = b;
            c[i] ^= 0x10;
            assert_eq!(FileHeader::decode(&c), None, "flip at {i}");
        }
        let sh = SegmentHeader {
            seq: 42,
            file_id: [1; 16],
            seg_index: 3,
            created_unix_s: 99,
        };
        assert_eq!(SegmentHeader::decode(&sh.encode()), Some(sh));
        let f = SegmentFooter {
            seq: 42,
            file_id: [1; 16],
            summary_off: 4096,
            count: 3,
            data_end: 4096,
            summary_crc: 5,
        };
        assert_eq!(SegmentFooter::decode(&f.encode()), Some(f));
    }

    #[test]
    fn record_layout_math() {
        let l = RecordLayout {
            key_len: 10,
            meta_len: 20,
            body_len: 250,
            block_size: 100,
        };
        assert_eq!(l.body_start(), 94);
        assert_eq!(l.block_count(), 3);
        assert_eq!(l.block_span(0), (94, 100));
        assert_eq!(l.block_span(2), (94 + 208, 50));
        assert_eq!(l.total_len(), 94 + 250 + 12);
        assert_eq!(l.aligned_len(), 512);
        let empty = RecordLayout { body_len: 0, ..l };
        assert_eq!(empty.block_count(), 0);
        assert_eq!(empty.total_len(), 94);
    }

    #[test]
    fn chain_descriptor_and_summary_slots_round_trip() {
        let d = ChainDescriptor {
            body_len: 10 * 4096 + 1,
            chunk_size: 4096,
            chunks: 11,
            nonce: 0xdead_beef_0123,
        };
        assert_eq!(ChainDescriptor::decode(&d.encode()), Some(d));
        assert_eq!(d.chunk_len(0), 4096);
        assert_eq!(d.chunk_len(10), 1);
        let bad = ChainDescriptor { chunks: 10, ..d };
        assert_eq!(ChainDescriptor::decode(&bad.encode()), None);
        let zero = ChainDescriptor { chunk_size: 0, ..d };
        assert_eq!(ChainDescriptor::decode(&zero.encode()), None);
        let empty = ChainDescriptor {
            body_len: 0,
            chunks: 0,
            ..d
        };
        assert_eq!(ChainDescriptor::decode(&empty.encode()), Some(empty));

        let entries = vec![
            SummaryEntry {
                digest: KeyDigest::of(b"c"),
                offset: 512,
                len: 5000,
                kind: RecordKind::Chunk,
                chain: None,
            },
            SummaryEntry {
                digest: KeyDigest::of(b"h"),
                offset: 5632,
                len: 200,
                kind: RecordKind::ChunkedHead,
                chain: Some(d),
            },
            SummaryEntry {
                digest: KeyDigest::of(b"t"),
                offset: 6144,
                len: 70,
                kind: RecordKind::Tombstone,
                chain: None,
            },
        ];
        let mut b = Vec::new();
        for e in &entries {
            e.encode_into(&mut b);
        }
        let slots: u64 = entries.iter().map(|e| e.slots()).sum();
        assert_eq!(b.len() as u64, slots * SUMMARY_ENTRY_LEN);
        assert_eq!(decode_summary(&b), Some(entries));
        // A head without its descriptor slot, or a stray descriptor slot.
        assert_eq!(decode_summary(&b[..64]), None);
        assert_eq!(decode_summary(&b[64..]), None);
    }

    #[test]
    fn record_header_round_trip() {
        let d = KeyDigest::of(b"k");
        let l = RecordLayout {
            key_len: 1,
            meta_len: 2,
            body_len: 5,
            block_size: 4,
        };
        let b = RecordHeader::encode(RecordKind::Object, 9, 1024, &d, &l, &[b"k", b"mm"]);
        let h = RecordHeader::decode_unchecked(&b).expect("decodes");
        assert_eq!(
            (h.kind, h.seq, h.offset_units, h.digest, h.layout),
            (RecordKind::Object, 9, 2, d, l)
        );
        assert!(h.check(&b, b"k", b"mm"));
        assert!(!h.check(&b, b"k", b"mn"));
        assert_ne!(
            block_crc(h.header_crc, 0, b"abcd"),
            block_crc(h.header_crc, 1, b"abcd")
        );
    }
}
