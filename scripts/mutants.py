#!/usr/bin/env python3
"""Mutation testing of the core's protocol code, with the simulator's sweep as the test.

A small mutator of our own (cargo-mutants builds and tests one cargo workspace; our test is the
simulator, a separate workspace that compiles the core with feature `plants`, run as a seed
sweep): it flips one operator in one line of core/src at a time (`&&`<->`||`, `<`<->`<=`,
`>`<->`>=`, `==`<->`!=`, `+ 1`<->`- 1`, a negated `if`/`while` condition, a deleted
statement), builds the simulator, and runs `ensemble-sim sweep --seeds 0..300 --jobs 2 --first`,
the seeds that killed earlier mutants first (one by one; the verdict is the same).

  killed        the sweep failed (a claim broke, the core panicked, a check caught it)
  survived      the sweep passed: the simulator cannot tell this mutant from the real core
  unviable      the mutant does not compile
  timeout       the sweep ran past its bound (a mutant that livelocks the run)

A mutant the default sweep does not kill is judged by `ensemble-sim foreign` over the same
seeds as well, whatever its file: the verdict is what the simulator as a whole checks, not one
of its drivers. Code only the foreign-leader role runs lives mostly in core/src/foreign.rs and
core/src/tree/resolved.rs (zk-observe's core, which the default sweep never starts), but not
only there: the tree's recognition of a foreign reconfig (tree/reconfig.rs) is shared code that
only that driver reaches.
The cost is one foreign sweep per survivor (a few seconds); `--no-foreign` gives the default
sweep's verdict alone.

Each verdict is appended to the report as it comes (a long run in the background leaves a
partial report). Survivors listed in sim/MUTANTS.md (their file and the mutated line's text) are
reported as `known`; `--ci` fails only on a survivor that is not listed there.

Mutants are identified by file, the mutated line's text (trimmed), the operator and which
occurrence in that line: line numbers move as the code does, the text rarely.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The protocol files (issue 13, item 6); `tree/` is every file under core/src/tree/ but tests.
DEFAULT_FILES = [
    "core/src/leader.rs",
    "core/src/learner.rs",
    "core/src/learner_handler.rs",
    "core/src/election.rs",
    "core/src/server.rs",
    "core/src/cnxn.rs",
    "core/src/client_pipeline.rs",
    "core/src/session_tracker.rs",
    "core/src/zab_log.rs",
    "core/src/tree/",
    "core/src/acl.rs",
    "core/src/quorum.rs",
    "core/src/watch.rs",
    # the effect order's contract (a failed write stops the drive, the rest dropped)
    "core/src/effect.rs",
]

# Binary operators: rustfmt puts a space either side of every one, and never around a generic's
# angle brackets, so ` < ` is a comparison.
BINOPS = [
    (" && ", " || "),
    (" || ", " && "),
    (" <= ", " < "),
    (" < ", " <= "),
    (" >= ", " > "),
    (" > ", " >= "),
    (" == ", " != "),
    (" != ", " == "),
    (" + 1", " - 1"),
    (" - 1", " + 1"),
]

# Lines a mutant is not made in: comments, assertions (they only ever add a panic), logging,
# the planted bugs' own switches, and coverage marks.
SKIP = re.compile(
    r"^\s*(//|#\[|assert|debug_assert|tracing::|trace!|debug!|info!|warn!|error!|probe!)"
    r"|plant|Plant|unreachable!|panic!|todo!|unimplemented!"
)
COND = re.compile(r"^(\s*(?:\} else )?(?:if|while) )(?!let )(.+?)( \{)$")
STMT = re.compile(r"^\s*(?:self\.|[a-z_][a-z0-9_]*\.|[a-z_][a-z0-9_:]*\()[^;]*\);$")


def files_of(spec):
    out = []
    for f in spec:
        p = os.path.join(ROOT, f)
        if f.endswith("/"):
            for dirpath, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d != "tests")
                for n in sorted(names):
                    if n.endswith(".rs") and "test" not in n:
                        out.append(os.path.relpath(os.path.join(dirpath, n), ROOT))
        else:
            out.append(f)
    return out


ASSERT = re.compile(r"^\s*(?:[^/\"]*=>\s*)?(assert|debug_assert)\w*!\(")


def code_lines(text):
    """(index, line) of the lines outside `#[cfg(test)]` modules and assertions (an assertion's
    arguments over several lines included: a mutant there only adds a panic)."""
    lines = text.split("\n")
    in_tests = False
    depth = 0
    in_assert = 0
    for i, line in enumerate(lines):
        s = line.strip()
        if in_assert or ASSERT.match(line):
            in_assert += line.count("(") - line.count(")")
            if in_assert <= 0:
                in_assert = 0
            continue
        if not in_tests and s == "#[cfg(test)]" and i + 1 < len(lines) and "mod " in lines[i + 1]:
            in_tests, depth = True, 0
            continue
        if in_tests:
            depth += line.count("{") - line.count("}")
            if depth <= 0 and "}" in line:
                in_tests = False
            continue
        yield i, line


def mutants_of(path):
    text = open(os.path.join(ROOT, path)).read()
    out = []
    for i, line in code_lines(text):
        if SKIP.search(line) or '"' in line:
            # string literals: an operator inside one is not an operator
            continue
        for a, b in BINOPS:
            start = 0
            occ = 0
            while True:
                j = line.find(a, start)
                if j < 0:
                    break
                # ` < ` but not ` <= `, ` > ` but not part of `=>`/`->`
                if a in (" < ", " > ") and line[j + 1 : j + 3] in ("<=", ">="):
                    start = j + 1
                    continue
                if a in (" + 1", " - 1") and j + len(a) < len(line) and line[j + len(a)].isalnum():
                    start = j + 1
                    continue
                new = line[:j] + b + line[j + len(a) :]
                out.append((path, i, line, new, f"{a.strip()} -> {b.strip()}", occ))
                occ += 1
                start = j + len(a)
        m = COND.match(line)
        if m and not m.group(2).startswith("!"):
            new = f"{m.group(1)}!({m.group(2)}){m.group(3)}"
            out.append((path, i, line, new, "negate condition", 0))
        elif m and m.group(2).startswith("!") and " " not in m.group(2):
            new = f"{m.group(1)}{m.group(2)[1:]}{m.group(3)}"
            out.append((path, i, line, new, "drop negation", 0))
        if STMT.match(line) and not line.strip().startswith(("return", "let ")):
            indent = line[: len(line) - len(line.lstrip())]
            out.append((path, i, line, f"{indent}/* deleted */", "delete statement", 0))
    return out


def mutant_id(m):
    path, _, line, _, op, occ = m
    return f"{path} | {line.strip()} | {op}" + (f" #{occ}" if occ else "")


def known_list():
    """Survivors explained in sim/MUTANTS.md: lines `- `file | line | op`` in its lists."""
    p = os.path.join(ROOT, "sim/MUTANTS.md")
    known = set()
    if os.path.exists(p):
        for line in open(p):
            m = re.match(r"^- `(.+?)`", line.strip())
            if m:
                known.add(m.group(1))
    return known


def run(cmd, cwd, timeout, env=None):
    t = time.time()
    try:
        p = subprocess.run(
            cmd, cwd=cwd, env=env, timeout=timeout, capture_output=True, text=True
        )
        return p.returncode, p.stdout + p.stderr, time.time() - t
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return None, out, time.time() - t


# Seeds that killed mutants in the measured samples (sim/MUTANTS.md): most mutants that die, die
# at one of these, so each is run alone before the sweep.
KNOWN_KILLERS = [0, 2, 3, 11, 38, 48, 60, 90]


class Killers:
    """The seeds that killed earlier mutants, tried one by one before the whole sweep.

    The verdict does not change: a mutant is killed when some seed of the range fails, each
    seed's run is deterministic, and these seeds are in the range; they only come first. The
    seeds that kill in a run are kept in <work>/killers.json for the next run, most kills
    first."""

    MAX = 8

    def __init__(self, path, lo, hi):
        self.path, self.lo, self.hi = path, lo, hi
        self.counts = {}
        try:
            self.counts = {int(k): v for k, v in json.load(open(path)).items()}
        except (OSError, ValueError):
            pass

    def order(self):
        learned = sorted(self.counts, key=lambda s: (-self.counts[s], s))
        seeds = []
        for s in learned + KNOWN_KILLERS:
            if self.lo <= s < self.hi and s not in seeds:
                seeds.append(s)
        return seeds[: self.MAX]

    def try_first(self, sim, src, bound, env):
        """(rc, output, seconds): rc 0 if none of the seeds fails, None on the time bound."""
        t = time.time()
        for s in self.order():
            left = bound - (time.time() - t)
            if left <= 0:
                return None, "", time.time() - t
            rc, out, _ = run([sim, "sweep", "--seeds", f"{s}..{s + 1}", "--jobs", "1"], src, left, env)
            if rc != 0:
                return rc, out, time.time() - t
        return 0, "", time.time() - t

    def learn(self, out):
        for m in re.finditer(r"^seed=(\d+) FAIL ", out, re.M):
            s = int(m.group(1))
            self.counts[s] = self.counts.get(s, 0) + 1
            break
        with open(self.path, "w") as f:
            json.dump({str(k): v for k, v in self.counts.items()}, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", nargs="*", default=DEFAULT_FILES)
    ap.add_argument("--sample", type=int, default=30, help="how many mutants (0: all)")
    ap.add_argument("--pick-seed", type=int, default=1, help="which mutants the sample takes")
    ap.add_argument("--only", action="append", default=[], help="a mutant id (or a part of one)")
    ap.add_argument("--seeds", default="0..300")
    ap.add_argument("--list", action="store_true", help="list the sample, run nothing")
    ap.add_argument("--in-place", action="store_true",
                    help="mutate this tree (restored after each mutant) instead of a copy")
    ap.add_argument("--work", default=os.path.join(ROOT, "target/mutants"))
    ap.add_argument("--report", default=None, help="default: <work>/report.md")
    ap.add_argument("--build-timeout", type=int, default=1800)
    ap.add_argument("--jobs", type=int, default=2, help="the sweep's worker threads")
    ap.add_argument("--no-foreign", action="store_true",
                    help="judge every mutant by the default sweep alone")
    ap.add_argument("--ci", action="store_true",
                    help="exit 1 on a survivor not explained in sim/MUTANTS.md")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)

    allm = []
    for f in files_of(a.files):
        allm.extend(mutants_of(f))
    if a.only:
        pick = [m for m in allm if any(o in mutant_id(m) for o in a.only)]
        if a.ci and len(pick) != len(a.only):
            # CI names its mutants: one that no longer matches (the line changed) must be
            # named again, not silently skipped
            print(f"mutants: --only named {len(a.only)} mutants, {len(pick)} match the code now")
            return 1
    elif a.sample and a.sample < len(allm):
        pick = random.Random(a.pick_seed).sample(allm, a.sample)
    else:
        pick = allm
    print(f"mutants: {len(allm)} sites in {len(files_of(a.files))} files; running {len(pick)}")
    if a.list:
        for m in pick:
            print(f"{m[0]}:{m[1] + 1}: {m[4]}{' #%d' % m[5] if m[5] else ''}: {m[2].strip()}")
        return 0

    os.makedirs(a.work, exist_ok=True)
    if a.in_place:
        src = ROOT
        env = dict(os.environ)
    else:
        # a copy of the sources with a target directory of its own, so that the tree one works
        # in (and its build) is never mutated
        src = os.path.join(a.work, "src")
        if os.path.exists(src):
            shutil.rmtree(src)
        top = {"target", ".git"}
        # copied with fresh mtimes: a work directory reused after a run whose last build was
        # a mutant holds that mutant's artifacts, newer than the sources' own mtimes, and cargo
        # would take them for the unmutated baseline
        shutil.copytree(
            ROOT,
            src,
            ignore=lambda d, names: [n for n in names if d == ROOT and n in top or n == "target"],
            copy_function=shutil.copy,
        )
        env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(a.work, "target"))
    env["CARGO_TERM_COLOR"] = "never"
    target = env.get("CARGO_TARGET_DIR", os.path.join(src, "target"))
    # the simulator's `mutants` profile (sim/Cargo.toml): release without LTO, since every
    # mutant relinks the whole simulator and fat LTO makes each link a whole-program optimisation
    sim = os.path.join(target, "mutants", "ensemble-sim")
    build = ["cargo", "build", "--profile", "mutants", "--manifest-path", "sim/Cargo.toml"]
    sweep = [sim, "sweep", "--seeds", a.seeds, "--jobs", str(a.jobs), "--first"]
    report = a.report or os.path.join(a.work, "report.md")
    known = known_list()
    lo, hi = (int(x) for x in a.seeds.split(".."))
    killers_file = os.path.join(a.work, "killers.json")
    killers = Killers(killers_file, lo, hi)

    print("baseline: building the simulator", flush=True)
    rc, out, _ = run(build, src, a.build_timeout, env)
    if rc != 0:
        print(out[-3000:])
        print("mutants: the unmutated tree does not build")
        return 2
    rc, out, base = run(sweep, src, 3600, env)
    if rc != 0:
        print(out[-3000:])
        print(f"mutants: the unmutated tree fails the sweep over {a.seeds}")
        return 2
    bound = max(120.0, base * 6)
    print(f"baseline: sweep {a.seeds} passes in {base:.0f}s; a mutant's sweep is bounded by {bound:.0f}s",
          flush=True)
    foreign = [sim, "foreign", "--seeds", a.seeds, "--first"]
    foreign_bound = None
    if not a.no_foreign and pick:
        rc, out, fbase = run(foreign, src, 3600, env)
        if rc != 0:
            print(out[-3000:])
            print(f"mutants: the unmutated tree fails the foreign sweep over {a.seeds}")
            return 2
        foreign_bound = max(120.0, fbase * 6)
        print(f"baseline: foreign {a.seeds} passes in {fbase:.0f}s; bounded by {foreign_bound:.0f}s",
              flush=True)
    with open(report, "w") as r:
        r.write(f"# mutation report: {len(pick)} mutants, sweep {a.seeds} (baseline {base:.0f}s)\n\n")
        r.write("| verdict | mutant | where | how |\n|---|---|---|---|\n")

    counts = {}
    unknown_survivors = []
    for n, m in enumerate(pick, 1):
        path, i, line, new, op, occ = m
        fp = os.path.join(src, path)
        orig = open(fp).read()
        lines = orig.split("\n")
        if lines[i] != line:
            print(f"[{n}/{len(pick)}] {path}:{i + 1}: the line changed under us; skipped")
            continue
        lines[i] = new
        open(fp, "w").write("\n".join(lines))
        how = ""
        try:
            rc, out, bt = run(build, src, a.build_timeout, env)
            if rc is None:
                verdict, how = "unviable", "build timed out"
            elif rc != 0:
                err = [l for l in out.split("\n") if l.startswith("error")]
                verdict, how = "unviable", (err[0] if err else "build failed")[:100]
            else:
                rc, out, st = killers.try_first(sim, src, bound, env)
                if rc == 0:
                    rc, out, st2 = run(sweep, src, bound, env)
                    st += st2
                via, limit = "", bound
                if rc == 0 and foreign_bound is not None:
                    # the default sweep never reaches some code the foreign driver runs
                    via, limit = "foreign: ", foreign_bound
                    rc, out, st2 = run(foreign, src, limit, env)
                    st += st2
                if rc is None:
                    verdict, how = "timeout", f"{via}sweep past {limit:.0f}s"
                elif rc == 0:
                    verdict = "known" if mutant_id(m) in known else "survived"
                    how = f"{st:.0f}s"
                else:
                    fails = [l for l in out.split("\n") if " FAIL " in l or "panicked" in l]
                    verdict, how = "killed", via + (fails[0] if fails else f"exit {rc}")[:160]
                    if not via:
                        # a foreign seed says nothing about the default sweep's seeds
                        killers.learn(out)
                    how += f" ({st:.0f}s)"
        finally:
            open(fp, "w").write(orig)
        counts[verdict] = counts.get(verdict, 0) + 1
        if verdict == "survived":
            unknown_survivors.append(mutant_id(m))
        mid = mutant_id(m).replace("|", "\\|")
        print(f"[{n}/{len(pick)}] {verdict:<9} {path}:{i + 1}: {op}: {line.strip()}  {how}", flush=True)
        with open(report, "a") as r:
            how_md = how.replace("|", "\\|")
            r.write(f"| {verdict} | `{mid}` | {path}:{i + 1} | {how_md} |\n")
    viable = sum(v for k, v in counts.items() if k != "unviable")
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    pct = f"{100 * killed / viable:.0f}%" if viable else "n/a"
    line = f"mutants: {summary}; killed (with timeouts) {killed} of {viable} viable: {pct}"
    print(line)
    with open(report, "a") as r:
        r.write(f"\n{line}\n")
    print(f"report: {report}")
    if a.ci and unknown_survivors:
        print("survivors not explained in sim/MUTANTS.md:")
        for s in unknown_survivors:
            print(f"  - `{s}`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
