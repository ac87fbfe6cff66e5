//! Errors of the disk tier.
//!
//! Owns: [`DiskError`] and the conversions into it.
//!
//! Invariant: a read never hands out bytes that failed a check; every
//! failed check surfaces as [`DiskError::Corrupt`] naming what failed, and the
//! caller is expected to `remove` the key.

use std::fmt;
use std::io;

/// What went wrong in the disk tier.
#[derive(Debug)]
pub enum DiskError {
    /// A syscall failed.
    Io(io::Error),
    /// A check failed on data read back (CRC, magic, self-location, lengths).
    Corrupt(&'static str),
    /// The configuration cannot work; the string says why.
    Config(String),
    /// The object does not fit in one segment (or, chunked, exceeds the
    /// chunk count limit).
    TooLarge { len: u64, max: u64 },
    /// A chunked insert could not complete (an earlier append failed, or its
    /// chunks were evicted or lost before its head was written); nothing of
    /// it is reachable.
    Abandoned(&'static str),
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::Io(e) => write!(f, "disk tier I/O error: {e}"),
            DiskError::Corrupt(what) => write!(f, "disk tier record is corrupt: {what}"),
            DiskError::Config(why) => write!(f, "invalid disk tier configuration: {why}"),
            DiskError::Abandoned(why) => write!(f, "chunked insert abandoned: {why}"),
            DiskError::TooLarge { len, max } => {
                write!(
                    f,
                    "record of {len} bytes exceeds the {max}-byte segment capacity"
                )
            }
        }
    }
}

impl std::error::Error for DiskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DiskError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for DiskError {
    fn from(e: io::Error) -> Self {
        DiskError::Io(e)
    }
}

/// Result alias for the disk tier.
pub type Result<T> = std::result::Result<T, DiskError>;
