"""Ensemble's AdminServer and Prometheus endpoint on the interop cluster (ports derived from its
base, harness/cluster.py): every server answers `monitor` as ZooKeeper's AdminServer does, and
`/metrics` in the Prometheus text format with ZooKeeper's names. The ZooKeeper target runs
without them (its package has no Prometheus provider; its AdminServer is off), so these are
skipped there.
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from conftest import TARGET
from harness.cluster import ALL

pytestmark = pytest.mark.skipif(TARGET != "ensemble", reason="Ensemble's endpoints only")

# A few keys of ZooKeeper 3.8's monitor every server has (node/tests/admin.rs checks them all).
MONITOR_KEYS = ("version", "server_state", "znode_count", "watch_count", "packets_received",
                "avg_latency", "p99_readlatency", "cnt_fsynctime", "uptime")


def get(port: int, path: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.headers.get("Content-Type", ""), r.read()


@pytest.mark.parametrize("server", ALL)
def test_monitor_and_metrics(cluster, server):
    s = cluster.servers[server]
    ctype, body = get(s.admin_port, "/commands/monitor")
    assert ctype.startswith("application/json"), ctype
    m = json.loads(body)
    assert m["command"] == "monitor" and m["error"] is None, m
    for k in MONITOR_KEYS:
        assert k in m, f"server {server}: monitor lacks {k}"
    assert m["server_state"] in ("leader", "follower", "observer")
    ctype, body = get(s.metrics_port, "/metrics")
    assert ctype.startswith("text/plain"), ctype
    text = body.decode()
    assert "# TYPE znode_count gauge" in text
    assert re.search(r"^znode_count \d+", text, re.M), text[:2000]
    assert 'readlatency{quantile="0.5"}' in text
