//! The write queue: writes of the aggregation buffer (and segment seals)
//! waiting for, or in the hands of, whoever performs them — the tier itself
//! with `pwrite` (the synchronous path), or the caller, e.g. through
//! io_uring ([`super::DiskTier::take_write`] / `complete_write`).
//!
//! Owns: every write not yet completed, and the deferred seal of each
//! segment generation whose other writes are still outstanding.
//!
//! Invariants:
//! - a job's bytes stay here, readable through the tier's read paths, from
//!   the moment its records are appended until the job completes (with
//!   success or failure); after a success they are read from the file;
//! - the jobs of one segment generation (segment, `seq`) never overlap;
//! - a job is handed out only when no job of an older generation of the
//!   same segment is outstanding, so a late write from a segment's previous
//!   life never lands on top of its new one (reclaim cancels the old
//!   generation's jobs not yet handed out);
//! - a generation's seal (its summary followed by its footer, one write at
//!   the end of the segment, flagged to be preceded by `fdatasync` when
//!   `sync_on_seal`) is built and handed out only once every other job of
//!   that generation has completed, so a footer never describes bytes that
//!   are not written; records overlapping a failed write are left out of
//!   the summary, except tombstones, which are applied from the summary and
//!   never read, so a remove stays durable (a lost seal write just means
//!   recovery scans the segment).

use std::collections::VecDeque;

use bytes::Bytes;

use super::format::{
    RecordKind, SegmentFooter, SummaryEntry, ALIGN, SEG_FOOTER_SIZE, SUMMARY_ENTRY_LEN,
};

/// Names one write handed out by [`super::DiskTier::take_write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WriteId(u64);

/// A write for the caller to perform: all of `data` at byte `offset` of data
/// file number `file` (its path: [`super::DiskTier::file_path`]), then
/// report the outcome with [`super::DiskTier::complete_write`]. When
/// `sync_before` is set, first make the file's earlier writes durable
/// (`fdatasync`): this is a segment's footer.
#[derive(Clone, Debug)]
pub struct DiskWrite {
    pub id: WriteId,
    pub file: usize,
    pub offset: u64,
    pub data: Bytes,
    pub sync_before: bool,
}

/// What a generation's seal needs: built into bytes when handed out.
#[derive(Debug)]
pub(super) struct Sealing {
    pub entries: Vec<SummaryEntry>,
    /// Segment byte ranges whose write failed.
    pub failed: Vec<(u64, u64)>,
    pub data_end: u64,
    pub file_id: [u8; 16],
}

impl Sealing {
    /// Entries whose record was completely written, and every tombstone.
    pub fn kept(&self) -> impl Iterator<Item = &SummaryEntry> + '_ {
        self.entries.iter().filter(|e| {
            e.kind == RecordKind::Tombstone
                || !self
                    .failed
                    .iter()
                    .any(|&(s, t)| e.offset < t && e.offset + e.len > s)
        })
    }

    /// The summary and footer as one span starting at the returned
    /// segment offset and ending at the segment's end.
    fn encode(&self, seq: u64, segment_size: u64) -> (u64, Vec<u8>) {
        let mut summary = Vec::new();
        for e in self.kept() {
            e.encode_into(&mut summary);
        }
        let footer_at = segment_size - SEG_FOOTER_SIZE;
        // Room was reserved by the writer: the summary ends at or before
        // the footer and starts at or after the cursor (which is aligned).
        let start = (footer_at - summary.len() as u64) / ALIGN * ALIGN;
        debug_assert!(start >= self.data_end);
        let footer = SegmentFooter {
            seq,
            file_id: self.file_id,
            summary_off: start as u32,
            count: (summary.len() as u64 / SUMMARY_ENTRY_LEN) as u32,
            data_end: self.data_end as u32,
            summary_crc: crc32fast::hash(&summary),
        };
        let mut bytes = vec![0u8; (segment_size - start) as usize];
        bytes[..summary.len()].copy_from_slice(&summary);
        let f = (footer_at - start) as usize;
        bytes[f..f + SegmentFooter::LEN].copy_from_slice(&footer.encode());
        (start, bytes)
    }
}

#[derive(Debug)]
enum Payload {
    Data(Bytes),
    /// A seal not handed out yet (no bytes until then).
    Seal(Box<Sealing>),
}

/// One outstanding write.
#[derive(Debug)]
pub(super) struct Job {
    id: u64,
    pub seg: u32,
    pub seq: u64,
    file: usize,
    /// File offset of the segment.
    base: u64,
    /// Segment offset of the first byte (a seal's is set when built).
    pub off: u64,
    payload: Payload,
    /// A generation's summary and footer.
    seal: bool,
    sync_before: bool,
    taken: bool,
}

impl Job {
    /// The bytes, once there are any.
    pub fn data(&self) -> Option<&Bytes> {
        match &self.payload {
            Payload::Data(b) => Some(b),
            Payload::Seal(_) => None,
        }
    }

    pub fn is_seal(&self) -> bool {
        self.seal
    }
}

/// Outstanding writes in the order they were queued.
#[derive(Debug, Default)]
pub(super) struct WriteQueue {
    jobs: VecDeque<Job>,
    next_id: u64,
    /// Bytes of data jobs outstanding.
    bytes: usize,
}

impl WriteQueue {
    /// Queues `data` for segment offset `off` of generation `(seg, seq)`.
    pub fn push_data(&mut self, seg: u32, seq: u64, file: usize, base: u64, off: u64, data: Bytes) {
        self.bytes += data.len();
        self.push(Job {
            id: 0,
            seg,
            seq,
            file,
            base,
            off,
            payload: Payload::Data(data),
            seal: false,
            sync_before: false,
            taken: false,
        });
    }

    /// Queues the seal of generation `(seg, seq)`, after all its data.
    pub fn push_seal(
        &mut self,
        seg: u32,
        seq: u64,
        file: usize,
        base: u64,
        s: Sealing,
        sync: bool,
    ) {
        self.push(Job {
            id: 0,
            seg,
            seq,
            file,
            base,
            off: 0,
            payload: Payload::Seal(Box::new(s)),
            seal: true,
            sync_before: sync,
            taken: false,
        });
    }

    fn push(&mut self, mut job: Job) {
        job.id = self.next_id;
        self.next_id += 1;
        self.jobs.push_back(job);
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Bytes of data outstanding (queued or in flight).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether job `i` may be handed out now (see the module invariants).
    fn ready(&self, i: usize) -> bool {
        let j = &self.jobs[i];
        !j.taken
            && !self.jobs.iter().any(|k| {
                k.id != j.id && k.seg == j.seg && (k.seq < j.seq || (j.seal && k.seq == j.seq))
            })
    }

    /// Hands out the first job that may start now, building a seal's bytes.
    pub fn take(&mut self, segment_size: u64) -> Option<DiskWrite> {
        let i = (0..self.jobs.len()).find(|&i| self.ready(i))?;
        let job = &mut self.jobs[i];
        if let Payload::Seal(s) = &job.payload {
            let (start, bytes) = s.encode(job.seq, segment_size);
            job.off = start;
            job.payload = Payload::Data(Bytes::from(bytes));
        }
        job.taken = true;
        let data = job.data()?.clone();
        Some(DiskWrite {
            id: WriteId(job.id),
            file: job.file,
            offset: job.base + job.off,
            data,
            sync_before: job.sync_before,
        })
    }

    /// Removes a handed-out job and returns it; `None` if `id` is unknown
    /// (already completed, cancelled, or never handed out).
    pub fn complete(&mut self, id: WriteId) -> Option<Job> {
        let i = self.jobs.iter().position(|j| j.id == id.0 && j.taken)?;
        let job = self.jobs.remove(i)?;
        if !job.seal {
            self.bytes -= job.data().map_or(0, |d| d.len());
        }
        Some(job)
    }

    /// Drops the jobs of generation `(seg, seq)` not handed out yet (the
    /// generation is being reclaimed).
    pub fn cancel_generation(&mut self, seg: u32, seq: u64) {
        let mut freed = 0;
        self.jobs.retain(|j| {
            let drop = j.seg == seg && j.seq == seq && !j.taken;
            if drop && !j.seal {
                freed += j.data().map_or(0, |d| d.len());
            }
            !drop
        });
        self.bytes -= freed;
    }

    /// The seal of `(seg, seq)` if it has not been handed out yet.
    pub fn sealing(&self, seg: u32, seq: u64) -> Option<&Sealing> {
        self.jobs.iter().find_map(|j| match &j.payload {
            Payload::Seal(s) if j.seg == seg && j.seq == seq => Some(&**s),
            _ => None,
        })
    }

    /// The seal of `(seg, seq)` if it has not been handed out yet.
    pub fn sealing_mut(&mut self, seg: u32, seq: u64) -> Option<&mut Sealing> {
        self.jobs.iter_mut().find_map(|j| match &mut j.payload {
            Payload::Seal(s) if j.seg == seg && j.seq == seq => Some(&mut **s),
            _ => None,
        })
    }

    /// The in-memory bytes of generation `(seg, seq)`: (segment offset, bytes).
    pub fn regions(&self, seg: u32, seq: u64) -> impl Iterator<Item = (u64, &Bytes)> + '_ {
        self.jobs
            .iter()
            .filter(move |j| j.seg == seg && j.seq == seq)
            .filter_map(|j| j.data().map(|d| (j.off, d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::digest::KeyDigest;
    use crate::disk::format::decode_summary;

    fn data(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn seals_wait_for_their_generation_and_reuse_waits_for_the_old_one() {
        let mut q = WriteQueue::default();
        q.push_data(0, 1, 0, 4096, 0, data(512));
        q.push_data(0, 1, 0, 4096, 512, data(1024));
        let entry = SummaryEntry {
            digest: KeyDigest::of(b"k"),
            offset: 512,
            len: 1000,
            kind: RecordKind::Object,
            chain: None,
        };
        q.push_seal(
            0,
            1,
            0,
            4096,
            Sealing {
                entries: vec![entry],
                failed: Vec::new(),
                data_end: 1536,
                file_id: [3; 16],
            },
            true,
        );
        q.push_data(1, 2, 0, 4096 + 65536, 0, data(512));
        assert_eq!(q.bytes(), 2048);
        let a = q.take(65536).expect("first data");
        let b = q.take(65536).expect("second data");
        let c = q.take(65536).expect("next segment's header, not the seal");
        assert_eq!((a.offset, b.offset, c.offset), (4096, 4608, 4096 + 65536));
        assert!(q.take(65536).is_none(), "the seal waits for a and b");
        assert!(q.complete(a.id).is_some());
        assert!(q.complete(a.id).is_none(), "completed once");
        assert!(q.take(65536).is_none());
        q.complete(b.id);
        let seal = q.take(65536).expect("seal");
        assert!(seal.sync_before);
        assert_eq!(seal.offset + seal.data.len() as u64, 4096 + 65536);
        let footer_at = seal.data.len() - 512;
        let f = SegmentFooter::decode(&seal.data[footer_at..]).expect("footer");
        let start = u64::from(f.summary_off) + 4096;
        assert_eq!(start, seal.offset);
        let s = &seal.data[..(f.count as usize * 32)];
        assert_eq!(crc32fast::hash(s), f.summary_crc);
        assert_eq!(decode_summary(s), Some(vec![entry]));
        // A reused segment waits for its previous life's writes.
        q.push_data(1, 9, 0, 4096 + 65536, 0, data(512));
        assert!(
            q.take(65536).is_none(),
            "generation 2 of segment 1 is in flight"
        );
        q.complete(c.id);
        assert!(q.take(65536).is_some());
    }

    #[test]
    fn failed_ranges_leave_entries_out_and_cancel_frees() {
        let e = |offset| SummaryEntry {
            digest: KeyDigest::of(b"k"),
            offset,
            len: 600,
            kind: RecordKind::Object,
            chain: None,
        };
        let tomb = SummaryEntry {
            offset: 1536 + 512,
            len: 80,
            kind: RecordKind::Tombstone,
            ..e(0)
        };
        let s = Sealing {
            entries: vec![e(512), e(1536), tomb, e(2560)],
            failed: vec![(2000, 2100)],
            data_end: 3584,
            file_id: [0; 16],
        };
        let kept: Vec<u64> = s.kept().map(|e| e.offset).collect();
        assert_eq!(kept, vec![512, 2048, 2560], "tombstones always stay");
        let mut q = WriteQueue::default();
        q.push_data(0, 1, 0, 0, 0, data(100));
        q.push_seal(0, 1, 0, 0, s, false);
        assert!(q.sealing_mut(0, 1).is_some());
        assert_eq!(q.regions(0, 1).count(), 1);
        q.cancel_generation(0, 1);
        assert_eq!(q.len(), 0);
        assert_eq!(q.bytes(), 0);
    }
}
