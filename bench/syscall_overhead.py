#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Syscall tracer overhead benchmark (not a test).

Times a tight loop of a cheap syscall (`ap_syscalls --loop N`: N getppid() calls, mean ns per
call) under several tracers, interleaved in one session. Each traced run is paired with an
unprofiled run just before it, and reported as the ratio of the two (median, min, max over the
repetitions), since the baseline of this kind of VM drifts by 2x within minutes:

  baseline        nothing attached
  floor           two empty tp_btf programs on sys_enter/sys_exit (ap_bench_floor): what
                  any sys_enter/sys_exit tracer pays before doing any work
  taskstorage     the minimal latency tracer of the research notes (ap_bench_floor
                  taskstorage): start time in task storage, latency summed into one counter
  aperture        aperture-agent --mode syscall, whole system (exact counts + histograms)
  aperture-raw_tp the same, forced onto the raw_tp fallback (AP_SYSCALL_ATTACH=raw_tp)
  filtered-out    aperture-agent --mode syscall --pid <another process>: the loop's cost
                  when its process is filtered out in the kernel

Usage: bench/syscall_overhead.py [--reps N] [--calls N] [--build DIR] [--only a,b]
"""
import argparse
import os
import select
import signal
import statistics
import subprocess
import sys
import time


def loop_ns(binary, calls):
    out = subprocess.run([binary, "--loop", str(calls)], capture_output=True, text=True,
                         check=True).stdout
    return float(out.strip())


def wait_for(stream, needle, proc, timeout=30.0):
    """Read lines from `stream` until one contains `needle`; fail if `proc` dies first."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        r, _, _ = select.select([stream], [], [], 0.2)
        if r:
            line = stream.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if needle in line:
                return
        elif proc.poll() is not None:
            break
    proc.kill()
    sys.exit(f"tracer did not get ready ({needle!r}):\n{''.join(seen)}")


class Tracer:
    """A tracer process started before a measurement and stopped after it."""

    def __init__(self, name, start):
        self.name = name
        self._start = start
        self.proc = None

    def __enter__(self):
        self.proc = self._start()
        return self

    def __exit__(self, *exc):
        if self.proc is None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def make_tracers(agent, floor):
    def agent_start(extra, env=None):
        def start():
            p = subprocess.Popen([agent, "--mode", "syscall", "-v", "--format", "json",
                                  "-o", "/dev/null", *extra], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, **(env or {})})
            wait_for(p.stderr, "recording", p)
            return p
        return start

    def floor_start(which):
        def start():
            p = subprocess.Popen([floor, which], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            wait_for(p.stdout, "ready", p)
            return p
        return start

    return {
        "baseline": None,
        "floor": floor_start("floor"),
        "taskstorage": floor_start("taskstorage"),
        "aperture": agent_start([]),
        "aperture-raw_tp": agent_start([], {"AP_SYSCALL_ATTACH": "raw_tp"}),
        "filtered-out": agent_start(["--pid", "1"]),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--calls", type=int, default=2000000)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--only", default="", help="comma-separated subset of the tracers")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (the tracers load BPF programs)")
    agent = os.path.join(a.build, "bin", "aperture-agent")
    binary = os.path.join(a.build, "tests", "bin", "ap_syscalls")
    floor = os.path.join(a.build, "tests", "bin", "ap_bench_floor")
    tracers = make_tracers(agent, floor)
    names = [n for n in tracers if n != "baseline"]
    if a.only:
        names = [n for n in names if n in a.only.split(",")]

    print(f"workload: ap_syscalls --loop {a.calls} (getppid), {a.reps} repetitions; each "
          f"traced run is paired with an unprofiled run just before it, tracers interleaved")
    loop_ns(binary, a.calls // 4)  # warm-up
    base, ns = [], {n: [] for n in names}
    ratios = {n: [] for n in names}
    for rep in range(a.reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for n in order:
            b = loop_ns(binary, a.calls)
            base.append(b)
            with Tracer(n, tracers[n]):
                v = loop_ns(binary, a.calls)
            ns[n].append(v)
            ratios[n].append(v / b)
    report(names, base, ns, ratios)


def report(names, base, ns, ratios):
    mb = statistics.median(base)
    print(f"\n{'tracer':<16} {'ns/call':>9} {'added ns':>9} {'ratio':>7} {'min':>7} {'max':>7}")
    print(f"{'baseline':<16} {mb:9.1f} {'':>9} {1.0:7.2f}")
    for n in names:
        med = statistics.median(ns[n])
        print(f"{n:<16} {med:9.1f} {med - mb:9.1f} {statistics.median(ratios[n]):7.2f} "
              f"{min(ratios[n]):7.2f} {max(ratios[n]):7.2f}")
    if "floor" in ratios and "aperture" in ratios:
        med = {n: statistics.median(r) for n, r in ratios.items()}
        line = f"\naperture {med['aperture']:.2f}x beside the floor {med['floor']:.2f}x (two " \
               f"empty programs on the same tracepoints)"
        if "taskstorage" in med:
            line += f" and the minimal task-storage tracer {med['taskstorage']:.2f}x"
        print(line + "; ratios are medians of per-pair ratios")

if __name__ == "__main__":
    main()
