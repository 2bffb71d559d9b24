# SPDX-License-Identifier: MIT
"""Helpers for Aperture's privileged and end-to-end tests (run by CTest).

A test that lacks a capability calls skip(reason): it prints 'SKIP: reason' and exits 77,
which CTest reports as skipped, never as passed.
"""
import os
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


def agent(*args, timeout=60, check_rc=True):
    """Run aperture-agent; returns the CompletedProcess."""
    cmd = [os.path.join(BIN_DIR, "aperture-agent"), *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check_rc and res.returncode != 0:
        fail(f"{' '.join(cmd)} exited {res.returncode}\nstdout:{res.stdout}\nstderr:{res.stderr}")
    return res


def cli(*args, timeout=60):
    cmd = [os.path.join(BIN_DIR, "aperture"), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


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


def wait_all(procs, timeout=30):
    deadline = time.time() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
