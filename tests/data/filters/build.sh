#!/bin/sh
# Rebuild the test filters: every tests/data/filters/*.wat -> OUTDIR/NAME.wasm with wat2wasm
# (Debian package wabt). The *.wat.in templates are expanded first: WAT has no repeat syntax.
# The test build runs this (tests/unit/filter.cmake); binaries are never committed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
for f in "$here"/*.wat; do
	wat2wasm "$f" -o "$out/$(basename "$f" .wat).wasm"
done
python3 - "$here" "$out" <<'PY'
import sys
here, out = sys.argv[1], sys.argv[2]
def expand(name, n, sets="", sums=""):
    text = open(f"{here}/{name}.wat.in").read()
    text = text.replace("@LOCALS@", " ".join(["i64"] * n)).replace("@COUNT@", str(n))
    text = text.replace("@SETS@", sets).replace("@SUMS@", sums)
    open(f"{out}/{name}.wat", "w").write(text)
expand("huge_locals", 100000)
n = 1000
expand("big_frames", n,
       " ".join(f"(local.set {k} (i64.load offset={8 * k} (i32.const 0)))" for k in range(1, n + 1)),
       " ".join(f"(local.get {k}) i64.add" for k in range(1, n + 1)))
PY
for name in huge_locals big_frames; do
	wat2wasm "$out/$name.wat" -o "$out/$name.wasm"
	rm -f "$out/$name.wat"
done
