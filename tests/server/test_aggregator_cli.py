#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""aperture-aggregator's command line: --help, every bad flag refused with exit 2 and a
message naming it, the web UI placeholder, and a SIGTERM that lets a request in flight finish
(exit 0)."""
import http.client
import signal
import subprocess
import time
import urllib.parse

import aptest
from aggregator import BIN, Aggregator, pprof_from_folded, push_request


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)


def main():
    res = run("--help")
    aptest.check(res.returncode == 0 and "--listen" in res.stdout and "--retention" in res.stdout,
                 f"--help: {res.returncode} {res.stdout[:200]}")
    bad = [(["--listen", "localhost"], "--listen"), (["--listen", "1.2.3.4:99999"], "--listen"),
           (["--retention", "7x"], "--retention"), (["--max-body", "-1"], "--max-body"),
           (["--threads", "0"], "--threads"), (["--tls-cert", "x.pem"], "--tls-key"),
           (["--storage", "nowhere"], "--storage"), (["--frobnicate"], "--frobnicate"),
           (["extra"], "extra"), (["--listen"], "--listen")]
    for args, word in bad:
        res = run(*args)
        aptest.check(res.returncode == 2, f"{args}: exit {res.returncode}, expected 2")
        aptest.check(word in res.stderr and "--help" in res.stderr, f"{args}: {res.stderr!r}")
    res = run("--listen", "127.0.0.1:0", "--storage", "mongodb://x")
    aptest.check(res.returncode == 1 and "sqlite:" in res.stderr and "clickhouse://" in res.stderr,
                 f"unknown backend: {res.returncode} {res.stderr!r}")
    # a known backend with a bad spec: what is wrong and the form to use
    res = run("--listen", "127.0.0.1:0", "--storage", "clickhouse://x")
    aptest.check(res.returncode == 1 and "no database" in res.stderr
                 and "clickhouse://HOST:PORT/DB" in res.stderr,
                 f"bad clickhouse spec: {res.returncode} {res.stderr!r}")

    with Aggregator() as agg:
        res = agg.get("/")
        aptest.check(res.status in (200, 404), f"GET / {res}")
        if res.status == 404:
            aptest.check("web UI not built" in res.json()["message"], f"GET / {res}")
        else:
            aptest.check("html" in res.headers.get("content-type", ""), f"GET / {res.headers}")

        # a push whose body arrives slowly is in flight when SIGTERM comes: it still gets
        # its answer, then the process exits 0
        pb = pprof_from_folded(agg.dir, "app;main;late 3\n")
        params, body, ctype = push_request(pb, {"mode": "cpu", "host": "slow"})
        conn = http.client.HTTPConnection("127.0.0.1", agg.port, timeout=30)
        conn.putrequest("POST", "/api/v1/push?" + urllib.parse.urlencode(params))
        conn.putheader("Content-Type", ctype)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body[:100])
        time.sleep(0.5)
        agg.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        aptest.check(agg.proc.poll() is None, "exited with a request in flight")
        conn.send(body[100:])
        resp = conn.getresponse()
        aptest.check(resp.status == 200, f"in-flight push answered {resp.status}")
        conn.close()
        rc = agg.proc.wait(timeout=20)
        aptest.check(rc == 0, f"exit {rc} after SIGTERM\n{agg.log()}")
        # new connections are refused once it stops accepting; the data is there
        agg.start()
        got = agg.folded('{mode="cpu",host="slow"}')
        aptest.check(sum(got.values()) == 3, f"the in-flight push was stored: {got}")
    print("PASS")


if __name__ == "__main__":
    main()
