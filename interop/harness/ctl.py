"""Command line for the harness cluster (used by scripts/interop.sh and by hand):

  python3 interop/harness/ctl.py --target zookeeper|ensemble --workdir DIR [--base PORT] \
      configs|start|stop|kill|status|hosts|leader
  python3 interop/harness/ctl.py --target T start-one|stop-one|kill-one PATH/conf/zooN.cfg
      (one server, named by its config: the form kazoo's suite runner uses)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.cluster import ALL, Cluster, ClusterError  # noqa: E402


def _base_of(cfg: Path) -> int:
    """The port base of a harness config: its clientPort minus (sid - 1)."""
    sid = int(cfg.stem.replace("zoo", ""))
    for line in cfg.read_text().splitlines():
        if line.startswith("clientPort="):
            return int(line.split("=", 1)[1]) - (sid - 1)
    raise SystemExit(f"no clientPort in {cfg}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True, choices=["zookeeper", "ensemble"])
    ap.add_argument("--workdir")
    ap.add_argument("--base", type=int)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("action", choices=["configs", "start", "stop", "kill", "status", "hosts", "leader",
                                       "start-one", "stop-one", "kill-one"])
    ap.add_argument("cfg", nargs="?")
    a = ap.parse_args()
    if a.action.endswith("-one"):
        cfg = Path(a.cfg).resolve()
        sid = int(cfg.stem.replace("zoo", ""))
        c = Cluster(a.target, cfg.parent.parent, base=_base_of(cfg))
        try:
            {"start-one": c.start, "stop-one": c.stop, "kill-one": c.kill9}[a.action](sid)
        except ClusterError as e:
            print(f"interop: {e}", file=sys.stderr)
            return 1
        print({"start-one": "STARTED", "stop-one": "STOPPED", "kill-one": "KILLED"}[a.action])
        return 0
    if not a.workdir:
        ap.error("--workdir is required")
    base = a.base
    existing = Path(a.workdir) / "conf" / "zoo1.cfg"
    if base is None and existing.exists():
        base = _base_of(existing)  # a cluster made earlier keeps its ports
    c = Cluster(a.target, a.workdir, base=base)
    try:
        if a.action == "configs":
            c.write_configs()
        elif a.action == "start":
            if not (c.servers[1].cfg.exists()):
                c.write_configs()
            c.start_all(ALL, timeout=a.timeout)
            print(" ".join(f"{i}:{m}" for i, m in c.modes().items()))
        elif a.action == "stop":
            c.stop_all()
        elif a.action == "kill":
            c.kill_all()
        elif a.action == "status":
            for i in ALL:
                print(f"server.{i} port {c.servers[i].client_port} running={c.is_running(i)} mode={c.mode(i)}")
        elif a.action == "hosts":
            print(c.hosts())
        elif a.action == "leader":
            print(c.leader() or "")
    except ClusterError as e:
        print(f"interop: {e}", file=sys.stderr)
        for i in ALL:
            tail = c.log_tail(i, 15)
            if tail:
                print(f"--- server {i} ---\n{tail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
