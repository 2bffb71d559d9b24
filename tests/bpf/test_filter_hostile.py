# SPDX-License-Identifier: MIT
"""Hostile filters (tests/data/filters/*.wat) through the real agent: the agent neither
crashes nor hangs, refuses bad modules at load with exit 2 and "FILE: reason" before it
records anything, and at run time counts the traps and keeps the other events.

The runtime modules trap on events of odd pids and drop the others, so with two workloads,
one of each parity, the odd one must survive whole (fail open) or vanish (--filter-on-error
drop), and the even one must vanish either way."""
import os
import subprocess
import tempfile

from aptest import check, require_bpf
from filter_agent_lib import AGENT, Agent, Syscalls, check_exact, filter_stats, \
    hostile_filter, syscall_entries

require_bpf()


def workloads():
    """Two ap_syscalls, one with an odd pid and one with an even pid."""
    got, spare = {}, []
    for _ in range(12):
        w = Syscalls(300, 3)
        if w.pid % 2 in got:
            spare.append(w)
        else:
            got[w.pid % 2] = w
        if len(got) == 2:
            break
    for w in spare:
        w.close()
    check(len(got) == 2, "could not get workloads of both pid parities")
    return got[1], got[0]


with tempfile.TemporaryDirectory() as tmp:
    # load failures: exit 2 with the file and the reason, no output left behind
    out = os.path.join(tmp, "never.json")
    for name, reason in (("wrong_abi", "ABI version 99"),
                         ("missing_export", "missing export 'ap_filter'"),
                         ("import_wasi", "WASI is not available"),
                         ("init_loop", "fuel")):
        path = hostile_filter(name, tmp)
        r = subprocess.run([AGENT, "-m", "syscall", "-d", "5s", "--filter", path, "-o", out],
                           capture_output=True, text=True, timeout=60)
        print(f"{name}: exit {r.returncode}: {r.stderr.strip()}")
        check(r.returncode == 2, f"{name}: exit {r.returncode}, wanted 2: {r.stderr}")
        check(path in r.stderr and reason in r.stderr,
              f"{name}: message lacks the file or {reason!r}: {r.stderr}")
        left = [f for f in os.listdir(tmp) if not f.endswith(".wasm")]
        check(not left, f"{name}: a refused run left files: {left}")
    r = subprocess.run([AGENT, "-m", "cpu", "-d", "1s", "--filter",
                        os.path.join(tmp, "no_such.wasm")], capture_output=True, text=True)
    check(r.returncode == 2 and "no_such.wasm" in r.stderr, f"missing file: {r.stderr}")

    # runtime traps: fuel (interpreter, fail open), call depth (aot, fail open) and
    # out-of-bounds memory (--filter-on-error drop)
    odd, even = workloads()
    p = lambda name: os.path.join(tmp, name)  # noqa: E731
    runs = {
        "fuel": Agent("-m", "syscall", "-p", odd.pid, "-p", even.pid, "--filter",
                      hostile_filter("infinite_loop", tmp), "--filter-engine", "interp",
                      "--filter-fuel", "20000", "-o", p("fuel.json")),
        "call_depth": Agent("-m", "syscall", "-p", odd.pid, "-p", even.pid, "--filter",
                            hostile_filter("deep_recursion", tmp), "-o", p("depth.json")),
        "memory": Agent("-m", "syscall", "-p", odd.pid, "-p", even.pid, "--filter",
                        hostile_filter("oob_load", tmp), "--filter-on-error", "drop",
                        "-o", p("memory.json")),
    }
    try:
        for a in runs.values():
            a.wait_recording()
        odd.round()
        even.round()
        for a in runs.values():
            a.finish(stop=True, timeout=60)
    finally:
        odd.close()
        even.close()

    for reason, a in runs.items():
        ents, st = syscall_entries(p({"fuel": "fuel.json", "call_depth": "depth.json",
                                      "memory": "memory.json"}[reason]))
        fs = filter_stats(st)
        print(f"{reason}: traps {fs['filter_traps']}, seen {fs['filter_events_seen']}, kept "
              f"{fs['filter_kept']}, dropped {fs['filter_dropped']}; pids "
              f"{sorted({pid for pid, _ in ents})}")
        trapped = fs[f"filter_traps_{reason}"]
        check(trapped == fs["filter_traps"] >= odd.n + odd.e,
              f"{reason}: {trapped} traps, wanted one per call of pid {odd.pid}: {fs}")
        check(fs["filter_events_seen"] == fs["filter_kept"] + fs["filter_dropped"],
              f"{reason}: counters do not add up: {fs}")
        if reason == "fuel":
            check(fs["filter_fuel_exhausted"] == trapped, f"fuel exhausted: {fs}")
        reports = a.err.count(f": {reason} on an event of pid {odd.pid}")
        check(1 <= reports <= 20, f"{reason}: {reports} trap reports on stderr, wanted a "
              f"rate-limited few:\n{a.err[-2000:]}")
        check(not any(pid == even.pid for pid, _ in ents),
              f"{reason}: the even pid's events were not dropped")
        if reason == "memory":  # --filter-on-error drop
            check(not ents, f"memory: trapping events kept despite drop: {sorted(ents)}")
            check(fs["filter_kept"] == 0, f"memory: {fs}")
        else:  # fail open: the trapping events are all there, exactly
            check_exact(ents, odd, reason)
print("PASS")
