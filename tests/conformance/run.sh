#!/usr/bin/env bash
# Runs the public HTTP caching conformance suite (../shared/conformance/cache-tests.sh, the suite behind
# cache-tests.fyi) against a release build of Verge and fails if the required, optimal or total pass count
# drops below tests/conformance/floor.env. Usage: tests/conformance/run.sh [VERGE_BINARY]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
suite="$root/../shared/conformance/cache-tests.sh"
bin="${1:-$root/target/release/verge}"
port="${CT_VERGE_PORT:-18080}"
out="${CT_OUT:-/tmp/verge-cache-tests}"
mkdir -p "$out"
# shellcheck source=floor.env
source "$root/tests/conformance/floor.env"
if [ ! -x "$suite" ] && [ ! -f "$suite" ]; then
  echo "conformance: $suite not found (shared/ must sit beside the repository)" >&2
  exit 1
fi
"$bin" --origin http://127.0.0.1:18000 --listen "127.0.0.1:$port" > "$out/verge.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
bash "$suite" "http://127.0.0.1:$port" "$out/results.json" | tee "$out/summary.txt"
count() { awk -v k="$1" '$1 == k { print $3 }' "$out/summary.txt" | head -n1; }
required=$(count required)
optimal=$(count optimal)
total=$(sed -n 's/^cache-tests: \([0-9]*\) passed.*/\1/p' "$out/summary.txt" | tail -n1)
echo "conformance: required $required (floor $REQUIRED_FLOOR), optimal $optimal (floor $OPTIMAL_FLOOR), total $total (floor $TOTAL_FLOOR)"
fail=0
[ "${required:-0}" -ge "$REQUIRED_FLOOR" ] || { echo "conformance: required passes fell below the floor" >&2; fail=1; }
[ "${optimal:-0}" -ge "$OPTIMAL_FLOOR" ] || { echo "conformance: optimal passes fell below the floor" >&2; fail=1; }
[ "${total:-0}" -ge "$TOTAL_FLOOR" ] || { echo "conformance: total passes fell below the floor" >&2; fail=1; }
exit "$fail"
