# Client SASL for a harness cluster, as kazoo's own harness configures ZooKeeper
# (kazoo/testing/common.py, ZOOKEEPER_JAAS_AUTH=digest): the SASL authentication provider in
# every zoo.cfg, and a JAAS file whose Server section has DigestLoginModule's users
# super/super_secret and jaasuser/jaas_password, given to the server as
# -Djava.security.auth.login.config (conf/java.env for Ensemble, which reads it next to zoo.cfg
# as zkEnv.sh does; INTEROP_ZK_JVMFLAGS for the ZooKeeper target's JVM).
#
# Sourced by scripts/interop.sh:  sasl_configure_cluster WORKDIR
# (after `ctl.py configs` wrote WORKDIR/conf/zoo*.cfg, before the servers start).

sasl_configure_cluster() {
  local dir="$1/conf"
  local jaas="$dir/jaas.conf"
  cat > "$jaas" <<'JAAS'
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
JAAS
  local cfg
  for cfg in "$dir"/zoo*.cfg; do
    echo "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider" >> "$cfg"
  done
  printf 'SERVER_JVMFLAGS="$SERVER_JVMFLAGS -Djava.security.auth.login.config=%s"\n' "$jaas" >> "$dir/java.env"
  export INTEROP_ZK_JVMFLAGS="${INTEROP_ZK_JVMFLAGS:-} -Djava.security.auth.login.config=$jaas"
}
