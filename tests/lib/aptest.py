# SPDX-License-Identifier: MIT
"""Helpers for Aperture's privileged and end-to-end tests (run by CTest).

A test that lacks a capability calls skip(reason): it prints 'SKIP: reason' and exits 77,
which CTest reports as skipped, never as passed.
"""
import os
import select
import subprocess
import sys
import time

SKIP = 77
BIN_DIR = os.environ.get("AP_BIN_DIR", "")
TEST_BIN_DIR = os.environ.get("AP_TEST_BIN_DIR", "")


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def fail(reason):
    print(f"FAIL: {reason}")
    sys.exit(1)


def check(cond, reason):
    if not cond:
        fail(reason)


def require_bpf():
    """Skip unless this process can load BPF programs with BTF."""
    if os.geteuid() != 0:
        skip("needs root to load BPF programs")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        skip("kernel has no BTF (/sys/kernel/btf/vmlinux)")


# Set by CTest in a sanitizer build (tests/CMakeLists.txt): "address" or "thread", else "".
SANITIZER = os.environ.get("AP_SANITIZER", "")
SAN_EXIT = 23  # the exit code the sanitizer options give a report
_SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error: ",
                "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer")


def check_sanitizer(res, cmd):
    """Fail on a sanitizer report, even from a run that was expected to exit non-zero."""
    err = res.stderr if isinstance(res.stderr, str) else ""
    if res.returncode == SAN_EXIT or any(m in err for m in _SAN_MARKERS):
        fail(f"sanitizer report from {' '.join(map(str, cmd))} (exit {res.returncode}):\n{err}")


def agent(*args, timeout=60, check_rc=True, env=None):
    """Run aperture-agent; returns the CompletedProcess."""
    cmd = [os.path.join(BIN_DIR, "aperture-agent"), *map(str, args)]
    if SANITIZER:
        timeout *= 3  # instrumented code runs 2-3x slower
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    check_sanitizer(res, cmd)
    if check_rc and res.returncode != 0:
        fail(f"{' '.join(cmd)} exited {res.returncode}\nstdout:{res.stdout}\nstderr:{res.stderr}")
    return res


def cli(*args, timeout=60):
    cmd = [os.path.join(BIN_DIR, "aperture"), *map(str, args)]
    if SANITIZER:
        timeout *= 3
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    check_sanitizer(res, cmd)
    return res


def start_workload(name, *args):
    """Start a test workload that prints its pid first; returns (Popen, pid)."""
    path = name if os.path.isabs(name) else os.path.join(TEST_BIN_DIR, name)
    proc = subprocess.Popen([path, *map(str, args)], stdout=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    return proc, pid


def read_folded(path):
    """Parse folded stacks: list of (frames root-first incl. comm, count)."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            out.append((stack.split(";"), int(count)))
    return out


def has_chain(frames, chain):
    """True if `chain` appears as consecutive frames (root first) in `frames`."""
    n = len(chain)
    return any(frames[i:i + n] == chain for i in range(len(frames) - n + 1))


# outermost frames of a complete user stack: the program's entry, or a thread's start
STACK_ROOTS = frozenset({"_start", "__clone3", "clone3", "__clone", "clone"})


def _same(name, want):
    return name == want


def has_rooted_chain(user, chain, roots=STACK_ROOTS, at_leaf=False, match=_same):
    """True if `user` (user frames, root first) starts at an outermost frame and holds `chain`
    in order, other frames (glibc's, inlined ones) allowed between; with at_leaf, the chain's
    last frame must also be the leaf. match(name, want) compares one frame."""
    if not user or user[0] not in roots:
        return False
    if at_leaf and not match(user[-1], chain[-1]):
        return False
    i = 0
    for name in user:
        if i < len(chain) and match(name, chain[i]):
            i += 1
    return i == len(chain)


def lock_chain_counts(report, lock_name, chain, pid=None, show=True):
    """(waits whose user stack holds `chain`, all waits) on the user lock named lock_name in a
    lock-mode JSON report (of process pid, when given); show prints the stacks that miss."""
    total = ok = 0
    for lock in report["locks"]:
        if lock["kernel"] or lock.get("name") != lock_name:
            continue
        if pid is not None and lock.get("pid") != pid:
            continue
        for st in lock["stacks"]:
            user = [f for f in reversed(st["frames"]) if not f.endswith("_[k]")]
            total += st["count"]
            if has_rooted_chain(user, chain):
                ok += st["count"]
            elif show:
                print(f"   not matched x{st['count']}: {';'.join(user)}")
    return ok, total


def wait_all(procs, timeout=30):
    deadline = time.time() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def read_until(proc, needle, timeout, stream=None):
    """Read proc's stderr (or stream) line by line until a line containing needle, the end of
    the stream, proc's exit or timeout seconds; returns (found, the lines read)."""
    stream = stream or proc.stderr
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        if select.select([stream], [], [], 0.2)[0]:
            line = stream.readline()
            seen += line
            if needle in line:
                return True, seen
            if not line:
                break
        elif proc.poll() is not None:
            break
    return False, seen


def start_recording(*args, timeout=60):
    """Start aperture-agent -v with args and return (Popen, stderr so far) once it records
    (its "recording" line): a signal sent earlier would hit its setup, not the recording."""
    cmd = [os.path.join(BIN_DIR, "aperture-agent"), "-v", *map(str, args)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            fail(f"{' '.join(cmd)} ended before recording: {''.join(seen)}")
        seen.append(line)
        if "Ctrl-C to stop" in line:
            return proc, "".join(seen)
    proc.kill()
    fail(f"{' '.join(cmd)} did not start recording in {timeout} s: {''.join(seen)}")
