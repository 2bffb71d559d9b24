#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tokens: ingest and read tokens kept apart (401 unknown or none, 403 the other kind), Bearer
and Basic both work, /healthz and /metrics stay open, every refusal is counted by reason in
/metrics, no token ever reaches the log, and bad token files stop the start with a clear
message."""
import os
import subprocess
import tempfile

import aptest
from aggregator import BIN, Aggregator, pprof_from_folded, write_token

INGEST, READ = "ing-3f9a1c77e2b04d5a", "read-8b21d0c4a9e6f713"
SEL = '{mode="cpu"}'


def main():
    with Aggregator(ingest_token=INGEST, read_token=READ) as agg:
        pb = pprof_from_folded(agg.dir, "app;main;hot 7\n")
        # ingest side
        agg.push(pb, {"mode": "cpu", "host": "a"}, token=False, expect=401)
        agg.push(pb, {"mode": "cpu", "host": "a"}, token="nope", expect=401)
        agg.push(pb, {"mode": "cpu", "host": "a"}, token=READ, expect=403)
        agg.push(pb, {"mode": "cpu", "host": "a"}, basic="nope", expect=401)
        agg.push(pb, {"mode": "cpu", "host": "a"}, basic=READ, expect=403)
        res = agg.push(pb, {"mode": "cpu", "host": "a"}, token=INGEST)
        aptest.check(res.json() == {"status": "stored"}, f"push answered {res}")
        agg.push(pb, {"mode": "cpu", "host": "b"}, basic=INGEST)
        # read side
        for kw, want in (({"token": False}, 401), ({"token": "nope"}, 401),
                         ({"token": INGEST}, 403), ({"basic": INGEST}, 403),
                         ({"token": READ}, 200), ({"basic": READ}, 200)):
            res = agg.get("/api/v1/labels", query=SEL, **kw)
            aptest.check(res.status == want, f"labels with {kw}: {res}, expected {want}")
            if want != 200:
                msg = res.json()["message"]
                aptest.check(res.json()["code"] == want and msg, f"error body {res}")
                aptest.check(INGEST not in msg and READ not in msg, f"token in the answer: {msg}")
        res = agg.get("/api/v1/profile", query=SEL, format="folded", token=READ)
        aptest.check(res.status == 200 and "hot 14" in res.text(),
                     f"both pushes stored: {res}")
        # open routes
        aptest.check(agg.get("/healthz", token=False).status == 200, "/healthz is open")
        aptest.check(agg.get("/metrics", token=False).status == 200, "/metrics is open")
        # a 401 tells the client how to authenticate
        res = agg.get("/api/v1/modes", token=False)
        aptest.check("www-authenticate" in res.headers, f"401 without WWW-Authenticate: {res.headers}")
        # counted by reason: 401s = 3 push + 2 labels + 1 modes; 403s = 2 push + 2 labels
        unauth = agg.metric("aperture_refusals_total", reason="unauthorized")
        forb = agg.metric("aperture_refusals_total", reason="forbidden")
        aptest.check(unauth == 6, f"unauthorized refusals counted {unauth}, expected 6")
        aptest.check(forb == 4, f"forbidden refusals counted {forb}, expected 4")
        aptest.check(agg.metric("aperture_ingest_refusals_total", route="push",
                                reason="unauthorized") == 3, "push 401s by route")
        aptest.check(agg.metric("aperture_ingest_requests_total", route="push",
                                result="stored") == 2, "stored pushes counted")
        agg.stop()
        log = agg.log()
        aptest.check("/api/v1/push" in log, "the -v log has the requests")
        for tok in (INGEST, READ):
            aptest.check(tok not in log, f"token {tok} appears in the log")

    # token files the aggregator refuses, each with a message naming the file
    d = tempfile.mkdtemp(prefix="ap-agg-tok-")
    empty = write_token(os.path.join(d, "empty"), "  ")
    loose = write_token(os.path.join(d, "loose"), "abc")
    os.chmod(loose, 0o666)
    cases = [(empty, "empty"), (loose, "writable"), (os.path.join(d, "missing"), "missing")]
    if os.geteuid() != 0:
        unreadable = write_token(os.path.join(d, "unreadable"), "abc")
        os.chmod(unreadable, 0)
        cases.append((unreadable, "unreadable"))
    for path, what in cases:
        for flag in ("--ingest-token-file", "--read-token-file"):
            res = subprocess.run([BIN, "--listen", "127.0.0.1:0", "--storage",
                                  f"sqlite:{d}/x.db", flag, path], capture_output=True,
                                 text=True, timeout=30)
            aptest.check(res.returncode == 2, f"{flag} {what}: exit {res.returncode}, expected 2 "
                         f"({res.stderr})")
            aptest.check(path in res.stderr and flag in res.stderr,
                         f"{flag} {what}: message does not name the file: {res.stderr}")
    print("PASS")


if __name__ == "__main__":
    main()
