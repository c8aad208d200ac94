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
- Three Ensemble observers (server.4..6), each with its own replica; a second writer goes
  through server.5. The cut-over (step f): the ZooKeeper followers are stopped, then the
  leader; each `zk-observe --cut-over --ensemble-config` writes its replica (sessions and
  ephemerals) as its Ensemble server's state, and the config with servers 4..6 as
  participants, and exits (server.6 paused until ZooKeeper's leader dropped it, so it cuts
  over behind the others). No replica vouches for its history (no currentEpoch), so the two
  servers started first, the newest replica left out, elect nobody: they say they wait for
  all 3 voters, `srvr` says they are not serving, no session is made; the third's start
  makes a 3-voter Ensemble ensemble led by the newest replica (each server's first role names
  it), continuing from the highest zxid, server.6 synced to it; the observer's client reconnects with its session id,
  its ephemeral kept, the tree equal in every field to what it read before, every write
  acknowledged by ZooKeeper or an observer present, zxids monotone; the write pause (from
  stopping ZooKeeper to the cut-over, plus from the last server's start to the first write
  acknowledged on Ensemble) is printed."""

from __future__ import annotations

import signal
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
from live import (ENSEMBLE, check_watches, close_clients, leader_zxid, needs_zookeeper,  # noqa: E402
                  read_dump, same, start_zookeeper, user_tree, write_through,
                  zookeeper_with_observers)

pytestmark = needs_zookeeper


def test_observer_follows_live_zookeeper():
    root = Path(tempfile.mkdtemp(prefix="ensemble-live-"))
    zks, ens, _ = zookeeper_with_observers(root, 3)
    e4 = ens[0]
    d, cfg, dump = e4.dir, e4.cfg, e4.dump
    c = o = o5 = w = None
    try:
        hosts = start_zookeeper(zks)
        c = load.load(hosts, zkcli=load.zkcli_runner(hosts))

        # start refuses: its peers are ZooKeeper servers
        r = subprocess.run([ENSEMBLE, "start", str(cfg)], capture_output=True, text=True, timeout=120)
        out = r.stdout + r.stderr + (d / "data" / "zookeeper.out").read_text(errors="replace")
        print(out)
        assert r.returncode != 0
        assert "is an Apache ZooKeeper server" in out and "zk-observe" in out, out

        # server.4 also reads the stopped ZooKeeper servers' logs at its cut-over: what
        # ZooKeeper's leader logged beyond its replica (committed but never INFORMed, or only
        # proposed) is added, digest-checked, as ZooKeeper's own recovery would keep it
        for e in ens:
            e.observe(zk_dirs=[z.data_dir for z in zks] if e is e4 else ())

        def caught_up():
            want = leader_zxid(zks)
            return want is not None and all(e.zxid() == want for e in ens)

        zk.wait(caught_up, 60, "the observers synced with the leader")
        w = KazooClient(hosts=hosts, timeout=20, auth_data=[("digest", "alice:secret")])
        w.start(timeout=30)
        w.sync("/")
        want = load.walk(w)
        for e in ens:
            same(want, e.replica()[0])

        # Clients of the observer: reads equal ZooKeeper's, watches fire, writes refused.
        o = KazooClient(hosts=f"127.0.0.1:{e4.client_port}", timeout=20, auth_data=[("digest", "alice:secret")])
        o.start(timeout=30)
        same(want, load.walk(o))
        check_watches(w, o, "/live-watch")
        # writes through the observer land in ZooKeeper, answered as ZooKeeper answers them
        session = o.client_id[0]
        eph = write_through(o, w, "/via-observer")
        shown = load.zkcli_runner(f"127.0.0.1:{e4.client_port}")("get /live-watch")
        assert "\n2\n" in shown.replace("\r", ""), shown

        # Write load; the leader is killed in the middle; the replica's zxid only grows.
        stop = threading.Event()
        # each writer's gap between writes: they go on until the states waited for (during the
        # cut-over, until Ensemble answers), at a pace that keeps the tree small
        pace = {"gap": 0.01}
        written: list[str] = []
        zxids: list[int] = []

        def writer():
            n = 0
            # a bounded wait for each answer: a client of a stopped ZooKeeper would wait for ever
            while not stop.is_set():
                try:
                    written.append(w.create_async("/live-load/n-", str(n).encode(), sequence=True,
                                                  makepath=True).get(timeout=10))
                    n += 1
                    time.sleep(pace["gap"])
                except Exception:  # noqa: BLE001 - reconnecting across the leader's death
                    time.sleep(0.2)

        zxids_of: dict[int, list[int]] = {e.sid: [] for e in ens}

        def sample():
            while not stop.is_set():
                for e in ens:
                    z = e.zxid()
                    if z is not None:
                        zxids_of[e.sid].append(z)
                time.sleep(0.05)

        via_observer: list[str] = []

        def observer_writer():
            n = 0
            while not stop.is_set():
                try:
                    via_observer.append(o.create_async("/live-obs/n-", str(n).encode(), sequence=True,
                                                       makepath=True).get(timeout=10))
                    n += 1
                    time.sleep(pace["gap"])
                except Exception:  # noqa: BLE001 - the observer between leaders
                    time.sleep(0.2)

        # a second client writing through another Ensemble observer
        o5 = KazooClient(hosts=f"127.0.0.1:{ens[1].client_port}", timeout=20)
        o5.start(timeout=30)
        via_o5: list[str] = []

        def observer5_writer():
            n = 0
            while not stop.is_set():
                try:
                    via_o5.append(o5.create_async("/live-o5/n-", str(n).encode(), sequence=True,
                                                  makepath=True).get(timeout=10))
                    n += 1
                    time.sleep(pace["gap"])
                except Exception:  # noqa: BLE001 - the observer between leaders
                    time.sleep(0.2)

        threads = [threading.Thread(target=writer), threading.Thread(target=sample),
                   threading.Thread(target=observer_writer), threading.Thread(target=observer5_writer)]
        for t in threads:
            t.start()
        # states, not time: each writer has writes acknowledged before the leader's death and
        # after the new leader's election
        def counts() -> list[int]:
            return [len(written), len(via_observer), len(via_o5)]

        zk.wait(lambda: min(counts()) >= 10, 90, "writes through ZooKeeper and both observers")
        leader = next(z for z in zks if z.mode() == "leader")
        leader.proc.kill()
        leader.proc.wait()
        zk.wait(lambda: leader_zxid(zks) is not None, 60, "a new ZooKeeper leader")
        marks = counts()
        zk.wait(lambda: all(n >= m + 11 for n, m in zip(counts(), marks)), 90,
                "writes through ZooKeeper and both observers under the new leader")
        stop.set()
        for t in threads:
            t.join()
        assert len(written) > 20, len(written)
        zk.wait(caught_up, 60, "the observers caught up with the new leader")
        w.sync("/")
        want = load.walk(w)
        for e in ens:
            same(want, e.replica()[0])
        got, summary = read_dump(dump)
        # the observer's client reconnected with its session and reads the same tree
        zk.wait(lambda: o.connected, 30, "the observer's client reconnected")
        assert o.client_id[0] == session
        same(want, load.walk(o))
        # every create the observer acknowledged is in ZooKeeper; the session's ephemeral too
        assert len(via_observer) > 20, len(via_observer)
        assert [p for p in via_observer if w.exists(p) is None] == []
        assert w.exists(eph).ephemeralOwner == session
        assert len(via_o5) > 20, len(via_o5)
        assert [p for p in via_o5 if w.exists(p) is None] == []
        for sid, zxids in zxids_of.items():
            assert all(a <= b for a, b in zip(zxids, zxids[1:])), f"server.{sid}'s zxid went back"
            assert summary["zxid"] >> 32 > zxids[0] >> 32, f"server.{sid}: no new epoch seen"
        # The cut-over, under write load through ZooKeeper and through two observers: the
        # ZooKeeper followers are stopped first (the leader can commit nothing more, and its
        # INFORMs of what it committed go out), then the leader; each observer, every voter
        # refusing, installs its replica and the Ensemble config, and exits.
        # the loading client's session is closed first (it reaches ZooKeeper only; the
        # observer's client's session and ephemeral are the ones carried over)
        c.stop()
        c.close()
        c = None
        o.sync("/")
        before = user_tree(load.walk(o))
        pace.update(gap=0.05)
        written.clear()
        via_observer.clear()
        via_o5.clear()
        stop.clear()
        threads = [threading.Thread(target=writer), threading.Thread(target=observer_writer),
                   threading.Thread(target=observer5_writer)]
        for t in threads:
            t.start()
        zk.wait(lambda: len(written) >= 5 and len(via_observer) >= 5 and len(via_o5) >= 5, 60,
                "writes through ZooKeeper and both observers")
        # server.6 falls behind: its zk-observe is paused until the ZooKeeper leader drops it
        # (no PING answered for syncLimit), and writes go on without it, so it cuts over at an
        # older zxid; Ensemble's election must pick one with the most history and sync it
        leader = next(z for z in zks if z.proc and z.proc.poll() is None and z.mode() == "leader")
        e6 = ens[2]
        e6.proc.send_signal(signal.SIGSTOP)

        def synced_observers() -> int | None:
            for line in zk.four_letter(leader.client_port, "mntr").splitlines():
                if line.startswith("zk_synced_observers"):
                    return int(line.split()[1])
            return None

        zk.wait(lambda: synced_observers() == 2, 60, "the ZooKeeper leader dropped server.6")
        behind = len(written)
        zk.wait(lambda: len(written) >= behind + 5, 60, "writes server.6 does not have")
        t0 = time.monotonic()
        for z in zks:
            if z is not leader:
                z.stop()
        leader.stop()
        e6.proc.send_signal(signal.SIGCONT)
        for e in ens:
            assert e.proc.wait(timeout=90) == 0, e.log()
        texts = {e.sid: e.log() for e in ens}
        print("\n".join(f"--- server.{sid}\n{t}" for sid, t in texts.items()))
        cut = {}
        for sid, text in texts.items():
            assert "cut over at zxid" in text, text
            cut[sid] = int(text.split("cut over at zxid ")[1].split(":")[0], 16)
        t_cut = time.monotonic()
        print("cut-over zxids:", {sid: hex(z) for sid, z in cut.items()})
        assert cut[6] < max(cut[4], cut[5]), cut
        # server.4 continued its replica from the newest ZooKeeper log: it ends where that log
        # ends, at least as far as any observer got
        tail = texts[4].split("zk-observe: ZooKeeper's logs: ")[1].splitlines()[0]
        assert "each digest-checked" in tail, tail
        assert int(tail.split("now at zxid ")[1], 16) == cut[4], (tail, cut)
        assert cut[4] >= max(cut[5], cut[6]), cut
        for e in ens:
            assert "server.4=" in e.ecfg.read_text() and ":participant" in e.ecfg.read_text()
            assert "no currentEpoch" in texts[e.sid], texts[e.sid]
            assert "forms once every one of servers 4,5,6 is up" in texts[e.sid], texts[e.sid]
        # Step 5, enforced: no replica vouches for its history (no currentEpoch), so two of
        # the three, the newest replica left out, elect nobody and accept no write; they wait
        # for the third, saying so. Votes order by (epoch 0 for all, zxid, id): the newest.
        newest = max(ens, key=lambda e: (cut[e.sid], e.sid))
        first = [e for e in ens if e is not newest]
        for e in first:
            e.start()
        for e in first:
            zk.wait(lambda e=e: "waiting for all 3 voters of a new ensemble" in e.server_log(), 90,
                    f"server.{e.sid} saying it waits for every voter")
        for e in first:
            shown = zk.four_letter(e.client_port, "srvr")
            assert "This ZooKeeper instance is not currently serving requests" in shown, shown
            k = KazooClient(hosts=f"127.0.0.1:{e.client_port}", timeout=20)
            with pytest.raises(Exception):  # noqa: B017 - any refusal: no session, no write
                k.start(timeout=3)
                k.create("/two-of-three", b"")
            close_clients(k)
        t_third = time.monotonic()
        newest.start()

        def writable(k: KazooClient, path: str):
            def made() -> bool:
                try:
                    k.create(path, b"")
                    return True
                except NodeExistsError:  # made, its answer lost in a reconnect
                    return True
                except Exception:  # noqa: BLE001 - not serving yet
                    return False
            return made

        # the pause an operator starting all three at once sees: the cut-over, then the last
        # server's start to a write acknowledged (a new client: the observer's client backed
        # off while the test kept two of three waiting)
        fresh = KazooClient(hosts=f"127.0.0.1:{newest.client_port}", timeout=20)
        fresh.start(timeout=90)
        zk.wait(writable(fresh, "/after-cut-over"), 90, "a write on Ensemble after the cut-over")
        t_write = time.monotonic()
        close_clients(fresh)
        pause = (t_cut - t0) + (t_write - t_third)
        print(f"cut-over write pause: {pause:.2f} s (ZooKeeper stopped -> cut over "
              f"{t_cut - t0:.2f} s, the last server started -> first write acknowledged "
              f"{t_write - t_third:.2f} s; {t_write - t0:.2f} s with the test's own wait "
              f"with two of three up)")
        # the observer's client writes again, with its session
        zk.wait(writable(o, "/after-cut-over-o"), 120, "the observer's client writing on Ensemble")
        stop.set()
        for t in threads:
            t.join()
        # server.6 may still be syncing when the other two already answer
        zk.wait(lambda: sorted(e.mode() for e in ens) == ["follower", "follower", "leader"], 60,
                "one Ensemble leader and two followers")
        # the first leader of the new ensemble is the newest replica, for each of the three
        # (their logs: `server N is now LEADING|FOLLOWING (epoch E, leader L, ...)`)
        for e in ens:
            first_role = next(line for line in e.server_log().splitlines()
                              if " is now LEADING (" in line or " is now FOLLOWING (" in line)
            assert f", leader {newest.sid}, " in first_role, (e.sid, first_role, cut)
        assert f"leader established server={newest.sid} " in newest.server_log()
        assert o.client_id[0] == session
        assert o.exists(eph).ephemeralOwner == session
        o.sync("/")
        after = user_tree(load.walk(o))
        made = after.pop("/after-cut-over")["stat"][0]
        assert made > max(cut.values()), (hex(made), cut)
        assert after.pop("/after-cut-over-o")["stat"][0] > made
        # everything acknowledged, by ZooKeeper or by an observer, is on Ensemble
        lost = [p for p in written + via_observer + via_o5 if p not in after]
        assert not lost, lost[:10]
        # what the observer's client read before is there unchanged (the writers only add)
        bad = [p for p in sorted(before) if p != "/" and before.get(p) != after.get(p)
               and not p.startswith(("/live-load", "/live-obs", "/live-o5"))]
        assert not bad, [(p, before.get(p), after.get(p)) for p in bad[:5]]
        # the other Ensemble servers serve the same tree
        for e in ens[1:]:
            k = KazooClient(hosts=f"127.0.0.1:{e.client_port}", timeout=20,
                            auth_data=[("digest", "alice:secret")])
            k.start(timeout=30)
            k.sync("/")
            other = user_tree(load.walk(k))
            k.stop()
            k.close()
            other.pop("/after-cut-over", None)
            other.pop("/after-cut-over-o", None)
            diff = [p for p in set(after) | set(other) if after.get(p) != other.get(p)
                    and not p.startswith(("/live-load", "/live-obs", "/live-o5"))]
            assert not diff, (e.sid, diff[:5])
        text = texts[4]
        assert text.count("synced by") >= 2, text
        assert "digests checked" in text and " 0 digests checked" not in text, text
    finally:
        for e in ens:
            e.close()
        close_clients(o5, w, o, c)
        zk.stop_all(zks)
