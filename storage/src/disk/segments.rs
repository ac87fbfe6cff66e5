//! The data files and the table of segments cut from them.
//!
//! Owns: each file's I/O handle and read-only mapping, and per segment its
//! place (file, byte base), its current `seq` and its state.
//!
//! Invariants:
//! - segments are numbered globally, file 0's first; the writer walks them
//!   in that ring order, so on disk `seq` increases along the ring from the
//!   oldest segment to the newest;
//! - at most one segment is `Open`; a `Sealed` segment has its summary and
//!   footer on disk or queued to be written (see `queue`; if that write
//!   fails it has none, and reclaim falls back to sweeping the index); a
//!   `Free` one holds nothing the index points at;
//! - `seq` of a non-free segment equals the `seq` in its on-disk header.

use std::path::PathBuf;

use super::io::SegmentIo;
use super::resident::Mapping;

/// One preallocated, mapped data file.
pub struct DataFile {
    pub path: PathBuf,
    pub io: Box<dyn SegmentIo>,
    pub map: Mapping,
    pub file_id: [u8; 16],
}

/// Lifecycle of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegState {
    Free,
    Open,
    Sealed,
}

/// One segment's place and state.
#[derive(Clone, Copy, Debug)]
pub struct SegInfo {
    pub file: usize,
    pub index_in_file: u32,
    /// File offset of the segment's first byte.
    pub base: u64,
    pub seq: u64,
    pub state: SegState,
}

/// All files and segments of one tier.
pub struct Segments {
    pub files: Vec<DataFile>,
    pub segs: Vec<SegInfo>,
}

impl Segments {
    /// The segment after `seg` in ring order.
    pub fn next(&self, seg: u32) -> u32 {
        if seg as usize + 1 >= self.segs.len() {
            0
        } else {
            seg + 1
        }
    }

    pub fn info(&self, seg: u32) -> Option<&SegInfo> {
        self.segs.get(seg as usize)
    }

    /// The file and the file offset of byte `off` of segment `seg`.
    pub fn locate(&self, seg: u32, off: u64) -> Option<(&DataFile, u64)> {
        let info = self.info(seg)?;
        Some((self.files.get(info.file)?, info.base + off))
    }

    /// Smallest `seq` among segments holding data, if any.
    pub fn oldest_live_seq(&self) -> Option<u64> {
        self.segs
            .iter()
            .filter(|s| s.state != SegState::Free)
            .map(|s| s.seq)
            .min()
    }
}
