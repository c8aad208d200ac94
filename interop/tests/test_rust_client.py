"""The Rust `zookeeper-client` crate (node/tests/interop_zookeeper_client.rs), run with cargo
against the ensemble; each of its tests is one test here. scripts/interop.sh builds the test
binary beforehand (cargo test --no-run), so this only runs it."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ALL

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "node" / "tests" / "interop_zookeeper_client.rs"
NAMES = re.findall(r"#\[tokio::test\]\s*async fn (\w+)\(", SRC.read_text()) if SRC.exists() else []

pytestmark = pytest.mark.skipif(
    not shutil.which("cargo") or not NAMES or os.environ.get("INTEROP_SKIP_RUST") == "1",
    reason="cargo or node/tests/interop_zookeeper_client.rs not available",
)


@pytest.fixture(scope="module")
def rust_run(cluster):
    env = {**os.environ, "ENSEMBLE_INTEROP_HOSTS": cluster.hosts(ALL)}
    r = subprocess.run(
        ["cargo", "test", "--release", "-p", "ensemble-node", "--test", "interop_zookeeper_client",
         "--", "--test-threads=3"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )
    results = dict(re.findall(r"^test (\w+) \.\.\. (ok|FAILED|ignored)$", r.stdout, re.M))
    return results, r.stdout + r.stderr


@pytest.mark.parametrize("name", NAMES)
def test_rust_zookeeper_client(rust_run, name):
    results, output = rust_run
    assert name in results, f"cargo did not report {name}:\n{output[-4000:]}"
    if results[name] != "ok":
        block = re.search(rf"---- {name} stdout ----\n(.*?)(?=\n---- |\nfailures:\n)", output, re.S)
        pytest.fail(block.group(1)[-3000:] if block else output[-3000:])
