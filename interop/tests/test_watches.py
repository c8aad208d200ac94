"""Every watch kind: data, exists, child (kazoo, one-shot), persistent and persistent recursive
(addWatch, on the wire), removal (removeWatches / checkWatches), watches set on one server and
fired by a write on another, and watches carried over a reconnect (setWatches)."""

import socket
import threading
import time
import uuid

import pytest
from kazoo.protocol.states import EventType

from conftest import ALL, OBSERVER
from harness import wire, zk
from harness.wire import WireClient


@pytest.mark.parametrize("watcher_on,writer_on", [(1, 2), (OBSERVER, 3), (2, OBSERVER)])
def test_data_watch_changed_then_deleted(clients, root, watcher_on, writer_on):
    w, m = clients(watcher_on), clients(writer_on)
    p = f"{root}/d"
    m.create(p, b"0")
    ev = zk.Events()
    w.sync(p)
    data, _ = w.get(p, watch=ev)
    m.set(p, b"1")
    e = ev.get()
    assert e.type == EventType.CHANGED and e.path == p
    # one-shot: the next change is not reported until the watch is set again
    m.set(p, b"2")
    ev.none(1.0)
    w.get(p, watch=ev)
    m.delete(p)
    e = ev.get()
    assert e.type == EventType.DELETED and e.path == p


def test_exists_watch_on_missing_node_fires_created(clients, root):
    w, m = clients(1), clients(3)
    p = f"{root}/later"
    ev = zk.Events()
    assert w.exists(p, watch=ev) is None
    m.create(p, b"")
    e = ev.get()
    assert e.type == EventType.CREATED and e.path == p
    # an exists watch on a present node fires on change
    w.exists(p, watch=ev)
    m.set(p, b"x")
    assert ev.get().type == EventType.CHANGED


def test_child_watch(clients, root):
    w, m = clients(2), clients(OBSERVER)
    ev = zk.Events()
    w.sync(root)
    assert w.get_children(root, watch=ev) == []
    m.create(f"{root}/k1", b"")
    e = ev.get()
    assert e.type == EventType.CHILD and e.path == root
    w.get_children(root, watch=ev)
    m.set(f"{root}/k1", b"data")  # a child's data change is not a child event
    ev.none(1.0)
    m.delete(f"{root}/k1")
    assert ev.get().type == EventType.CHILD
    # deleting the watched node itself: a child watch reports DELETED
    m.create(f"{root}/k2", b"")
    w.sync(f"{root}/k2")
    w.get_children(f"{root}/k2", watch=ev)
    m.delete(f"{root}/k2")
    e = ev.get()
    assert e.type == EventType.DELETED and e.path == f"{root}/k2"


def test_same_watcher_fires_once_per_event(clients, root):
    """A data watch and an exists watch set with one watcher object are one watch."""
    w, m = clients(1), clients(2)
    p = f"{root}/once"
    m.create(p, b"")
    ev = zk.Events()
    w.sync(p)
    w.get(p, watch=ev)
    w.exists(p, watch=ev)
    m.set(p, b"x")
    ev.get()
    ev.none(1.0)


def test_watch_event_comes_before_the_read_that_sees_the_change(clients, root):
    """A client sees the notification before it can read the data that fired it: after the
    writer is done, a read by the watcher that shows the new value must come after the event."""
    w, m = clients(OBSERVER), clients(1)
    p = f"{root}/order"
    m.create(p, b"old")
    w.sync(p)
    for i in range(10):
        seen = threading.Event()
        w.get(p, watch=lambda e: seen.set())
        m.set(p, f"new{i}".encode())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            data, _ = w.get(p)
            if data == f"new{i}".encode():
                break
        assert seen.wait(5), "event never came"
        # kazoo dispatches callbacks on a thread; the event was queued before the reply
        # (the wire-level check is test_wire_event_precedes_reply)


def test_wire_event_precedes_reply(cluster, root, clients):
    """On the wire, the notification frame precedes the reply that shows the change."""
    with WireClient(cluster.servers[2].client_port) as c:
        p = f"{root}/wire-order"
        assert c.create(p, b"a")[0] == 0
        for i in range(5):
            assert c.get(p, watch=True)[0] == 0
            clients(3).set(p, f"v{i}".encode())
            # read until the new value is visible; the event must already be in c.events
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                err, (data, _) = c.get(p)
                if data == f"v{i}".encode():
                    break
            assert c.events, "read the new value before its watch event"
            e = c.events.pop(0)
            assert e.type == wire.NODE_DATA_CHANGED and e.path == p and e.state == 3
        c.close_session()


def test_persistent_watch(cluster, clients, root):
    p = f"{root}/pers"
    m = clients(1)
    with WireClient(cluster.servers[OBSERVER].client_port) as c:
        assert c.add_watch(p, wire.PERSISTENT_WATCH) == 0
        m.create(p, b"")
        m.set(p, b"1")
        m.set(p, b"2")
        m.create(f"{p}/kid", b"")
        m.create(f"{p}/kid/grandkid", b"")  # not reported: not recursive
        m.set(f"{p}/kid", b"x")  # not reported: another node's data
        m.delete(f"{p}/kid/grandkid")
        m.delete(f"{p}/kid")
        m.delete(p)
        got = [(e.type, e.path) for e in (c.wait_event(10) for _ in range(6))]
        assert got == [
            (wire.NODE_CREATED, p),
            (wire.NODE_DATA_CHANGED, p),
            (wire.NODE_DATA_CHANGED, p),
            (wire.NODE_CHILDREN_CHANGED, p),
            (wire.NODE_CHILDREN_CHANGED, p),
            (wire.NODE_DELETED, p),
        ]
        assert c.no_event(1.0) is None
        # it persists after the node is gone
        m.create(p, b"")
        assert (c.wait_event(10).type) == wire.NODE_CREATED
        m.delete(p)
        assert (c.wait_event(10).type) == wire.NODE_DELETED
        c.close_session()


def test_persistent_recursive_watch(cluster, clients, root):
    p = f"{root}/rec"
    m = clients(2)
    with WireClient(cluster.servers[1].client_port) as c:
        assert c.add_watch(p, wire.PERSISTENT_RECURSIVE_WATCH) == 0
        m.create(p, b"")
        m.create(f"{p}/a", b"")
        m.create(f"{p}/a/b", b"")
        m.set(f"{p}/a/b", b"x")
        m.delete(f"{p}/a/b")
        m.create(f"{root}/rec-sibling", b"")  # outside: not reported
        got = [(e.type, e.path) for e in (c.wait_event(10) for _ in range(5))]
        # no NodeChildrenChanged in recursive mode
        assert got == [
            (wire.NODE_CREATED, p),
            (wire.NODE_CREATED, f"{p}/a"),
            (wire.NODE_CREATED, f"{p}/a/b"),
            (wire.NODE_DATA_CHANGED, f"{p}/a/b"),
            (wire.NODE_DELETED, f"{p}/a/b"),
        ]
        assert c.no_event(1.0) is None
        c.close_session()


def test_persistent_watch_and_one_shot_coexist(cluster, clients, root):
    p = f"{root}/both"
    m = clients(3)
    m.create(p, b"")
    with WireClient(cluster.servers[2].client_port) as c:
        c.sync(p)
        assert c.add_watch(p, wire.PERSISTENT_WATCH) == 0
        assert c.get(p, watch=True)[0] == 0
        m.set(p, b"1")
        e = c.wait_event(10)
        assert (e.type, e.path) == (wire.NODE_DATA_CHANGED, p)
        # the one-shot and persistent watch on one connection yield one notification
        assert c.no_event(1.0) is None
        # (whether the persistent watch outlives the one-shot differs: ZooKeeper 3.8 keeps one
        # mode per path and connection, so it does not; 3.9 fixed that, ZOOKEEPER-4466)
        c.close_session()


def test_remove_and_check_watches(cluster, clients, root):
    p = f"{root}/rm"
    m = clients(1)
    m.create(p, b"")
    with WireClient(cluster.servers[3].client_port) as c:
        c.sync(p)
        # nothing to remove
        assert c.check_watches(p, wire.WT_DATA) == wire.NO_WATCHER
        assert c.remove_watches(p, wire.WT_ANY) == wire.NO_WATCHER
        assert c.get(p, watch=True)[0] == 0
        assert c.children(p, watch=True)[0] == 0
        assert c.check_watches(p, wire.WT_DATA) == 0
        assert c.check_watches(p, wire.WT_CHILDREN) == 0
        assert c.remove_watches(p, wire.WT_DATA) == 0
        assert c.check_watches(p, wire.WT_DATA) == wire.NO_WATCHER
        assert c.check_watches(p, wire.WT_CHILDREN) == 0
        m.set(p, b"x")  # the data watch is gone
        assert c.no_event(1.0) is None
        m.create(f"{p}/k", b"")  # the child watch is still there
        e = c.wait_event(10)
        assert (e.type, e.path) == (wire.NODE_CHILDREN_CHANGED, p)
        # removing a persistent watch
        assert c.add_watch(p, wire.PERSISTENT_WATCH) == 0
        assert c.remove_watches(p, wire.WT_ANY) == 0
        m.set(p, b"y")
        assert c.no_event(1.0) is None
        assert c.remove_watches(f"{root}/never", wire.WT_ANY) == wire.NO_WATCHER
        c.close_session()


def test_watch_count_in_wchs(cluster, clients, root):
    p = f"{root}/wchs"
    m = clients(1)
    m.create(p, b"")
    w = clients(2)
    w.sync(p)
    w.get(p, watch=lambda e: None)
    w.get_children(p, watch=lambda e: None)
    out = cluster.fourlw(2, "wchp")
    assert p in out


class Proxy:
    """A one-hop TCP proxy to a server, whose connections can be cut (to force a reconnect)."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.paused = False
        self.lock = threading.Lock()
        self.stop_flag = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.lsock.settimeout(0.2)
        while not self.stop_flag:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                continue
            if self.paused:
                a.close()
                continue
            try:
                b = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                a.close()
                continue
            with self.lock:
                self.conns.append((a, b))
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pipe, args=(x, y), daemon=True).start()

    @staticmethod
    def _pipe(x, y):
        try:
            while True:
                d = x.recv(65536)
                if not d:
                    break
                y.sendall(d)
        except OSError:
            pass
        for s in (x, y):
            try:
                s.close()
            except OSError:
                pass

    def cut(self):
        with self.lock:
            for a, b in self.conns:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()
            self.conns = []

    def close(self):
        self.stop_flag = True
        self.cut()
        self.lsock.close()


def test_session_survives_a_connection_cut(cluster, clients, root):
    """The client's TCP connection is cut (through a proxy); it reconnects within the session
    timeout and keeps its session and ephemerals. (kazoo drops its watches on a disconnect and
    tells them with a NONE event; re-registration by setWatches is tested on the wire below and
    by the Java client.)"""
    proxy = Proxy(cluster.servers[1].client_port)
    try:
        from kazoo.client import KazooClient

        w = KazooClient(hosts=f"127.0.0.1:{proxy.port}", timeout=10)
        w.start(timeout=20)
        try:
            sid = w.client_id[0]
            e = w.create(f"{root}/eph", b"", ephemeral=True)
            ev = zk.Events()
            w.get(e, watch=ev)
            proxy.paused = True
            proxy.cut()
            zk.wait_until(lambda: not w.connected, 10, what="the client to notice the cut")
            assert ev.get(10).type == EventType.NONE
            time.sleep(1.0)
            proxy.paused = False
            zk.wait_until(lambda: w.connected, 20, what="the client to reconnect")
            assert w.client_id[0] == sid
            assert w.exists(e).ephemeralOwner == sid
        finally:
            zk.close_quietly(w)
    finally:
        proxy.close()


def test_set_watches_on_the_wire(cluster, clients, root):
    """setWatches with a relativeZxid older than a change fires the watch at once; with a
    current one it just registers the watch."""
    p = f"{root}/sw"
    m = clients(2)
    m.create(p, b"")
    with WireClient(cluster.servers[1].client_port) as c:
        c.sync(p)
        err, (_, st) = c.get(p)
        seen = c.last_zxid
        m.set(p, b"changed")
        c.sync(p)
        # relative zxid before the change: fires NodeDataChanged immediately
        assert c.set_watches(st.mzxid, data=[p]) == 0
        e = c.wait_event(10)
        assert (e.type, e.path) == (wire.NODE_DATA_CHANGED, p)
        # a current zxid: registered, fires on the next change
        c.sync(p)
        assert c.set_watches(c.last_zxid, data=[p], exist=[f"{p}-nope"]) == 0
        assert c.no_event(0.5) is None
        m.set(p, b"again")
        e = c.wait_event(10)
        assert (e.type, e.path) == (wire.NODE_DATA_CHANGED, p)
        m.create(f"{p}-nope", b"")
        e = c.wait_event(10)
        assert (e.type, e.path) == (wire.NODE_CREATED, f"{p}-nope")
        # setWatches2 carries persistent watches
        assert c.set_watches2(c.last_zxid, persistent=[p], recursive=[f"{p}-nope"]) == 0
        m.set(p, b"p1")
        m.create(f"{p}-nope/deep", b"")
        got = sorted((e.type, e.path) for e in (c.wait_event(10), c.wait_event(10)))
        assert got == sorted([(wire.NODE_DATA_CHANGED, p), (wire.NODE_CREATED, f"{p}-nope/deep")])
        del seen
        c.close_session()
    m.delete(f"{p}-nope", recursive=True)
