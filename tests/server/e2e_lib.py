# SPDX-License-Identifier: MIT
"""Helpers of the cross-component end-to-end tests (test_e2e_*.py): a real aperture-aggregator,
a real aperture-agent in continuous mode, and ap_syscalls, whose exact syscall counts are what
the stored totals are checked against.

Not a test itself (CTest runs tests/server/test_*.py only)."""
import atexit
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from aptest import BIN_DIR, TEST_BIN_DIR, check, fail

# ap_syscalls: exactly this many getppid() per round (-n), and openat() failing with ENOENT (-e)
N_FAST, N_FAIL = 1000, 37

_RUNNING = []


@atexit.register
def _kill_leftovers():
    """A failed check exits early: nothing this test started may outlive it."""
    for proc in _RUNNING:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def free_port(addr="127.0.0.1"):
    s = socket.socket()
    s.bind((addr, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Aggregator:
    """aperture-aggregator on a fresh SQLite store; stop() in a finally."""

    def __init__(self, tmp, listen_addr="127.0.0.1", tls=None, extra=()):
        self.port = free_port(listen_addr)
        self.tls = tls  # (cert, key) or None
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{listen_addr}:{self.port}"
        self.db = os.path.join(tmp, "store.db")
        cmd = [os.path.join(BIN_DIR, "aperture-aggregator"), "--listen",
               f"{listen_addr}:{self.port}", "--storage", f"sqlite:{self.db}", *extra]
        if tls:
            cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.log_path = os.path.join(tmp, f"aggregator-{self.port}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        _RUNNING.append(self.proc)
        self.ctx = ssl.create_default_context(cafile=tls[0]) if tls else None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail(f"aggregator exited {self.proc.returncode}:\n{self.logs()}")
            try:
                if self.get("/healthz", raw=True).strip() == b"ok":
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        fail(f"aggregator did not answer /healthz within 30 s:\n{self.logs()}")

    def logs(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def get(self, path, params=None, raw=False):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=60, context=self.ctx) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def getppid_total(agg, pid, t0, t1):
    """(calls of getppid by pid as the merged profile says, as the syscall table says)."""
    base = {"from": str(int(t0)), "until": str(int(t1) + 1)}
    fg = agg.get("/api/v1/flamegraph", {**base, "value": "calls", "query":
                                         f'{{mode="syscall",pid="{pid}",syscall="getppid"}}'})
    tables = agg.get("/api/v1/tables", {**base, "query": f'{{mode="syscall",pid="{pid}"}}'})
    calls = [s["calls"] for s in tables.get("syscalls", []) if s["name"] == "getppid"]
    return fg["total"], sum(calls)


class Workload:
    """ap_syscalls -w (optionally under a command prefix, e.g. ip netns exec): prints its pid,
    then makes exactly N_FAST getppid() and N_FAIL failing openat() per line on stdin."""

    def __init__(self, prefix=()):
        self.proc = subprocess.Popen([*prefix, os.path.join(TEST_BIN_DIR, "ap_syscalls"), "-w",
                                      "-n", str(N_FAST), "-e", str(N_FAIL)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        _RUNNING.append(self.proc)
        self.pid = int(self.proc.stdout.readline())
        self.rounds = 0

    def round(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().split()
        check(line and line[0] == "done", f"workload said {line!r}")
        self.rounds += 1

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Agent:
    """aperture-agent in continuous mode (no --duration: until SIGTERM), -v, started under an
    optional command prefix; waits until it records."""

    def __init__(self, args, prefix=()):
        self.cmd = [*prefix, os.path.join(BIN_DIR, "aperture-agent"), "-v", *map(str, args)]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        _RUNNING.append(self.proc)
        self.err = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stderr], [], [], 0.2)
            if r:
                line = self.proc.stderr.readline()
                self.err += line
                if "recording" in line:
                    return
                if not line:
                    break
            elif self.proc.poll() is not None:
                break
        self.proc.kill()
        self.proc.wait()
        fail(f"agent did not start recording: {' '.join(self.cmd)}\n{self.err}")

    def stop(self, timeout=60):
        """SIGTERM: the agent pushes its last interval and tries its spool once more."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            fail(f"agent did not exit within {timeout} s of SIGTERM:\n{self.err}{err}")
        self.err += err
        return self.proc.returncode


def spool_files(spool_dir):
    if not os.path.isdir(spool_dir):
        return []
    return [f for f in os.listdir(spool_dir) if not f.startswith(".")]
