#!/usr/bin/env bash
# Installs what the interop tests need on a fresh Debian machine: Apache ZooKeeper 3.8 (its
# zkCli.sh, Java client and server, to compare against), a JDK for the Java client test, and
# kazoo with pytest.
set -euo pipefail
pkgs=()
[ -x /usr/share/zookeeper/bin/zkCli.sh ] || pkgs+=(zookeeper)
# javac compiles the interop suite's Java client (the machine image usually has a JDK already)
command -v javac >/dev/null || pkgs+=(default-jdk-headless)
if [ ${#pkgs[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
if ! python3 -c 'import kazoo, pytest, pytest_timeout' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check kazoo pytest pytest-timeout pyopenssl pyjks objgraph
fi
