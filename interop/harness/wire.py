"""A minimal, synchronous ZooKeeper wire-protocol client (jute records over TCP), written from
the ZooKeeper 3.8 jute definitions (zookeeper.jute). It lets the suite send exactly the bytes it
wants: opcodes kazoo lacks (addWatch, removeWatches, createTTL, createContainer, multiRead,
getEphemerals, getAllChildrenNumber, whoAmI, setWatches2), frames of chosen sizes, garbage.
Every read has a timeout."""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

# opcodes
CREATE, DELETE, EXISTS, GET_DATA, SET_DATA, GET_ACL, SET_ACL, GET_CHILDREN = 1, 2, 3, 4, 5, 6, 7, 8
SYNC, PING, GET_CHILDREN2, CHECK, MULTI, CREATE2, RECONFIG = 9, 11, 12, 13, 14, 15, 16
CHECK_WATCHES, REMOVE_WATCHES, CREATE_CONTAINER, DELETE_CONTAINER, CREATE_TTL, MULTI_READ = 17, 18, 19, 20, 21, 22
AUTH, SET_WATCHES, SASL, GET_EPHEMERALS, GET_ALL_CHILDREN_NUMBER, SET_WATCHES2 = 100, 101, 102, 103, 104, 105
ADD_WATCH, WHO_AM_I, CLOSE_SESSION, ERROR = 106, 107, -11, -1

# create modes
PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL, CONTAINER = 0, 1, 2, 3, 4
PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL = 5, 6
# addWatch modes
PERSISTENT_WATCH, PERSISTENT_RECURSIVE_WATCH = 0, 1
# watcher types for checkWatches/removeWatches
WT_CHILDREN, WT_DATA, WT_ANY = 1, 2, 3
# event types
NODE_CREATED, NODE_DELETED, NODE_DATA_CHANGED, NODE_CHILDREN_CHANGED = 1, 2, 3, 4

# error codes
OK, SYSTEM_ERROR, RUNTIME_INCONSISTENCY, MARSHALLING_ERROR, UNIMPLEMENTED = 0, -1, -2, -5, -6
BAD_ARGUMENTS, NO_NODE, NO_AUTH, BAD_VERSION, NO_CHILDREN_FOR_EPHEMERALS = -8, -101, -102, -103, -108
NODE_EXISTS, NOT_EMPTY, SESSION_EXPIRED, INVALID_ACL, AUTH_FAILED = -110, -111, -112, -114, -115
NO_WATCHER, RECONFIG_DISABLED = -121, -123

OPEN_ACL = [(31, "world", "anyone")]


class Writer:
    def __init__(self):
        self.b = bytearray()

    def int(self, v):
        self.b += struct.pack(">i", v)
        return self

    def long(self, v):
        self.b += struct.pack(">q", v)
        return self

    def bool(self, v):
        self.b += b"\x01" if v else b"\x00"
        return self

    def buffer(self, v: bytes | None):
        if v is None:
            return self.int(-1)
        self.int(len(v))
        self.b += v
        return self

    def string(self, v: str | None):
        return self.buffer(None if v is None else v.encode())

    def strings(self, vs):
        self.int(len(vs))
        for v in vs:
            self.string(v)
        return self

    def acls(self, acls):
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).string(scheme).string(ident)
        return self

    def bytes(self) -> bytes:
        return bytes(self.b)


class Reader:
    def __init__(self, b: bytes):
        self.b = b
        self.o = 0

    def _take(self, n):
        if self.o + n > len(self.b):
            raise ValueError(f"short record: need {n} at {self.o} of {len(self.b)}")
        v = self.b[self.o : self.o + n]
        self.o += n
        return v

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def long(self):
        return struct.unpack(">q", self._take(8))[0]

    def bool(self):
        return self._take(1) != b"\x00"

    def buffer(self):
        n = self.int()
        return None if n < 0 else self._take(n)

    def string(self):
        b = self.buffer()
        return None if b is None else b.decode()

    def strings(self):
        return [self.string() for _ in range(self.int())]

    def stat(self):
        return Stat(*(self.long(), self.long(), self.long(), self.long(), self.int(), self.int(),
                      self.int(), self.long(), self.int(), self.int(), self.long()))

    def acls(self):
        return [(self.int(), self.string(), self.string()) for _ in range(self.int())]

    def remaining(self):
        return len(self.b) - self.o


@dataclass
class Stat:
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int
    dataLength: int
    numChildren: int
    pzxid: int


@dataclass
class ConnectResponse:
    protocol_version: int
    timeout: int
    session_id: int
    passwd: bytes
    read_only: bool | None
    raw: bytes


@dataclass
class Reply:
    xid: int
    zxid: int
    err: int
    body: Reader


@dataclass
class Event:
    type: int
    state: int
    path: str
    zxid: int


class Closed(Exception):
    pass


def connect_request(timeout_ms=10000, session_id=0, passwd=b"\x00" * 16, last_zxid=0, read_only=False) -> bytes:
    return (
        Writer().int(0).long(last_zxid).int(timeout_ms).long(session_id).buffer(passwd).bool(read_only).bytes()
    )


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


class WireClient:
    def __init__(self, port: int, timeout_ms: int = 10000, session_id: int = 0, passwd: bytes = b"\x00" * 16,
                 io_timeout: float = 10.0, host: str = "127.0.0.1", connect: bool = True, last_zxid: int = 0):
        self.sock = socket.create_connection((host, port), timeout=io_timeout)
        self.sock.settimeout(io_timeout)
        self.io_timeout = io_timeout
        self.xid = 0
        self.events: list[Event] = []
        self.last_zxid = last_zxid
        self.session: ConnectResponse | None = None
        if connect:
            self.session = self.handshake(timeout_ms, session_id, passwd, last_zxid)

    # ---- framing ---------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise Closed(f"connection closed after {len(out)} of {n} bytes")
            out += chunk
        return bytes(out)

    def recv_frame(self) -> bytes:
        (n,) = struct.unpack(">i", self._recv_exact(4))
        if n < 0 or n > 64 * 1024 * 1024:
            raise ValueError(f"bad frame length {n}")
        return self._recv_exact(n)

    def handshake(self, timeout_ms, session_id, passwd, last_zxid=0) -> ConnectResponse:
        self.send_raw(frame(connect_request(timeout_ms, session_id, passwd, last_zxid)))
        raw = self.recv_frame()
        r = Reader(raw)
        pv, to, sid, pw = r.int(), r.int(), r.long(), r.buffer()
        ro = r.bool() if r.remaining() else None
        return ConnectResponse(pv, to, sid, pw or b"", ro, raw)

    def closed_by_peer(self, wait: float = 5.0) -> bool:
        """True once the server has closed the connection (EOF or reset) within wait seconds."""
        deadline = time.monotonic() + wait
        self.sock.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    b = self.sock.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return True
                if not b:
                    return True
            return False
        finally:
            self.sock.settimeout(self.io_timeout)

    # ---- requests ------------------------------------------------------------------------

    def call(self, op: int, body: bytes = b"", xid: int | None = None) -> Reply:
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_raw(frame(Writer().int(xid).int(op).bytes() + body))
        deadline = time.monotonic() + self.io_timeout
        while time.monotonic() < deadline:
            r = Reader(self.recv_frame())
            rxid, zxid, err = r.int(), r.long(), r.int()
            if rxid == -1:
                self.events.append(Event(r.int(), r.int(), r.string(), zxid))
                continue
            if zxid > 0:
                self.last_zxid = max(self.last_zxid, zxid)
            if rxid == xid:
                return Reply(rxid, zxid, err, r)
            if rxid == -2:  # a ping answer
                continue
            raise ValueError(f"reply for xid {rxid} while waiting for {xid}")
        raise TimeoutError(f"no reply to op {op} xid {xid}")

    def wait_event(self, timeout: float = 10.0) -> Event:
        if self.events:
            return self.events.pop(0)
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.5)
        try:
            while time.monotonic() < deadline:
                try:
                    r = Reader(self.recv_frame())
                except socket.timeout:
                    continue
                xid, zxid, _err = r.int(), r.long(), r.int()
                if xid == -1:
                    return Event(r.int(), r.int(), r.string(), zxid)
        finally:
            self.sock.settimeout(self.io_timeout)
        raise TimeoutError(f"no watch event in {timeout}s")

    def no_event(self, wait: float = 1.0) -> Event | None:
        try:
            return self.wait_event(wait)
        except TimeoutError:
            return None

    # convenience wrappers: each returns (err, parsed-or-None)
    def create(self, path, data=b"", mode=PERSISTENT, acl=None, ttl=None):
        w = Writer().string(path).buffer(data).acls(acl or OPEN_ACL).int(mode)
        if ttl is not None:
            w.long(ttl)
            op = CREATE_TTL
        elif mode == CONTAINER:
            op = CREATE_CONTAINER
        else:
            op = CREATE2
        r = self.call(op, w.bytes())
        if r.err:
            return r.err, None
        return 0, (r.body.string(), r.body.stat())

    def delete(self, path, version=-1):
        return self.call(DELETE, Writer().string(path).int(version).bytes()).err

    def exists(self, path, watch=False):
        r = self.call(EXISTS, Writer().string(path).bool(watch).bytes())
        return r.err, (r.body.stat() if r.err == 0 else None)

    def get(self, path, watch=False):
        r = self.call(GET_DATA, Writer().string(path).bool(watch).bytes())
        if r.err:
            return r.err, None
        return 0, (r.body.buffer(), r.body.stat())

    def set(self, path, data, version=-1):
        r = self.call(SET_DATA, Writer().string(path).buffer(data).int(version).bytes())
        return r.err, (r.body.stat() if r.err == 0 else None)

    def children(self, path, watch=False):
        r = self.call(GET_CHILDREN2, Writer().string(path).bool(watch).bytes())
        if r.err:
            return r.err, None
        return 0, (r.body.strings(), r.body.stat())

    def sync(self, path):
        r = self.call(SYNC, Writer().string(path).bytes())
        return r.err, (r.body.string() if r.err == 0 else None)

    def add_watch(self, path, mode):
        return self.call(ADD_WATCH, Writer().string(path).int(mode).bytes()).err

    def remove_watches(self, path, wtype):
        return self.call(REMOVE_WATCHES, Writer().string(path).int(wtype).bytes()).err

    def check_watches(self, path, wtype):
        return self.call(CHECK_WATCHES, Writer().string(path).int(wtype).bytes()).err

    def get_ephemerals(self, prefix):
        r = self.call(GET_EPHEMERALS, Writer().string(prefix).bytes())
        return r.err, (r.body.strings() if r.err == 0 else None)

    def all_children_number(self, path):
        r = self.call(GET_ALL_CHILDREN_NUMBER, Writer().string(path).bytes())
        return r.err, (r.body.int() if r.err == 0 else None)

    def who_am_i(self):
        r = self.call(WHO_AM_I)
        if r.err:
            return r.err, None
        return 0, [(r.body.string(), r.body.string()) for _ in range(r.body.int())]

    def add_auth(self, scheme, auth: bytes):
        return self.call(AUTH, Writer().int(0).string(scheme).buffer(auth).bytes(), xid=-4).err

    def set_watches2(self, rel_zxid, data=(), exist=(), child=(), persistent=(), recursive=()):
        body = Writer().long(rel_zxid).strings(list(data)).strings(list(exist)).strings(list(child))
        body.strings(list(persistent)).strings(list(recursive))
        return self.call(SET_WATCHES2, body.bytes(), xid=-8).err

    def set_watches(self, rel_zxid, data=(), exist=(), child=()):
        body = Writer().long(rel_zxid).strings(list(data)).strings(list(exist)).strings(list(child))
        return self.call(SET_WATCHES, body.bytes(), xid=-8).err

    def ping(self):
        return self.call(PING, xid=-2).err

    def close_session(self):
        try:
            return self.call(CLOSE_SESSION).err
        finally:
            self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
