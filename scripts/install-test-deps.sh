#!/usr/bin/env bash
# Installs what the interop tests need on a fresh Debian machine: Apache ZooKeeper 3.8 (its
# zkCli.sh, Java client and server, to compare against) and kazoo with pytest.
set -euo pipefail
if [ ! -x /usr/share/zookeeper/bin/zkCli.sh ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq zookeeper >/dev/null
fi
if ! python3 -c 'import kazoo, pytest, pytest_timeout' 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check kazoo pytest pytest-timeout pyopenssl pyjks objgraph
fi
