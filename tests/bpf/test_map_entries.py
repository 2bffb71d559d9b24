# SPDX-License-Identifier: MIT
"""--map-entries sets the size of the CPU collector's counts and stacks maps: with a tiny map
the samples that do not fit are counted (counts_map_full), with the default size none are
lost, and bad values are refused with exit 2 and a message that names the flag."""
import json
import os
import tempfile

from aptest import agent, check, require_bpf, start_workload, wait_all

require_bpf()

for bad in ("0", "-1", "abc", "1048577", "99999999999999999999", "", "12k"):
    r = agent("--mode", "cpu", "--map-entries", bad, "-d", "1s", check_rc=False)
    check(r.returncode == 2, f"--map-entries {bad!r}: exit {r.returncode}, want 2\n{r.stderr}")
    check("--map-entries" in r.stderr, f"--map-entries {bad!r}: message lacks the flag: {r.stderr}")
r = agent("--help")
check("--map-entries" in r.stdout, "--help does not list --map-entries")


def run(tmp, name, pids, *extra):
    out = os.path.join(tmp, name + ".json")
    agent("-m", "cpu", *[a for p in pids for a in ("-p", p)], "-d", "3s", "-s", "499", *extra,
          "-o", out)
    j = json.load(open(out))
    stats = j["stats"]
    total = sum(s["values"][0] for s in j["samples"])
    print(f"{name}: {total} samples recorded, bpf_samples {stats.get('bpf_samples')}, "
          f"counts_map_full {stats.get('counts_map_full')}, "
          f"stack_map_full {stats.get('stack_map_full')}")
    return stats, total


with tempfile.TemporaryDirectory() as tmp:
    # four processes: at least four keys (pid, tid) per drain, even when a full stacks map
    # leaves every sample without stacks
    wls = [start_workload("ap_chain", 60) for _ in range(4)]
    pids = [pid for _, pid in wls]
    # one entry per slot: the second key of a drain interval finds the map full
    tiny, tiny_total = run(tmp, "tiny", pids, "--map-entries", "1")
    dflt, dflt_total = run(tmp, "default", pids)
    for w, _ in wls:
        w.kill()
    wait_all([w for w, _ in wls])

    check(tiny["bpf_samples"] > 100, f"too few samples to fill a map: {tiny['bpf_samples']}")
    check(tiny["counts_map_full"] > 0, "a 1-entry counts map never filled up")
    # the samples that did not fit are the difference, counted, not silently lost
    check(tiny_total + tiny["counts_map_full"] <= tiny["bpf_samples"],
          "more samples recorded than the program counted")
    check(dflt["bpf_samples"] > 100, f"too few samples: {dflt['bpf_samples']}")
    check(dflt["counts_map_full"] == 0, f"default-sized map full: {dflt['counts_map_full']}")
    check(dflt.get("stack_map_full", 0) == 0, f"default stacks map full: {dflt}")
print("PASS")
