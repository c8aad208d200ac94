"""Apache ZooKeeper's own zkCli.sh (3.8, Debian package) against the ensemble: a scripted session
fed on stdin, its stdout and stderr checked line by line (in order, zxids and times by pattern);
one-shot commands with their exit codes; the seed's demo (create on server 1, seen on 2 and 3)."""

import os
import re
import shutil
import subprocess
import uuid

import pytest
from kazoo.security import make_digest_acl_credential

from conftest import OBSERVER
from harness.cluster import ZK_HOME

ZKCLI = str(ZK_HOME / "bin" / "zkCli.sh")
pytestmark = pytest.mark.skipif(
    not os.path.exists(ZKCLI) or not shutil.which("java"), reason="zkCli.sh / java not installed"
)

ZX = r"0x[0-9a-f]+"
TIME = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \w+ \d{4}"


def run_cli(port, args=(), stdin=None, timeout=90):
    r = subprocess.run(
        [ZKCLI, "-server", f"127.0.0.1:{port}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CLIENT_JVMFLAGS": "-XX:TieredStopAtLevel=1 -Xshare:auto"},
    )
    clean = lambda s: [l for l in s.splitlines() if not l.startswith("SLF4J:")]  # noqa: E731
    return r.returncode, clean(r.stdout), clean(r.stderr)


def expect_in_order(lines, patterns, what):
    """Each pattern must fully match a line, in this order (other lines may come between)."""
    i = 0
    for pat in patterns:
        rx = re.compile(pat)
        while i < len(lines) and not rx.fullmatch(lines[i]):
            i += 1
        assert i < len(lines), f"{what}: no line matching {pat!r} (in order) in:\n" + "\n".join(lines)
        i += 1


def stat_block(czxid=ZX, mzxid=ZX, pzxid=ZX, cversion=r"\d+", version=r"\d+", aversion=r"\d+",
               owner=ZX, length=r"\d+", children=r"\d+"):
    return [
        f"cZxid = {czxid}", f"ctime = {TIME}", f"mZxid = {mzxid}", f"mtime = {TIME}",
        f"pZxid = {pzxid}", f"cversion = {cversion}", f"dataVersion = {version}",
        f"aclVersion = {aversion}", f"ephemeralOwner = {owner}", f"dataLength = {length}",
        f"numChildren = {children}",
    ]


@pytest.mark.parametrize("server", [2, OBSERVER])
def test_scripted_session(cluster, server):
    r = f"/zkcli-{uuid.uuid4().hex[:8]}"
    digest = make_digest_acl_credential("user1", "pw1")
    script = "\n".join([
        f'create {r} "hello world"',
        f"create -s {r}/seq- a",
        f"create -s {r}/seq- b",
        f"create -e {r}/eph e",
        f"create -c {r}/cont",
        f"create -t 100000 {r}/ttl t",
        f"create {r} again",
        f"ls {r}",
        f"ls -s {r}",
        f"ls -R {r}",
        f"get -s {r}",
        f"stat {r}/eph",
        f"set -v 7 {r} nope",
        f"set -s {r} changed",
        f"get -w {r}",
        f"set {r} again",
        f"addWatch -m PERSISTENT_RECURSIVE {r}",
        f"create {r}/cont/kid k",
        f"delete {r}/cont/kid",
        f"getEphemerals {r}",
        f"getAllChildrenNumber {r}",
        "whoami",
        "addauth digest user1:pw1",
        "whoami",
        f"create {r}/secure s digest:{digest}:cdrwa",
        f"getAcl {r}/secure",
        f"setAcl {r}/secure world:anyone:r",
        f"getAcl {r}/secure",
        f"sync {r}",
        f"removewatches {r} -a",
        f"delete {r}/nope",
        f"delete {r}",
        f"deleteall {r}",
        f"stat {r}",
        f"ls {r}",
        "quit",
        "",
    ])
    rc, out, err = run_cli(cluster.servers[server].client_port, stdin=script)
    # (the exit code of a piped session is the last command's: `ls` of a deleted node, 1)
    assert rc == 1, (out, err)
    kids = r"\[cont, eph, seq-0000000000, seq-0000000001, ttl\]"
    expect_in_order(out, [
        r"WatchedEvent state:SyncConnected type:None path:null",
        kids,  # ls
        kids, *stat_block(cversion="5", version="0", length="11", children="5", owner="0x0"),  # ls -s
        re.escape(r), *(re.escape(f"{r}/{k}") for k in ("cont", "eph", "seq-0000000000", "seq-0000000001", "ttl")),
        "hello world", *stat_block(version="0", length="11", children="5"),  # get -s
        *stat_block(owner=r"0x[0-9a-f]{1,16}", length="1", children="0", version="0"),  # stat eph
        *stat_block(version="1", length="7", children="5"),  # set -s
        "changed",  # get -w
        re.escape(f"WatchedEvent state:SyncConnected type:NodeDataChanged path:{r}"),
        re.escape(f"WatchedEvent state:SyncConnected type:NodeCreated path:{r}/cont/kid"),
        re.escape(f"WatchedEvent state:SyncConnected type:NodeDeleted path:{r}/cont/kid"),
        re.escape(f"[{r}/eph]"),
        "5",
        "Auth scheme: User", "ip: 127.0.0.1",
        "Auth scheme: User", "ip: 127.0.0.1", "digest: user1",
        re.escape(f"'digest,'{digest}"), ": cdrwa",
        "'world,'anyone", ": r",
        "Sync is OK",
        re.escape(f"WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:{r}"),
        r"WatchedEvent state:Closed type:None path:null",
    ], "stdout")
    expect_in_order(err, [
        re.escape(f"Created {r}"),
        re.escape(f"Created {r}/seq-0000000000"),
        re.escape(f"Created {r}/seq-0000000001"),
        re.escape(f"Created {r}/eph"),
        re.escape(f"Created {r}/cont"),
        re.escape(f"Created {r}/ttl"),
        re.escape(f"Node already exists: {r}"),
        re.escape(f"version No is not valid : {r}"),
        re.escape(f"Created {r}/cont/kid"),
        re.escape(f"Created {r}/secure"),
        re.escape(f"Node does not exist: {r}/nope"),
        re.escape(f"Node not empty: {r}"),
        re.escape(f"Node does not exist: {r}"),
        re.escape(f"Node does not exist: {r}"),
    ], "stderr")


def test_one_shot_commands_and_exit_codes(cluster):
    p = f"/zkcli-one-{uuid.uuid4().hex[:8]}"
    port = cluster.servers[1].client_port
    rc, out, err = run_cli(port, ["create", p, "payload"])
    assert rc == 0 and f"Created {p}" in err
    rc, out, err = run_cli(cluster.servers[3].client_port, ["get", p])
    assert rc == 0 and out[-1] == "payload"
    rc, out, err = run_cli(port, ["get", p + "-missing"])
    assert rc != 0 and f"Node does not exist: {p}-missing" in err
    rc, out, err = run_cli(port, ["ls", "/"])
    assert rc == 0 and re.fullmatch(r"\[.*\]", out[-1]) and p[1:] in out[-1] and "zookeeper" in out[-1]
    rc, out, err = run_cli(port, ["delete", p])
    assert rc == 0
    rc, out, err = run_cli(port, ["stat", p])
    assert rc != 0 and f"Node does not exist: {p}" in err


def test_seed_demo_create_on_one_seen_on_all(cluster):
    """The seed's check: `create /firstNode "server1创建的"` on server 1, `ls /` on the others."""
    node = f"firstNode-{uuid.uuid4().hex[:6]}"
    rc, out, err = run_cli(cluster.servers[1].client_port, ["create", f"/{node}", "server1创建的"])
    assert rc == 0, err
    for i in (2, 3):
        rc, out, err = run_cli(cluster.servers[i].client_port, stdin=f"sync /\nls /\nget /{node}\nquit\n")
        assert rc == 0
        assert any(node in l for l in out if l.startswith("[")), out
        assert "server1创建的" in out
    run_cli(cluster.servers[1].client_port, ["delete", f"/{node}"])


def test_create_without_data_reads_null(cluster):
    """zkCli's `create /x` sends null data, and `get /x` prints "null" for it; data set to an
    empty-looking value is printed as it is."""
    p = f"/zkcli-null-{uuid.uuid4().hex[:8]}"
    rc, out, err = run_cli(cluster.servers[2].client_port,
                           stdin=f"create {p}\nget {p}\nset {p} x\nget {p}\ndelete {p}\nquit\n")
    assert rc == 0, err
    expect_in_order(out, [r"null", r"x"], "get after create without data, then after set")
