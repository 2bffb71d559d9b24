# SPDX-License-Identifier: MIT
"""--mode syscall on a workload that makes known calls: ap_syscalls makes, per round, exactly
1000 getppid(), 37 openat() failing with ENOENT and 3 nanosleep(2 ms) from slow_call_site().

Checks exact counts, errno attribution, --pid / --comm / --syscall filters, the JSON fields,
the text report, the raw_tp fallback, and the slow-call stacks in folded and SVG output."""
import atexit
import json
import os
import signal
import subprocess
import tempfile

from aptest import (BIN_DIR, TEST_BIN_DIR, check, fail, read_folded, read_until, require_bpf,
                    skip)

N_FAST, N_FAIL, N_SLOW = 1000, 37, 3
BYSTANDER_FAST, BYSTANDER_FAIL = 500, 5


class Workload:
    """ap_syscalls -w: prints its pid, then does one round per line on stdin."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_syscalls"), "-w",
                                      *map(str, args)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.pid = int(self.proc.stdout.readline())

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def wait_done(self):
        line = self.proc.stdout.readline().split()
        check(line and line[0] == "done", f"workload said {line!r}")
        return int(line[1])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


RUNNING = []


@atexit.register
def kill_leftovers():
    """A failed check exits early: no agent may outlive the test."""
    for proc in RUNNING:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Agent:
    """aperture-agent --mode syscall running in the background until stop()."""

    def __init__(self, *args, env=None):
        # -d: a guard, so that an agent left behind by a failed test still exits
        cmd = [os.path.join(BIN_DIR, "aperture-agent"), "--mode", "syscall", "-v", "-d", "90s",
               *map(str, args)]
        self.cmd = " ".join(cmd)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, **(env or {})})
        RUNNING.append(self.proc)
        started, self.err = read_until(self.proc, "recording", 30)
        if started:
            return
        self.proc.kill()
        out, err = self.proc.communicate()
        self.err += err
        if "cannot load the syscall tracer" in self.err:
            skip(f"kernel cannot run the syscall tracer: {self.err.strip()}")
        fail(f"{self.cmd} did not start:\n{self.err}{out}")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=60)
        self.err += err
        check(self.proc.returncode == 0,
              f"{self.cmd} exited {self.proc.returncode}\n{self.err}{out}")
        return out


def entries_of(path, pid=None):
    data = json.load(open(path))
    for key in ("mode", "arch", "duration_ns", "entries", "stats"):
        check(key in data, f"{path}: no {key!r}")
    check(data["mode"] == "syscall", f"mode {data['mode']}")
    ents = data["entries"]
    if pid is not None:
        ents = [e for e in ents if e["pid"] == pid]
    return {e["name"]: e for e in ents}, data


def check_entry(e, count, errors, where):
    for field in ("pid", "comm", "name", "nr", "count", "errors", "total_ns", "min_ns",
                  "max_ns", "hist"):
        check(field in e, f"{where}: entry lacks {field!r}: {e}")
    check(e["count"] == count, f"{where}: {e['name']} count {e['count']} != {count}")
    check(e["errors"] == errors, f"{where}: {e['name']} errors {e['errors']} != {errors}")
    check(e["error_count"] == sum(errors.values()), f"{where}: error_count {e}")
    check(sum(h["count"] for h in e["hist"]) == count,
          f"{where}: {e['name']} histogram total != {count}")
    check(0 < e["min_ns"] <= e["p50_ns"] <= e["p99_ns"] <= e["max_ns"],
          f"{where}: {e['name']} latencies out of order: {e}")
    check(e["min_ns"] * count <= e["total_ns"] <= e["max_ns"] * count,
          f"{where}: {e['name']} total out of [min, max] x count: {e}")
    check(e["comm"] == "ap_syscalls", f"{where}: comm {e['comm']!r}")


def check_no_loss(data, where):
    for s in ("calls_lost", "errno_lost", "slow_events_lost", "task_storage_errors",
              "recursion_misses", "drain_errors"):
        check(data["stats"].get(s, 0) == 0, f"{where}: {s} = {data['stats'].get(s)}")


require_bpf()
with tempfile.TemporaryDirectory() as tmp:
    def path(name):
        return os.path.join(tmp, name)

    # usage errors exit 2
    for args in (["--syscall", "no_such_syscall"], ["--slow-stacks"]):
        r = subprocess.run([os.path.join(BIN_DIR, "aperture-agent"), "-m", "syscall", *args],
                           capture_output=True, text=True)
        check(r.returncode == 2, f"{args}: exit {r.returncode}, wanted 2: {r.stderr}")

    w = Workload("-n", N_FAST, "-e", N_FAIL, "-s", N_SLOW)
    x = Workload("-n", BYSTANDER_FAST, "-e", BYSTANDER_FAIL)
    try:
        # round 1: --pid, --comm + --syscall, and the raw_tp fallback, each its own agent
        a_pid = Agent("-p", w.pid, "-o", path("pid.json"))
        a_filt = Agent("--comm", "ap_syscalls", "--syscall", "getppid,openat",
                       "-o", path("filtered.json"))
        a_raw = Agent("-p", w.pid, "-o", path("raw.json"), env={"AP_SYSCALL_ATTACH": "raw_tp"})
        w.go()
        x.go()
        check(w.wait_done() == N_FAIL and x.wait_done() == BYSTANDER_FAIL,
              "workload's own count of failed openat is off")
        for a in (a_pid, a_filt, a_raw):
            a.stop()

        for name, where in (("pid.json", "--pid"), ("raw.json", "raw_tp")):
            ents, data = entries_of(path(name))
            check(all(e["pid"] == w.pid for e in ents.values()),
                  f"{where}: other processes leaked through the pid filter: {list(ents)}")
            check_entry(ents["getppid"], N_FAST, {}, where)
            check_entry(ents["openat"], N_FAIL, {"ENOENT": N_FAIL}, where)
            check_entry(ents["nanosleep"], N_SLOW, {}, where)
            check(ents["nanosleep"]["min_ns"] >= 2000000, f"{where}: nanosleep under 2 ms")
            check(ents["getppid"]["p50_ns"] < 1000000, f"{where}: getppid p50 implausible")
            check_no_loss(data, where)
            check(data["attach"] == ("raw_tp" if where == "raw_tp" else "tp_btf"),
                  f"{where}: attached as {data['attach']}")
            if data["arch"] == "x86_64":
                check(ents["getppid"]["nr"] == 110 and ents["openat"]["nr"] == 257,
                      f"{where}: x86_64 numbers wrong")

        ents, data = entries_of(path("filtered.json"))
        check({e["name"] for e in data["entries"]} <= {"getppid", "openat"},
              f"--syscall: other syscalls leaked: {[e['name'] for e in data['entries']]}")
        check({e["pid"] for e in data["entries"]} == {w.pid, x.pid},
              f"--comm: wanted pids {w.pid}, {x.pid}: {[e['pid'] for e in data['entries']]}")
        mine, _ = entries_of(path("filtered.json"), w.pid)
        other, _ = entries_of(path("filtered.json"), x.pid)
        check_entry(mine["getppid"], N_FAST, {}, "--comm --syscall")
        check_entry(mine["openat"], N_FAIL, {"ENOENT": N_FAIL}, "--comm --syscall")
        check_entry(other["getppid"], BYSTANDER_FAST, {}, "--comm --syscall (bystander)")
        check_entry(other["openat"], BYSTANDER_FAIL, {"ENOENT": BYSTANDER_FAIL},
                    "--comm --syscall (bystander)")

        # round 2: text report with histograms, slow calls, and their stacks
        a_text = Agent("-p", w.pid, "--format", "text", "--hist", "--min-latency", "1ms")
        a_slow = Agent("-p", w.pid, "--min-latency", "1ms", "-o", path("slow.json"))
        a_fold = Agent("-p", w.pid, "--min-latency", "1ms", "--slow-stacks",
                       "-o", path("slow.folded"))
        a_svg = Agent("-p", w.pid, "--min-latency", "1ms", "--slow-stacks",
                      "-o", path("slow.svg"))
        w.go()
        w.wait_done()
        text = a_text.stop()
        for a in (a_slow, a_fold, a_svg):
            a.stop()
    finally:
        for wl in (w, x):
            try:
                wl.close()
            except Exception:  # noqa: BLE001 - best-effort cleanup
                wl.proc.kill()

    # text: a strace -c style table with the exact counts, errnos and histograms
    rows = {ln.split()[-1] if "ENOENT" not in ln else "openat": ln
            for ln in text.splitlines() if ln.strip() and ln.strip()[0].isdigit()}
    check("getppid" in rows and "1,000" in rows["getppid"].split(),
          f"text: getppid row lacks 1,000 calls:\n{text}")
    check("ENOENT 37" in rows.get("openat", ""), f"text: openat row lacks ENOENT 37:\n{text}")
    for col in ("calls", "errors", "total", "avg", "p50", "p99", "max", "syscall"):
        check(col in text, f"text: no {col!r} column:\n{text}")
    check(f"Process {w.pid} (ap_syscalls)" in text, f"text: process header:\n{text}")
    check("|****" in text, f"text: --hist printed no histogram:\n{text}")

    ents, _ = entries_of(path("slow.json"))
    check(ents["nanosleep"]["slow"] == N_SLOW, f"slow: nanosleep slow {ents['nanosleep']}")
    check(ents["getppid"]["slow"] == 0, "slow: getppid counted as slow")

    # folded: the slow calls under their syscall root, with the workload's call chain
    folded = read_folded(path("slow.folded"))
    chains = [f for f, _ in folded if "syscall:nanosleep" in f and "slow_call_site" in f]
    check(chains, f"folded: no nanosleep stack with slow_call_site: {folded}")
    f = chains[0]
    check(f[1] == "syscall:nanosleep", f"folded: syscall is not the root frame: {f}")
    check(f.index("slow_calls_outer") + 1 == f.index("slow_call_site") == len(f) - 1,
          f"folded: chain slow_calls_outer;slow_call_site broken: {f}")
    total_ns = sum(c for fr, c in folded if "syscall:nanosleep" in fr)
    check(total_ns >= N_SLOW * 2000000, f"folded: nanosleep weighs {total_ns} ns")
    check(any(fr[1] == "syscall:getppid" for fr, _ in folded), "folded: no getppid root")
    svg = open(path("slow.svg")).read()
    check("slow_call_site" in svg and "syscall:nanosleep" in svg, "svg lacks the slow stack")
print("PASS")
