# Read-only mode for a harness cluster, as kazoo's harness configures ZooKeeper >= 3.5
# (kazoo/testing/common.py): -Dreadonlymode.enabled=true in SERVER_JVMFLAGS (conf/java.env for
# Ensemble, INTEROP_ZK_JVMFLAGS for the ZooKeeper target).
#
# Local sessions stay off, as kazoo's harness leaves them for every test but TestReadOnlyMode
# (kazoo/testing/harness.py: localSessionsEnabled=$ZOOKEEPER_LOCAL_SESSION_RO, "false" unless
# that test's setUp sets it, which gives it a cluster of its own; this harness has one cluster).
# With them on for the whole suite, Apache ZooKeeper 3.8 itself fails
# KazooTreeCacheTests::test_session_reconnected and
# TestClient::test_request_queuing_session_recovered: a local session is not valid on the other
# server the client reconnects to (LeaderZooKeeperServer.checkIfValidGlobalSession). Ensemble
# fails the same two then.
#
# Sourced by scripts/interop.sh:  readonly_configure_cluster WORKDIR
# (after `ctl.py configs` wrote WORKDIR/conf/zoo*.cfg, before the servers start).

readonly_configure_cluster() {
  local dir="$1/conf"
  printf 'SERVER_JVMFLAGS="$SERVER_JVMFLAGS -Dreadonlymode.enabled=true"\n' >> "$dir/java.env"
  export INTEROP_ZK_JVMFLAGS="${INTEROP_ZK_JVMFLAGS:-} -Dreadonlymode.enabled=true"
}
