//! Process lifecycle: start one shard per CPU (pinned), wait until every shard listens, then wait for
//! SIGTERM/SIGINT and drain within the configured bound.
//! Invariants: nothing listens unless every shard could bind; a second signal, or the drain bound
//! passing, ends the process at once.

use crate::config::{Config, ConfigError};
use crate::origin::pool::OriginTls;
use crate::shard::{allowed_cpus, mesh::MeshMsg, Shard, Shared};
use crate::tls::{viewer::ViewerTls, TlsError};
use glommio::{LocalExecutorBuilder, Placement};
use std::sync::{mpsc, Arc};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot start shard {shard}: {reason}")]
    Start { shard: usize, reason: String },
}

/// The number of shards `cfg` asks for (0 = one per allowed CPU) and the CPUs they are pinned to.
pub fn placement(cfg: &Config) -> Vec<usize> {
    let cpus = allowed_cpus();
    let n = if cfg.server.shards == 0 {
        cpus.len()
    } else {
        cfg.server.shards.min(cpus.len())
    };
    cpus.into_iter().take(n.max(1)).collect()
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a local set; pthread_sigmask affects this thread
    // and the threads it spawns afterwards (the shards), so only `wait_signal` sees these signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig: libc::c_int = 0;
    // SAFETY: sigwait reads the set and writes the signal number.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

/// Runs Verge until a signal ends it.
pub fn run(cfg: Config) -> Result<(), ServerError> {
    cfg.validate()?;
    let origin_addr = cfg.origin_addr()?.resolve()?;
    let viewer_tls = if cfg.tls.listen.is_empty() {
        None
    } else {
        Some(Arc::new(ViewerTls::new(&cfg)?))
    };
    let origin_tls = match crate::tls::origin::client_config(&cfg)? {
        Some(config) => Some(OriginTls {
            connector: futures_rustls::TlsConnector::from(config),
            server_name: crate::tls::origin::server_name(&cfg)?,
        }),
        None => None,
    };
    let shared = Shared {
        origin_addr,
        viewer_tls,
        origin_tls,
        generations: Arc::new(crate::cache::near::Generations::new()),
    };
    let cpus = placement(&cfg);
    let n = cpus.len();
    for w in crate::startup::check_limits(&cfg, n) {
        eprintln!("verge: warning: {}", w.0);
    }
    let sigset = block_signals();
    let cfg = Arc::new(cfg);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| flume::unbounded::<MeshMsg>()).unzip();
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut handles = Vec::new();
    for (id, (cpu, inbox)) in cpus.iter().zip(rxs).enumerate() {
        let cfg = cfg.clone();
        let shared = shared.clone();
        let peers = txs.clone();
        let ready = ready_tx.clone();
        let h = LocalExecutorBuilder::new(Placement::Fixed(*cpu))
            .name(&format!("verge-shard-{id}"))
            .io_memory(cfg.server.io_memory.0 as usize)
            .spawn(move || async move {
                match Shard::new(id, cfg, shared, peers) {
                    Ok(shard) => shard.run(inbox, ready).await,
                    Err(reason) => {
                        let _ = ready.send(Err(reason));
                    }
                }
            })
            .map_err(|e| ServerError::Start {
                shard: id,
                reason: e.to_string(),
            })?;
        handles.push(h);
    }
    drop(ready_tx);
    for id in 0..n {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(ServerError::Start { shard: id, reason }),
            Err(_) => {
                return Err(ServerError::Start {
                    shard: id,
                    reason: "shard exited during start-up".into(),
                })
            }
        }
    }
    if !cfg.tls.listen.is_empty() {
        eprintln!("verge: TLS listening on {}", cfg.tls.listen.join(", "));
    }
    eprintln!(
        "verge: listening on {} with {n} shard(s) on CPU(s) {:?}, origin {} ({origin_addr}), RAM tier {} MiB",
        cfg.server.listen.join(", "),
        cpus,
        cfg.origin.url,
        cfg.cache.ram.0 >> 20
    );
    let sig = wait_signal(&sigset);
    eprintln!(
        "verge: signal {sig}: draining (at most {:?})",
        cfg.drain_timeout()
    );
    for tx in &txs {
        let _ = tx.send(MeshMsg::Shutdown);
    }
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for h in handles {
            let _ = h.join();
        }
        let _ = done_tx.send(());
    });
    std::thread::spawn(move || {
        wait_signal(&sigset);
        eprintln!("verge: second signal: exiting now");
        std::process::exit(1);
    });
    let bound = cfg.drain_timeout() + Duration::from_secs(2);
    if done_rx.recv_timeout(bound).is_err() {
        eprintln!("verge: drain did not finish within {bound:?}; exiting");
    } else {
        eprintln!("verge: drained");
    }
    Ok(())
}
