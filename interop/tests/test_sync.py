"""sync-then-read on every server: after sync(path) returns, a read on that server shows every
write acknowledged (to anyone, through any server) before the sync was issued. Reads without sync
are only sequentially consistent, but never go backwards for one client."""

import threading
import time

import pytest

from conftest import ALL
from harness import zk


@pytest.mark.parametrize("reader", ALL)
def test_sync_then_read_sees_acknowledged_writes(clients, root, reader):
    writer_server = {1: 2, 2: 3, 3: 4, 4: 1}[reader]
    w, r = clients(writer_server), clients(reader)
    p = f"{root}/ctr"
    w.create(p, b"0")
    for k in range(1, 31):
        w.set(p, str(k).encode())
        r.sync(p)
        assert int(r.get(p)[0]) == k, f"server {reader} after sync, round {k}"


def test_sync_linearizes_reads_under_concurrent_writes(cluster, clients, root):
    p = f"{root}/hot"
    w = clients(1)
    w.create(p, b"0")
    acked = [0]
    stop = threading.Event()
    errors = []

    def write_loop():
        k = 0
        while not stop.is_set() and k < 5000:
            k += 1
            w.set(p, str(k).encode())
            acked[0] = k

    t = threading.Thread(target=write_loop, daemon=True)
    t.start()
    try:
        readers = {i: clients(i) for i in ALL}
        last = {i: 0 for i in ALL}
        deadline = time.monotonic() + 8
        rounds = 0
        while time.monotonic() < deadline:
            for i, r in readers.items():
                floor = acked[0]
                r.sync(p)
                v = int(r.get(p)[0])
                if v < floor:
                    errors.append(f"server {i}: read {v} after sync, but {floor} was acknowledged before it")
                if v < last[i]:
                    errors.append(f"server {i}: read went backwards {last[i]} -> {v}")
                last[i] = v
                # a plain read is never older than this client's own previous read
                v2 = int(r.get(p)[0])
                if v2 < v:
                    errors.append(f"server {i}: plain read went backwards {v} -> {v2}")
                last[i] = max(last[i], v2)
            rounds += 1
        assert rounds > 3
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors[:5]


def test_sync_of_missing_path_and_root(clients):
    c = clients(3)
    # ZooKeeper does not check the path of a sync
    assert c.sync("/") == "/"
    assert c.sync("/no/such/node") == "/no/such/node"


def test_read_your_writes_on_one_session(clients, root):
    for i in ALL:
        c = clients(i)
        for k in range(20):
            c.set(root, str(k).encode())
            assert c.get(root)[0] == str(k).encode()


def test_monotonic_reads_across_reconnect(cluster, clients, root):
    """A session that saw zxid Z moves to another server, telling it lastZxidSeen=Z: the server
    either has caught up to Z or refuses the connection, so reads never go back in time."""
    from harness import wire

    p = f"{root}/mono"
    a = wire.WireClient(cluster.servers[1].client_port)
    assert a.create(p, b"0")[0] == 0
    for k in range(1, 20):
        assert a.set(p, str(k).encode())[0] == 0
    sid, pw, seen = a.session.session_id, a.session.passwd, a.last_zxid
    for other in (2, 3, 4):
        deadline = time.monotonic() + 10
        while True:
            try:
                b = wire.WireClient(cluster.servers[other].client_port, session_id=sid, passwd=pw,
                                    last_zxid=seen)
                break
            except (wire.Closed, OSError):
                assert time.monotonic() < deadline, f"server {other} kept refusing"
                time.sleep(0.1)
        err, (data, st) = b.get(p)
        assert err == 0 and int(data) == 19 and st.mzxid <= seen, f"server {other}"
        b.close()
    a.close()
