#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Acknowledged means durable: push profiles from several threads, kill -9 the aggregator
the moment the last answer arrives, start it again on the same store: every acknowledged
sample is there. A push retried with the same push_id (as the agent does when an answer was
lost) is stored once, also across the restart. SIGTERM shuts down cleanly (exit 0)."""
import threading
import uuid

import aptest
from aggregator import Aggregator, pprof_from_folded

THREADS = 4
PUSHES = 10  # per thread


def main():
    with Aggregator() as agg:
        # one profile per thread, distinct leaf functions, so totals can be told apart
        profiles = {t: pprof_from_folded(agg.dir, f"app;main;leaf_t{t} {t + 1}\n")
                    for t in range(THREADS)}
        acked = {t: 0 for t in range(THREADS)}
        ids = {}
        errors = []

        def pusher(t):
            try:
                for i in range(PUSHES):
                    pid = uuid.uuid4().hex
                    res = agg.push(profiles[t], {"mode": "cpu", "host": f"h{t}"}, push_id=pid)
                    if res.json().get("status") == "stored":
                        acked[t] += 1
                        ids[(t, i)] = pid
            except Exception as e:  # reported below, the thread must not hide it
                errors.append(repr(e))

        threads = [threading.Thread(target=pusher, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        aptest.check(not errors, f"pushes failed: {errors}")
        rc = agg.kill()  # SIGKILL right after the last acknowledgement
        aptest.check(rc == -9, f"aggregator exit {rc} after SIGKILL")

        agg.start()
        got = agg.folded('{mode="cpu"}', **{"from": "now-1h"})
        for t in range(THREADS):
            total = sum(v for k, v in got.items() if k.endswith(f"leaf_t{t}"))
            want = acked[t] * (t + 1)
            aptest.check(total == want, f"thread {t}: {total} samples after kill -9, "
                         f"{want} acknowledged ({got})")

        # a retried push: same id, answered "duplicate", stored once
        pid = ids[(0, 0)]
        res = agg.push(profiles[0], {"mode": "cpu", "host": "h0"}, push_id=pid)
        aptest.check(res.json() == {"status": "duplicate"}, f"retry answered {res}")
        new = uuid.uuid4().hex
        res = agg.push(profiles[0], {"mode": "cpu", "host": "h0"}, push_id=new)
        aptest.check(res.json() == {"status": "stored"}, f"new push answered {res}")
        res = agg.push(profiles[0], {"mode": "cpu", "host": "h0"}, push_id=new)
        aptest.check(res.json() == {"status": "duplicate"}, f"second retry answered {res}")
        got = agg.folded('{mode="cpu",host="h0"}')
        total = sum(v for k, v in got.items() if k.endswith("leaf_t0"))
        aptest.check(total == acked[0] + 1, f"h0 holds {total}, expected {acked[0] + 1}")
        dup = agg.metric("aperture_ingest_requests_total", route="push", result="duplicate")
        aptest.check(dup == 2, f"duplicates counted {dup}")

        # clean shutdown, and the de-duplication survives it
        agg.stop()
        agg.start()
        res = agg.push(profiles[0], {"mode": "cpu", "host": "h0"}, push_id=new)
        aptest.check(res.json() == {"status": "duplicate"}, f"retry after restart: {res}")
        agg.stop()
    print("PASS")


if __name__ == "__main__":
    main()
