"""A client that writes without pause while a cluster is changed under it, and the check that
every write it saw acknowledged is on each server afterwards. Shared by the reconfiguration
and rolling-upgrade tests."""

from __future__ import annotations

import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException


class AckedWriter(threading.Thread):
    """Creates `<parent>/<n>` with data `n` for n = 0, 1, ... until stopped; records which n
    were acknowledged."""

    def __init__(self, hosts: str, parent: str):
        super().__init__(daemon=True)
        self.parent = parent
        self.zk = KazooClient(hosts=hosts, timeout=10)
        self.zk.start(timeout=30)
        self.zk.ensure_path(parent)
        self.acked: list[int] = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def last(self) -> int:
        with self.lock:
            return self.acked[-1]

    def run(self):
        n = 0
        while not self.stop_flag.is_set():
            try:
                self.zk.create(f"{self.parent}/{n}", str(n).encode())
                with self.lock:
                    self.acked.append(n)
            except KazooException:
                # it may have happened without its answer: not counted, never reused
                time.sleep(0.1)
            n += 1

    def stop(self):
        self.stop_flag.set()
        self.join(60)
        self.zk.stop()
        self.zk.close()


def assert_acked_on(host: str, name: str, parent: str, acked: list[int]) -> dict[int, int]:
    """Every acknowledged write is on the server at `host` (after a sync), with its data;
    returns each one's czxid there."""
    zk = KazooClient(hosts=host, timeout=10)
    zk.start(timeout=30)
    try:
        zk.sync(parent)
        present = set(int(x) for x in zk.get_children(parent))
        lost = [n for n in acked if n not in present]
        assert not lost, f"server {name} lacks acknowledged writes {lost[:10]} (of {len(lost)})"
        czxids = {}
        for n in acked:
            data, st = zk.get(f"{parent}/{n}")
            assert data == str(n).encode(), (name, n, data)
            czxids[n] = st.czxid
        return czxids
    finally:
        zk.stop()
        zk.close()


def wait_for(what: str, cond, timeout: float = 120.0):
    """Polls `cond` until it gives a true value (returned), or fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {timeout}s: {what}")
        time.sleep(0.2)
