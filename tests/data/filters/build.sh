#!/bin/sh
# Rebuild the test filters: every tests/data/filters/*.wat -> OUTDIR/NAME.wasm with wat2wasm
# (Debian package wabt). huge_locals.wat.in is expanded first: WAT has no repeat syntax.
# The test build runs this (tests/unit/filter.cmake); binaries are never committed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
for f in "$here"/*.wat; do
	wat2wasm "$f" -o "$out/$(basename "$f" .wat).wasm"
done
python3 - "$here/huge_locals.wat.in" "$out/huge_locals.wat" <<'PY'
import sys
n = 100000
text = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(text.replace("@LOCALS@", " ".join(["i64"] * n)).replace("@COUNT@", str(n)))
PY
wat2wasm "$out/huge_locals.wat" -o "$out/huge_locals.wasm"
rm -f "$out/huge_locals.wat"
