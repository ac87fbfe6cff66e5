//! The shard's HTTP/1.x viewer connections that are waiting between requests, so that the keep-alive
//! timeout and a drain can end those waits without each wait carrying its own timer and drain
//! future (those were about a tenth of a small hit's CPU).
//!
//! A connection enters the set right before it waits for its next request and leaves it when the
//! wait ends (`IdleGuard`). A sweeper task ticks every `tick`; an entry that has been idle for more
//! than the keep-alive timeout, or every entry once the shard drains, has its socket's read side
//! shut down (`shutdown(SHUT_RD)`), so the pending read ends with end-of-file and the connection
//! closes quietly, as if the viewer had gone.
//!
//! Invariants: an entry's descriptor is open for as long as the entry exists (the guard lives inside
//! the connection's borrow of its socket and removes the entry before the socket can be closed); a
//! wait is never cut before the keep-alive timeout and at most two ticks after it; a stale guard
//! (its entry already cut) never removes a newer entry that reuses its slot.

use slab::Slab;
use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::time::Duration;

struct Entry {
    fd: RawFd,
    /// The sweeper's tick count when the wait began.
    since: u64,
    /// Distinguishes this entry from later ones in the same slot.
    generation: u64,
}

/// The idle set of one shard.
pub struct IdleSet {
    entries: RefCell<Slab<Entry>>,
    ticks: Cell<u64>,
    next_generation: Cell<u64>,
    /// Ticks an entry may stay before it is cut.
    limit_ticks: u64,
    tick: Duration,
}

/// Marks one connection idle while it lives.
pub struct IdleGuard<'a> {
    set: &'a IdleSet,
    key: usize,
    generation: u64,
}

impl IdleSet {
    /// A set whose waits end after `keepalive` (rounded up to whole ticks, plus at most one).
    pub fn new(keepalive: Duration) -> Self {
        let tick = (keepalive / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let limit_ticks = keepalive.as_nanos().div_ceil(tick.as_nanos()) as u64;
        IdleSet {
            entries: RefCell::new(Slab::new()),
            ticks: Cell::new(0),
            next_generation: Cell::new(0),
            limit_ticks,
            tick,
        }
    }

    /// How often `sweep` should run.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// Marks the connection on socket `fd` idle until the guard drops.
    pub fn enter(&self, fd: RawFd) -> IdleGuard<'_> {
        let generation = self.next_generation.get();
        self.next_generation.set(generation + 1);
        let key = self.entries.borrow_mut().insert(Entry {
            fd,
            since: self.ticks.get(),
            generation,
        });
        IdleGuard {
            set: self,
            key,
            generation,
        }
    }

    /// One tick: cuts the waits past the keep-alive timeout, or all of them when `all` (a drain).
    /// Returns how many were cut.
    pub fn sweep(&self, all: bool) -> usize {
        let now = self.ticks.get() + 1;
        self.ticks.set(now);
        // A wait that began during tick `since` has lasted more than (now - since - 1) ticks.
        let limit = self.limit_ticks;
        let mut entries = self.entries.borrow_mut();
        let before = entries.len();
        entries.retain(|_, e| {
            let expired = all || now.saturating_sub(e.since) > limit;
            if expired {
                // SAFETY: shutdown on a descriptor the entry's connection keeps open (see the
                // module invariants); it only ends reads, the connection still owns the socket.
                unsafe { libc::shutdown(e.fd, libc::SHUT_RD) };
            }
            !expired
        });
        before - entries.len()
    }

    /// Connections waiting now.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// True when no connection is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for IdleGuard<'_> {
    fn drop(&mut self) {
        let mut entries = self.set.entries.borrow_mut();
        if entries
            .get(self.key)
            .is_some_and(|e| e.generation == self.generation)
        {
            entries.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (s, c)
    }

    fn reads_eof(s: &mut TcpStream) -> bool {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 8];
        matches!(s.read(&mut b), Ok(0))
    }

    #[test]
    fn cuts_only_waits_past_the_timeout() {
        let set = IdleSet::new(Duration::from_millis(400)); // tick 100 ms, limit 4 ticks
        assert_eq!(set.tick(), Duration::from_millis(100));
        let (mut old, _c1) = pair();
        let (mut young, _c2) = pair();
        let g_old = set.enter(old.as_raw_fd());
        for _ in 0..2 {
            assert_eq!(set.sweep(false), 0);
        }
        let g_young = set.enter(young.as_raw_fd());
        for _ in 0..2 {
            assert_eq!(set.sweep(false), 0, "never before the timeout");
        }
        assert_eq!(set.sweep(false), 1, "the old wait is past 4 full ticks");
        assert!(reads_eof(&mut old));
        assert!(!reads_eof(&mut young));
        drop(g_old); // its entry is gone already; nothing else is touched
        assert_eq!(set.len(), 1);
        drop(g_young);
        assert!(set.is_empty());
    }

    #[test]
    fn drain_cuts_every_wait_and_stale_guards_leave_new_entries() {
        let set = IdleSet::new(Duration::from_secs(60));
        let (mut a, _c1) = pair();
        let (b, _c2) = pair();
        let ga = set.enter(a.as_raw_fd());
        assert_eq!(set.sweep(true), 1);
        assert!(reads_eof(&mut a));
        // The slot is reused by a new wait; the stale guard must not remove it.
        let gb = set.enter(b.as_raw_fd());
        drop(ga);
        assert_eq!(set.len(), 1);
        drop(gb);
        assert!(set.is_empty());
    }

    #[test]
    fn a_finished_wait_is_never_cut() {
        let set = IdleSet::new(Duration::from_millis(40));
        let (mut s, _c) = pair();
        drop(set.enter(s.as_raw_fd()));
        for _ in 0..10 {
            set.sweep(false);
        }
        assert!(!reads_eof(&mut s));
    }
}
