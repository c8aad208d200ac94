"""Fixtures of the interop suite.

Environment:
  INTEROP_TARGET    zookeeper | ensemble (default zookeeper)
  INTEROP_WORKDIR   where configs, dataDirs and logs go (default: a fresh temp dir)
  INTEROP_PORT_BASE first client port (default 2181 when CI=true, else 22181)
  ENSEMBLE_BIN      the ensemble binary (target ensemble)
  INTEROP_EXTERNAL  1: the cluster in INTEROP_WORKDIR is already running; neither start nor stop it

One cluster (3 voters + 1 observer) serves the whole session; tests marked ``destructive`` (the
failover run) go last, and leave the cluster running again.
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from harness.cluster import ALL, OBSERVER, VOTERS, Cluster  # noqa: E402
from harness import zk  # noqa: E402

TARGET = os.environ.get("INTEROP_TARGET", "zookeeper")


def pytest_configure(config):
    config.addinivalue_line("markers", "destructive: kills and restarts servers; runs last")


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda it: 1 if it.get_closest_marker("destructive") else 0)


def pytest_report_header(config):
    return f"interop target: {TARGET}"


_CLUSTER: Cluster | None = None


def _cleanup():
    if _CLUSTER is not None and os.environ.get("INTEROP_EXTERNAL") != "1":
        _CLUSTER.stop_all()


atexit.register(_cleanup)


@pytest.fixture(scope="session")
def cluster():
    global _CLUSTER
    workdir = os.environ.get("INTEROP_WORKDIR") or tempfile.mkdtemp(prefix=f"interop-{TARGET}-")
    c = Cluster(TARGET, workdir)
    _CLUSTER = c
    if os.environ.get("INTEROP_EXTERNAL") == "1":
        c.wait_ready(ALL, 30)
        yield c
        return
    c.write_configs()
    try:
        c.start_all(ALL, timeout=120)
    except Exception:
        for i in ALL:
            sys.stderr.write(f"--- server {i} ---\n{c.log_tail(i)}\n")
        c.stop_all()
        raise
    yield c
    c.stop_all()


@pytest.fixture
def clients(cluster):
    """A factory of started kazoo clients; all are stopped after the test."""
    made = []

    def make(ids=ALL, **kw):
        hosts = cluster.hosts(ids if isinstance(ids, (list, tuple)) else (ids,))
        c = zk.client(hosts, **kw)
        made.append(c)
        c.sync("/")  # the server it landed on has caught up with everything acknowledged so far
        return c

    yield make
    for c in made:
        zk.close_quietly(c)


@pytest.fixture
def root(cluster, clients, request):
    """A fresh znode path for this test; deleted (recursively) afterwards."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
    path = f"/it-{name}-{uuid.uuid4().hex[:8]}"
    c = clients()
    c.create(path, b"")
    yield path
    try:
        if not c.connected:
            c = clients()
        for cred in zk.CLEANUP_AUTH:
            c.add_auth("digest", cred)
        zk.delete_tree(c, path)
    except Exception:  # noqa: BLE001 - best effort
        pass


__all__ = ["ALL", "OBSERVER", "VOTERS", "TARGET"]
