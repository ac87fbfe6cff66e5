//! The disk stripe's writes, performed through io_uring (glommio buffered files) instead of
//! `pwrite` on the serving thread: the disk tier queues every full (or due) aggregation buffer and
//! every segment seal; this task takes them, writes them asynchronously, and reports each outcome.
//!
//! Invariants: a queued byte stays readable from memory until its write completed (the tier keeps
//! it); a seal is handed out only after its segment's other writes completed and, when flagged, is
//! preceded by `fdatasync`; a failed write is reported so the tier makes its records unreachable;
//! data files are opened read-write without truncation (they are mapped).

use super::Shard;
use glommio::io::{BufferedFile, OpenOptions};
use std::rc::Rc;
use std::time::{Duration, Instant};
use verge_storage::disk::DiskWrite;

impl Shard {
    /// Runs until the shard's drain finished (`disk_writer_stop`); the final flush and sync happen
    /// synchronously after it.
    pub(super) async fn disk_writer(self: Rc<Self>) {
        if self.owner.borrow().has_disk() {
            self.write_loop().await;
        }
        self.disk_writer_done.set(true);
    }

    async fn write_loop(&self) {
        let delay = self.cfg.cache.disk_flush_delay.get();
        let idle_tick = (delay / 4).clamp(Duration::from_millis(1), Duration::from_millis(250));
        let mut files: Vec<Option<Rc<BufferedFile>>> = Vec::new();
        while !self.disk_writer_stop.get() {
            let next = {
                let mut owner = self.owner.borrow_mut();
                owner.disk_queue_flush_if_due(Instant::now());
                owner.disk_take_write()
            };
            let Some(w) = next else {
                // Nothing to write: look again soon (fills append between ticks; a full buffer
                // waits at most one tick before its write starts).
                glommio::timer::sleep(idle_tick.min(Duration::from_millis(5))).await;
                continue;
            };
            let result = self.perform(&mut files, &w).await;
            self.owner.borrow_mut().disk_complete_write(w.id, result);
        }
    }

    async fn perform(
        &self,
        files: &mut Vec<Option<Rc<BufferedFile>>>,
        w: &DiskWrite,
    ) -> std::io::Result<()> {
        let file = self.writable(files, w.file).await?;
        if w.sync_before {
            file.fdatasync()
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        let mut off = 0usize;
        while off < w.data.len() {
            let n = file
                .write_at(w.data[off..].to_vec(), w.offset + off as u64)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "disk write wrote nothing",
                ));
            }
            off += n;
        }
        Ok(())
    }

    async fn writable(
        &self,
        files: &mut Vec<Option<Rc<BufferedFile>>>,
        i: usize,
    ) -> std::io::Result<Rc<BufferedFile>> {
        if files.len() <= i {
            files.resize(i + 1, None);
        }
        if let Some(f) = &files[i] {
            return Ok(f.clone());
        }
        let path = self
            .owner
            .borrow()
            .disk_file_path(i)
            .ok_or_else(|| std::io::Error::other("no such disk file"))?;
        let f = Rc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .buffered_open(&path)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?,
        );
        files[i] = Some(f.clone());
        Ok(f)
    }
}
