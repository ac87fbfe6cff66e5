//! The syscalls the disk tier makes on its data files, behind [`SegmentIo`]
//! so that io_uring (or a fault-injecting fake) can replace them.
//!
//! Owns: positional reads and writes, `fdatasync`, preallocation.
//!
//! Invariants:
//! - nothing here ever truncates or hole-punches a file: data files are
//!   mapped, and shrinking a mapped file turns reads into SIGBUS;
//! - `read_at`/`write_at` transfer the whole buffer or fail.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;

/// Positional I/O on one data file.
pub trait SegmentIo {
    /// Writes all of `buf` at byte offset `off`.
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()>;
    /// Fills all of `buf` from byte offset `off`.
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()>;
    /// Makes written data durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
}

/// [`SegmentIo`] through `pwrite`/`pread`/`fdatasync` on a plain file.
#[derive(Debug)]
pub struct StdFileIo {
    file: File,
}

impl StdFileIo {
    pub fn new(file: File) -> Self {
        StdFileIo { file }
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

impl SegmentIo for StdFileIo {
    fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        self.file.write_all_at(buf, off)
    }

    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, off)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Allocates blocks for `[0, len)` so later writes cannot fail for space and
/// the file is at least `len` long. Never shrinks the file.
pub fn preallocate(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file size overflows off_t"))?;
    // SAFETY: posix_fallocate only reads its integer arguments; the fd is
    // open and owned by `file` for the duration of the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate (e.g. some overlays): fall back to
        // extending the length, sparse. set_len only ever grows here.
        libc::EOPNOTSUPP | libc::EINVAL => {
            if file.metadata()?.len() < len as u64 {
                file.set_len(len as u64)?;
            }
            Ok(())
        }
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// 16 random bytes from the kernel (for file ids), or a time/pid mix if
/// `getrandom` is unavailable.
pub fn random_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    // SAFETY: the pointer and length describe `id`, a live, writable array.
    let n = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
    if n != id.len() as isize {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        id = (nanos ^ (u128::from(std::process::id()) << 96)).to_le_bytes();
    }
    id
}
