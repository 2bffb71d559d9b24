#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The web UI's DOM-free modules (web/query.js, web/flamegraph.js) in node: tests/web/units.mjs
(time forms, selectors, value formats, the flamebearer decoder, the top table's recursion rule,
search statistics, diff colours). Skips (77) without node."""
import os
import shutil
import subprocess
import sys

from aptest import check, skip

SRC = os.environ.get("AP_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
node = shutil.which("node")
if not node:
    skip("node not installed (Debian package nodejs)")
res = subprocess.run([node, os.path.join(SRC, "tests", "web", "units.mjs")],
                     env=dict(os.environ, AP_WEB_DIR=os.path.join(SRC, "web")),
                     capture_output=True, text=True, timeout=120)
print(res.stdout, end="")
print(res.stderr, end="", file=sys.stderr)
check(res.returncode == 0, f"units.mjs exited {res.returncode}")
print("PASS")
