"""`ensemble zk-observe` (issue 17): the Ensemble observer of a live Apache
ZooKeeper 3.8 ensemble serving its clients through the node's own core (the foreign-leader
role, core/src/foreign.rs), not the observer's client port.

A real 3-node ZooKeeper lists the Ensemble server as `server.4=...:observer`. The node's
runtime runs with its core fed by the observer thread; its 4lw `srvr` says observer. A kazoo
client connected to it reads the tree ZooKeeper serves (every stat, data and ACL), its watches
fire on ZooKeeper's txns, /zookeeper/config shows ZooKeeper's configuration (a read after the event sees the change), and its session and writes
go to ZooKeeper's leader through the core's learner messages (createSession, create,
sequential, ephemeral, setData, multi, a failing create, sync as REQUESTs): answered when their
txn comes back, and present in ZooKeeper. The ZooKeeper leader is then killed: the observer
syncs with the new one, the client's session is re-attached (REVALIDATE) and its ephemeral
stays, and its reads equal ZooKeeper's again."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
import zk  # noqa: E402
from live import (check_watches, close_clients, leader_zxid, needs_zookeeper, same,  # noqa: E402
                  srvr, start_zookeeper, write_through, zookeeper_with_observers)

pytestmark = needs_zookeeper


def test_observer_serves_through_the_core():
    root = Path(tempfile.mkdtemp(prefix="ensemble-live-core-"))
    zks, (e4,), _ = zookeeper_with_observers(root, 1)
    w = o = c = None
    try:
        hosts = start_zookeeper(zks)
        c = load.load(hosts)
        e4.observe(seconds=240, cut_over=False)

        def caught_up():
            want = leader_zxid(zks)
            return (want is not None and srvr(e4.client_port, "Mode") == "observer"
                    and srvr(e4.client_port, "Zxid") == hex(want))

        zk.wait(caught_up, 90, "the core serving as an observer at the leader's zxid")
        w = KazooClient(hosts=hosts, timeout=20, auth_data=[("digest", "alice:secret")])
        w.start(timeout=30)
        w.sync("/")
        want = load.walk(w)
        o = KazooClient(hosts=f"127.0.0.1:{e4.client_port}", timeout=20,
                        auth_data=[("digest", "alice:secret")])
        o.start(timeout=30)
        session = o.client_id[0]
        # the session was made by ZooKeeper's leader: ZooKeeper's servers know it
        assert w.exists("/") is not None
        o.sync("/")
        same(want, load.walk(o))
        # /zookeeper/config: ZooKeeper's configuration, as its own observers show it
        zk_config = w.get("/zookeeper/config")[0]
        assert b"server.1=" in zk_config and b"version=" in zk_config, zk_config
        assert o.get("/zookeeper/config")[0] == zk_config

        # watches fire on ZooKeeper's txns; a read after the event sees the change
        check_watches(w, o, "/core-watch")

        # writes through the core's learner: forwarded REQUESTs, answered at their txn
        eph = write_through(o, w, "/via-core")

        # the ZooKeeper leader dies: the observer syncs with the next; the session stays
        leader = next(z for z in zks if z.mode() == "leader")
        leader_epoch = o.exists("/via-core").czxid >> 32
        leader.stop()
        zk.wait(lambda: any(z is not leader and z.mode() == "leader" for z in zks), 90,
                "a new ZooKeeper leader")
        rest = [z for z in zks if z is not leader]
        # a new leader's srvr Zxid is its epoch's start: the observer is judged by a write
        # through it, committed in the new epoch once it has synced with the new leader

        def wrote():
            try:
                o.create("/via-core/after", b"a")
            except NodeExistsError:
                pass  # made by an attempt whose answer the reconnect lost
            except Exception:  # noqa: BLE001 - the observer between leaders
                return False
            return True

        zk.wait(wrote, 90, "a write through the core under the new leader")
        assert o.exists("/via-core/after").czxid >> 32 > leader_epoch, "written in the new epoch"
        zk.wait(lambda: o.client_id is not None and o.exists(eph) is not None, 30,
                "the client back on its session")
        assert o.client_id[0] == session
        w2 = KazooClient(hosts=",".join(f"127.0.0.1:{z.client_port}" for z in rest), timeout=20,
                         auth_data=[("digest", "alice:secret")])
        w2.start(timeout=30)
        w2.sync("/")
        assert w2.exists(eph).ephemeralOwner == session
        o.sync("/")
        same(load.walk(w2), load.walk(o))
        w2.stop()
    finally:
        close_clients(o, w, c)
        e4.close()
        zk.stop_all(zks)
        print(e4.log()[-4000:] if e4.log_path.exists() else "")
