# SPDX-License-Identifier: MIT
"""The real agent pushing to the real aperture-aggregator over loopback HTTP: a workload's
samples are stored with the push's labels, and the stored totals equal the agent's own count
(cpu: its exit summary; syscall: ap_syscalls' exact getppid count). Then the aggregator is
killed with SIGKILL in the middle of the run and started again on the same store and port:
the agent spools meanwhile, and once its spool has drained the stored totals equal its count
exactly: nothing acknowledged was lost, no retried push was stored twice."""
import os
import secrets
import subprocess
import tempfile
import time

from aggregator import Aggregator
from aptest import TEST_BIN_DIR, check, require_bpf, start_workload, wait_all
from push_lib import RUNNING, counters, start_agent, stop_agent, summary

require_bpf()
ENV = dict(os.environ, AP_TEST_PUSH_BACKOFF_MIN_MS="200", AP_TEST_PUSH_BACKOFF_MAX_MS="1000")
GETPPID = 2000  # per round


def stored_total(agg, query, t0, t1, value):
    folded = agg.folded(query, value=value, **{"from": str(t0), "until": str(t1)})
    return sum(folded.values()), folded


with tempfile.TemporaryDirectory() as tmp, Aggregator() as agg:
    run = secrets.token_hex(4)  # this run's label: nothing else matches it
    spin, spin_pid = start_workload("ap_chain", 120)
    sysw = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_syscalls"), "-n", str(GETPPID),
                             "-w"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    RUNNING.extend([spin, sysw])
    sys_pid = int(sysw.stdout.readline())
    rounds = 0

    def round_():
        global rounds
        sysw.stdin.write("go\n")
        sysw.stdin.flush()
        check(sysw.stdout.readline().startswith("done"), "ap_syscalls round failed")
        rounds += 1

    t0 = time.time_ns() - 10**9
    agent = start_agent("-m", "cpu,syscall", "--server", agg.url, "--push-interval", "1s",
                        "--label", f"run={run}", "--spool-dir", os.path.join(tmp, "spool"),
                        "-p", spin_pid, "-p", sys_pid, env=ENV)
    for _ in range(3):
        round_()
        time.sleep(0.8)
    # kill -9 in the middle of the run; calls made while it is down, then it comes back
    agg.kill()
    for _ in range(3):
        round_()
        time.sleep(0.8)
    agg.start()
    for _ in range(2):
        round_()
        time.sleep(0.8)
    time.sleep(3)  # the spool drains (retries at most 1 s apart)
    err = stop_agent(agent, timeout=60)
    t1 = time.time_ns() + 10**9
    sysw.stdin.close()
    spin.kill()
    wait_all([spin, sysw])
    print(err[-1500:])

    c = counters(err)
    check(c["spooled"] >= 1 and c["spool_files"] == 0 and c["dropped"] == 0,
          f"the outage should have been spooled and drained: {c}")
    intervals, pushed, recorded = summary(err, "cpu")
    check(pushed["samples"] == recorded, f"agent pushed {pushed} but recorded {recorded}")
    total, folded = stored_total(agg, f'{{mode="cpu",run="{run}"}}', t0, t1, "samples")
    check(total == recorded,
          f"the aggregator stores {total} cpu samples of run {run}, the agent recorded "
          f"{recorded}")
    check(any("chain_inner" in s for s in folded), f"ap_chain's frames not stored: {folded}")
    _, sys_pushed, sys_recorded = summary(err, "syscall")
    pushed_calls = sys_pushed["calls"]
    total, _ = stored_total(agg, f'{{mode="syscall",run="{run}"}}', t0, t1, "calls")
    check(total == sys_recorded == pushed_calls,
          f"the aggregator stores {total} calls, the agent recorded {sys_recorded}")
    got, folded = stored_total(agg, f'{{mode="syscall",run="{run}",pid="{sys_pid}",'
                               f'syscall="getppid"}}', t0, t1, "calls")
    check(got == GETPPID * rounds,
          f"stored getppid calls: {got}, made: {GETPPID * rounds} ({folded})")
    for name in ("host", "run", "comm", "pid"):
        vals = agg.query("/api/v1/label-values", name=name, query=f'{{run="{run}"}}',
                         **{"from": str(t0), "until": str(t1)}).json()["values"]
        check(vals, f"label {name} has no values")
    print(f"cpu {recorded} samples and {GETPPID * rounds} getppid stored exactly across a "
          f"SIGKILL of the aggregator")
print("PASS")
