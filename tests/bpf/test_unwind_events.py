# SPDX-License-Identifier: MIT
"""Lock waits and slow system calls of programs built -O2 -fomit-frame-pointer carry their
full user call chain: the lock and syscall modes walk user stacks with the CFI tables, as the
CPU sampler does (frame pointers alone lose every caller of a frameless function).

- syscall: nofp_sleep's 2 ms nanosleeps (main -> ns_outer -> ns_middle -> ns_sleep ->
  nanosleep), recorded with --mode syscall --min-latency 1ms --slow-stacks into a folded
  file: the chain, down to _start, in >= 95% of the slow calls (weighted by latency: every
  call is ~2 ms).
- lock: nofp_lock's threads contending a mutex (nl_thread -> nl_outer -> nl_middle ->
  nl_take -> pthread_mutex_lock; glibc's __lll_lock_wait sits between): the chain, in order
  and down to clone3, in >= 90% of the waits on it.
- --mode all --slow-stacks on both: the three modes share one unwinder (each process's tables
  compiled once, the same table statistics in every mode's output), and the lock and syscall
  chains are as complete as in their own runs."""
import json
import os
import tempfile

from aptest import (agent, check, has_rooted_chain as has_chain, lock_chain_counts,
                    read_folded, require_bpf, start_workload, wait_all)

SLEEP = ["main", "ns_outer", "ns_middle", "ns_sleep"]
LOCK = ["nl_thread", "nl_outer", "nl_middle", "nl_take"]


def test_syscall():
    proc, pid = start_workload("nofp_sleep", 8)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "x.folded")
            agent("--mode", "syscall", "--min-latency", "1ms", "--slow-stacks", "--pid", pid,
                  "--duration", "3s", "-o", out, timeout=120)
            stacks = read_folded(out)
    finally:
        proc.kill()
        wait_all([proc])
    total = ok = 0
    for frames, weight in stacks:
        # comm;syscall:NAME;user frames root first
        if len(frames) < 2 or not frames[1].startswith("syscall:clock_nanosleep"):
            continue
        total += weight
        if has_chain(frames[2:], SLEEP):
            ok += weight
    print(f"syscall: {100.0 * ok / max(total, 1):.1f}% of slow nanosleep time carries the full"
          f" chain ({len(stacks)} stacks)")
    for frames, weight in stacks:
        if not has_chain(frames[2:], SLEEP):
            print(f"   not matched ({weight} ns): {';'.join(frames)}")
    check(total > 0, "syscall: no slow nanosleep calls recorded")
    check(ok >= 0.95 * total, f"syscall: full chain in only {ok}/{total} ns of slow calls")


def test_lock():
    proc, pid = start_workload("nofp_lock", 8, 4)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "l.json")
            agent("--mode", "lock", "--pid", pid, "--duration", "3s", "-o", out,
                  "--format", "json", timeout=120)
            with open(out) as f:
                d = json.load(f)
    finally:
        proc.kill()
        wait_all([proc])
    ok, total = lock_chain_counts(d, "nl_mutex", LOCK)
    stats = d["stats"]
    print(f"lock: {ok}/{total} waits on nl_mutex carry the full chain"
          f" ({100.0 * ok / max(total, 1):.1f}%); walker: {stats.get('stacks_complete', 0)}/"
          f"{stats.get('stacks_user_walked', 0)} complete,"
          f" {stats.get('stacks_fp_only_no_tables', 0)} before tables")
    check(total >= 100, f"lock: too few waits on nl_mutex ({total})")
    check(ok >= 0.90 * total, f"lock: full chain in only {ok}/{total} waits")
    check(stats.get("stacks_user_walked", 0) > 0, "lock: the CFI walker was not used")


def test_all_modes():
    procs = [start_workload("nofp_sleep", 8), start_workload("nofp_lock", 8, 4)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "a.json")
            args = ["--mode", "all", "--slow-stacks", "--min-latency", "1ms", "--duration",
                    "3s", "-o", out, "--format", "json"]
            for _, pid in procs:
                args += ["--pid", pid]
            agent(*args, timeout=120)
            d = {}
            for m in ("cpu", "lock", "syscall"):
                with open(os.path.join(tmp, f"a.{m}.json")) as f:
                    d[m] = json.load(f)
    finally:
        for p, _ in procs:
            p.kill()
        wait_all([p for p, _ in procs])
    shared = ("unwind_files_compiled", "unwind_table_rows", "unwind_compile_us",
              "unwind_processes_loaded")
    got = {m: tuple(d[m]["stats"].get(k) for k in shared) for m in d}
    print(f"all modes: unwinder stats {shared}: {got}")
    check(got["cpu"][0] and got["cpu"][0] > 0, "all modes: no unwind tables compiled")
    # one unwinder: every mode reports the same tables, compiled once (separate unwinders
    # would each have compiled, and timed, their own)
    check(got["cpu"] == got["lock"] == got["syscall"],
          f"all modes: the modes do not share one unwinder: {got}")
    ok, total = lock_chain_counts(d["lock"], "nl_mutex", LOCK)
    print(f"all modes: lock {ok}/{total} waits with the full chain")
    check(total >= 100 and ok >= 0.90 * total, f"all modes: lock chains {ok}/{total}")
    sc = d["syscall"]
    check(sc["stats"].get("stacks_user_walked", 0) > 0,
          "all modes: slow-call stacks were not walked with the tables")


require_bpf()
test_syscall()
test_lock()
test_all_modes()
print("ok")
