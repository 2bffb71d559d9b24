# SPDX-License-Identifier: MIT
"""--mode gpu with --server: pushed like every other mode (mode="gpu") to a real
aperture-aggregator; the stored launches of the program's kernels, queried back with
{mode="gpu"}, equal the program's own count, each under its '[gpu] <kernel>' leaf, and the
push's tables carry the GPU tables."""
import json
import os
import tempfile
import time

from aggregator import Aggregator
from aptest import check, require_bpf
from gpu_lib import Agent, Prog, demangle, require_no_gpu, toolkit

require_bpf()
toolkit()
require_no_gpu()
ITER = 4

with tempfile.TemporaryDirectory() as tmp, Aggregator() as agg:
    t0 = time.time_ns() - 10**9
    p = Prog("ap_gpu_static", ITER, wait="ctor", hold=True)
    a = Agent("--pid", p.pid, "--server", agg.url, "--push-interval", "1s",
              "--spool-dir", os.path.join(tmp, "spool"))
    p.go()
    res = p.wait_result()
    time.sleep(1.5)  # one push interval after the last call
    _, err = a.stop()
    p.finish()
    t1 = time.time_ns() + 10**9
    rng = {"from": str(t0), "until": str(t1)}
    last = [ln for ln in err.splitlines() if " pushes: ok=" in ln][-1:]
    check(last and "rejected=0" in last[0] and " dropped=0" in last[0] and "refused" not in err,
          f"the gpu pushes did not all arrive:\n{err[-2500:]}\n{agg.log()[-1500:]}")
    names = demangle(res["kernels"])
    want = {f"[gpu] {names[m]}": sum(s["launches"] for s in v) for m, v in res["kernels"].items()}
    sel = f'{{mode="gpu",pid="{p.pid}"}}'
    folded = agg.folded(sel, value="launches", **rng)
    got = {}
    for stack, n in folded.items():
        leaf = stack.split(";")[-1]
        got[leaf] = got.get(leaf, 0) + n
    check(got == want, f"stored launches per kernel leaf {got}, the program made {want}\n"
          f"agent stderr: {err[-2500:]}")
    total = agg.query("/api/v1/flamegraph", query=sel, value="launches", **rng).json()["total"]
    check(total == sum(want.values()), f"flamegraph total {total} != {sum(want.values())}")
    tables = agg.query("/api/v1/tables", query='{mode="gpu"}', **rng).text()
    check(names["_ZN11aperture_ns5scaleIfEEvPT_S2_i"] in tables,
          f"the stored tables lack the kernel table: {tables[:2000]}")
    print(f"ok: {sum(want.values())} launches stored under mode=\"gpu\", tables stored")
