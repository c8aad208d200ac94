"""The load the migration is judged by, through kazoo: persistent nodes, sequentials with gaps,
ACLs (digest, ip, world), multi, deletes, a 500 KiB value, setData versions, TTL and container
nodes, ephemerals of a session left open, and enough writes for snapshots plus a log tail."""

from __future__ import annotations

from kazoo.client import KazooClient
from kazoo.security import make_digest_acl, make_acl, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE


def load(hosts: str, big: bool = True, rounds: int = 60, zkcli=None) -> KazooClient:
    """Loads the tree; returns a still-open client owning ephemerals (its session stays live)."""
    c = KazooClient(hosts=hosts, timeout=30.0, auth_data=[("digest", "alice:secret")])
    c.start(timeout=30)
    c.create("/app", b"root of the app")
    c.create("/app/config", b"v0")
    for v in range(1, 6):
        c.set("/app/config", f"v{v}".encode())
    # sequentials with gaps: some deleted, so the counter runs ahead of the children
    c.create("/app/queue", b"")
    for i in range(12):
        p = c.create("/app/queue/item-", f"{i}".encode(), sequence=True)
        if i % 3 == 1:
            c.delete(p)
    # ACLs: digest, ip, world read-only
    c.create("/secure", b"secret", acl=[make_digest_acl("alice", "secret", all=True)])
    c.create("/secure/inner", b"x", acl=[make_digest_acl("alice", "secret", read=True, write=True),
                                          make_acl("ip", "127.0.0.1", read=True)])
    c.create("/public", b"ro", acl=READ_ACL_UNSAFE)
    c.set_acls("/app/config", [make_acl("world", "anyone", all=True)], version=0)
    # multi
    t = c.transaction()
    t.create("/multi", b"m")
    t.create("/multi/a", b"a")
    t.set_data("/app/config", b"from multi")
    t.check("/app", 0)
    t.commit()
    # a null-data node
    c.create("/empty")
    # deletes
    c.create("/gone", b"g")
    c.create("/gone/child", b"c")
    c.delete("/gone", recursive=True)
    if big:
        c.create("/big", b"Z" * (500 * 1024))
    # TTL and container nodes
    if zkcli:
        zkcli("create -t 3600000 /ttl t")
        zkcli("create -c /container")
        zkcli("create /container/kid k")
    # volume: several snapshots' worth (snapCount is small)
    c.create("/bulk", b"")
    for i in range(rounds):
        c.create(f"/bulk/n{i:03d}", f"{i}".encode())
        if i % 5 == 0:
            c.set(f"/bulk/n{i:03d}", b"changed")
        if i % 7 == 0:
            c.delete(f"/bulk/n{i:03d}")
    # ephemerals of a session that stays open
    c.create("/live", b"")
    c.create("/live/member-", b"me", ephemeral=True, sequence=True)
    c.create("/live/leader", b"me", ephemeral=True)
    # a session that closes: its ephemeral goes with it (closeSession txn)
    d = KazooClient(hosts=hosts, timeout=30.0)
    d.start(timeout=30)
    d.create("/live/short", b"", ephemeral=True)
    d.stop()
    d.close()
    return c


def zkcli_runner(hosts: str):
    """One zkCli.sh command per call (TTL and container creates, which kazoo cannot make)."""
    import subprocess

    def run(cmd: str) -> str:
        r = subprocess.run(["/usr/share/zookeeper/bin/zkCli.sh", "-server", hosts, *cmd.split()],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or "Exception" in r.stdout + r.stderr:
            raise AssertionError(f"zkCli.sh {cmd}: {r.stdout} {r.stderr}")
        return r.stdout

    return run


def walk(c: KazooClient, path: str = "/") -> dict:
    """Every node: data, full stat, ACL (as an authorised client sees it)."""
    out = {}

    def visit(p):
        data, st = c.get(p)
        acls, _ = c.get_acls(p)
        out[p] = {
            "data": None if data is None else data.hex(),
            "stat": [st.czxid, st.mzxid, st.ctime, st.mtime, st.version, st.cversion, st.aversion,
                     st.ephemeralOwner, st.dataLength, st.numChildren, st.pzxid],
            "acl": sorted((a.perms, a.id.scheme, a.id.id) for a in acls),
        }
        for k in sorted(c.get_children(p)):
            visit(("" if p == "/" else p) + "/" + k)

    visit(path)
    return out
