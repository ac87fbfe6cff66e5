// (Verge) This module is not in upstream glommio; see VERGE.md.
//! Read readiness of stream sockets from one edge-triggered epoll set per executor.
//!
//! Upstream learns that a socket became readable by queueing an io_uring `POLL_ADD` every time a
//! read would block. The kernel then arms a wait-queue entry, and the wake-up runs as task work on
//! the executor's thread and posts a completion. A serving shard pays that per request. Here each
//! stream registers its socket once (`EPOLLIN | EPOLLRDHUP | EPOLLET`). The reactor harvests
//! ready sockets with one non-blocking `epoll_wait` per loop pass while any stream waits. Before
//! the executor sleeps, the reactor queues one `POLL_ADD` on the epoll fd itself, so a socket that
//! becomes readable still wakes a sleeping executor.
//!
//! Invariants:
//! - A stream's `readable` flag is false only after a receive that would block or came back
//!   short. The set is edge-triggered, so bytes that arrive after that raise a new event. A stale
//!   `true` costs one receive that finds nothing; a stale `false` would stall the stream.
//! - Only TCP sockets join (`is_tcp`). A short TCP receive leaves bytes behind only at an urgent
//!   (out-of-band) mark, and urgent data makes the socket report `EPOLLPRI`. Unix-domain reads
//!   also stop at message and credential boundaries, so those sockets keep upstream's polls.
//! - Once an event reports urgent data, the peer's end of stream, a hang-up or an error, the flag
//!   stays true: a short receive does not consume those, and no further edge would come for
//!   them. A sticky flag only means that each read tries `recv` before it waits.
//! - `waiting` counts the registered states that hold a waker.
//! - An event carries its slot's generation, so an event for a socket that was deregistered never
//!   reaches a later socket in the same slot.
//! - Wakers are woken only after the slot table is released: waking may drop a task, and with it
//!   a stream whose handle deregisters itself.

use std::{
    cell::{Cell, RefCell},
    fmt, io,
    os::unix::io::RawFd,
    rc::Rc,
    task::Waker,
};

/// Events harvested per `epoll_wait`; more wait for the next pass.
const HARVEST: usize = 256;

#[derive(Default)]
struct ReadyState {
    readable: Cell<bool>,
    /// An event reported urgent data, end of stream, hang-up or error: readable from now on.
    ended: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

struct Slot {
    generation: u32,
    state: Option<Rc<ReadyState>>,
}

/// One executor's epoll set of stream sockets.
pub(crate) struct EpollSet {
    epfd: RawFd,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    waiting: Cell<usize>,
    events: RefCell<Vec<libc::epoll_event>>,
    to_wake: RefCell<Vec<Waker>>,
}

impl fmt::Debug for EpollSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpollSet")
            .field("epfd", &self.epfd)
            .field("waiting", &self.waiting.get())
            .finish()
    }
}

impl EpollSet {
    pub(crate) fn new() -> io::Result<Rc<EpollSet>> {
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Rc::new(EpollSet {
            epfd,
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            waiting: Cell::new(0),
            events: RefCell::new(vec![libc::epoll_event { events: 0, u64: 0 }; HARVEST]),
            to_wake: RefCell::new(Vec::new()),
        }))
    }

    /// The epoll fd, for the `POLL_ADD` that wakes a sleeping executor.
    pub(crate) fn fd(&self) -> RawFd {
        self.epfd
    }

    /// Whether some stream waits for readiness.
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiting.get() > 0
    }

    /// Adds `fd` to the set. `None` when it is not a TCP socket or epoll refuses it (the caller
    /// then polls through io_uring as upstream does).
    pub(crate) fn register(self: &Rc<Self>, fd: RawFd) -> Option<ReadyHandle> {
        if !is_tcp(fd) {
            return None;
        }
        let state = Rc::new(ReadyState {
            readable: Cell::new(true),
            ended: Cell::new(false),
            waker: Cell::new(None),
        });
        let mut slots = self.slots.borrow_mut();
        let index = match self.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                slots.push(Slot {
                    generation: 0,
                    state: None,
                });
                (slots.len() - 1) as u32
            }
        };
        let slot = &mut slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        let token = (u64::from(slot.generation) << 32) | u64::from(index);
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token,
        };
        if unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            self.free.borrow_mut().push(index);
            return None;
        }
        slot.state = Some(state.clone());
        Some(ReadyHandle {
            set: self.clone(),
            fd,
            index,
            state,
        })
    }

    /// Harvests ready sockets without blocking: marks them readable and wakes their waiters.
    /// Returns how many waiters were woken. Costs nothing while no stream waits.
    pub(crate) fn dispatch(&self) -> usize {
        if self.waiting.get() == 0 {
            return 0;
        }
        let mut to_wake = std::mem::take(&mut *self.to_wake.borrow_mut());
        {
            let mut events = self.events.borrow_mut();
            let n =
                unsafe { libc::epoll_wait(self.epfd, events.as_mut_ptr(), events.len() as i32, 0) };
            let slots = self.slots.borrow();
            for ev in events.iter().take(n.max(0) as usize) {
                let token = ev.u64;
                let (index, generation) = ((token & 0xffff_ffff) as usize, (token >> 32) as u32);
                let Some(Slot {
                    generation: g,
                    state: Some(state),
                }) = slots.get(index)
                else {
                    continue;
                };
                if *g != generation {
                    continue;
                }
                state.readable.set(true);
                let ended =
                    (libc::EPOLLPRI | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
                if ev.events & ended != 0 {
                    state.ended.set(true);
                }
                if let Some(w) = state.waker.take() {
                    self.waiting.set(self.waiting.get() - 1);
                    to_wake.push(w);
                }
            }
        }
        let woke = to_wake.len();
        for w in to_wake.drain(..) {
            w.wake();
        }
        *self.to_wake.borrow_mut() = to_wake;
        woke
    }
}

/// Whether `fd` is a TCP socket, the only kind that joins the set (see the module invariants).
pub(crate) fn is_tcp(fd: RawFd) -> bool {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            &mut domain as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    r == 0 && (domain == libc::AF_INET || domain == libc::AF_INET6)
}

impl Drop for EpollSet {
    fn drop(&mut self) {
        unsafe { libc::close(self.epfd) };
    }
}

/// A stream socket's membership in its executor's epoll set; deregisters on drop.
pub(crate) struct ReadyHandle {
    set: Rc<EpollSet>,
    fd: RawFd,
    index: u32,
    state: Rc<ReadyState>,
}

impl fmt::Debug for ReadyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadyHandle")
            .field("fd", &self.fd)
            .field("readable", &self.state.readable.get())
            .finish()
    }
}

impl ReadyHandle {
    /// Whether a receive may find bytes (see the module invariants).
    pub(crate) fn readable(&self) -> bool {
        self.state.readable.get()
    }

    /// Records that a receive would block or came back short.
    pub(crate) fn drained(&self) {
        self.state.readable.set(self.state.ended.get());
    }

    /// Wakes `waker` at the next event on this socket.
    pub(crate) fn wait(&self, waker: &Waker) {
        match self.state.waker.take() {
            Some(w) if w.will_wake(waker) => self.state.waker.set(Some(w)),
            Some(_) => self.state.waker.set(Some(waker.clone())),
            None => {
                self.set.waiting.set(self.set.waiting.get() + 1);
                self.state.waker.set(Some(waker.clone()));
            }
        }
    }
}

impl Drop for ReadyHandle {
    fn drop(&mut self) {
        if self.state.waker.take().is_some() {
            self.set.waiting.set(self.set.waiting.get() - 1);
        }
        // The fd is still open: the stream drops its handle before its socket.
        unsafe {
            libc::epoll_ctl(
                self.set.epfd,
                libc::EPOLL_CTL_DEL,
                self.fd,
                std::ptr::null_mut(),
            )
        };
        let mut slots = self.set.slots.borrow_mut();
        slots[self.index as usize].state = None;
        self.set.free.borrow_mut().push(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        io::{Read, Write},
        net::{TcpListener, TcpStream},
        os::unix::{io::AsRawFd, net::UnixStream},
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        task::Wake,
        time::Duration,
    };

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        (count, waker)
    }

    /// A connected loopback TCP pair; the second end is non-blocking.
    fn tcp_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        a.set_nodelay(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    /// Harvests until something is woken or a second passes (loopback delivery is immediate, but
    /// keep the test robust).
    fn dispatch_some(set: &EpollSet) -> usize {
        for _ in 0..100 {
            let n = set.dispatch();
            if n > 0 {
                return n;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        0
    }

    #[test]
    fn edge_wakes_once_and_stale_slots_are_ignored() {
        let set = EpollSet::new().unwrap();
        let (mut a, b) = tcp_pair();
        let h = set.register(b.as_raw_fd()).unwrap();
        assert!(h.readable(), "a new socket is assumed readable");
        h.drained();
        let (count, waker) = counter();
        h.wait(&waker);
        assert!(set.has_waiters());
        assert_eq!(set.dispatch(), 0, "nothing arrived yet");
        a.write_all(b"x").unwrap();
        assert_eq!(dispatch_some(&set), 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(h.readable());
        assert!(!set.has_waiters());
        // Read it; a new edge needs new bytes.
        let mut buf = [0u8; 8];
        assert_eq!((&b).read(&mut buf).unwrap(), 1);
        h.drained();
        h.wait(&waker);
        assert_eq!(set.dispatch(), 0);
        // An event for a deregistered socket never reaches the slot's next owner.
        a.write_all(b"y").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(h);
        assert!(!set.has_waiters());
        let (_c, d) = tcp_pair();
        let h2 = set.register(d.as_raw_fd()).unwrap();
        h2.drained();
        h2.wait(&waker);
        assert_eq!(set.dispatch(), 0);
        assert!(!h2.readable());
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn end_of_stream_stays_readable_after_a_short_read() {
        let set = EpollSet::new().unwrap();
        let (mut a, b) = tcp_pair();
        let h = set.register(b.as_raw_fd()).unwrap();
        h.drained();
        let (_count, waker) = counter();
        h.wait(&waker);
        // Bytes and the end of stream arrive before one harvest: a single edge.
        a.write_all(b"xy").unwrap();
        drop(a);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(dispatch_some(&set), 1);
        let mut buf = [0u8; 8];
        assert_eq!((&b).read(&mut buf).unwrap(), 2);
        h.drained();
        assert!(h.readable(), "the end of stream is still to be read");
        assert_eq!((&b).read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn urgent_data_keeps_the_socket_readable_past_the_mark() {
        let set = EpollSet::new().unwrap();
        let (mut a, b) = tcp_pair();
        let h = set.register(b.as_raw_fd()).unwrap();
        h.drained();
        let (_count, waker) = counter();
        h.wait(&waker);
        a.write_all(b"ab").unwrap();
        let sent = unsafe { libc::send(a.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(sent, 1);
        a.write_all(b"cd").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(dispatch_some(&set), 1);
        // The first read stops at the urgent mark, short, with bytes still queued.
        let mut buf = [0u8; 8];
        let first = (&b).read(&mut buf).unwrap();
        assert!(first < buf.len());
        h.drained();
        assert!(
            h.readable(),
            "bytes after the urgent mark are still to be read"
        );
        let mut all = buf[..first].to_vec();
        while let Ok(n) = (&b).read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        assert_eq!(all, b"abcd", "the urgent byte itself is out of band");
    }

    #[test]
    fn only_tcp_sockets_join() {
        let set = EpollSet::new().unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(set.register(a.as_raw_fd()).is_none());
        assert!(!is_tcp(a.as_raw_fd()));
        let (c, _d) = tcp_pair();
        assert!(is_tcp(c.as_raw_fd()));
    }
}
