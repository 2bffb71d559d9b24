# SPDX-License-Identifier: MIT
"""JIT frames of a real runtime: Node with --perf-basic-prof writes /tmp/perf-PID.map, and the
agent names V8's compiled JavaScript functions from it.

A script spends its time in outerJs -> hotLoop. Recorded with --pid:
- most samples (>= 50%) have a frame named from the perf map ("JS:*outerJs ..." or
  "JS:*hotLoop ..."; TurboFan inlines hotLoop into outerJs at times), with the map's module
  name "perf-PID.map";
- the stacks are whole: they run from the JIT frames through node's own C++ frames to _start
  (V8 keeps frame pointers in generated code, and the CFI tables cover node itself).
V8 buffers the map file (stdio), so code compiled shortly before a drain may stay unnamed
until V8 flushes: the test does not ask for 100%."""
import json
import os
import shutil
import tempfile

from aptest import (STACK_ROOTS, agent, check, require_bpf, skip, start_workload, wait_all)

SCRIPT = """
function hotLoop(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i) * (i & 7); return s; }
function outerJs() { let t = 0; for (let k = 0; k < 20; k++) t += hotLoop(200000); return t; }
console.log(process.pid);
const end = Date.now() + 1000 * Number(process.argv[2]);
let x = 0;
while (Date.now() < end) x += outerJs();
"""


def main():
    require_bpf()
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        skip("node is not installed (Debian: nodejs)")
    with tempfile.TemporaryDirectory() as tmp:
        js = os.path.join(tmp, "hot.js")
        with open(js, "w") as f:
            f.write(SCRIPT)
        proc, pid = start_workload(node, "--perf-basic-prof", js, 8)
        try:
            out = os.path.join(tmp, "p.json")
            agent("--mode", "cpu", "--pid", pid, "--duration", "3s", "--sample-rate", "199",
                  "--format", "json", "-o", out, timeout=120)
            with open(out) as f:
                d = json.load(f)
        finally:
            proc.kill()
            wait_all([proc])
            try:
                os.unlink(f"/tmp/perf-{pid}.map")
            except OSError:
                pass
    frames = d["frames"]
    total = named = whole = 0
    modules = set()
    for s in d["samples"]:
        st = [frames[i] for i in d["stacks"][s["stack"]]]
        js_frames = [f for f in st if f["name"].startswith("JS:") and
                     ("hotLoop" in f["name"] or "outerJs" in f["name"])]
        user = [f["name"] for f in reversed(st) if f["kind"] == "user"]
        total += s["values"][0]
        if js_frames:
            named += s["values"][0]
            modules.update(f["module"] for f in js_frames)
            whole += s["values"][0] if user and user[0] in STACK_ROOTS else 0
    print(f"node: {named}/{total} samples in named JS frames, {whole} of them whole down to "
          f"_start; modules {sorted(modules)}; jit_frames_resolved="
          f"{d['stats'].get('jit_frames_resolved')}")
    check(total >= 200, f"too few samples ({total})")
    check(named >= 0.5 * total, f"JS frames named in only {named}/{total} samples")
    check(modules == {f"perf-{pid}.map"}, f"JS frames' module: {modules}")
    check(whole >= 0.95 * named, f"only {whole}/{named} JS samples have the whole stack")
    print("PASS")


if __name__ == "__main__":
    main()
