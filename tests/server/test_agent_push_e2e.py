# SPDX-License-Identifier: MIT
"""The real agent pushing to the real aperture-aggregator over loopback HTTP: a workload's
samples are stored with the push's labels and the stored total equals the agent's own
count. Then the aggregator is killed with SIGKILL in the middle of the run and started again
on the same storage: the agent spools meanwhile, and once its spool has drained the stored
totals equal its count exactly: nothing acknowledged was lost, no retried push was stored
twice."""
import gzip
import os
import secrets
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from aptest import BIN_DIR, check, fail, require_bpf, skip, start_workload, wait_all
from push_lib import RUNNING, decode_pprof, free_port, start_agent, stop_agent, summary

require_bpf()
AGGREGATOR = os.path.join(BIN_DIR, "aperture-aggregator")
if not os.path.exists(AGGREGATOR):
    skip("aperture-aggregator is not built")
ENV = dict(os.environ, AP_TEST_PUSH_BACKOFF_MIN_MS="200", AP_TEST_PUSH_BACKOFF_MAX_MS="1000")


def start_aggregator(port, db):
    proc = subprocess.Popen([AGGREGATOR, "--listen", f"127.0.0.1:{port}", "--storage",
                             f"sqlite:{db}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    RUNNING.append(proc)
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            fail(f"aperture-aggregator exited {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    fail("aperture-aggregator did not answer /healthz within 30 s")


def stored_total(port, query, t0, t1):
    """The merged profile's total samples for the query over [t0, t1] (ns)."""
    qs = urllib.parse.urlencode({"query": query, "from": str(t0), "until": str(t1),
                                 "format": "pprof"})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/profile?{qs}",
                                timeout=30) as r:
        body = r.read()
    if body[:2] != b"\x1f\x8b":
        body = gzip.compress(body)
    samples = decode_pprof(body)
    return sum(s["values"][0] for s in samples), samples


with tempfile.TemporaryDirectory() as tmp:
    port = free_port()
    db = os.path.join(tmp, "agg.db")
    agg = start_aggregator(port, db)
    run = secrets.token_hex(4)  # this run's label: other runs' data never match
    wl, pid = start_workload("ap_chain", 120)
    t0 = time.time_ns() - 10**9
    agent = start_agent("-m", "cpu", "--server", f"http://127.0.0.1:{port}",
                        "--push-interval", "1s", "--label", f"run={run}",
                        "--spool-dir", os.path.join(tmp, "spool"), "-p", pid, env=ENV)
    time.sleep(4)
    # kill -9 in the middle of the run, down for a while, then back on the same file
    agg.send_signal(signal.SIGKILL)
    agg.wait()
    time.sleep(3)
    agg = start_aggregator(port, db)
    time.sleep(4)
    err = stop_agent(agent, timeout=60)
    t1 = time.time_ns() + 10**9
    wl.kill()
    wait_all([wl])
    print(err[-1500:])

    intervals, pushed, recorded = summary(err, "cpu")
    check(pushed["samples"] == recorded, f"agent pushed {pushed} but recorded {recorded}")
    check("spool_files=0" in err.strip().splitlines()[-1],
          f"the agent's spool did not drain:\n{err}")
    query = f'{{mode="cpu",run="{run}"}}'
    total, samples = stored_total(port, query, t0, t1)
    check(total == recorded,
          f"aggregator stores {total} samples for {query}, the agent recorded {recorded}")
    mine = [s for s in samples if s["labels"].get("comm") == "ap_chain"]
    check(mine, f"no ap_chain samples stored: {samples[:3]}")
    agg.terminate()
    agg.wait(timeout=30)
print("PASS")
