# SPDX-License-Identifier: MIT
"""--mode gpu on a stripped executable with static cudart: no symbol is left to put a
probe on (its .nv_fatbin section says it is a CUDA program), so the agent reports it by path
with the reason, in JSON and in the text report, and exits cleanly: never silently missed."""
import os
import tempfile

from aptest import check, require_bpf
from gpu_lib import Checks, load_json, prog_path, record, require_no_gpu, toolkit

require_bpf()
toolkit()
require_no_gpu()

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "stripped.json")
    pid, res, _, err = record("ap_gpu_stripped", 2, out)
    gpu = load_json(out)["gpu"]
    c = Checks("ap_gpu_stripped")
    path = os.path.realpath(prog_path("ap_gpu_stripped"))
    ups = [u for u in gpu.get("unprobeable", []) if u.get("pid") == pid]
    c.eq([os.path.realpath(u.get("path", "")) for u in ups], [path],
         "unprobeable entries for the stripped program (by path)")
    c.true(all(len(u.get("reason", "")) > 10 for u in ups), f"a reason is given: {ups}")
    c.eq([k for k in gpu.get("kernels", []) if k.get("pid") == pid], [],
         "kernels of the stripped program (nothing can be probed)")
    c.done()

    pid, res, text, err = record("ap_gpu_stripped", 1, None, "--format", "text")
    check(path in text or "ap_gpu_stripped" in text,
          f"the text report does not name the stripped binary:\n{text[-3000:]}")
    print("ok: the text report names it")
