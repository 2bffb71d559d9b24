#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Unwinding benchmark (not a test): Aperture's in-kernel CFI unwinding against
`perf record --call-graph dwarf` on the same workload built without frame pointers.

The workload is tests/workloads/nofp_chain (-O2 -fomit-frame-pointer; a shared library, a
dlopen()ed one and frameless leaves), one copy per CPU doing a fixed amount of work. Each rep
runs, in rotating order: unprofiled, under Aperture (--pid, in-kernel aggregation), under perf
(-p, 8 KiB stack copies per sample, unwound afterwards by `perf script`), and under perf with
frame pointers (`--call-graph fp`, what bpftrace and BCC's profile do: the "before").
Reported per rate:
  - completeness: samples whose known call chain is there in full, down to _start
  - slowdown: workload wall time / unprofiled wall time (median of the reps)
  - profiler CPU: Aperture agent utime+stime while the workload ran; perf record's, plus the
    `perf script` run that does the unwinding (perf has no stacks without it)
  - memory: peak RSS; Aperture's BPF map memory (the agent's maps plus the unwind tables);
    perf.data size
  - Aperture's cost in the kernel: the whole sampling program per sample
    (kernel.bpf_stats_enabled) and the stack walk alone per stack (its own counter)

Usage: bench/unwind_vs_perf.py [--reps N] [--calls N] [--rates 99,999] [--build DIR]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

LIB = ["main", "nf_outer", "nflib_middle", "nf_inner", "nf_leaf"]
DL = ["main", "nf_dl_caller", "nfdl_work", "nfdl_leaf"]


def full_chain(user_root_first):
    """The stack starts at _start and holds LIB or DL in order, ending at its leaf."""
    u = [f for f in user_root_first if f]
    if not u or u[0] != "_start":
        return False
    for chain in (LIB, DL):
        if u[-1] != chain[-1]:
            continue
        i = 0
        for name in u:
            if i < len(chain) and name == chain[i]:
                i += 1
        if i == len(chain):
            return True
    return False


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bpf_memlock(pid):
    """Kernel memory of the BPF maps a process holds (its fds' fdinfo), in bytes."""
    total = 0
    fddir = f"/proc/{pid}/fd"
    for fd in os.listdir(fddir):
        try:
            if "bpf-map" not in os.readlink(f"{fddir}/{fd}"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("memlock:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Workload:
    """`copies` processes of nofp_chain -n CALLS both, started and loaded, waiting for a go on
    stdin (so both profilers attach to the running image: exec is another test's subject)."""

    def __init__(self, binary, calls, copies):
        self.procs = [subprocess.Popen([binary, "-w", "-n", str(calls), "both"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                      for _ in range(copies)]
        self.pids = [int(p.stdout.readline()) for p in self.procs]

    def run(self):
        t0 = time.monotonic()
        for p in self.procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in self.procs:
            p.wait()
        return time.monotonic() - t0


def baseline(binary, calls, copies):
    return Workload(binary, calls, copies).run()


def bpf_prog_stats(pid):
    """(run_time_ns, run_cnt) of the busiest BPF program a process holds (the sampler)."""
    best = (0, 0)
    fddir = f"/proc/{pid}/fd"
    for fd in os.listdir(fddir):
        try:
            if "bpf-prog" not in os.readlink(f"{fddir}/{fd}"):
                continue
            info = {}
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    info[k.strip()] = v.strip()
            cur = (int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
            if cur[1] > best[1]:
                best = cur
        except (OSError, ValueError):
            pass
    return best


def aperture(agent, binary, calls, copies, rate, tmp):
    w = Workload(binary, calls, copies)
    out = os.path.join(tmp, "ap.json")
    args = [agent, "--mode", "cpu", "--sample-rate", str(rate), "--output", out,
            "--format", "json", "-v"]
    for pid in w.pids:
        args += ["--pid", str(pid)]
    ag = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    for line in ag.stderr:
        if "recording" in line:
            break
    else:
        sys.exit(f"agent failed to start (exit {ag.wait()})")
    r0 = bpf_prog_stats(ag.pid)
    c0 = cpu_seconds(ag.pid)
    wall = w.run()
    cpu = cpu_seconds(ag.pid) - c0
    r1 = bpf_prog_stats(ag.pid)
    maps = bpf_memlock(ag.pid)  # the file tables are inner maps the agent holds no fd of
    ag.send_signal(signal.SIGINT)
    _, status, ru = os.wait4(ag.pid, 0)
    ag.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("agent failed")
    with open(out) as f:
        d = json.load(f)
    frames, total, ok = d["frames"], 0, 0
    for s in d["samples"]:
        if s["pid"] not in w.pids:
            continue
        st = [frames[i] for i in d["stacks"][s["stack"]]]
        user = [f["name"] for f in reversed(st) if f["kind"] == "user"]
        total += s["values"][0]
        ok += s["values"][0] if full_chain(user) else 0
    runs = r1[1] - r0[1]
    ns = (r1[0] - r0[0]) / runs if runs > 0 else 0
    st = d["stats"]
    maps += st.get("unwind_table_bytes_peak", 0)
    walk = st.get("unwind_walk_ns", 0) / max(st.get("stacks_user_walked", 0), 1)
    return dict(wall=wall, cpu=cpu, post=0.0, rss=ru.ru_maxrss / 1024.0, kmem=maps / 2**20,
                data=0.0, total=total, ok=ok, bpf_ns=ns, walk_ns=walk)


def perf(binary, calls, copies, rate, tmp, mode="dwarf"):
    w = Workload(binary, calls, copies)
    data = os.path.join(tmp, "perf.data")
    pr = subprocess.Popen(["perf", "record", "-F", str(rate), "--call-graph", mode,
                           "-o", data, "-p", ",".join(map(str, w.pids))],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # perf says nothing when it is attached
    c0 = cpu_seconds(pr.pid)
    wall = w.run()
    cpu = cpu_seconds(pr.pid) - c0
    pr.send_signal(signal.SIGINT)
    _, _, ru = os.wait4(pr.pid, 0)
    pr.stderr.read()
    # the unwinding happens here
    t = time.monotonic()
    ps = subprocess.Popen(["perf", "script", "-i", data, "-F", "comm,pid,ip,sym"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    text = ps.stdout.read()
    _, _, ru2 = os.wait4(ps.pid, 0)
    post = ru2.ru_utime + ru2.ru_stime
    total = ok = 0
    for block in text.split("\n\n"):
        lines = [l for l in block.split("\n") if l.strip()]
        if not lines:
            continue
        head = lines[0].split()
        if len(head) < 2 or not head[-1].isdigit() or int(head[-1]) not in w.pids:
            continue
        syms = [l.split(None, 1)[1] if len(l.split(None, 1)) > 1 else "" for l in lines[1:]]
        total += 1
        ok += full_chain(list(reversed(syms)))
    return dict(wall=wall, cpu=cpu, post=post, rss=max(ru.ru_maxrss, ru2.ru_maxrss) / 1024.0,
                kmem=0.0, data=os.path.getsize(data) / 2**20, total=total, ok=ok, bpf_ns=0,
                walk_ns=0)


def med(xs):
    return statistics.median(xs) if xs else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--calls", type=int, default=600)
    ap.add_argument("--rates", default="99,999")
    ap.add_argument("--copies", type=int, default=os.cpu_count())
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (the agent loads BPF programs; perf needs the events)")
    agent = os.path.join(a.build, "bin", "aperture-agent")
    binary = os.path.join(a.build, "tests", "bin", "nofp_chain")
    stats_path = "/proc/sys/kernel/bpf_stats_enabled"
    stats_old = None
    try:
        with open(stats_path) as f:
            stats_old = f.read().strip()
        with open(stats_path, "w") as f:
            f.write("1")
    except OSError:
        pass
    print(f"workload: {a.copies} x nofp_chain -n {a.calls} both (-O2 -fomit-frame-pointer); "
          f"{a.reps} interleaved reps per rate")
    baseline(binary, a.calls, a.copies)  # warm-up
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rate in map(int, a.rates.split(",")):
                who_all = ["base", "aperture", "perf dwarf", "perf fp"]
                res = {w: [] for w in who_all}
                for rep in range(a.reps):
                    order = who_all[rep % 4:] + who_all[:rep % 4]
                    for who in order:
                        if who == "base":
                            res[who].append(baseline(binary, a.calls, a.copies))
                        elif who == "aperture":
                            res[who].append(aperture(agent, binary, a.calls, a.copies, rate,
                                                     tmp))
                        else:
                            res[who].append(perf(binary, a.calls, a.copies, rate, tmp,
                                                 who.split()[1]))
                base = med(res["base"])
                for who in who_all[1:]:
                    rs = res[who]
                    tot = sum(r["total"] for r in rs)
                    ok = sum(r["ok"] for r in rs)
                    rows.append((rate, who, 100.0 * ok / max(tot, 1), tot // len(rs),
                                 med([r["wall"] / base for r in rs]),
                                 med([r["cpu"] for r in rs]), med([r["post"] for r in rs]),
                                 med([r["rss"] for r in rs]), med([r["kmem"] for r in rs]),
                                 med([r["data"] for r in rs]), med([r["bpf_ns"] for r in rs]),
                                 med([r["walk_ns"] for r in rs])))
                print(f"  {rate} Hz: unprofiled {base:.2f} s (median)", flush=True)
    finally:
        if stats_old is not None:
            with open(stats_path, "w") as f:
                f.write(stats_old)
    print()
    print("| rate | profiler | complete stacks | samples/run | slowdown | profiler CPU s "
          "(record) | + unwinding s | peak RSS MiB | BPF maps MiB | perf.data MiB | "
          "BPF ns/sample | walk ns/stack |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} Hz | {r[1]} | {r[2]:.1f}% | {r[3]} | {r[4]:.3f} | {r[5]:.3f} | "
              f"{r[6]:.3f} | {r[7]:.1f} | {r[8]:.1f} | {r[9]:.1f} | "
              f"{r[10]:.0f} | {r[11]:.0f} |")


if __name__ == "__main__":
    main()
