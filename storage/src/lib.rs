//! Verge's object store.
//!
//! This crate stores cached objects and knows nothing of HTTP: callers hand it
//! opaque keys and values plus a byte charge, and it decides what to keep.
//! It provides the RAM tier ([`RamTier`], a byte-budgeted S3-FIFO cache) and
//! the disk tier ([`DiskTier`], append-only segments on preallocated files,
//! read through a residency-checked mapping, recovered after a crash; large
//! objects as chunk chains streamed in and out; writes performed by the
//! tier or handed to the caller, e.g. for io_uring).

pub mod disk;
pub mod ram;

pub use disk::{
    BodyCursor, ChunkedInsert, DiskConfig, DiskError, DiskObject, DiskRange, DiskTier, DiskWrite,
    Location, ObjectStream, WriteId,
};
pub use ram::{RamStats, RamTier, Rejected};

#[cfg(test)]
mod test_rng;
