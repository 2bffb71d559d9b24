#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""scripts/check_layering.py: the tree passes, and each kind of violation fails it (a copy of
src/ with one bad include planted at a time)."""
import os
import shutil
import subprocess
import sys
import tempfile

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
script = os.path.join(root, "scripts", "check_layering.py")


def check(src):
    r = subprocess.run([sys.executable, script, src], capture_output=True, text=True)
    return r.returncode, r.stderr


rc, err = check(os.path.join(root, "src"))
if rc != 0:
    sys.exit(f"FAIL: the tree itself breaks the layering:\n{err}")

cases = [
    ("unwind/cfi_parse.c", '#include "symbol/symbolizer.h"', "may not depend on src/symbol"),
    ("format/json.c", '#include "agent/agent.h"', "may not depend on src/agent"),
    ("agent/agent.c", '#include "symbol/symbol_internal.h"', "private to src/symbol"),
    ("filter/filter.c", '#include "lib/profile.h"', "may use only"),
    ("symbol/dwarf.c", '#include "profile.h"', 'needs its module path ("lib/profile.h")'),
]
with tempfile.TemporaryDirectory() as tmp:
    for path, line, want in cases:
        src = os.path.join(tmp, "src")
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(os.path.join(root, "src"), src)
        with open(os.path.join(src, path), "a") as f:
            f.write("\n" + line + "\n")
        rc, err = check(src)
        if rc == 0 or want not in err:
            sys.exit(f"FAIL: {line} in {path}: exit {rc}, want a message with {want!r}: {err}")
        print(f"refused: {line} in src/{path}")
print("PASS")
