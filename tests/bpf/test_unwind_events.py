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
  and down to clone3, in >= 90% of the waits on it."""
import json
import os
import tempfile

from aptest import agent, check, read_folded, require_bpf, start_workload, wait_all

ROOTS = {"_start", "__clone3", "clone3", "__clone", "clone"}
SLEEP = ["main", "ns_outer", "ns_middle", "ns_sleep"]
LOCK = ["nl_thread", "nl_outer", "nl_middle", "nl_take"]


def has_chain(user, chain):
    """user: user frames root first, the root an outermost frame; the chain appears in order
    (other frames, e.g. glibc's, may sit between)."""
    if not user or user[0] not in ROOTS:
        return False
    i = 0
    for name in user:
        if i < len(chain) and name == chain[i]:
            i += 1
    return i == len(chain)


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
    total = ok = 0
    for lock in d["locks"]:
        if lock["kernel"] or lock.get("name") != "nl_mutex":
            continue
        for st in lock["stacks"]:
            user = [f for f in reversed(st["frames"]) if not f.endswith("_[k]")]
            total += st["count"]
            if has_chain(user, LOCK):
                ok += st["count"]
            else:
                print(f"   not matched x{st['count']}: {';'.join(user)}")
    stats = d["stats"]
    print(f"lock: {ok}/{total} waits on nl_mutex carry the full chain"
          f" ({100.0 * ok / max(total, 1):.1f}%); walker: {stats.get('stacks_complete', 0)}/"
          f"{stats.get('stacks_user_walked', 0)} complete,"
          f" {stats.get('stacks_fp_only_no_tables', 0)} before tables")
    check(total >= 100, f"lock: too few waits on nl_mutex ({total})")
    check(ok >= 0.90 * total, f"lock: full chain in only {ok}/{total} waits")
    check(stats.get("stacks_user_walked", 0) > 0, "lock: the CFI walker was not used")


require_bpf()
test_syscall()
test_lock()
print("ok")
