# SPDX-License-Identifier: MIT
"""--mode gpu on programs that exit before the agent stops (a short CUDA job; the other GPU
tests keep their program alive until the agent has stopped): kernels still named and
demangled, launch and sync stacks still symbolized (rooted in main through the calling
function), the process's allocations settled at its exit (all failed here: no leaks), the
same exact counts as test_gpu_runtime.py. Static cudart, and the driver API against the stub."""
import os
import tempfile

from aptest import require_bpf
from gpu_lib import (Checks, check_runtime_run, fmt_kernels, load_json, record, require_no_gpu,
                     rooted_in_main, stub_env, toolkit)

require_bpf()
toolkit()
require_no_gpu()
ITER = 4

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "static.json")
    pid, res, _, _ = record("ap_gpu_static", ITER, out, exit_first=True)
    check_runtime_run(f"ap_gpu_static {ITER}, exited before the agent stopped",
                      load_json(out), res, pid)

    out = os.path.join(tmp, "drv.json")
    pid, res, _, _ = record("ap_gpu_drv", ITER, out, exit_first=True, env=stub_env(tmp))
    gpu = load_json(out)["gpu"]
    c = Checks(f"ap_gpu_drv {ITER}, exited before the agent stopped")
    ks = [k for k in gpu.get("kernels", []) if k.get("pid") == pid]
    c.eq(sum(k.get("launches", 0) for k in ks), ITER, "cuLaunchKernel launches")
    c.eq(sum(t["launches"] for k in ks for t in k.get("top_stacks", [])
             if rooted_in_main(t["frames"], "run_launch")), ITER,
         "launches from main -> run_launch")
    m = gpu.get("memory", {})
    c.eq((m.get("failed_allocations"), m.get("leaks"), m.get("live_at_end")),
         (res["api"]["cuMemAlloc_v2"]["calls"], [], []),
         "memory (failed allocations, leaks, live at end)")
    c.done(fmt_kernels(gpu))
