#!/usr/bin/env bash
# Instructions per op of the core and its codecs, from ensemble-corebench under callgrind
# (repeatable on a loaded machine, unlike wall-clock numbers). Prints the leader's and each
# follower's instructions per op and the allocations per op.
#
#   scripts/corebench-callgrind.sh write 20000 [out-file]
#   scripts/corebench-callgrind.sh create 20000
set -euo pipefail
cd "$(dirname "$0")/.."
w="${1:-write}"; n="${2:-20000}"; out="${3:-/tmp/corebench-$w.callgrind}"
valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*measured*' \
  --callgrind-out-file="$out" target/release/ensemble-corebench --workload "$w" --ops "$n" 2>/dev/null
callgrind_annotate --inclusive=yes "$out" 2>/dev/null |
  awk -v n="$n" '/step_leader \[/ && !l { gsub(",","",$1); l=$1 } /step_follower \[/ && !f { gsub(",","",$1); f=$1 }
    END { printf "instructions per op: leader %.0f, each follower %.0f\n", l/n, f/2/n }'
