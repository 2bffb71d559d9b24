# SPDX-License-Identifier: MIT
"""Programs built -O2 -fomit-frame-pointer (C, C++, Rust; stripped and not) calling through a
shared library, a dlopen()ed library, an inlined function, a realigned frame, a frameless
leaf, a signal handler and a second thread: their known physical call chains appear in full,
in order and down to the outermost frame (_start, or clone3 for the thread) in at least 99% of
their samples, and the agent's own completeness counters agree.

A chain matches a sample when its functions appear in order (inline frames the symbolizer
adds may sit between them), the last one is the leaf, and the first user frame is a root."""
import json
import os
import tempfile

from aptest import (STACK_ROOTS, TEST_BIN_DIR, agent, check, fail, has_rooted_chain, require_bpf,
                    start_workload, wait_all)

ROOTS = STACK_ROOTS
LIB = ["main", "nf_outer", "nflib_middle", "nf_inner", "nf_leaf"]
DL = ["main", "nf_dl_caller", "nfdl_work", "nfdl_leaf"]
SIG = ["main", "nf_on_signal", "nf_sig_work", "nf_leaf"]
# C++ names as the symbolizer gives them, demangled or (stripped, .dynsym) possibly not:
# a tuple matches a frame holding all of its parts
CPP_TAIL = ["cpp_outer", ("Worker", "run"), ("templ",), ("_M_invoke",), "cpp_leaf"]
CPP_MAIN = ["main"] + CPP_TAIL
CPP_THREAD = ["cpp_thread_main"] + CPP_TAIL
RUST = ["main", "rs_outer", "rs_middle", "rs_leaf"]
MIN_OK = 0.99


def frame_is(name, want):
    if isinstance(want, tuple):
        return all(part in name for part in want)
    return name == want


def has_chain(user, chain):
    """user: user frames root first. The chain is an ordered subsequence ending at the leaf."""
    return has_rooted_chain(user, chain, roots=ROOTS, at_leaf=True, match=frame_is)


def profile(pid, seconds, rate=199):
    """Profile one process; returns (samples: [(user frames root first, count)], stats)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "p.json")
        agent("--mode", "cpu", "--pid", pid, "--duration", f"{seconds}s", "--sample-rate",
              rate, "--output", out, "--format", "json", timeout=120)
        with open(out) as f:
            d = json.load(f)
    frames = d["frames"]
    samples = []
    for s in d["samples"]:
        st = [frames[i] for i in d["stacks"][s["stack"]]]
        user = [f["name"] for f in reversed(st) if f["kind"] == "user"]
        samples.append((user, s["values"][0]))
    return samples, d["stats"]


def check_chains(label, samples, stats, chains, min_each=None):
    total = sum(c for _, c in samples)
    ok = sum(c for u, c in samples if any(has_chain(u, ch) for ch in chains))
    per = {i: sum(c for u, c in samples if has_chain(u, ch)) for i, ch in enumerate(chains)}
    walked = stats.get("stacks_user_walked", 0)
    # completed in the kernel, or by the agent from a snapshot (samples before tables)
    complete = stats.get("stacks_complete", 0) + stats.get("stacks_deferred_complete", 0)
    print(f"{label}: {ok}/{total} samples carry a full chain ({100.0 * ok / max(total, 1):.1f}%);"
          f" per chain {list(per.values())}; agent: {complete}/{walked} complete,"
          f" {stats.get('stacks_unwind_failed_unknown_pc', 0)} unknown pc,"
          f" {stats.get('stacks_fp_only_no_tables', 0)} before tables")
    bad = [(u, c) for u, c in samples if not any(has_chain(u, ch) for ch in chains)]
    for u, c in sorted(bad, key=lambda x: -x[1])[:5]:
        print(f"   not matched x{c}: {';'.join(u)}")
    check(total >= 100, f"{label}: too few samples ({total})")
    check(ok >= MIN_OK * total, f"{label}: full chains in only {ok}/{total} samples")
    check(walked > 0 and complete >= MIN_OK * walked,
          f"{label}: agent reports {complete}/{walked} complete stacks")
    for i, n in (min_each or {}).items():
        check(per[i] >= n, f"{label}: chain {chains[i]} in only {per[i]} samples")


def run_case(label, path, args, chains, seconds=3, min_each=None):
    if not os.path.exists(path):
        print(f"{label}: {path} not built, skipped")
        return None
    proc, pid = start_workload(path, seconds + 6, *args)
    try:
        samples, stats = profile(pid, seconds)
    finally:
        proc.kill()
        wait_all([proc])
    check_chains(label, samples, stats, chains, min_each)
    return stats


require_bpf()
B = TEST_BIN_DIR
S = os.path.join(B, "nofp_stripped")
run_case("C lib+dlopen", os.path.join(B, "nofp_chain"), ["both"], [LIB, DL],
         min_each={0: 20, 1: 20})
run_case("C stripped", os.path.join(S, "nofp_chain"), ["both"], [LIB, DL],
         min_each={0: 20, 1: 20})
run_case("C signal handler", os.path.join(B, "nofp_chain"), ["sig"], [LIB, SIG],
         min_each={1: 5})
run_case("C++", os.path.join(B, "nofp_cpp"), [], [CPP_MAIN, CPP_THREAD],
         min_each={0: 20, 1: 20})
run_case("C++ stripped", os.path.join(S, "nofp_cpp"), [], [CPP_MAIN, CPP_THREAD],
         min_each={0: 20, 1: 20})
run_case("Rust", os.path.join(B, "nofp_rust"), [], [RUST])

# A library dlopen()ed while profiled: the walker meets pcs outside every known mapping,
# asks for a re-scan, and the library's frames are unwound from then on.
proc, pid = start_workload(os.path.join(B, "nofp_chain"), 6, "late")
try:
    samples, stats = profile(pid, 5)
finally:
    proc.kill()
    wait_all([proc])
dl = sum(c for u, c in samples if has_chain(u, DL))
check(stats.get("unwind_rescans", 0) >= 1, "no re-scan after dlopen")
check(dl >= 50, f"only {dl} samples in the dlopen()ed library")
check_chains("C dlopen during the run", samples, stats, [LIB, DL])
print("PASS")
