# SPDX-License-Identifier: MIT
"""Helpers of the ClickHouse cluster tests (test_clickhouse_*.py): aggregators whose store is a
ClickHouse server or cluster of tests/lib/clickhouse.py, real agents in continuous mode pushing
through several of them (--server URL,URL), and the checks that the stored totals equal what
the agents recorded.

Not a test itself (CTest runs tests/server/test_*.py only)."""
import atexit
import os
import secrets
import subprocess
import time

from aggregator import Aggregator, pprof_from_folded
from aptest import TEST_BIN_DIR, check, fail
from push_lib import RUNNING, counters, start_agent, stop_agent, summary

# Short retry backoff (the agent's test hook): a failed push is retried within a second.
AGENT_ENV = dict(os.environ, AP_TEST_PUSH_BACKOFF_MIN_MS="200",
                 AP_TEST_PUSH_BACKOFF_MAX_MS="1000")
GETPPID = 2000  # getppid() calls of ap_syscalls per round
# How long a spool may take to drain after a fault: the backend answers "retry later" for a
# push another (killed) writer began, for 60 s (CH_PENDING_NS), then completes it; the agent
# sends its spool oldest first, so its backlog waits behind that push, then drains.
DRAIN_S = 120


class CHAggregator(Aggregator):
    """tests/lib/aggregator.py's Aggregator with --storage clickhouse://... instead of its own
    SQLite file (everything else, the start on a free port, kill -9, restart on the same port,
    the HTTP helpers, is the same)."""

    def __init__(self, storage, *args, **kw):
        self.storage = storage
        super().__init__(*args, **kw)

    def command(self, port=0):
        cmd = super().command(port)
        cmd[cmd.index("--storage") + 1] = self.storage
        return cmd

    def start(self, timeout=60):
        # The schema is created on start (ON CLUSTER through ZooKeeper): give it time.
        if self not in _AGGS:
            _AGGS.append(self)
        return super().start(timeout=timeout)


_AGGS = []


@atexit.register
def _kill_aggregators():
    """A failed check exits at once: no aggregator may outlive the test."""
    for a in _AGGS:
        if a.proc and a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait()


def aggregators(cl, n=2, *args, **kw):
    """n aggregators on the cluster, the i-th entering it through shard i (every shard serves
    the Distributed tables), started one after the other."""
    return [CHAggregator(cl.storage_url(shard=i % len(cl.shards)), *args, **kw).start()
            for i in range(n)]


def close_all(aggs):
    for a in aggs:
        if a.proc and a.proc.poll() is None:
            a.kill()


def window(t0_ns, t1_ns):
    """Query parameters for [t0, t1] given in ns (the routes take unix seconds)."""
    return {"from": str(t0_ns // 10**9), "until": str(t1_ns // 10**9 + 1)}


def stored(agg, query, value, t0_ns, t1_ns):
    """(total, {stack: count}) of the merged profile of a selector through one aggregator
    (0, {} while nothing matches yet)."""
    res = agg.query("/api/v1/profile", expect=None, query=query, format="folded", value=value,
                    **window(t0_ns, t1_ns))
    if res.status == 400 and "no data in this range" in res.text():
        return 0, {}
    check(res.status == 200, f"GET /api/v1/profile {query} answered {res}")
    folded = {}
    for line in res.text().splitlines():
        if line.strip():
            stack, n = line.rsplit(" ", 1)
            folded[stack] = folded.get(stack, 0) + int(n)
    return sum(folded.values()), folded


def wait_total(aggs, query, value, t0_ns, t1_ns, want, timeout=60, what=""):
    """Poll until every aggregator's merged total of `query` equals want (a Distributed table
    may forward rows to their shard a moment after the push was acknowledged); more than want
    at any time is a push stored twice and fails at once. Returns the last folded profiles."""
    deadline = time.monotonic() + timeout
    while True:
        got = [stored(a, query, value, t0_ns, t1_ns) for a in aggs]
        totals = [t for t, _ in got]
        for t in totals:
            check(t <= want, f"{what}: {t} {value} stored for {query}, only {want} were "
                  f"recorded: a push was stored twice (totals per aggregator {totals})")
        if all(t == want for t in totals):
            return [f for _, f in got]
        if time.monotonic() > deadline:
            fail(f"{what}: stored totals {totals} of {query} never reached {want} {value} "
                 f"within {timeout} s")
        time.sleep(0.5)


class Workloads:
    """ap_chain (CPU, a known call chain) and ap_syscalls -w (exactly GETPPID getppid() per
    round), both for the whole test."""

    def __init__(self):
        self.chain = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_chain"), "120"],
                                      stdout=subprocess.PIPE, text=True)
        RUNNING.append(self.chain)
        self.chain_pid = int(self.chain.stdout.readline())
        self.sysw = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_syscalls"), "-n",
                                      str(GETPPID), "-w"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        RUNNING.append(self.sysw)
        self.sys_pid = int(self.sysw.stdout.readline())
        self.rounds = 0

    def round(self):
        self.sysw.stdin.write("go\n")
        self.sysw.stdin.flush()
        check(self.sysw.stdout.readline().startswith("done"), "ap_syscalls round failed")
        self.rounds += 1

    def rounds_for(self, seconds, step=0.7):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.round()
            time.sleep(step)

    def close(self):
        if self.sysw.poll() is None:
            self.sysw.stdin.close()
        for p in (self.chain, self.sysw):
            if p.poll() is None:
                p.kill()
            p.wait()


class Agent:
    """A real aperture-agent in continuous mode (cpu and syscall of the workloads' pids),
    pushing every `interval` to `servers` in order (the first that answers), with its own spool
    and an agent=NAME label so its rows can be told from another agent's."""

    def __init__(self, name, run, servers, work, tmp, interval="1s"):
        self.name = name
        self.spool = os.path.join(tmp, f"spool-{name}")
        self.proc = start_agent("-m", "cpu,syscall", "--server", ",".join(servers),
                                "--push-interval", interval, "--label", f"run={run}",
                                "--label", f"agent={name}", "--spool-dir", self.spool,
                                "-p", work.chain_pid, "-p", work.sys_pid, env=AGENT_ENV)
        self.err = ""

    def spooled(self):
        try:
            return [f for f in os.listdir(self.spool) if not f.startswith(".")]
        except FileNotFoundError:
            return []

    def wait_drained(self, timeout=DRAIN_S):
        """Wait until the agent's spool is empty (it delivered its backlog); returns the
        seconds waited. A push a killed aggregator was writing stays "being stored by another
        writer" (503) in ClickHouse for up to a minute, and the spool is sent oldest first, so
        the backlog may wait that long behind it."""
        t0 = time.monotonic()
        while self.spooled():
            if time.monotonic() - t0 > timeout:
                fail(f"agent {self.name}'s spool still holds {len(self.spooled())} pushes after "
                     f"{timeout} s:\n{''.join(self.proc.stderr_lines)[-3000:]}")
            time.sleep(0.5)
        return time.monotonic() - t0

    def stop(self):
        """SIGTERM: it pushes its last interval and drains its spool; returns its totals:
        {"cpu": recorded samples, "syscall": recorded calls, "counters": push counters}."""
        self.err = stop_agent(self.proc, timeout=90)
        _, cpu_pushed, cpu = summary(self.err, "cpu")
        _, sys_pushed, calls = summary(self.err, "syscall")
        check(cpu_pushed["samples"] == cpu, f"agent {self.name} pushed {cpu_pushed} of {cpu}")
        check(sys_pushed["calls"] == calls,
              f"agent {self.name} pushed {sys_pushed} calls of {calls}")
        c = counters(self.err)
        check(c["dropped"] == 0 and c["spool_files"] == 0,
              f"agent {self.name} dropped pushes or left its spool: {c}\n{self.err[-3000:]}")
        return {"cpu": cpu, "syscall": calls, "counters": c}


def check_agent_totals(aggs, run, agent, totals, work, t0_ns, t1_ns, what):
    """Through every aggregator: the agent's stored cpu samples and syscall calls equal its
    own count, and its getppid calls equal what ap_syscalls made. Returns the cpu profiles."""
    sel = f'run="{run}",agent="{agent}"'
    fgs = wait_total(aggs, f'{{mode="cpu",{sel}}}', "samples", t0_ns, t1_ns, totals["cpu"],
                     what=f"{what}, agent {agent} cpu")
    check(any("chain_inner" in s for s in fgs[0]), f"{what}: ap_chain's frames not stored")
    wait_total(aggs, f'{{mode="syscall",{sel}}}', "calls", t0_ns, t1_ns, totals["syscall"],
               what=f"{what}, agent {agent} syscalls")
    wait_total(aggs, f'{{mode="syscall",{sel},pid="{work.sys_pid}",syscall="getppid"}}',
               "calls", t0_ns, t1_ns, GETPPID * work.rounds,
               what=f"{what}, agent {agent} getppid")
    return fgs


def check_same_profile(aggs, query, value, t0_ns, t1_ns, what):
    """The merged profile is the same, stack by stack, through every aggregator."""
    profiles = [stored(a, query, value, t0_ns, t1_ns)[1] for a in aggs]
    for i, p in enumerate(profiles[1:], 1):
        if p != profiles[0]:
            diff = sorted(set(p.items()) ^ set(profiles[0].items()))[:10]
            fail(f"{what}: aggregator {i} merges {query} differently from aggregator 0: {diff}")
    check(profiles[0], f"{what}: {query} is empty")
    return profiles[0]


def run_label():
    return secrets.token_hex(4)


def known_profile(directory, seed):
    """A folded profile with exact counts, as gzipped pprof (through `aperture report`), and
    its {stack: count} (the stack as the aggregator's folded output writes it)."""
    stacks = {f"app;main;work_{seed};leaf_{i}": 10 * seed + i for i in range(1, 6)}
    folded = "".join(f"{s} {n}\n" for s, n in stacks.items())
    return pprof_from_folded(directory, folded), stacks
