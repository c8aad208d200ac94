#!/usr/bin/env bash
# Run every target for a fixed budget, one after another (the machine is shared). libFuzzer
# stops at the first crash; FORK=1 keeps going after one (-fork=1 -ignore_crashes=1) so each
# target gets its whole budget, at a large cost in executions (each fork job reloads the corpus).
# -O -a: optimised, with debug assertions and overflow checks (an overflowing length sum is a bug
# even where a release build would wrap). One malloc over 128 MB is reported as a crash: inputs
# are a few KiB, so only a trusted length field could ask for that much.
# Usage: fuzz/run-all.sh [SECONDS_PER_TARGET] [TARGET...]   (from the repository root)
set -u
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(jute_request jute_reply peer_frame zoo_cfg txn_log snapshot_file tree_snapshot ensemble scenario)
fi
mkdir -p logs
for t in "${targets[@]}"; do
  echo "== $t: ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a "$t" -- \
    -max_total_time="$secs" ${FORK:+-fork=1 -ignore_crashes=1} -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=128 \
    -print_final_stats=1 >"logs/$t.log" 2>&1
  # the last status line (total executions) and the final stats
  grep -E "^#[0-9]+" "logs/$t.log" | tail -1
  grep -E "^stat::number_of_executed_units" "logs/$t.log"
  grep -E "^(==[0-9]+== ERROR|.*Test unit written to)" "logs/$t.log" | sort | uniq -c | head
done
