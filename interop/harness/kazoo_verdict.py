"""Verdict on a run of kazoo's own test suite (kazoo.tests through kazoo_ext): against Apache
ZooKeeper 3.8 it gave 307 passed and 4 failures with reconfig and read-only mode off (TestReconfig's
3 and TestReadOnlyMode; TLS is configured as kazoo's harness configures it, interop/harness/tls.sh);
with reconfig configured as kazoo's harness does (interop/harness/reconfig.sh) TestReconfig passes
there. The target must pass at least ZOOKEEPER_PASSED and fail nothing outside EXPECTED_FAILURES.

A few of kazoo's tests race the server (test_connection_dropped drops the connection right after
sending a 1 MB setData and expects the reply not to have arrived yet; a fast server can win that
race on a loaded machine). An unexpected failure is therefore run again alone, twice, against the
same ensemble: it is reported as FLAKY, and not held against the target, only if both reruns pass.

  python3 kazoo_verdict.py JUNIT_XML FAILED_LIST SECONDS   (the kazoo_ext environment set)"""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import kazoo

# TestReconfig (3 tests) runs and must pass: interop/harness/reconfig.sh gives the cluster
# kazoo's harness reconfigEnabled=true and super digest. The SASL (DIGEST-MD5) tests run and
# must pass: interop/harness/sasl.sh gives the cluster kazoo's harness JAAS file and SASL
# provider (pure-sasl comes from install-test-deps.sh).
EXPECTED_FAILURES: set[str] = set()
ZOOKEEPER_PASSED = 307


def main(xml_path, failed_path, seconds):
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"kazoo suite: no results ({e})")
        return 1
    suites = [root] if root.tag == "testsuite" else list(root)
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    passed = total - failed - skipped
    names = set()
    with open(failed_path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                names.add(parts[1].split("kazoo/tests/")[-1])
    unexpected = sorted(names - EXPECTED_FAILURES)
    # With a KDC (KRB5_TEST_ENV), kazoo's GSSAPI tests must run, not skip.
    gssapi_missing = []
    if os.environ.get("KRB5_TEST_ENV"):
        cases = [c for c in root.iter("testcase") if "TestSASLGSSAPIAuthentication" in c.get("classname", "")]
        gssapi_missing = [c.get("name") for c in cases if c.find("skipped") is not None]
        if not cases:
            gssapi_missing = ["TestSASLGSSAPIAuthentication (no test ran)"]
    print(f"kazoo suite: {passed} passed, {failed} failed, {skipped} skipped in {seconds} s "
          f"(Apache ZooKeeper 3.8 without SASL: {ZOOKEEPER_PASSED} passed; {len(EXPECTED_FAILURES)} failures allowed)")
    # Only a stray one or two are worth a rerun; more is a real regression.
    if 0 < len(unexpected) <= 2:
        flaky = [n for n in unexpected if passes_alone(n) and passes_alone(n)]
        for n in flaky:
            print(f"kazoo suite: FLAKY {n} (failed in the suite, passed twice alone)")
        unexpected = [n for n in unexpected if n not in flaky]
        passed += len(flaky)
        failed -= len(flaky)
    for n in unexpected:
        print(f"kazoo suite: UNEXPECTED FAILURE {n}")
    for n in gssapi_missing:
        print(f"kazoo suite: GSSAPI test SKIPPED {n} (a KDC is set up: it must run)")
    ok = not unexpected and not gssapi_missing and passed >= ZOOKEEPER_PASSED and failed <= len(EXPECTED_FAILURES)
    print(f"kazoo suite verdict: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def passes_alone(name):
    """Runs one kazoo test (`file.py::Class::test`) alone with the suite's plugin and settings."""
    node = os.path.join(os.path.dirname(kazoo.__file__), "tests", name)
    cmd = [sys.executable, "-m", "pytest", "-p", "kazoo_ext", "-p", "no:cacheprovider",
           "--timeout", "90", "-q", node]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "?"))
