"""Dynamic reconfiguration driven by Apache ZooKeeper's own zkCli.sh (3.8) on a seed-shaped cluster
of its own (3 voters + 1 observer, reconfigEnabled=true, the super digest of "super:test" as
kazoo's harness sets it): while a kazoo client writes without pause, `reconfig -remove` takes a
voter out, `reconfig -add` brings it back, `reconfig -members` and `reconfig -file` give whole
member lists, `config` shows each configuration with its client addresses; every write
acknowledged is there at the end, on every member. Runs against either target."""

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import TARGET
from harness.cluster import ALL, Cluster, ZK_HOME, default_base
from harness.writes import AckedWriter, assert_acked_on

ZKCLI = str(ZK_HOME / "bin" / "zkCli.sh")
pytestmark = pytest.mark.skipif(
    not os.path.exists(ZKCLI) or not shutil.which("java"), reason="zkCli.sh / java not installed"
)
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="


def zkcli(port, script, timeout=120):
    """A zkCli.sh session fed `script` on stdin, authenticated as the super user first."""
    r = subprocess.run(
        [ZKCLI, "-server", f"127.0.0.1:{port}"],
        input="addauth digest super:test\n" + script + "quit\n",
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CLIENT_JVMFLAGS": "-XX:TieredStopAtLevel=1 -Xshare:auto"},
    )
    return r.stdout + r.stderr


def spec(c, i, role="participant"):
    s = c.servers[i]
    return f"server.{i}=localhost:{s.quorum_port}:{s.election_port}:{role};127.0.0.1:{s.client_port}"


def config_lines(out):
    """The server.N / version lines zkCli printed last."""
    lines = [l for l in out.splitlines() if l.startswith("server.") or l.startswith("version=")]
    last = max(i for i, l in enumerate(lines) if l.startswith("version="))
    first = last
    while first > 0 and lines[first - 1].startswith("server."):
        first -= 1
    return lines[first : last + 1]


@pytest.fixture(scope="module")
def rcluster():
    workdir = tempfile.mkdtemp(prefix=f"interop-reconfig-{TARGET}-")
    c = Cluster(TARGET, workdir, base=default_base() + 6000)
    c.write_configs()
    for s in c.servers.values():
        with open(s.cfg, "a") as f:
            f.write(f"reconfigEnabled=true\nDigestAuthenticationProvider.superDigest={SUPER_DIGEST}\n")
    old = os.environ.get("INTEROP_ZK_JVMFLAGS")
    os.environ["INTEROP_ZK_JVMFLAGS"] = (
        (old or "") + f" -Dzookeeper.DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"
    )
    try:
        c.start_all(ALL, timeout=120)
    finally:
        if old is None:
            del os.environ["INTEROP_ZK_JVMFLAGS"]
        else:
            os.environ["INTEROP_ZK_JVMFLAGS"] = old
    yield c
    c.stop_all()


def test_first_configuration_versioned_and_written(rcluster):
    """ZooKeeper 3.8 with reconfigEnabled (ZOOKEEPER-1783): the first leader established gives
    the first configuration its epoch's zxid as version (`version=100000000` on a fresh
    ensemble), shown by `config`, and every server writes zoo.cfg.dynamic.<version> (the
    server lines, no version line), rewrites zoo.cfg without its server lines and pointing at
    that file, and keeps the file as written in zoo.cfg.bak. Runs first: no reconfig yet."""
    c = rcluster
    out = zkcli(c.servers[1].client_port, "config\n")
    cfg = config_lines(out)
    version = int(cfg[-1].split("=")[1], 16)
    assert version >= 1 << 32 and version & 0xFFFFFFFF == 0, out
    assert any(l.startswith("server.4=") and ":observer" in l for l in cfg), out
    for i in ALL:
        s = c.servers[i]
        dynamic = Path(f"{s.cfg}.dynamic.{version:x}")
        deadline = time.monotonic() + 30
        while not dynamic.exists():
            assert time.monotonic() < deadline, f"{dynamic} missing"
            time.sleep(0.2)
        lines = dynamic.read_text().splitlines()
        assert sorted(lines) == sorted(cfg[:-1]), (lines, cfg)
        static = s.cfg.read_text()
        assert "server." not in static, static
        assert f"dynamicConfigFile={dynamic.resolve()}" in static, static
        assert "server.1=" in Path(f"{s.cfg}.bak").read_text()
        # every member shows the same version
        assert config_lines(zkcli(s.client_port, "config\n"))[-1] == cfg[-1]


def test_zkcli_reconfig_while_writing_loses_nothing(rcluster):
    c = rcluster
    # zkCli talks to the leader and a follower goes and comes back. (Removing the leader itself
    # is node/tests/reconfig.rs's: a client of a follower may then see ConnectionLoss.)
    leader = c.leader((1, 2, 3))
    assert leader is not None
    victim = next(i for i in (1, 2, 3) if i != leader)
    p1 = c.servers[leader].client_port
    w = AckedWriter(c.hosts((1, 2, 3)), "/w")
    w.start()
    try:
        time.sleep(1)
        # remove a voter
        out = zkcli(p1, f"reconfig -remove {victim}\nconfig\n")
        assert "Committed new configuration:" in out, out
        cfg = config_lines(out)
        assert not any(l.startswith(f"server.{victim}=") for l in cfg), out
        assert any(l.startswith("server.4=") and ":observer" in l for l in cfg), out
        time.sleep(1)
        # add it back, with its client address
        out = zkcli(p1, f"reconfig -add {spec(c, victim)}\nconfig\n")
        assert "Committed new configuration:" in out, out
        cfg = config_lines(out)
        assert spec(c, victim) in cfg, out
        version = cfg[-1].split("=")[1]
        time.sleep(1)
        # a stale version is refused
        out = zkcli(p1, f"reconfig -v 1 -remove 4\n")
        assert "version No is not valid" in out or "BadVersion" in out, out
        # the whole member list, as -members, from that version (the observer made a voter)
        members = ",".join([spec(c, 1), spec(c, 2), spec(c, 3), spec(c, 4)])
        out = zkcli(p1, f"reconfig -v {version} -members {members}\nconfig\n")
        assert "Committed new configuration:" in out, out
        cfg = config_lines(out)
        assert spec(c, 4) in cfg, out
        time.sleep(1)
        # and back, from a file
        f = os.path.join(c.workdir, "members.cfg")
        with open(f, "w") as fh:
            fh.write("\n".join([spec(c, 1), spec(c, 2), spec(c, 3), spec(c, 4, "observer")]) + "\n")
        out = zkcli(p1, f"reconfig -file {f}\nconfig\n")
        assert "Committed new configuration:" in out, out
        assert spec(c, 4, "observer") in config_lines(out), out
        time.sleep(1)
    finally:
        w.stop()
    assert len(w.acked) > 10, "the writer made no progress"
    for i in ALL:
        assert_acked_on(c.servers[i].host, str(i), "/w", w.acked)


CURATOR_SRC = Path(__file__).resolve().parent.parent / "java" / "CuratorTracker.java"
CURATOR_CP = [
    f"/usr/share/java/{j}.jar"
    for j in ("curator-framework", "curator-client", "zookeeper", "zookeeper-jute", "guava", "slf4j-api")
]
HAVE_CURATOR = bool(shutil.which("javac")) and all(os.path.exists(j) for j in CURATOR_CP)


class Tracker:
    """interop/java/CuratorTracker.java run against the cluster: the connection strings Curator's
    EnsembleTracker gave it, as they came."""

    def __init__(self, hosts):
        self.build = tempfile.mkdtemp(prefix="interop-curator-")
        cp = ":".join(CURATOR_CP)
        c = subprocess.run(["javac", "-nowarn", "-cp", cp, "-d", self.build, str(CURATOR_SRC)],
                           capture_output=True, text=True, timeout=300)
        assert c.returncode == 0, c.stderr
        self.proc = subprocess.Popen(
            ["java", "-XX:TieredStopAtLevel=1", "-cp", f"{self.build}:{cp}", "CuratorTracker", hosts],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_for(self, pred, timeout=60):
        """The first connection string (from the last one seen on) that satisfies `pred`."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for l in reversed(self.lines):
                    if l.startswith("CONNSTR "):
                        s = l[len("CONNSTR "):]
                        if pred(s):
                            return s
                        break
                left = deadline - time.time()
                if left <= 0:
                    tail = "\n".join(l for l in self.lines if not l.startswith("SLF4J"))[-3000:]
                    raise AssertionError(f"Curator's connection string never matched:\n{tail}")
                self.cond.wait(left)

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(30)
        except Exception:
            self.proc.kill()
        shutil.rmtree(self.build, ignore_errors=True)


def ports(connstr):
    return {int(h.rsplit(":", 1)[1]) for h in connstr.split(",") if ":" in h}


@pytest.mark.skipif(not HAVE_CURATOR, reason="Curator (libcurator-framework-java) not installed")
def test_curator_ensemble_tracker_follows_reconfig(rcluster):
    """Curator's EnsembleTracker reads /zookeeper/config and watches it: its connection string
    becomes the client addresses the configuration names, so it gains the one of a server
    `reconfig -add` brings in, and follows a whole new member list. (Its first string is only
    the address it was given: a configuration from zoo.cfg lines without `;clientAddress`, as
    this cluster's, names no client address in ZooKeeper, and the tracker keeps what it has.)"""
    c = rcluster
    leader = c.leader((1, 2, 3))
    assert leader is not None
    victim = next(i for i in (1, 2, 3) if i != leader)
    port = lambda i: c.servers[i].client_port
    t = Tracker(c.servers[leader].host)
    try:
        t.wait_for(lambda s: port(leader) in ports(s))
        out = zkcli(port(leader), f"reconfig -remove {victim}\n")
        assert "Committed new configuration:" in out, out
        # (a configuration with client addresses, as Ensemble's from the start: it is dropped)
        t.wait_for(lambda s: port(victim) not in ports(s))
        out = zkcli(port(leader), f"reconfig -add {spec(c, victim)}\n")
        assert "Committed new configuration:" in out, out
        t.wait_for(lambda s: port(victim) in ports(s))
        members = ",".join([spec(c, 1), spec(c, 2), spec(c, 3), spec(c, 4, "observer")])
        out = zkcli(port(leader), f"reconfig -members {members}\n")
        assert "Committed new configuration:" in out, out
        t.wait_for(lambda s: ports(s) == {port(i) for i in ALL})
    finally:
        t.close()
