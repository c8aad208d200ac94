#!/usr/bin/env bash
# Installs what the interop tests need on a fresh Debian machine: Apache ZooKeeper 3.8 (its
# zkCli.sh, Java client and server, to compare against), a JDK for the Java client test,
# Prometheus and curl for the metrics and AdminServer tests, kazoo with pytest, and Chromium
# (headless) for the simulator's run explorer test.
#
# The Debian packages need root (apt-get): run it as root, or with sudo available (it is then
# used for apt-get only). What is installed already is skipped, so a machine that has everything
# needs no root at all.
set -euo pipefail
pkgs=()
[ -x /usr/share/zookeeper/bin/zkCli.sh ] || pkgs+=(zookeeper)
# javac compiles the interop suite's Java client (the machine image usually has a JDK already)
command -v javac >/dev/null || pkgs+=(default-jdk-headless)
# Apache Curator (its EnsembleTracker follows reconfigs: interop/tests/test_reconfig.py)
[ -f /usr/share/java/curator-framework.jar ] || pkgs+=(libcurator-framework-java)
[ -f /usr/share/java/curator-client.jar ] || pkgs+=(libcurator-client-java)
# a real Prometheus scrapes a cluster's /metrics (node/tests/metrics.rs); curl asks the
# AdminServer (node/tests/admin.rs)
command -v prometheus >/dev/null || pkgs+=(prometheus)
command -v curl >/dev/null || pkgs+=(curl)
# openssl (and the JDK's keytool) make the TLS tests' certificates and PKCS12 / JKS stores
command -v openssl >/dev/null || pkgs+=(openssl)
# headless Chromium renders the simulator's run explorer page (sim/tests/explorer.rs)
command -v chromium >/dev/null || pkgs+=(chromium)
# Kerberos: a real MIT KDC for the GSSAPI tests (interop/harness/kdc.sh: krb5kdc, kdb5_util,
# kadmin.local, kinit); the node links the system GSS-API library through the libgssapi crate,
# whose build needs its headers (libkrb5-dev), pkg-config and libclang (bindgen); the
# `kerberos` pip package (kazoo's GSSAPI tests) builds against libkrb5-dev too
[ -x /usr/sbin/krb5kdc ] || pkgs+=(krb5-kdc)
[ -x /usr/sbin/kadmin.local ] || pkgs+=(krb5-admin-server)
command -v kinit >/dev/null || pkgs+=(krb5-user)
command -v krb5-config >/dev/null || pkgs+=(libkrb5-dev)
command -v pkg-config >/dev/null || pkgs+=(pkg-config)
ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang*.so* 2>/dev/null | grep -q 'libclang[-.0-9]*\.so' || pkgs+=(libclang-dev)
if [ ${#pkgs[@]} -gt 0 ]; then
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      as_root=(sudo -n)
    else
      echo "install-test-deps.sh: installing ${pkgs[*]} needs root (apt-get); run it as root" \
        "or with passwordless sudo, or install them yourself: apt-get install ${pkgs[*]}" >&2
      exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    echo "install-test-deps.sh: no apt-get here (not Debian/Ubuntu); install ${pkgs[*]} by hand" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
# pure-sasl: kazoo's SASL tests run only with it, so every machine runs them (and they must
# pass: the kazoo suite's cluster has its harness's SASL configuration, interop/harness/sasl.sh)
# kerberos: pure-sasl's GSSAPI mechanism, which kazoo's GSSAPI tests use (they run too)
if ! python3 -c 'import kazoo, pytest, pytest_timeout, puresasl, kerberos' 2>/dev/null; then
  if ! python3 -m pip install -q --disable-pip-version-check kazoo pytest pytest-timeout pyopenssl pyjks objgraph pure-sasl kerberos; then
    echo "install-test-deps.sh: pip could not install kazoo and pytest (see above); a Python that" \
      "refuses system-wide installs needs a virtualenv or python3 -m pip install --user ..." >&2
    exit 1
  fi
fi
