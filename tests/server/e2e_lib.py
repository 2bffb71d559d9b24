# SPDX-License-Identifier: MIT
"""Helpers of the cross-component end-to-end tests (test_e2e_*.py): a real aperture-agent in
continuous mode, ap_syscalls, whose exact syscall counts are what the stored totals are checked
against, and the aggregator of tests/lib/aggregator.py on another address than loopback.

Not a test itself (CTest runs tests/server/test_*.py only)."""
import atexit
import http.client
import os
import re
import signal
import subprocess

from aggregator import Aggregator
from aptest import BIN_DIR, TEST_BIN_DIR, check, fail, read_until

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


class NetAggregator(Aggregator):
    """tests/lib/aggregator.py's Aggregator listening on another address than 127.0.0.1
    (the host's end of a test network)."""

    def __init__(self, addr, *args, **kw):
        self.addr = addr
        super().__init__(*args, **kw)

    def command(self, port=0):
        cmd = super().command(port)
        cmd[cmd.index("--listen") + 1] = f"{self.addr}:{port}"
        return cmd

    @property
    def url(self):
        return f"{self.scheme}://{self.addr}:{self.port}"

    def connection(self, timeout=60):
        return http.client.HTTPConnection(self.addr, self.port, timeout=timeout)


def getppid_total(agg, pid, t0, t1):
    """(calls of getppid by pid as the merged profile says, as the syscall table says)."""
    base = {"from": str(int(t0)), "until": str(int(t1) + 1)}
    fg = agg.query("/api/v1/flamegraph", value="calls", **base,
                   query=f'{{mode="syscall",pid="{pid}",syscall="getppid"}}').json()
    tables = agg.query("/api/v1/tables", **base, query=f'{{mode="syscall",pid="{pid}"}}').json()
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
        started, self.err = read_until(self.proc, "recording", 60)
        if started:
            return
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


def agent_recorded(stderr, mode):
    """(value name, total) the agent says it recorded in `mode`, from its exit summary
    ('PROG: MODE: N intervals pushed, samples=.. cpu=.. (recorded samples=N)')."""
    m = re.search(rf"^\S+: {mode}: (\d+) intervals pushed,(?: \w+=\d+)* \(recorded (\w+)=(\d+)\)",
                  stderr, re.M)
    check(m, f"no {mode} summary in the agent's stderr:\n{stderr[-3000:]}")
    return m.group(2), int(m.group(3))


def merged_total(agg, query, value, t0, t1):
    """The merged flamegraph's total of `value` for a selector over [t0, t1] (unix s)."""
    return agg.query("/api/v1/flamegraph", query=query, value=value,
                     **{"from": str(int(t0)), "until": str(int(t1) + 1)}).json()["total"]


def start_chain(prefix=()):
    """ap_chain (CPU-bound, a known call chain) for 120 s; returns the Popen and its pid."""
    proc = subprocess.Popen([*prefix, os.path.join(TEST_BIN_DIR, "ap_chain"), "120"],
                            stdout=subprocess.PIPE, text=True)
    _RUNNING.append(proc)
    return proc, int(proc.stdout.readline())
