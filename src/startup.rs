//! Start-up checks of the host: the open-files and locked-memory limits this process runs under, with
//! what to raise when they are too low. The open-files soft limit is raised to the hard limit when
//! that helps. Nothing here stops Verge from starting; it only warns.

use crate::config::Config;

/// One finding for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub String);

fn getrlimit(res: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into `r`.
    (unsafe { libc::getrlimit(res, &mut r) } == 0).then_some((r.rlim_cur, r.rlim_max))
}

/// Files each viewer connection may need at worst: its socket and one origin socket.
const FDS_PER_CONNECTION: u64 = 2;

/// Checks the limits; raises RLIMIT_NOFILE's soft limit towards the need; returns what is still short.
pub fn check_limits(cfg: &Config, shards: usize) -> Vec<Warning> {
    let mut out = Vec::new();
    let want_fds = (cfg.server.max_connections as u64 * shards as u64 * FDS_PER_CONNECTION)
        .saturating_add(1024);
    if let Some((soft, hard)) = getrlimit(libc::RLIMIT_NOFILE) {
        let mut soft = soft;
        if soft < want_fds && hard > soft {
            let new = libc::rlimit {
                rlim_cur: want_fds.min(hard),
                rlim_max: hard,
            };
            // SAFETY: setrlimit reads `new` only.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
                soft = new.rlim_cur;
            }
        }
        if soft < want_fds {
            out.push(Warning(format!(
                "open files limit is {soft}, but {} shards x {} connections need about {want_fds}: raise it \
                 (systemd LimitNOFILE={want_fds}, or `ulimit -n {want_fds}`), or lower server.max_connections",
                shards, cfg.server.max_connections
            )));
        }
    }
    // glommio registers `io_memory` per shard with io_uring; beyond RLIMIT_MEMLOCK the registration fails
    // and each I/O then copies through unregistered buffers.
    let want_lock = cfg.server.io_memory.0 * shards as u64 + (1 << 20);
    if let Some((soft, _)) = getrlimit(libc::RLIMIT_MEMLOCK) {
        if soft != libc::RLIM_INFINITY && soft < want_lock {
            out.push(Warning(format!(
                "locked-memory limit is {} KiB, but {shards} shards x {} KiB io_memory need about {} KiB: raise it \
                 (systemd LimitMEMLOCK=infinity, or `ulimit -l {}`), or lower server.io_memory",
                soft >> 10,
                cfg.server.io_memory.0 >> 10,
                want_lock >> 10,
                want_lock >> 10
            )));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_connection_count_is_reported() {
        let mut cfg = Config::default();
        cfg.server.max_connections = usize::MAX / 4;
        let w = check_limits(&cfg, 1);
        assert!(w.iter().any(|w| w.0.contains("open files")), "{w:?}");
    }
}
