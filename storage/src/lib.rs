//! Verge's object store.
//!
//! This crate stores cached objects and knows nothing of HTTP: callers hand it
//! opaque keys and values plus a byte charge, and it decides what to keep.
//! It provides the RAM tier ([`RamTier`], a byte-budgeted S3-FIFO cache) and
//! the disk tier ([`DiskTier`], append-only segments on preallocated files,
//! read through a residency-checked mapping, recovered after a crash).

pub mod disk;
pub mod ram;

pub use disk::{DiskConfig, DiskError, DiskObject, DiskRange, DiskTier, Location};
pub use ram::{RamStats, RamTier, Rejected};

#[cfg(test)]
mod test_rng;
