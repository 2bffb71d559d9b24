# SPDX-License-Identifier: MIT
"""Answers that are not failures of the network: a 4xx other than 408/429 is logged with the
server's reason, counted and dropped, never retried; a 429 is retried no earlier than its
Retry-After; failover: with a dead first --server the pushes go to the second."""
import os
import tempfile
import time

from aptest import check, require_bpf, start_workload, wait_all
from push_lib import Server, counters, free_port, start_agent, stop_agent

require_bpf()
ENV = dict(os.environ, AP_TEST_PUSH_BACKOFF_MIN_MS="200", AP_TEST_PUSH_BACKOFF_MAX_MS="1000")

with tempfile.TemporaryDirectory() as tmp:
    wl, pid = start_workload("ap_chain", 120)
    spool = os.path.join(tmp, "spool")
    srv = Server().start()
    srv.set_mode("400")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    agent = start_agent("-m", "cpu", "--server", f"{dead},{srv.url}", "--push-interval", "1s",
                        "--spool-dir", spool, "-p", pid, env=ENV)
    srv.wait_for(lambda: len(srv.attempts) >= 3, 30, "three refused pushes")
    refused = [a[1] for a in srv.attempts if a[2] == "400"]

    srv.retry_after = 3
    srv.set_mode("429")
    srv.wait_for(lambda: any(a[2] == "429" for a in srv.attempts), 30, "a push answered 429")
    first_429 = next(a for a in srv.attempts if a[2] == "429")
    time.sleep(1.0)
    srv.set_mode("ok")
    srv.wait_for(lambda: any(p.push_id == first_429[1] for p in srv.stored()), 30,
                 "the push answered 429 to be delivered")
    time.sleep(1.5)
    err = stop_agent(agent)
    wl.kill()
    wait_all([wl])
    srv.stop()
    print(err[-1500:])

    # refused: each tried once, never stored, the reason logged, counted
    for pid_ in refused:
        n = sum(1 for a in srv.attempts if a[1] == pid_)
        check(n == 1, f"refused push {pid_} was sent {n} times")
    check("malformed pprof: test refusal" in err, "the server's reason is not in the log")
    c = counters(err)
    check(c["rejected"] >= len(refused) >= 1, f"rejected={c['rejected']}, refused {len(refused)}")
    stored_ids = {p.push_id for p in srv.stored()}
    check(not stored_ids & set(refused), "a refused push was stored")
    # 429: the retry of that push waited for Retry-After (3 s, less the scheduling slack)
    retry = next(a for a in srv.attempts if a[1] == first_429[1] and a[0] > first_429[0])
    check(retry[0] - first_429[0] >= 2.8,
          f"retried {retry[0] - first_429[0]:.2f} s after a 429 with Retry-After 3")
    # failover: every push reached the live server although the dead one comes first
    check(c["ok"] == len(srv.stored()) and c["ok"] >= 3, f"counters {c}")
    check(not [f for f in os.listdir(spool) if f.endswith(".push")], "spool not empty")
print("PASS")
