# SPDX-License-Identifier: MIT
"""Continuous mode through an outage: with the server down (connection refused) and then
failing (503), the intervals go to the spool while recording goes on; once it is back the
spool drains oldest first and the stored totals equal the agent's count exactly. A push that
was stored but whose answer was lost is retried with the same push_id and stored once."""
import os
import tempfile
import time

from aptest import check, require_bpf, start_workload, wait_all
from push_lib import Server, check_abutting, counters, start_agent, stop_agent, summary

require_bpf()
# retries come soon in a test: at most 1 s apart
ENV = dict(os.environ, AP_TEST_PUSH_BACKOFF_MIN_MS="200", AP_TEST_PUSH_BACKOFF_MAX_MS="1000")

with tempfile.TemporaryDirectory() as tmp:
    spool = os.path.join(tmp, "spool")
    srv = Server()
    srv.start()
    wl, pid = start_workload("ap_chain", 60)
    agent = start_agent("-m", "cpu", "--server", srv.url, "--push-interval", "1s",
                        "--spool-dir", spool, "-p", pid, env=ENV)
    srv.wait_for(lambda: len(srv.stored()) >= 2, 30, "the first pushes")

    # down: connection refused
    srv.stop()
    time.sleep(4)
    spooled = [f for f in os.listdir(spool) if f.endswith(".push")]
    check(len(spooled) >= 2, f"spool holds {spooled} after 4 s of outage")
    # up again but failing: 503 with Retry-After
    srv.start()
    srv.set_mode("503")
    time.sleep(2.5)
    n_503 = len([a for a in srv.attempts if a[2] == "503"])
    check(n_503 >= 1, "no attempt reached the failing server")
    # stored, but the answer is lost: the retry must reuse the push_id
    srv.set_mode("lose_answer")
    srv.wait_for(lambda: any(a[2] == "lose_answer" for a in srv.attempts), 20,
                 "an attempt while answers are lost")
    srv.set_mode("ok")
    srv.wait_for(lambda: not [f for f in os.listdir(spool) if f.endswith(".push")], 60,
                 "the spool to drain")
    time.sleep(1.5)
    err = stop_agent(agent)
    wl.kill()
    wait_all([wl])
    srv.stop()
    print(err[-2000:])

    pushes = srv.stored("cpu")
    check_abutting(pushes, "cpu")
    intervals, pushed, recorded = summary(err, "cpu")
    total = sum(p.total() for p in pushes)
    check(len(pushes) == intervals, f"{len(pushes)} stored, {intervals} intervals pushed")
    check(total == recorded == pushed["samples"],
          f"stored {total} samples, agent pushed {pushed['samples']}, recorded {recorded}")
    # oldest first: the spool drained in the order the intervals were recorded
    starts = [p.start for p in pushes]
    check(starts == sorted(starts), f"pushes arrived out of order: {starts}")
    # the lost answer: the same push_id was sent again and stored once
    lost = [a[1] for a in srv.attempts if a[2] == "lose_answer"]
    again = [a for a in srv.attempts if a[1] == lost[0] and a[2] == "ok"]
    check(again, f"push {lost[0]} whose answer was lost was not retried with its id")
    check(sum(1 for p in pushes if p.push_id == lost[0]) == 1, "a retried push stored twice")
    c = counters(err)
    check(c["spooled"] >= 2 and c["failed"] >= 3 and c["retried"] >= 2,
          f"counters do not show the outage: {c}")
    check(c["dropped"] == 0 and c["rejected"] == 0 and c["spool_files"] == 0,
          f"counters: {c}")
    # the lost answer's push counts once, when its retry is answered "duplicate"
    check(c["ok"] == len(pushes), f"ok={c['ok']} for {len(pushes)} stored")
print("PASS")
