"""An Ensemble observer following a reconfiguration of the live Apache ZooKeeper 3.8 ensemble
it observes (issue 17 item 3): with reconfigEnabled=true, a ZooKeeper voter is removed by
`reconfig -remove`; the leader INFORMANDACTIVATEs the reconfig txn to its observers. The
Ensemble observer applies it (its /zookeeper/config equal to ZooKeeper's), keeps up with the
writes after it, and takes the new configuration as the one it follows: with the removed
server still running, stopping the two remaining voters is enough for its cut-over (with the
old membership it would wait for the removed one to stop too)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from kazoo.client import KazooClient

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
import zk  # noqa: E402
from live import (close_clients, leader_zxid, needs_zookeeper, same, start_zookeeper,  # noqa: E402
                  zookeeper_with_observers)

pytestmark = needs_zookeeper


def test_observer_follows_a_reconfig():
    root = Path(tempfile.mkdtemp(prefix="ensemble-reconfig-"))
    # zk.py's zoo.cfg has reconfigEnabled=true; reconfig is a superuser's operation, or
    # anyone's with skipACL
    zks, (e4,), _ = zookeeper_with_observers(root, 1, extra="")
    w = o = None
    try:
        hosts = start_zookeeper(zks, ["-Dzookeeper.skipACL=yes"])
        w = KazooClient(hosts=hosts, timeout=20)
        w.start(timeout=30)
        w.create("/before-reconfig", b"b")
        e4.observe()

        def caught_up():
            want = leader_zxid(zks)
            return want is not None and e4.zxid() == want

        zk.wait(caught_up, 60, "the observer synced with the leader")
        # remove a follower (the leader stays, so no leadership hand-over)
        gone = next(z for z in zks if z.mode() == "follower")
        config, _ = w.reconfig(joining=None, leaving=str(gone.sid), new_members=None)
        text = config.decode()
        assert f"server.{gone.sid}=" not in text and "server.4=" in text, text
        for i in range(20):
            w.create(f"/after-reconfig-{i}", str(i).encode())
        zk.wait(caught_up, 60, "the observer caught up past the reconfig")
        w.sync("/")
        same(load.walk(w), e4.replica()[0])
        # its clients read the configuration in force
        o = KazooClient(hosts=f"127.0.0.1:{e4.client_port}", timeout=20)
        o.start(timeout=30)
        assert o.get("/zookeeper/config")[0] == w.get("/zookeeper/config")[0]
        # and its 4lw conf shows the configuration in force: the core reloaded it
        conf = zk.four_letter(e4.client_port, "conf")
        version = next(line for line in text.splitlines() if line.startswith("version="))
        assert version in conf.splitlines(), conf
        assert f"server.{gone.sid}=" not in conf and "server.4=" in conf, conf
        assert o.get("/after-reconfig-19")[0] == b"19"
        o.stop()
        o.close()
        o = None
        # The removed server keeps running; the two voters left are stopped (followers
        # first): the observer follows the new membership, so it cuts over.
        rest = [z for z in zks if z is not gone]
        rest.sort(key=lambda z: z.mode() == "leader")
        for z in rest:
            z.stop()
        assert e4.proc.wait(timeout=90) == 0, e4.log()
        out = e4.log()
        print(out)
        assert gone.proc.poll() is None, "the removed server was to stay up"
        assert "cut over at zxid" in out, out
        voters = ",".join(str(z.sid) for z in sorted(rest, key=lambda z: z.sid))
        assert f"activated, voters {voters}" in out, out
        assert f"in force: voters {voters};" in out, out
        # the Ensemble server the observer became serves the same tree
        e4.start()
        o = KazooClient(hosts=f"127.0.0.1:{e4.client_port}", timeout=20)
        o.start(timeout=60)
        zk.wait(lambda: o.exists("/after-reconfig-19") is not None, 60, "Ensemble serving")
        o.create("/after-cut-over", b"")
        assert o.get("/before-reconfig")[0] == b"b"
    finally:
        close_clients(o, w)
        e4.close()
        zk.stop_all(zks)
