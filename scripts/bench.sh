#!/usr/bin/env bash
# The benchmark of issue 5 (see BENCHMARKS.md): builds the release binaries, then runs a 3-node
# Ensemble and a 3-node Apache ZooKeeper 3.8 one after the other on this machine with the same
# client and prints the side-by-side table with the ratios against the targets.
#
#   scripts/bench.sh                 # the full run (with 1,000,000 znodes: ~20-30 minutes)
#   scripts/bench.sh --scale 0       # throughput and latency only (~5 minutes)
#   scripts/bench.sh sessions        # issue 16's scale run: 10,000 sessions, storm, watches
#                                    # (= --session-scale 10000 --port-base 29500; ~6 min)
#   scripts/bench.sh tls             # issue 15's TLS run: the write and read workloads over
#                                    # plaintext, then over TLS (secureClientPort), both systems
#                                    # each time, ZooKeeper on netty in both halves (TLS needs it;
#                                    # BENCH_TLS_ZK_NIO=1 keeps its NIO default for plaintext),
#                                    # 3 rounds alternating (~20 min); extra flags go to both
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
if [ "${1:-}" = tls ]; then
  shift
  # the stores kazoo's suite uses (JKS for both servers, PEM for the client), made here
  tls_dir=$(mktemp -d "${TMPDIR:-/tmp}/ensemble-bench-tls.XXXXXX")
  trap 'rm -rf "$tls_dir"' EXIT
  source interop/harness/tls.sh
  tls_make_stores "$tls_dir" || { echo "bench.sh: cannot make the TLS stores (openssl, keytool)" >&2; exit 1; }
  # tls.sh signs the client an X.509 v1 certificate (Java takes it; webpki does not): a v3 one
  printf 'basicConstraints=CA:FALSE\n' > "$tls_dir/client.ext"
  openssl x509 -req -in "$tls_dir/client.csr" -CA "$tls_dir/ca_cert.pem" -CAkey "$tls_dir/ca_key.pem" \
    -set_serial 4 -days 2 -extfile "$tls_dir/client.ext" -out "$tls_dir/client_cert.pem" 2>/dev/null \
    || { echo "bench.sh: cannot sign the client certificate" >&2; exit 1; }
  mkdir -p target; out="target/bench-tls-$(date +%Y%m%d-%H%M%S).txt"
  common=(--scale 0 --workloads write,read --jvm-warmup 20 --warmup 2 --duration 8 --rounds 3)
  # one variable between the halves: TLS (ZooKeeper serves TLS only on netty, so its plaintext
  # half runs on netty too unless asked otherwise)
  plain=()
  [ "${BENCH_TLS_ZK_NIO:-}" = 1 ] || plain=(--zk-netty)
  if [ "${BENCH_TLS_ONLY:-}" != 1 ]; then
  { echo "### plaintext"; target/release/ensemble-bench "${common[@]}" "${plain[@]}" "$@"; } 2>&1 | tee "$out"
  [ "${PIPESTATUS[0]}" = 0 ] || exit 1
  fi
  { echo "### TLS"; target/release/ensemble-bench "${common[@]}" --tls "$tls_dir" "$@"; } 2>&1 | tee -a "$out"
  [ "${PIPESTATUS[0]}" = 0 ] || exit 1
  echo "### summary (Ensemble/ZooKeeper throughput ratios; issue 15 wants TLS no worse than plaintext)"
  grep -E '^(### |workload  |[a-z].*  ops/s  )' "$out" || true
  echo "written to $out"
  exit 0
fi
mkdir -p target; out="target/bench-$(date +%Y%m%d-%H%M%S).txt"
target/release/ensemble-bench "$@" 2>&1 | tee "$out"
exit "${PIPESTATUS[0]}"
