# SPDX-License-Identifier: MIT
"""Fault: kill -9 one of two aggregators on the two-shard ClickHouse cluster in the middle of a
run. The agent (--server A,B) fails over to B; whatever A had acknowledged is in ClickHouse, and
a push A stored but could not answer is retried on B and answered "duplicate" from the database.
After the run the stored totals, read through B and through A started again, equal the agent's
own count exactly: nothing lost, nothing stored twice."""
import tempfile
import time

import clickhouse
from aptest import check, require_bpf
from ch_lib import (Agent, Workloads, aggregators, check_agent_totals, check_same_profile,
                    close_all, run_label)

require_bpf()
clickhouse.require()

with tempfile.TemporaryDirectory() as tmp, clickhouse.cluster() as cl:
    aggs = aggregators(cl, 2)
    A, B = aggs
    work = Workloads()
    try:
        run = run_label()
        t0 = time.time_ns() - 10**9
        # 5 s pushes: a push to ClickHouse takes 0.2-1.5 s on this busy box, and the backlog a
        # fault leaves in the spool must drain faster than it grows
        agent = Agent("a1", run, [A.url, B.url], work, tmp, interval="5s")
        deadline = time.monotonic() + 60
        while True:  # run until A has stored some of the agent's pushes
            work.round()
            pushed_to_a = A.metric("aperture_ingest_requests_total", route="push",
                                   result="stored")
            if pushed_to_a >= 1:
                break
            check(time.monotonic() < deadline, "the agent pushed nothing to A in 60 s")
            time.sleep(0.5)
        work.rounds_for(2)  # into the next interval: A is killed while the agent records
        A.kill()  # SIGKILL, mid-run: the agent's next push to A fails, it goes to B
        work.rounds_for(6)
        waited = agent.wait_drained()
        print(f"the agent's spool drained {waited:.1f} s after the last round")
        tot = agent.stop()
        t1 = time.time_ns() + 10**9
        c = tot["counters"]
        print(f"agent {tot}")
        on_b = B.metric("aperture_ingest_requests_total", route="push", result="stored") + \
            B.metric("aperture_ingest_requests_total", route="push", result="duplicate")
        check(on_b >= 1, f"the agent never failed over to B (agent counters {c})")
        A.start()  # on the same port and store, to read through it too
        check_agent_totals(aggs, run, "a1", tot, work, t0, t1, "A killed")
        check_same_profile(aggs, f'{{mode="cpu",run="{run}"}}', "samples", t0, t1,
                           "A killed, cpu")
        print(f"{pushed_to_a:.0f} pushes stored through A before its SIGKILL, {on_b:.0f} "
              f"through B after; {tot['cpu']} cpu samples and {work.rounds} rounds of getppid "
              f"stored exactly")
    finally:
        work.close()
        close_all(aggs)
print("PASS")
