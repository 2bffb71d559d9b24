# SPDX-License-Identifier: MIT
"""A library mapped after the agent last read a process's mappings, and never read again (a
process that dies within milliseconds of mapping it): the deferred sample names the file of
its pc (device and inode, from bpf_find_vma), and the agent adds that mapping from the table
another process already loaded for the same file.

AP_TEST_FREEZE_MAPS makes the unwinder read each process's mappings once, so nothing else
can teach it the library. Process A runs nofp_chain's dl chain from the start (the agent
compiles libnofp_dl.so's table for it); process B runs the lib chain, then dlopen()s
libnofp_dl.so halfway ("late"). B's dl-chain samples must be whole, down to _start."""
import json
import os
import tempfile

from aptest import agent, check, has_rooted_chain, require_bpf, start_workload, wait_all

DL = ["main", "nf_dl_caller", "nfdl_work"]


def main():
    require_bpf()
    a, apid = start_workload("nofp_chain", "9", "dl")
    b, bpid = start_workload("nofp_chain", "6", "late")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "p.json")
            agent("--mode", "cpu", "--pid", apid, "--pid", bpid, "--duration", "7s",
                  "--sample-rate", "199", "--format", "json", "-o", out, timeout=120,
                  env=dict(os.environ, AP_TEST_FREEZE_MAPS="1",
                           APERTURE_CACHE_DIR=os.path.join(tmp, "cache")))
            with open(out) as f:
                d = json.load(f)
    finally:
        for p in (a, b):
            p.kill()
        wait_all([a, b])
    frames, st = d["frames"], d["stats"]
    total = whole = 0
    for s in d["samples"]:
        if s["pid"] != bpid:
            continue
        user = [frames[i]["name"] for i in reversed(d["stacks"][s["stack"]])
                if frames[i]["kind"] == "user"]
        if "nfdl_work" not in user and "nfdl_leaf" not in user:
            continue
        total += s["values"][0]
        whole += s["values"][0] if has_rooted_chain(user, DL) else 0
    print(f"B's dl-chain samples: {whole}/{total} whole; mappings from samples: "
          f"{st.get('unwind_mappings_from_samples')}, symbols: "
          f"{st.get('symbol_mappings_from_samples')}, rescans {st.get('unwind_rescans')}")
    check(total >= 100, f"too few samples of B in the dlopen()ed library: {total}")
    check(st.get("unwind_mappings_from_samples", 0) >= 1, "no mapping was learnt from a sample")
    check(whole >= 0.95 * total, f"only {whole}/{total} of B's dl-chain samples are whole")
    print("PASS")


if __name__ == "__main__":
    main()
