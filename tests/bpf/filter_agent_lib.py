# SPDX-License-Identifier: MIT
"""Helpers of the agent-level filter tests (test_filter_*.py): agents in the background,
workloads that make known syscalls, the SDK and hostile filter modules."""
import atexit
import json
import os
import select
import signal
import subprocess
import time

from aptest import BIN_DIR, TEST_BIN_DIR, check, fail, skip

SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTILE_DIR = os.path.join(SRC_DIR, "tests", "data", "filters")
AGENT = os.path.join(BIN_DIR, "aperture-agent")
RUNNING = []


@atexit.register
def kill_leftovers():
    """A failed check exits early: no agent or workload may outlive the test."""
    for proc in RUNNING:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def sdk_filter(name):
    """Path of an SDK example filter (build/bin/NAME.wasm); skips when it was not built."""
    path = os.path.join(BIN_DIR, f"{name}.wasm")
    if not os.path.exists(path):
        skip(f"{path} not built (needs clang and lld for wasm32)")
    return path


def hostile_filter(name, tmp):
    """Build tests/data/filters/NAME.wat into tmp with wat2wasm; returns the .wasm path."""
    out = os.path.join(tmp, f"{name}.wasm")
    r = subprocess.run(["wat2wasm", os.path.join(HOSTILE_DIR, f"{name}.wat"), "-o", out],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"wat2wasm {name}.wat: {r.stderr}")
    return out


class Agent:
    """aperture-agent in the background: started, then waited for ("-d") or stopped (SIGINT)."""

    def __init__(self, *args, cwd=None, verbose=True):
        # -d 60s unless given: a guard, so that an agent left by a failed test still exits
        args = [str(a) for a in args]
        guard = [] if "-d" in args or "--duration" in args else ["-d", "60s"]
        self.cmd = [AGENT, *(["-v"] if verbose else []), *guard, *args]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=cwd)
        RUNNING.append(self.proc)
        self.err = ""
        self.out = ""

    def wait_recording(self, timeout=60):
        """Until the agent says it records (needs -v)."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stderr.fileno()
        while time.monotonic() < deadline:
            # raw reads: a buffered readline would keep a second line out of select's sight
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 65536).decode(errors="replace")
                self.err += chunk
                if "recording" in self.err:
                    return self
                if not chunk:
                    break
            elif self.proc.poll() is not None:
                break
        self.finish(check_rc=False)
        fail(f"{' '.join(self.cmd)} did not start:\n{self.err}")

    def finish(self, stop=False, check_rc=True, timeout=90):
        """Wait for the agent (SIGINT first with stop=True); returns its stdout."""
        if stop and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            fail(f"{' '.join(self.cmd)} hung:\n{self.err}{err}")
        self.out += out
        self.err += err
        if check_rc:
            check(self.proc.returncode == 0,
                  f"{' '.join(self.cmd)} exited {self.proc.returncode}:\n{self.err}")
        return self.out


class Syscalls:
    """ap_syscalls -w: per line on stdin, exactly n getppid(), e failing openat() (ENOENT)
    and s nanosleep(2 ms) from slow_call_site()."""

    def __init__(self, n, e, s=0):
        self.n, self.e, self.s = n, e, s
        self.proc = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_syscalls"), "-w",
                                      "-n", str(n), "-e", str(e), "-s", str(s)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        RUNNING.append(self.proc)
        self.pid = int(self.proc.stdout.readline())

    def round(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().split()
        check(line and line[0] == "done" and int(line[1]) == self.e,
              f"ap_syscalls said {line!r}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


def syscall_entries(path, pid=None):
    """{(pid, name): entry} of a syscall-mode JSON report, and its stats."""
    data = json.load(open(path))
    check(data.get("mode") == "syscall", f"{path}: not a syscall report")
    ents = {(e["pid"], e["name"]): e for e in data["entries"] if pid is None or e["pid"] == pid}
    return ents, data["stats"]


def check_exact(ents, wl, where):
    """The workload's calls, exactly: counts, errnos, histogram totals."""
    want = {"getppid": (wl.n, {}), "openat": (wl.e, {"ENOENT": wl.e})}
    if wl.s:
        want["nanosleep"] = (wl.s, {})
    for name, (count, errors) in want.items():
        e = ents.get((wl.pid, name))
        check(e is not None, f"{where}: no {name} entry of pid {wl.pid}: {sorted(ents)}")
        check(e["count"] == count, f"{where}: {name} count {e['count']} != {count}")
        check(e["errors"] == errors, f"{where}: {name} errors {e['errors']} != {errors}")
        check(sum(h["count"] for h in e["hist"]) == count, f"{where}: {name} histogram")


def filter_stats(stats):
    return {k: v for k, v in stats.items() if k.startswith("filter_")}
