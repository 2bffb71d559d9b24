# SPDX-License-Identifier: MIT
"""--gpu-probes: only the chosen probe groups are attached, and what they count is still
exact: launch (registration + launches), memory (allocations, frees), copy, sync. Calls of
the groups left out are not seen at all. An unknown group is a usage error that names it."""
import os
import tempfile

from aptest import agent, check, require_bpf
from gpu_lib import (ALLOC_APIS, COPY_APIS, ERR_NODRIVER, FREE_APIS, SYNC_APIS, Checks,
                     api_sums, check_api, check_copies, check_kernels, check_memory, check_sync,
                     load_json, record, require_no_gpu, toolkit)

require_bpf()
toolkit()
require_no_gpu()
ITER = 3
GROUP_APIS = {"memory": ALLOC_APIS + FREE_APIS, "copy": COPY_APIS, "sync": SYNC_APIS}

with tempfile.TemporaryDirectory() as tmp:
    for groups in ("launch", "memory,copy", "sync"):
        out = os.path.join(tmp, f"{groups}.json")
        pid, res, _, _ = record("ap_gpu_static", ITER, out, "--gpu-probes", groups)
        gpu = load_json(out)["gpu"]
        on = set(groups.split(","))
        c = Checks(f"--gpu-probes {groups}")
        if "launch" in on:
            check_kernels(c, gpu, res, pid)
        else:
            c.eq([k["name"] for k in gpu.get("kernels", []) if k.get("launches")], [],
                 "kernels with launches (launch group off)")
        seen = api_sums(gpu)
        for g, apis in GROUP_APIS.items():
            if g in on:
                check_api(c, gpu, res, apis, ERR_NODRIVER)
            else:
                c.eq(sorted(a for a in apis if seen.get(a, {}).get("calls")), [],
                     f"APIs of the '{g}' group seen while it was off")
        if "memory" in on:
            check_memory(c, gpu, res)
        else:
            m = gpu.get("memory", {})
            c.eq((m.get("allocations", 0), m.get("frees", 0)), (0, 0), "memory (group off)")
        if "copy" in on:
            check_copies(c, gpu, res)
        else:
            c.eq(sum(d.get("calls", 0) for d in gpu.get("copies", {}).values()), 0,
                 "copies (group off)")
        if "sync" in on:
            check_sync(c, gpu, res)
        else:
            c.eq(gpu.get("sync", []), [], "sync (group off)")
        c.done()

    r = agent("--mode", "gpu", "--gpu-probes", "launch,bogus", "-d", "1s", check_rc=False)
    check(r.returncode == 2 and "bogus" in r.stderr,
          f"--gpu-probes launch,bogus: exit {r.returncode}, stderr {r.stderr!r}")
    print("ok: an unknown group is refused, by name")
