# TLS for the interop clusters, as kazoo's own harness (kazoo/testing/common.py) configures
# ZooKeeper: a CA, a server certificate in a JKS key store and the CA in a JKS trust store
# (password "apassword"), `secureClientPort` with `ssl.keyStore.*` / `ssl.trustStore.*` and
# Netty's server factory; a client certificate for kazoo's TestSSLClient as client_key.pem,
# client_cert.pem and ca_cert.pem (KAZOO_EXT_SSL_DIR). Like kazoo's harness, the client
# certificate is an X.509 v1 certificate (no extensions), which Java accepts.
#
# Sourced by scripts/interop.sh. Needs openssl and the JDK's keytool.
#
#   tls_make_stores DIR            certificates and stores into DIR
#   tls_configure CLUSTER_DIR BASE append the TLS settings to CLUSTER_DIR/conf/zoo{1..4}.cfg;
#                                  server i's secureClientPort is BASE+500+i-1
#   tls_secure_hosts BASE          127.0.0.1:<secureClientPort> of the three voters

TLS_PASSWORD=apassword

tls_make_stores() {
  local d=$1
  mkdir -p "$d"
  (
    cd "$d" || exit 1
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca_key.pem -out ca_cert.pem -days 2 \
      -subj "/CN=ca.kazoo.org" -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || exit 1
    openssl req -newkey rsa:2048 -nodes -keyout server_key.pem -out server.csr \
      -subj "/CN=localhost" 2>/dev/null || exit 1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > server.ext
    openssl x509 -req -in server.csr -CA ca_cert.pem -CAkey ca_key.pem -set_serial 2 -days 2 \
      -extfile server.ext -out server_cert.pem 2>/dev/null || exit 1
    openssl req -newkey rsa:2048 -nodes -keyout client_key.pem -out client.csr \
      -subj "/CN=client" 2>/dev/null || exit 1
    # -x509v1 where this openssl has it (3.x adds key identifiers, making v3, unless told)
    local v1=""
    openssl x509 -help 2>&1 | grep -q -- '-x509v1' && v1="-x509v1"
    openssl x509 -req $v1 -in client.csr -CA ca_cert.pem -CAkey ca_key.pem -set_serial 3 \
      -days 2 -out client_cert.pem 2>/dev/null || exit 1
    openssl pkcs12 -export -name "server cert" -in server_cert.pem -inkey server_key.pem \
      -certfile ca_cert.pem -out server.p12 -passout "pass:$TLS_PASSWORD" || exit 1
    rm -f keystore.jks truststore.jks
    keytool -importkeystore -noprompt -srckeystore server.p12 -srcstoretype PKCS12 \
      -srcstorepass "$TLS_PASSWORD" -destkeystore keystore.jks -deststoretype JKS \
      -deststorepass "$TLS_PASSWORD" -destkeypass "$TLS_PASSWORD" >/dev/null 2>&1 || exit 1
    keytool -importcert -noprompt -alias "kazoo ca" -file ca_cert.pem -keystore truststore.jks \
      -storetype JKS -storepass "$TLS_PASSWORD" >/dev/null 2>&1 || exit 1
  )
}

tls_configure() {
  local cluster=$1 base=$2 i
  tls_make_stores "$cluster/tls" || { echo "tls.sh: cannot make the TLS stores" >&2; return 1; }
  for i in 1 2 3 4; do
    cat >> "$cluster/conf/zoo$i.cfg" <<EOF
secureClientPort=$((base + 500 + i - 1))
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.keyStore.location=$cluster/tls/keystore.jks
ssl.keyStore.password=$TLS_PASSWORD
ssl.trustStore.location=$cluster/tls/truststore.jks
ssl.trustStore.password=$TLS_PASSWORD
EOF
  done
}

tls_secure_hosts() {
  local base=$1
  echo "127.0.0.1:$((base + 500)),127.0.0.1:$((base + 501)),127.0.0.1:$((base + 502))"
}
