#!/usr/bin/env bash
# A/B of server CPU per request between two Verge binaries (or one binary with two sets of
# flags): the method behind the before/after figures in commit messages. Builds alternate
# round by round, and which goes first alternates too (AB, BA, ...), so slow drifts of this noisy
# VM hit both alike; the medians are printed. Use an even number of rounds.
#
#   benches/ab.sh [options] BIN_A BIN_B [-- extra verge flags for both]
#     --rounds N      pairs of runs (default 6)
#     --duration S    seconds per measured run (default 6)
#     --conns C       h2load connections (default 64)
#     --h2c           HTTP/2 cleartext with 16 streams per connection instead of HTTP/1.1
#     --path P        the object to hit (default /obj/1k/0, 1 KiB; /obj/4k/0 is 4 KiB)
#     --a-flags "..." --b-flags "..."   extra flags for one side only (same binary, two configs)
#     --shards N      N shards on cpus 0..N-1, h2load unpinned (the owner hop between shards; e.g.
#                     --shards 2 --a-flags "--config off.toml" with near copies off in off.toml)
#
# Verge runs pinned to cpu 0 with one shard, h2load to cpu 1, each run after a 2 s warm-up.
# CPU per request = the server's utime+stime during the run / requests answered. The origin is
# a throw-away nginx on 127.0.0.1:28100 serving fixed objects with `max-age=3600`, so after the
# warm-up every request is a hit. Needs nginx, h2load (nghttp2-client), curl, taskset, python3.
# Give the same binary as A and B to see this machine's noise floor before trusting a ratio.
set -euo pipefail

rounds=6 duration=6 conns=64 proto=(--h1) path=/obj/1k/0 a_flags="" b_flags=""
server_cpus=0 client_cpus=1 shard_flags=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --h2c) proto=(-m 16); shift ;;
    --path) path=$2; shift 2 ;;
    --a-flags) a_flags=$2; shift 2 ;;
    --b-flags) b_flags=$2; shift 2 ;;
    --shards)
      server_cpus="0-$(($2 - 1))" client_cpus="0-$(($(nproc) - 1))" shard_flags="--shards $2"
      shift 2 ;;
    --) break ;;
    -*) echo "ab.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2; }
bin_a=$1 bin_b=$2; shift 2
[ "${1:-}" = "--" ] && shift
common=("$@")
for b in "$bin_a" "$bin_b"; do [ -x "$b" ] || { echo "ab.sh: $b is not executable" >&2; exit 2; }; done
for t in nginx h2load curl taskset python3; do
  command -v "$t" >/dev/null || { echo "ab.sh: needs $t" >&2; exit 2; }
done
if pgrep -x verge >/dev/null; then
  echo "ab.sh: a verge process is running; with SO_REUSEPORT it would share the port" >&2
  exit 2
fi

work=$(mktemp -d /tmp/verge-ab.XXXXXX)
chmod 755 "$work" # the origin's workers read www as nobody
origin_pid=""
cleanup() {
  [ -n "$origin_pid" ] && kill "$origin_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The origin: fixed objects, cacheable for an hour.
mkdir -p "$work/www/obj/1k" "$work/www/obj/4k" "$work/logs"
head -c 1024 /dev/urandom >"$work/www/obj/1k/0"
head -c 4096 /dev/urandom >"$work/www/obj/4k/0"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:28100;
    root $work/www;
    add_header Cache-Control "public, max-age=3600";
  }
}
EOF
taskset -c 1 nginx -c "$work/nginx.conf" -p "$work" &
origin_pid=$!

url="http://127.0.0.1:28101$path"

# run BIN FLAGS: prints the server's CPU µs per request for one measured run.
run() {
  local bin=$1 flags=$2 pid t0 t1 out n
  # shellcheck disable=SC2086 # flags are meant to split into words
  taskset -c "$server_cpus" "$bin" --listen 127.0.0.1:28101 --origin http://127.0.0.1:28100 \
    $shard_flags "${common[@]}" $flags >"$work/logs/verge.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done
  # Bounded: h2load before 1.64 can run forever when the server closes connections right at the
  # end of a timed run (nghttp2 issue #2250); that fails the A/B instead of stalling it.
  timeout 60 taskset -c "$client_cpus" h2load "${proto[@]}" -c "$conns" -D 2 "$url" >/dev/null 2>&1 || true
  t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  if ! out=$(timeout $((duration + 60)) taskset -c "$client_cpus" h2load -t 1 "${proto[@]}" -c "$conns" \
    -D "$duration" "$url" 2>&1); then
    kill "$pid" 2>/dev/null || true
    echo "ab.sh: h2load did not finish against $bin (see nghttp2 issue #2250)" >&2
    exit 1
  fi
  t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  n=$(echo "$out" | awk '/^status codes:/ {print $3}')
  [ "${n:-0}" -gt 0 ] || { echo "ab.sh: no 2xx answers from $bin" >&2; exit 1; }
  python3 -c "import os; print('%.2f' % (($t1 - $t0) * 1e6 / os.sysconf('SC_CLK_TCK') / $n))"
}

ra=() rb=()
for i in $(seq "$rounds"); do
  # The order alternates (AB, BA, ...): the second run of a pair tends to cost more here.
  if [ $((i % 2)) -eq 1 ]; then
    a=$(run "$bin_a" "$a_flags"); b=$(run "$bin_b" "$b_flags")
  else
    b=$(run "$bin_b" "$b_flags"); a=$(run "$bin_a" "$a_flags")
  fi
  ra+=("$a"); rb+=("$b")
  echo "round $i: A $a µs  B $b µs"
done
python3 - "${ra[*]}" "${rb[*]}" <<'EOF'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median CPU per request: A {ma:.2f} µs  B {mb:.2f} µs  B/A {mb / ma:.3f}")
EOF
