"""Garbage bytes on the client port and on the peer (quorum and election) ports: the offending
connection is dropped, and the server keeps serving everyone else: a bystander session on the same
server keeps reading and writing, no leader change, no data change."""

import random
import socket
import struct
import time

import pytest

from conftest import ALL, OBSERVER, VOTERS
from harness import wire, zk

RNG_SEED = 0x5EED


def payloads():
    rng = random.Random(RNG_SEED)
    connect = wire.frame(wire.connect_request())
    return {
        "random-64k": bytes(rng.getrandbits(8) for _ in range(65536)),
        "huge-length": struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 64,
        "negative-length": struct.pack(">i", -5) + b"\x00" * 64,
        "zero-length": struct.pack(">i", 0) * 8,
        "short-connect": wire.frame(b"\x00\x00\x00\x00\x01"),
        "connect-bad-passwd-len": wire.frame(
            wire.Writer().int(0).long(0).int(10000).long(0).int(1 << 30).bytes()),
        "http": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "tls-hello": bytes.fromhex("16030100a5010000a10303") + bytes(rng.getrandbits(8) for _ in range(160)),
        "connect-then-garbage-frame": connect + wire.frame(bytes(rng.getrandbits(8) for _ in range(100))),
        "connect-then-truncated-getdata": connect + wire.frame(wire.Writer().int(1).int(wire.GET_DATA).bytes()),
        "connect-then-bad-opcode": connect + wire.frame(wire.Writer().int(1).int(0x7123).string("/").bytes()),
        "connect-then-string-overrun": connect + wire.frame(wire.Writer().int(1).int(wire.GET_DATA).int(1 << 20).bytes()),
        "connect-then-negative-vector": connect + wire.frame(
            wire.Writer().int(1).int(wire.CREATE).string("/x").buffer(b"").int(-7).int(0).bytes()),
        "connect-then-huge-frame": connect + struct.pack(">i", 0x7FFFFFF0) + b"\x00" * 16,
        "half-frame": struct.pack(">i", 45) + b"\x00" * 10,
    }


def send_and_close(port, data, linger=0.3):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(2)
            try:
                s.sendall(data)
            except OSError:
                return
            deadline = time.monotonic() + linger
            while time.monotonic() < deadline:
                try:
                    if not s.recv(65536):
                        return
                except socket.timeout:
                    return
                except OSError:
                    return
    except OSError:
        pass


def healthy(cluster, bystander, root, tag):
    assert bystander.connected, f"bystander lost its connection after {tag}"
    p = f"{root}/after-{tag}"
    bystander.create(p, tag.encode())
    assert bystander.get(p)[0] == tag.encode()


@pytest.mark.parametrize("server", ALL)
def test_garbage_on_client_port(cluster, clients, root, server):
    port = cluster.servers[server].client_port
    bystander = clients(server)
    sid = bystander.client_id[0]
    for name, data in payloads().items():
        send_and_close(port, data)
        assert cluster.fourlw(server, "ruok") == "imok", f"no imok after {name}"
        healthy(cluster, bystander, root, f"{server}-{name}")
    assert bystander.client_id[0] == sid
    assert len(bystander.get_children(root)) == len(payloads())


@pytest.mark.parametrize("name", ["huge-length", "negative-length", "connect-bad-passwd-len",
                                  "connect-then-huge-frame"])
def test_bad_frames_close_the_connection(cluster, name):
    data = payloads()[name]
    with socket.create_connection(("127.0.0.1", cluster.servers[1].client_port), timeout=5) as s:
        s.sendall(data)
        s.settimeout(0.5)
        deadline = time.monotonic() + 10
        closed = False
        got = b""
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
            if not b:
                closed = True
                break
            got += b
        assert closed, f"the server kept a connection open after {name}"


@pytest.mark.parametrize("body,what", [
    (wire.Writer().int(1).int(wire.GET_DATA).bytes(), "truncated getData"),
    (wire.Writer().int(1).int(wire.GET_DATA).int(1 << 20).bytes(), "string longer than the frame"),
    (wire.Writer().int(1).int(0x7123).string("/").bytes(), "unknown opcode"),
    (wire.Writer().int(1).int(wire.CREATE).string("/x").buffer(b"").int(-7).int(0).bytes(), "negative ACL count"),
])
def test_malformed_request_is_refused(cluster, clients, root, body, what):
    """A malformed request in a session is answered with an error (ZooKeeper: MarshallingError
    for an undecodable body, Unimplemented for an unknown opcode) or closes the connection;
    nothing is applied and the session lives on."""
    c = wire.WireClient(cluster.servers[3].client_port)
    sid, pw = c.session.session_id, c.session.passwd
    try:
        c.send_raw(wire.frame(body))
        try:
            r = wire.Reader(c.recv_frame())
            xid, _zxid, err = r.int(), r.long(), r.int()
            assert err != 0, f"{what} was answered OK"
        except (wire.Closed, OSError):
            pass
    finally:
        c.close()
    with wire.WireClient(cluster.servers[3].client_port, session_id=sid, passwd=pw) as again:
        assert again.session.timeout > 0, "the session did not survive"
        assert again.exists("/x")[0] == wire.NO_NODE
        again.close_session()


def test_many_garbage_connections_at_once(cluster, clients, root):
    """Thirty connections send garbage at once to one server, which keeps serving a bystander."""
    port = cluster.servers[2].client_port
    bystander = clients(2)
    socks = []
    try:
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(struct.pack(">i", 1000 + i) + b"\xff" * (i * 7))
            socks.append(s)
        healthy(cluster, bystander, root, "crowd")
    finally:
        for s in socks:
            s.close()
    healthy(cluster, bystander, root, "crowd-gone")


def peer_ports(cluster):
    for i in ALL:
        s = cluster.servers[i]
        yield f"quorum-{i}", s.quorum_port
        yield f"election-{i}", s.election_port


def test_garbage_on_peer_ports(cluster, clients, root):
    leader = cluster.leader()
    assert leader is not None
    bystanders = {i: clients(i) for i in ALL}
    rng = random.Random(RNG_SEED + 1)
    garbage = {
        "random": bytes(rng.getrandbits(8) for _ in range(4096)),
        # the first long of an election connection is a protocol version (negative) or a sid;
        # a version followed by a huge address length, and an unknown large sid
        "bad-election-header": struct.pack(">qqi", -65536, 99, 0x7FFFFFFF),
        "unknown-sid": struct.pack(">q", 1 << 40) + b"\x00" * 32,
        "huge-length": struct.pack(">i", 0x7FFFFFFF) + b"\x01" * 128,
        "http": b"GET / HTTP/1.1\r\n\r\n",
    }
    for tag, port in peer_ports(cluster):
        for gname, data in garbage.items():
            send_and_close(port, data, linger=0.2)
    time.sleep(1.0)
    # same leader, every server still serving, writes still commit everywhere
    zk.wait_until(lambda: all(cluster.modes().values()), 20, what="all servers serving")
    assert cluster.leader() == leader, f"leader changed: {cluster.modes()}"
    for i, c in bystanders.items():
        healthy(cluster, c, root, f"peer-garbage-{i}")
    for i in ALL:
        r = clients(i)
        r.sync(root)
        assert len(r.get_children(root)) == len(ALL), f"server {i}"


def test_peer_port_slow_loris(cluster, clients, root):
    """Connections to every election and quorum port that send a few bytes and stall do not
    stop the ensemble from committing."""
    socks = []
    try:
        for tag, port in peer_ports(cluster):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.sendall(b"\xff\xff")
                socks.append(s)
            except OSError:
                pass
        c = clients(1)
        for k in range(5):
            c.create(f"{root}/loris-{k}", b"")
        for i in VOTERS + (OBSERVER,):
            r = clients(i)
            r.sync(root)
            assert len(r.get_children(root)) == 5
    finally:
        for s in socks:
            s.close()
