"""ACLs: world, digest (addauth), auth (the creator's ids), ip; each permission bit; getACL /
setACL with aversion; InvalidACL; a failed auth."""

import os

import pytest
from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    InvalidACLError,
    NoAuthError,
    NoNodeError,
)
from kazoo.security import (
    ACL,
    Id,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Permissions,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
)

from conftest import ALL, OBSERVER
from harness import wire, zk


def test_digest_acl(clients, root):
    owner = clients(1)
    owner.add_auth("digest", "alice:secret")
    p = f"{root}/secret"
    owner.create(p, b"s3", acl=[make_digest_acl("alice", "secret", all=True)])
    for i in ALL:
        anon = clients(i)
        with pytest.raises(NoAuthError):
            anon.get(p)
        with pytest.raises(NoAuthError):
            anon.set(p, b"x")
        # exists needs READ since ZooKeeper 3.8.4 (ZOOKEEPER-2590), which Ensemble follows
        # (docs/ACL.md); Debian's 3.8.0 here still answers it. getACL needs READ or ADMIN
        # (since ZooKeeper 3.6).
        if os.environ.get("INTEROP_TARGET") == "ensemble":
            with pytest.raises(NoAuthError):
                anon.exists(p)
        else:
            assert anon.exists(p) is not None
        with pytest.raises(NoAuthError):
            anon.get_acls(p)
        wrong = clients(i)
        wrong.add_auth("digest", "alice:wrong")
        with pytest.raises(NoAuthError):
            wrong.get(p)
        right = clients(i)
        right.add_auth("digest", "alice:secret")
        assert right.get(p)[0] == b"s3"
        acls, st = right.get_acls(p)
        assert acls == [make_digest_acl("alice", "secret", all=True)] and st.aversion == 0
    # the digest is base64(sha1("user:password")) as ZooKeeper computes it
    assert make_digest_acl_credential("alice", "secret") == "alice:" + owner.get_acls(p)[0][0].id.id.split(":", 1)[1]


def test_each_permission_bit(clients, root):
    admin = clients(2)
    admin.add_auth("digest", "admin:pw")
    me = make_digest_acl("admin", "pw", all=True)
    anon = clients(3)
    cases = {
        "read": Permissions.READ,
        "write": Permissions.WRITE,
        "create": Permissions.CREATE,
        "delete": Permissions.DELETE,
        "admin": Permissions.ADMIN,
    }
    for name, perm in cases.items():
        p = f"{root}/{name}"
        admin.create(p, b"d", acl=[me, ACL(perm, Id("world", "anyone"))])
        admin.create(f"{p}/kid", b"")
        anon.sync(p)
        ok = {
            "read": lambda: anon.get(p),
            "write": lambda: anon.set(p, b"w"),
            "create": lambda: anon.create(f"{p}/new", b""),
            "delete": lambda: anon.delete(f"{p}/kid"),
            "admin": lambda: anon.set_acls(p, [me, ACL(perm, Id("world", "anyone"))]),
        }
        for other, op in ok.items():
            if other == name:
                op()
            else:
                with pytest.raises(NoAuthError):
                    op()
        # getChildren needs READ too
        if name != "read":
            with pytest.raises(NoAuthError):
                anon.get_children(p)


def test_read_only_world(clients, root):
    c = clients(1)
    p = f"{root}/ro"
    c.create(p, b"r", acl=READ_ACL_UNSAFE)
    other = clients(OBSERVER)
    assert other.get(p)[0] == b"r"
    with pytest.raises(NoAuthError):
        other.set(p, b"w")
    with pytest.raises(NoAuthError):
        c.set(p, b"w")  # the creator too: world:anyone:r is all there is


def test_auth_scheme_acl(clients, root):
    c = clients(2)
    c.add_auth("digest", "bob:pw")
    p = f"{root}/auth"
    # "auth" means: whatever ids the creator's session has (here digest bob)
    c.create(p, b"b", acl=[make_acl("auth", "", all=True)])
    acls, _ = c.get_acls(p)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acls] == [
        (31, "digest", make_digest_acl_credential("bob", "pw"))
    ]
    anon = clients(1)
    with pytest.raises(NoAuthError):
        anon.get(p)
    # "auth" with no authenticated id is an invalid ACL
    with pytest.raises(InvalidACLError):
        anon.create(f"{root}/auth2", b"", acl=[make_acl("auth", "", all=True)])


def test_ip_acl(clients, root):
    c = clients(3)
    p_ok, p_no, p_net = f"{root}/ip-ok", f"{root}/ip-no", f"{root}/ip-net"
    c.create(p_ok, b"ok", acl=[make_acl("ip", "127.0.0.1", all=True)])
    c.create(p_net, b"net", acl=[make_acl("ip", "127.0.0.0/8", read=True)])
    # an address that is only an ACL string here: no traffic goes anywhere
    c.create(p_no, b"no", acl=[make_acl("ip", "10.9.8.7", all=True)])
    for i in ALL:
        r = clients(i)
        assert r.get(p_ok)[0] == b"ok"
        assert r.get(p_net)[0] == b"net"
        with pytest.raises(NoAuthError):
            r.set(p_net, b"")
        with pytest.raises(NoAuthError):
            r.get(p_no)


def test_set_acl_versions(clients, root):
    c = clients(1)
    p = f"{root}/av"
    c.create(p, b"")
    st = c.set_acls(p, READ_ACL_UNSAFE + [ACL(Permissions.ADMIN, Id("world", "anyone"))], version=0)
    assert st.aversion == 1 and st.version == 0
    with pytest.raises(BadVersionError):
        c.set_acls(p, OPEN_ACL_UNSAFE, version=0)
    st = c.set_acls(p, OPEN_ACL_UNSAFE, version=1)
    assert st.aversion == 2
    acls, st2 = c.get_acls(p)
    assert acls == OPEN_ACL_UNSAFE and st2.aversion == 2
    with pytest.raises(NoNodeError):
        c.set_acls(f"{root}/missing", OPEN_ACL_UNSAFE)
    with pytest.raises(NoNodeError):
        c.get_acls(f"{root}/missing")


@pytest.mark.parametrize(
    "acl",
    [
        [make_acl("nosuchscheme", "x", all=True)],
        [make_acl("digest", "not-a-digest", all=True)],
        [make_acl("ip", "999.1.1.1", all=True)],
        [make_acl("world", "someone", all=True)],
        [],
    ],
    ids=["scheme", "digest", "ip", "world", "empty"],
)
def test_invalid_acl(clients, root, acl):
    c = clients(2)
    if acl:  # kazoo sends its default ACL for an empty list on create
        with pytest.raises(InvalidACLError):
            c.create(f"{root}/bad", b"", acl=acl)
    c.create(f"{root}/good", b"")
    with pytest.raises(InvalidACLError):
        c.set_acls(f"{root}/good", acl)
    assert c.exists(f"{root}/bad") is None


def test_acl_is_not_inherited(clients, root):
    c = clients(1)
    c.add_auth("digest", "carol:pw")
    c.create(f"{root}/locked", b"", acl=[make_digest_acl("carol", "pw", all=True)])
    c.create(f"{root}/locked/open", b"o")
    anon = clients(2)
    assert anon.get(f"{root}/locked/open")[0] == b"o"
    assert anon.get_acls(f"{root}/locked/open")[0] == OPEN_ACL_UNSAFE


def test_unknown_auth_scheme_fails_the_session(cluster):
    """addauth with a scheme the server has no provider for: ZooKeeper answers AuthFailed and
    closes the session's connection."""
    with wire.WireClient(cluster.servers[1].client_port) as c:
        err = c.add_auth("nosuchscheme", b"whatever")
        assert err == wire.AUTH_FAILED
        assert c.closed_by_peer(5)


def test_kazoo_auth_failure(cluster):
    """kazoo with auth_data of an unknown scheme: the session ends in AUTH_FAILED (LOST) and
    requests raise AuthFailedError."""
    from kazoo.client import KazooClient

    c = KazooClient(hosts=cluster.hosts((2,)), timeout=10, auth_data=[("nosuchscheme", "x")])
    states = []
    c.add_listener(states.append)
    try:
        try:
            c.start(timeout=10)
        except AuthFailedError:
            pass
        with pytest.raises(Exception) as e:
            c.get("/")
        assert isinstance(e.value, AuthFailedError) or "LOST" in states, (e.value, states)
        zk.wait_until(lambda: "LOST" in states, 10, what="the LOST state")
    finally:
        zk.close_quietly(c)


def test_super_digest_not_configured(clients, root):
    """Without zookeeper.DigestAuthenticationProvider.superDigest no user is super."""
    c = clients(1)
    c.add_auth("digest", "super:super")
    p = f"{root}/nosuper"
    owner = clients(2)
    owner.add_auth("digest", "dave:pw")
    owner.create(p, b"", acl=[make_digest_acl("dave", "pw", all=True)])
    c.sync(p)
    with pytest.raises(NoAuthError):
        c.get(p)
