# SPDX-License-Identifier: MIT
"""Restart everything: profiles pushed through two aggregators into the two-shard ClickHouse
cluster survive stopping both aggregators, both ClickHouse servers and ZooKeeper and starting
them again (the schema is created idempotently on the second start): the merged profile, its
label values and the dedup of push ids are all as before. Then the same after a crash: every
process killed with SIGKILL and started again."""
import tempfile
import time

import clickhouse
from aptest import check
from ch_lib import aggregators, check_same_profile, close_all, known_profile, run_label

clickhouse.require()

with tempfile.TemporaryDirectory() as tmp, clickhouse.cluster() as cl:
    aggs = aggregators(cl, 2)
    try:
        run = run_label()
        now = time.time_ns()
        t0, t1 = now - 60 * 10**9, now + 10**9
        want = {}
        ids = []
        for i in range(8):
            pb, stacks = known_profile(tmp, i + 1)
            pid = f"r{run}x{i}"
            ids.append((pid, pb, i))
            aggs[i % 2].push(pb, {"mode": "cpu", "host": f"host-{i}", "run": run},
                             push_id=pid, from_ns=now - (i + 2) * 10**9,
                             until_ns=now - (i + 1) * 10**9)
            for s, n in stacks.items():
                want[s] = want.get(s, 0) + n
        sel = f'{{mode="cpu",run="{run}"}}'

        def check_all(when):
            # poll briefly: Distributed may still be forwarding rows right after the pushes
            deadline = time.monotonic() + 30
            while True:
                got = [a.folded(sel, value="samples", **{"from": str(t0 // 10**9),
                                                         "until": str(t1 // 10**9 + 1)})
                       for a in aggs]
                totals = [sum(g.values()) for g in got]
                check(all(t <= sum(want.values()) for t in totals),
                      f"{when}: more stored than pushed: {totals} > {sum(want.values())}")
                if all(sorted(g.values()) == sorted(want.values()) for g in got):
                    break
                check(time.monotonic() < deadline,
                      f"{when}: stored {got[0]} (through A), {got[1]} (through B), pushed "
                      f"{want}")
                time.sleep(0.5)
            check_same_profile(aggs, sel, "samples", t0, t1, when)
            hosts = aggs[1].query("/api/v1/label-values", name="host", query=sel,
                                  **{"from": str(t0 // 10**9),
                                     "until": str(t1 // 10**9 + 1)}).json()["values"]
            check(sorted(hosts) == [f"host-{i}" for i in range(8)], f"{when}: hosts {hosts}")
            # the push ids survived too: a retry of an old push is still a duplicate
            pid, pb, i = ids[-1]
            res = aggs[(i + 1) % 2].push(pb, {"mode": "cpu", "host": f"host-{i}", "run": run},
                                         push_id=pid, from_ns=now - (i + 2) * 10**9,
                                         until_ns=now - (i + 1) * 10**9)
            check(res.json().get("status") == "duplicate", f"{when}: retried push {res}")

        check_all("before the restart")

        for a in aggs:
            a.stop()
        cl.stop()  # both shards and ZooKeeper, SIGTERM
        cl.start()
        for a in aggs:
            a.start()
        check_all("after stopping and starting everything")

        for a in aggs:
            a.kill()
        cl.kill()  # SIGKILL: as a power cut of every machine
        cl.start()
        for a in aggs:
            a.start()
        check_all("after killing and starting everything")
        print(f"{sum(want.values())} samples in 8 pushes survived two restarts of everything")
    finally:
        close_all(aggs)
print("PASS")
