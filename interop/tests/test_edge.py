"""Edge cases found by running odd requests against Apache ZooKeeper 3.8 and Ensemble side by
side: system nodes, requests ZooKeeper decodes but refuses (answered with an error code, the
session goes on), and one request that breaks ZooKeeper itself."""

import time
import uuid

import pytest

from conftest import ALL, TARGET
from harness import wire, zk
from harness.wire import WireClient, Writer


def port(cluster, i):
    return cluster.servers[i].client_port


def test_system_nodes_cannot_be_deleted(cluster):
    with WireClient(port(cluster, 1)) as c:
        assert c.delete("/") == wire.BAD_ARGUMENTS
        assert c.delete("/zookeeper") == wire.BAD_ARGUMENTS
        assert c.delete("/zookeeper/quota") == wire.BAD_ARGUMENTS
        assert c.create("/")[0] == wire.NODE_EXISTS
        err, (kids, _) = c.children("/zookeeper")
        assert err == 0 and sorted(kids) == ["config", "quota"]
        c.close_session()


def test_root_data_can_be_set(cluster):
    with WireClient(port(cluster, 2)) as c:
        err, st = c.set("/", b"rootdata")
        assert err == 0
        err, (data, st2) = c.get("/")
        assert data == b"rootdata" and st2.version == st.version
        assert c.set("/", b"")[0] == 0
        c.close_session()


def test_zookeeper_config_node_lists_the_members(cluster):
    """/zookeeper/config holds the ensemble's membership (what Java's getConfig() and Curator's
    EnsembleTracker read): one server.N=host:quorum:election:role line per member, version=..."""
    with WireClient(port(cluster, 3)) as c:
        err, (data, st) = c.get("/zookeeper/config")
        assert err == 0
        text = data.decode()
        for s in cluster.servers.values():
            role = "observer" if s.observer else "participant"
            assert f"server.{s.sid}=localhost:{s.quorum_port}:{s.election_port}:{role}" in text, text
        assert "version=" in text
        c.close_session()


@pytest.mark.parametrize(
    "what,body,op,want",
    [
        ("create with mode 7", Writer().string("/edge-m7").buffer(b"").acls(wire.OPEN_ACL).int(7), wire.CREATE2,
         wire.BAD_ARGUMENTS),
        ("create with mode -1", Writer().string("/edge-mneg").buffer(b"").acls(wire.OPEN_ACL).int(-1), wire.CREATE2,
         wire.BAD_ARGUMENTS),
        ("reconfig while reconfig is disabled", Writer().string("").string("").string("").long(-1), wire.RECONFIG,
         wire.RECONFIG_DISABLED),
        ("addWatch with mode 7", Writer().string("/").int(7), wire.ADD_WATCH, wire.MARSHALLING_ERROR),
        ("removeWatches with type 9", Writer().string("/").int(9), wire.REMOVE_WATCHES, wire.MARSHALLING_ERROR),
        ("multi holding a read op", Writer().int(wire.GET_DATA).bool(False).int(-1).string("/").bool(False)
         .int(-1).bool(True).int(-1), wire.MULTI, wire.MARSHALLING_ERROR),
        ("multiRead holding a write op", Writer().int(wire.CREATE).bool(False).int(-1).string("/edge-mr")
         .buffer(b"").acls(wire.OPEN_ACL).int(0).int(-1).bool(True).int(-1), wire.MULTI_READ,
         wire.MARSHALLING_ERROR),
    ],
    ids=["create-mode-7", "create-mode-neg", "reconfig", "addWatch-mode-7", "removeWatches-type-9",
         "multi-with-read", "multiRead-with-write"],
)
def test_refused_requests_are_answered_not_dropped(cluster, what, body, op, want):
    """ZooKeeper answers these with an error code and keeps the connection and session, so a
    client sees e.g. BadArgumentsException / ReconfigDisabledException rather than a
    connection loss (and a retrying client does not loop)."""
    with WireClient(port(cluster, 1)) as c:
        try:
            r = c.call(op, body.bytes())
        except (wire.Closed, OSError):
            pytest.fail(f"{what}: the connection was closed instead of answered (ZooKeeper: error {want})")
        assert r.err == want, f"{what}: error {r.err}, ZooKeeper answers {want}"
        assert c.ping() == 0 and c.exists("/")[0] == 0
        c.close_session()


def test_unknown_opcode_is_answered_unimplemented(cluster):
    """An opcode the server does not know (a newer client's): ZooKeeper answers Unimplemented
    (-6) for that xid, then closes."""
    with WireClient(port(cluster, 2)) as c:
        try:
            r = c.call(999, b"")
        except (wire.Closed, OSError):
            pytest.fail("closed without an answer (ZooKeeper answers Unimplemented, -6)")
        assert r.err == wire.UNIMPLEMENTED


@pytest.mark.skipif(TARGET == "zookeeper", reason="a lone check request breaks an Apache ZooKeeper 3.8 "
                    "ensemble for good: followers fail with 'Unsupported Txn with type=13' and never rejoin")
def test_lone_check_request_does_not_break_the_ensemble(cluster, clients):
    """The check opcode (13) sent outside a multi. Whatever the answer, the ensemble must keep
    serving and committing (ZooKeeper 3.8 logs it as a txn its followers cannot apply)."""
    p = f"/edge-check-{uuid.uuid4().hex[:6]}"
    with WireClient(port(cluster, 1)) as c:
        assert c.create(p)[0] == 0
        try:
            r = c.call(wire.CHECK, Writer().string(p).int(0).bytes())
            assert r.err in (0, wire.UNIMPLEMENTED, wire.BAD_ARGUMENTS, wire.MARSHALLING_ERROR), r.err
        except (wire.Closed, OSError):
            pass
    time.sleep(1.0)
    zk.wait_until(lambda: all(cluster.modes().values()), 30, what="every server to keep serving")
    w = clients(2)
    w.set(p, b"after")
    for i in ALL:
        r = clients(i)
        r.sync(p)
        assert r.get(p)[0] == b"after", f"server {i}"
    w.delete(p)


def test_reads_of_malformed_paths_answer_as_zookeeper_does(cluster):
    """ZooKeeper's read ops check no path but for a NUL: a path no znode can have is NoNode (a
    typo such as a trailing slash reads as missing, not as an error), "" names the root, and a
    watch can be added on any path."""
    with WireClient(port(cluster, 3)) as c:
        assert c.exists("/zookeeper/")[0] == wire.NO_NODE
        assert c.exists("zookeeper")[0] == wire.NO_NODE
        assert c.get("/zookeeper//quota")[0] == wire.NO_NODE
        assert c.all_children_number("x")[0] == wire.NO_NODE
        assert c.exists("/a\0b")[0] == wire.BAD_ARGUMENTS
        err, (kids, _) = c.children("")
        assert err == 0 and "zookeeper" in kids
        assert c.add_watch("x", 0) == 0
        # a write still refuses them
        assert c.create("edge-bad")[0] == wire.BAD_ARGUMENTS
        c.close_session()
