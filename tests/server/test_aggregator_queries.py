#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Queries on known pushes: label names and values, modes, label matchers (=, !=, =~, !~),
time ranges in every form of docs/api.md, series per step, a query over several modes
refused with the list, the merged profile in every format, `go tool pprof` reading the
profile route directly, the flamegraph JSON, a diff of two known profiles, and the syscall
table merged from two pushes with p50/p99 from the merged histograms, and the agents' own
counters in /metrics."""
import datetime
import gzip
import os
import shutil
import subprocess
import time

import aptest
from aggregator import NS, Aggregator, pprof_from_folded

H1 = "app;main;work;hot 70\napp;main;work;cold 30\n"
H2 = "app;main;work;hot 10\napp;main;work;cold 90\n"


def leaf_totals(folded):
    out = {}
    for stack, n in folded.items():
        leaf = stack.split(";")[-1]
        out[leaf] = out.get(leaf, 0) + n
    return out


def main():
    now = time.time_ns()
    t1 = now - 30 * 60 * NS  # h1 pushed 30 minutes ago
    t2 = now - 5 * 60 * NS   # h2 5 minutes ago
    with Aggregator() as agg:
        p1 = pprof_from_folded(agg.dir, H1)
        p2 = pprof_from_folded(agg.dir, H2)
        agg.push(p1, {"mode": "cpu", "host": "h1", "env": "prod"}, from_ns=t1, until_ns=t1 + 10 * NS)
        agg.push(p2, {"mode": "cpu", "host": "h2", "env": "dev"}, from_ns=t2, until_ns=t2 + 10 * NS)
        agg.push(pprof_from_folded(agg.dir, "app;main;take_lock 5\n"), {"mode": "lock", "host": "h1"},
                 from_ns=t2, until_ns=t2 + 10 * NS)

        # labels, values, modes
        names = agg.query("/api/v1/labels").json()["names"]
        for n in ("host", "mode", "env"):
            aptest.check(n in names, f"label {n} missing from {names}")
        vals = agg.query("/api/v1/label-values", name="host").json()["values"]
        aptest.check(vals == ["h1", "h2"], f"host values {vals}")
        vals = agg.query("/api/v1/label-values", name="host", query='{env="dev"}').json()["values"]
        aptest.check(vals == ["h2"], f"host values of env=dev: {vals}")
        modes = agg.query("/api/v1/modes").json()["modes"]
        aptest.check(modes == ["cpu", "lock"], f"modes {modes}")
        aptest.check(agg.query("/api/v1/modes", query='{host="h2"}').json()["modes"] == ["cpu"],
                     "modes of host h2")
        aptest.check(agg.query("/api/v1/label-values", expect=400).status == 400,
                     "label-values without a name")
        # nothing selected: empty lists, not errors
        none = '{host="no-such-host"}'
        aptest.check(agg.query("/api/v1/label-values", name="nope").json() == {"values": []},
                     "values of an unknown label")
        aptest.check(agg.query("/api/v1/labels", query=none).json() == {"names": []},
                     "labels of nothing")
        aptest.check(agg.query("/api/v1/modes", query=none).json() == {"modes": []},
                     "modes of nothing")
        aptest.check(agg.folded('{mode="cpu",host="no-such-host"}') == {}, "profile of nothing")

        # several modes, none named: 400 listing them
        res = agg.query("/api/v1/profile", query='{host="h1"}', expect=400)
        msg = res.json()["message"]
        aptest.check("cpu" in msg and "lock" in msg, f"multi-mode error lists the modes: {msg}")
        aptest.check(agg.query("/api/v1/flamegraph", query="", expect=400).status == 400,
                     "flamegraph over several modes")

        # matchers and totals
        cases = {'{mode="cpu"}': (80, 120), '{mode="cpu",host="h1"}': (70, 30),
                 '{mode="cpu",host!="h1"}': (10, 90), '{mode="cpu",host=~"h[12]"}': (80, 120),
                 '{mode="cpu",host!~"h1|h3"}': (10, 90), 'cpu{env="prod"}': (70, 30)}
        for sel, (hot, cold) in cases.items():
            got = leaf_totals(agg.folded(sel))
            aptest.check(got == {"hot": hot, "cold": cold}, f"{sel}: {got}")

        # time ranges: relative, RFC 3339, unix s/ms/ns
        since = now - 10 * 60 * NS
        rfc = datetime.datetime.fromtimestamp(since / NS, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        for frm in ("now-10m", rfc, str(since // NS), str(since // 1_000_000), str(since)):
            got = leaf_totals(agg.folded('{mode="cpu"}', **{"from": frm}))
            aptest.check(got == {"hot": 10, "cold": 90}, f"from={frm}: {got}")
        got = leaf_totals(agg.folded('{mode="cpu"}', **{"from": "now-2h", "until": "now-20m"}))
        aptest.check(got == {"hot": 70, "cold": 30}, f"until=now-20m: {got}")

        # series: 60 s steps over the hour, sums per step
        se = agg.query("/api/v1/series", query='{mode="cpu"}', step="60s").json()
        aptest.check(se["mode"] == "cpu" and se["step_ms"] == 60000, f"series head {se}")
        vi = se["value_types"].index("samples/count")
        nonzero = [p for p in se["points"] if p[1 + vi]]
        aptest.check(sum(p[1 + vi] for p in se["points"]) == 200, f"series total {se}")
        aptest.check(len(nonzero) == 2, f"two steps with samples: {nonzero}")
        aptest.check(55 <= len(se["points"]) <= 62, f"every step listed: {len(se['points'])}")
        for ts in (t1, t2):
            aptest.check(any(p[0] * 1_000_000 <= ts < (p[0] + 60000) * 1_000_000 for p in nonzero),
                         f"a step holds {ts}: {nonzero}")

        # formats
        for fmt, probe in (("json", b"aperture-profile"), ("svg", b"<svg"), ("text", b"hot"),
                           ("folded", b"hot 80")):
            res = agg.query("/api/v1/profile", query='{mode="cpu"}', format=fmt)
            aptest.check(probe in res.body, f"format {fmt}: {res}")
        res = agg.query("/api/v1/profile", query='{mode="cpu"}')
        raw = gzip.decompress(res.body)
        aptest.check(b"hot" in raw and b"cold" in raw, "pprof (default) is gzipped with names")
        res = agg.query("/debug/pprof/profile", query='{mode="cpu"}', seconds="3600")
        aptest.check(res.body[:2] == b"\x1f\x8b", "/debug/pprof/profile is gzipped pprof")
        res = agg.query("/api/v1/profile", query='{mode="cpu"}', format="text", value="nope",
                        expect=400)
        aptest.check("samples" in res.json()["message"], f"unknown value lists types: {res}")

        # go tool pprof reads the route directly (has_functions: no symbolization round trip)
        go = shutil.which("go")
        if go:
            env = dict(os.environ, HOME=agg.dir, PPROF_TMPDIR=agg.dir, GOFLAGS="", GOTOOLCHAIN="local")
            url = f"{agg.url}/api/v1/profile?query=%7Bmode%3D%22cpu%22%7D&from=now-1h"
            res = subprocess.run([go, "tool", "pprof", "-top", url], capture_output=True,
                                 text=True, timeout=120, env=env)
            out = res.stdout + res.stderr
            aptest.check(res.returncode == 0, f"go tool pprof failed: {out}")
            for fn in ("hot", "cold", "work", "main"):
                aptest.check(fn in res.stdout, f"go tool pprof -top lacks {fn}: {out}")
            aptest.check("symbol" not in res.stderr.lower(), f"pprof tried to symbolize: {out}")
            # the bare address: /debug/pprof/profile, the CPU profile of the last -seconds
            res = subprocess.run([go, "tool", "pprof", "-top", "-seconds", "3600", agg.url],
                                 capture_output=True, text=True, timeout=120, env=env)
            out = res.stdout + res.stderr
            aptest.check(res.returncode == 0 and "hot" in res.stdout and "take_lock" not in
                         res.stdout, f"go tool pprof {agg.url}: {out}")
        else:
            print("note: go not installed, go tool pprof not checked")

        # flamegraph JSON
        fg = agg.query("/api/v1/flamegraph", query='{mode="cpu"}').json()
        aptest.check(fg["names"][0] == "total" and fg["total"] == 200, f"flamegraph {str(fg)[:300]}")
        aptest.check("hot" in fg["names"] and len(fg["levels"]) >= 4, f"flamegraph levels {fg}")

        # a client that takes gzip gets large answers gzipped, the same bytes inside
        many = "".join(f"app;main;f{i};g{i} {i + 1}\n" for i in range(300))
        agg.push(pprof_from_folded(agg.dir, many), {"mode": "cpu", "host": "hz"})
        params = {"query": '{mode="cpu",host="hz"}'}
        plain = agg.request("GET", "/api/v1/flamegraph", params=params)
        z = agg.request("GET", "/api/v1/flamegraph", params=params,
                        headers={"Accept-Encoding": "gzip, deflate"})
        aptest.check(plain.status == 200 and "content-encoding" not in plain.headers
                     and len(plain.body) > 4096, f"plain flamegraph {plain.headers}")
        aptest.check(z.headers.get("content-encoding") == "gzip" and len(z.body) < len(plain.body)
                     and gzip.decompress(z.body) == plain.body, f"gzipped flamegraph {z.headers}")

        # diff of two known profiles: h1 (base) -> h2 (comparison), absolute
        d = agg.query("/api/v1/diff", query='{mode="cpu",host="h1"}', to_query='{mode="cpu",host="h2"}',
                      format="json", normalize="0").json()
        aptest.check(d["base_total"] == 100 and d["cmp_total"] == 100, f"diff totals {d}")
        fn = {f["name"]: f for f in d["functions"]}
        aptest.check(fn["hot"]["base_self"] == 70 and fn["hot"]["cmp_self"] == 10, f"hot {fn}")
        aptest.check(fn["cold"]["base_self"] == 30 and fn["cold"]["cmp_self"] == 90, f"cold {fn}")
        # the same two ranges of one query
        d = agg.query("/api/v1/diff", query='{mode="cpu"}', **{"from": "now-1h", "until": "now-20m",
                      "to_from": "now-20m", "to_until": "now"}, format="json", normalize="0").json()
        fn = {f["name"]: f for f in d["functions"]}
        aptest.check(fn["hot"]["base_self"] == 70 and fn["hot"]["cmp_self"] == 10, f"by time {fn}")
        res = agg.query("/api/v1/diff", query='{mode="cpu"}', to_query='{mode="lock"}', expect=400)
        aptest.check("lock" in res.json()["message"], f"diff across modes: {res}")
        for fmt in ("flamegraph", "text", "folded", "svg"):
            agg.query("/api/v1/diff", query='{mode="cpu",host="h1"}',
                      to_query='{mode="cpu",host="h2"}', format=fmt)

        # syscall tables from two pushes, merged
        report = {"mode": "syscall", "arch": "x86_64", "hist_scale": "log2", "entries": [
            {"pid": 42, "comm": "ap_sys", "name": "openat", "nr": 257, "abi": "x86_64",
             "count": 40, "noreturn": 0, "error_count": 30, "errors": {"ENOENT": 30},
             "total_ns": 200000, "slow": 1,
             "hist": [{"low_ns": 1024, "high_ns": 2048, "count": 30},
                      {"low_ns": 65536, "high_ns": 131072, "count": 10}]}]}
        for _ in range(2):
            agg.push(pprof_from_folded(agg.dir, "ap_sys;syscall:openat 40\n"),
                     {"mode": "syscall", "host": "h1"}, tables=report)
        tb = agg.query("/api/v1/tables", query='{mode="syscall"}').json()
        aptest.check(tb["mode"] == "syscall" and len(tb["syscalls"]) == 1, f"tables {tb}")
        s = tb["syscalls"][0]
        aptest.check(s["name"] == "openat" and s["calls"] == 80 and s["errors"] == 60
                     and s["total_ns"] == 400000 and s["avg_ns"] == 5000 and s["slow"] == 2,
                     f"merged syscall row {s}")
        aptest.check(s["errnos"] == {"ENOENT": 60}, f"errnos {s}")
        aptest.check(1024 <= s["p50_ns"] < 2048, f"p50 in the 1-2us slot: {s}")
        aptest.check(65536 <= s["p99_ns"] < 131072, f"p99 in the 64-128us slot: {s}")

        # lock tables: a lock row with its holders, summed over two pushes
        hist = [0] * 64
        hist[12] = 3  # waits in [4096, 8192) ns
        hist[20] = 1  # one in [1 Mi, 2 Mi) ns
        lock = {"format": "aperture-lock-report", "mode": "lock", "locks": [
            {"kind": "mutex", "name": "app_state_lock", "addr": "0x1000", "comm": "app",
             "pid": 7, "contentions": 4, "wait_ns_total": 1100000, "hist": hist,
             "holders": [{"comm": "writer", "count": 3, "wait_ns": 900000},
                         {"comm": "reader", "count": 1, "wait_ns": 200000}]}]}
        for _ in range(2):
            agg.push(pprof_from_folded(agg.dir, "app;main;lock_wait 4\n"),
                     {"mode": "lock", "host": "h3"}, tables=lock)
        tb = agg.query("/api/v1/tables", query='{mode="lock",host="h3"}').json()
        aptest.check(tb["mode"] == "lock" and tb["syscalls"] == [] and len(tb["locks"]) == 1,
                     f"lock tables {tb}")
        lk = tb["locks"][0]
        aptest.check(lk["kind"] == "mutex" and lk["name"] == "app_state_lock"
                     and lk["contentions"] == 8 and lk["wait_ns"] == 2200000, f"lock row {lk}")
        aptest.check(4096 <= lk["p50_ns"] < 8192 and (1 << 20) <= lk["p99_ns"] < (2 << 20),
                     f"lock p50/p99 from the merged histogram: {lk}")
        holders = {h["comm"]: (h["count"], h["wait_ns"]) for h in lk["holders"]}
        aptest.check(holders == {"writer": (6, 1800000), "reader": (2, 400000)},
                     f"holders {lk['holders']}")

        # the agent's own counters, shown in /metrics by host (the last value pushed)
        for ok in (4, 5):
            agg.push(pprof_from_folded(agg.dir, "app;main;x 1\n"), {"mode": "cpu", "host": "h9"},
                     agent={"pushes_ok": ok, "spool_bytes": 1234})
        v = agg.metric("aperture_agent_counter", host="h9", name="pushes_ok")
        aptest.check(v == 5, f"agent counter pushes_ok of h9: {v}")
        v = agg.metric("aperture_agent_counter", host="h9", name="spool_bytes")
        aptest.check(v == 1234, f"agent counter spool_bytes of h9: {v}")
        lat = agg.metrics()
        n = sum(v for k, v in lat.items() if k[0] == "aperture_query_duration_seconds_count")
        aptest.check(n >= 30, f"query latency histogram counts the queries: {n}")
    print("PASS")


if __name__ == "__main__":
    main()
