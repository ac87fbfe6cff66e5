//! Verge's object store.
//!
//! This crate stores cached objects and knows nothing of HTTP: callers hand it
//! opaque keys and values plus a byte charge, and it decides what to keep.
//! Today it provides the RAM tier ([`RamTier`], a byte-budgeted S3-FIFO cache);
//! a memory-mapped disk tier will follow.

pub mod ram;

pub use ram::{RamStats, RamTier, Rejected};
