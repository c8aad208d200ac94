# Client SASL for a harness cluster, as kazoo's own harness configures ZooKeeper
# (kazoo/testing/common.py, ZOOKEEPER_JAAS_AUTH=digest): the SASL authentication provider in
# every zoo.cfg, and a JAAS file whose Server section has DigestLoginModule's users
# super/super_secret and jaasuser/jaas_password, given to the server as
# -Djava.security.auth.login.config (conf/java.env for Ensemble, which reads it next to zoo.cfg
# as zkEnv.sh does; INTEROP_ZK_JVMFLAGS for the ZooKeeper target's JVM).
#
# With KRB5_DIR (a KDC's directory from interop/harness/kdc.sh, kazoo's KRB5_TEST_ENV) the
# Server section also has kazoo's gssapi entry (Krb5LoginModule, zookeeper/127.0.0.1's keytab)
# and -Djava.security.krb5.conf names the KDC's krb5.conf: Ensemble serves both mechanisms from
# one section, so the one cluster runs kazoo's digest and GSSAPI tests alike. (ZooKeeper serves
# GSSAPI alone from such a section: its target gets the digest section only.)
#
# Sourced by scripts/interop.sh:  sasl_configure_cluster WORKDIR [KRB5_DIR]
# (after `ctl.py configs` wrote WORKDIR/conf/zoo*.cfg, before the servers start).

sasl_configure_cluster() {
  local dir="$1/conf" krb5="${2:-}"
  local jaas="$dir/jaas.conf"
  {
    echo 'Server {'
    if [ -n "$krb5" ]; then
      cat <<KRB5
  com.sun.security.auth.module.Krb5LoginModule required
  debug=true
  isInitiator=false
  useKeyTab=true
  keyTab="$krb5/server.keytab"
  storeKey=true
  useTicketCache=false
  principal="zookeeper/127.0.0.1@KAZOOTEST.ORG";
KRB5
    fi
    cat <<'JAAS'
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
JAAS
  } > "$jaas"
  local krb5_flag=""
  [ -n "$krb5" ] && krb5_flag=" -Djava.security.krb5.conf=$krb5/krb5.conf"
  local cfg
  for cfg in "$dir"/zoo*.cfg; do
    echo "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider" >> "$cfg"
  done
  printf 'SERVER_JVMFLAGS="$SERVER_JVMFLAGS -Djava.security.auth.login.config=%s%s"\n' "$jaas" "$krb5_flag" >> "$dir/java.env"
  export INTEROP_ZK_JVMFLAGS="${INTEROP_ZK_JVMFLAGS:-} -Djava.security.auth.login.config=$jaas"
}
