# SPDX-License-Identifier: MIT
"""Lock mode against a workload with known contention (tests/workloads/ap_locks.c): every
lock is found with its kind and name, its waits agree with the workload's own accounting,
mutex holders are the hog threads, and condition-variable waits are reported apart from lock
contention. A second run checks the pprof output (contentions/count, delay/nanoseconds).
test_lock_spill.py reuses record() and check_locks() with tiny aggregation maps."""
import gzip
import json
import os
import re
import signal
import subprocess
import tempfile
import time

from aptest import BIN_DIR, TEST_BIN_DIR, check, cli, fail, read_folded, read_until, require_bpf

PROTO_DIR = os.environ["AP_PPROF_PROTO_DIR"]
WAIT_TOL = 0.15   # total wait vs the workload's clock_gettime accounting
COUNT_TOL = 0.10  # blocking waits vs the workload's contended acquisitions
SYMBOLS = {"hog_mutex": "g_hog_mutex", "pi_mutex": "g_pi_mutex", "rwlock": "g_rwlock",
           "condvar": "g_cond"}


def wait_for_line(proc, needle, timeout):
    """Read the agent's stderr until a line containing needle appears."""
    found, seen = read_until(proc, needle, timeout)
    if found:
        return
    fail(f"agent never said {needle!r}:\n{seen}{proc.stderr.read() if proc.stderr else ''}")


def record(tmp, out, *extra, seconds=3, env=None):
    """Run ap_locks under the agent (env: extra environment variables); returns (workload
    accounting, agent stdout)."""
    wl = subprocess.Popen([os.path.join(TEST_BIN_DIR, "ap_locks"), str(seconds), "--wait"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid = int(wl.stdout.readline())
    ag = subprocess.Popen([os.path.join(BIN_DIR, "aperture-agent"), "--mode", "lock", "-v",
                           "--pid", str(pid), "--output", out, *extra],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **(env or {})})
    wait_for_line(ag, "recording", 30)
    wl.stdin.write("go\n")
    wl.stdin.close()
    acct = json.loads(wl.stdout.read())
    wl.wait()
    time.sleep(0.2)
    ag.send_signal(signal.SIGINT)
    stdout, stderr = ag.communicate(timeout=60)
    check(ag.returncode == 0, f"agent exited {ag.returncode}: {stderr}")
    return acct, stdout


def near(measured, expected, tol):
    return abs(measured - expected) <= tol * expected


def check_locks(acct, rep):
    """Every lock of the workload reported with its kind, name, waits, holders and stacks as
    the workload accounted them; no wait lost. Returns the report's stats."""
    locks = {l["addr"]: l for l in rep["locks"]}
    conds = {l["addr"]: l for l in rep["condvars"]}
    print(f"futex hook: {rep.get('futex_hook')}, kernel locks: {rep.get('kernel_locks')}")

    for a in acct["locks"]:
        addr = "0x%x" % int(a["addr"], 16)
        where = conds if a["kind"] == "condvar" else locks
        check(addr in where, f"{a['name']} ({a['kind']} at {addr}) not reported: "
              f"locks {list(locks)} condvars {list(conds)}")
        got = where[addr]
        print(f"{a['name']:10s} kind {got['kind']:8s} name {got['name']}: "
              f"{got['contentions']} waits / {got['wait_ns_total'] / 1e6:.1f} ms; workload "
              f"{a['contended']} / {a['wait_ns'] / 1e6:.1f} ms")
        check(got["kind"] == a["kind"], f"{a['name']}: kind {got['kind']} != {a['kind']}")
        check(got["name"] == SYMBOLS[a["name"]], f"{a['name']}: lock named {got['name']!r}")
        check(near(got["wait_ns_total"], a["wait_ns"], WAIT_TOL),
              f"{a['name']}: wait {got['wait_ns_total']} ns vs workload {a['wait_ns']} ns")
        check(near(got["contentions"], a["contended"], COUNT_TOL),
              f"{a['name']}: {got['contentions']} waits vs workload {a['contended']}")
        check(sum(got["hist"]) == got["contentions"], f"{a['name']}: histogram total")
        check(got["wait_ns_max"] >= got["wait_ns_avg"] > 0, f"{a['name']}: max/avg")
        check(got["stacks"] and all(s["frames"] for s in got["stacks"]),
              f"{a['name']}: waits without stacks")
        if a["kind"] == "condvar":
            check(addr not in locks, "condvar waits leaked into the lock table")
            continue
        # the holder: the thread that held the lock when each wait began
        top = got["holders"][0]
        share = top["wait_ns"] / got["wait_ns_total"]
        print(f"{'':10s} holder {top['tid']} ({top['comm']}) for {100 * share:.1f}% of wait")
        check(top["tid"] == a["holder_tid"],
              f"{a['name']}: top holder {top['tid']} != {a['holder_tid']}")
        check(share >= 0.9, f"{a['name']}: holder owns only {share:.2f} of the wait")
        check(top["comm"] in ("hog", "pihog", "writer"), f"holder comm {top['comm']!r}")

    mutex = locks["0x%x" % int(acct["locks"][0]["addr"], 16)]
    check(any("mutex_waiter_loop" in s["frames"] for s in mutex["stacks"]),
          "the waiters' function is in no mutex stack")
    st = rep["stats"]
    cond = next(a for a in acct["locks"] if a["kind"] == "condvar")
    check(st["condvar_wait_ns"] >= (1 - WAIT_TOL) * cond["wait_ns"], "condvar stats")
    check(st["lock_wait_ns"] == sum(l["wait_ns_total"] for l in rep["locks"]),
          "lock totals include non-lock waits")
    for drop in ("waits_lost", "holders_lost", "inflight_map_full", "stacks_map_full",
                 "drain_errors"):
        check(st[drop] == 0, f"{drop} = {st[drop]}")
    return st


def main():
    require_bpf()
    with tempfile.TemporaryDirectory() as tmp:
        js = os.path.join(tmp, "locks.json")
        acct, text = record(tmp, js, "--top", "5")
        st = check_locks(acct, json.load(open(js)))
        print(f"spilled: {st['waits_spilled']} waits, {st['holders_spilled']} holders")

        # --top: the text report on stdout
        for s in ("Contended locks", "g_hog_mutex", "holders (share of wait): ",
                  "Condition-variable waits (not lock contention)", "distribution"):
            check(s in text, f"text report lacks {s!r}:\n{text}")

        # pprof: sample types and the lock frame; the CLI converts it to folded by delay
        pb = os.path.join(tmp, "locks.pb.gz")
        acct2, _ = record(tmp, pb, seconds=2)
        raw = gzip.open(pb).read()
        dec = subprocess.run(["protoc", "--decode=perftools.profiles.Profile",
                              f"--proto_path={PROTO_DIR}", "profile.proto"],
                             input=raw, capture_output=True, check=True).stdout.decode()
        strings = re.findall(r'^string_table: "(.*)"$', dec, re.M)
        for s in ("contentions", "count", "delay", "nanoseconds", "[mutex g_hog_mutex]",
                  "[rwlock g_rwlock]", "[pi-mutex g_pi_mutex]", "lock_kind"):
            check(s in strings, f"pprof string table lacks {s!r}")
        check("[condvar g_cond]" not in strings, "condvar waits in the lock profile")
        folded = os.path.join(tmp, "back.folded")
        r = cli("report", pb, "-o", folded)
        check(r.returncode == 0, f"report -o failed: {r.stderr}")
        back = read_folded(folded)
        hog = sum(c for f, c in back if f[-1] == "[mutex g_hog_mutex]")
        want = next(a for a in acct2["locks"] if a["name"] == "hog_mutex")["wait_ns"]
        print(f"folded: [mutex g_hog_mutex] weighs {hog / 1e6:.1f} ms, workload {want / 1e6:.1f} ms")
        check(near(hog, want, WAIT_TOL), "folded output is not weighted by wait time")
    print("PASS")


if __name__ == "__main__":
    main()
