#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""GPU mode probe cost benchmark (not a test): ns per CUDA call for each probe group.

Four copies of ap_gpu_prog (tests/gpu/) each time one API of a probe group in a tight loop
(`--loop KIND N`): launch (`<<<>>>`: __cudaLaunchKernel -> cudaLaunchKernel), memory
(cudaMalloc + cudaFree), copy (cudaMemcpy H2D), sync (cudaStreamSynchronize). They run
under each agent configuration, interleaved in one session, each repetition paired with
a baseline run without agent just before it (this VM's baseline drifts), reported as the
median ratio over the repetitions:

  none          no agent
  all           aperture-agent --mode gpu --pid ... (every group)
  launch|memory|copy|sync
                --gpu-probes GROUP: the loop's own group alone (its cost), or another
                group (the loop's calls are not probed: what an unchosen group costs)

Without a GPU every call fails fast (no driver), so the baseline is the cudart call's own
error path (tens to hundreds of ns) and the figures are the probes' cost per call. On a GPU
host the same script gives the ratios against real calls.

Usage: bench/gpu_probe_cost.py [--reps N] [--calls N] [--build DIR] [--json FILE]
"""
import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time

KINDS = {"launch": "launch", "malloc": "memory", "memcpy": "copy", "sync": "sync"}
CONFIGS = ["all", "launch", "memory", "copy", "sync"]


class Prog:
    def __init__(self, path, kind, calls):
        env = dict(os.environ, AP_GPU_WAIT="ctor")
        self.p = subprocess.Popen([path, "0", "--loop", kind, str(calls)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env)
        self.pid = int(self.p.stdout.readline())

    def run(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()
        out, _ = self.p.communicate(timeout=300)
        line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
        r = json.loads(line[7:])
        return r["loop_ns"] / r["loop_calls"]


def start_agent(agent, pids, groups):
    cmd = [agent, "--mode", "gpu", "-v", "-d", "600s", "-o", "/dev/null", "--format", "json"]
    for p in pids:
        cmd += ["--pid", str(p)]
    if groups != "all":
        cmd += ["--gpu-probes", groups]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stderr], [], [], 0.2)
        if r:
            line = proc.stderr.readline()
            seen.append(line)
            if "Ctrl-C to stop" in line:
                return proc
            if not line:
                break
        elif proc.poll() is not None:
            break
    proc.kill()
    sys.exit(f"{' '.join(cmd)} did not start:\n{''.join(seen)}")


def one_round(prog, agent, calls, config):
    """{kind: ns per call} with the agent in `config` (None: no agent)."""
    progs = {k: Prog(prog, k, calls) for k in KINDS}
    a = start_agent(agent, [p.pid for p in progs.values()], config) if config else None
    try:
        return {k: p.run() for k, p in progs.items()}
    finally:
        if a:
            a.send_signal(signal.SIGINT)
            a.communicate(timeout=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--agent", help="aperture-agent (default: BUILD/bin/aperture-agent)")
    ap.add_argument("--prog", help="ap_gpu_prog build (default: BUILD/tests/bin/ap_gpu_static)")
    ap.add_argument("--json", help="also write the raw figures here")
    a = ap.parse_args()
    agent = a.agent or os.path.join(a.build, "bin", "aperture-agent")
    prog = a.prog or os.path.join(a.build, "tests", "bin", "ap_gpu_static")
    for f in (agent, prog):
        if not os.access(f, os.X_OK):
            sys.exit(f"{f} is not built (make build; tests/gpu needs the CUDA toolkit)")
    if os.geteuid() != 0:
        sys.exit("needs root (the agent loads BPF programs)")

    base = {k: [] for k in KINDS}
    ratio = {(k, c): [] for k in KINDS for c in CONFIGS}
    ns = {(k, c): [] for k in KINDS for c in CONFIGS}
    for rep in range(a.reps):
        for c in CONFIGS:
            b = one_round(prog, agent, a.calls, None)
            t = one_round(prog, agent, a.calls, c)
            for k in KINDS:
                base[k].append(b[k])
                ns[(k, c)].append(t[k])
                ratio[(k, c)].append(t[k] / b[k])
            print(f"rep {rep + 1}/{a.reps} {c:7}: " +
                  ", ".join(f"{k} {b[k]:.0f} -> {t[k]:.0f} ns" for k in KINDS), flush=True)

    med = statistics.median
    print(f"\nns per call (median of {a.reps} paired runs, {a.calls} loop rounds each; "
          "ratio = with agent / without, same repetition)\n")
    print("| call (group) | no agent | all groups | its group only | other groups only |")
    print("|---|---|---|---|---|")
    rows = {}
    for k, g in KINDS.items():
        others = [c for c in CONFIGS if c not in ("all", g)]
        oth_r = [r for c in others for r in ratio[(k, c)]]
        oth_n = [n for c in others for n in ns[(k, c)]]
        rows[k] = {"group": g, "none_ns": med(base[k]),
                   "all_ns": med(ns[(k, "all")]), "all_ratio": med(ratio[(k, "all")]),
                   "own_ns": med(ns[(k, g)]), "own_ratio": med(ratio[(k, g)]),
                   "other_ns": med(oth_n), "other_ratio": med(oth_r)}
        r = rows[k]
        print(f"| {k} ({g}) | {r['none_ns']:.0f} | {r['all_ns']:.0f} ({r['all_ratio']:.1f}x) "
              f"| {r['own_ns']:.0f} ({r['own_ratio']:.1f}x) "
              f"| {r['other_ns']:.0f} ({r['other_ratio']:.2f}x) |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"calls": a.calls, "reps": a.reps, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
