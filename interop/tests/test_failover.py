"""The failover run (destructive; runs last and leaves the cluster up again):

1. writers keep creating znodes through every server; kill -9 the leader: a new leader is elected
   and the writers' sessions carry on (re-election time measured: to a new leader, to the first
   acknowledged write);
2. kill -9 a second voter: one voter and the observer are left, a minority: no write issued from
   then on may be acknowledged;
3. heal: restart both; writes resume (time measured);
4. restart everything: kill -9 all four servers, start them again (time measured), and count the
   acknowledged writes that are missing on any server: must be 0.

The figures go to stdout and, as JSON, to $INTEROP_REPORT_DIR/failover-<target>.json.
"""

import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

from conftest import ALL, TARGET, VOTERS
from harness import zk

pytestmark = pytest.mark.destructive

ROOT = f"/failover-{uuid.uuid4().hex[:6]}"
REPORT = {"target": TARGET}


def report_path():
    d = Path(os.environ.get("INTEROP_REPORT_DIR") or os.environ.get("INTEROP_WORKDIR") or "/tmp")
    d.mkdir(parents=True, exist_ok=True)
    return d / f"failover-{TARGET}.json"


def save():
    report_path().write_text(json.dumps(REPORT, indent=2, sort_keys=True))


class Writer(threading.Thread):
    """Creates ROOT/w<id>-<n> in a loop through a kazoo client; records each write's outcome."""

    def __init__(self, wid, hosts):
        super().__init__(daemon=True)
        self.wid = wid
        self.client = KazooClient(hosts=hosts, timeout=10, randomize_hosts=False,
                                  connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5))
        self.client.start(timeout=30)
        self.first_session = self.client.client_id[0]
        self.stop_flag = threading.Event()
        self.acked = []  # (path, issued_at, acked_at)
        self.failed = 0
        self.unknown = 0
        self.n = 0

    def run(self):
        while not self.stop_flag.is_set() and self.n < 100000:
            self.n += 1
            p = f"{ROOT}/w{self.wid}-{self.n:06d}"
            issued = time.monotonic()
            try:
                self.client.create_async(p, p.encode()).get(timeout=3)
                self.acked.append((p, issued, time.monotonic()))
            except Exception as e:  # noqa: BLE001
                if "Timeout" in type(e).__name__:
                    self.unknown += 1
                else:
                    self.failed += 1
                time.sleep(0.05)
            time.sleep(0.02)

    def acks_after(self, t):
        return [a for a in self.acked if a[2] > t]

    def finish(self):
        self.stop_flag.set()
        self.join(15)
        zk.close_quietly(self.client)


STATE = {}


def first_write_after(cluster, ids, t0, limit=90.0):
    """Seconds from t0 until a probe write through one of ids is acknowledged."""
    probe = KazooClient(hosts=cluster.hosts(ids), timeout=10, randomize_hosts=False,
                        connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.2))
    probe.start_async()
    try:
        while time.monotonic() - t0 < limit:
            try:
                probe.create_async(f"{ROOT}/probe-{uuid.uuid4().hex[:8]}", b"").get(timeout=1.5)
                return time.monotonic() - t0
            except Exception:  # noqa: BLE001
                time.sleep(0.02)
        return None
    finally:
        zk.close_quietly(probe)


def wait_leader(cluster, ids, t0, limit=90.0, exclude=()):
    """(leader, seconds until one voter leads a quorum of voters, seconds until every server in
    ids serves)."""
    voters = [i for i in ids if i in VOTERS]
    quorum = len(VOTERS) // 2 + 1
    leader = quorum_s = None
    while time.monotonic() - t0 < limit:
        modes = {i: cluster.mode(i, timeout=1.0) for i in ids}
        leaders = [i for i in voters if modes[i] == "leader"]
        serving_voters = [i for i in voters if modes[i] in ("leader", "follower")]
        if quorum_s is None and len(leaders) == 1 and leaders[0] not in exclude and len(serving_voters) >= quorum:
            leader, quorum_s = leaders[0], time.monotonic() - t0
        if quorum_s is not None and all(modes.values()):
            return leader, quorum_s, time.monotonic() - t0
        time.sleep(0.05)
    return leader, quorum_s, None


def measure(cluster, ids, t0, exclude=(), limit=90.0):
    """The leader poll and a probe writer, run side by side from t0."""
    out = {}
    th = threading.Thread(target=lambda: out.update(write=first_write_after(cluster, ids, t0, limit)),
                          daemon=True)
    th.start()
    leader, quorum_s, all_s = wait_leader(cluster, ids, t0, limit, exclude)
    th.join(limit + 10)
    return leader, quorum_s, all_s, out.get("write")


@pytest.fixture(scope="module")
def writers(cluster):
    c = zk.client(cluster.hosts())
    c.create(ROOT, b"")
    zk.close_quietly(c)
    order = [ALL[k:] + ALL[:k] for k in range(4)]  # each writer starts on another server
    ws = [Writer(k, cluster.hosts(o)) for k, o in enumerate(order)]
    for w in ws:
        w.start()
    time.sleep(2.0)
    yield ws
    for w in ws:
        w.finish()


def test_0_reelection_samples(cluster, writers):
    """Re-election time is noisy (Apache ZooKeeper's ranges from under a second to tens of
    seconds on this machine): kill -9 the leader, measure, restart it, several rounds."""
    rounds = int(os.environ.get("INTEROP_REELECTION_ROUNDS", "3"))
    samples = []
    for _ in range(rounds):
        cluster.wait_ready(ALL, 90)
        leader = cluster.leader()
        t0 = time.monotonic()
        cluster.kill9(leader)
        rest = [i for i in ALL if i != leader]
        new, elected, all_s, write = measure(cluster, rest, t0, exclude=(leader,))
        samples.append({"killed": leader, "new_leader": new, "new_leader_s": elected, "first_write_s": write})
        cluster.start(leader)
        assert new is not None and write is not None, f"no re-election after killing {leader}"
    cluster.wait_ready(ALL, 90)
    writes = sorted(x["first_write_s"] for x in samples)
    REPORT["reelection_samples"] = samples
    REPORT["reelection_median_s"] = writes[len(writes) // 2]
    REPORT["reelection_max_s"] = writes[-1]
    save()
    print(f"\nFAILOVER[{TARGET}] re-election samples (kill -9 leader -> first write): {writes}")


def test_1_kill_leader_new_leader_clients_carry_on(cluster, writers):
    leader = cluster.leader()
    assert leader in VOTERS
    REPORT["first_leader"] = leader
    t0 = time.monotonic()
    cluster.kill9(leader)
    rest = [i for i in ALL if i != leader]
    new, elected, all_s, write = measure(cluster, rest, t0, exclude=(leader,))
    REPORT["kill_leader"] = {"killed": leader, "new_leader": new, "new_leader_s": elected,
                             "all_serving_s": all_s, "first_write_s": write}
    save()
    print(f"\nFAILOVER[{TARGET}] kill -9 leader {leader}: new leader {new} after {elected}s, "
          f"first acknowledged write after {write}s")
    assert new is not None, "no new leader"
    assert write is not None, "no write acknowledged after the leader was killed"
    STATE["dead"] = [leader]
    # the writers carry on, on their own sessions
    t_resume = time.monotonic()
    zk.wait_until(lambda: all(w.acks_after(t_resume) for w in writers), 45,
                  what="every writer to get a write acknowledged after the new leader")
    same = [w.client.client_id[0] == w.first_session for w in writers]
    REPORT["kill_leader"]["sessions_kept"] = sum(same)
    save()
    assert all(same), "a writer's session did not survive the leader's death"


def test_2_minority_cannot_write(cluster, writers):
    assert "dead" in STATE, "phase 1 did not run"
    alive_voters = [i for i in VOTERS if i not in STATE["dead"]]
    second = cluster.leader(alive_voters) or alive_voters[0]
    cluster.kill9(second)
    STATE["dead"].append(second)
    rest = [i for i in ALL if i not in STATE["dead"]]
    # wait until the survivors know they have no quorum (they stop serving)
    t0 = time.monotonic()
    zk.wait_until(lambda: all(cluster.mode(i, timeout=1.0) in (None, "") for i in rest), 60,
                  what="the minority to stop serving")
    t_minority = time.monotonic()
    # writes through the survivors, and the writers' own, must all fail from now on
    probe_ok = 0
    probe_tries = 0
    c = KazooClient(hosts=cluster.hosts(rest), timeout=10, connection_retry=None)
    c.start_async()
    try:
        while time.monotonic() - t_minority < 6:
            probe_tries += 1
            try:
                c.create_async(f"{ROOT}/minority-{probe_tries}", b"").get(timeout=1)
                probe_ok += 1
            except Exception:  # noqa: BLE001
                time.sleep(0.05)
    finally:
        zk.close_quietly(c)
    leaked = [a for w in writers for a in w.acked if a[1] > t_minority]
    REPORT["minority"] = {"killed": second, "survivors": rest, "stop_serving_s": t_minority - t0,
                          "probe_writes": probe_tries, "probe_acked": probe_ok,
                          "writer_acks_issued_in_minority": len(leaked)}
    save()
    print(f"\nFAILOVER[{TARGET}] minority {rest}: {probe_ok}/{probe_tries} probe writes acknowledged, "
          f"{len(leaked)} writer writes acknowledged")
    assert probe_ok == 0 and not leaked, "a minority acknowledged a write"


def test_3_heal(cluster, writers):
    assert len(STATE.get("dead", [])) == 2, "phase 2 did not run"
    t0 = time.monotonic()
    starts = {}
    for i in STATE["dead"]:
        cluster.start(i)
        starts[i] = round(time.monotonic() - t0, 3)
    new, elected, all_s, write = measure(cluster, ALL, t0)
    REPORT["heal"] = {"restarted": STATE["dead"], "leader": new, "leader_s": elected, "all_serving_s": all_s,
                      "first_write_s": write, "started_after_s": starts}
    save()
    print(f"\nFAILOVER[{TARGET}] heal (restart {STATE['dead']}): leader {new} after {elected}s, "
          f"first write after {write}s")
    STATE["dead"] = []
    assert new is not None and write is not None
    t = time.monotonic()
    zk.wait_until(lambda: all(w.acks_after(t) for w in writers), 60, what="writers to resume")


def test_4_restart_everything_nothing_acknowledged_is_lost(cluster, writers):
    for w in writers:
        w.finish()
    acked = [a[0] for w in writers for a in w.acked]
    REPORT["writes"] = {"acknowledged": len(acked), "failed": sum(w.failed for w in writers),
                        "unknown": sum(w.unknown for w in writers)}
    cluster.kill_all()
    t0 = time.monotonic()
    starts = {}
    for i in ALL:
        cluster.start(i)
        starts[i] = round(time.monotonic() - t0, 3)
    new, elected, all_s, write = measure(cluster, ALL, t0, limit=120)
    lost = {}
    sizes = {}
    for i in ALL:
        c = zk.client(cluster.hosts((i,)))
        try:
            c.sync(ROOT)
            present = set(f"{ROOT}/{k}" for k in c.get_children(ROOT))
        finally:
            zk.close_quietly(c)
        sizes[i] = len(present)
        lost[i] = sorted(set(acked) - present)
    lost_any = sorted(set(p for v in lost.values() for p in v))
    REPORT["restart_all"] = {"leader": new, "leader_s": elected, "all_serving_s": all_s, "first_write_s": write,
                             "children_per_server": sizes, "started_after_s": starts}
    REPORT["writes"]["lost"] = len(lost_any)
    REPORT["writes"]["lost_examples"] = lost_any[:10]
    save()
    print(f"\nFAILOVER[{TARGET}] restart all (kill -9 x4): leader {new} after {elected}s, first write "
          f"after {write}s; {len(acked)} acknowledged writes, {len(lost_any)} lost")
    assert new is not None and write is not None
    assert not lost_any, f"acknowledged writes lost: {lost_any[:10]}"
    assert len(set(sizes.values())) == 1, f"servers disagree after the restart: {sizes}"
    cluster.wait_ready(ALL, 60)
    # clean up, 500 deletes per multi
    c = zk.client(cluster.hosts())
    try:
        kids = c.get_children(ROOT)
        for k in range(0, len(kids), 500):
            t = c.transaction()
            for name in kids[k : k + 500]:
                t.delete(f"{ROOT}/{name}")
            t.commit()
        c.delete(ROOT)
    finally:
        zk.close_quietly(c)
