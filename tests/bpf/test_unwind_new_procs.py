# SPDX-License-Identifier: MIT
"""A process that starts while a whole-system (no --pid) lock or syscall recording runs gets
its full user call chains from its very first events, as CPU samples do: its first lock wait
or slow call announces it to the agent (which loads its unwind tables at once), and the
events taken before the tables are in are sent to the agent as register + stack snapshots
and unwound there with the same tables (docs/unwinding.md).

Without that, a -fomit-frame-pointer program's events before the first drain (~1 s) were
walked by frame pointers only and lost their callers (about a third of a 3 s run).

- lock: nofp_lock's mutex waits (nl_thread -> nl_outer -> nl_middle -> nl_take), down to
  clone3, in >= 99% of its waits on nl_mutex; aggregated in the kernel and --per-event.
- syscall --slow-stacks: nofp_sleep's 2 ms nanosleeps (main -> ns_outer -> ns_middle ->
  ns_sleep), down to _start, in >= 99% of its slow calls; both ways too.

The workloads run from copies under a unique name, so their comm tells them apart from any
other process the whole-system recording sees."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from aptest import (BIN_DIR, TEST_BIN_DIR, check, fail, has_rooted_chain as has_chain,
                    lock_chain_counts, read_folded, require_bpf, start_workload, wait_all)

SLEEP = ["main", "ns_outer", "ns_middle", "ns_sleep"]
LOCK = ["nl_thread", "nl_outer", "nl_middle", "nl_take"]
MIN_OK = 0.99
RECORD_S = 3


def record(args, out, workload, wargs, tmp):
    """Start the agent whole-system, then (once it records) a fresh copy of `workload`;
    stop the agent after RECORD_S seconds of the workload. Returns (pid, comm)."""
    comm = f"apn{os.getpid() % 100000}{workload[5]}"  # nofp_[l|s]...: under 15 characters
    exe = os.path.join(tmp, comm)
    shutil.copy2(os.path.join(TEST_BIN_DIR, workload), exe)
    log_path = os.path.join(tmp, "agent.log")
    with open(log_path, "w") as log:
        ag = subprocess.Popen([os.path.join(BIN_DIR, "aperture-agent"), *args, "-o", out, "-v"],
                              stdout=subprocess.DEVNULL, stderr=log)
    proc = None
    try:
        deadline = time.time() + 60
        while time.time() < deadline and ag.poll() is None:
            with open(log_path) as f:
                if "recording" in f.read():
                    break
            time.sleep(0.05)
        else:
            with open(log_path) as f:
                fail(f"agent did not start recording: {f.read()}")
        proc, pid = start_workload(exe, RECORD_S + 30, *wargs)
        time.sleep(RECORD_S)
        ag.send_signal(signal.SIGINT)
        ag.wait(timeout=120)
    finally:
        if ag.poll() is None:
            ag.kill()
            ag.wait()
        if proc:
            proc.kill()
            wait_all([proc])
    with open(log_path) as f:
        log_text = f.read()
    check(ag.returncode == 0, f"agent exited {ag.returncode}: {log_text}")
    return pid, comm


def summary(stats):
    return (f"walker: {stats.get('stacks_user_walked', 0)} walked,"
            f" {stats.get('stacks_fp_only_no_tables', 0)} before tables;"
            f" deferred {stats.get('stacks_deferred', 0)}"
            f" (unwound {stats.get('stacks_deferred_unwound', 0)},"
            f" complete {stats.get('stacks_deferred_complete', 0)},"
            f" dropped {stats.get('stacks_deferred_dropped', 0)},"
            f" lost {stats.get('stacks_deferred_lost', 0)});"
            f" proc_events_dropped {stats.get('proc_events_dropped', 0)}")


def lock_case(extra):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "l.json")
        pid, _ = record(["--mode", "lock", "--format", "json", *extra], out, "nofp_lock",
                        [4], tmp)
        with open(out) as f:
            d = json.load(f)
    ok, total = lock_chain_counts(d, "nl_mutex", LOCK, pid=pid)
    label = "lock" + (" " + " ".join(extra) if extra else "")
    print(f"{label}: {ok}/{total} waits on nl_mutex of the new process carry the full chain"
          f" ({100.0 * ok / max(total, 1):.2f}%); {summary(d['stats'])}")
    check(total >= 100, f"{label}: too few waits on nl_mutex ({total})")
    check(ok >= MIN_OK * total, f"{label}: full chain in only {ok}/{total} waits")


def syscall_case(extra):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "s.folded")
        _, comm = record(["--mode", "syscall", "--min-latency", "1ms", "--slow-stacks",
                          "--format", "folded", *extra], out, "nofp_sleep", [], tmp)
        stacks = read_folded(out)
    total = ok = 0
    for frames, weight in stacks:
        # comm;syscall:NAME;user frames root first (weight: latency ns)
        if frames[0] != comm or len(frames) < 2 or \
                not frames[1].startswith("syscall:clock_nanosleep"):
            continue
        total += weight
        if has_chain(frames[2:], SLEEP):
            ok += weight
        else:
            print(f"   not matched ({weight} ns): {';'.join(frames)}")
    label = "syscall" + (" " + " ".join(extra) if extra else "")
    print(f"{label}: {100.0 * ok / max(total, 1):.2f}% of the new process's slow nanosleep"
          f" time carries the full chain ({total / 1e9:.2f} s)")
    check(total > 0.5e9, f"{label}: too little slow nanosleep time recorded ({total} ns)")
    check(ok >= MIN_OK * total, f"{label}: full chain in only {ok}/{total} ns of slow calls")


require_bpf()
for t in ("nofp_lock", "nofp_sleep"):
    if not os.path.exists(os.path.join(TEST_BIN_DIR, t)):
        fail(f"{t} not built")
lock_case([])
lock_case(["--per-event"])
syscall_case([])
syscall_case(["--per-event"])
print("PASS")
