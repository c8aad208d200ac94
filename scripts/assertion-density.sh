#!/usr/bin/env bash
# Assertion density of the core's non-test code: assert*!/debug_assert*! per 1,000 code lines
# (non-blank, non-comment), per file and in total. Test code is not counted: a trailing
# `#[cfg(test)] mod`, the test modules kept in files of their own (tree/tests/, *_tests.rs,
# test_rig.rs: each declared under #[cfg(test)]).
# Usage: scripts/assertion-density.sh [repo-root]   (default: this checkout)
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root/core/src"
files=$(find . -name '*.rs' ! -path './tree/tests/*' ! -name '*_tests.rs' ! -name test_rig.rs \
    | sed 's|^\./||' | sort)
awk '
    FNR == 1 { intest = 0; pending = 0 }
    # a #[cfg(test)] attribute on a module starts the test code, to the end of the file
    /^[[:space:]]*#\[cfg\(test\)\][[:space:]]*$/ { pending = 1; next }
    pending && /^[[:space:]]*(pub(\([a-z]+\))? )?mod / { intest = 1 }
    { pending = 0 }
    intest { next }
    /^[[:space:]]*$/ { next }
    /^[[:space:]]*\/\// { next }
    {
        code[FILENAME]++
        line = $0
        n = gsub(/(debug_)?assert(_eq|_ne)?!/, "", line)
        asserts[FILENAME] += n
    }
    END {
        printf "%-32s %6s %8s %10s\n", "file", "code", "asserts", "per 1,000"
        for (f in code) {
            printf "%-32s %6d %8d %10.1f\n", f, code[f], asserts[f] + 0, 1000 * asserts[f] / code[f] | "sort"
            tc += code[f]; ta += asserts[f]
        }
        close("sort")
        printf "%-32s %6d %8d %10.1f\n", "TOTAL", tc, ta, 1000 * ta / tc
    }
' $files
