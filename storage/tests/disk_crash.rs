//! Crash test: a child process (this test binary, re-executed with
//! `VERGE_DISK_CRASH_DIR` set) writes, replaces, removes and reads objects
//! in a loop and is killed with SIGKILL at a random moment. After each kill
//! the parent reopens the tier and checks that every object it can find
//! reads byte-exact (bodies are derived from the key and the version stored
//! in the meta) and that no read reports corruption: a killed process loses
//! only what it had not yet handed to the kernel.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use verge_storage::disk::KeyDigest;
use verge_storage::{DiskConfig, DiskError, DiskTier};

const ENV: &str = "VERGE_DISK_CRASH_DIR";
const KEYS: u64 = 1500;
const CYCLES: usize = 20;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn body_for(key: &[u8], version: u64) -> Vec<u8> {
    let seed = u64::from_le_bytes(KeyDigest::of(key).0[..8].try_into().unwrap_or([1; 8]));
    let mut r = Rng((seed ^ version.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
    let len = (r.next() % 20_000) as usize;
    (0..len).map(|_| r.next() as u8).collect()
}

fn config(dir: &Path) -> DiskConfig {
    let seg = 256 << 10;
    let mut cfg = DiskConfig::new(
        (0..2)
            .map(|i| (dir.join(format!("stripe-{i}.data")), 4096 + 6 * seg))
            .collect(),
    );
    cfg.segment_size = seg;
    cfg.block_size = 4096;
    cfg.write_buffer = 64 << 10;
    cfg.flush_delay = Duration::from_millis(2);
    cfg.mmap_min_read = 0;
    cfg.sync_on_seal = false;
    cfg
}

/// The child's body: write until killed.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(ENV) else {
        return; // normal test run: nothing to do
    };
    let mut tier = DiskTier::open(config(Path::new(&dir))).expect("child opens");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut rng = Rng(nanos | 1);
    loop {
        let k = rng.next() % KEYS;
        let key = format!("crash/{k}").into_bytes();
        match rng.next() % 10 {
            0 => {
                tier.remove(&key).expect("child removes");
            }
            1..=3 => {
                if let Some(loc) = tier.lookup(&key) {
                    tier.read_object(&loc, &key).expect("child reads");
                }
            }
            _ => {
                let version = rng.next();
                tier.insert(&key, &version.to_le_bytes(), &body_for(&key, version))
                    .expect("child inserts");
            }
        }
        tier.maybe_flush(Instant::now()).expect("child flushes");
    }
}

fn verify(dir: &Path) -> usize {
    let mut tier = DiskTier::open(config(dir)).expect("parent reopens");
    let mut found = 0;
    for k in 0..KEYS {
        let key = format!("crash/{k}").into_bytes();
        let Some(loc) = tier.lookup(&key) else {
            continue;
        };
        match tier.read_object(&loc, &key) {
            Ok(Some(obj)) => {
                let version = u64::from_le_bytes(obj.meta[..].try_into().expect("8-byte meta"));
                assert_eq!(
                    obj.body,
                    body_for(&key, version),
                    "crash/{k} has wrong bytes"
                );
                found += 1;
            }
            Ok(None) => panic!("crash/{k}: indexed but missing"),
            Err(DiskError::Corrupt(what)) => panic!("crash/{k}: corrupt after kill: {what}"),
            Err(e) => panic!("crash/{k}: {e}"),
        }
    }
    found
}

#[test]
fn survives_repeated_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut rng = Rng(0xc0ff_ee11);
    let mut total = 0;
    for cycle in 0..CYCLES {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns child");
        std::thread::sleep(Duration::from_millis(40 + rng.next() % 160));
        let still_running = child.try_wait().expect("polls child").is_none();
        assert!(still_running, "cycle {cycle}: child exited early");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaps child");
        total += verify(dir.path());
    }
    assert!(total > 0, "no object survived any kill");
    println!("crash test: {CYCLES} kills, {total} objects verified in total");
}
