"""Four-letter words, checked for ZooKeeper 3.8's output shapes and for what they say about the
ensemble (modes, zxids, counts), plus the status tool (zkServer.sh status / ensemble status)."""

import re
import subprocess

import pytest

from conftest import ALL, OBSERVER, TARGET, VOTERS
from harness import zk
from harness.cluster import ZK_HOME

SRVR_LINES = [
    r"Zookeeper version: .+",
    r"Latency min/avg/max: \d+/[\d.]+/\d+",
    r"Received: \d+",
    r"Sent: \d+",
    r"Connections: \d+",
    r"Outstanding: \d+",
    r"Zxid: 0x[0-9a-f]+",
    r"Mode: (leader|follower|observer)",
    r"Node count: \d+",
]


def kv(text, sep):
    out = {}
    for line in text.splitlines():
        if sep in line:
            k, v = line.split(sep, 1)
            out[k.strip()] = v.strip()
    return out


@pytest.mark.parametrize("server", ALL)
def test_ruok_isro(cluster, server):
    assert cluster.fourlw(server, "ruok") == "imok"
    assert cluster.fourlw(server, "isro") == "rw"


@pytest.mark.parametrize("server", ALL)
def test_srvr_shape(cluster, server):
    out = cluster.fourlw(server, "srvr")
    lines = out.splitlines()
    for pat in SRVR_LINES:
        assert any(re.fullmatch(pat, l) for l in lines), f"no line like {pat!r} in:\n{out}"


def test_modes_one_leader_two_followers_one_observer(cluster):
    modes = {i: kv(cluster.fourlw(i, "srvr"), ":").get("Mode") for i in ALL}
    assert modes[OBSERVER] == "observer"
    voter_modes = sorted(modes[i] for i in VOTERS)
    assert voter_modes == ["follower", "follower", "leader"], modes


def test_srvr_zxid_and_node_count_follow_writes(cluster, clients, root):
    c = clients(1)
    c.create(f"{root}/a", b"")
    zx = c.exists(f"{root}/a").czxid
    counts = {}
    for i in ALL:
        r = clients(i)
        r.sync(root)
        info = kv(cluster.fourlw(i, "srvr"), ":")
        assert int(info["Zxid"], 16) >= zx, f"server {i}"
        counts[i] = int(info["Node count"])
    c.create(f"{root}/b", b"")
    c.create(f"{root}/c", b"")
    for i in ALL:
        r = clients(i)
        r.sync(root)
        after = int(kv(cluster.fourlw(i, "srvr"), ":")["Node count"])
        # other tests do not run concurrently: exactly our two new nodes
        assert after == counts[i] + 2, f"server {i}: {counts[i]} -> {after}"


@pytest.mark.parametrize("server", ALL)
def test_stat_shape(cluster, clients, server):
    c = clients(server)
    out = cluster.fourlw(server, "stat")
    assert "Clients:" in out
    lines = out.splitlines()
    for pat in SRVR_LINES:
        assert any(re.fullmatch(pat, l) for l in lines), f"no line like {pat!r} in:\n{out}"
    clients_lines = [l for l in lines if l.startswith(" /")]
    assert len(clients_lines) >= 2  # kazoo's connection and the one asking
    for l in clients_lines:
        assert re.fullmatch(r" /127\.0\.0\.1:\d+\[\d+\]\(.*\)", l), l
    del c


def test_mntr(cluster, clients, root):
    for i in ALL:
        m = kv(cluster.fourlw(i, "mntr"), "\t")
        for key in (
            "zk_version", "zk_server_state", "zk_avg_latency", "zk_max_latency", "zk_min_latency",
            "zk_packets_received", "zk_packets_sent", "zk_num_alive_connections",
            "zk_outstanding_requests", "zk_znode_count", "zk_watch_count", "zk_ephemerals_count",
            "zk_approximate_data_size",
        ):
            assert key in m, f"server {i} mntr lacks {key}"
        state = m["zk_server_state"]
        assert state in ("leader", "follower", "observer")
        assert state == kv(cluster.fourlw(i, "srvr"), ":")["Mode"]
        for key in ("zk_znode_count", "zk_packets_received", "zk_num_alive_connections"):
            assert int(m[key]) >= 0
        float(m["zk_avg_latency"])
        if state == "leader":
            # 3.8 says zk_learners/zk_synced_followers/zk_synced_observers; older ones zk_followers
            assert "zk_synced_followers" in m and "zk_pending_syncs" in m
            learners = int(m.get("zk_learners", m.get("zk_followers", -1)))
            assert learners == 3, m
            assert int(m["zk_synced_followers"]) == 2
            if "zk_synced_observers" in m:
                assert int(m["zk_synced_observers"]) == 1
    # counts move with the data
    c = clients(2)
    c.sync("/")
    before = {i: kv(cluster.fourlw(i, "mntr"), "\t") for i in ALL}
    c.create(f"{root}/e1", b"", ephemeral=True)
    c.create(f"{root}/e2", b"x" * 100, ephemeral=True)
    for i in ALL:
        clients(i).sync(root)
        m = kv(cluster.fourlw(i, "mntr"), "\t")
        assert int(m["zk_znode_count"]) == int(before[i]["zk_znode_count"]) + 2, f"server {i}"
        assert int(m["zk_ephemerals_count"]) == int(before[i]["zk_ephemerals_count"]) + 2, f"server {i}"
        assert int(m["zk_approximate_data_size"]) > int(before[i]["zk_approximate_data_size"])


@pytest.mark.parametrize("server", ALL)
def test_conf(cluster, server):
    s = cluster.servers[server]
    out = cluster.fourlw(server, "conf")
    c = kv(out, "=")
    assert c["clientPort"] == str(s.client_port)
    assert c["dataDir"].startswith(str(s.data_dir))
    assert c["dataLogDir"].startswith(str(s.log_dir))
    assert c["tickTime"] == str(cluster.tick_time)
    assert c["initLimit"] == "10" and c["syncLimit"] == "5"
    assert c["maxClientCnxns"] == "60"
    assert c["minSessionTimeout"] == str(2 * cluster.tick_time)
    assert c["maxSessionTimeout"] == str(20 * cluster.tick_time)
    assert c["serverId"] == str(server)
    assert c["electionPort"] == str(s.election_port) and c["quorumPort"] == str(s.quorum_port)
    assert c["peerType"] == ("1" if server == OBSERVER else "0")
    assert "membership:" in out
    for o in cluster.servers.values():
        kind = "observer" if o.observer else "participant"
        assert f"server.{o.sid}=localhost:{o.quorum_port}:{o.election_port}:{kind}" in out


def test_cons_lists_sessions(cluster, clients):
    c = clients(3)
    c.get("/")
    sid = c.client_id[0]
    out = cluster.fourlw(3, "cons")
    mine = [l for l in out.splitlines() if f"sid=0x{sid:x}" in l]
    assert len(mine) == 1, out
    line = mine[0]
    assert re.match(r" /127\.0\.0\.1:\d+\[1\]\(", line), line
    for key in ("queued=", "recved=", "sent=", "lop=", "est=", "to=", "lcxid=", "lzxid=", "lresp=", "llat=",
                "minlat=", "avglat=", "maxlat="):
        assert key in line, f"{key} missing from {line}"


def test_watch_words(cluster, clients, root):
    c = clients(OBSERVER)
    sid = c.client_id[0]
    c.create(f"{root}/w1", b"")
    c.create(f"{root}/w2", b"")
    c.get(f"{root}/w1", watch=lambda e: None)
    c.get_children(f"{root}/w2", watch=lambda e: None)
    c.exists(f"{root}/w3", watch=lambda e: None)
    wchs = cluster.fourlw(OBSERVER, "wchs")
    m = re.fullmatch(r"(\d+) connections watching (\d+) paths\nTotal watches:(\d+)\n?", wchs)
    assert m, repr(wchs)
    # ZooKeeper 3.8 reports data (and exists) watches here, not child watches
    assert int(m.group(1)) >= 1 and int(m.group(2)) >= 2 and int(m.group(3)) >= 2
    wchc = cluster.fourlw(OBSERVER, "wchc")
    assert f"0x{sid:x}" in wchc
    block = wchc.split(f"0x{sid:x}", 1)[1].split("\n\n")[0]
    for p in (f"{root}/w1", f"{root}/w3"):
        assert f"\t{p}" in block, wchc
    wchp = cluster.fourlw(OBSERVER, "wchp")
    for p in (f"{root}/w1", f"{root}/w3"):
        assert re.search(rf"^{re.escape(p)}\n\t0x{sid:x}$", wchp, re.M), wchp


@pytest.mark.parametrize("server", ALL)
def test_dirs_envi(cluster, server):
    d = cluster.fourlw(server, "dirs")
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n?", d), repr(d)
    assert int(re.search(r"logdir_size: (\d+)", d).group(1)) > 0
    e = cluster.fourlw(server, "envi")
    assert e.startswith("Environment:\n")
    body = kv(e, "=")
    assert "host.name" in body and "os.name" in body and "user.dir" in body


def test_srst_crst(cluster):
    assert cluster.fourlw(1, "srst").strip() == "Server stats reset."
    assert cluster.fourlw(1, "crst").strip() == "Connection stats reset."
    lat = kv(cluster.fourlw(1, "srvr"), ":")["Latency min/avg/max"]
    assert lat.split("/")[2] in ("0", "1")


def test_unknown_word_gets_no_answer(cluster):
    """Four bytes that are no command: ZooKeeper reads them as a frame length and waits; the
    server stays healthy."""
    assert cluster.fourlw(2, "xyzw", timeout=2) == ""
    assert cluster.fourlw(2, "ruok") == "imok"


def test_status_tool(cluster):
    """`zkServer.sh status CFG` for ZooKeeper, `ensemble status CFG` for Ensemble."""
    modes = {}
    for i in ALL:
        cfg = str(cluster.servers[i].cfg)
        if TARGET == "zookeeper":
            cmd = [str(ZK_HOME / "bin" / "zkServer.sh"), "status", cfg]
        else:
            cmd = [cluster.ensemble_bin, "status", cfg]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
        m = re.search(r"^Mode: (\w+)$", r.stdout, re.M)
        assert m, r.stdout
        modes[i] = m.group(1)
    assert modes[OBSERVER] == "observer"
    assert sorted(modes[i] for i in VOTERS) == ["follower", "follower", "leader"]
    zk.wait_until(lambda: True, 0.1)
