"""The client port at the byte level, with the suite's own jute codec (harness/wire.py): the
connect handshake, negotiated timeouts, session passwords, pings, closeSession, and the opcodes
kazoo does not speak (getEphemerals, getAllChildrenNumber, whoAmI, createContainer, createTTL)."""

import uuid

import pytest

from conftest import ALL, OBSERVER
from harness import wire
from harness.wire import WireClient


def port(cluster, i):
    return cluster.servers[i].client_port


@pytest.mark.parametrize("server", ALL)
def test_connect_response_shape(cluster, server):
    with WireClient(port(cluster, server), timeout_ms=6000) as c:
        s = c.session
        assert s.protocol_version == 0
        assert s.timeout == 6000
        assert s.session_id != 0
        assert len(s.passwd) == 16
        assert s.read_only is False
        # int protocolVersion, int timeOut, long sessionId, buffer passwd(16), bool readOnly
        assert len(s.raw) == 4 + 4 + 8 + 4 + 16 + 1
        assert c.ping() == 0
        assert c.close_session() == 0


@pytest.mark.parametrize("asked,expected_ticks", [(1, 2), (3999, 2), (5000, None), (39999, None), (40001, 20), (10**9, 20)])
def test_negotiated_timeout_is_clamped_to_2_and_20_ticks(cluster, asked, expected_ticks):
    tick = cluster.tick_time
    with WireClient(port(cluster, 1), timeout_ms=asked) as c:
        want = asked if expected_ticks is None else expected_ticks * tick
        assert c.session.timeout == want
        c.close_session()


def test_session_ids_are_distinct_and_carry_the_server_id(cluster):
    ids = {}
    for i in ALL:
        with WireClient(port(cluster, i)) as c:
            ids[i] = c.session.session_id
            c.close_session()
    assert len(set(ids.values())) == len(ids)


@pytest.mark.parametrize("home,other", [(1, 2), (3, OBSERVER), (OBSERVER, 2)])
def test_reattach_by_id_and_password(cluster, home, other):
    a = WireClient(port(cluster, home), timeout_ms=10000)
    sid, pw = a.session.session_id, a.session.passwd
    err, made = a.create(f"/wire-reattach-{home}-{other}", b"x", wire.EPHEMERAL)
    assert err == 0
    with WireClient(port(cluster, other), timeout_ms=10000, session_id=sid, passwd=pw,
                    last_zxid=a.last_zxid) as b:
        assert b.session.session_id == sid
        assert b.session.timeout == 10000
        assert b.session.passwd == pw
        err, st = b.exists(made[0])
        assert err == 0 and st.ephemeralOwner == sid
        # the old connection may still read, but a write through it is refused (ZooKeeper
        # closes it: SessionMoved) and not applied
        try:
            err, _ = a.create(made[0] + "-via-old", b"")
            assert err == -118, err
        except (wire.Closed, OSError):
            pass
        b.sync("/")
        assert b.exists(made[0] + "-via-old")[0] == wire.NO_NODE
        assert b.close_session() == 0
    a.close()
    with WireClient(port(cluster, 1)) as c:
        c.sync("/")
        assert c.exists(made[0])[0] == wire.NO_NODE
        c.close_session()


def test_wrong_password_is_answered_as_expired(cluster):
    a = WireClient(port(cluster, 1))
    sid, pw = a.session.session_id, a.session.passwd
    bad = bytes(b ^ 0xFF for b in pw)
    with WireClient(port(cluster, 2), session_id=sid, passwd=bad) as b:
        assert b.session.timeout == 0
        assert b.closed_by_peer(5)
    # the owner's session is untouched
    assert a.ping() == 0 and a.exists("/")[0] == 0
    a.close_session()


def test_unknown_session_is_answered_as_expired(cluster):
    with WireClient(port(cluster, 3), session_id=0x7777_0000_0000_0001, passwd=b"\x01" * 16) as b:
        assert b.session.timeout == 0
        assert b.closed_by_peer(5)


def test_closed_session_cannot_be_reattached(cluster):
    a = WireClient(port(cluster, 1))
    sid, pw = a.session.session_id, a.session.passwd
    assert a.close_session() == 0
    with WireClient(port(cluster, 2), session_id=sid, passwd=pw) as b:
        assert b.session.timeout == 0


def test_reply_zxids_and_last_zxid_seen(cluster):
    zpath = f"/wire-zxid-{uuid.uuid4().hex[:8]}"
    with WireClient(port(cluster, 2)) as c:
        err, made = c.create(zpath, b"")
        assert err == 0
        z1 = c.last_zxid
        err, (_, st) = c.get(zpath)
        assert st.czxid == z1
        assert c.delete(zpath) == 0
        assert c.last_zxid > z1
        c.close_session()
    # a client that has seen a zxid from the future is refused by a server behind it
    with WireClient(port(cluster, 1), connect=False) as c:
        c.send_raw(wire.frame(wire.connect_request(last_zxid=z1 + (1 << 40))))
        try:
            c.recv_frame()
            refused = c.closed_by_peer(5)
        except (wire.Closed, OSError):
            refused = True
        assert refused


def test_get_ephemerals_and_all_children_number(cluster):
    with WireClient(port(cluster, 1)) as c:
        base = f"/wire-eph-{uuid.uuid4().hex[:8]}"
        assert c.create(base)[0] == 0
        for n in ("a", "b"):
            assert c.create(f"{base}/{n}", b"", wire.EPHEMERAL)[0] == 0
        assert c.create(f"{base}/p")[0] == 0
        assert c.create(f"{base}/p/q")[0] == 0
        err, eph = c.get_ephemerals(base)
        assert err == 0 and sorted(eph) == [f"{base}/a", f"{base}/b"]
        err, all_eph = c.get_ephemerals("/")
        assert err == 0 and sorted(all_eph) == [f"{base}/a", f"{base}/b"]
        err, n = c.all_children_number(base)
        assert err == 0 and n == 4
        err, n = c.all_children_number(f"{base}/missing")
        assert err == wire.NO_NODE
        for p in (f"{base}/p/q", f"{base}/p", f"{base}/a", f"{base}/b", base):
            assert c.delete(p) == 0
        c.close_session()


def test_who_am_i(cluster):
    with WireClient(port(cluster, 2)) as c:
        err, ids = c.who_am_i()
        assert err == 0 and ids == [("ip", "127.0.0.1")]
        assert c.add_auth("digest", b"alice:secret") == 0
        err, ids = c.who_am_i()
        assert err == 0 and sorted(ids) == [("digest", "alice"), ("ip", "127.0.0.1")]
        c.close_session()


def test_create_ttl_and_container(cluster):
    u = uuid.uuid4().hex[:8]
    with WireClient(port(cluster, 1)) as c:
        err, (path, st) = c.create(f"/wire-ttl-{u}", b"t", wire.PERSISTENT_WITH_TTL, ttl=60000)
        assert err == 0 and path == f"/wire-ttl-{u}"
        # the TTL is kept in ephemeralOwner inside the server, but clients are shown 0
        assert st.ephemeralOwner == 0 and st.dataLength == 1
        err, (path, st) = c.create(f"/wire-ttl-{u}-seq-", b"", wire.PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=60000)
        assert err == 0 and path.startswith(f"/wire-ttl-{u}-seq-")
        assert c.delete(path) == 0
        assert c.create(f"/wire-ttl-{u}-bad", b"", wire.PERSISTENT_WITH_TTL, ttl=0)[0] == wire.BAD_ARGUMENTS
        assert c.create(f"/wire-ttl-{u}-bad", b"", wire.EPHEMERAL, ttl=1000)[0] == wire.BAD_ARGUMENTS
        assert c.create(f"/wire-ttl-{u}-bad", b"", wire.PERSISTENT_WITH_TTL, ttl=1 << 41)[0] == wire.BAD_ARGUMENTS
        err, (path, st) = c.create(f"/wire-container-{u}", b"", wire.CONTAINER)
        assert err == 0
        assert st.ephemeralOwner == 0  # likewise the container marker is not shown
        assert c.delete(f"/wire-ttl-{u}") == 0 and c.delete(f"/wire-container-{u}") == 0
        c.close_session()
