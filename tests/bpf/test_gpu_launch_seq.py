# SPDX-License-Identifier: MIT
"""--mode gpu on the other ways nvcc lowers a launch: --legacy-launch-seq (<<<>>> calls
cudaLaunchKernel directly, no __cudaGetKernel/__cudaLaunchKernel: CUDA 13's new sequence is
the default) and --default-stream per-thread (the _ptsz/_ptds entry points: __cudaLaunchKernel_ptsz,
cudaLaunchKernel_ptsz, cudaMemcpy_ptds, cudaMemcpyAsync_ptsz, cudaStreamSynchronize_ptsz,
...). The same exact counts as test_gpu_runtime.py: each launch counted once, whichever entry
points it went through."""
import os
import tempfile

from aptest import require_bpf
from gpu_lib import check_runtime_run, load_json, record, require_no_gpu, toolkit

require_bpf()
toolkit()
require_no_gpu()
ITER = 4

with tempfile.TemporaryDirectory() as tmp:
    for prog in ("ap_gpu_legacy", "ap_gpu_ptsz"):
        out = os.path.join(tmp, f"{prog}.json")
        pid, res, _, _ = record(prog, ITER, out)
        check_runtime_run(f"{prog} {ITER}", load_json(out), res, pid)
