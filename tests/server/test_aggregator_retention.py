#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Retention: with --retention 100s (a pass every second) data older than that disappears
while recent data stays, and /metrics counts the passes."""
import time

import aptest
from aggregator import NS, Aggregator, pprof_from_folded


def main():
    with Aggregator(retention="100s") as agg:
        now = time.time_ns()
        old = pprof_from_folded(agg.dir, "app;main;old_fn 11\n")
        new = pprof_from_folded(agg.dir, "app;main;new_fn 7\n")
        # the old push covers a minute three hours ago (the store deletes whole hours, so
        # data goes between --retention and --retention + 1 h after its time); the store may
        # refuse it outright (too old) or take it and drop it at the next pass
        res = agg.push(old, {"mode": "cpu", "host": "r"}, from_ns=now - 3 * 3600 * NS,
                       until_ns=now - 3 * 3600 * NS + 60 * NS, expect=None)
        aptest.check(res.status in (200, 400), f"old push answered {res}")
        agg.push(new, {"mode": "cpu", "host": "r"})
        deadline = time.time() + 30
        while time.time() < deadline:
            got = agg.folded('{mode="cpu"}', **{"from": "now-4h"})
            if not any("old_fn" in k for k in got):
                break
            time.sleep(0.5)
        aptest.check(not any("old_fn" in k for k in got), f"old data still there: {got}")
        aptest.check(any(k.endswith("new_fn") and v == 7 for k, v in got.items()),
                     f"recent data gone: {got}")
        runs = agg.metric("aperture_storage_retention_runs_total")
        aptest.check(runs >= 1, f"retention passes counted: {runs}")
    print("PASS")


if __name__ == "__main__":
    main()
