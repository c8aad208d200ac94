"""multi (kazoo transactions): all-or-nothing, per-op results, rollback on any failing op,
watches fired by a committed multi, and multi through every server."""

import pytest
from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType

from conftest import ALL, OBSERVER
from harness import zk


@pytest.mark.parametrize("server", ALL)
def test_multi_commits_all(clients, root, server):
    c = clients(server)
    c.create(f"{root}/old", b"o")
    c.create(f"{root}/gone", b"")
    t = c.transaction()
    t.create(f"{root}/new", b"n")
    t.create(f"{root}/seq-", b"", sequence=True)
    t.set_data(f"{root}/old", b"o2", version=0)
    t.check(f"{root}/old", 1)  # sees the set just before it in the same multi
    t.delete(f"{root}/gone")
    res = t.commit()
    assert res[0] == f"{root}/new"
    assert res[1] == f"{root}/seq-{3:010d}"
    assert res[2].version == 1  # a Stat for setData
    assert res[3] is True
    assert res[4] is True
    r = clients(1 if server != 1 else 2)
    r.sync(root)
    assert r.get(f"{root}/new")[0] == b"n"
    assert r.get(f"{root}/old")[0] == b"o2"
    assert r.exists(f"{root}/gone") is None
    # all ops of one multi carry one zxid
    assert r.exists(f"{root}/new").czxid == r.exists(f"{root}/old").mzxid


def test_multi_rollback_on_bad_version(clients, root):
    c = clients(2)
    c.create(f"{root}/a", b"a")
    before = c.exists(root)
    t = c.transaction()
    t.create(f"{root}/b", b"")
    t.set_data(f"{root}/a", b"changed")
    t.check(f"{root}/a", 99)
    t.create(f"{root}/c", b"")
    res = t.commit()
    assert isinstance(res[0], RolledBackError)
    assert isinstance(res[1], RolledBackError)
    assert isinstance(res[2], BadVersionError)
    assert isinstance(res[3], RuntimeInconsistency)
    for i in ALL:
        r = clients(i)
        r.sync(root)
        assert r.exists(f"{root}/b") is None, f"server {i}"
        assert r.get(f"{root}/a")[0] == b"a"
        assert r.exists(root).cversion == before.cversion


@pytest.mark.parametrize(
    "failing,exc",
    [("create-existing", NodeExistsError), ("delete-missing", NoNodeError),
     ("delete-nonempty", NotEmptyError), ("set-missing", NoNodeError),
     ("create-no-parent", NoNodeError)],
)
def test_multi_rollback_per_error(clients, root, failing, exc):
    c = clients(3)
    c.create(f"{root}/x", b"")
    c.create(f"{root}/full/kid", b"", makepath=True)
    t = c.transaction()
    t.create(f"{root}/first", b"")
    if failing == "create-existing":
        t.create(f"{root}/x", b"")
    elif failing == "delete-missing":
        t.delete(f"{root}/nope")
    elif failing == "delete-nonempty":
        t.delete(f"{root}/full")
    elif failing == "set-missing":
        t.set_data(f"{root}/nope", b"")
    else:
        t.create(f"{root}/nope/kid", b"")
    res = t.commit()
    assert isinstance(res[0], RolledBackError)
    assert isinstance(res[1], exc)
    assert c.exists(f"{root}/first") is None


def test_multi_ops_see_earlier_ops(clients, root):
    c = clients(1)
    t = c.transaction()
    t.create(f"{root}/p", b"")
    t.create(f"{root}/p/q", b"")
    t.set_data(f"{root}/p/q", b"v")
    t.delete(f"{root}/p/q")
    t.delete(f"{root}/p")
    res = t.commit()
    assert res[:2] == [f"{root}/p", f"{root}/p/q"] and res[3:] == [True, True]
    assert c.exists(f"{root}/p") is None


def test_multi_fires_watches_once_committed(clients, root):
    w, m = clients(1), clients(3)
    m.create(f"{root}/d", b"")
    w.sync(root)
    ev_d, ev_c = zk.Events(), zk.Events()
    w.get(f"{root}/d", watch=ev_d)
    w.get_children(root, watch=ev_c)
    # a failed multi fires nothing
    t = m.transaction()
    t.set_data(f"{root}/d", b"x")
    t.create(f"{root}/d", b"")
    assert isinstance(t.commit()[1], NodeExistsError)
    ev_d.none(1.0)
    ev_c.none(0.1)
    t = m.transaction()
    t.set_data(f"{root}/d", b"x")
    t.create(f"{root}/e", b"")
    t.commit()
    assert ev_d.get().type == EventType.CHANGED
    assert ev_c.get().type == EventType.CHILD


def test_empty_multi(clients):
    c = clients(2)
    assert c.transaction().commit() == []


def test_multi_with_ephemeral_and_sequential(clients, root):
    c = clients(OBSERVER)
    t = c.transaction()
    t.create(f"{root}/e", b"", ephemeral=True)
    t.create(f"{root}/es-", b"", ephemeral=True, sequence=True)
    res = t.commit()
    assert res == [f"{root}/e", f"{root}/es-{1:010d}"]
    sid = c.client_id[0]
    assert c.exists(f"{root}/e").ephemeralOwner == sid
