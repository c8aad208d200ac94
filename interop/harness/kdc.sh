#!/usr/bin/env bash
# A real MIT Kerberos KDC on loopback for the Kerberos (GSSAPI) tests: realm KAZOOTEST.ORG, as
# kazoo's test_sasl.py expects, in a directory of its own (database, stash, kdc.conf, krb5.conf,
# keytabs, log), listening on a free TCP/UDP port of 127.0.0.1. Needs Debian's krb5-kdc and
# krb5-admin-server (krb5kdc, kdb5_util, kadmin.local) and krb5-user (kinit).
#
#   kdc.sh start DIR [PRINCIPAL[=KEYTAB]]...
#       makes DIR/krb5.conf and the principals zookeeper/127.0.0.1 (in DIR/server.keytab) and
#       client (in DIR/client.keytab), plus each PRINCIPAL given (in DIR/KEYTAB, default
#       DIR/<principal with / and @ as _>.keytab), then starts krb5kdc. DIR is then what
#       kazoo's KRB5_TEST_ENV names; KRB5_CONFIG=DIR/krb5.conf points clients at the KDC.
#   kdc.sh stop DIR
#       stops that KDC (by its pid file).
set -euo pipefail
REALM=KAZOOTEST.ORG

die() { echo "kdc.sh: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket
for _ in range(50):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(p); break'
}

find_tool() {
  local t=$1
  command -v "$t" 2>/dev/null && return
  for d in /usr/sbin /sbin /usr/local/sbin; do
    [ -x "$d/$t" ] && { echo "$d/$t"; return; }
  done
  die "$t not found (apt-get install krb5-kdc krb5-admin-server krb5-user)"
}

# write_conf DIR PORT: the KDC's and the clients' profiles for a KDC on 127.0.0.1:PORT (loopback
# only: a wildcard bind would meet the TIME-WAITs of loopback connections of earlier tests)
write_conf() {
  local dir=$1 port=$2
  cat > "$dir/kdc.conf" <<EOF
[kdcdefaults]
  kdc_listen = 127.0.0.1:$port
  kdc_tcp_listen = 127.0.0.1:$port
[realms]
  $REALM = {
    database_name = $dir/principal
    key_stash_file = $dir/stash
    acl_file = $dir/kadm5.acl
    max_life = 1d
    max_renewable_life = 2d
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }
[logging]
  kdc = FILE:$dir/kdc.log
EOF
  : > "$dir/kadm5.acl"
  # rdns/dns_canonicalize_hostname off: zookeeper/127.0.0.1 stays 127.0.0.1 on both sides
  cat > "$dir/krb5.conf" <<EOF
[libdefaults]
  default_realm = $REALM
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
  ticket_lifetime = 1d
[realms]
  $REALM = {
    kdc = 127.0.0.1:$port
  }
[domain_realm]
  127.0.0.1 = $REALM
  localhost = $REALM
EOF
}

start() {
  local dir=$1; shift
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local krb5kdc kdb5_util kadmin
  krb5kdc=$(find_tool krb5kdc); kdb5_util=$(find_tool kdb5_util); kadmin=$(find_tool kadmin.local)
  local port
  port=$(free_port)
  [ -n "$port" ] || die "no free port on 127.0.0.1"
  write_conf "$dir" "$port"
  export KRB5_CONFIG="$dir/krb5.conf" KRB5_KDC_PROFILE="$dir/kdc.conf"
  rm -f "$dir"/principal* "$dir/stash"
  "$kdb5_util" -r "$REALM" -P "kdc-master-$$" create -s >/dev/null 2>&1 \
    || die "kdb5_util could not create the database in $dir"
  add() { # principal keytab
    "$kadmin" -r "$REALM" -q "addprinc -randkey $1" >/dev/null 2>&1 || die "cannot add $1"
    "$kadmin" -r "$REALM" -q "ktadd -k $2 $1" >/dev/null 2>&1 || die "cannot export $1 to $2"
  }
  rm -f "$dir"/*.keytab
  add "zookeeper/127.0.0.1@$REALM" "$dir/server.keytab"
  add "client@$REALM" "$dir/client.keytab"
  local p spec kt
  for spec in "$@"; do
    p=${spec%%=*}
    if [ "$p" != "$spec" ]; then kt=$dir/${spec#*=}; else kt=$dir/$(echo "$p" | tr '/@' '__').keytab; fi
    case $p in *@*) ;; *) p="$p@$REALM" ;; esac
    add "$p" "$kt"
  done
  # a port taken between the pick and the KDC's bind (tests start KDCs side by side): another
  local attempt pid i
  for attempt in 1 2 3 4 5; do
    "$krb5kdc" -n -P "$dir/kdc.pid" >"$dir/kdc.out" 2>&1 &
    pid=$!
    echo "$pid" > "$dir/kdc.pid"
    for i in $(seq 1 100); do
      if KRB5CCNAME="FILE:$dir/probe.cc" kinit -kt "$dir/client.keytab" "client@$REALM" 2>/dev/null; then
        rm -f "$dir/probe.cc"
        echo "KDC for $REALM on 127.0.0.1:$port (pid $pid), KRB5_CONFIG=$dir/krb5.conf"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then break; fi
    if ! cat "$dir/kdc.out" "$dir/kdc.log" 2>/dev/null | grep -q 'Address already in use'; then
      die "krb5kdc exited: $(cat "$dir/kdc.out" "$dir/kdc.log" 2>/dev/null | tail -5)"
    fi
    port=$(free_port)
    [ -n "$port" ] || die "no free port on 127.0.0.1"
    : > "$dir/kdc.log"
    write_conf "$dir" "$port"
  done
  die "the KDC on 127.0.0.1:$port does not answer"
}

stop() {
  local dir=$1 pid
  [ -f "$dir/kdc.pid" ] || return 0
  pid=$(cat "$dir/kdc.pid")
  kill "$pid" 2>/dev/null || true
  rm -f "$dir/kdc.pid"
}

case "${1:-}" in
  start) [ $# -ge 2 ] || die "usage: kdc.sh start DIR [PRINCIPAL[=KEYTAB]]..."; shift; start "$@" ;;
  stop) [ $# -eq 2 ] || die "usage: kdc.sh stop DIR"; stop "$2" ;;
  *) die "usage: kdc.sh start DIR [PRINCIPAL[=KEYTAB]]... | kdc.sh stop DIR" ;;
esac
