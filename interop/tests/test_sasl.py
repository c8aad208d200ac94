"""Client SASL with Apache ZooKeeper's own zkCli.sh (3.8, its Java client): a JAAS `Client`
section with DigestLoginModule's username and password (DIGEST-MD5), against a standalone server
of the target configured as kazoo's harness configures ZooKeeper (the SASL provider, a JAAS
`Server` section). The SASL client creates a node with a `sasl` ACL; a client without SASL is
refused it; a wrong password fails that client's authentication.

Kerberos (GSSAPI), against a real MIT KDC the test starts (interop/harness/kdc.sh): zkCli.sh with
a `Client` section using Krb5LoginModule creates a node under a `sasl` ACL of its principal;
kazoo (pure-sasl's GSSAPI) with a ticket for another service is refused, AUTH_FAILED for that
session only."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import TARGET
from harness.cluster import JAVA_DIR, ZK_HOME, ZK_LOG4J, srvr_mode

ZKCLI = str(ZK_HOME / "bin" / "zkCli.sh")
pytestmark = pytest.mark.skipif(
    not os.path.exists(ZKCLI) or not shutil.which("java"), reason="zkCli.sh / java not installed"
)

SERVER_JAAS = """Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
"""


def client_jaas(user, password):
    return f"""Client {{
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="{user}"
    password="{password}";
}};
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(prefix, server_jaas, flags=()):
    """A standalone server of the target with client SASL; yields (port, workdir)."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    port = free_port()
    (d / "data").mkdir()
    jaas = d / "jaas.conf"
    jaas.write_text(server_jaas)
    cfg = d / "zoo.cfg"
    lines = [
        "tickTime=2000",
        f"dataDir={d / 'data'}",
        f"clientPort={port}",
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        "admin.enableServer=false",
    ]
    cfg.write_text("\n".join(lines) + "\n")
    jvm_flags = [f"-Djava.security.auth.login.config={jaas}", *flags]
    proc = None
    if TARGET == "zookeeper":
        cp = [str(ZK_LOG4J.parent), str(JAVA_DIR / "zookeeper.jar")]
        cp += [str(JAVA_DIR / j) for j in ("slf4j-log4j12.jar", "log4j-1.2.jar") if (JAVA_DIR / j).exists()]
        out = open(d / "zookeeper.out", "ab")
        proc = subprocess.Popen(
            ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", *jvm_flags,
             "-Dzookeeper.admin.enableServer=false", "-cp", ":".join(cp),
             "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
    else:
        # conf/java.env next to zoo.cfg, as zkEnv.sh reads it
        (d / "java.env").write_text(f'SERVER_JVMFLAGS="{" ".join(jvm_flags)}"\n')
        # the connection handling at debug: a failure's message carries it (server_log)
        env = {**os.environ, "RUST_LOG": "info,ensemble_node::runtime=debug,ensemble_core::cnxn=debug,ensemble_core::session_tracker=debug"}
        r = subprocess.run([os.environ.get("ENSEMBLE_BIN", "ensemble"), "start", str(cfg)],
                           capture_output=True, text=True, timeout=60, env=env)
        assert "STARTED" in r.stdout, r.stdout + r.stderr
    deadline = time.monotonic() + 60
    # Serving, not merely listening: a server still electing itself accepts and closes a
    # connection, and the Java client then fails the request it had queued (zkCli's first
    # command) with ConnectionLoss, as it would against a ZooKeeper quorum peer still LOOKING.
    while srvr_mode(port) not in ("standalone", "leader", "follower", "observer"):
        assert time.monotonic() < deadline, f"the SASL server did not serve on {port}"
        time.sleep(0.1)
    yield port, d
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=30)
    else:
        subprocess.run([os.environ.get("ENSEMBLE_BIN", "ensemble"), "stop", str(cfg)],
                       capture_output=True, timeout=60)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def sasl_server():
    yield from start_server("interop-sasl-", SERVER_JAAS)


def zkcli(port, workdir, commands, jaas=None, extra=""):
    flags = "-XX:TieredStopAtLevel=1 -Xshare:auto" + extra
    if jaas is not None:
        path = workdir / f"client-{abs(hash(jaas))}.conf"
        path.write_text(jaas)
        flags += f" -Djava.security.auth.login.config={path}"
    r = subprocess.run(
        [ZKCLI, "-server", f"127.0.0.1:{port}"],
        input="\n".join(commands) + "\nquit\n",
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "CLIENT_JVMFLAGS": flags},
    )
    return r.stdout + r.stderr


def server_log(d):
    """The server's log (Ensemble's daemon writes dataDir/zookeeper.out), for a failure's message."""
    for f in (d / "data" / "zookeeper.out", d / "zookeeper.out"):
        if f.exists():
            return "\n--- server log (tail) ---\n" + "\n".join(f.read_text(errors="replace").splitlines()[-40:])
    return ""


def test_zkcli_digest_md5_creates_a_node_with_a_sasl_acl(sasl_server):
    port, d = sasl_server
    commands = ["create /sasl-node data sasl:jaasuser:cdrwa", "getAcl /sasl-node", "get /sasl-node"]
    jaas = client_jaas("jaasuser", "jaas_password")
    out = zkcli(port, d, commands, jaas=jaas)
    assert "state:SaslAuthenticated" in out, out + server_log(d)
    assert "Created /sasl-node" in out, out + server_log(d)
    assert "'sasl,'jaasuser" in out, out
    # the data itself, read back under the ACL
    assert "\ndata\n" in out, out
    # no SASL: the node's ACL keeps it out
    plain = zkcli(port, d, ["get /sasl-node"])
    assert "Insufficient permission : /sasl-node" in plain, plain
    # a principal named `super` matches every sasl ACL (SASLAuthenticationProvider.matches)
    other = zkcli(port, d, ["get /sasl-node"], jaas=client_jaas("super", "super_secret"))
    assert "state:SaslAuthenticated" in other, other
    assert "\ndata\n" in other, other


def test_zkcli_wrong_password_fails_authentication(sasl_server):
    port, d = sasl_server
    out = zkcli(port, d, ["ls /"], jaas=client_jaas("jaasuser", "wrong"))
    assert "state:AuthFailed" in out, out
    assert "state:SaslAuthenticated" not in out, out


# ---- Kerberos (GSSAPI) -------------------------------------------------------------------------
KDC_SH = Path(__file__).resolve().parent.parent / "harness" / "kdc.sh"


@pytest.fixture(scope="module")
def kdc():
    d = Path(tempfile.mkdtemp(prefix="interop-kdc-"))
    r = subprocess.run(["bash", str(KDC_SH), "start", str(d), "other/127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "the KDC did not start (install-test-deps.sh installs krb5-kdc): " + r.stdout + r.stderr
    yield d
    subprocess.run(["bash", str(KDC_SH), "stop", str(d)], capture_output=True, timeout=30)
    shutil.rmtree(d, ignore_errors=True)


def krb5_section(name, keytab, principal):
    """A JAAS section logging in from a keytab with Krb5LoginModule."""
    return f"""{name} {{
  com.sun.security.auth.module.Krb5LoginModule required
  useKeyTab=true
  keyTab="{keytab}"
  storeKey=true
  useTicketCache=false
  principal="{principal}";
}};
"""


@pytest.fixture(scope="module")
def krb_server(kdc):
    server_jaas = krb5_section("Server", kdc / "server.keytab", "zookeeper/127.0.0.1@KAZOOTEST.ORG")
    yield from start_server("interop-krb-", server_jaas, [f"-Djava.security.krb5.conf={kdc / 'krb5.conf'}"])


def test_zkcli_kerberos_creates_a_node_with_a_sasl_acl(kdc, krb_server):
    port, d = krb_server
    client = krb5_section("Client", kdc / "client.keytab", "client@KAZOOTEST.ORG")
    extra = (f" -Djava.security.krb5.conf={kdc / 'krb5.conf'}"
             " -Dzookeeper.server.principal=zookeeper/127.0.0.1@KAZOOTEST.ORG")
    out = zkcli(port, d, ["create /krb-node data sasl:client@KAZOOTEST.ORG:cdrwa", "getAcl /krb-node",
                          "get /krb-node"], jaas=client, extra=extra)
    assert "state:SaslAuthenticated" in out, out
    assert "Created /krb-node" in out, out
    assert "'sasl,'client@KAZOOTEST.ORG" in out, out
    assert "\ndata\n" in out, out
    plain = zkcli(port, d, ["get /krb-node"])
    assert "Insufficient permission : /krb-node" in plain, plain


def test_a_ticket_for_another_service_fails_that_session_only(kdc, krb_server):
    pytest.importorskip("kerberos")
    from kazoo.client import KazooClient
    from kazoo.exceptions import AuthFailedError
    port, d = krb_server
    env = {"KRB5_CONFIG": str(kdc / "krb5.conf"), "KRB5CCNAME": f"FILE:{d / 'ccache'}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        subprocess.run(["kinit", "-kt", str(kdc / "client.keytab"), "client"], check=True, timeout=30)
        bystander = KazooClient(hosts=f"127.0.0.1:{port}", sasl_options={"mechanism": "GSSAPI"})
        bystander.start(timeout=15)
        # a ticket for other/127.0.0.1 (the KDC knows it; this server's keytab does not)
        wrong = KazooClient(hosts=f"127.0.0.1:{port}",
                            sasl_options={"mechanism": "GSSAPI", "service": "other"})
        # kazoo authenticates after start() returns: the refusal surfaces at once or on the
        # first request
        with pytest.raises(AuthFailedError):
            wrong.start(timeout=15)
            wrong.get("/")
        wrong.stop()
        wrong.close()
        # the other session goes on
        bystander.create("/krb-bystander", b"v")
        assert bystander.get("/krb-bystander")[0] == b"v"
        bystander.stop()
        bystander.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
