# Dynamic reconfiguration for a harness cluster, as kazoo's harness configures ZooKeeper >= 3.5
# (kazoo/testing/harness.py and common.py): reconfigEnabled=true in zoo.cfg, and the super
# digest of "super:test" in SERVER_JVMFLAGS (conf/java.env for Ensemble, INTEROP_ZK_JVMFLAGS
# for the ZooKeeper target), which kazoo's TestReconfig authenticates as.
#
# Sourced by scripts/interop.sh:  reconfig_configure_cluster WORKDIR
# (after `ctl.py configs` wrote WORKDIR/conf/zoo*.cfg, before the servers start).

KAZOO_SUPER_DIGEST="super:D/InIHSb7yEEbrWz8b9l71RjZJU="

reconfig_configure_cluster() {
  local dir="$1/conf" cfg
  for cfg in "$dir"/zoo*.cfg; do
    printf 'reconfigEnabled=true\n' >> "$cfg"
  done
  printf 'SERVER_JVMFLAGS="$SERVER_JVMFLAGS -Dzookeeper.DigestAuthenticationProvider.superDigest=%s"\n' \
    "$KAZOO_SUPER_DIGEST" >> "$dir/java.env"
  export INTEROP_ZK_JVMFLAGS="${INTEROP_ZK_JVMFLAGS:-} -Dzookeeper.DigestAuthenticationProvider.superDigest=$KAZOO_SUPER_DIGEST"
}
