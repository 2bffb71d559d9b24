# SPDX-License-Identifier: MIT
"""Lock mode's futex hooks (docs/lock-mode.md, syscall hooks): the agent loads one pair of
programs, the syscalls:sys_*_futex tracepoints or the raw syscall ones, and either sees
futex(2), futex_waitv(2) (5.16+) and futex_wait(2) (6.7+) waits. A child process does timed
waits with each syscall (ctypes; each times out after sleeping); every one is reported, as an
`other` wait that timed out, with each hook: the one the agent picks, the raw one forced
(AP_LOCK_FUTEX_HOOK=raw_syscalls), and the tracepoint one forced where tracefs is hidden (in a
mount namespace), which must fall back to the raw one."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from aptest import BIN_DIR, check, fail, require_bpf

N = 100  # waits per syscall

# The waiter: prints its pid, waits for a line, does N timed waits with each syscall, prints
# {"futex": addr, ...: word addresses, "timeouts": {syscall: count}} (a syscall the kernel
# lacks is left out).
CHILD = r"""
import ctypes, json, os, platform, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {"futex": 202 if platform.machine() == "x86_64" else 98, "futex_waitv": 449,
      "futex_wait": 455}
ETIMEDOUT, CLOCK_MONOTONIC, FUTEX_WAIT, FUTEX2_SIZE_U32 = 110, 1, 0, 2

class Ts(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]

class Waitv(ctypes.Structure):
    _fields_ = [("val", ctypes.c_uint64), ("uaddr", ctypes.c_uint64),
                ("flags", ctypes.c_uint32), ("res", ctypes.c_uint32)]

words = {k: ctypes.c_uint32(0) for k in NR}
def deadline(ns):
    t = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + ns
    return Ts(t // 10**9, t % 10**9)

def wait(name):
    w = words[name]
    if name == "futex":  # relative timeout
        r = libc.syscall(NR[name], ctypes.byref(w), FUTEX_WAIT, 0,
                         ctypes.byref(Ts(0, 2000000)), 0, 0)
    elif name == "futex_waitv":
        v = Waitv(0, ctypes.addressof(w), FUTEX2_SIZE_U32, 0)
        r = libc.syscall(NR[name], ctypes.byref(v), 1, 0, ctypes.byref(deadline(2000000)),
                         CLOCK_MONOTONIC)
    else:
        r = libc.syscall(NR[name], ctypes.byref(w), ctypes.c_ulong(0),
                         ctypes.c_ulong(0xffffffff), FUTEX2_SIZE_U32,
                         ctypes.byref(deadline(2000000)), CLOCK_MONOTONIC)
    return r == -1 and ctypes.get_errno() == ETIMEDOUT

print(os.getpid(), flush=True)
sys.stdin.readline()
out = {k: "0x%x" % ctypes.addressof(w) for k, w in words.items()}
out["timeouts"] = {}
for name in NR:
    n = sum(wait(name) for _ in range(""" + str(N) + r"""))
    if n:
        out["timeouts"][name] = n
print(json.dumps(out), flush=True)
"""


def record(tmp, env=None, hide_tracefs=False):
    """The child under the agent; returns (its report, the agent's JSON)."""
    out = os.path.join(tmp, "hooks.json")
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    pid = int(child.stdout.readline())
    cmd = [os.path.join(BIN_DIR, "aperture-agent"), "--mode", "lock", "-v", "--pid", str(pid),
           "--output", out]
    if hide_tracefs:
        # tmpfs over both places libbpf looks for tracefs, in a mount namespace of its own
        cmd = ["unshare", "-m", "sh", "-c", "mount -t tmpfs none /sys/kernel/debug && "
               "{ mount -t tmpfs none /sys/kernel/tracing 2>/dev/null; true; } && "
               'exec "$@"', "sh", *cmd]
    ag = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **(env or {})})
    seen = ""
    while "recording" not in seen:
        line = ag.stderr.readline()
        if not line:
            child.kill()
            fail(f"agent did not start ({' '.join(cmd)}):\n{seen}")
        seen += line
    child.stdin.write("go\n")
    child.stdin.close()
    acct = json.loads(child.stdout.read())
    child.wait()
    ag.send_signal(signal.SIGINT)
    _, err = ag.communicate(timeout=60)
    check(ag.returncode == 0, f"agent exited {ag.returncode}: {seen}{err}")
    return acct, json.load(open(out)), seen + err


def check_waits(what, acct, rep, hook):
    check(rep["futex_hook"] == hook, f"{what}: futex_hook {rep['futex_hook']}, not {hook}")
    other = {l["addr"]: l for l in rep["other_waits"]}
    for name, n in acct["timeouts"].items():
        got = other.get(acct[name])
        print(f"{what}: {name}: {n} timed out, reported "
              f"{got and got['contentions']} ({got and got['results']['timeout']} timeouts)")
        check(got is not None, f"{what}: {name} waits not reported")
        check(got["contentions"] == n and got["results"]["timeout"] == n,
              f"{what}: {name}: {got['contentions']} waits reported, {n} made")


require_bpf()
with tempfile.TemporaryDirectory() as tmp:
    acct, rep, _ = record(tmp)
    check("futex" in acct["timeouts"], "the futex(2) waits did not time out")
    print(f"futex_hook {rep['futex_hook']}; syscalls with waits: {list(acct['timeouts'])}")
    check_waits("default", acct, rep, rep["futex_hook"])
    acct, rep, _ = record(tmp, env={"AP_LOCK_FUTEX_HOOK": "raw_syscalls"})
    check_waits("raw forced", acct, rep, "raw_syscalls")
    if shutil.which("unshare"):
        acct, rep, log = record(tmp, env={"AP_LOCK_FUTEX_HOOK": "tracepoint"},
                                hide_tracefs=True)
        check("using the raw syscall tracepoints" in log, f"no fallback said:\n{log}")
        check_waits("tracepoint forced, no tracefs", acct, rep, "raw_syscalls")
    else:
        print("unshare not found: the fallback is not checked")
print("PASS")
