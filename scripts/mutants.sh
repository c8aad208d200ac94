#!/usr/bin/env bash
# Mutation testing of core/src with the simulator's 300-seed sweep as the test (scripts/mutants.py
# says how). Examples:
#   scripts/mutants.sh --sample 30 --pick-seed 1      # 30 random mutants, in a copy of the tree
#   scripts/mutants.sh --only 'through <= self.durable'  # the mutants of one line
#   scripts/mutants.sh --list --sample 0               # every mutant, nothing run
#   scripts/mutants.sh --ci                            # CI's sample (see below)
# The report (killed / survived / known / unviable / timeout) is target/mutants/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --ci ]; then
  # CI: two mutants (a fixed pick), in a copy of the tree with its own target directory (the
  # checkout and its build stay as they are); fails on a survivor that sim/MUTANTS.md does not
  # explain.
  shift
  exec python3 scripts/mutants.py --sample 2 --pick-seed "${MUTANTS_PICK:-4}" --ci "$@"
fi
exec python3 scripts/mutants.py "$@"
