//! Shards: one glommio executor per core, each with its own listeners (SO_REUSEPORT), origin pool and
//! owned cache state, sharing nothing mutable with the others.
//!
//! Ownership model: every cache key has one owner shard (`CacheKey::owner`). The owner alone holds the
//! key's RAM entry, its in-flight fill and its uncacheable mark, so a miss makes one origin request for
//! the whole process however many shards its viewers arrive on. A shard serving a viewer looks the key
//! up locally when it is the owner, and otherwise asks the owner over the mesh (`mesh::MeshMsg`); bodies
//! then travel as refcounted `Bytes`, never copied. A fresh small object from another owner is kept
//! for a short while as a near copy (`cache::near`), so repeated hits on it skip the hop; the
//! process-wide key generations, the one table the shards share, retire such copies as soon as the
//! owner stores or invalidates the key. Invariant: `Shard` is only touched by its own
//! executor thread (it is `!Send`); other shards reach it only through its inbox.

mod cpus;
mod disk_writer;
pub mod mesh;

pub use cpus::allowed_cpus;

use crate::cache::admission::{Admission, AdmitOn};
use crate::cache::key::CacheKey;
use crate::cache::near::{Generations, NearCopies, NearLimits};
use crate::cache::owner::{HitKind, Lookup, NewFill, OwnerState};
use crate::cache::policy::PolicyConfig;
use crate::config::Config;
use crate::http::framing::HeadLimits;
use crate::http::headers::Headers;
use crate::origin::pool::{Origin, OriginSettings};
use glommio::net::TcpListener;
use mesh::{FillRequest, MeshMsg};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use verge_storage::{DiskConfig, DiskTier};

/// Opens (and recovers) this shard's stripe of every configured disk location.
fn open_disk_stripe(cfg: &Config, id: usize, count: usize) -> Result<Option<DiskTier>, String> {
    if cfg.cache.disk.is_empty() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for entry in &cfg.cache.disk {
        let (dir, size) = crate::config::parse_disk(entry).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cache.disk: cannot create {}: {e}", dir.display()))?;
        files.push((
            dir.join(format!("verge-stripe-{id}-of-{count}.dat")),
            size / count as u64,
        ));
    }
    let mut dc = DiskConfig::new(files);
    dc.segment_size = cfg.cache.disk_segment_size.0;
    dc.flush_delay = cfg.cache.disk_flush_delay.get();
    // Writes go through io_uring from `disk_writer`, never `pwrite` on the serving thread.
    dc.caller_writes = true;
    let disk = DiskTier::open(dc).map_err(|e| format!("cache.disk: shard {id}: {e}"))?;
    let r = disk.recovery_report();
    eprintln!(
        "verge: shard {id}: disk tier: {} objects recovered in {:?} ({} segments from summaries, {} scanned, \
         {:.1} MB scanned); index {:.1} B/object",
        disk.len(),
        r.elapsed,
        r.segments_from_summary,
        r.segments_scanned,
        r.bytes_scanned as f64 / 1e6,
        disk.index_bytes() as f64 / disk.len().max(1) as f64,
    );
    Ok(Some(disk))
}

/// Everything one shard owns.
pub struct Shard {
    pub id: usize,
    pub count: usize,
    pub cfg: Arc<Config>,
    pub limits: HeadLimits,
    pub origin: Rc<Origin>,
    pub owner: RefCell<OwnerState>,
    /// Near copies of hot objects other shards own.
    near: RefCell<NearCopies>,
    pub policy: PolicyConfig,
    peers: Vec<flume::Sender<MeshMsg>>,
    /// Dropped when draining starts: every `recv_async` on `drain_rx` then completes.
    drain_tx: RefCell<Option<flume::Sender<()>>>,
    pub drain_rx: flume::Receiver<()>,
    pub draining: Cell<bool>,
    /// HTTP/1.x viewers waiting between requests (keep-alive timeout and drain, see `net::idle`).
    pub idle: crate::net::idle::IdleSet,
    pub open_connections: Cell<usize>,
    /// Fills running on this shard; a draining shard waits for them too, since viewers on other
    /// shards may be following them.
    pub active_fills: Cell<usize>,
    /// Seeds multipart/byteranges boundaries (distinct per response).
    boundary_seed: Cell<u64>,
    /// The disk stripe's files opened for io_uring buffered reads (warming cold records).
    disk_files: RefCell<Vec<(std::path::PathBuf, Rc<glommio::io::BufferedFile>)>>,
    /// Set once the drain finished: the disk writer stops; `disk_writer_done` when it has.
    disk_writer_stop: Cell<bool>,
    disk_writer_done: Cell<bool>,
    /// Viewer TLS (shared by every shard), when TLS listeners are configured.
    pub tls: Option<Arc<crate::tls::viewer::ViewerTls>>,
    /// The viewer protocol policy table.
    pub policies: crate::net::policy::Policies,
}

/// What every shard shares, built once at start.
#[derive(Clone)]
pub struct Shared {
    pub origin_addr: SocketAddr,
    pub viewer_tls: Option<Arc<crate::tls::viewer::ViewerTls>>,
    pub origin_tls: Option<crate::origin::pool::OriginTls>,
    /// Key generations, bumped by owners, read by near copies.
    pub generations: Arc<Generations>,
}

impl Shard {
    pub fn new(
        id: usize,
        cfg: Arc<Config>,
        shared: Shared,
        peers: Vec<flume::Sender<MeshMsg>>,
    ) -> Result<Rc<Self>, String> {
        let count = peers.len();
        let limits = HeadLimits {
            max_request_line: cfg.http.max_request_line,
            max_header_bytes: cfg.http.max_header_bytes.0 as usize,
            max_headers: cfg.http.max_headers,
        };
        let origin_limits = HeadLimits {
            max_request_line: cfg.origin.max_response_header_bytes.0 as usize,
            max_header_bytes: cfg.origin.max_response_header_bytes.0 as usize,
            max_headers: 256,
        };
        let o = &cfg.origin;
        let origin = Origin::new(OriginSettings {
            addr: shared.origin_addr,
            tls: shared.origin_tls.clone(),
            authority: cfg.origin_addr().map(|a| a.authority).unwrap_or_default(),
            connect_timeout: o.connect_timeout.get(),
            first_byte_timeout: o.first_byte_timeout.get(),
            read_timeout: o.read_timeout.get(),
            idle_timeout: o.pool_idle_timeout.get(),
            max_idle: o.max_idle_per_shard,
            limits: origin_limits,
        });
        let per_shard_ram = cfg.cache.ram.0 / count as u64;
        let disk = open_disk_stripe(&cfg, id, count)?;
        let owner = OwnerState::new(
            per_shard_ram,
            cfg.cache.max_object_size.0.min(per_shard_ram),
            cfg.cache.max_waiters,
            disk,
            Admission::new(
                if cfg.cache.disk_admission == "second-hit" {
                    AdmitOn::SecondHit
                } else {
                    AdmitOn::Store
                },
                cfg.cache.disk_max_object_size.0,
                cfg.cache.disk_write_budget.0,
            ),
            shared.generations.clone(),
        );
        let near = NearCopies::new(
            NearLimits {
                // One shard owns everything: nothing to copy.
                budget: if count > 1 {
                    cfg.cache.near_copies.0
                } else {
                    0
                },
                max_object: cfg.cache.near_copy_max_size.0,
                hold: cfg.cache.near_copy_hold.get(),
            },
            shared.generations.clone(),
        );
        let policy = PolicyConfig {
            heuristic_fraction: cfg.cache.heuristic_fraction,
            heuristic_max: cfg.cache.heuristic_max.get(),
            ..PolicyConfig::default()
        };
        let (drain_tx, drain_rx) = flume::bounded(1);
        let idle = crate::net::idle::IdleSet::new(cfg.http.keepalive_timeout.get());
        let policies = crate::net::policy::Policies::from_config(&cfg);
        Ok(Rc::new(Shard {
            id,
            count,
            cfg,
            limits,
            origin,
            owner: RefCell::new(owner),
            near: RefCell::new(near),
            policy,
            peers,
            drain_tx: RefCell::new(Some(drain_tx)),
            drain_rx,
            draining: Cell::new(false),
            idle,
            open_connections: Cell::new(0),
            active_fills: Cell::new(0),
            boundary_seed: Cell::new((id as u64) << 48),
            disk_files: RefCell::new(Vec::new()),
            disk_writer_stop: Cell::new(false),
            disk_writer_done: Cell::new(false),
            tls: shared.viewer_tls.clone(),
            policies,
        }))
    }

    /// Looks `key` up on its owner shard (locally when that is this shard). `make_fill` builds what a
    /// fill needs; it is called only when the owner is another shard (the request must travel) or a
    /// local miss starts a fill, so a local hit does no request-building work.
    pub async fn lookup(
        self: &Rc<Self>,
        key: &CacheKey,
        headers: &Headers,
        make_fill: impl FnOnce() -> FillRequest,
        refresh: bool,
    ) -> Option<Lookup> {
        let owner = key.owner(self.count);
        if owner == self.id {
            self.warm_disk(key).await;
            let (found, new_fill) =
                self.owner
                    .borrow_mut()
                    .lookup(key, headers, refresh, SystemTime::now());
            if let Some(nf) = new_fill {
                self.start_fill(key.clone(), make_fill(), nf);
            }
            return Some(self.stream_if_disk(key, found, headers));
        }
        if !refresh {
            let at = SystemTime::now();
            let copy = self.near.borrow_mut().get(key, headers, Instant::now(), at);
            if let Some(obj) = copy {
                return Some(Lookup::Hit {
                    obj,
                    kind: HitKind::NearCopy,
                    at,
                });
            }
        }
        let (reply, rx) = flume::bounded(1);
        self.peers[owner]
            .send(MeshMsg::Lookup {
                key: key.clone(),
                fill: make_fill(),
                refresh,
                reply,
            })
            .ok()?;
        let (found, generation) = rx.recv_async().await.ok()?;
        if let Lookup::Hit {
            obj,
            kind: HitKind::Fresh,
            at,
        } = &found
        {
            self.near
                .borrow_mut()
                .offer(key, obj, generation, Instant::now(), *at);
        }
        Some(found)
    }

    fn start_fill(self: &Rc<Self>, key: CacheKey, fill: FillRequest, nf: NewFill) {
        let shard = self.clone();
        glommio::spawn_local(crate::proxy::fill_task::run(shard, key, fill, nf)).detach();
    }

    /// If `key` is on disk in pages the kernel does not cache, reads that span through io_uring
    /// first (a kernel worker waits for the device, not this core), so the lookup's synchronous read
    /// is a copy from the page cache. Never a major fault: the disk tier maps only resident pages.
    async fn warm_disk(&self, key: &CacheKey) {
        let span = self.owner.borrow_mut().disk_cold_span(key);
        self.warm_span(span).await;
    }

    /// Warms the disk record holding body byte `offset` of `key` (see `warm_disk`).
    pub async fn warm_disk_at(&self, key: &CacheKey, offset: u64) {
        let span = self.owner.borrow_mut().disk_cold_span_at(key, offset);
        self.warm_span(span).await;
    }

    async fn warm_span(&self, span: Option<(std::path::PathBuf, u64, u64)>) {
        let Some((path, offset, len)) = span else {
            return;
        };
        let Some(file) = self.disk_file(&path).await else {
            return;
        };
        let _ = file.read_at(offset, len as usize).await;
    }

    async fn disk_file(&self, path: &std::path::Path) -> Option<Rc<glommio::io::BufferedFile>> {
        if let Some((_, f)) = self.disk_files.borrow().iter().find(|(p, _)| p == path) {
            return Some(f.clone());
        }
        let f = Rc::new(glommio::io::BufferedFile::open(path).await.ok()?);
        self.disk_files
            .borrow_mut()
            .push((path.to_path_buf(), f.clone()));
        Some(f)
    }

    /// A lookup sent by another shard.
    async fn lookup_for_peer(
        self: &Rc<Self>,
        key: CacheKey,
        fill: FillRequest,
        refresh: bool,
    ) -> (Lookup, u64) {
        self.warm_disk(&key).await;
        let (found, new_fill, generation) = {
            let mut owner = self.owner.borrow_mut();
            let (found, new_fill) = owner.lookup(&key, &fill.headers, refresh, SystemTime::now());
            // Read in the same step as the lookup: a later store bumps it past this answer.
            (found, new_fill, owner.generation(&key))
        };
        if let Some(nf) = new_fill {
            self.start_fill(key.clone(), fill, nf);
            return (found, generation);
        }
        (self.stream_if_disk(&key, found, &fill.headers), generation)
    }

    /// A disk-only object becomes a stream from disk that the viewer follows like a fill.
    fn stream_if_disk(self: &Rc<Self>, key: &CacheKey, found: Lookup, req: &Headers) -> Lookup {
        match found {
            Lookup::Disk(obj) => Lookup::Follow {
                events: crate::proxy::disk_stream::start(self, key.clone(), obj, req.clone()),
                started: false,
            },
            other => other,
        }
    }

    /// A fresh seed for a multipart boundary.
    pub fn next_boundary_seed(&self) -> u64 {
        let s = self.boundary_seed.get().wrapping_add(1);
        self.boundary_seed.set(s);
        s
    }

    /// Drops `key`'s stored response on its owner, and returns once it is gone there: a viewer
    /// that has seen the response of an unsafe request never gets the old object afterwards, from
    /// any shard (RFC 9111 §4.4). Waits for another owner's acknowledgement; an owner that has
    /// stopped (shutdown) no longer serves anything.
    pub async fn invalidate(&self, key: &CacheKey) {
        let owner = key.owner(self.count);
        if owner == self.id {
            self.owner.borrow_mut().invalidate(key);
        } else {
            let (done, acked) = flume::bounded(1);
            let msg = MeshMsg::Invalidate {
                key: key.clone(),
                done,
            };
            if self.peers[owner].send(msg).is_ok() {
                let _ = acked.recv_async().await;
            }
        }
    }

    fn begin_drain(&self) {
        self.draining.set(true);
        self.drain_tx.borrow_mut().take();
        self.idle.sweep(true);
    }

    /// Ends keep-alive waits past their timeout, every tick, until the shard has drained.
    async fn idle_sweeper(self: Rc<Self>) {
        while !self.disk_writer_stop.get() {
            glommio::timer::sleep(self.idle.tick()).await;
            self.idle.sweep(self.draining.get());
        }
    }

    /// Serves messages from other shards until shutdown.
    async fn mesh_loop(self: Rc<Self>, inbox: flume::Receiver<MeshMsg>) {
        while let Ok(msg) = inbox.recv_async().await {
            match msg {
                MeshMsg::Lookup {
                    key,
                    fill,
                    refresh,
                    reply,
                } => {
                    // Its own task: a lookup may wait for a disk read; the mesh keeps serving.
                    let shard = self.clone();
                    glommio::spawn_local(async move {
                        let found = shard.lookup_for_peer(key, fill, refresh).await;
                        let _ = reply.send(found);
                    })
                    .detach();
                }
                MeshMsg::Invalidate { key, done } => {
                    self.owner.borrow_mut().invalidate(&key);
                    let _ = done.send(());
                }
                MeshMsg::Shutdown => self.begin_drain(),
            }
        }
    }

    /// Accepts viewers on one listener until draining starts. `tls`: a TLS listener.
    async fn accept_loop(self: Rc<Self>, listener: TcpListener, tls: bool) {
        let acceptor = match (&self.tls, tls) {
            (Some(t), true) => Some(futures_rustls::TlsAcceptor::from(t.config.clone())),
            _ => None,
        };
        loop {
            let accepted =
                futures_lite::future::or(async { Some(listener.accept().await) }, async {
                    let _ = self.drain_rx.recv_async().await;
                    None
                })
                .await;
            let stream = match accepted {
                None => return,
                Some(Ok(s)) => s,
                Some(Err(_)) => {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            if self.open_connections.get() >= self.cfg.server.max_connections {
                drop(stream);
                continue;
            }
            let shard = self.clone();
            match &acceptor {
                Some(a) => {
                    glommio::spawn_local(crate::net::tls_accept::serve(shard, stream, a.clone()))
                        .detach();
                }
                None => {
                    crate::net::conn::prepare_socket(&shard, &stream);
                    let peer = stream.peer_addr().ok();
                    let t = crate::net::transport::Transport::Plain(stream);
                    glommio::spawn_local(crate::net::conn::serve(shard, t, peer)).detach();
                }
            }
        }
    }

    /// Shard 0 re-reads certificate and ticket-key files that changed (every shard shares them).
    async fn tls_reloader(self: Rc<Self>) {
        let Some(tls) = self.tls.clone() else { return };
        let every = self.cfg.tls.reload_interval.get();
        while !self.draining.get() {
            glommio::timer::sleep(every).await;
            for line in tls.reload_if_changed() {
                eprintln!("verge: tls: {line}");
            }
        }
    }

    /// The body of one shard's executor: bind, serve, and on shutdown drain within the bound.
    pub async fn run(
        self: Rc<Self>,
        inbox: flume::Receiver<MeshMsg>,
        ready: std::sync::mpsc::Sender<Result<(), String>>,
    ) {
        let mut listeners = Vec::new();
        let plain = self.cfg.server.listen.iter().map(|a| (a, false));
        let tls = self.cfg.tls.listen.iter().map(|a| (a, true));
        for (addr, is_tls) in plain.chain(tls) {
            match crate::net::listen::bind(addr, self.cfg.server.listen_backlog) {
                Ok(l) => listeners.push((l, is_tls)),
                Err(e) => {
                    let _ = ready.send(Err(format!(
                        "shard {}: cannot listen on {addr}: {e}",
                        self.id
                    )));
                    return;
                }
            }
        }
        let _ = ready.send(Ok(()));
        glommio::spawn_local(self.clone().mesh_loop(inbox)).detach();
        glommio::spawn_local(self.clone().disk_writer()).detach();
        glommio::spawn_local(self.clone().idle_sweeper()).detach();
        if self.id == 0 {
            glommio::spawn_local(self.clone().tls_reloader()).detach();
        }
        let accepts: Vec<_> = listeners
            .into_iter()
            .map(|(l, tls)| glommio::spawn_local(self.clone().accept_loop(l, tls)))
            .collect();
        for a in accepts {
            a.await;
        }
        // Draining: listeners are closed; wait for open connections and running fills to finish,
        // within the bound.
        let deadline = Instant::now() + self.cfg.drain_timeout();
        while (self.open_connections.get() > 0 || self.active_fills.get() > 0)
            && Instant::now() < deadline
        {
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        // The last writes: let the io_uring writer finish what it holds, then write and sync the
        // rest synchronously.
        self.disk_writer_stop.set(true);
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.disk_writer_done.get() && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        self.owner.borrow_mut().sync_disk();
    }
}
