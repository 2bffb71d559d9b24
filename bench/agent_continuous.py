#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Agent cost in continuous mode against one-shot and no profiler (not a test).

1. Throughput: a fixed amount of CPU-bound work on every CPU (ap_chain -n CALLS per CPU, as
   bench/cpu_overhead.py), in interleaved triples: unprofiled baseline, one-shot whole-system
   `--mode cpu` at 99 Hz (`--output /dev/null`), and continuous `--mode cpu` at 99 Hz pushing to
   a local aperture-aggregator every --push-interval (short by default, so pushes happen while
   the workload runs). Reported: slowdown ratio against the baseline of the same triple
   (median, min, max), the agent's CPU per second while the workload runs, its peak RSS.
2. Memory over time, --rss-minutes each, beside a busy ap_chain, VmRSS every 5 s and VmHWM:
   one-shot `--mode cpu` (the reference); continuous, pushing every 10 s to the local
   aggregator; continuous with the aggregator down (pushes fail and go to the spool directory
   on disk; its size every 5 s). The agent records `--pid` of the workload, as the one-shot RSS
   figures of docs/unwinding.md (--rss-system: the whole system). Target: VmHWM <= 24 MiB (+
   the spool's memory, small: it lives on disk).

Usage: bench/agent_continuous.py [--reps 5] [--calls 400] [--push-interval 2s]
                                 [--rss-minutes 3] [--rss-system] [--build DIR]
                                 [--skip-throughput] [--skip-rss]
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aggregator_bench import Aggregator, cpu_seconds, free_port  # noqa: E402


def run_workload(binary, calls, ncpu):
    t0 = time.monotonic()
    procs = [subprocess.Popen([binary, "-n", str(calls)], stdout=subprocess.DEVNULL)
             for _ in range(ncpu)]
    for p in procs:
        p.wait()
    return time.monotonic() - t0


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def start_agent(agent, args):
    ag = subprocess.Popen([agent, "--mode", "cpu", "--sample-rate", "99", *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # load and attach before the clock starts
    return ag


def stop_agent(ag, ok_codes=(0,)):
    hwm = status_kib(ag.pid, "VmHWM")
    ag.send_signal(signal.SIGTERM)
    try:
        ag.wait(timeout=60)
    except subprocess.TimeoutExpired:
        ag.kill()
        ag.wait()
        sys.exit("agent did not stop within 60 s of SIGTERM")
    if ag.returncode not in ok_codes:
        sys.exit(f"agent exited {ag.returncode}: {ag.stderr.read().decode()[-2000:]}")
    return hwm / 1024.0


def profiled(agent, args, binary, calls, ncpu):
    ag = start_agent(agent, args)
    # first contact with the binary (unwind tables, DWARF) is paid once per agent lifetime,
    # as in bench/cpu_overhead.py: warm up before the clock starts
    run_workload(binary, max(1, calls // 20), 1)
    time.sleep(1.2)
    if ag.poll() is not None:
        sys.exit(f"agent failed: {ag.stderr.read().decode()[-2000:]}")
    c0 = cpu_seconds(ag.pid)
    wall = run_workload(binary, calls, ncpu)
    steady = (cpu_seconds(ag.pid) - c0) / wall
    return wall, steady, stop_agent(ag)


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def watch(agent, args, seconds, chain, scope_pid, spool=None):
    """Run an agent for `seconds` beside a CPU workload (--pid of it with scope_pid, else the
    whole system); sample its memory every 5 s. Returns (samples, VmHWM MiB, CPU s)."""
    work = subprocess.Popen([chain, str(int(seconds) + 60)], stdout=subprocess.PIPE, text=True)
    pid = work.stdout.readline().strip()
    ag = start_agent(agent, [*args, *(["--pid", pid] if scope_pid else [])])
    samples = []
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            time.sleep(5)
            if ag.poll() is not None:
                sys.exit(f"agent exited {ag.returncode}: {ag.stderr.read().decode()[-2000:]}")
            samples.append((time.monotonic() - t0, status_kib(ag.pid, "VmRSS") / 1024.0,
                            dir_bytes(spool) if spool else 0))
        cpu = cpu_seconds(ag.pid)
        hwm = stop_agent(ag, ok_codes=(0, 1) if spool else (0,))
    finally:
        work.kill()
        work.wait()
        if ag.poll() is None:
            ag.kill()
            ag.wait()
    return samples, hwm, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--push-interval", default="2s")
    ap.add_argument("--rss-minutes", type=float, default=3)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--rss-system", action="store_true",
                    help="memory runs profile the whole system (default: --pid of the workload, "
                         "as the one-shot RSS figures in docs/unwinding.md)")
    a, _ = ap.parse_known_args()  # bench/run.sh passes every benchmark the same flags
    a.build = os.path.abspath(a.build)
    agent = os.path.join(a.build, "bin", "aperture-agent")
    chain = os.path.join(a.build, "tests", "bin", "ap_chain")
    ncpu = os.cpu_count()
    if os.geteuid() != 0:
        sys.exit("run as root (the agent loads BPF programs)")
    tmp = tempfile.mkdtemp(prefix="aperture-contbench-")
    agg = Aggregator(a.build, tmp)
    try:
        if not a.skip_throughput:
            print(f"workload: {ncpu} x ap_chain -n {a.calls}; {a.reps} interleaved triples; "
                  f"99 Hz whole system; continuous pushes every {a.push_interval} to {agg.url}")
            run_workload(chain, a.calls, ncpu)  # warm-up
            res = {"one-shot": [], "continuous": []}
            base = []
            for i in range(a.reps):
                b = run_workload(chain, a.calls, ncpu)
                base.append(b)
                res["one-shot"].append(profiled(agent, ["--output", "/dev/null", "--format",
                                                        "folded"], chain, a.calls, ncpu) + (b,))
                res["continuous"].append(profiled(
                    agent, ["--server", agg.url, "--push-interval", a.push_interval,
                            "--spool-dir", os.path.join(tmp, f"spool-t{i}"),
                            "--label", "bench=continuous"], chain, a.calls, ncpu) + (b,))
            print(f"  baseline wall          median {statistics.median(base):.3f} s")
            for name, rs in res.items():
                ratios = [w / b for w, _, _, b in rs]
                print(f"  {name:10s} ratio      median {statistics.median(ratios):.4f}  "
                      f"min {min(ratios):.4f}  max {max(ratios):.4f}")
                print(f"  {name:10s} agent CPU  median "
                      f"{100 * statistics.median(c for _, c, _, _ in rs):.3f}% of one CPU")
                print(f"  {name:10s} peak RSS   max {max(r for _, _, r, _ in rs):.1f} MiB")
            noise = [abs(b / statistics.median(base) - 1) for b in base]
            print(f"  baseline noise         median |run/median - 1| "
                  f"{100 * statistics.median(noise):.2f}%")
        if not a.skip_rss:
            secs = a.rss_minutes * 60
            scope = "the whole system" if a.rss_system else "--pid of the workload"
            down = f"http://127.0.0.1:{free_port()}"  # nothing listens: every push fails
            runs = [("one-shot", ["--output", "/dev/null", "--format", "folded"], None),
                    ("continuous, aggregator up", ["--server", agg.url, "--push-interval",
                                                   "10s", "--label", "bench=rss"], "spool-up"),
                    (f"continuous, aggregator down ({down})",
                     ["--server", down, "--push-interval", "10s"], "spool-down")]
            print(f"\nmemory: {secs:.0f} s each, 99 Hz, {scope}, beside a busy ap_chain")
            for name, args, spool in runs:
                if spool:
                    spool = os.path.join(tmp, spool)
                    args = [*args, "--spool-dir", spool]
                samples, hwm, cpu = watch(agent, args, secs, chain, not a.rss_system, spool)
                print(f"  {name}:")
                print(f"    VmRSS every 5 s (MiB): {' '.join(f'{r:.1f}' for _, r, _ in samples)}")
                if spool:
                    print(f"    spool on disk every 5 s (KiB): "
                          f"{' '.join(f'{s / 1024:.0f}' for _, _, s in samples)}; after "
                          f"SIGTERM {dir_bytes(spool) / 1024:.0f} KiB")
                print(f"    VmHWM {hwm:.1f} MiB (target <= 24 MiB"
                      f"{' + the spool' if spool else ''}: {'met' if hwm <= 24 else 'NOT met'}); "
                      f"agent CPU {cpu:.1f} s")
    finally:
        agg.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
