//! The disk tier through the real binary: objects evicted from RAM are served from disk, a restart
//! (graceful or `kill -9` after the flush delay) keeps the cache warm, and a record corrupted on disk
//! is never served: it is fetched again from the origin.

mod common;
use common::*;
use std::thread;
use std::time::Duration;

/// Bodies derived from the path, so any wrong byte shows.
fn body_for(path: &str, len: usize) -> Vec<u8> {
    let mut x = path.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |a, b| {
        (a ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

fn origin() -> Origin {
    Origin::start(|req, s| {
        respond(
            s,
            "200 OK",
            "Cache-Control: max-age=3600\r\n",
            &body_for(&req.path, 10_000),
        )
    })
}

fn config(dir: &TempDir) -> (String, Vec<String>) {
    (
        "[cache]\ndisk_segment_size = \"1MiB\"\ndisk_flush_delay = \"100ms\"\n".to_string(),
        vec!["--disk".into(), format!("{}=64MiB", dir.0.display())],
    )
}

fn start(o: &Origin, dir: &TempDir, ram: &str) -> Verge {
    let (toml, mut args) = config(dir);
    args.push("--ram".into());
    args.push(ram.into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Verge::start_with(&o.url(), &toml, &refs)
}

fn wait_exit(v: &mut Verge) {
    for _ in 0..300 {
        if v.child.try_wait().unwrap().is_some() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("verge did not exit");
}

#[test]
fn objects_evicted_from_ram_are_served_from_disk() {
    let o = origin();
    let dir = temp_dir();
    let v = start(&o, &dir, "1MiB");
    for i in 0..300 {
        assert_eq!(get(&v, &format!("/d{i}")).status, 200);
    }
    for i in 0..300 {
        let p = format!("/d{i}");
        let r = get(&v, &p);
        assert_eq!(r.x_cache(), "Hit from verge", "{p}");
        assert_eq!(r.body, body_for(&p, 10_000), "{p}");
    }
    assert_eq!(
        o.requests().len(),
        300,
        "3 MB of objects in a 1 MiB RAM tier: the rest came from disk"
    );
}

#[test]
fn a_restart_keeps_the_cache_warm() {
    let o = origin();
    let dir = temp_dir();
    let mut v = start(&o, &dir, "64MiB");
    for i in 0..100 {
        get(&v, &format!("/w{i}"));
    }
    v.signal("TERM");
    wait_exit(&mut v);
    drop(v);
    let v = start(&o, &dir, "64MiB");
    for i in 0..100 {
        let p = format!("/w{i}");
        let r = get(&v, &p);
        assert_eq!(r.x_cache(), "Hit from verge", "{p} after restart");
        assert_eq!(r.body, body_for(&p, 10_000));
    }
    assert_eq!(o.requests().len(), 100);
}

#[test]
fn kill_9_after_the_flush_delay_loses_nothing() {
    let o = origin();
    let dir = temp_dir();
    let mut v = start(&o, &dir, "64MiB");
    for i in 0..100 {
        get(&v, &format!("/k{i}"));
    }
    thread::sleep(Duration::from_millis(600));
    v.signal("KILL");
    wait_exit(&mut v);
    drop(v);
    let v = start(&o, &dir, "64MiB");
    for i in 0..100 {
        let p = format!("/k{i}");
        let r = get(&v, &p);
        assert_eq!(r.x_cache(), "Hit from verge", "{p} after kill -9");
        assert_eq!(r.body, body_for(&p, 10_000));
    }
    assert_eq!(o.requests().len(), 100);
}

#[test]
fn a_corrupted_record_is_refetched_not_served() {
    let o = origin();
    let dir = temp_dir();
    let mut v = start(&o, &dir, "64MiB");
    get(&v, "/victim");
    get(&v, "/bystander");
    v.signal("TERM");
    wait_exit(&mut v);
    drop(v);
    // Flip one byte inside the victim's body on disk.
    let needle = body_for("/victim", 10_000);
    let mut flipped = 0;
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let path = entry.unwrap().path();
        let mut data = std::fs::read(&path).unwrap();
        if let Some(pos) = data.windows(64).position(|w| w == &needle[..64]) {
            data[pos + 5000] ^= 0x20;
            std::fs::write(&path, &data).unwrap();
            flipped += 1;
        }
    }
    assert_eq!(flipped, 1, "the victim's body was found on disk");
    let v = start(&o, &dir, "64MiB");
    let r = get(&v, "/victim");
    assert_eq!(r.body, needle, "never the corrupted bytes");
    assert_eq!(o.count("/victim"), 2, "fetched again from the origin");
    // Records after a damaged one in the unsealed segment are cut by recovery (never skipped over),
    // so the bystander may be fetched again too; it is never served wrong.
    let b = get(&v, "/bystander");
    assert_eq!(b.body, body_for("/bystander", 10_000));
}

#[test]
fn a_bad_disk_setting_stops_start_up() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_verge"))
        .args(["--disk", "nowhere", "--check-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cache.disk"));
}

/// Major faults of the process's shard threads (named `verge-shard-N`), from /proc.
fn shard_major_faults(pid: u32) -> u64 {
    let mut total = 0;
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("verge-shard") {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state(3) ... majflt is field 12.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        total += fields[9].parse::<u64>().unwrap();
        threads += 1;
    }
    assert!(
        threads > 0,
        "no verge-shard threads found in /proc/{pid}/task"
    );
    total
}

/// Drops the page cache's copy of every file in `dir`.
fn evict_page_cache(dir: &std::path::Path) {
    use std::os::unix::io::AsRawFd;
    for entry in std::fs::read_dir(dir).unwrap() {
        let f = std::fs::File::open(entry.unwrap().path()).unwrap();
        // SAFETY: plain advisory call on an open descriptor.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
    }
}

#[test]
fn cold_disk_reads_take_no_major_faults_on_the_shards() {
    let o = origin();
    let dir = temp_dir();
    let mut v = start(&o, &dir, "1MiB");
    for i in 0..200 {
        get(&v, &format!("/c{i}"));
    }
    v.signal("TERM");
    wait_exit(&mut v);
    drop(v);
    evict_page_cache(&dir.0);
    let v = start(&o, &dir, "1MiB");
    let before = shard_major_faults(v.child.id());
    for i in 0..200 {
        let p = format!("/c{i}");
        let r = get(&v, &p);
        assert_eq!(r.x_cache(), "Hit from verge", "{p}");
        assert_eq!(r.body, body_for(&p, 10_000));
    }
    let after = shard_major_faults(v.child.id());
    assert_eq!(
        after - before,
        0,
        "major faults on serving threads during cold disk reads"
    );
    assert_eq!(o.requests().len(), 200);
}

#[test]
fn second_hit_admission_writes_only_objects_asked_for_again() {
    let o = origin();
    let dir = temp_dir();
    let (mut toml, mut args) = config(&dir);
    toml.push_str("disk_admission = \"second-hit\"\n");
    args.extend(["--ram".to_string(), "64MiB".to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut v = Verge::start_with(&o.url(), &toml, &refs);
    for i in 0..20 {
        get(&v, &format!("/once{i}"));
        get(&v, &format!("/twice{i}"));
        get(&v, &format!("/twice{i}"));
    }
    v.signal("TERM");
    wait_exit(&mut v);
    drop(v);
    let v = Verge::start_with(&o.url(), &toml, &refs);
    for i in 0..20 {
        assert_eq!(
            get(&v, &format!("/twice{i}")).x_cache(),
            "Hit from verge",
            "hit twice: on disk"
        );
        assert_eq!(
            get(&v, &format!("/once{i}")).x_cache(),
            "Miss from verge",
            "one-hit wonder: never written"
        );
    }
}
