"""CRUD and Stat fields through kazoo, on every server (voters and the observer)."""

import time

import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)

from conftest import ALL


@pytest.mark.parametrize("server", ALL)
def test_create_get_set_delete_on_each_server(clients, root, server):
    c = clients(server)
    p = f"{root}/node"
    assert c.create(p, b"v0") == p
    data, st = c.get(p)
    assert data == b"v0"
    assert st.version == 0 and st.dataLength == 2 and st.numChildren == 0
    assert st.czxid == st.mzxid == st.pzxid
    assert st.ephemeralOwner == 0 and st.cversion == 0 and st.aversion == 0
    st2 = c.set(p, b"value-1")
    assert st2.version == 1 and st2.dataLength == 7
    assert st2.czxid == st.czxid and st2.mzxid > st.mzxid and st2.ctime == st.ctime
    assert st2.mtime >= st.mtime
    assert c.get(p)[0] == b"value-1"
    c.delete(p)
    assert c.exists(p) is None
    with pytest.raises(NoNodeError):
        c.get(p)


def test_stat_times_are_wall_clock_millis(clients, root):
    c = clients()
    before = int(time.time() * 1000)
    c.create(f"{root}/t", b"")
    after = int(time.time() * 1000)
    st = c.exists(f"{root}/t")
    assert before - 5000 <= st.ctime <= after + 5000
    assert st.ctime == st.mtime


def test_parent_stat_tracks_children(clients, root):
    c = clients()
    st0 = c.exists(root)
    c.create(f"{root}/a", b"")
    c.create(f"{root}/b", b"")
    st1 = c.exists(root)
    assert st1.numChildren == 2
    assert st1.cversion == st0.cversion + 2
    assert st1.pzxid > st0.pzxid
    assert st1.version == st0.version  # children do not bump the data version
    assert st1.mzxid == st0.mzxid
    c.delete(f"{root}/a")
    st2 = c.exists(root)
    assert st2.numChildren == 1 and st2.cversion == st0.cversion + 3 and st2.pzxid > st1.pzxid
    # a child's data change does not touch the parent
    c.set(f"{root}/b", b"x")
    assert c.exists(root) == st2


def test_zxids_increase_across_writes(clients, root):
    c = clients()
    zx = []
    for i in range(5):
        c.create(f"{root}/n{i}", b"")
        zx.append(c.exists(f"{root}/n{i}").czxid)
    assert zx == sorted(zx) and len(set(zx)) == 5


def test_errors(clients, root):
    c = clients()
    p = f"{root}/e"
    c.create(p, b"")
    with pytest.raises(NodeExistsError):
        c.create(p, b"")
    with pytest.raises(NoNodeError):
        c.create(f"{root}/missing/child", b"")
    with pytest.raises(NoNodeError):
        c.set(f"{root}/missing", b"")
    with pytest.raises(NoNodeError):
        c.delete(f"{root}/missing")
    c.create(f"{p}/child", b"")
    with pytest.raises(NotEmptyError):
        c.delete(p)
    with pytest.raises(BadVersionError):
        c.set(p, b"x", version=7)
    with pytest.raises(BadVersionError):
        c.delete(f"{p}/child", version=3)
    assert c.exists(f"{p}/child") is not None


def test_versioned_set_and_delete(clients, root):
    c = clients()
    p = f"{root}/v"
    c.create(p, b"")
    st = c.set(p, b"a", version=0)
    assert st.version == 1
    st = c.set(p, b"b", version=1)
    assert st.version == 2
    c.delete(p, version=2)
    assert c.exists(p) is None


def test_get_children_and_stat(clients, root):
    c = clients()
    names = ["b", "a", "c", "z-1", "x.y"]
    for n in names:
        c.create(f"{root}/{n}", n.encode())
    assert sorted(c.get_children(root)) == sorted(names)
    kids, st = c.get_children(root, include_data=True)
    assert sorted(kids) == sorted(names) and st.numChildren == len(names)
    assert c.get_children(f"{root}/a") == []
    with pytest.raises(NoNodeError):
        c.get_children(f"{root}/nope")


def test_binary_empty_and_unicode(clients, root):
    c = clients()
    blob = bytes(range(256)) * 4
    c.create(f"{root}/bin", blob)
    assert c.get(f"{root}/bin")[0] == blob
    c.create(f"{root}/empty")
    data, st = c.get(f"{root}/empty")
    assert data == b"" and st.dataLength == 0
    c.create(f"{root}/ünïcødé-节点", "数据".encode())
    assert "ünïcødé-节点" in c.get_children(root)
    assert c.get(f"{root}/ünïcødé-节点")[0].decode() == "数据"


@pytest.mark.parametrize(
    "last", ["", ".", "..", "nul\u0000x", "ctl\u0001", "us\u001f"]
)
def test_invalid_paths_are_rejected_on_the_wire(clients, root, last):
    """kazoo normalises paths itself, so send the raw request. Under an existing parent an
    invalid last component is BadArguments (as a sequential prefix, "", "." and ".." are fine:
    the suffix makes the name valid); the session goes on."""
    from kazoo.protocol.serialization import Create
    from kazoo.security import OPEN_ACL_UNSAFE

    c = clients()

    def raw(req):
        r = c.handler.async_result()
        c._call(req, r)
        return r.get(timeout=10)

    with pytest.raises(BadArgumentsError):
        raw(Create(f"{root}/{last}", b"", OPEN_ACL_UNSAFE, 0))
    if last in ("", ".", ".."):
        made = raw(Create(f"{root}/{last}", b"", OPEN_ACL_UNSAFE, 2))
        assert made == f"{root}/{last}{0:010d}"
    else:
        with pytest.raises(BadArgumentsError):
            raw(Create(f"{root}/{last}", b"", OPEN_ACL_UNSAFE, 2))
    with pytest.raises(BadArgumentsError):
        raw(Create("no-leading-slash", b"", OPEN_ACL_UNSAFE, 0))
    assert c.exists(root) is not None


def test_makepath_and_ensure_path(clients, root):
    c = clients()
    c.create(f"{root}/a/b/c/d", b"deep", makepath=True)
    assert c.get(f"{root}/a/b/c/d")[0] == b"deep"
    c.ensure_path(f"{root}/a/b/x/y")
    assert c.exists(f"{root}/a/b/x/y") is not None


def test_delete_recursive(clients, root):
    c = clients()
    for i in range(3):
        for j in range(3):
            c.create(f"{root}/t/{i}/{j}", b"", makepath=True)
    c.delete(f"{root}/t", recursive=True)
    assert c.exists(f"{root}/t") is None


def test_ephemeral_cannot_have_children(clients, root):
    c = clients()
    c.create(f"{root}/eph", b"", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        c.create(f"{root}/eph/kid", b"")


def test_root_and_zookeeper_nodes(clients):
    c = clients()
    assert "zookeeper" in c.get_children("/")
    st = c.exists("/")
    assert st is not None and st.czxid == 0
    assert "quota" in c.get_children("/zookeeper")


@pytest.mark.parametrize("writer", ALL)
def test_write_anywhere_read_everywhere(cluster, clients, root, writer):
    w = clients(writer)
    p = f"{root}/w{writer}"
    w.create(p, f"from {writer}".encode())
    for i in ALL:
        r = clients(i)
        r.sync(p)
        assert r.get(p)[0] == f"from {writer}".encode(), f"server {i}"


def test_null_data_stays_null(clients, root):
    """Data sent as a null buffer (length -1) is read back as null, not as empty bytes
    (kazoo: None; Java: null) — on create and on setData."""
    c = clients(1)
    c.create(f"{root}/null", None)
    for i in ALL:
        r = clients(i)
        r.sync(root)
        value, st = r.get(f"{root}/null")
        assert value is None and st.dataLength == 0, f"server {i}: {value!r}"
    c.create(f"{root}/notnull", b"x")
    c.set(f"{root}/notnull", None)
    assert c.get(f"{root}/notnull")[0] is None
    c.set(f"{root}/notnull", b"")
    assert c.get(f"{root}/notnull")[0] == b""


def test_null_data_on_the_wire(cluster, root):
    from harness.wire import GET_DATA, WireClient, Writer

    with WireClient(cluster.servers[2].client_port) as c:
        assert c.create(f"{root}/wnull", None)[0] == 0
        r = c.call(GET_DATA, Writer().string(f"{root}/wnull").bool(False).bytes())
        # the reply body starts with the data buffer's length: -1 for null
        assert r.err == 0 and r.body.b[r.body.o : r.body.o + 4] == b"\xff\xff\xff\xff", r.body.b.hex()
        c.close_session()
