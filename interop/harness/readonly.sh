# Read-only mode and local sessions for a harness cluster, as kazoo's harness configures
# ZooKeeper >= 3.5 (kazoo/testing/common.py): localSessionsEnabled and
# localSessionsUpgradingEnabled in every zoo.cfg, and -Dreadonlymode.enabled=true in
# SERVER_JVMFLAGS (conf/java.env for Ensemble, INTEROP_ZK_JVMFLAGS for the ZooKeeper target).
#
# Sourced by scripts/interop.sh:  readonly_configure_cluster WORKDIR
# (after `ctl.py configs` wrote WORKDIR/conf/zoo*.cfg, before the servers start).

readonly_configure_cluster() {
  local dir="$1/conf"
  local cfg
  for cfg in "$dir"/zoo*.cfg; do
    printf 'localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\n' >> "$cfg"
  done
  printf 'SERVER_JVMFLAGS="$SERVER_JVMFLAGS -Dreadonlymode.enabled=true"\n' >> "$dir/java.env"
  export INTEROP_ZK_JVMFLAGS="${INTEROP_ZK_JVMFLAGS:-} -Dreadonlymode.enabled=true"
}
