"""An Ensemble server inside a live Apache ZooKeeper 3.8 ensemble (issue 17 item 3, steps b
and c): a real 3-node ZooKeeper lists the Ensemble server as `server.4=...:observer`.

- `ensemble start` on that config refuses, naming the ZooKeeper servers (it never joins a
  ZooKeeper ensemble half-way).
- `ensemble zk-observe` learns the leader on the election port (ZooKeeper's initial message
  and FLE notifications), registers on its quorum port (OBSERVERINFO, LEADERINFO, ACKEPOCH),
  syncs (a SNAP of ZooKeeper's database), applies INFORMs checked against ZooKeeper's digests
  and answers PINGs. Under write load the ZooKeeper leader is killed: the observer learns the
  new leader and syncs again; its replica's zxid only grows, and once the writes stop it
  equals what the ZooKeeper leader serves in every stat field, data and ACL.
- Its client port (step d): kazoo and zkCli.sh connected to the observer read what was
  written through ZooKeeper (every stat, data and ACL equal), its watches fire on the txns
  ZooKeeper INFORMs (and a read after the event sees the change).
- Writes through it (step e): its session is made by ZooKeeper's leader (a forwarded
  createSession), creates / sequential / ephemeral / setData / delete / multi / a failing
  create / sync are forwarded as REQUESTs and answered at their INFORM, and land in
  ZooKeeper; under the leader's death a second writer goes through the observer and every
  write it saw acknowledged is in ZooKeeper; the session survives (the client reconnects with
  its session id, REVALIDATEd by the new leader) and its ephemeral stays.
- The cut-over (step f): the ZooKeeper servers are stopped; `zk-observe --cut-over` writes its
  replica (sessions and ephemerals) as the Ensemble server's state and exits; `ensemble start`
  continues from the same zxid; the observer's client reconnects with its session id, its
  ephemeral kept, the tree equal in every field to what it read before; the write pause (from
  stopping ZooKeeper to the first acknowledged write on Ensemble) is printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError

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


def read_dump(path: Path) -> tuple[dict, dict]:
    """The observer's replica, as load.walk shows a tree, and its summary line."""
    tree, summary = {}, {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if "path" not in r:
            summary = r
            continue
        data = r["data"]
        tree[r["path"]] = {
            "data": data,
            "stat": [r["czxid"], r["mzxid"], r["ctime"], r["mtime"], r["version"], r["cversion"],
                     r["aversion"], r["ephemeralOwner"], len(bytes.fromhex(data or "")),
                     r["numChildren"], r["pzxid"]],
            "acl": sorted(tuple(a) for a in r["acl"]),
        }
    return tree, summary


def leader_zxid(zks) -> int | None:
    for z in zks:
        if z.proc and z.proc.poll() is None and z.mode() == "leader":
            for line in zk.four_letter(z.client_port, "srvr").splitlines():
                if line.startswith("Zxid:"):
                    return int(line.split(":", 1)[1].strip(), 16)
    return None


def user_tree(walk: dict) -> dict:
    """The clients' part of the tree: /zookeeper is each server's own."""
    return {p: v for p, v in walk.items() if not p.startswith("/zookeeper")}


def hide_hashes(want: dict, got: dict) -> dict:
    """ZooKeeper shows a digest ACL's hash as 'x' to a client without ADMIN on the node: the
    observer's full id is compared by its user there."""
    out = {}
    for p, v in got.items():
        shown = {(perms, scheme, i.split(":")[0]) for perms, scheme, i in want.get(p, {}).get("acl", [])
                 if scheme == "digest" and i.endswith(":x")}
        acl = sorted((perms, scheme, f"{i.split(':')[0]}:x" if (perms, scheme, i.split(":")[0]) in shown else i)
                     for perms, scheme, i in v["acl"])
        out[p] = {**v, "acl": acl}
    return out


def same(want: dict, got: dict) -> None:
    want, got = user_tree(want), user_tree(got)
    got = hide_hashes(want, got)
    bad = [f"{p}:\n  zookeeper {want.get(p)}\n  observer  {got.get(p)}"
           for p in sorted(set(want) | set(got)) if want.get(p) != got.get(p)]
    if bad:
        pytest.fail(f"{len(bad)} znodes differ:\n" + "\n".join(bad[:8]))


def test_observer_follows_live_zookeeper():
    root = Path(tempfile.mkdtemp(prefix="ensemble-live-"))
    p = zk.free_ports(12)
    lines = [f"server.{i + 1}=127.0.0.1:{p[3 * i + 1]}:{p[3 * i + 2]}:participant;127.0.0.1:{p[3 * i]}"
             for i in range(3)]
    lines.append(f"server.4=127.0.0.1:{p[10]}:{p[11]}:observer;127.0.0.1:{p[9]}")
    zks = [zk.ZkServer(root, i + 1, p[3 * i], lines, "reconfigEnabled=false") for i in range(3)]
    d = root / "ens4"
    (d / "data").mkdir(parents=True)
    (d / "data" / "myid").write_text("4\n")
    cfg = d / "zoo.cfg"
    cfg.write_text("\n".join([
        "tickTime=500", "initLimit=20", "syncLimit=10", f"dataDir={d / 'data'}",
        f"clientPort={p[9]}", "clientPortAddress=127.0.0.1", "extendedTypesEnabled=true",
        "4lw.commands.whitelist=*", "admin.enableServer=false", "maxSessionTimeout=60000", *lines,
    ]) + "\n")
    ecfg = d / "ensemble.cfg"
    started = False
    dump = d / "replica.jsonl"
    obs = None
    c = None
    o = None
    try:
        for z in zks:
            z.start()
        zk.wait(lambda: all(z.serving() for z in zks), 90, "ZooKeeper serving")
        hosts = ",".join(f"127.0.0.1:{z.client_port}" for z in zks)
        c = load.load(hosts, zkcli=load.zkcli_runner(hosts))

        # start refuses: its peers are ZooKeeper servers
        r = subprocess.run([ENSEMBLE, "start", str(cfg)], capture_output=True, text=True, timeout=120)
        out = r.stdout + r.stderr + (d / "data" / "zookeeper.out").read_text(errors="replace")
        print(out)
        assert r.returncode != 0
        assert "is an Apache ZooKeeper server" in out and "zk-observe" in out, out

        log = open(d / "observe.log", "w")
        obs = subprocess.Popen([ENSEMBLE, "zk-observe", str(cfg), "--seconds", "240", "--dump", str(dump),
                                "--cut-over"],
                               stdout=log, stderr=subprocess.STDOUT)

        def caught_up():
            want = leader_zxid(zks)
            if want is None or not dump.exists():
                return False
            return read_dump(dump)[1].get("zxid") == want

        zk.wait(caught_up, 60, "the observer synced with the leader")
        w = KazooClient(hosts=hosts, timeout=20, auth_data=[("digest", "alice:secret")])
        w.start(timeout=30)
        w.sync("/")
        want = load.walk(w)
        got, _ = read_dump(dump)
        same(want, got)

        # Clients of the observer: reads equal ZooKeeper's, watches fire, writes refused.
        o = KazooClient(hosts=f"127.0.0.1:{p[9]}", timeout=20, auth_data=[("digest", "alice:secret")])
        o.start(timeout=30)
        same(want, load.walk(o))
        w.create("/live-watch", b"0")
        zk.wait(lambda: o.exists("/live-watch") is not None, 20, "the observer has /live-watch")
        fired: list[tuple[str, str]] = []
        seen: dict[str, bytes] = {}

        def on_event(e):
            fired.append((e.type, e.path))
            if e.type == "CHANGED":
                # a read after the event sees the change that fired it
                seen[e.path] = o.get(e.path)[0]

        o.get("/live-watch", watch=on_event)
        o.get_children("/live-watch", watch=on_event)
        assert o.exists("/live-watch/kid", watch=on_event) is None
        w.set("/live-watch", b"1")
        w.create("/live-watch/kid", b"k")
        zk.wait(lambda: len(fired) >= 3, 20, "three watch events from the observer")
        assert sorted(fired) == sorted([("CHANGED", "/live-watch"), ("CHILD", "/live-watch"),
                                        ("CREATED", "/live-watch/kid")]), fired
        assert seen["/live-watch"] == b"1", seen
        w.delete("/live-watch/kid")
        o.get("/live-watch", watch=on_event)  # spent watches fire no more
        time.sleep(1)
        assert len(fired) == 3, fired
        # writes through the observer land in ZooKeeper, answered as ZooKeeper answers them
        session = o.client_id[0]
        assert o.create("/via-observer", b"x") == "/via-observer"
        seq = o.create("/via-observer/s-", b"", sequence=True)
        eph = o.create("/via-observer/eph", b"e", ephemeral=True)
        st = o.set("/via-observer", b"y")
        assert st.version == 1 and o.get("/via-observer")[0] == b"y"
        with pytest.raises(NodeExistsError):
            o.create("/via-observer", b"again")
        t = o.transaction()
        t.create("/via-observer/m1", b"1")
        t.set_data("/via-observer/m1", b"2")
        t.delete(seq)
        r = t.commit()
        assert r[0] == "/via-observer/m1" and r[1].version == 1 and r[2] is True, r
        o.sync("/")
        w.sync("/")
        assert w.get("/via-observer")[0] == b"y"
        assert w.get("/via-observer/m1")[0] == b"2"
        assert w.exists(seq) is None
        assert w.exists(eph).ephemeralOwner == session
        shown = load.zkcli_runner(f"127.0.0.1:{p[9]}")("get /live-watch")
        assert "\n1\n" in shown.replace("\r", ""), shown

        # Write load; the leader is killed in the middle; the replica's zxid only grows.
        stop = threading.Event()
        written: list[str] = []
        zxids: list[int] = []

        def writer():
            n = 0
            while not stop.is_set() and n < 400:
                try:
                    written.append(w.create("/live-load/n-", str(n).encode(), sequence=True, makepath=True))
                    n += 1
                except Exception:  # noqa: BLE001 - reconnecting across the leader's death
                    time.sleep(0.2)

        def sample():
            while not stop.is_set():
                try:
                    zxids.append(read_dump(dump)[1]["zxid"])
                except (OSError, ValueError, KeyError):
                    pass
                time.sleep(0.05)

        via_observer: list[str] = []

        def observer_writer():
            n = 0
            while not stop.is_set() and n < 200:
                try:
                    via_observer.append(o.create("/live-obs/n-", str(n).encode(), sequence=True,
                                                 makepath=True))
                    n += 1
                except Exception:  # noqa: BLE001 - the observer between leaders
                    time.sleep(0.2)

        threads = [threading.Thread(target=writer), threading.Thread(target=sample),
                   threading.Thread(target=observer_writer)]
        for t in threads:
            t.start()
        time.sleep(2)
        leader = next(z for z in zks if z.mode() == "leader")
        leader.proc.kill()
        leader.proc.wait()
        zk.wait(lambda: leader_zxid(zks) is not None, 60, "a new ZooKeeper leader")
        time.sleep(3)
        stop.set()
        for t in threads:
            t.join()
        assert len(written) > 20, len(written)
        zk.wait(caught_up, 60, "the observer caught up with the new leader")
        w.sync("/")
        want = load.walk(w)
        got, summary = read_dump(dump)
        same(want, got)
        # the observer's client reconnected with its session and reads the same tree
        zk.wait(lambda: o.connected, 30, "the observer's client reconnected")
        assert o.client_id[0] == session
        same(want, load.walk(o))
        # every create the observer acknowledged is in ZooKeeper; the session's ephemeral too
        assert len(via_observer) > 20, len(via_observer)
        assert [p for p in via_observer if w.exists(p) is None] == []
        assert w.exists(eph).ephemeralOwner == session
        assert all(a <= b for a, b in zip(zxids, zxids[1:])), "the replica's zxid went back"
        assert summary["zxid"] >> 32 > zxids[0] >> 32, "no new epoch seen"
        # The cut-over: ZooKeeper stopped, the replica becomes the Ensemble server's state.
        before = user_tree(load.walk(o))
        w.stop()
        w.close()
        t0 = time.monotonic()
        zk.stop_all(zks)
        assert obs.wait(timeout=60) == 0
        log.close()
        text = (d / "observe.log").read_text()
        print(text)
        assert "cut over at zxid" in text, text
        ecfg.write_text("".join(line + "\n" for line in cfg.read_text().splitlines()
                                if not line.startswith("server.")))
        r = subprocess.run([ENSEMBLE, "start", str(ecfg)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        started = True

        def writable():
            try:
                o.create("/after-cut-over", b"")
                return True
            except NodeExistsError:  # made, its answer lost in a reconnect
                return True
            except Exception:  # noqa: BLE001 - not serving yet
                return False

        zk.wait(writable, 60, "a write on Ensemble after the cut-over")
        pause = time.monotonic() - t0
        print(f"cut-over write pause: {pause:.2f} s (ZooKeeper stopped -> first write acknowledged)")
        assert o.client_id[0] == session
        assert o.exists(eph).ephemeralOwner == session
        after = user_tree(load.walk(o))
        assert after.pop("/after-cut-over")["stat"][0] > summary["zxid"]
        bad = [p for p in sorted(set(before) | set(after)) if p != "/" and before.get(p) != after.get(p)]
        assert not bad, [(p, before.get(p), after.get(p)) for p in bad[:5]]
        assert text.count("synced by") >= 2, text
        assert "digests checked" in text and " 0 digests checked" not in text, text
    finally:
        if obs and obs.poll() is None:
            obs.kill()
        if started:
            subprocess.run([ENSEMBLE, "stop", str(ecfg)], capture_output=True, timeout=60)
        if o is not None:
            o.stop()
            o.close()
        if c is not None:
            c.stop()
            c.close()
        zk.stop_all(zks)
