//! The read-only mapping of a data file and the residency check that guards
//! every access to it.
//!
//! Owns: the `memmap2::Mmap` of one file and the `mincore` call.
//!
//! Invariants:
//! - the mapping is `PROT_READ`/`MAP_SHARED`: nothing is written through
//!   it, and writes made with `pwrite` show through it (one page cache);
//! - it covers `[0, len)` of a file that is at least `len` long and is never
//!   truncated while mapped, so no access can SIGBUS;
//! - [`Mapping::copy_if_resident`] touches the mapping only after `mincore`
//!   reported every page of the span resident, so a serving thread takes no
//!   major fault there (a page evicted in the short window between the check
//!   and the copy is the one accepted race; tiny reads skip the mapping, see
//!   `DiskConfig::mmap_min_read`).

use std::fs::File;
use std::io;

use memmap2::{Advice, Mmap, MmapOptions};

/// Pages checked per `mincore` call (one byte of result each).
const MINCORE_CHUNK_PAGES: usize = 256;

/// A read-only mapping of `[0, len)` of a data file.
pub struct Mapping {
    map: Mmap,
    page: usize,
}

impl Mapping {
    /// Maps the first `len` bytes of `file`, which must be at least that long.
    pub fn new(file: &File, len: u64) -> io::Result<Self> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        // SAFETY: the mapping is read-only and the file is owned by this
        // tier, preallocated to at least `len` bytes and never truncated
        // (see the module invariants); other processes modifying it could
        // change bytes under us, which the CRCs on every read catch.
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        // Random access: no readahead on faults we do take (recovery, tests).
        map.advise(Advice::Random)?;
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = usize::try_from(page).unwrap_or(4096).max(1);
        Ok(Mapping { map, page })
    }

    /// Whether every page of `[off, off + len)` is in the page cache.
    /// Out-of-range spans and `mincore` failures answer `false`.
    pub fn resident(&self, off: u64, len: usize) -> bool {
        let Ok(off) = usize::try_from(off) else {
            return false;
        };
        let end = match off.checked_add(len) {
            Some(end) if end <= self.map.len() => end,
            _ => return false,
        };
        if len == 0 {
            return true;
        }
        let mut page = off / self.page * self.page;
        let mut vec = [0u8; MINCORE_CHUNK_PAGES];
        while page < end {
            let span = (end - page).min(MINCORE_CHUNK_PAGES * self.page);
            let pages = span.div_ceil(self.page);
            // SAFETY: `page` is page-aligned and `[page, page + span)` lies
            // inside the live mapping (the map base is page-aligned and
            // `end <= map.len()`); `vec` has room for `pages` result bytes.
            let rc = unsafe {
                libc::mincore(
                    self.map.as_ptr().add(page) as *mut libc::c_void,
                    span,
                    vec.as_mut_ptr(),
                )
            };
            if rc != 0 || vec[..pages].iter().any(|&b| b & 1 == 0) {
                return false;
            }
            page += span;
        }
        true
    }

    /// Copies `[off, off + out.len())` into `out` if it is all resident;
    /// returns whether it did.
    pub fn copy_if_resident(&self, off: u64, out: &mut [u8]) -> bool {
        if !self.resident(off, out.len()) {
            return false;
        }
        let start = off as usize; // fits: checked by `resident`
        out.copy_from_slice(&self.map[start..start + out.len()]);
        true
    }
}
