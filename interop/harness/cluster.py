"""A 3-voter + 1-observer ensemble on loopback, shaped like the seed tutorial's cluster
(zoo1.cfg..zoo3.cfg with tickTime=2000, initLimit=10, syncLimit=5, dataDir/dataLogDir per server,
myid files, server.N=localhost:quorumPort:electionPort and the observer
server.4=localhost:...:observer with peerType=observer), run by either implementation:

* ``zookeeper``: Apache ZooKeeper 3.8 from the Debian package (QuorumPeerMain, the class
  zkServer.sh starts), extended types enabled, 4lw whitelisted;
* ``ensemble``: this project's ``ensemble start|stop CONFIG`` daemon.

Ports follow the seed: server i has client port B+i-1, quorum port B+706+i-1 and election port
B+1706+i-1, where B is 2181 (the seed's own ports) or a private base such as 22181.

Every wait here is bounded; nothing is left running by ``stop_all``/``kill_all``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ZK_HOME = Path(os.environ.get("ZOOKEEPER_HOME", "/usr/share/zookeeper"))
JAVA_DIR = Path("/usr/share/java")
ZK_LOG4J = Path("/etc/zookeeper/conf/log4j.properties")
TARGETS = ("zookeeper", "ensemble")
VOTERS = (1, 2, 3)
OBSERVER = 4
ALL = (1, 2, 3, 4)


def default_base() -> int:
    if os.environ.get("INTEROP_PORT_BASE"):
        return int(os.environ["INTEROP_PORT_BASE"])
    return 2181 if os.environ.get("CI") == "true" else 22181


def fourlw(port: int, word: str, timeout: float = 5.0, host: str = "127.0.0.1") -> str:
    """Send a four-letter word and read the answer to EOF (empty string on any error)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(word.encode())
            chunks = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return ""


def srvr_mode(port: int, timeout: float = 2.0) -> str | None:
    for line in fourlw(port, "srvr", timeout).splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Server:
    sid: int
    client_port: int
    quorum_port: int
    election_port: int
    observer: bool
    cfg: Path
    data_dir: Path
    log_dir: Path
    # Ensemble's AdminServer and Prometheus endpoint (B+2706+i-1, B+3706+i-1); ZooKeeper's stay off
    admin_port: int = 0
    metrics_port: int = 0

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "zookeeper_server.pid"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.client_port}"


class ClusterError(RuntimeError):
    pass


class Cluster:
    def __init__(
        self,
        target: str,
        workdir: str | Path,
        base: int | None = None,
        tick_time: int = 2000,
        ensemble_bin: str | None = None,
    ):
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
        self.target = target
        self.workdir = Path(workdir).resolve()
        self.base = base if base is not None else default_base()
        self.tick_time = tick_time
        self.ensemble_bin = ensemble_bin or os.environ.get("ENSEMBLE_BIN") or "ensemble"
        self.servers: dict[int, Server] = {}
        for i in ALL:
            self.servers[i] = Server(
                sid=i,
                client_port=self.base + i - 1,
                quorum_port=self.base + 706 + i - 1,
                election_port=self.base + 1706 + i - 1,
                observer=(i == OBSERVER),
                cfg=self.workdir / "conf" / f"zoo{i}.cfg",
                data_dir=self.workdir / f"data_{i}",
                log_dir=self.workdir / f"logs_{i}",
                admin_port=self.base + 2706 + i - 1,
                metrics_port=self.base + 3706 + i - 1,
            )
        self._procs: dict[int, subprocess.Popen] = {}

    # ---- layout -------------------------------------------------------------------------

    def hosts(self, ids=ALL) -> str:
        return ",".join(self.servers[i].host for i in ids)

    def write_configs(self, fresh: bool = True) -> None:
        if fresh and self.workdir.exists():
            for i in ALL:
                if self.is_running(i):
                    raise ClusterError(f"server {i} of {self.workdir} is still running")
            shutil.rmtree(self.workdir)
        (self.workdir / "conf").mkdir(parents=True, exist_ok=True)
        for s in self.servers.values():
            s.data_dir.mkdir(parents=True, exist_ok=True)
            s.log_dir.mkdir(parents=True, exist_ok=True)
            (s.data_dir / "myid").write_text(f"{s.sid}\n")
            lines = [
                f"tickTime={self.tick_time}",
                "initLimit=10",
                "syncLimit=5",
                f"dataDir={s.data_dir}",
                f"clientPort={s.client_port}",
                f"dataLogDir={s.log_dir}",
                "4lw.commands.whitelist=*",
                "extendedTypesEnabled=true",
                # hard quotas refuse (test_quota.py); ZooKeeper reads it as a system property
                "enforceQuota=true",
            ]
            if self.target == "zookeeper":
                # the AdminServer would bind 8080 on every server; the seed's ZooKeeper 3.4 had none
                lines.append("admin.enableServer=false")
            else:
                lines += [
                    "admin.serverAddress=127.0.0.1",
                    f"admin.serverPort={s.admin_port}",
                    "metricsProvider.className="
                    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
                    "metricsProvider.httpHost=127.0.0.1",
                    f"metricsProvider.httpPort={s.metrics_port}",
                ]
            if s.observer:
                lines.append("peerType=observer")
            for o in self.servers.values():
                kind = ":observer" if o.observer else ""
                lines.append(f"server.{o.sid}=localhost:{o.quorum_port}:{o.election_port}{kind}")
            s.cfg.write_text("\n".join(lines) + "\n")

    # ---- processes ------------------------------------------------------------------------

    def pid(self, i: int) -> int | None:
        try:
            return int(self.servers[i].pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def is_running(self, i: int) -> bool:
        pid = self.pid(i)
        if pid is None:
            return False
        proc = self._procs.get(i)
        if proc is not None and proc.pid == pid:
            return proc.poll() is None
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        # a zombie or a recycled pid is not our server
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return False
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return str(self.servers[i].cfg).encode() in cmdline

    def _zk_command(self, s: Server) -> list[str]:
        cp = [str(ZK_LOG4J.parent), str(JAVA_DIR / "zookeeper.jar")]
        for extra in ("slf4j-log4j12.jar", "log4j-1.2.jar"):
            if (JAVA_DIR / extra).exists():
                cp.append(str(JAVA_DIR / extra))
        # Netty (the TLS client port, interop/harness/tls.sh): Debian splits it into jars and
        # zookeeper.jar's manifest leaves out netty-codec and netty-resolver.
        for extra in ("netty-codec.jar", "netty-resolver.jar"):
            if (JAVA_DIR / extra).exists():
                cp.append(str(JAVA_DIR / extra))
        return [
            "java",
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Dzookeeper.log.dir={s.log_dir}",
            "-Dzookeeper.root.logger=INFO,CONSOLE",
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Dzookeeper.enforceQuota=true",
            "-Dzookeeper.4lw.commands.whitelist=*",
            "-Dzookeeper.admin.enableServer=false",
            # what a suite adds (interop/harness/sasl.sh: the JAAS file)
            *os.environ.get("INTEROP_ZK_JVMFLAGS", "").split(),
            "-cp",
            ":".join(cp),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(s.cfg),
        ]

    def start(self, i: int, timeout: float = 60.0) -> None:
        s = self.servers[i]
        if self.is_running(i):
            raise ClusterError(f"server {i} is already running (pid {self.pid(i)})")
        if self.target == "zookeeper":
            out = open(s.data_dir / "zookeeper.out", "ab")
            proc = subprocess.Popen(
                self._zk_command(s),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            out.close()
            self._procs[i] = proc
            s.pid_file.write_text(str(proc.pid))
            deadline = time.monotonic() + timeout
            while not port_open(s.client_port):
                if proc.poll() is not None:
                    raise ClusterError(f"zookeeper {i} exited ({proc.returncode}); see {s.data_dir}/zookeeper.out")
                if time.monotonic() > deadline:
                    raise ClusterError(f"zookeeper {i} did not listen on {s.client_port} in {timeout}s")
                time.sleep(0.1)
        else:
            r = subprocess.run(
                [self.ensemble_bin, "start", str(s.cfg)],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            if r.returncode != 0 or "STARTED" not in r.stdout:
                raise ClusterError(
                    f"ensemble start {s.cfg} failed ({r.returncode}): {r.stdout.strip()} {r.stderr.strip()}"
                )

    def stop(self, i: int, timeout: float = 30.0) -> None:
        s = self.servers[i]
        if self.target == "ensemble":
            if self.is_running(i):
                subprocess.run(
                    [self.ensemble_bin, "stop", str(s.cfg)],
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
            # whatever happened, make sure it is gone
            if self.is_running(i):
                self.kill9(i)
            return
        pid = self.pid(i)
        if pid is not None and self.is_running(i):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
            self._wait_gone(i, timeout)
            if self.is_running(i):
                self.kill9(i)
        try:
            s.pid_file.unlink()
        except OSError:
            pass

    def kill9(self, i: int) -> None:
        pid = self.pid(i)
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        self._wait_gone(i, 10.0)
        try:
            self.servers[i].pid_file.unlink()
        except OSError:
            pass

    def _wait_gone(self, i: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc = self._procs.get(i)
        while time.monotonic() < deadline:
            if proc is not None:
                try:
                    proc.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    continue
                self._procs.pop(i, None)
                break
            if not self.is_running(i):
                break
            time.sleep(0.05)
        # A killed multi-threaded server shows as a zombie while its other threads still tear
        # down and hold its sockets: gone means its client port no longer answers, so that a
        # restart can bind it.
        port = self.servers[i].client_port
        while time.monotonic() < deadline and port_open(port, 0.2):
            time.sleep(0.05)

    def start_all(self, ids=ALL, timeout: float = 90.0) -> None:
        for i in ids:
            self.start(i)
        self.wait_ready(ids, timeout)

    def stop_all(self) -> None:
        for i in ALL:
            try:
                self.stop(i)
            except Exception:  # noqa: BLE001 - cleanup must go on
                self.kill9(i)

    def kill_all(self) -> None:
        for i in ALL:
            self.kill9(i)

    # ---- state ---------------------------------------------------------------------------

    def mode(self, i: int, timeout: float = 2.0) -> str | None:
        return srvr_mode(self.servers[i].client_port, timeout)

    def modes(self, ids=ALL) -> dict[int, str | None]:
        return {i: self.mode(i) for i in ids}

    def leader(self, ids=ALL) -> int | None:
        for i, m in self.modes(ids).items():
            if m == "leader":
                return i
        return None

    def wait_ready(self, ids=ALL, timeout: float = 90.0) -> dict[int, str]:
        """Until every server in ids serves (srvr has a Mode) and one voter leads."""
        deadline = time.monotonic() + timeout
        modes: dict[int, str | None] = {}
        while time.monotonic() < deadline:
            modes = self.modes(ids)
            if all(modes.values()) and list(modes.values()).count("leader") == 1:
                return modes  # type: ignore[return-value]
            time.sleep(0.2)
        raise ClusterError(f"{self.target} cluster not ready in {timeout}s: {modes}")

    def fourlw(self, i: int, word: str, timeout: float = 5.0) -> str:
        return fourlw(self.servers[i].client_port, word, timeout)

    def log_tail(self, i: int, n: int = 40) -> str:
        for name in ("zookeeper.out",):
            p = self.servers[i].data_dir / name
            if p.exists():
                return "\n".join(p.read_text(errors="replace").splitlines()[-n:])
        return ""
