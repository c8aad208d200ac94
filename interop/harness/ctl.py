"""Command line for the harness cluster (used by scripts/interop.sh and by hand):

  python3 interop/harness/ctl.py --target zookeeper|ensemble --workdir DIR [--base PORT] \
      configs|start|stop|kill|status|hosts|leader
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.cluster import ALL, Cluster, ClusterError  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True, choices=["zookeeper", "ensemble"])
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--base", type=int)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("action", choices=["configs", "start", "stop", "kill", "status", "hosts", "leader"])
    a = ap.parse_args()
    c = Cluster(a.target, a.workdir, base=a.base)
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
