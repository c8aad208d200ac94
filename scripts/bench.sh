#!/usr/bin/env bash
# The benchmark of issue 5 (see BENCHMARKS.md): builds the release binaries, then runs a 3-node
# Ensemble and a 3-node Apache ZooKeeper 3.8 one after the other on this machine with the same
# client and prints the side-by-side table with the ratios against the targets.
#
#   scripts/bench.sh                 # the full run (with 1,000,000 znodes: ~20-30 minutes)
#   scripts/bench.sh --scale 0       # throughput and latency only (~5 minutes)
#   scripts/bench.sh sessions        # issue 16's scale run: 10,000 sessions, storm, watches
#                                    # (= --session-scale 10000 --port-base 29500; ~6 min)
#   scripts/bench.sh --help          # every flag
#
# Output is also written to target/bench-<date>.txt. Needs the Debian package `zookeeper`
# (scripts/install-test-deps.sh installs it). Not for CI: it measures, it does not test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/java/zookeeper.jar ]; then
  echo "bench.sh: Apache ZooKeeper is not installed; run scripts/install-test-deps.sh" >&2
  exit 1
fi
if [ "${1:-}" = sessions ]; then
  shift
  # ports below the ephemeral range: 10,000 client sockets in TIME_WAIT from the first system's
  # turn would otherwise collide with the second's listening ports
  set -- --session-scale 10000 --port-base 29500 "$@"
fi
cargo build --release -p ensemble-node -p ensemble-bench
echo "uptime: $(uptime)"
mkdir -p target; out="target/bench-$(date +%Y%m%d-%H%M%S).txt"
target/release/ensemble-bench "$@" 2>&1 | tee "$out"
exit "${PIPESTATUS[0]}"
