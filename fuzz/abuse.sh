#!/usr/bin/env bash
# The hand-made garbage and abuse run against a live 3-voter ensemble (see fuzz/README.md):
# every kind of abusive client at once while three good clients write and read; at the end
# every acknowledged write is read back from every server, before and after a restart.
# Usage: fuzz/abuse.sh [SECONDS] [CHILDREN]   (from anywhere; defaults 300 s, 100000)
set -eu
cd "$(dirname "$0")/.."
ENSEMBLE_ABUSE_SECS=${1:-300} ENSEMBLE_ABUSE_CHILDREN=${2:-100000} \
  cargo test --release -p ensemble-node --test hostile_clients \
  abuse_run_against_a_three_node_ensemble -- --exact --nocapture
