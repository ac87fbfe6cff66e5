#!/usr/bin/env python3
"""Disk-tier restart check against a release build (issue "hybrid object store"):

1. start a deterministic origin (bodies derived from the path) and verge with a disk tier;
2. fill N objects through verge, and SIGKILL verge while the fill is still writing;
3. restart verge on the same disk and read every object back: every answer must be byte-exact, and
   every recovered object a hit (the origin is not asked for it);
4. flip bytes inside some stored bodies on disk, restart, and check they are refetched, never served;
5. report recovery time and index bytes per object from verge's start-up log.

usage: benches/disk_restart_check.py [--objects 100000] [--verge target/release/verge]
Loopback only, bounded in count and time.
"""
import argparse, hashlib, http.client, os, random, re, signal, subprocess, sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def body_for(path):
    h = hashlib.blake2b(path.encode(), digest_size=32).digest()
    n = 512 + h[0] * 8  # 512 .. 2552 bytes
    return (h * (n // 32 + 1))[:n]

class Origin(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    counts = {}
    lock = threading.Lock()
    def do_GET(self):
        with Origin.lock:
            Origin.counts[self.path] = Origin.counts.get(self.path, 0) + 1
        b = body_for(self.path)
        self.send_response(200)
        self.send_header("Cache-Control", "max-age=86400")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass

    def handle(self):
        try:
            super().handle()
        except ConnectionError:
            pass  # verge was killed mid-request: expected here

def free_port():
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start_verge(binary, port, origin_port, disk, log):
    p = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--origin", f"http://127.0.0.1:{origin_port}",
                          "--disk", f"{disk}=2GiB", "--ram", "64MiB"], stderr=open(log, "w"), stdout=subprocess.DEVNULL)
    t0 = time.time()
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2); c.request("GET", "/__ping"); c.getresponse().read(); c.close()
            return p, time.time() - t0
        except OSError:
            if time.time() - t0 > 30:
                sys.exit("verge did not start")
            time.sleep(0.02)

def get_all(port, paths, stop=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = {}
    for p in paths:
        if stop and stop.is_set():
            break
        try:
            c.request("GET", p); r = c.getresponse(); out[p] = (r.status, r.getheader("X-Cache"), r.read())
        except Exception:
            c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=100000)
    ap.add_argument("--verge", default="target/release/verge")
    a = ap.parse_args()
    origin_port, port = free_port(), free_port()
    srv = ThreadingHTTPServer(("127.0.0.1", origin_port), Origin)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    disk = tempfile.mkdtemp(prefix="verge-disk-check-")
    paths = [f"/o/{i}" for i in range(a.objects)]
    v, _ = start_verge(a.verge, port, origin_port, disk, "/tmp/verge-check-1.log")
    # Fill with two clients; kill -9 while they are still writing (at ~90% of the objects).
    done = {}
    stop = threading.Event()
    def fill(part):
        done.update(get_all(port, part, stop))
    halves = [paths[0::2], paths[1::2]]
    ts = [threading.Thread(target=fill, args=(h,)) for h in halves]
    t0 = time.time()
    for t in ts: t.start()
    while len(Origin.counts) < int(a.objects * 0.9):
        time.sleep(0.01)
    v.send_signal(signal.SIGKILL); v.wait(); stop.set()
    for t in ts: t.join()
    filled = len(Origin.counts)
    print(f"filled {filled} objects in {time.time() - t0:.1f}s, then SIGKILL during writes")
    before = dict(Origin.counts)
    v, up = start_verge(a.verge, port, origin_port, disk, "/tmp/verge-check-2.log")
    log = open("/tmp/verge-check-2.log").read()
    print("restart: listening after %.2fs" % up)
    for line in log.splitlines():
        if "disk tier" in line: print("  " + line)
    got = get_all(port, paths[:filled] if filled < len(paths) else paths)
    wrong = [p for p, (s, x, b) in got.items() if s != 200 or b != body_for(p)]
    hits = [p for p, (s, x, b) in got.items() if x == "Hit from verge"]
    refetched_hits = [p for p in hits if Origin.counts.get(p, 0) != before.get(p, 0)]
    print(f"read back {len(got)}: {len(wrong)} wrong, {len(hits)} hits from disk, {len(got) - len(hits)} refetched")
    assert not wrong, wrong[:5]
    assert not refetched_hits
    # Corruption: flip one byte inside 20 stored bodies, restart, they must be refetched.
    v.send_signal(signal.SIGTERM); v.wait()
    victims = random.Random(7).sample(hits, min(20, len(hits)))
    files = [os.path.join(disk, f) for f in os.listdir(disk)]
    flipped = 0
    blobs = {f: bytearray(open(f, "rb").read()) for f in files}
    for p in victims:
        b = body_for(p)
        for f, data in blobs.items():
            i = data.find(b[:256])
            if i >= 0:
                data[i + 300] ^= 0x55; flipped += 1; break
    for f, data in blobs.items():
        open(f, "wb").write(data)
    before = dict(Origin.counts)
    v, _ = start_verge(a.verge, port, origin_port, disk, "/tmp/verge-check-3.log")
    got = get_all(port, victims)
    wrong = [p for p, (s, x, b) in got.items() if b != body_for(p)]
    refetched = [p for p in victims if Origin.counts.get(p, 0) > before.get(p, 0)]
    print(f"corruption: flipped bytes in {flipped} bodies: {len(wrong)} served wrong, {len(refetched)} refetched from origin")
    assert not wrong
    assert len(refetched) >= flipped
    v.send_signal(signal.SIGTERM); v.wait()
    print("disk_restart_check: 1 passed, 0 failed")

if __name__ == "__main__":
    main()
