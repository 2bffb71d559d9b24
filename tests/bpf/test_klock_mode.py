# SPDX-License-Identifier: MIT
"""Kernel lock contention (lock:contention_begin/end): a workload whose threads fight over
their process's mmap_lock and over the locks of thread creation and exit
(tests/workloads/ap_klock.c). The contentions are reported with kinds and flags, the
mmap_lock by name, and every kernel stack symbolized. Skips when the kernel has no lock
contention tracepoints."""
import json
import os
import select
import signal
import subprocess
import tempfile
import time

from aptest import BIN_DIR, TEST_BIN_DIR, check, fail, require_bpf, skip

# Kernel functions on the workload's paths to its contended locks (any one will do).
KNOWN = ("__x64_sys_munmap", "__x64_sys_mmap", "vm_mmap_pgoff", "__vm_munmap",
         "do_mprotect_pkey", "__x64_sys_mprotect", "do_madvise", "madvise_do_behavior",
         "copy_process", "do_exit", "exc_page_fault", "do_user_addr_fault", "do_vmi_munmap",
         "vm_munmap", "__x64_sys_clone3", "kernel_clone", "release_task")

require_bpf()
with open("/sys/kernel/btf/vmlinux", "rb") as f:
    if b"btf_trace_contention_begin" not in f.read():
        skip("kernel has no lock:contention_begin/end tracepoints (Linux 5.19+)")

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "k.json")
    wl = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_klock"), "3", "--wait"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid = int(wl.stdout.readline())
    ag = subprocess.Popen([os.path.join(BIN_DIR, "aperture-agent"), "--mode", "lock", "-v",
                           "--pid", str(pid), "--output", out],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, seen = time.time() + 30, ""
    while "recording" not in seen and time.time() < deadline and ag.poll() is None:
        if select.select([ag.stderr], [], [], 0.2)[0]:
            seen += ag.stderr.readline()
    if "recording" not in seen:
        fail(f"agent did not start:\n{seen}")
    wl.stdin.write("go\n")
    wl.stdin.close()
    acct = json.loads(wl.stdout.read())
    wl.wait()
    ag.send_signal(signal.SIGINT)
    _, err = ag.communicate(timeout=60)
    check(ag.returncode == 0, f"agent exited {ag.returncode}: {err}")
    rep = json.load(open(out))

    if rep.get("kernel_locks") != "on":
        skip(f"kernel locks not traced: {rep.get('kernel_locks')}")
    klocks = [l for l in rep["locks"] if l["kernel"]]
    total = sum(l["contentions"] for l in klocks)
    print(f"workload: {acct}; {len(klocks)} kernel locks, {total} contentions, "
          f"{sum(l['wait_ns_total'] for l in klocks) / 1e6:.1f} ms waited")
    for l in klocks[:8]:
        print(f"  {l['kind']:9s} {l['flags']:12s} {l['addr']} {l['name'] or '-':20s} in "
              f"{l['caller']}: {l['contentions']} waits, {l['wait_ns_total'] / 1e6:.2f} ms")
    if not klocks and (os.cpu_count() or 1) < 2:
        skip("no kernel lock contention provoked on a single CPU")
    check(klocks, "no kernel lock contention reported")
    check(rep["stats"]["kernel_lock_waits"] == total, "kernel totals disagree")

    for l in klocks:
        check(sum(l["hist"]) == l["contentions"], f"{l['addr']}: histogram total")
        check(l["kind"] in ("spinlock", "rwlock:k", "mutex:k", "rwsem", "percpu-rwsem",
                            "rtmutex", "semaphore", "kernel-lock"), f"kind {l['kind']}")
        check(l["holders"] == [] and not l["holder_known"], "kernel locks claim a holder")
    mmap = [l for l in klocks if l["name"] == "mmap_lock"]
    check(mmap, "the workload's mmap_lock contention is not reported by name")
    check(mmap[0]["kind"] == "rwsem" and ("READ" in mmap[0]["flags"] or
                                          "WRITE" in mmap[0]["flags"]),
          f"mmap_lock kind/flags: {mmap[0]['kind']} {mmap[0]['flags']}")

    # stacks: kernel frames, symbolized, on the workload's known paths
    frames = [f for l in klocks for s in l["stacks"] for f in s["frames"]]
    check(frames and all(f.endswith("_[k]") for f in frames), "kernel locks with user frames")
    unknown = sum(f.startswith("[unknown]") for f in frames)
    check(unknown <= 0.05 * len(frames), f"{unknown}/{len(frames)} kernel frames unresolved")
    check(any(f[:-4] in KNOWN for f in frames), "no known kernel path in the lock stacks")
    check(all(l["caller"] for l in klocks if any(s["frames"] for s in l["stacks"])),
          "a kernel lock without a caller")
    # each new thread is a new key: a slow drain can fill the waits map, which spills
    print(f"waits spilled past a full map: {rep['stats']['waits_spilled']}")
    for drop in ("waits_lost", "stacks_map_full", "kernel_stack_errors", "drain_errors"):
        check(rep["stats"][drop] == 0, f"{drop} = {rep['stats'][drop]}")
print("PASS")
