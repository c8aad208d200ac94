#!/usr/bin/env bash
# A profile-guided build of the simulator (BENCHMARKS.md, issue 12, round 18): an instrumented
# build, a training sweep, then a build that uses the profile. Not the default build: a stored
# profile goes stale as the code changes, and every build would cost two. The result is
# target/pgo/ensemble-sim; the ordinary target/release is left as it is.
#   scripts/pgo-sim.sh                 # train on seeds 10000..10200 (not the 0..2000 A/B set)
#   PGO_SEEDS=0..300 scripts/pgo-sim.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seeds=${PGO_SEEDS:-10000..10200}
sysroot=$(rustc --print sysroot)
profdata=$(ls "$sysroot"/lib/rustlib/*/bin/llvm-profdata 2>/dev/null | head -1)
if [ -z "$profdata" ]; then
  echo "llvm-profdata not found: rustup component add llvm-tools-preview" >&2
  exit 1
fi
work="$root/target/pgo"
rm -rf "$work/raw" "$work/sim.profdata"
mkdir -p "$work"
# Own target directories: RUSTFLAGS differ, so sharing target/ would rebuild everything there.
RUSTFLAGS="-Cprofile-generate=$work/raw" cargo build --release \
  --manifest-path sim/Cargo.toml --target-dir "$work/gen"
"$work/gen/release/ensemble-sim" sweep --seeds "$seeds" --jobs 1
"$profdata" merge -o "$work/sim.profdata" "$work/raw"
RUSTFLAGS="-Cprofile-use=$work/sim.profdata" cargo build --release \
  --manifest-path sim/Cargo.toml --target-dir "$work/use"
cp "$work/use/release/ensemble-sim" "$work/ensemble-sim"
echo "built $work/ensemble-sim (trained on seeds $seeds)"
