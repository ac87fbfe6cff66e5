//! Chunked inserts: objects of any size, written as a chain of `Chunk`
//! records and then a `ChunkedHead`, streamed in with at most one chunk
//! buffered.
//!
//! Owns: [`ChunkedInsert`], the caller-held state of one insert in progress,
//! and the checks that a chain is whole.
//!
//! Invariants:
//! - a `ChunkedInsert` holds fewer than `chunk_size` unwritten bytes: chunk
//!   `i` is appended as soon as its `chunk_size` bytes are known (straight
//!   from the caller's slice when possible), the last, shorter one at finish;
//! - the head is appended only after every chunk, and only if every chunk is
//!   still indexed; so a head in the index or on disk implies its chunks
//!   were appended before it (recovery relies on that order);
//! - until its head is written nothing of an insert is reachable: chunks are
//!   found only through a head carrying the insert's random nonce. An
//!   abandoned insert (abort, drop, error, crash) leaves chunk records that
//!   age out with their segments; `abort_chunked` (and a failed finish) also
//!   drops their index entries at once;
//! - after any error the insert is poisoned: further appends and the finish
//!   fail with [`DiskError::Abandoned`].

use super::digest::{chunk_name, KeyDigest};
use super::error::{DiskError, Result};
use super::format::{ChainDescriptor, RecordKind, RecordLayout};
use super::index::Chain;
use super::io::random_id;
use super::{DiskTier, Location};

/// An object being written as a chain of chunks, owned by the caller: see
/// [`DiskTier::begin_chunked`]. Dropping it without `finish_chunked`
/// abandons the insert (nothing becomes reachable).
#[derive(Debug)]
pub struct ChunkedInsert {
    key: Vec<u8>,
    meta: Vec<u8>,
    digest: KeyDigest,
    nonce: u64,
    chunk_size: u32,
    /// Body bytes of the next chunk, fewer than `chunk_size`.
    pending: Vec<u8>,
    /// Chunk records appended.
    chunks: u32,
    /// Body bytes accepted (appended or pending).
    body_len: u64,
    failed: bool,
}

impl ChunkedInsert {
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Body bytes accepted so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Chunk records appended so far.
    pub fn chunks_written(&self) -> u32 {
        self.chunks
    }

    fn chain(&self) -> Chain {
        Chain {
            digest: self.digest,
            nonce: self.nonce,
            chunks: self.chunks,
        }
    }
}

impl DiskTier {
    /// Body bytes per chunk of a chunked object (see `DiskConfig::chunk_size`).
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Starts storing `key` with `meta` as a chunked object of any size.
    /// Nothing is written until a chunk fills; the object becomes visible
    /// (replacing any older version) only at [`DiskTier::finish_chunked`].
    /// `TooLarge` if the head (key and meta) does not fit in a segment.
    pub fn begin_chunked(&self, key: &[u8], meta: &[u8]) -> Result<ChunkedInsert> {
        let too_large = |len| DiskError::TooLarge {
            len,
            max: self.max_record_len(),
        };
        let head = RecordLayout {
            key_len: u32::try_from(key.len()).map_err(|_| too_large(key.len() as u64))?,
            meta_len: u32::try_from(meta.len()).map_err(|_| too_large(meta.len() as u64))?,
            body_len: ChainDescriptor::LEN as u64,
            block_size: self.cfg.block_size,
        }
        .aligned_len();
        if head > self.max_record_len() {
            return Err(too_large(head));
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&random_id()[..8]);
        Ok(ChunkedInsert {
            key: key.to_vec(),
            meta: meta.to_vec(),
            digest: KeyDigest::of(key),
            nonce: u64::from_le_bytes(nonce),
            chunk_size: self.chunk_size,
            pending: Vec::new(),
            chunks: 0,
            body_len: 0,
            failed: false,
        })
    }

    /// Appends body bytes: every time `chunk_size` bytes have accumulated a
    /// chunk record is appended, so at most one chunk is held in memory.
    pub fn append_chunked(&mut self, ins: &mut ChunkedInsert, mut data: &[u8]) -> Result<()> {
        if ins.failed {
            return Err(DiskError::Abandoned(
                "an earlier step of this insert failed",
            ));
        }
        let cs = ins.chunk_size as usize;
        let total = ins.body_len + data.len() as u64;
        let max = u64::from(ins.chunk_size) * u64::from(u32::MAX);
        if total > max {
            ins.failed = true;
            return Err(DiskError::TooLarge { len: total, max });
        }
        ins.body_len = total;
        if !ins.pending.is_empty() {
            let take = (cs - ins.pending.len()).min(data.len());
            ins.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if ins.pending.len() == cs {
                let chunk = std::mem::take(&mut ins.pending);
                let written = self.write_chunk(ins, &chunk);
                ins.pending = chunk;
                ins.pending.clear();
                written?;
            }
        }
        while data.len() >= cs {
            self.write_chunk(ins, &data[..cs])?;
            data = &data[cs..];
        }
        if !data.is_empty() {
            ins.pending.reserve_exact(cs);
            ins.pending.extend_from_slice(data);
        }
        Ok(())
    }

    /// Appends the last chunk and then the head; returns the head's
    /// location. On error nothing of the insert is reachable.
    pub fn finish_chunked(&mut self, mut ins: ChunkedInsert) -> Result<Location> {
        let result = self.finish_inner(&mut ins);
        if result.is_err() {
            self.abort_chunked(ins);
        }
        result
    }

    fn finish_inner(&mut self, ins: &mut ChunkedInsert) -> Result<Location> {
        if ins.failed {
            return Err(DiskError::Abandoned(
                "an earlier step of this insert failed",
            ));
        }
        if !ins.pending.is_empty() {
            let chunk = std::mem::take(&mut ins.pending);
            self.write_chunk(ins, &chunk)?;
        }
        let lost = DiskError::Abandoned("a chunk was evicted or lost before the head was written");
        if !self.index.chain_complete(&ins.chain()) {
            return Err(lost);
        }
        let desc = ChainDescriptor {
            body_len: ins.body_len,
            chunk_size: ins.chunk_size,
            chunks: ins.chunks,
            nonce: ins.nonce,
        };
        let loc = self
            .append_record(
                RecordKind::ChunkedHead,
                &ins.key,
                &ins.meta,
                &desc.encode(),
                true,
            )?
            .ok_or(DiskError::Corrupt("head did not fit an empty segment"))?;
        // Appending the head may have opened a segment and reclaimed the one
        // holding the first chunks.
        let ikey = ins.digest.index_key();
        if !self.chain_ends_indexed(ikey) {
            self.index.remove(ikey);
            return Err(lost);
        }
        self.stats.chunked_inserts += 1;
        self.settle()?;
        // The head's own write may have failed.
        if !self.chain_ends_indexed(ikey) {
            return Err(lost);
        }
        Ok(loc)
    }

    /// Abandons an insert and drops the index entries of its chunks. The
    /// chunk records themselves age out with their segments.
    pub fn abort_chunked(&mut self, ins: ChunkedInsert) {
        let chain = ins.chain();
        for i in 0..chain.chunks {
            self.index.remove_chunk(chain.chunk_key(i));
        }
    }

    /// Appends chunk number `ins.chunks` holding `body`.
    fn write_chunk(&mut self, ins: &mut ChunkedInsert, body: &[u8]) -> Result<()> {
        let name = chunk_name(&ins.digest, ins.nonce, ins.chunks);
        let appended = self
            .append_record(RecordKind::Chunk, &name, &[], body, true)
            .and_then(|loc| loc.ok_or(DiskError::Corrupt("chunk did not fit an empty segment")));
        if let Err(e) = appended {
            ins.failed = true;
            return Err(e);
        }
        ins.chunks += 1;
        self.stats.chunks_written += 1;
        if let Err(e) = self.settle() {
            ins.failed = true;
            return Err(e);
        }
        // FIFO reclaim drops the oldest chunk first: once chunk 0 is gone
        // (an object larger than the ring) the insert cannot complete.
        if !self.index.has_chunk(&ins.chain(), 0) {
            ins.failed = true;
            return Err(DiskError::Abandoned(
                "the object's first chunk was evicted before it was finished",
            ));
        }
        Ok(())
    }

    /// Whether the head at `ikey` has its first and last chunk indexed. With
    /// FIFO eviction and recovery's full check that means all of them (see
    /// the module doc of `disk`).
    pub(super) fn chain_ends_indexed(&self, ikey: u64) -> bool {
        match self.index.chain(ikey) {
            Some(c) => {
                c.chunks == 0
                    || (self.index.has_chunk(c, 0) && self.index.has_chunk(c, c.chunks - 1))
            }
            None => false,
        }
    }
}
