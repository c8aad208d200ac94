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

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
import zk  # noqa: E402
from test_live import ENSEMBLE, EnsembleObserver, leader_zxid, same  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (zk.JAVA_DIR / "zookeeper.jar").exists() or not Path(ENSEMBLE).exists(),
    reason="needs the zookeeper package and a built ensemble binary",
)


def srvr(port: int, key: str) -> str:
    try:
        for line in zk.four_letter(port, "srvr").splitlines():
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def test_observer_serves_through_the_core():
    root = Path(tempfile.mkdtemp(prefix="ensemble-live-core-"))
    p = zk.free_ports(12)
    lines = [f"server.{i + 1}=127.0.0.1:{p[3 * i + 1]}:{p[3 * i + 2]}:participant;127.0.0.1:{p[3 * i]}"
             for i in range(3)]
    lines.append(f"server.4=127.0.0.1:{p[10]}:{p[11]}:observer;127.0.0.1:{p[9]}")
    zks = [zk.ZkServer(root, i + 1, p[3 * i], lines, "reconfigEnabled=false") for i in range(3)]
    e4 = EnsembleObserver(root, 4, p[9], lines)
    w = o = c = None
    try:
        for z in zks:
            z.start()
        zk.wait(lambda: all(z.serving() for z in zks), 90, "ZooKeeper serving")
        hosts = ",".join(f"127.0.0.1:{z.client_port}" for z in zks)
        c = load.load(hosts)
        log = open(e4.log_path, "w")
        e4.proc = subprocess.Popen([ENSEMBLE, "zk-observe", str(e4.cfg), "--seconds", "240",
                                    "--dump", str(e4.dump)],
                                   stdout=log, stderr=subprocess.STDOUT)
        log.close()

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
        w.create("/core-watch", b"0")
        o.sync("/")
        fired: list[tuple[str, str]] = []
        seen: dict[str, bytes] = {}

        def on_event(e):
            fired.append((e.type, e.path))
            if e.type == "CHANGED":
                seen[e.path] = o.get(e.path)[0]

        o.get("/core-watch", watch=on_event)
        o.get_children("/core-watch", watch=on_event)
        assert o.exists("/core-watch/kid", watch=on_event) is None
        w.set("/core-watch", b"1")
        w.create("/core-watch/kid", b"k")
        zk.wait(lambda: len(fired) >= 3, 30, "three watch events from the core")
        assert sorted(fired) == sorted([("CHANGED", "/core-watch"), ("CHILD", "/core-watch"),
                                        ("CREATED", "/core-watch/kid")]), fired
        assert seen["/core-watch"] == b"1", seen

        # writes through the core's learner: forwarded REQUESTs, answered at their txn
        assert o.create("/via-core", b"x") == "/via-core"
        seq = o.create("/via-core/s-", b"", sequence=True)
        eph = o.create("/via-core/eph", b"e", ephemeral=True)
        st = o.set("/via-core", b"y")
        assert st.version == 1 and o.get("/via-core")[0] == b"y"
        with pytest.raises(NodeExistsError):
            o.create("/via-core", b"again")
        t = o.transaction()
        t.create("/via-core/m1", b"1")
        t.set_data("/via-core/m1", b"2")
        t.delete(seq)
        r = t.commit()
        assert r[0] == "/via-core/m1" and r[1].version == 1 and r[2] is True, r
        w.sync("/")
        assert w.get("/via-core")[0] == b"y"
        assert w.get("/via-core/m1")[0] == b"2"
        assert w.exists(seq) is None
        assert w.exists(eph).ephemeralOwner == session

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
        for k in (o, w, c):
            if k is not None:
                try:
                    k.stop()
                except Exception:  # noqa: BLE001
                    pass
        e4.close()
        zk.stop_all(zks)
        print(e4.log()[-4000:] if e4.log_path.exists() else "")
