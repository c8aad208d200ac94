"""Large values near the 1 MiB limit. ZooKeeper refuses any request frame whose length field is
over jute.maxbuffer (0xfffff = 1048575 bytes, the 4-byte length itself not counted) by closing
that connection; the session, the other clients and the data are untouched."""

import uuid

import pytest
from kazoo.exceptions import ConnectionLoss

from conftest import ALL, OBSERVER
from harness import wire, zk
from harness.wire import WireClient

MAX_FRAME = 0xFFFFF  # jute.maxbuffer default


def create_overhead(path: str) -> int:
    # xid, type | path | data length | acl vector (1 x world:anyone) | flags
    return 8 + (4 + len(path.encode())) + 4 + (4 + 4 + 4 + len("world") + 4 + len("anyone")) + 4


@pytest.mark.parametrize("server", [1, OBSERVER])
def test_largest_frame_is_accepted_and_replicated(cluster, clients, root, server):
    p = f"{root}/max"
    n = MAX_FRAME - create_overhead(p)
    value = bytes((i * 7) & 0xFF for i in range(n))
    with WireClient(cluster.servers[server].client_port, io_timeout=30) as c:
        err, _ = c.create(p, value)
        assert err == 0
        c.close_session()
    for i in ALL:
        r = clients(i)
        r.sync(p)
        data, st = r.get(p)
        assert st.dataLength == n and data == value, f"server {i}"


@pytest.mark.parametrize("server", [2, OBSERVER])
def test_one_byte_over_closes_that_connection_only(cluster, clients, root, server):
    p = f"{root}/over"
    n = MAX_FRAME - create_overhead(p) + 1
    bystander = clients(server)
    bystander.create(f"{root}/alive", b"")
    c = WireClient(cluster.servers[server].client_port, io_timeout=30)
    sid, pw = c.session.session_id, c.session.passwd
    try:
        try:
            err, _ = c.create(p, b"z" * n)
            pytest.fail(f"an oversize frame was answered ({err}) instead of closing the connection")
        except (wire.Closed, OSError):
            pass
    finally:
        c.close()
    # the session survives the closed connection and can re-attach
    with WireClient(cluster.servers[server].client_port, session_id=sid, passwd=pw) as again:
        assert again.session.session_id == sid and again.session.timeout > 0
        assert again.exists(p)[0] == wire.NO_NODE
        again.close_session()
    # everyone else carries on
    assert bystander.get(f"{root}/alive") is not None
    bystander.set(f"{root}/alive", b"still here")
    for i in ALL:
        r = clients(i)
        r.sync(root)
        assert r.exists(p) is None, f"server {i} has the oversize node"
    assert cluster.fourlw(server, "ruok") == "imok"


def test_kazoo_large_values(cluster, clients, root):
    c = clients(3)
    big = b"\xab" * 1_000_000
    c.create(f"{root}/big", big)
    c.set(f"{root}/big", big[::-1] + b"!")
    for i in ALL:
        r = clients(i)
        r.sync(root)
        data, st = r.get(f"{root}/big")
        assert st.dataLength == 1_000_001 and data == big[::-1] + b"!"


def test_kazoo_value_over_a_mebibyte_is_refused(cluster, clients, root):
    c = clients(1, connection_retry=None)
    with pytest.raises(ConnectionLoss):
        c.create(f"{root}/toolarge", b"\x00" * (1024 * 1024 + 1))
    zk.wait_until(lambda: c.connected, 20, what="kazoo to reconnect")
    assert c.exists(f"{root}/toolarge") is None
    c.create(f"{root}/after", b"ok")


def test_multi_over_the_limit_is_refused_whole(cluster, clients, root):
    c = clients(2, connection_retry=None)
    t = c.transaction()
    t.create(f"{root}/m1", b"a" * 600_000)
    t.create(f"{root}/m2", b"b" * 600_000)
    with pytest.raises(ConnectionLoss):
        t.commit()
    zk.wait_until(lambda: c.connected, 20, what="kazoo to reconnect")
    assert c.exists(f"{root}/m1") is None and c.exists(f"{root}/m2") is None
    # just under the limit in total is fine
    t = c.transaction()
    t.create(f"{root}/m1", b"a" * 500_000)
    t.create(f"{root}/m2", b"b" * 500_000)
    assert t.commit() == [f"{root}/m1", f"{root}/m2"]


def test_many_children(cluster, clients, root):
    c = clients(1)
    parent = f"{root}/many"
    c.create(parent, b"")
    names = [f"child-{i:05d}-{uuid.uuid4().hex}" for i in range(2000)]
    batch = 200
    for k in range(0, len(names), batch):
        t = c.transaction()
        for n in names[k : k + batch]:
            t.create(f"{parent}/{n}", b"")
        assert all(isinstance(x, str) for x in t.commit())
    for i in ALL:
        r = clients(i)
        r.sync(parent)
        kids, st = r.get_children(parent, include_data=True)
        assert st.numChildren == len(names) and sorted(kids) == sorted(names)


def test_throughput_of_many_small_writes(cluster, clients, root):
    """Not a benchmark: 500 pipelined creates must all complete (bounded wait)."""
    c = clients(OBSERVER)
    results = [c.create_async(f"{root}/w{i}", b"x") for i in range(500)]
    for r in results:
        r.get(timeout=60)
    assert len(c.get_children(root)) == 500
