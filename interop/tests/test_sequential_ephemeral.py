"""Sequential and ephemeral nodes, sessions: close, re-attach on another server, expiry after a
client process is killed with SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from kazoo.client import KazooState
from kazoo.exceptions import NoNodeError

from conftest import ALL, VOTERS, OBSERVER
from harness import zk


def test_sequence_numbers(clients, root):
    c = clients()
    paths = [c.create(f"{root}/s-", b"", sequence=True) for _ in range(5)]
    assert paths == [f"{root}/s-{i:010d}" for i in range(5)]
    # other children count too (the counter is the parent's count of creates) ...
    c.create(f"{root}/plain", b"")
    assert c.create(f"{root}/s-", b"", sequence=True) == f"{root}/s-{6:010d}"
    # ... deletions do not, although they bump the parent's cversion (ZooKeeper 3.8 does this)
    cv = c.exists(root).cversion
    c.delete(paths[0])
    assert c.exists(root).cversion == cv + 1
    assert c.create(f"{root}/s-", b"", sequence=True) == f"{root}/s-{7:010d}"
    # no prefix at all
    assert c.create(f"{root}/", b"", sequence=True) == f"{root}/{8:010d}"


def test_sequence_counter_is_per_parent(clients, root):
    c = clients()
    c.create(f"{root}/a", b"")
    c.create(f"{root}/b", b"")
    assert c.create(f"{root}/a/x", b"", sequence=True) == f"{root}/a/x{0:010d}"
    assert c.create(f"{root}/b/x", b"", sequence=True) == f"{root}/b/x{0:010d}"
    assert c.create(f"{root}/a/x", b"", sequence=True) == f"{root}/a/x{1:010d}"


def test_sequential_from_every_server_are_unique_and_ordered(clients, root):
    made = []
    for rnd in range(3):
        for i in ALL:
            made.append(clients(i).create(f"{root}/q-", f"{i}".encode(), sequence=True))
    nums = [int(p[-10:]) for p in made]
    assert nums == list(range(len(made)))
    assert sorted(clients().get_children(root)) == sorted(p.rsplit("/", 1)[1] for p in made)


def test_ephemeral_lifecycle(cluster, clients, root):
    owner = clients(1)
    watcher = clients(OBSERVER)
    p = owner.create(f"{root}/e", b"me", ephemeral=True)
    es = owner.create(f"{root}/es-", b"", ephemeral=True, sequence=True)
    assert es == f"{root}/es-{1:010d}"
    sid = owner.client_id[0]
    for i in ALL:
        r = clients(i)
        r.sync(p)
        st = r.exists(p)
        assert st is not None and st.ephemeralOwner == sid, f"server {i}"
    gone = zk.Events()
    watcher.sync(p)
    assert watcher.exists(p, watch=gone) is not None
    owner.stop()  # closeSession: ephemerals go at once
    ev = gone.get(10)
    assert ev.type == "DELETED" and ev.path == p
    for i in ALL:
        r = clients(i)
        r.sync(root)
        assert r.exists(p) is None and r.exists(es) is None, f"server {i}"


@pytest.mark.parametrize("home,other", [(1, 3), (2, OBSERVER), (OBSERVER, 1)])
def test_session_reattach_on_another_server(clients, root, home, other):
    a = clients(home)
    p = a.create(f"{root}/mine", b"", ephemeral=True)
    sid, passwd = a.client_id
    # the same session, moved to another server by its id and password
    b = clients(other, client_id=(sid, passwd))
    assert b.client_id[0] == sid
    assert b.exists(p).ephemeralOwner == sid
    b.create(f"{root}/also-mine", b"", ephemeral=True)
    # the old connection is dead for this session; closing the moved one removes both ephemerals
    b.stop()
    r = clients(home if home != OBSERVER else 1)
    r.sync(root)
    zk.wait_until(lambda: r.exists(p) is None and r.exists(f"{root}/also-mine") is None, 15,
                  what="ephemerals of the closed session to vanish")
    a.stop()


CHILD = textwrap.dedent(
    """
    import sys, time
    from kazoo.client import KazooClient
    hosts, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    c = KazooClient(hosts=hosts, timeout=4.0)
    c.start(timeout=20)
    for i in range(n):
        c.create(f"{root}/eph-{i}", b"x", ephemeral=True)
    c.create(f"{root}/seq-", b"x", ephemeral=True, sequence=True)
    print("SESSION", c.client_id[0], c._session_timeout, flush=True)
    time.sleep(600)
    """
)


@pytest.mark.parametrize("server", [1, OBSERVER])
def test_session_expires_after_client_is_killed(cluster, clients, root, server):
    """kill -9 a client process holding ephemerals: they vanish within the session timeout
    (plus ZooKeeper's expiry granularity of one tick), seen from every server."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, cluster.hosts((server,)), root, "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not line.startswith("SESSION"):
            line = proc.stdout.readline()
            if proc.poll() is not None:
                break
        assert line.startswith("SESSION"), f"client did not start: {line!r}"
        _, sid, negotiated = line.split()
        sid, negotiated = int(sid), int(negotiated)
        assert negotiated == 4000
        watcher = clients(3 if server != 3 else 2)
        kids = watcher.get_children(root)
        assert len(kids) == 4
        for k in kids:
            assert watcher.exists(f"{root}/{k}").ephemeralOwner == sid
        gone = zk.Events()
        watcher.exists(f"{root}/eph-0", watch=gone)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # expiry happens once the timeout has passed without hearing from the client (the wait
        # is bounded generously: a loaded machine must not fail the test, so no wall-time
        # assertion beyond it)
        ev = gone.get(timeout=negotiated / 1000 * 3 + 30)
        assert ev.type == "DELETED"
        for i in ALL:
            r = clients(i)
            r.sync(root)
            assert r.get_children(root) == [], f"server {i} still has ephemerals"
        # the session is gone: re-attaching to it fails
        ids = []
        try:
            from kazoo.client import KazooClient

            c = KazooClient(hosts=cluster.hosts((1,)), client_id=(sid, b"\x00" * 16), timeout=4)
            c.add_listener(ids.append)
            try:
                c.start(timeout=6)
            except Exception:  # noqa: BLE001
                pass
            assert not c.connected or c.client_id[0] != sid
        finally:
            zk.close_quietly(c)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_ephemeral_survives_leader_independent_reads(clients, root):
    """An ephemeral stays while its owner's session lives, regardless of which server is read."""
    owner = clients(2)
    p = owner.create(f"{root}/alive", b"", ephemeral=True)
    time.sleep(1.0)
    for i in VOTERS + (OBSERVER,):
        r = clients(i)
        r.sync(p)
        assert r.exists(p) is not None
    with pytest.raises(NoNodeError):
        owner.get(f"{root}/not-there")
