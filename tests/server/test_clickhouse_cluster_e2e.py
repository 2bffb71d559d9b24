# SPDX-License-Identifier: MIT
"""Two aggregators on a two-shard ClickHouse cluster (ZooKeeper, ReplicatedMergeTree shards,
Distributed tables; tests/lib/clickhouse.py), real agents pushing through both: agent a1 with
--server A,B, agent a2 with --server B,A. Queries through either aggregator return the same
merged profile, and each agent's stored totals equal its own count (cpu samples, syscall calls;
getppid calls equal what ap_syscalls made). A push retried on the other aggregator with the same
push_id is stored once (the dedup is in the database, not in one aggregator's memory), and the
rows are spread over both shards."""
import tempfile
import time

import clickhouse
from aptest import check, require_bpf
from ch_lib import (Agent, Workloads, aggregators, check_agent_totals, check_same_profile,
                    close_all, known_profile, run_label, stored, wait_total)

require_bpf()
clickhouse.require()

with tempfile.TemporaryDirectory() as tmp, clickhouse.cluster() as cl:
    aggs = aggregators(cl, 2)
    A, B = aggs
    work = Workloads()
    try:
        run = run_label()
        t0 = time.time_ns() - 10**9
        a1 = Agent("a1", run, [A.url, B.url], work, tmp, interval="2s")
        a2 = Agent("a2", run, [B.url, A.url], work, tmp, interval="2s")
        work.rounds_for(5)
        a1.wait_drained(60)  # a slow push may have been retried from the spool
        a2.wait_drained(60)
        tot1, tot2 = a1.stop(), a2.stop()
        t1 = time.time_ns() + 10**9
        print(f"a1 {tot1}\na2 {tot2}")

        # each agent's rows, through both aggregators, equal its own count
        for name, tot in (("a1", tot1), ("a2", tot2)):
            check_agent_totals(aggs, run, name, tot, work, t0, t1, "cluster e2e")
        # the whole run (both agents) merges to the same profile through A and through B
        wait_total(aggs, f'{{mode="cpu",run="{run}"}}', "samples", t0, t1,
                   tot1["cpu"] + tot2["cpu"], what="both agents' cpu")
        fg = check_same_profile(aggs, f'{{mode="cpu",run="{run}"}}', "samples", t0, t1,
                                "cluster e2e cpu")
        check_same_profile(aggs, f'{{mode="syscall",run="{run}"}}', "calls", t0, t1,
                           "cluster e2e syscall")
        print(f"{len(fg)} cpu stacks, {sum(fg.values())} samples merged alike through A and B")

        # a push stored through A and retried through B (its answer lost): stored once
        pb, stacks = known_profile(tmp, 3)
        now = time.time_ns()
        labels = {"mode": "cpu", "host": "dedup-host", "run": run, "agent": "direct"}
        first = A.push(pb, labels, push_id=f"dup{run}", from_ns=now - 10**9, until_ns=now)
        again = B.push(pb, labels, push_id=f"dup{run}", from_ns=now - 10**9, until_ns=now)
        check(first.json().get("status") == "stored", f"first push answered {first}")
        check(again.json().get("status") == "duplicate",
              f"the same push_id through the other aggregator answered {again}")
        sel = f'{{mode="cpu",run="{run}",agent="direct"}}'
        got = wait_total(aggs, sel, "samples", now - 2 * 10**9, now + 10**9,
                         sum(stacks.values()), what="retried push")[0]
        check(sorted(got.values()) == sorted(stacks.values()),
              f"the pushed stacks {stacks} came back as {got}")
        total, _ = stored(B, sel, "samples", now - 2 * 10**9, now + 10**9)
        check(total == sum(stacks.values()), f"retried push stored {total}")

        # 16 hosts (fixed names: whatever stable key spreads the rows, it does so the same
        # way every run) through A and B in turn: all stored, the same through both
        want = 0
        for i in range(16):
            pb, stacks = known_profile(tmp, 10 + i)
            (A if i % 2 else B).push(pb, {"mode": "cpu", "host": f"spread-{i:02d}", "run": run,
                                          "agent": "spread"}, from_ns=now - 10**9, until_ns=now)
            want += sum(stacks.values())
        wait_total(aggs, f'{{mode="cpu",run="{run}",agent="spread"}}', "samples",
                   now - 2 * 10**9, now + 10**9, want, what="16 hosts")
    finally:
        work.close()
        close_all(aggs)

    # the rows really are spread over both shards (the local tables of each shard hold some)
    per_shard = []
    for s in cl.shards:
        per_shard.append(int(s.scalar(
            "SELECT sum(rows) FROM system.parts WHERE active AND database = 'aperture' "
            "AND engine LIKE 'Replicated%'") or 0))
    check(all(n > 0 for n in per_shard), f"rows in the shards' replicated tables: {per_shard}")
    print(f"rows per shard: {per_shard}")
print("PASS")
