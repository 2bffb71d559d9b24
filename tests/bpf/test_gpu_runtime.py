# SPDX-License-Identifier: MIT
"""--mode gpu on CUDA runtime programs with static cudart (nvcc's default: cudart's functions
are local .symtab symbols of the executable) and shared cudart (libcudart.so.13), the agent
attached before the kernels are registered: exact launches per kernel with demangled names
(a template in a namespace included), grid/block/shared memory decoded, launch stacks rooted
in main through the calling function, calls and errors per API, every failed allocation
counted as failed and never as live or leaked, copies by direction, syncs by call site.
Without a GPU every CUDA call fails (35) but is made; the programs print their own counts."""
import os
import tempfile

from aptest import require_bpf
from gpu_lib import check_runtime_run, load_json, record, require_no_gpu, toolkit

require_bpf()
toolkit()
require_no_gpu()
ITER = 5

with tempfile.TemporaryDirectory() as tmp:
    for prog in ("ap_gpu_static", "ap_gpu_shared"):
        out = os.path.join(tmp, f"{prog}.json")
        pid, res, _, _ = record(prog, ITER, out)
        check_runtime_run(f"{prog} {ITER}", load_json(out), res, pid)
