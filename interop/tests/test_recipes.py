"""kazoo's recipes over the ensemble, contenders spread over every server: Lock (mutual exclusion,
hand-over when a holder's session ends), Election, plus Counter, Semaphore, Barrier, Queue,
Party, DataWatch/ChildrenWatch (the seed's config centre and membership)."""

import threading
import time

from conftest import ALL, OBSERVER
from harness import zk


def test_lock_mutual_exclusion(clients, root):
    path = f"{root}/lock"
    counter = f"{root}/counter"
    clients(1).create(counter, b"0")
    holders = []
    inside = [0]
    max_inside = [0]
    guard = threading.Lock()
    errors = []

    def worker(server, n):
        c = clients(server)
        lock = c.Lock(path, identifier=f"w{server}")
        for _ in range(n):
            if not lock.acquire(timeout=60):
                errors.append(f"server {server}: lock not acquired in 60s")
                return
            try:
                with guard:
                    inside[0] += 1
                    max_inside[0] = max(max_inside[0], inside[0])
                holders.append(server)
                # a read-modify-write that only the lock makes safe
                c.sync(counter)
                v = int(c.get(counter)[0])
                c.set(counter, str(v + 1).encode())
                with guard:
                    inside[0] -= 1
            finally:
                lock.release()

    threads = [threading.Thread(target=worker, args=(s, 10)) for s in ALL]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert max_inside[0] == 1
    c = clients(2)
    c.sync(counter)
    assert int(c.get(counter)[0]) == 40
    assert sorted(set(holders)) == list(ALL)


def test_lock_passes_on_when_holder_session_ends(cluster, clients, root):
    path = f"{root}/lock2"
    holder = clients(1)
    lock = holder.Lock(path, "holder")
    assert lock.acquire(timeout=10)
    waiter = clients(OBSERVER)
    wlock = waiter.Lock(path, "waiter")
    got = threading.Event()

    def wait():
        if wlock.acquire(timeout=60):
            got.set()

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    time.sleep(1.0)
    assert not got.is_set()
    assert sorted(wlock.contenders()) == ["holder", "waiter"]
    holder.stop()  # the session closes, its ephemeral lock node goes
    assert got.wait(30)
    wlock.release()
    t.join(10)


def test_lock_contenders_order(clients, root):
    path = f"{root}/lock3"
    locks = []
    for i, s in enumerate(ALL):
        l = clients(s).Lock(path, f"c{i}")
        locks.append(l)
    assert locks[0].acquire(timeout=10)
    ts = []
    for l in locks[1:]:
        t = threading.Thread(target=l.acquire, kwargs={"timeout": 60}, daemon=True)
        t.start()
        ts.append(t)
        time.sleep(0.3)
    zk.wait_until(lambda: len(locks[0].contenders()) == 4, 20, what="four contenders")
    assert locks[0].contenders() == ["c0", "c1", "c2", "c3"]
    for i in range(4):
        zk.wait_until(lambda: locks[i].is_acquired, 30, what=f"c{i} to hold the lock")
        locks[i].release()
    for t in ts:
        t.join(10)


def test_election(cluster, clients, root):
    path = f"{root}/election"
    leaders = []
    active = [0]
    max_active = [0]
    guard = threading.Lock()
    stops = {}
    cs = {}
    dead = set()

    def run(server):
        c = cs[server]
        ev = threading.Event()
        stops[server] = ev

        def lead():
            with guard:
                active[0] += 1
                max_active[0] = max(max_active[0], active[0])
                leaders.append(server)
            ev.wait(60)
            with guard:
                if server not in dead:
                    active[0] -= 1

        c.Election(path, f"node{server}").run(lead)

    for s in ALL:
        cs[s] = clients(s)
    threads = {s: threading.Thread(target=run, args=(s,), daemon=True) for s in ALL}
    for s in ALL:
        threads[s].start()
        time.sleep(0.2)
    zk.wait_until(lambda: len(leaders) == 1, 20, what="a first leader")
    first = leaders[0]
    want = sorted(f"node{s}" for s in ALL)

    def contenders():
        cs[first].sync(path)
        return sorted(cs[first].Election(path).contenders()) == want

    # the last contender may still be on its way in
    zk.wait_until(contenders, 20, what="all four contenders")
    # the leader steps down: another contender leads
    stops[first].set()
    zk.wait_until(lambda: len(leaders) == 2, 20, what="a second leader")
    second = leaders[1]
    assert second != first
    # the second leader's session dies: a third leads (its lead() is left running: kazoo does
    # not interrupt it, so it no longer counts as a leader)
    with guard:
        dead.add(second)
        active[0] -= 1
    cs[second].stop()
    zk.wait_until(lambda: len(leaders) == 3, 30, what="a third leader")
    assert max_active[0] == 1
    for ev in stops.values():
        ev.set()


def test_counter(clients, root):
    path = f"{root}/counter"
    threads = []

    def add(server):
        c = clients(server)
        ctr = c.Counter(path)
        for _ in range(25):
            ctr += 1

    for s in ALL:
        threads.append(threading.Thread(target=add, args=(s,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    c = clients(1)
    c.sync(path)
    assert c.Counter(path).value == 100


def test_semaphore(clients, root):
    path = f"{root}/sem"
    inside = [0]
    peak = [0]
    guard = threading.Lock()

    def work(server):
        sem = clients(server).Semaphore(path, max_leases=2, identifier=f"s{server}")
        for _ in range(3):
            with sem:
                with guard:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.05)
                with guard:
                    inside[0] -= 1

    ts = [threading.Thread(target=work, args=(s,)) for s in ALL]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert 1 <= peak[0] <= 2


def test_barrier_and_double_barrier(clients, root):
    b = clients(1).Barrier(f"{root}/barrier")
    b.create()
    released = threading.Event()

    def waiter():
        if clients(3).Barrier(f"{root}/barrier").wait(30):
            released.set()

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    time.sleep(0.5)
    assert not released.is_set()
    b.remove()
    assert released.wait(20)

    entered = []

    def member(server):
        db = clients(server).DoubleBarrier(f"{root}/dbar", 3)
        db.enter()
        entered.append(server)
        db.leave()

    ts = [threading.Thread(target=member, args=(s,), daemon=True) for s in (1, 2, OBSERVER)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert sorted(entered) == [1, 2, OBSERVER]


def test_queues(clients, root):
    q = clients(2).Queue(f"{root}/q")
    for i in range(10):
        q.put(f"item{i}".encode())
    got = [clients(OBSERVER).Queue(f"{root}/q").get() for _ in range(10)]
    assert got == [f"item{i}".encode() for i in range(10)]
    lq = clients(3).LockingQueue(f"{root}/lq")
    lq.put_all([b"a", b"b"], priority=50)
    lq.put(b"urgent", priority=1)
    c2 = clients(1).LockingQueue(f"{root}/lq")
    assert c2.get(10) == b"urgent"
    assert c2.consume()
    assert c2.get(10) == b"a"
    assert c2.release()
    c3 = clients(2).LockingQueue(f"{root}/lq")
    assert c3.get(10) == b"a"
    assert c3.consume()


def test_party_membership(clients, root):
    """The seed's membership recipe: ephemeral members, a child watch sees joins and leaves."""
    path = f"{root}/party"
    seen = []
    watcher = clients(1)
    watcher.ensure_path(path)
    watcher.ChildrenWatch(path, lambda kids: seen.append(sorted(kids)))
    members = []
    for s in (2, 3, OBSERVER):
        c = clients(s)
        p = c.Party(path, f"member{s}")
        p.join()
        members.append((c, p))
    zk.wait_until(lambda: seen and len(seen[-1]) == 3, 10, what="three members")
    assert len(members[0][1]) == 3
    members[0][0].stop()  # a member's session ends: it leaves
    zk.wait_until(lambda: len(seen[-1]) == 2, 10, what="a member to leave")


def test_config_centre_data_watch(clients, root):
    """The seed's config centre: a DataWatch sees every new configuration version."""
    path = f"{root}/config"
    admin = clients(OBSERVER)
    admin.create(path, b"v0")
    seen = []
    clients(2).DataWatch(path, lambda data, stat: seen.append(data) if data is not None else None)
    zk.wait_until(lambda: seen == [b"v0"], 10, what="the first config")
    for k in range(1, 6):
        admin.set(path, f"v{k}".encode())
        zk.wait_until(lambda: seen[-1] == f"v{k}".encode(), 10, what=f"config v{k}")
    # every version was either seen or coalesced, never out of order
    assert seen == sorted(seen, key=lambda d: int(d[1:]))


def test_lease(clients, root):
    import datetime

    a = clients(1).NonBlockingLease(f"{root}/lease", datetime.timedelta(seconds=30), identifier="a")
    assert bool(a)
    b = clients(3).NonBlockingLease(f"{root}/lease", datetime.timedelta(seconds=30), identifier="b")
    assert not bool(b)
