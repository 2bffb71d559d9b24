# SPDX-License-Identifier: MIT
"""WebAssembly filters through the real agent with real BPF events (docs/filters.md).

- The documented example, verbatim, from build/bin: `./aperture-agent --mode syscall
  --duration 3s --filter process_filter.wasm --output filtered.txt`.
- process_filter pid=N: only that process survives (syscall mode, exact counts; cpu mode;
  lock mode).
- stack_filter function=chain_inner: only stacks through chain_inner survive.
- sampling_filter n=10: one event in ten survives, and the profile holds exactly those.
- A filter that keeps everything gives what in-kernel aggregation gives: syscall and lock
  counts exactly, cpu stack shares within 5 points (two agents record the same events).
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

from aptest import BIN_DIR, TEST_BIN_DIR, check, has_chain, read_folded, require_bpf
from filter_agent_lib import (RUNNING, Agent, Syscalls, check_exact, filter_stats, sdk_filter,
                              syscall_entries)

require_bpf()
PROCESS, STACK, SAMPLING = (sdk_filter(n) for n in ("process_filter", "stack_filter",
                                                     "sampling_filter"))


def seed_example(tmp):
    """The design's example as written, from a directory holding the agent and the filter:
    build/bin itself, or a copy of it when a filtered.txt is already there."""
    cwd = BIN_DIR
    if os.path.exists(os.path.join(cwd, "filtered.txt")):
        cwd = os.path.join(tmp, "bin")
        os.mkdir(cwd)
        for f in ("aperture-agent", "process_filter.wasm"):
            shutil.copy2(os.path.join(BIN_DIR, f), cwd)
    cmd = ["./aperture-agent", "--mode", "syscall", "--duration", "3s", "--filter",
           "process_filter.wasm", "--output", "filtered.txt"]
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    RUNNING.append(proc)
    return proc, os.path.join(cwd, "filtered.txt")


def syscall_round(tmp):
    w = Syscalls(1000, 37, 3)   # the one a filter selects
    x = Syscalls(500, 5)        # a bystander
    p = lambda name: os.path.join(tmp, name)  # noqa: E731
    agents = [
        # whole system, the filter picks the process
        Agent("-m", "syscall", "--filter", PROCESS, "--filter-config", f"pid={w.pid}",
              "-o", p("pid.json")),
        # keep-all (process_filter without configuration keeps all but the agent) vs the
        # in-kernel aggregation, slow-call stacks included
        Agent("-m", "syscall", "--filter", PROCESS, "--min-latency", "1ms", "--slow-stacks",
              "-o", p("keep.json")),
        Agent("-m", "syscall", "-p", w.pid, "-p", x.pid, "--min-latency", "1ms",
              "--slow-stacks", "-o", p("kernel.json")),
        Agent("-m", "syscall", "-p", w.pid, "--filter", PROCESS, "--min-latency", "1ms",
              "--slow-stacks", "-o", p("keep.folded")),
        Agent("-m", "syscall", "-p", w.pid, "--min-latency", "1ms", "--slow-stacks",
              "-o", p("kernel.folded")),
    ]
    try:
        for a in agents:
            a.wait_recording()
        # the example prints nothing until it ends: give it time to start recording
        seed, seed_out = seed_example(tmp)
        time.sleep(1.5)
        w.round()
        x.round()
        for a in agents:
            a.finish(stop=True)
        out, err = seed.communicate(timeout=60)
    finally:
        w.close()
        x.close()
    check(seed.returncode == 0, f"the documented example exited {seed.returncode}: {err}")
    folded = read_folded(seed_out)
    os.unlink(seed_out)
    check(folded, "the documented example wrote an empty profile")
    check(any(f[:2] == ["ap_syscalls", "syscall:getppid"] for f, _ in folded),
          f"the documented example missed the workload's calls: {folded[:5]}")
    check("events seen:" in err and "kept:" in err, f"no filter counters on stderr: {err}")

    ents, st = syscall_entries(p("pid.json"))
    check({pid for pid, _ in ents} == {w.pid}, f"pid filter: other processes survived: "
          f"{sorted({pid for pid, _ in ents})}")
    check_exact(ents, w, "pid filter")
    fs = filter_stats(st)
    check(fs["filter_events_seen"] == fs["filter_kept"] + fs["filter_dropped"] and
          fs["filter_dropped"] > 0 and fs["filter_traps"] == 0, f"pid filter counters: {fs}")
    print(f"syscall pid filter: {fs['filter_kept']} of {fs['filter_events_seen']} calls kept")

    keep, kst = syscall_entries(p("keep.json"))
    kern, _ = syscall_entries(p("kernel.json"))
    check(agents[1].proc.pid not in {pid for pid, _ in keep}, "the agent recorded itself")
    check(kst["filter_events_seen"] == kst["filter_kept"] > 0, f"keep-all: {filter_stats(kst)}")
    for wl in (w, x):
        check_exact(keep, wl, "keep-all filter")
        check_exact(kern, wl, "in kernel")
        for (pid, name), e in kern.items():
            if pid != wl.pid or name not in ("getppid", "openat", "nanosleep"):
                continue
            k = keep[(pid, name)]
            for field in ("count", "errors", "noreturn", "slow", "comm"):
                check(k[field] == e[field], f"keep-all vs kernel: {name} {field} "
                      f"{k[field]} != {e[field]}")
            print(f"{name:10s} pid {pid}: {k['count']} calls, {k['slow']} slow "
                  f"(kernel {e['count']}, {e['slow']})")
    for f in ("keep.folded", "kernel.folded"):
        stacks = [fr for fr, _ in read_folded(p(f)) if "slow_call_site" in fr]
        check(stacks and stacks[0][1] == "syscall:nanosleep",
              f"{f}: no slow nanosleep stack: {read_folded(p(f))}")
        calls = sum(c for fr, c in read_folded(p(f)) if "slow_call_site" in fr)
        check(calls >= 3 * 2000000, f"{f}: slow stacks weigh {calls} ns")


def cpu_round(tmp):
    p = lambda name: os.path.join(tmp, name)  # noqa: E731
    chain = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_chain"), "8"],
                             stdout=subprocess.PIPE, text=True)
    spin = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_spin"), "8"],
                            stdout=subprocess.PIPE, text=True)
    RUNNING.extend([chain, spin])
    cpid, spid = int(chain.stdout.readline()), int(spin.stdout.readline())
    common = ["-m", "cpu", "-d", "2s", "-s", "199"]
    agents = {
        "pid": Agent(*common, "--filter", PROCESS, "--filter-config", f"pid={cpid}",
                     "-o", p("pid.json")),
        "stack": Agent(*common, "-p", cpid, "-p", spid, "--filter", STACK, "--filter-config",
                       "function=chain_inner", "-o", p("stack.folded")),
        "sampling": Agent(*common, "-p", cpid, "-p", spid, "--filter", SAMPLING,
                          "--filter-config", "n=10", "-o", p("sampling.json")),
        "keep": Agent(*common, "-p", cpid, "--filter", PROCESS, "-o", p("keep.json")),
        "kernel": Agent(*common, "-p", cpid, "-o", p("kernel.json")),
    }
    try:
        for a in agents.values():
            a.finish()
    finally:
        for w in (chain, spin):
            w.kill()
            w.wait()

    j = json.load(open(p("pid.json")))
    pids = {s["pid"] for s in j["samples"]}
    check(pids == {cpid}, f"cpu pid filter: pids {pids}, wanted only {cpid}")
    st = j["stats"]
    check(st["samples"] == st["filter_kept"] > 20, f"cpu pid filter: {filter_stats(st)}")
    check(st["filter_events_seen"] > st["filter_kept"], f"cpu pid filter dropped nothing")
    print(f"cpu pid filter: {st['filter_kept']} of {st['filter_events_seen']} samples kept")

    folded = read_folded(p("stack.folded"))
    check(folded, "stack filter: empty profile")
    for frames, _ in folded:
        check("chain_inner" in frames, f"stack filter: a stack without chain_inner: {frames}")
    check(any(has_chain(f, ["chain_outer", "chain_middle", "chain_inner"]) for f, _ in folded),
          "stack filter: the chain is not intact")
    check(not any(f[0] == "ap_spin" for f, _ in folded), "stack filter: ap_spin survived")

    j = json.load(open(p("sampling.json")))
    st = j["stats"]
    ratio = st["filter_kept"] / max(1, st["filter_events_seen"])
    total = sum(s["values"][0] for s in j["samples"])
    print(f"sampling n=10: {st['filter_kept']} of {st['filter_events_seen']} ({ratio:.3f}), "
          f"profile total {total}")
    check(st["filter_events_seen"] >= 100, f"sampling: too few events {filter_stats(st)}")
    check(abs(ratio - 0.1) <= 0.02, f"sampling: kept ratio {ratio:.3f}, wanted 0.1 +- 0.02")
    check(total == st["filter_kept"] == st["samples"],
          f"sampling: profile total {total} != filter_kept {st['filter_kept']}")

    # user frames only: the two agents run side by side, and one agent's ring-buffer wakeups
    # (irq_work) show up as kernel frames in the other's samples
    shares = {}
    for mode in ("keep", "kernel"):
        j = json.load(open(p(f"{mode}.json")))
        names = [f["name"] for f in j["frames"]]
        by_stack = {}
        for s in j["samples"]:
            key = ";".join(names[f] for f in reversed(j["stacks"][s["stack"]])
                           if j["frames"][f]["kind"] == "user")
            by_stack[key] = by_stack.get(key, 0) + s["values"][0]
        total = sum(by_stack.values())
        st = j["stats"]
        check(total >= 40, f"{mode}: too few samples {total}")
        # each run accounts for every sample its BPF program took (they start at different
        # moments, so their totals differ a little)
        check(total == st["samples"] == st["bpf_samples"] and
              st.get("filter_kept", total) == total,
              f"{mode}: {st['bpf_samples']} samples taken, {total} in the profile")
        shares[mode] = {k: v / total for k, v in by_stack.items()}
    for k in {k for m in shares.values() for k, v in m.items() if v >= 0.05}:
        a, b = shares["kernel"].get(k, 0), shares["keep"].get(k, 0)
        print(f"cpu kernel {a:6.1%} keep-all {b:6.1%} {k[-70:]}")
        check(abs(a - b) <= 0.05, f"cpu stack share: kernel {a:.1%} vs keep-all {b:.1%}: {k}")


def lock_round(tmp):
    p = lambda name: os.path.join(tmp, name)  # noqa: E731
    wl = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_locks"), "1", "--wait"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    RUNNING.append(wl)
    pid = int(wl.stdout.readline())
    agents = {
        "pid": Agent("-m", "lock", "--filter", PROCESS, "--filter-config", f"pid={pid}",
                     "-o", p("lpid.json")),
        "keep": Agent("-m", "lock", "-p", pid, "--filter", PROCESS, "-o", p("lkeep.json")),
        "kernel": Agent("-m", "lock", "-p", pid, "-o", p("lkernel.json")),
    }
    for a in agents.values():
        a.wait_recording()
    wl.stdin.write("go\n")
    wl.stdin.close()
    wl.stdout.read()
    wl.wait()
    for a in agents.values():
        a.finish(stop=True)

    rep = json.load(open(p("lpid.json")))
    waiters = {w["pid"] for g in ("locks", "condvars", "other_waits") for lk in rep[g]
               for w in lk["waiters"]}
    check(waiters == {pid}, f"lock pid filter: waiters of {waiters}, wanted only {pid}")
    check(rep["stats"]["filter_kept"] > 100, f"lock pid filter: {filter_stats(rep['stats'])}")

    keep, kern = (json.load(open(p(f))) for f in ("lkeep.json", "lkernel.json"))
    for g in ("locks", "condvars"):
        a = {lk["addr"]: lk for lk in kern[g]}
        b = {lk["addr"]: lk for lk in keep[g]}
        check(a and set(a) == set(b), f"lock {g}: kernel {sorted(a)} vs keep-all {sorted(b)}")
        for addr, lk in a.items():
            check(sum(b[addr]["hist"]) == b[addr]["contentions"], f"lock {addr}: hist")
            for field in ("kind", "contentions", "results"):
                check(lk[field] == b[addr][field], f"lock {addr} {field}: kernel {lk[field]} "
                      f"vs keep-all {b[addr][field]}")
            # each agent reads the owner field itself when the wait starts: a holder on another
            # CPU may release between the two reads, so counts may differ by a few
            ha = {h["tid"] or 0: h["count"] for h in lk["holders"]}
            hb = {h["tid"] or 0: h["count"] for h in b[addr]["holders"]}
            n = max(1, lk["contentions"])
            for tid in set(ha) | set(hb):
                ca, cb = ha.get(tid, 0), hb.get(tid, 0)
                check(abs(ca - cb) <= 0.05 * n + 2,
                      f"lock {addr}: holder {tid}: kernel {ca} vs keep-all {cb} of {n}")
            print(f"lock {lk['kind']:9s} {lk['name']}: {lk['contentions']} waits both ways")


with tempfile.TemporaryDirectory() as tmp:
    syscall_round(tmp)
    cpu_round(tmp)
    lock_round(tmp)
print("PASS")
