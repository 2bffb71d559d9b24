# SPDX-License-Identifier: MIT
"""Unwinding where the agent cannot simply open the binary by its path:
 - a process in its own mount and PID namespace, running from a tmpfs only that namespace
   sees, whose files are deleted after it started: full chains in >= 99% of its samples
   (tables and symbols come through /proc/PID/map_files);
 - short-lived processes (0.1-0.2 s each) seen by a whole-system recording: their tables are
   loaded at exec, and samples taken before (or before a library's table is in) are unwound
   by the agent from a stack snapshot: their samples are whole stacks (the known chain, or the
   dynamic loader's start-up rooted at its own entry). Typically 99.5%; the bar is 90%
   because the agent also serves every other process of the machine, whose churn (parallel
   builds on a 2-CPU VM) can delay it past a process's whole life."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from aptest import BIN_DIR, TEST_BIN_DIR, agent, check, has_rooted_chain, require_bpf, skip

ROOTS = {"_start"}
LIB = ["main", "nf_outer", "nflib_middle", "nf_inner", "nf_leaf"]
DL = ["main", "nf_dl_caller", "nfdl_work", "nfdl_leaf"]
FILES = ["nofp_chain", "libnofp_lib.so", "libnofp_dl.so"]


def has_chain(user, chain):
    return has_rooted_chain(user, chain, roots=ROOTS, at_leaf=True)


def load(path):
    with open(path) as f:
        d = json.load(f)
    frames = d["frames"]
    out = []
    for s in d["samples"]:
        st = [frames[i] for i in d["stacks"][s["stack"]]]
        out.append(([f["name"] for f in reversed(st) if f["kind"] == "user"], s["values"][0],
                    s["pid"]))
    return out, d["stats"]


def ns_pids(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return line.split()[1:]
    return []


def find_host_pid(parent_tree_root, timeout=10):
    """The nofp_chain started inside the namespace: a descendant of parent_tree_root."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip() != "nofp_chain":
                        continue
                if len(ns_pids(p)) == 2 and os.readlink(f"/proc/{p}/exe").endswith(
                        "(deleted)"):
                    return int(p)
            except OSError:
                continue
        time.sleep(0.1)
    return None


def container_case():
    if not shutil.which("unshare"):
        skip("unshare (util-linux) not installed")
    src = TEST_BIN_DIR
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        script = (f"mount -t tmpfs tmpfs {root} && "
                  + " && ".join(f"cp {os.path.join(src, f)} {root}/" for f in FILES)
                  + f" && ({root}/nofp_chain 14 both >/dev/null &) && sleep 1 && "
                  f"rm -f {root}/* && sleep 14")
        ns = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "--mount-proc",
                               "--propagation", "private", "sh", "-c", script])
        try:
            pid = find_host_pid(ns.pid)
            check(pid is not None, "the namespaced workload did not start (or was not deleted)")
            check(not os.listdir(root), "the namespace's tmpfs is visible from the host")
            print(f"namespaced workload: host pid {pid}, NSpid {ns_pids(pid)}, exe "
                  f"{os.readlink(f'/proc/{pid}/exe')}")
            out = os.path.join(tmp, "ns.json")
            agent("--mode", "cpu", "--pid", pid, "--duration", "3s", "--sample-rate", 199,
                  "--output", out, "--format", "json", timeout=120)
            samples, stats = load(out)
        finally:
            # killing the namespace's init (unshare's child) ends everything inside it
            try:
                with open(f"/proc/{ns.pid}/task/{ns.pid}/children") as f:
                    for child in f.read().split():
                        os.kill(int(child), signal.SIGKILL)
            except OSError:
                pass
            ns.kill()
            ns.wait()
    total = sum(c for _, c, _ in samples)
    ok = sum(c for u, c, _ in samples if has_chain(u, LIB) or has_chain(u, DL))
    print(f"container, deleted binary: {ok}/{total} samples carry a full chain; "
          f"unwind_files_compiled={stats.get('unwind_files_compiled')}")
    for u, c, _ in samples:
        if not (has_chain(u, LIB) or has_chain(u, DL)):
            print(f"   not matched x{c}: {';'.join(u)}")
    check(total >= 100, f"too few samples: {total}")
    check(ok >= 0.99 * total, f"full chains in only {ok}/{total} samples")


def short_lived_case(runs=25):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "short.json")
        ag = subprocess.Popen([os.path.join(BIN_DIR, "aperture-agent"), "--mode", "cpu",
                               "--sample-rate", "199", "--output", out, "--format", "json",
                               "-v"], stderr=subprocess.PIPE, text=True)
        # wait until it records (whole-system start-up snapshots every process)
        deadline = time.time() + 60
        while time.time() < deadline:
            line = ag.stderr.readline()
            if not line or "recording" in line:
                break
        pids = set()
        for _ in range(runs):
            p = subprocess.Popen([os.path.join(TEST_BIN_DIR, "nofp_chain"), "-n", "60", "lib"],
                                 stdout=subprocess.PIPE, text=True)
            pids.add(int(p.stdout.readline()))
            p.wait()
        time.sleep(1.5)  # one more drain
        ag.send_signal(signal.SIGINT)
        _, err = ag.communicate(timeout=60)
        check(ag.returncode == 0, f"agent exited {ag.returncode}: {err}")
        samples, stats = load(out)
    mine = [(u, c) for u, c, pid in samples if pid in pids]
    total = sum(c for _, c in mine)
    chain = sum(c for u, c in mine if has_chain(u, LIB))
    # ld.so at work before main: rooted at its entry (_start, or ld.so's own unnamed one)
    startup = sum(c for u, c in mine if not has_chain(u, LIB) and
                  ("_dl_start" in u[:2] or (u and u[0] == "_start" and "main" not in u)))
    ok = chain + startup
    print(f"short-lived: {runs} processes, {total} samples: {chain} with the full chain, "
          f"{startup} in the dynamic loader ({100.0 * ok / max(total, 1):.1f}% whole); "
          f"deferred to the agent {stats.get('stacks_deferred')}, of which complete "
          f"{stats.get('stacks_deferred_complete')}")
    for u, c in mine:
        if not has_chain(u, LIB):
            print(f"   x{c}: {';'.join(u)}")
    check(total >= 3 * runs, f"too few samples of the short-lived processes: {total}")
    check(ok >= 0.90 * total, f"whole stacks in only {ok}/{total} samples")


require_bpf()
container_case()
short_lived_case()
print("PASS")
