#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""CPU profiler overhead benchmark (not a test).

Runs a fixed amount of CPU-bound work on every CPU, alternating unprofiled and profiled runs
(whole-system `aperture-agent --mode cpu`) in one session, and reports per rate:
  - slowdown ratio profiled/baseline wall time (median, min, max over the pairs),
  - the agent's own CPU time (user+sys) while the workload runs, per second (after a warm-up
    run of the workload: first-contact costs such as compiling unwind tables and inflating
    libc's DWARF are paid once per agent lifetime), and for the whole run including start-up
    and warm-up; its peak RSS.

Usage: bench/cpu_overhead.py [--reps N] [--calls N] [--rates 99,999] [--agent-args "FLAGS"]
                             [--build DIR]
"""
import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import time


def run_workload(binary, calls, ncpu):
    """Run `ncpu` copies of the fixed workload at once; return wall seconds."""
    t0 = time.monotonic()
    procs = [subprocess.Popen([binary, "-n", str(calls)], stdout=subprocess.DEVNULL)
             for _ in range(ncpu)]
    for p in procs:
        p.wait()
    return time.monotonic() - t0


def cpu_seconds(pid):
    """utime + stime of a process, in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profiled(agent, binary, calls, ncpu, rate, extra):
    ag = subprocess.Popen([agent, "--mode", "cpu", "--sample-rate", str(rate),
                           "--output", "/dev/null", "--format", "folded", *extra],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let it load and attach before the clock starts
    # First contact with a binary costs once per agent lifetime (unwind tables compiled,
    # libc's DWARF inflated): a continuous profiler pays it once, not per workload. Warm the
    # agent with one short run of the workload, and let a drain pass, before the clock starts.
    run_workload(binary, max(1, calls // 20), 1)
    time.sleep(1.2)
    if ag.poll() is not None:
        sys.exit(f"agent failed: {ag.stderr.read().decode()}")
    c0 = cpu_seconds(ag.pid)
    wall = run_workload(binary, calls, ncpu)
    steady = (cpu_seconds(ag.pid) - c0) / wall  # startup (BPF load, kallsyms) excluded
    ag.send_signal(signal.SIGINT)
    _, status, ru = os.wait4(ag.pid, 0)
    ag.returncode = os.waitstatus_to_exitcode(status)
    if ag.returncode != 0:
        sys.exit(f"agent exited {ag.returncode}: {ag.stderr.read().decode()}")
    return wall, steady, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--rates", default="99,999")
    ap.add_argument("--agent-args", default="", help="extra agent flags, e.g. --no-dwarf")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    a = ap.parse_args()
    agent = os.path.join(a.build, "bin", "aperture-agent")
    binary = os.path.join(a.build, "tests", "bin", "ap_chain")
    ncpu = os.cpu_count()
    if os.geteuid() != 0:
        sys.exit("run as root (the agent loads BPF programs)")
    print(f"workload: {ncpu} x ap_chain -n {a.calls}; {a.reps} interleaved pairs per rate")
    run_workload(binary, a.calls, ncpu)  # warm-up
    for rate in map(int, a.rates.split(",")):
        ratios, cpu, total, rss, base = [], [], [], [], []
        for _ in range(a.reps):
            b = run_workload(binary, a.calls, ncpu)
            w, c, t, r = profiled(agent, binary, a.calls, ncpu, rate, a.agent_args.split())
            base.append(b)
            ratios.append(w / b)
            cpu.append(c)
            total.append(t)
            rss.append(r)
        print(f"\n{rate} Hz, whole system:")
        print(f"  baseline wall        median {statistics.median(base):.3f} s")
        print(f"  slowdown ratio       median {statistics.median(ratios):.4f}  "
              f"min {min(ratios):.4f}  max {max(ratios):.4f}")
        print(f"  agent CPU, steady    median {100 * statistics.median(cpu):.3f}% of one CPU "
              f"(clock ticks: 10 ms resolution)")
        print(f"  agent CPU, whole run median {statistics.median(total):.3f} s "
              f"(includes BPF load and kallsyms)")
        print(f"  agent peak RSS       max {max(rss):.1f} MiB")


if __name__ == "__main__":
    main()
