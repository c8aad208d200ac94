#!/usr/bin/env bash
# The interop suite: real ZooKeeper clients that nobody here wrote (kazoo, zkCli.sh, the Java
# client, the Rust zookeeper-client crate, plus raw wire checks) against a seed-shaped cluster of
# 3 voters + 1 observer on loopback, run by Ensemble or, to check the suite itself, by Apache
# ZooKeeper 3.8.
#
#   scripts/interop.sh [--target ensemble|zookeeper] [--no-compare] [--kazoo-suite|--kazoo-suite-only]
#                      [-k PYTEST_EXPR] [--keep]
#
#   --target       which implementation runs the cluster (default: ensemble)
#   --no-compare   skip the failover run against the other implementation (by default, with
#                  --target ensemble and Apache ZooKeeper installed, the failover run is repeated
#                  on ZooKeeper on the same machine and both sets of figures are printed)
#   --kazoo-suite  also run kazoo's own test suite (kazoo.tests, ~500 tests) against the target
#   --kazoo-suite-only  only that
#   -k EXPR        only the suite's tests matching EXPR (pytest -k)
#   --keep         keep the work directory (configs, dataDirs, logs) after the run
#
# Ports: INTEROP_PORT_BASE (default 2181, the seed's own ports, when CI=true; else 22181, or the
# next free base when a port of the default is taken): server i gets client port BASE+i-1,
# quorum port BASE+706+i-1, election port BASE+1706+i-1.
# Exits non-zero on any failure; the last line is "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

TARGET=ensemble
COMPARE=auto
KAZOO=0
KAZOO_ONLY=0
KEEP=0
KEXPR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target) TARGET="$2"; shift 2 ;;
    --target=*) TARGET="${1#*=}"; shift ;;
    --compare) COMPARE=1; shift ;;
    --no-compare) COMPARE=0; shift ;;
    --kazoo-suite) KAZOO=1; shift ;;
    --kazoo-suite-only) KAZOO=1; KAZOO_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    -k) KEXPR="$2"; shift 2 ;;
    -h|--help) sed -n 2,24p "$0"; exit 0 ;;
    *) echo "interop.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$TARGET" in zookeeper|ensemble) ;; *) echo "interop.sh: --target zookeeper|ensemble" >&2; exit 2 ;; esac
OTHER=$([ "$TARGET" = ensemble ] && echo zookeeper || echo ensemble)

say() { printf '== %s\n' "$*"; }
PASSED=0
FAILED=0
SKIPPED=0

# ---- prerequisites ---------------------------------------------------------------------------
missing=()
python3 -c 'import kazoo, pytest, pytest_timeout' 2>/dev/null || missing+=("python: kazoo pytest pytest-timeout")
[ -x /usr/share/zookeeper/bin/zkCli.sh ] || missing+=("zookeeper (Debian package: zkCli.sh, Java client, server)")
command -v java >/dev/null && command -v javac >/dev/null || missing+=("java/javac")
if [ ${#missing[@]} -gt 0 ]; then
  echo "interop.sh: missing: ${missing[*]}; run scripts/install-test-deps.sh" >&2
  if [ "$TARGET" = zookeeper ] || ! python3 -c 'import kazoo, pytest' 2>/dev/null; then
    echo "0 passed, 1 failed"
    exit 1
  fi
fi
HAVE_ZK=0
[ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null && HAVE_ZK=1
if [ "$COMPARE" = auto ]; then
  COMPARE=0
  [ "$TARGET" = ensemble ] && [ "$HAVE_ZK" = 1 ] && [ "$KAZOO_ONLY" = 0 ] && COMPARE=1
fi

# ---- ports ---------------------------------------------------------------------------------
# A base whose 12 ports (client, quorum, election of 4 servers) are all free on loopback: the
# one asked for, or else the first free of the default and a few others, so a run never lands
# on a port something else holds (another cluster, a developer's ZooKeeper).
ports_free() {
  python3 - "$1" <<'EOF'
import socket, sys
b = int(sys.argv[1])
for p in [b + o + i for o in (0, 706, 1706) for i in range(4)]:
    s = socket.socket()
    # as the servers bind: a port left in TIME_WAIT by an earlier run is free to them
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
EOF
}
if [ -n "${INTEROP_PORT_BASE:-}" ]; then
  if ! ports_free "$INTEROP_PORT_BASE"; then
    echo "interop.sh: a port of base $INTEROP_PORT_BASE is in use (client ports $INTEROP_PORT_BASE.., quorum +706, election +1706)"
    echo "0 passed, 1 failed"
    exit 1
  fi
else
  default=$([ "${CI:-}" = true ] && echo 2181 || echo 22181)
  # all below Linux's ephemeral range (32768-60999), which outgoing connections take from
  for b in "$default" 22181 24181 26181 28181 30181; do
    if ports_free "$b"; then INTEROP_PORT_BASE=$b; break; fi
  done
  if [ -z "${INTEROP_PORT_BASE:-}" ]; then
    echo "interop.sh: no free port base found"; echo "0 passed, 1 failed"; exit 1
  fi
fi
export INTEROP_PORT_BASE

WORK=$(mktemp -d "${TMPDIR:-/tmp}/interop.XXXXXX")
REPORTS="$WORK/reports"
mkdir -p "$REPORTS"
export INTEROP_REPORT_DIR="$REPORTS"

stop_all() {
  for t in ensemble zookeeper; do
    for d in "$WORK"/cluster-*; do
      [ -d "$d/conf" ] && python3 interop/harness/ctl.py --target "$t" --workdir "$d" stop >/dev/null 2>&1
    done
  done
}
cleanup() {
  stop_all
  [ -f "$WORK/krb5/kdc.pid" ] && bash interop/harness/kdc.sh stop "$WORK/krb5"
  if [ "$KEEP" = 1 ]; then echo "interop.sh: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- builds -------------------------------------------------------------------------------------
if [ "$TARGET" = ensemble ] || [ "$COMPARE" = 1 ]; then
  if [ -z "${ENSEMBLE_BIN:-}" ]; then
    say "building ensemble (cargo build --release -p ensemble-node)"
    if ! cargo build --release -q -p ensemble-node; then
      echo "interop.sh: the ensemble build failed"; echo "0 passed, 1 failed"; exit 1
    fi
    ENSEMBLE_BIN="$REPO/target/release/ensemble"
  fi
  export ENSEMBLE_BIN
fi
if [ "$KAZOO_ONLY" = 0 ] && command -v cargo >/dev/null; then
  say "building the Rust zookeeper-client interop tests"
  if ! cargo test --release -q -p ensemble-node --test interop_zookeeper_client --no-run 2>"$WORK/rust-build.log"; then
    tail -20 "$WORK/rust-build.log"
    echo "interop.sh: building node/tests/interop_zookeeper_client.rs failed; its tests will fail"
  fi
fi

# ---- a pytest run: counts go into the totals ---------------------------------------------------
run_pytest() { # target tag extra-args...
  local target=$1 tag=$2; shift 2
  local xml="$REPORTS/$tag.xml"
  INTEROP_TARGET=$target INTEROP_WORKDIR="$WORK/cluster-$tag" \
    timeout 1500 python3 -m pytest -p no:cacheprovider --timeout 300 -q -rfE \
    --junitxml="$xml" "$@"
  local rc=$?
  if [ -f "$xml" ]; then
    read -r p f s < <(python3 - "$xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else list(r)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
s = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - s, f, s)
EOF
)
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f)); SKIPPED=$((SKIPPED + s))
    # pytest's 5 is "no tests collected": what -k leaves of a suite it does not select from
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && ! { [ "$rc" -eq 5 ] && [ -n "$KEXPR" ]; }; then
      FAILED=$((FAILED + 1))
    fi
  else
    FAILED=$((FAILED + 1))
  fi
  return $rc
}

START=$(date +%s)
if [ "$KAZOO_ONLY" = 0 ]; then
  say "suite against $TARGET (3 voters + 1 observer, client ports from ${INTEROP_PORT_BASE:-default})"
  if [ -n "$KEXPR" ]; then run_pytest "$TARGET" "$TARGET" -k "$KEXPR" interop/tests; else run_pytest "$TARGET" "$TARGET" interop/tests; fi
  stop_all
  # Migration from Apache ZooKeeper and back (interop/migrate): real ZooKeeper servers on their
  # own free ports, imported into Ensemble servers, exported back.
  if [ "$TARGET" = ensemble ] && { [ -z "$KEXPR" ] || [[ "$KEXPR" == *migrat* ]]; }; then
    say "migration: ZooKeeper 3.8 files imported into Ensemble, exported back"
    run_pytest ensemble migrate interop/migrate/test_migrate.py
    say "live: an Ensemble observer (zk-observe) inside a running ZooKeeper 3.8 ensemble, its leader killed"
    run_pytest ensemble migrate-live interop/migrate/test_live.py
    say "live: an Ensemble observer serving its clients through its core (zk-observe), the leader killed"
    run_pytest ensemble migrate-core interop/migrate/test_live_core.py
    say "live: an Ensemble observer following a reconfig of the ZooKeeper ensemble (reconfig -remove)"
    run_pytest ensemble migrate-reconfig interop/migrate/test_live_reconfig.py
  fi
  # A rolling upgrade: three servers of the previous peer-protocol version (the node binary of
  # 568fa27^, built from this clone's history and cached by scripts/old-node.sh) replaced one at
  # a time by this build under writes. The cold build of the old binary happens here, outside
  # pytest's per-test timeout: 349 s of CPU (measured at 07:00 on this 2-core machine under a
  # load of 14-19, where it took 24 min of wall time; idle, some 3-6 min, unmeasured); the two
  # tests then take about a minute.
  if [ "$TARGET" = ensemble ] && { [ -z "$KEXPR" ] || [[ "$KEXPR" == *upgrade* ]]; }; then
    say "rolling upgrade: the previous release's node binary (scripts/old-node.sh)"
    scripts/old-node.sh >/dev/null || echo "interop.sh: scripts/old-node.sh failed (rc=$?): the upgrade test will say why"
    say "rolling upgrade: 3 servers of peer protocol 4 replaced one at a time under writes"
    run_pytest ensemble upgrade interop/upgrade/test_rolling_upgrade.py
  fi
  if [ "$COMPARE" = 1 ] && { [ -z "$KEXPR" ] || [[ "$KEXPR" == *failover* ]]; }; then
    say "failover run against $OTHER, for comparison"
    run_pytest "$OTHER" "$OTHER-failover" interop/tests/test_failover.py
    stop_all
  fi
fi

# ---- kazoo's own suite --------------------------------------------------------------------------
if [ "$KAZOO" = 1 ]; then
  say "kazoo's own test suite against $TARGET"
  KW="$WORK/cluster-kazoo"
  # kazoo's test_utils.py (test_slow_connect) expects nothing to answer on 127.0.0.1:2181, so
  # its suite gets a cluster on another base even when CI runs the rest on the seed's ports.
  KAZOO_BASE=$INTEROP_PORT_BASE
  if [ "$KAZOO_BASE" -le 2181 ] && [ "$((KAZOO_BASE + 3))" -ge 2181 ]; then
    KAZOO_BASE=
    for b in 22181 24181 26181 28181 30181; do
      if ports_free "$b"; then KAZOO_BASE=$b; break; fi
    done
  fi
  # the configuration kazoo's harness gives ZooKeeper: TLS (secureClientPort, JKS stores:
  # interop/harness/tls.sh) and client SASL (interop/harness/sasl.sh)
  source interop/harness/tls.sh
  . interop/harness/sasl.sh
  # Kerberos: a real MIT KDC on loopback (interop/harness/kdc.sh) for kazoo's GSSAPI tests, which
  # run when KRB5_TEST_ENV names its directory (client.keytab, server.keytab) and the `kerberos`
  # package is there; kinit's ticket goes to a cache of this run, never the user's.
  KRB5_DIR=""
  if [ "$TARGET" = ensemble ]; then
    if bash interop/harness/kdc.sh start "$WORK/krb5"; then
      KRB5_DIR="$WORK/krb5"
      export KRB5_TEST_ENV="$KRB5_DIR" KRB5_CONFIG="$KRB5_DIR/krb5.conf" KRB5CCNAME="FILE:$KRB5_DIR/ccache"
    else
      echo "interop.sh: no KDC (install krb5-kdc krb5-admin-server krb5-user): kazoo's GSSAPI tests will be missing"
    fi
  fi
  . interop/harness/readonly.sh
  . interop/harness/reconfig.sh
  if [ -n "$KAZOO_BASE" ] \
    && INTEROP_PORT_BASE=$KAZOO_BASE python3 interop/harness/ctl.py --target "$TARGET" --workdir "$KW" configs \
    && tls_configure "$KW" "$KAZOO_BASE" \
    && sasl_configure_cluster "$KW" "$KRB5_DIR" \
    && readonly_configure_cluster "$KW" \
    && reconfig_configure_cluster "$KW" \
    && INTEROP_PORT_BASE=$KAZOO_BASE python3 interop/harness/ctl.py --target "$TARGET" --workdir "$KW" start; then
    export INTEROP_PORT_BASE=$KAZOO_BASE
    HOSTS=$(python3 interop/harness/ctl.py --target "$TARGET" --workdir "$KW" hosts | cut -d, -f1-3)
    CONFIGS="$KW/conf/zoo1.cfg,$KW/conf/zoo2.cfg,$KW/conf/zoo3.cfg"
    CTL="python3 $REPO/interop/harness/ctl.py --target $TARGET"
    ks_start=$(date +%s)
    export KAZOO_EXT_SECURE_HOSTS KAZOO_EXT_SSL_DIR="$KW/tls"
    KAZOO_EXT_SECURE_HOSTS=$(tls_secure_hosts "$KAZOO_BASE")
    KAZOO_EXT_HOSTS="$HOSTS" KAZOO_EXT_CONFIGS="$CONFIGS" \
      KAZOO_EXT_START="$CTL start-one {cfg}" KAZOO_EXT_STOP="$CTL stop-one {cfg}" \
      PYTHONPATH="$REPO/interop/kazoo_ext" \
      timeout 3000 python3 -m pytest -p kazoo_ext -p no:cacheprovider --pyargs kazoo.tests --timeout 90 -q \
      ${KEXPR:+-k "$KEXPR"} -rfE --junitxml="$REPORTS/kazoo.xml" > "$WORK/kazoo-suite.log" 2>&1
    ks_end=$(date +%s)
    grep -E '^(FAILED|ERROR) ' "$WORK/kazoo-suite.log" | sed 's/ - .*//' | sort -u > "$REPORTS/kazoo-failed.txt"
    tail -1 "$WORK/kazoo-suite.log"
    KAZOO_EXT_HOSTS="$HOSTS" KAZOO_EXT_CONFIGS="$CONFIGS" \
      KAZOO_EXT_START="$CTL start-one {cfg}" KAZOO_EXT_STOP="$CTL stop-one {cfg}" \
      PYTHONPATH="$REPO/interop/kazoo_ext" \
      python3 interop/harness/kazoo_verdict.py "$REPORTS/kazoo.xml" "$REPORTS/kazoo-failed.txt" "$((ks_end - ks_start))"
    if [ $? -eq 0 ]; then
      PASSED=$((PASSED + 1))
    else
      FAILED=$((FAILED + 1))
      sed -n '/= FAILURES =/,/short test summary/p' "$WORK/kazoo-suite.log" | tail -120
    fi
  else
    echo "interop.sh: could not start the $TARGET cluster for the kazoo suite"
    FAILED=$((FAILED + 1))
  fi
  python3 interop/harness/ctl.py --target "$TARGET" --workdir "$KW" stop >/dev/null 2>&1
  [ -n "$KRB5_DIR" ] && bash interop/harness/kdc.sh stop "$KRB5_DIR"
  unset KRB5_TEST_ENV KRB5_CONFIG KRB5CCNAME
fi

# ---- figures ------------------------------------------------------------------------------------
if ls "$REPORTS"/failover-*.json >/dev/null 2>&1; then
  say "failover figures (same machine)"
  python3 interop/harness/failover_table.py "$REPORTS"/failover-*.json
fi
END=$(date +%s)
echo "interop: target $TARGET, $((END - START)) s, $SKIPPED skipped"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
