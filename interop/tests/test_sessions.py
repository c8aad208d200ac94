"""Session liveness: pings keep an idle session alive past its timeout; a client cut off for
longer than its timeout finds its session expired (ephemerals gone, a new session made);
maxClientCnxns (60 per address by default) refuses the connection over the limit only."""

import socket
import time

import pytest
from kazoo.client import KazooClient, KazooState

from conftest import ALL
from harness import wire, zk
from test_watches import Proxy


def test_idle_session_is_kept_alive_by_pings(cluster, clients, root):
    c = clients(2, timeout=4.0)
    sid = c.client_id[0]
    p = c.create(f"{root}/idle", b"", ephemeral=True)
    time.sleep(9.0)  # more than twice the 4 s timeout, doing nothing but kazoo's pings
    assert c.connected and c.client_id[0] == sid
    other = clients(3)
    assert other.exists(p).ephemeralOwner == sid


def test_wire_pings_keep_a_session_alive(cluster, clients, root):
    with wire.WireClient(cluster.servers[1].client_port, timeout_ms=4000) as c:
        err, (p, _) = c.create(f"{root}/wire-idle", b"", wire.EPHEMERAL)
        assert err == 0
        for _ in range(8):
            time.sleep(1.0)
            assert c.ping() == 0
        assert c.exists(p)[0] == 0
        c.close_session()


def test_session_expires_while_the_client_is_cut_off(cluster, clients, root):
    proxy = Proxy(cluster.servers[3].client_port)
    states = []
    w = KazooClient(hosts=f"127.0.0.1:{proxy.port}", timeout=4.0)
    w.add_listener(states.append)
    try:
        w.start(timeout=20)
        sid = w.client_id[0]
        p = w.create(f"{root}/cut", b"", ephemeral=True)
        watcher = clients(1)
        gone = zk.Events()
        watcher.exists(p, watch=gone)
        proxy.paused = True
        proxy.cut()
        # bounded generously, no wall-time assertion: a loaded machine must not fail it
        ev = gone.get(timeout=4 * 3 + 30)
        assert ev.type == "DELETED"
        proxy.paused = False
        # back in touch: the old session is expired; kazoo says LOST and makes a new one
        zk.wait_until(lambda: KazooState.LOST in states, 30, what="the LOST state")
        zk.wait_until(lambda: w.connected, 30, what="a new session")
        assert w.client_id[0] != sid
        assert w.exists(p) is None
    finally:
        zk.close_quietly(w)
        proxy.close()


def test_max_client_cnxns_per_address(cluster):
    """60 connections from one address per server (maxClientCnxns default); the next is refused
    (closed), the others and everyone else keep working, and a slot frees when one closes."""
    port = cluster.servers[4].client_port
    socks = []
    refused_at = None
    try:
        for k in range(75):
            try:
                c = wire.WireClient(port, io_timeout=5)
            except (wire.Closed, OSError):
                refused_at = k
                break
            socks.append(c)
        assert refused_at is not None, "75 connections from one address were all accepted"
        assert refused_at <= 60
        for c in socks[:5]:
            assert c.ping() == 0
        socks.pop().close_session()
        deadline = time.monotonic() + 10
        while True:
            try:
                again = wire.WireClient(port, io_timeout=5)
                break
            except (wire.Closed, OSError):
                assert time.monotonic() < deadline, "no slot freed after a session closed"
                time.sleep(0.2)
        socks.append(again)
        # other servers are not affected
        with wire.WireClient(cluster.servers[1].client_port) as o:
            assert o.ping() == 0
            o.close_session()
    finally:
        for c in socks:
            try:
                c.close_session()
            except Exception:  # noqa: BLE001
                c.close()
    time.sleep(0.5)
