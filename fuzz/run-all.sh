#!/usr/bin/env bash
# Run every target for a fixed budget, one after another (the machine is shared), keeping
# going after a crash (-fork=1 -ignore_crashes=1) so each target gets its whole budget.
# Usage: fuzz/run-all.sh [SECONDS_PER_TARGET] [TARGET...]   (from the repository root)
set -u
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(jute_request jute_reply peer_frame zoo_cfg txn_log snapshot_file tree_snapshot ensemble)
fi
mkdir -p logs
for t in "${targets[@]}"; do
  echo "== $t: ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" -- \
    -max_total_time="$secs" -fork=1 -ignore_crashes=1 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"logs/$t.log" 2>&1
  grep -E "^#[0-9]+: cov|INFO: .*(exec|fuzzed)|crash|ERROR" "logs/$t.log" | tail -3
done
