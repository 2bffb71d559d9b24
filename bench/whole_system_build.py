#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Whole-system profiling while a build runs (benchmark, not a test).

A build is the hard case for an unwinder that works from per-file tables: hundreds of new
processes a minute, most living well under a second (the compiler driver, cc1, as, ld, make's
shells, cmake -E), each mapping big libraries (clang's libLLVM and libclang-cpp: 10 MB of
unwind tables each) and most gone before anyone looks at /proc.

This builds Aperture itself with clang in a scratch directory (`make -j<cpus>`), and records
the whole machine with `aperture-agent --mode cpu` for --seconds, twice: with an empty cache
directory (cold: every table compiled) and again with the same one (warm: tables read from
the cache). Per run it reports
  - walker complete: user stacks the BPF walker took down to the outermost frame, directly or
    later from a deferred snapshot, out of all user stacks;
  - rooted: samples whose symbolized user stack starts at _start or clone (what a flamegraph
    shows as whole), out of all samples with a user stack;
  - where the rest went: walked with frame pointers because the process had no tables yet,
    deferred, replayed before its tables were ready, processes gone before their mappings
    were read (unwinder, symbolizer);
  - the agent's CPU time and its latest process event (ms from BPF to the agent's thread).

Usage: bench/whole_system_build.py [--seconds 8] [--build DIR]
"""
import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOTS = {"_start", "__clone3", "clone3", "__clone", "clone"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def summarize(path):
    with open(path) as f:
        d = json.load(f)
    st, frames = d["stats"], d["frames"]
    walked = st.get("stacks_user_walked", 0)
    # walked whole in the kernel, or later by the agent from a deferred snapshot
    whole = (st.get("stacks_complete", 0) + st.get("stacks_complete_with_fp_frames", 0) +
             st.get("stacks_deferred_complete", 0))
    total = rooted = 0
    for s in d["samples"]:
        user = [frames[i]["name"] for i in reversed(d["stacks"][s["stack"]])
                if frames[i]["kind"] == "user"]
        if not user:
            continue
        total += s["values"][0]
        rooted += s["values"][0] if user[0] in ROOTS else 0
    return walked, whole, total, rooted, st


def run(agent, build, cache, seconds, out):
    subprocess.run(["make", "-C", build, "clean"], capture_output=True)
    make = subprocess.Popen(["make", "-C", build, f"-j{os.cpu_count()}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        time.sleep(2)  # the build is under way: the agent meets it running
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = subprocess.run([agent, "--mode", "cpu", "--duration", f"{seconds}s",
                              "--format", "json", "-o", out],
                             env=dict(os.environ, APERTURE_CACHE_DIR=cache),
                             capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait()
    if res.returncode:
        sys.exit(f"agent failed: {res.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    args = ap.parse_args()
    agent = os.path.join(args.build, "bin", "aperture-agent")
    if os.geteuid() != 0:
        sys.exit("needs root (BPF)")
    if not shutil.which("clang"):
        sys.exit("needs clang")
    with tempfile.TemporaryDirectory() as tmp:
        build = os.path.join(tmp, "build")
        subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_C_COMPILER=clang"],
                       check=True, capture_output=True)
        cache = os.path.join(tmp, "cache")
        print(f"whole system, cpu mode, {args.seconds} s while `make -j{os.cpu_count()}` "
              "builds Aperture with clang")
        print(f"{'cache':6} {'walker complete':>17} {'rooted':>16} {'fp, no tables':>13} "
              f"{'deferred':>8} {'replayed early':>14} {'procs missed':>12} "
              f"{'sym missed':>10} {'event ms':>8} {'agent CPU':>9}")
        for tag in ("cold", "warm"):
            out = os.path.join(tmp, f"{tag}.json")
            cpu = run(agent, build, cache, args.seconds, out)
            walked, whole, total, rooted, st = summarize(out)
            print(f"{tag:6} {whole:>6}/{walked:<5} {100 * whole / max(walked, 1):4.1f}% "
                  f"{rooted:>5}/{total:<5} {100 * rooted / max(total, 1):4.1f}% "
                  f"{st.get('stacks_fp_only_no_tables', 0):>13} "
                  f"{st.get('stacks_deferred', 0):>8} {st.get('stacks_deferred_early', 0):>14} "
                  f"{st.get('unwind_processes_missed', 0):>12} "
                  f"{st.get('processes_missed', 0):>10} "
                  f"{st.get('proc_events_latest_ms', 0):>8} {cpu:>8.2f}s")


if __name__ == "__main__":
    main()
