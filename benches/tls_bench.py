#!/usr/bin/env python3
"""TLS variant of ../shared/bench's S1/S4: 1 KiB cache hits over TLS, HTTP/1.1 and HTTP/2 (ALPN),
Verge against nginx proxy_cache, in the same run, measured the same way (server pinned to cpu 0,
h2load on cpu 1, req/s per server core = req/s / CPU time the server's processes used).

usage: benches/tls_bench.py [--duration 10] [--repeat 1] [--verge target/release/verge]

Both servers use the same ECDSA P-256 certificate (tests/fixtures/tls), TLS 1.3, session tickets,
one worker / one shard, and cache the origin's 1 KiB object (the origin is an nginx serving a file
with Cache-Control: max-age=3600, on cpu 1). Loopback only; ports 28100-28103.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "tls")
ORIGIN_PORT, NGINX_PORT, VERGE_PORT, VERGE_PLAIN = 28100, 28101, 28102, 28103
CLK_TCK = os.sysconf("SC_CLK_TCK")

ORIGIN_CONF = """
worker_processes 1;
pid {run}/origin.pid;
error_log {run}/origin.err warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {run}/www;
        location / {{ add_header Cache-Control "max-age=3600"; }}
    }}
}}
"""

NGINX_CONF = """
worker_processes 1;
worker_rlimit_nofile 20000;
pid {run}/nginx.pid;
error_log {run}/nginx.err warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    server_tokens off;
    sendfile off;
    tcp_nodelay on;
    keepalive_requests 1000000;
    open_file_cache max=30000 inactive=600s;
    proxy_temp_path {run}/tmp;
    proxy_cache_path {run}/cache levels=1:2 keys_zone=edge:64m max_size=1g inactive=2h use_temp_path=off;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} ssl http2 backlog=4096;
        ssl_certificate {fix}/localhost.pem;
        ssl_certificate_key {fix}/localhost.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
        ssl_session_cache shared:SSL:10m;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;
            proxy_cache_key $scheme$http_host$request_uri;
            proxy_cache_lock on;
            add_header X-Cache $upstream_cache_status;
        }}
    }}
}}
"""


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except FileNotFoundError:
            pass
    return total


def session_pids(sid):
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.getsid(int(d)) == sid:
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def start(cmd, cpu):
    return subprocess.Popen(["taskset", "-c", str(cpu)] + cmd, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ok(url):
    deadline = time.time() + 15
    while time.time() < deadline:
        r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", url],
                           capture_output=True, text=True)
        if r.stdout == "200":
            return
        time.sleep(0.1)
    sys.exit(f"{url} did not answer 200")


def h2load(url, h1, duration, sid):
    args = ["taskset", "-c", "1", "h2load", "-c", "64", "-D", str(duration)]
    args += ["--h1"] if h1 else ["-m", "16"]
    before = cpu_ticks(session_pids(sid))
    t0 = time.time()
    out = subprocess.run(args + [url], capture_output=True, text=True).stdout
    wall = time.time() - t0
    cpu = (cpu_ticks(session_pids(sid)) - before) / CLK_TCK / wall
    m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    ok = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    proto = re.search(r"Application protocol: (\S+)", out)
    return {
        "rps": float(m.group(1)) if m else 0.0,
        "cpu": cpu,
        "failed": int(ok.group(2)) + int(ok.group(3)) if ok else -1,
        "proto": proto.group(1) if proto else "?",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--verge", default=os.path.join(ROOT, "target", "release", "verge"))
    a = ap.parse_args()
    run = tempfile.mkdtemp(prefix="verge-tls-bench-")
    os.chmod(run, 0o755)  # nginx workers run as an unprivileged user
    os.makedirs(f"{run}/www/obj/1k")
    os.makedirs(f"{run}/tmp")
    with open(f"{run}/www/obj/1k/0", "wb") as f:
        f.write(bytes((i * 7) % 251 for i in range(1024)))
    with open(f"{run}/origin.conf", "w") as f:
        f.write(ORIGIN_CONF.format(run=run, port=ORIGIN_PORT))
    with open(f"{run}/nginx.conf", "w") as f:
        f.write(NGINX_CONF.format(run=run, port=NGINX_PORT, origin=ORIGIN_PORT, fix=FIX))
    procs = [start(["nginx", "-c", f"{run}/origin.conf", "-g", "daemon off;"], 1)]
    targets = {
        "nginx": (["nginx", "-c", f"{run}/nginx.conf", "-g", "daemon off;"], NGINX_PORT),
        "verge": ([a.verge, "--listen", f"127.0.0.1:{VERGE_PLAIN}", "--tls-listen",
                   f"127.0.0.1:{VERGE_PORT}", "--cert", f"{FIX}/localhost.pem", "--key",
                   f"{FIX}/localhost.key", "--origin", f"http://127.0.0.1:{ORIGIN_PORT}"],
                  VERGE_PORT),
    }
    results = {}
    try:
        wait_ok(f"http://127.0.0.1:{ORIGIN_PORT}/obj/1k/0")
        for rnd in range(a.repeat):
            for name, (cmd, port) in targets.items():
                p = start(cmd, 0)
                procs.append(p)
                url = f"https://127.0.0.1:{port}/obj/1k/0"
                wait_ok(url)
                for _ in range(3):
                    wait_ok(url)
                for scen, h1 in (("T1 1 KiB hit, TLS h1, c64", True),
                                 ("T2 1 KiB hit, TLS h2, c64 m16", False)):
                    r = h2load(url, h1, a.duration, p.pid)
                    print(f"  round {rnd + 1} {name} {scen}: {r['rps']:.0f} req/s, cpu {r['cpu']:.2f}, "
                          f"{r['rps'] / max(r['cpu'], 0.01):.0f} per core, {r['failed']} failed, {r['proto']}",
                          file=sys.stderr)
                    results.setdefault((scen, name), []).append(r)
                os.killpg(p.pid, signal.SIGTERM)
                p.wait()
                procs.remove(p)
                time.sleep(0.5)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        shutil.rmtree(run, ignore_errors=True)

    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    print("| scenario | target | req/s | SUT cpu | req/s per SUT core | vs nginx | errors | protocol |")
    print("|---|---|--:|--:|--:|--:|--:|---|")
    for scen in sorted({s for s, _ in results}):
        base = None
        for name in ("nginx", "verge"):
            rs = results.get((scen, name))
            if not rs:
                continue
            rps = med([r["rps"] for r in rs])
            cpu = med([r["cpu"] for r in rs])
            per = med([r["rps"] / max(r["cpu"], 0.01) for r in rs])
            base = base or per
            print(f"| {scen} | {name} | {rps:.0f} | {cpu:.2f} | {per:.0f} | {per / base:.2f} | "
                  f"{sum(r['failed'] for r in rs)} | {rs[0]['proto']} |")


if __name__ == "__main__":
    main()
