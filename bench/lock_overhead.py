#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Lock profiler overhead on the uncontended fast path (not a test).

An uncontended pthread_mutex_lock/unlock loop never enters the kernel, so whole-system
`aperture-agent --mode lock` (futex syscall tracepoints + kernel lock tracepoints) must not
slow it down. Runs `ap_locks --uncontended N` (one thread, N lock/unlock pairs; the loop times
itself) alternately without and with the agent, and reports:
  - ns per lock/unlock pair, baseline and profiled (medians),
  - the profiled/baseline ratio (median, min, max over the interleaved pairs) and the
    best-of-N ratio (least disturbed by other load on the machine),
  - the noise: the spread of the baseline runs around their median,
and whether the median ratio stays within that noise.

Usage: bench/lock_overhead.py [--reps N] [--iters N] [--build DIR]
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import time


def loop_ns(binary, iters):
    out = subprocess.run([binary, "--uncontended", str(iters)], capture_output=True,
                         text=True, check=True).stdout
    return int(out.split()[-1])


def profiled(agent, binary, iters):
    ag = subprocess.Popen([agent, "--mode", "lock", "--output", "/dev/null", "--format",
                           "json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let it load and attach before the loop starts
    if ag.poll() is not None:
        sys.exit(f"agent failed: {ag.stderr.read().decode()}")
    ns = loop_ns(binary, iters)
    ag.send_signal(signal.SIGINT)
    if ag.wait(timeout=60) != 0:
        sys.exit(f"agent exited {ag.returncode}: {ag.stderr.read().decode()}")
    return ns


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--iters", type=int, default=50_000_000)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    a, _ = ap.parse_known_args()  # bench/run.sh passes every benchmark the same flags
    agent = os.path.join(a.build, "bin", "aperture-agent")
    binary = os.path.join(a.build, "tests", "bin", "ap_locks")
    if os.geteuid() != 0:
        sys.exit("run as root (the agent loads BPF programs)")
    print(f"workload: ap_locks --uncontended {a.iters} (1 thread); {a.reps} interleaved pairs; "
          "agent: whole-system --mode lock")
    loop_ns(binary, a.iters)  # warm-up
    base, prof, ratios = [], [], []
    for _ in range(a.reps):
        b = loop_ns(binary, a.iters)
        p = profiled(agent, binary, a.iters)
        base.append(b)
        prof.append(p)
        ratios.append(p / b)
    mb = statistics.median(base)
    noise = max(abs(b / mb - 1) for b in base)
    med = statistics.median(ratios)
    print(f"  baseline             median {mb / a.iters:.2f} ns per lock+unlock")
    print(f"  with lock agent      median {statistics.median(prof) / a.iters:.2f} ns")
    print(f"  ratio                median {med:.4f}  min {min(ratios):.4f}  "
          f"max {max(ratios):.4f}")
    print(f"  best-of-{a.reps} ratio      {min(prof) / min(base):.4f}  "
          f"({min(base) / a.iters:.2f} -> {min(prof) / a.iters:.2f} ns)")
    print(f"  baseline noise       +/-{100 * noise:.2f}%")
    verdict = "within noise" if abs(med - 1) <= max(noise, 0.01) else "OUTSIDE noise"
    print(f"  verdict              {verdict}")


if __name__ == "__main__":
    main()
