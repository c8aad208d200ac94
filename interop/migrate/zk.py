"""Real Apache ZooKeeper 3.8 servers (the Debian package's jars) for the migration tests:
standalone or a loopback ensemble with free ports, a temp dataDir, a small snapCount so that
a load leaves snapshots and a log tail."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

JAVA_DIR = Path("/usr/share/java")


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def classpath() -> str:
    cp = [JAVA_DIR / "zookeeper.jar"]
    for extra in ("slf4j-log4j12.jar", "log4j-1.2.jar", "netty-codec.jar", "netty-resolver.jar"):
        if (JAVA_DIR / extra).exists():
            cp.append(JAVA_DIR / extra)
    return ":".join(str(p) for p in cp)


def four_letter(port: int, cmd: str, timeout: float = 2.0) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            out = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                out += b
            return out.decode(errors="replace")
    except OSError:
        return ""


class ZkServer:
    """One QuorumPeerMain (standalone when alone) with its own zoo.cfg."""

    def __init__(self, root: Path, sid: int, client_port: int, servers: list[str], extra: str = ""):
        self.root = root
        self.sid = sid
        self.client_port = client_port
        self.data_dir = root / f"zk{sid}" / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cfg = root / f"zk{sid}" / "zoo.cfg"
        lines = [
            "tickTime=500",
            "initLimit=20",
            "syncLimit=10",
            f"dataDir={self.data_dir}",
            f"clientPort={client_port}",
            "clientPortAddress=127.0.0.1",
            "snapCount=40",
            "preAllocSize=16",
            "extendedTypesEnabled=true",
            "4lw.commands.whitelist=*",
            "admin.enableServer=false",
            "maxClientCnxns=0",
            "maxSessionTimeout=60000",
            "reconfigEnabled=true",
            "standaloneEnabled=false" if servers else "",
            *servers,
            extra,
        ]
        self.cfg.write_text("\n".join(l for l in lines if l) + "\n")
        if servers:
            (self.data_dir / "myid").write_text(f"{sid}\n")
        self.proc: subprocess.Popen | None = None

    def start(self, jvmflags: list[str] | None = None) -> None:
        out = open(self.root / f"zk{self.sid}" / "server.log", "ab")
        self.proc = subprocess.Popen(
            [
                "java", "-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.root.logger=WARN,CONSOLE",
                "-Dzookeeper.extendedTypesEnabled=true",
                "-Dzookeeper.4lw.commands.whitelist=*",
                *(jvmflags or []),
                "-cp", classpath(),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(self.cfg),
            ],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()

    def serving(self) -> bool:
        return "Mode:" in four_letter(self.client_port, "srvr")

    def mode(self) -> str:
        for line in four_letter(self.client_port, "srvr").splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def stop_all(zks: list[ZkServer]) -> None:
    for z in zks:
        if z.proc and z.proc.poll() is None:
            z.proc.kill()
    for z in zks:
        z.stop()


def ensemble(root: Path, n: int, jvmflags: list[str] | None = None) -> list[ZkServer]:
    """n servers (n == 1: standalone), started and serving."""
    ports = free_ports(3 * n)
    servers = []
    if n > 1:
        servers = [
            f"server.{i + 1}=127.0.0.1:{ports[3 * i + 1]}:{ports[3 * i + 2]}:participant;127.0.0.1:{ports[3 * i]}"
            for i in range(n)
        ]
    zks = [ZkServer(root, i + 1, ports[3 * i], servers) for i in range(n)]
    for z in zks:
        z.start(jvmflags)
    wait(lambda: all(z.serving() for z in zks), 90, "ZooKeeper serving")
    return zks


def wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s: {what}")
