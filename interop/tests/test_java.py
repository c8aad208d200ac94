"""Apache ZooKeeper's Java client (interop/java/InteropClient.java, compiled with javac against
the Debian package's zookeeper.jar) run against the ensemble; each of its checks is one test."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ALL

SRC = Path(__file__).resolve().parent.parent / "java" / "InteropClient.java"
JAR = "/usr/share/java/zookeeper.jar"
CHECKS = re.findall(r'check\("(\w+)"', SRC.read_text())
HAVE_JAVA = bool(shutil.which("javac") and shutil.which("java") and os.path.exists(JAR))

pytestmark = pytest.mark.skipif(not HAVE_JAVA, reason="javac/java or zookeeper.jar not installed")


@pytest.fixture(scope="module")
def java_run(cluster):
    build = tempfile.mkdtemp(prefix="interop-java-")
    try:
        c = subprocess.run(["javac", "-nowarn", "-cp", JAR, "-d", build, str(SRC)],
                           capture_output=True, text=True, timeout=300)
        assert c.returncode == 0, c.stderr
        r = subprocess.run(
            ["java", "-XX:TieredStopAtLevel=1", "-cp", f"{build}:{JAR}", "InteropClient", cluster.hosts(ALL)],
            capture_output=True, text=True, timeout=600,
        )
        results = {}
        for line in r.stdout.splitlines():
            m = re.match(r"(PASS|FAIL) (\w+)(?:: (.*))?$", line)
            if m:
                results[m.group(2)] = (m.group(1), m.group(3) or "")
        return results, r.stdout + r.stderr
    finally:
        shutil.rmtree(build, ignore_errors=True)


@pytest.mark.parametrize("name", CHECKS)
def test_java_client(java_run, name):
    results, output = java_run
    tail = "\n".join(l for l in output.splitlines() if not l.startswith("SLF4J"))[-3000:]
    assert name in results, f"the Java program did not report {name}:\n{tail}"
    verdict, why = results[name]
    assert verdict == "PASS", why
