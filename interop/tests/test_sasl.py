"""Client SASL with Apache ZooKeeper's own zkCli.sh (3.8, its Java client): a JAAS `Client`
section with DigestLoginModule's username and password (DIGEST-MD5), against a standalone server
of the target configured as kazoo's harness configures ZooKeeper (the SASL provider, a JAAS
`Server` section). The SASL client creates a node with a `sasl` ACL; a client without SASL is
refused it; a wrong password fails that client's authentication."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import TARGET
from harness.cluster import JAVA_DIR, ZK_HOME, ZK_LOG4J, port_open

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


@pytest.fixture(scope="module")
def sasl_server():
    """A standalone server of the target with client SASL; yields (port, workdir)."""
    d = Path(tempfile.mkdtemp(prefix="interop-sasl-"))
    port = free_port()
    (d / "data").mkdir()
    jaas = d / "jaas.conf"
    jaas.write_text(SERVER_JAAS)
    cfg = d / "zoo.cfg"
    lines = [
        "tickTime=2000",
        f"dataDir={d / 'data'}",
        f"clientPort={port}",
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
    ]
    if TARGET == "zookeeper":
        lines.append("admin.enableServer=false")
    cfg.write_text("\n".join(lines) + "\n")
    proc = None
    if TARGET == "zookeeper":
        cp = [str(ZK_LOG4J.parent), str(JAVA_DIR / "zookeeper.jar")]
        cp += [str(JAVA_DIR / j) for j in ("slf4j-log4j12.jar", "log4j-1.2.jar") if (JAVA_DIR / j).exists()]
        out = open(d / "zookeeper.out", "ab")
        proc = subprocess.Popen(
            ["java", "-Xmx256m", "-XX:TieredStopAtLevel=1", f"-Djava.security.auth.login.config={jaas}",
             "-Dzookeeper.admin.enableServer=false", "-cp", ":".join(cp),
             "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        out.close()
    else:
        # conf/java.env next to zoo.cfg, as zkEnv.sh reads it
        (d / "java.env").write_text(f'SERVER_JVMFLAGS="-Djava.security.auth.login.config={jaas}"\n')
        r = subprocess.run([os.environ.get("ENSEMBLE_BIN", "ensemble"), "start", str(cfg)],
                           capture_output=True, text=True, timeout=60)
        assert "STARTED" in r.stdout, r.stdout + r.stderr
    deadline = time.monotonic() + 60
    while not port_open(port):
        assert time.monotonic() < deadline, f"the SASL server did not listen on {port}"
        time.sleep(0.1)
    yield port, d
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=30)
    else:
        subprocess.run([os.environ.get("ENSEMBLE_BIN", "ensemble"), "stop", str(cfg)],
                       capture_output=True, timeout=60)
    shutil.rmtree(d, ignore_errors=True)


def zkcli(port, workdir, commands, jaas=None):
    flags = "-XX:TieredStopAtLevel=1 -Xshare:auto"
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


def test_zkcli_digest_md5_creates_a_node_with_a_sasl_acl(sasl_server):
    port, d = sasl_server
    out = zkcli(port, d, ["create /sasl-node data sasl:jaasuser:cdrwa", "getAcl /sasl-node",
                          "get /sasl-node"],
                jaas=client_jaas("jaasuser", "jaas_password"))
    assert "state:SaslAuthenticated" in out, out
    assert "Created /sasl-node" in out, out
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
