# SPDX-License-Identifier: MIT
"""Per-event delivery (what WASM filters use) gives the same profile as in-kernel
aggregation: two agents record the same process at once, one each way. Both account for
every sample the BPF program took."""
import json
import os
import subprocess
import tempfile

from aptest import BIN_DIR, check, fail, require_bpf, start_workload, wait_all

require_bpf()
with tempfile.TemporaryDirectory() as tmp:
    wl, pid = start_workload("ap_chain", 6)
    runs = {}
    procs = {}
    for mode in ("kernel", "event"):
        out = os.path.join(tmp, f"{mode}.json")
        args = [os.path.join(BIN_DIR, "aperture-agent"), "-m", "cpu", "-p", str(pid), "-d", "3s",
                "-s", "199", "-o", out] + (["--per-event"] if mode == "event" else [])
        procs[mode] = (subprocess.Popen(args, stderr=subprocess.PIPE, text=True), out)
    for mode, (p, out) in procs.items():
        _, err = p.communicate(timeout=60)
        if p.returncode:
            fail(f"{mode}: agent exited {p.returncode}: {err}")
        runs[mode] = json.load(open(out))
    wait_all([wl])

    # user frames only: the two agents run side by side, and one agent's ring-buffer wakeups
    # (irq_work) show up as kernel frames in the other's samples
    shares = {}
    for mode, j in runs.items():
        st = j["stats"]
        check(st["samples"] == st["bpf_samples"],
              f"{mode}: {st['bpf_samples']} samples taken but {st['samples']} in the profile")
        check(st["samples"] >= 300, f"{mode}: too few samples {st['samples']}")
        names = [f["name"] for f in j["frames"]]
        by_stack = {}
        for s in j["samples"]:
            key = ";".join(names[f] for f in reversed(j["stacks"][s["stack"]])
                           if j["frames"][f]["kind"] == "user")
            by_stack[key] = by_stack.get(key, 0) + s["values"][0]
        total = sum(by_stack.values())
        shares[mode] = {k: v / total for k, v in by_stack.items()}
    big = {k for m in shares.values() for k, v in m.items() if v >= 0.05}
    for k in big:
        a, b = shares["kernel"].get(k, 0), shares["event"].get(k, 0)
        print(f"{a:6.1%} {b:6.1%} {k[-80:]}")
        check(abs(a - b) <= 0.05, f"stack share differs: kernel {a:.1%} vs per-event {b:.1%}: {k}")
    # the two agents start (and so stop) a few hundred ms apart: compare sampling rates over
    # each one's own recording time, not raw totals
    rk, re_ = (runs[m]["stats"]["samples"] * 1e9 / runs[m]["duration_ns"]
               for m in ("kernel", "event"))
    check(abs(rk - re_) <= 0.08 * max(rk, re_), f"sample rates differ: {rk:.1f}/s vs {re_:.1f}/s")
print("PASS")
