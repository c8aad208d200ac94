"""Print the failover figures of one or more runs (JSON reports of test_failover.py) side by side."""

import json
import sys


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}s"
    return str(v)


def main(paths):
    reports = []
    for p in paths:
        with open(p) as f:
            reports.append(json.load(f))
    reports.sort(key=lambda r: r.get("target") != "ensemble")
    rows = [
        ("re-election, median of rounds (kill -9 leader -> write)", ("reelection_median_s",)),
        ("re-election, worst of rounds", ("reelection_max_s",)),
        ("kill -9 leader: new leader after", ("kill_leader", "new_leader_s")),
        ("kill -9 leader: first acknowledged write after", ("kill_leader", "first_write_s")),
        ("kill -9 leader: all survivors serving after", ("kill_leader", "all_serving_s")),
        ("kill -9 leader: writer sessions kept (of 4)", ("kill_leader", "sessions_kept")),
        ("minority: probe writes acknowledged", ("minority", "probe_acked")),
        ("minority: writer writes acknowledged", ("minority", "writer_acks_issued_in_minority")),
        ("heal: leader with a quorum after", ("heal", "leader_s")),
        ("heal: first write after", ("heal", "first_write_s")),
        ("heal: all 4 serving (observer too) after", ("heal", "all_serving_s")),
        ("restart all (kill -9 x4): leader with a quorum after", ("restart_all", "leader_s")),
        ("restart all: first write after", ("restart_all", "first_write_s")),
        ("restart all: all 4 serving after", ("restart_all", "all_serving_s")),
        ("acknowledged writes", ("writes", "acknowledged")),
        ("acknowledged writes LOST", ("writes", "lost")),
    ]
    width = max(len(r[0]) for r in rows) + 2

    def get(r, keys):
        v = r
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v

    print("".ljust(width) + "".join(r.get("target", "?").ljust(14) for r in reports))
    for label, keys in rows:
        print(label.ljust(width) + "".join(fmt(get(r, keys)).ljust(14) for r in reports))
    by = {r.get("target"): r for r in reports}
    if "ensemble" in by and "zookeeper" in by:
        e = by["ensemble"].get("reelection_median_s")
        z = by["zookeeper"].get("reelection_median_s")
        if e is not None and z is not None:
            verdict = "no worse than" if e <= z * 1.25 + 0.25 else "WORSE than"
            print(f"re-election (kill -9 leader -> first acknowledged write, median): ensemble {e:.2f}s, "
                  f"zookeeper {z:.2f}s: ensemble is {verdict} Apache ZooKeeper")


if __name__ == "__main__":
    main(sys.argv[1:])
