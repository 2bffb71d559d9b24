# SPDX-License-Identifier: MIT
"""--mode gpu on processes that were running before the agent came: they registered their
kernels (__cudaRegisterFunction, in a constructor) before any probe was there, so the kernel
names come from the host stubs' ELF symbols (the local, L-marked symbol of a template stub
demangles to the same name). Static and shared cudart; launches exact, named and demangled,
the rest counted as for a process seen from its start. Also the whole-system discovery: an
agent without --pid finds a CUDA process that starts after it."""
import os
import tempfile
import time

from aptest import require_bpf
from gpu_lib import (Agent, Checks, Prog, check_kernels, check_runtime_run, fmt_kernels,
                     load_json, record, require_no_gpu, toolkit)

require_bpf()
toolkit()
require_no_gpu()
ITER = 3

with tempfile.TemporaryDirectory() as tmp:
    for prog in ("ap_gpu_static", "ap_gpu_shared"):
        out = os.path.join(tmp, f"{prog}.json")
        pid, res, _, _ = record(prog, ITER, out, wait="main")
        check_runtime_run(f"{prog} {ITER}, started before the agent", load_json(out), res, pid)

    # whole system: the agent is there first, the program starts later and is found
    out = os.path.join(tmp, "system.json")
    a = Agent("-o", out)
    p = Prog("ap_gpu_static", ITER, wait="ctor", hold=True)
    time.sleep(2)  # nothing tells when the new process's probes are in: give it time
    p.go()
    res = p.wait_result()
    time.sleep(0.5)
    a.stop()
    p.finish()
    # the API/memory/copy tables are the whole system's (other CUDA processes may run):
    # only the per-process kernel table is exact
    c = Checks(f"ap_gpu_static {ITER}, found by a whole-system agent")
    gpu = load_json(out)["gpu"]
    check_kernels(c, gpu, res, p.pid)
    c.done(fmt_kernels(gpu))
