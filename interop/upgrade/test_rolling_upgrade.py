"""A rolling upgrade from the previous peer-protocol version (FoundationDB's restarting tests).

Three voters start on the node binary of the last version 4 build (568fa27^, built from this
repository's history by scripts/old-node.sh, cached under target/old-node/), a kazoo client
writes without pause, and each server in turn is stopped and started again on the current
binary over the same data dirs (old files read by new code): the followers first, the leader
last. After each step the ensemble serves (every server has a Mode, the writer's count moves,
the new server answers a sync-then-read) and the new server's log names the version each link
speaks. At the end every acknowledged write is on every server, and the writes' czxids increase
in the order they were acknowledged, across the epochs the restarts began. A second test
removes a new leader by reconfig while an old server follows (no HANDOVER in version 4).

Run by scripts/interop.sh (ensemble target) after it built the old binary; alone:
    INTEROP_TARGET=ensemble ENSEMBLE_BIN=target/release/ensemble \\
      python3 -m pytest -q interop/upgrade/test_rolling_upgrade.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from kazoo.client import KazooClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

from harness.cluster import Cluster, default_base, fourlw  # noqa: E402
from harness.writes import AckedWriter, assert_acked_on, wait_for  # noqa: E402

VOTERS = (1, 2, 3)
# Beside the suite's own cluster (base) and the reconfig tests' (base + 6000).
BASE_OFFSET = 5000


def old_binary() -> str:
    """The previous version's node binary (built once, then cached), or a skip when the
    history it is built from is absent."""
    r = subprocess.run(
        [str(REPO / "scripts" / "old-node.sh")], capture_output=True, text=True, timeout=3600
    )
    if r.returncode == 3:
        pytest.skip(f"no previous release to upgrade from: {r.stderr.strip()}")
    assert r.returncode == 0, f"building the previous release failed:\n{r.stderr[-4000:]}"
    path = r.stdout.strip().splitlines()[-1]
    assert os.access(path, os.X_OK), path
    return path


def log_since(c: Cluster, i: int, offset: int) -> str:
    p = c.servers[i].data_dir / "zookeeper.out"
    with open(p, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def log_size(c: Cluster, i: int) -> int:
    p = c.servers[i].data_dir / "zookeeper.out"
    return p.stat().st_size if p.exists() else 0


def srvr_zxid(c: Cluster, i: int) -> int:
    m = re.search(r"^Zxid: 0x([0-9a-f]+)$", fourlw(c.servers[i].client_port, "srvr"), re.M)
    assert m, f"server {i}: no Zxid in srvr"
    return int(m.group(1), 16)


def read_back(c: Cluster, i: int, n: int) -> None:
    """Server i alone serves a sync-then-read of an acknowledged write."""
    zk = KazooClient(hosts=c.servers[i].host, timeout=10)
    zk.start(timeout=30)
    try:
        zk.sync("/up")
        data, _ = zk.get(f"/up/{n}")
        assert data == str(n).encode()
    finally:
        zk.stop()
        zk.close()


@pytest.fixture
def ucluster():
    new_bin = os.environ.get("ENSEMBLE_BIN") or str(REPO / "target" / "release" / "ensemble")
    old_bin = old_binary()
    workdir = tempfile.mkdtemp(prefix="interop-upgrade-")
    c = Cluster("ensemble", workdir, base=default_base() + BASE_OFFSET, ensemble_bin=old_bin)
    c.write_configs()
    for i in VOTERS:
        cfg = c.servers[i].cfg
        # three voters, no observer
        lines = [l for l in cfg.read_text().splitlines() if not l.startswith("server.4=")]
        cfg.write_text("\n".join(l for l in lines if l != "peerType=observer") + "\n")
    c.new_bin = new_bin  # type: ignore[attr-defined]
    c.old_bin = old_bin  # type: ignore[attr-defined]
    yield c
    for i in VOTERS:
        try:
            c.stop(i)
        except Exception:  # noqa: BLE001 - cleanup goes on
            c.kill9(i)
    if os.environ.get("INTEROP_KEEP") != "1":
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.timeout(1800)
def test_rolling_upgrade_from_version_4_loses_nothing(ucluster):
    c = ucluster
    bins = {i: c.old_bin for i in VOTERS}

    def on(i: int, b: str):
        c.ensemble_bin = b
        bins[i] = b

    for i in VOTERS:
        on(i, c.old_bin)
        c.start(i)
    c.wait_ready(VOTERS, 120)
    w = AckedWriter(c.hosts(VOTERS), "/up")
    w.start()
    try:
        wait_for("the writer's first 50 writes on the old ensemble", lambda: w.count() >= 50)
        zxid_before = max(srvr_zxid(c, i) for i in VOTERS)
        leader = c.leader(VOTERS)
        assert leader is not None
        order = [i for i in VOTERS if i != leader] + [leader]
        for step, i in enumerate(order, 1):
            c.ensemble_bin = bins[i]
            c.stop(i)
            offset = log_size(c, i)
            on(i, c.new_bin)
            c.start(i)
            modes = c.wait_ready(VOTERS, 120)
            olds = [j for j in VOTERS if bins[j] == c.old_bin]
            news = [j for j in VOTERS if bins[j] == c.new_bin]
            # What each of the new server's links speaks, in its own log: version 4 to every
            # server still on the old build, 5 to the upgraded ones.
            for j in VOTERS:
                if j == i:
                    continue
                v = 4 if j in olds else 5
                wait_for(
                    f"step {step}: server {i}'s log names protocol {v} towards server {j}",
                    lambda: re.search(
                        rf"link to server {j} speaks peer protocol {v}\b", log_since(c, i, offset)
                    ),
                )
            # serving: the writer moves on, the new server answers a sync-then-read
            mark = w.count()
            wait_for(f"step {step}: 30 more writes", lambda: w.count() >= mark + 30)
            last = w.last()
            read_back(c, i, last)
            print(f"step {step}: server {i} on the new build; modes {modes}; old {olds}, new {news}; "
                  f"{w.count()} writes acknowledged")
        mark = w.count()
        wait_for("30 writes on the upgraded ensemble", lambda: w.count() >= mark + 30)
    finally:
        w.stop()
    acked = w.acked
    assert len(acked) >= 200, len(acked)
    czxids: dict[int, int] = {}
    for i in VOTERS:
        for n, czxid in assert_acked_on(c.servers[i].host, str(i), "/up", acked).items():
            assert czxids.setdefault(n, czxid) == czxid, f"server {i}: /up/{n} czxid differs"
    # zxids continued: one client's writes, acknowledged in order, have increasing zxids,
    # and the epochs the restarts began come after the old ones
    seq = [czxids[n] for n in acked]
    assert all(a < b for a, b in zip(seq, seq[1:])), "czxids out of order"
    assert seq[-1] > zxid_before
    assert (seq[-1] >> 32) > (zxid_before >> 32), "no new epoch after the restarts"
    for i in VOTERS:
        assert srvr_zxid(c, i) >= seq[-1]
    print(f"{len(acked)} acknowledged writes on every server; zxid 0x{zxid_before:x} before, "
          f"0x{seq[-1]:x} after")


SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # of super:test, as test_reconfig.py


@pytest.mark.timeout(900)
def test_a_new_leader_removed_by_reconfig_with_an_old_follower(ucluster):
    """Mixed: servers 1 and 2 on this build (one of them leads), 3 on the old one; `reconfig
    -remove` of the leader. The new leader's HANDOVER cannot be said to the old follower: the
    link is closed after the COMMIT instead, the old server elects, and the ensemble serves on
    with every acknowledged write (after a pause: the successor, short of the old server's
    vote, waits up to initLimit for a quorum, then elects too)."""
    c = ucluster
    for i in VOTERS:
        with open(c.servers[i].cfg, "a") as f:
            f.write(f"reconfigEnabled=true\nDigestAuthenticationProvider.superDigest={SUPER_DIGEST}\n")
    # formed on the old build (a new ensemble waits for every voter), then 1 and 2 upgraded;
    # if the old server leads, it restarts (still old) so that a new one leads
    c.ensemble_bin = c.old_bin
    for i in VOTERS:
        c.start(i)
    c.wait_ready(VOTERS, 120)
    for i in (1, 2):
        c.ensemble_bin = c.old_bin
        c.stop(i)
        c.ensemble_bin = c.new_bin
        c.start(i)
        c.wait_ready(VOTERS, 120)
    if c.leader(VOTERS) == 3:
        c.ensemble_bin = c.old_bin
        c.stop(3)
        c.start(3)
        c.wait_ready(VOTERS, 120)
    leader = c.leader(VOTERS)
    assert leader in (1, 2), f"the old server leads ({leader}): the case needs a new leader"
    offset = log_size(c, leader)
    w = AckedWriter(c.hosts(VOTERS), "/up")
    w.start()
    try:
        wait_for("50 writes on the mixed ensemble", lambda: w.count() >= 50)
        zk = KazooClient(hosts=c.hosts(VOTERS), timeout=10)
        zk.start(timeout=30)
        try:
            zk.add_auth("digest", "super:test")
            zk.reconfig(joining=None, leaving=str(leader), new_members=None)
        finally:
            zk.stop()
            zk.close()
        rest = [i for i in VOTERS if i != leader]
        wait_for(
            "the removed leader closed its link to the old server instead of a HANDOVER",
            lambda: re.search(r"server 3 speaks peer protocol 4, which has no HANDOVER",
                              log_since(c, leader, offset)),
        )
        c.wait_ready(rest, 180)
        mark = w.count()
        wait_for("30 writes after the removal", lambda: w.count() >= mark + 30)
    finally:
        w.stop()
    for i in rest:
        assert_acked_on(c.servers[i].host, str(i), "/up", w.acked)
    print(f"leader {leader} removed; {len(w.acked)} writes acknowledged; modes {c.modes(rest)}")
