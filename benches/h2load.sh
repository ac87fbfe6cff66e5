#!/usr/bin/env bash
# h2load scenarios against a built Verge, next to peers in the same run: the shared harness
# (../shared/bench/run.sh: S1-S6, cleartext HTTP/1.1 and h2c), then the TLS variant
# (benches/tls_bench.py: 1 KiB hits over TLS, HTTP/1.1 and HTTP/2) against nginx. Between the
# two, benches/goals.py prints every issue-6 goal as a ratio against the run's best peer.
# Verge is pinned to cpu 0 (one shard), h2load to cpu 1, as the harness does.
#
#   benches/h2load.sh                       # quick: Verge and nginx, one round
#   benches/h2load.sh --repeat 3 nginx varnish ats squid ceiling   # the issue-6 table (~20 min)
#
# Needs: cargo build --release; nginx, h2load (nghttp2-client), curl; the shared harness in
# ../shared/bench (and varnish / trafficserver / squid for those peers).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/release/verge ] || cargo build --release
args=()
peers=()
for a in "$@"; do
  case "$a" in
    --*|[0-9]*) args+=("$a") ;;
    *) peers+=("$a") ;;
  esac
done
[ ${#args[@]} -gt 0 ] || args=(--quick)
[ ${#peers[@]} -gt 0 ] || peers=(nginx)
VERGE="cmd@verge:exec $PWD/target/release/verge --listen 127.0.0.1:\$PORT --origin http://127.0.0.1:\$ORIGIN_PORT"
out=${BENCH_OUT:-${BENCH_TMP:-/tmp/bench}/results/verge-$(date +%Y%m%d-%H%M%S)}
BENCH_OUT=$out ../shared/bench/run.sh "${args[@]}" "${peers[@]}" "$VERGE"
# The goals as ratios against the best peer of this run (per core where the goal says so; the
# harness table's "vs" column is plain req/s).
echo
python3 benches/goals.py "$out"
echo
repeat=1
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "--repeat" ] && repeat=${args[$((i + 1))]}
done
duration=10
[[ " ${args[*]} " == *" --quick "* ]] && duration=6
python3 benches/tls_bench.py --repeat "$repeat" --duration "$duration"
