"""What the live tests (test_live.py, test_live_core.py, test_live_reconfig.py) share: a real
3-voter Apache ZooKeeper 3.8 with Ensemble servers listed as its observers, the `zk-observe`
process of each, the waits on its state (its dump's zxid, its 4lw `srvr`), the comparison of
trees, and the client checks every live test makes (watches fire, writes go through)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError

import zk

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ENSEMBLE = os.environ.get("ENSEMBLE_BIN", str(REPO / "target/release/ensemble"))

needs_zookeeper = pytest.mark.skipif(
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


def srvr(port: int, key: str) -> str:
    """One field of a server's 4lw `srvr` ("" while it does not answer)."""
    try:
        for line in zk.four_letter(port, "srvr").splitlines():
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def leader_zxid(zks) -> int | None:
    for z in zks:
        if z.proc and z.proc.poll() is None and z.mode() == "leader":
            zxid = srvr(z.client_port, "Zxid")
            if zxid:
                return int(zxid, 16)
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


class EnsembleObserver:
    """One Ensemble server listed as `server.N=...:observer` in ZooKeeper's config: its dir,
    zoo.cfg, the zk-observe process and its dump, then the Ensemble server it becomes."""

    def __init__(self, root: Path, sid: int, client_port: int, lines: list[str]):
        self.sid = sid
        self.client_port = client_port
        self.dir = root / f"ens{sid}"
        (self.dir / "data").mkdir(parents=True)
        (self.dir / "data" / "myid").write_text(f"{sid}\n")
        self.cfg = self.dir / "zoo.cfg"
        self.cfg.write_text("\n".join([
            "tickTime=500", "initLimit=20", "syncLimit=10", f"dataDir={self.dir / 'data'}",
            f"clientPort={client_port}", "clientPortAddress=127.0.0.1", "extendedTypesEnabled=true",
            "4lw.commands.whitelist=*", "admin.enableServer=false", "maxSessionTimeout=60000", *lines,
        ]) + "\n")
        self.ecfg = self.dir / "ensemble.cfg"
        self.dump = self.dir / "replica.jsonl"
        self.log_path = self.dir / "observe.log"
        self.proc: subprocess.Popen | None = None
        self.started = False

    def observe(self, seconds: int = 300, cut_over: bool = True, zk_dirs: list[Path] = ()) -> None:
        """`zk-observe` with its dump; with `cut_over`, it installs its replica and writes
        ensemble.cfg once every ZooKeeper voter has stopped (continued from the newest
        ZooKeeper log of `zk_dirs`, the stopped servers' dataDirs, if given)."""
        log = open(self.log_path, "w")
        cut = ["--cut-over", "--ensemble-config", str(self.ecfg)] if cut_over else []
        for d in zk_dirs:
            cut += ["--zk-data-dir", str(d)]
        self.proc = subprocess.Popen([ENSEMBLE, "zk-observe", str(self.cfg), "--seconds", str(seconds),
                                      "--dump", str(self.dump), *cut],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def replica(self) -> tuple[dict, dict]:
        return read_dump(self.dump)

    def zxid(self) -> int | None:
        try:
            return self.replica()[1].get("zxid")
        except (OSError, ValueError):
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> None:
        r = subprocess.run([ENSEMBLE, "start", str(self.ecfg)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        self.started = True

    def mode(self) -> str:
        return srvr(self.client_port, "Mode")

    def server_log(self) -> str:
        """The log of the Ensemble server `start` made (its dataDir's zookeeper.out)."""
        try:
            return (self.dir / "data" / "zookeeper.out").read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        if self.started:
            subprocess.run([ENSEMBLE, "stop", str(self.ecfg)], capture_output=True, timeout=60)


def zookeeper_with_observers(root: Path, observers: int, extra: str = "reconfigEnabled=false"
                             ) -> tuple[list[zk.ZkServer], list[EnsembleObserver], list[str]]:
    """Three ZooKeeper voters (server.1..3) and `observers` Ensemble observers (server.4..),
    each on free loopback ports; the server lines every config lists."""
    n = 3 + observers
    p = zk.free_ports(3 * n)
    lines = [f"server.{i + 1}=127.0.0.1:{p[3 * i + 1]}:{p[3 * i + 2]}:"
             f"{'participant' if i < 3 else 'observer'};127.0.0.1:{p[3 * i]}" for i in range(n)]
    zks = [zk.ZkServer(root, i + 1, p[3 * i], lines, extra) for i in range(3)]
    ens = [EnsembleObserver(root, i + 1, p[3 * i], lines) for i in range(3, n)]
    return zks, ens, lines


def start_zookeeper(zks, jvmflags: list[str] | None = None) -> str:
    """Start the voters, wait until each serves; their connect string."""
    for z in zks:
        z.start(jvmflags)
    zk.wait(lambda: all(z.serving() for z in zks), 90, "ZooKeeper serving")
    return ",".join(f"127.0.0.1:{z.client_port}" for z in zks)


def close_clients(*clients) -> None:
    for k in clients:
        if k is not None:
            try:
                k.stop()
                k.close()
            except Exception:  # noqa: BLE001 - cleaning up after a failure
                pass


def check_watches(w: KazooClient, o: KazooClient, path: str) -> None:
    """Watches the observer's client `o` set fire on the txns ZooKeeper's client `w` makes
    (data, child, exists), once each, and a read after the event sees the change; `path`
    ends with data b"2" and no child."""
    w.create(path, b"0")
    o.sync("/")
    zk.wait(lambda: o.exists(path) is not None, 30, f"the observer has {path}")
    fired: list[tuple[str, str]] = []
    seen: dict[str, bytes] = {}

    def on_event(e):
        # the read first: a wait on `fired` then finds `seen` already written
        if e.type == "CHANGED":
            seen[e.path] = o.get(e.path)[0]
        fired.append((e.type, e.path))

    o.get(path, watch=on_event)
    o.get_children(path, watch=on_event)
    assert o.exists(path + "/kid", watch=on_event) is None
    w.set(path, b"1")
    w.create(path + "/kid", b"k")
    zk.wait(lambda: len(fired) >= 3, 30, "three watch events from the observer")
    assert sorted(fired) == sorted([("CHANGED", path), ("CHILD", path),
                                    ("CREATED", path + "/kid")]), fired
    assert seen[path] == b"1", seen
    # spent watches fire no more: the kid's deletion is a child change nobody watches now;
    # then a fresh data watch fires, and kazoo runs callbacks in order on one thread, so a
    # stray event of the deletion would be in `fired` before it
    w.delete(path + "/kid")
    o.get(path, watch=on_event)
    w.set(path, b"2")
    zk.wait(lambda: len(fired) >= 4, 30, "the fresh data watch's event")
    assert fired[3:] == [("CHANGED", path)], fired
    assert seen[path] == b"2", seen


def write_through(o: KazooClient, w: KazooClient, base: str) -> str:
    """Writes through the observer's client `o` (create, sequential, ephemeral, setData, a
    failing create, a multi), each answered as ZooKeeper answers it and present in ZooKeeper
    (read by `w`); the ephemeral's path."""
    session = o.client_id[0]
    assert o.create(base, b"x") == base
    seq = o.create(base + "/s-", b"", sequence=True)
    eph = o.create(base + "/eph", b"e", ephemeral=True)
    st = o.set(base, b"y")
    assert st.version == 1 and o.get(base)[0] == b"y"
    with pytest.raises(NodeExistsError):
        o.create(base, b"again")
    t = o.transaction()
    t.create(base + "/m1", b"1")
    t.set_data(base + "/m1", b"2")
    t.delete(seq)
    r = t.commit()
    assert r[0] == base + "/m1" and r[1].version == 1 and r[2] is True, r
    o.sync("/")
    w.sync("/")
    assert w.get(base)[0] == b"y"
    assert w.get(base + "/m1")[0] == b"2"
    assert w.exists(seq) is None
    assert w.exists(eph).ephemeralOwner == session
    return eph
