# SPDX-License-Identifier: MIT
"""--mode gpu on a driver-API program (C, linked against libcuda.so.1), run against the
toolkit's stub driver (a test-made libcuda.so.1 -> lib/stubs/libcuda.so on LD_LIBRARY_PATH;
every call returns 34 CUDA_ERROR_STUB_LIBRARY): the agent finds the process by its libcuda,
decodes cuLaunchKernel's grid, block and shared memory (arguments on registers and on the
stack), counts cuMemAlloc/cuMemFree/cuMemcpy*/cuCtxSynchronize with their error, from stacks
rooted in main through the calling function; every failed allocation is failed, never live
or leaked."""
import os
import tempfile

from aptest import require_bpf
from gpu_lib import (ERR_DRV_STUB, Checks, api_sums, check_clean, fmt_kernels, load_json,
                     record, require_no_gpu, rooted_in_main, shapes_of, stub_env, toolkit)

require_bpf()
toolkit()
require_no_gpu()
ITER = 6

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "drv.json")
    pid, res, _, err = record("ap_gpu_drv", ITER, out, env=stub_env(tmp))
    gpu = load_json(out)["gpu"]
    c = Checks(f"ap_gpu_drv {ITER} against the stub driver")
    ks = [k for k in gpu.get("kernels", []) if k.get("pid") == pid]
    c.eq(len(ks), 1, "kernel entries (one CUfunction launched)")
    want = res["kernels"]["drv_add_one"]
    if ks:
        k = ks[0]
        print(f"the driver kernel is named {k.get('name')!r} (cuModuleGetFunction failed)")
        c.eq(k.get("launches"), ITER, "cuLaunchKernel launches")
        c.eq(k.get("errors"), ITER, "cuLaunchKernel launches that failed")
        c.eq(shapes_of(k.get("shapes", [])), shapes_of(want), "grid/block/shmem decoded")
        c.eq(sum(t["launches"] for t in k.get("top_stacks", [])
                 if rooted_in_main(t["frames"], "run_launch")), ITER,
             "launches from main -> run_launch")
    api = api_sums(gpu)
    for name, r in res["api"].items():
        base = name[:-3] if name.endswith("_v2") else name
        if base in ("cuMemAlloc", "cuMemFree", "cuMemcpyHtoD", "cuMemcpyDtoH", "cuLaunchKernel",
                    "cuCtxSynchronize"):
            g = api.get(base, {"calls": 0, "errors": {}})
            c.eq((g["calls"], g["errors"]), (r["calls"], {ERR_DRV_STUB: r["calls"]}),
                 f"api {name}: (calls, errors)")
    m = gpu.get("memory", {})
    n_alloc = res["api"]["cuMemAlloc_v2"]["calls"]
    c.eq((m.get("allocations"), m.get("failed_allocations"), m.get("frees")),
         (n_alloc, n_alloc, res["api"]["cuMemFree_v2"]["calls"]),
         "memory (allocations, failed, frees)")
    c.eq((m.get("live_bytes"), m.get("peak_bytes"), m.get("leaks")), (0, 0, []),
         "memory (live, peak, leaks): nothing was allocated")
    cp = gpu.get("copies", {})
    for d in ("h2d", "d2h"):
        g, w = cp.get(d, {}), res["copies"][d]
        c.eq((g.get("calls"), g.get("errors"), g.get("requested_bytes"), g.get("bytes")),
             (w["calls"], w["calls"], w["bytes"], 0),
             f"copies.{d} (calls, errors, requested_bytes, bytes): every copy failed")
    syncs = [s for s in gpu.get("sync", []) if s["api"] == "cuCtxSynchronize"]
    c.eq(sum(s["calls"] for s in syncs), ITER, "sync cuCtxSynchronize calls")
    c.eq(sum(s["calls"] for s in syncs if rooted_in_main(s.get("frames", []), "run_sync")),
         ITER, "cuCtxSynchronize from main -> run_sync")
    check_clean(c, gpu, pid)
    c.done(fmt_kernels(gpu))
