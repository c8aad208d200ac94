"""Record real ZooKeeper 3.8 quorum traffic (issue 17 item 3a): two participants and an observer,
the observer reaching the participants' quorum and election ports through a recording proxy
(its own zoo.cfg names the proxy; the participants' name the real ports). A client writes
through the observer (REQUEST up, INFORM down), the leader is told to force a snapshot sync
(SNAP), and the session pings (PING with session touches). Every byte each way of each
connection is written to OUT/<port kind>-<conn>-<direction>.bin: the quorum port's jute
QuorumPackets and the election port's handshake and FLE notifications, as a real ensemble sends
them. Used to seed the quorum_packet fuzz corpus and the codec's tests.

    python3 interop/migrate/capture_quorum.py OUT_DIR
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from kazoo.client import KazooClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zk  # noqa: E402


class Recorder:
    """Listen on a free port, forward to `target`, record both directions per connection."""

    def __init__(self, out: Path, kind: str, target: int):
        self.out, self.kind, self.target = out, kind, target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.n = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.n += 1
            try:
                s = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            name = f"{self.kind}-{self.n}"
            threading.Thread(target=self.pump, args=(c, s, self.out / f"{name}-to-server.bin"), daemon=True).start()
            threading.Thread(target=self.pump, args=(s, c, self.out / f"{name}-to-observer.bin"), daemon=True).start()

    @staticmethod
    def pump(src, dst, path: Path):
        with open(path, "ab") as f:
            while True:
                try:
                    b = src.recv(65536)
                except OSError:
                    b = b""
                if not b:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                f.write(b)
                f.flush()
                try:
                    dst.sendall(b)
                except OSError:
                    return


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="zk-capture-"))
    p = zk.free_ports(9)
    real = {sid: (p[3 * (sid - 1)], p[3 * (sid - 1) + 1], p[3 * (sid - 1) + 2]) for sid in (1, 2, 3)}

    def line(sid, q, e, kind):
        return f"server.{sid}=127.0.0.1:{q}:{e}:{kind};127.0.0.1:{real[sid][0]}"

    true_view = [line(s, real[s][1], real[s][2], "observer" if s == 3 else "participant") for s in (1, 2, 3)]
    proxies = {}
    for s in (1, 2):
        proxies[s] = (Recorder(out, f"quorum{s}", real[s][1]), Recorder(out, f"election{s}", real[s][2]))
    observer_view = [line(s, proxies[s][0].port, proxies[s][1].port, "participant") for s in (1, 2)]
    observer_view.append(line(3, real[3][1], real[3][2], "observer"))
    flags = ["-Dzookeeper.forceSnapshotSync=true"]
    zks = [zk.ZkServer(root, s, real[s][0], true_view, "reconfigEnabled=false") for s in (1, 2)]
    zks.append(zk.ZkServer(root, 3, real[3][0], observer_view, "reconfigEnabled=false"))
    try:
        for z in zks[:2]:
            z.start(flags)
        zk.wait(lambda: all(z.serving() for z in zks[:2]), 90, "participants serving")
        c = KazooClient(hosts=f"127.0.0.1:{real[1][0]}", timeout=10)
        c.start(timeout=30)
        c.create("/before", b"written before the observer came")
        c.stop()
        c.close()
        zks[2].start(flags)
        zk.wait(zks[2].serving, 90, "observer serving")
        o = KazooClient(hosts=f"127.0.0.1:{real[3][0]}", timeout=4)
        o.start(timeout=30)
        o.create("/through-observer", b"x")
        o.create("/through-observer/e", b"", ephemeral=True)
        o.set("/through-observer", b"y")
        t = o.transaction()
        t.create("/multi", b"m")
        t.delete("/through-observer/e")
        t.commit()
        time.sleep(3)  # pings with session touches
        o.stop()
        o.close()
        time.sleep(1)
        print("observer mode:", zks[2].mode())
    finally:
        zk.stop_all(zks)
    for f in sorted(out.iterdir()):
        print(f.name, f.stat().st_size)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
