#!/usr/bin/env bash
# Builds the node binary of the previous peer-protocol version (v4: the last commit before
# 568fa27 raised it to 5) for the rolling-upgrade test (interop/tests/test_rolling_upgrade.py),
# and prints its path. The sources come from this repository's own history (`git archive` into
# target/old-node/<commit>/src, so no worktree is registered in the shared .git), built with a
# target directory of their own (without debug info: the test needs no symbols); the binary is
# kept as target/old-node/<commit>/ensemble and the build's 1+ GB removed, so a second run
# neither rebuilds nor holds the build's space.
#
#   scripts/old-node.sh            build if needed, print the binary's path
# Exit 3 (and a message on stderr) when the history is absent (a shallow clone).
set -euo pipefail
cd "$(dirname "$0")/.."
# The previous peer-protocol version's last commit (PROTOCOL_VERSION 4 in node/src/runtime/wire.rs).
OLD_REV="${ENSEMBLE_OLD_REV:-568fa27^}"
if ! commit=$(git rev-parse --verify --quiet "$OLD_REV^{commit}" 2>/dev/null); then
  echo "old-node.sh: $OLD_REV is not in this clone's git history (shallow clone?): cannot build the previous release" >&2
  exit 3
fi
dir="target/old-node/$commit"
bin="$dir/ensemble"
if [ -x "$bin" ]; then
  echo "$PWD/$bin"
  exit 0
fi
if [ ! -f "$dir/src/Cargo.toml" ]; then
  rm -rf "$dir/src"
  mkdir -p "$dir/src"
  git archive "$commit" | tar -x -C "$dir/src"
fi
echo "old-node.sh: building the v4 node of ${commit:0:10} in $dir (cold: several minutes)" >&2
start=$(date +%s)
# Only the node's binary; its own target dir, so the current build's artefacts are untouched.
(cd "$dir/src" && CARGO_TARGET_DIR="$PWD/../target" CARGO_PROFILE_RELEASE_DEBUG=0 \
  nice cargo build --release --locked -p ensemble-node --bin ensemble >&2)
cp "$dir/target/release/ensemble" "$bin.tmp"
mv "$bin.tmp" "$bin"
rm -rf "$dir/target" "$dir/src"
echo "old-node.sh: built in $(( $(date +%s) - start )) s" >&2
echo "$PWD/$bin"
