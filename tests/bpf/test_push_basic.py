# SPDX-License-Identifier: MIT
"""Continuous mode against a recording HTTP server: every interval each mode arrives as one
push with host/mode/--label labels, a Bearer token, per-sample pid and comm, the mode's tables
and the agent's counters; consecutive ranges abut, and the sum over all pushes equals what
the agent itself counted. Syscall mode's exact getppid count, made across interval
boundaries, arrives exactly: nothing is lost or counted twice between intervals."""
import json
import os
import re
import socket
import subprocess
import tempfile
import time

from aptest import TEST_BIN_DIR, check, require_bpf, start_workload, wait_all
from push_lib import (RUNNING, Server, check_abutting, counters, start_agent, stop_agent,
                      summary)

require_bpf()
GETPPID_PER_ROUND = 5000
ROUNDS = 6

with tempfile.TemporaryDirectory() as tmp:
    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("s3cr3t-t0ken\n")
    srv = Server().start()
    spin, spin_pid = start_workload("ap_chain", 60)
    locks, locks_pid = start_workload("ap_locks", 30)
    sysw = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_syscalls"), "-n",
                             str(GETPPID_PER_ROUND), "-w"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    RUNNING.extend([spin, locks, sysw])
    sys_pid = int(sysw.stdout.readline())

    agent = start_agent("-m", "cpu,lock,syscall", "--server", srv.url, "--push-interval", "1s",
                        "--label", "env=test", "--label", "team.name=perf",
                        "--token-file", token, "--spool-dir", os.path.join(tmp, "spool"),
                        "-p", spin_pid, "-p", locks_pid, "-p", sys_pid)
    # rounds of syscalls spread over several intervals
    for _ in range(ROUNDS):
        sysw.stdin.write("go\n")
        sysw.stdin.flush()
        check(sysw.stdout.readline().startswith("done"), "ap_syscalls round failed")
        time.sleep(0.7)
    err = stop_agent(agent)
    print(err[-2500:])
    sysw.stdin.close()
    for p in (spin, locks):
        p.kill()
    wait_all([spin, locks, sysw])
    srv.stop()

    check(agent.returncode == 0, f"agent exited {agent.returncode}")
    host = socket.gethostname()
    ids = set()
    for mode in ("cpu", "lock", "syscall"):
        pushes = srv.stored(mode)
        check(len(pushes) >= 3, f"{mode}: {len(pushes)} pushes for a ~5 s run at 1 s intervals")
        check_abutting(pushes, mode)
        intervals, pushed, recorded = summary(err, mode)
        check(intervals == len(pushes), f"{mode}: {intervals} intervals, {len(pushes)} stored")
        first_value = next(iter(pushed))
        total = sum(p.total(0) for p in pushes)
        check(total == pushed[first_value],
              f"{mode}: server has {total} {first_value}, agent pushed {pushed[first_value]}")
        check(total == recorded,
              f"{mode}: server has {total} {first_value}, agent recorded {recorded}")
        for p in pushes:
            check(re.fullmatch(r"[0-9a-f]{32}", p.push_id), f"push_id {p.push_id!r}")
            check(p.push_id not in ids, f"push_id {p.push_id} used twice")
            ids.add(p.push_id)
            want = {"host": host, "mode": mode, "env": "test", "team.name": "perf"}
            check(p.labels == want, f"{mode} push labels {p.labels}, want {want}")
            agent_part = json.loads(p.parts["agent"])
            check("pushes_ok" in agent_part and "spool_bytes" in agent_part,
                  f"agent part {agent_part}")
            if mode != "cpu":
                json.loads(p.parts["tables"])
        print(f"{mode}: {len(pushes)} pushes, {total} {first_value} (recorded {recorded})")

    # per sample: pid and comm
    cpu = [s for p in srv.stored("cpu") for s in p.samples]
    mine = [s for s in cpu if s["labels"].get("pid") == spin_pid]
    check(mine and all(s["labels"].get("comm") == "ap_chain" for s in mine),
          f"cpu samples of ap_chain lack pid/comm: {cpu[:3]}")
    lock_total = sum(p.total(0) for p in srv.stored("lock"))
    check(lock_total > 0, "no lock contention arrived from ap_locks")
    tables = [json.loads(p.parts["tables"]) for p in srv.stored("lock")]
    check(all(t.get("format") == "aperture-lock-report" for t in tables), "lock tables format")
    check(any(t["locks"] for t in tables), "no lock in any interval's lock table")

    # exact: every getppid of every round, once, whatever interval it fell in
    getppid = sum(s["values"][0] for p in srv.stored("syscall") for s in p.samples
                  if s["labels"].get("pid") == sys_pid and s["labels"].get("syscall") == "getppid")
    check(getppid == GETPPID_PER_ROUND * ROUNDS,
          f"getppid calls pushed: {getppid}, made: {GETPPID_PER_ROUND * ROUNDS}")
    sys_tables = [json.loads(p.parts["tables"]) for p in srv.stored("syscall")]
    check(any(sys_tables), "syscall tables empty")

    # the token went as a Bearer header and is in no output
    auths = {a[3] for a in srv.attempts}
    check(auths == {"Bearer s3cr3t-t0ken"}, f"Authorization headers seen: {auths}")
    check("s3cr3t" not in err, "the token appears in the agent's output")
    c = counters(err)
    check(c["ok"] == len(srv.pushes) and c["failed"] == 0 and c["spooled"] == 0,
          f"counters {c}, {len(srv.pushes)} stored")
print("PASS")
