"""Migration from Apache ZooKeeper 3.8 and back (issue 17, items 1 and 2), end to end:

a real 3-node ZooKeeper ensemble is loaded by clients (load.py: persistent, sequential with
gaps, ACL'd, multi, deletes, a 500 KiB value, TTL and container nodes, a live session's
ephemerals; a small snapCount leaves snapshots plus a log tail) and walked, then stopped; each
server's dataDir is imported into an Ensemble server (`ensemble import`) listening on the same
client port; the Ensemble ensemble serves a tree equal to the walk in every stat field, data
and ACL, the loader's session reconnects and keeps its ephemerals, sequential creates continue
the numbering; then `ensemble export` and Apache ZooKeeper started on the export serves the
same tree.

The loader's own kazoo client is left running across the switch: it reconnects to the Ensemble
servers with its pre-migration session id and the password ZooKeeper gave it, gets its session
back (never SESSION_EXPIRED), writes in it, and its ephemerals go when it closes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
import zk  # noqa: E402

REPO = HERE.parent.parent
ENSEMBLE = os.environ.get("ENSEMBLE_BIN", str(REPO / "target/release/ensemble"))

pytestmark = pytest.mark.skipif(
    not (zk.JAVA_DIR / "zookeeper.jar").exists() or not Path(ENSEMBLE).exists(),
    reason="needs the zookeeper package and a built ensemble binary",
)


def ensemble(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([ENSEMBLE, *args], capture_output=True, text=True, timeout=120)
    print(f"$ ensemble {' '.join(args)}\n{r.stdout}{r.stderr}")
    return r


def user_tree(walk: dict) -> dict:
    """The clients' part of the tree: /zookeeper is each server's own (its config node)."""
    return {p: v for p, v in walk.items() if not p.startswith("/zookeeper")}


def diff(a: dict, b: dict) -> list:
    out = [f"{p}: {a.get(p)} != {b.get(p)}" for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)]
    return out[:10]


def test_zookeeper_to_ensemble_and_back():
    root = Path(tempfile.mkdtemp(prefix="ensemble-migrate-"))
    zks = zk.ensemble(root, 3)
    ens_cfgs: list[Path] = []
    c = None
    try:
        hosts = ",".join(f"127.0.0.1:{z.client_port}" for z in zks)
        c = load.load(hosts, zkcli=load.zkcli_runner(hosts))
        session, passwd = c.client_id
        states: list[str] = []
        c.add_listener(lambda st: states.append(st))
        before = user_tree(load.walk(c))
        assert "/big" in before and "/live/leader" in before and "/ttl" in before
        # All at once: stopping one by one would elect new leaders in between.
        zk.stop_all(zks)
        for z in zks:
            files = sorted(p.name for p in (z.data_dir / "version-2").iterdir())
            assert any(f.startswith("snapshot.") for f in files), files
            assert any(f.startswith("log.") for f in files), files

        # Ensemble servers on the same client ports, new quorum ports.
        ports = zk.free_ports(6)
        servers = [f"server.{i + 1}=127.0.0.1:{ports[2 * i]}:{ports[2 * i + 1]}" for i in range(3)]
        for z in zks:
            d = root / f"ens{z.sid}"
            (d / "data").mkdir(parents=True)
            (d / "data" / "myid").write_text(f"{z.sid}\n")
            cfg = d / "zoo.cfg"
            cfg.write_text("\n".join([
                "tickTime=500", "initLimit=20", "syncLimit=10",
                f"dataDir={d / 'data'}", f"clientPort={z.client_port}",
                "clientPortAddress=127.0.0.1", "extendedTypesEnabled=true", "maxSessionTimeout=60000",
                "4lw.commands.whitelist=*", "admin.enableServer=false", *servers,
            ]) + "\n")
            ens_cfgs.append(cfg)
            # start on ZooKeeper's files says what to do instead of starting empty
            zkcfg = d / "on-zk-files.cfg"
            zkcfg.write_text(cfg.read_text().replace(str(d / "data"), str(z.data_dir)))
            r = ensemble("start", str(zkcfg))
            assert r.returncode != 0 and "ensemble import" in r.stdout + r.stderr
            r = ensemble("import", "--zk-data-dir", str(z.data_dir), str(cfg))
            assert r.returncode == 0, r.stderr
            assert "digests checked" in r.stdout
            # a second import refuses the now non-empty dataDir
            assert ensemble("import", "--zk-data-dir", str(z.data_dir), str(cfg)).returncode != 0
        for cfg in ens_cfgs:
            assert ensemble("start", str(cfg)).returncode == 0
        zk.wait(lambda: all(zk.four_letter(z.client_port, "srvr").count("Mode:") for z in zks), 60,
                "Ensemble serving")

        w = KazooClient(hosts=hosts, timeout=20, auth_data=[("digest", "alice:secret")])
        w.start(timeout=30)
        after = user_tree(load.walk(w))
        # The loader's session came over live, with its ephemerals and its timeout.
        assert after == before, diff(before, after)
        assert int(after["/live/leader"]["stat"][7]) == session
        # The loader's client re-attached on its own, with its session id and ZooKeeper's
        # password for it: the same session, never lost, its ephemerals its own.
        zk.wait(lambda: c.connected, 120, "the loader's client reconnected")
        assert KazooState.LOST not in states, states
        assert c.client_id == (session, passwd), (c.client_id, session)
        assert c.get("/live/leader")[1].ephemeralOwner == session
        c.create("/live/after-switch", b"", ephemeral=True)
        assert w.get("/live/after-switch")[1].ephemeralOwner == session
        c.stop()
        c.close()
        c = None
        w.sync("/")
        gone = [p for p in ("/live/leader", "/live/after-switch") if w.exists(p)]
        assert not gone, f"ephemerals outlived their session's close: {gone}"
        # sequential names continue after the gaps
        seq = w.create("/app/queue/item-", b"next", sequence=True)
        assert seq == "/app/queue/item-%010d" % 12, seq
        w.sync("/")
        final = user_tree(load.walk(w))
        assert final["/app/queue/item-%010d" % 12]["data"] == b"next".hex()
        w.stop()
        w.close()
        for cfg in ens_cfgs:
            ensemble("stop", str(cfg))

        # The way back: ZooKeeper on the export serves the same tree with the same zxids.
        out = root / "back"
        r = ensemble("export", str(ens_cfgs[0]), "--zk-data-dir", str(out))
        assert r.returncode == 0, r.stderr
        back = zk.ZkServer(root / "back-zk", 1, zk.free_ports(1)[0], [])
        back.data_dir.rmdir()
        back.data_dir = out
        back.cfg.write_text(back.cfg.read_text().replace(str(root / "back-zk" / "zk1" / "data"), str(out)))
        back.start()
        try:
            zk.wait(back.serving, 60, "ZooKeeper on the export")
            b = KazooClient(hosts=f"127.0.0.1:{back.client_port}", timeout=20,
                            auth_data=[("digest", "alice:secret")])
            b.start(timeout=30)
            exported = user_tree(load.walk(b))
            b.stop()
            b.close()
        finally:
            back.stop()
        assert exported == final, diff(final, exported)
    finally:
        if c is not None:
            c.stop()
            c.close()
        for cfg in ens_cfgs:
            subprocess.run([ENSEMBLE, "stop", str(cfg)], capture_output=True, timeout=60)
        for z in zks:
            z.stop()
