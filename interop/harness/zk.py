"""kazoo helpers: clients with bounded timeouts, waiting on conditions, event collection."""

from __future__ import annotations

import logging
import queue
import threading
import time

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

logging.getLogger("kazoo").setLevel(logging.WARNING)


def client(hosts: str, timeout: float = 10.0, start_timeout: float = 20.0, **kw) -> KazooClient:
    """A started kazoo client; requests are retried for connection loss only a bounded time."""
    kw.setdefault("connection_retry", KazooRetry(max_tries=-1, delay=0.1, max_delay=1, deadline=30))
    c = KazooClient(hosts=hosts, timeout=timeout, randomize_hosts=False, **kw)
    c.start(timeout=start_timeout)
    return c


def close_quietly(c: KazooClient) -> None:
    try:
        c.stop()
    except Exception:  # noqa: BLE001
        pass
    try:
        c.close()
    except Exception:  # noqa: BLE001
        pass


def wait_until(cond, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
        except Exception as e:  # noqa: BLE001 - a condition may fail while it settles
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Events:
    """Collects watch events (kazoo WatchedEvent) from any thread."""

    def __init__(self):
        self.q: queue.Queue = queue.Queue()
        self.all: list = []
        self._lock = threading.Lock()

    def __call__(self, event):
        with self._lock:
            self.all.append(event)
        self.q.put(event)

    def get(self, timeout: float = 10.0):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no watch event within {timeout}s (seen so far: {self.all})") from None

    def none(self, timeout: float = 1.0):
        try:
            ev = self.q.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected watch event {ev}")


CLEANUP_AUTH = ["alice:secret", "admin:pw", "bob:pw", "carol:pw", "dave:pw"]


def delete_tree(c: KazooClient, path: str, depth: int = 0) -> None:
    """Delete path and everything under it, leaf first: unlike kazoo's recursive delete this
    does not need READ on leaves (deleting needs DELETE on the parent only)."""
    from kazoo.exceptions import NoNodeError, NotEmptyError

    if depth > 64:
        return
    try:
        c.delete(path)
        return
    except NoNodeError:
        return
    except NotEmptyError:
        pass
    for kid in c.get_children(path):
        delete_tree(c, f"{path}/{kid}", depth + 1)
    try:
        c.delete(path)
    except NoNodeError:
        pass
