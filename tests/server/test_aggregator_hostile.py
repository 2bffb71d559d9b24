#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile HTTP: malformed request lines, broken chunked bodies, absurd headers, odd
Authorization values, NUL and invalid UTF-8 in query strings, selectors and times, truncated
and garbled multipart pushes, abandoned connections -- several hundred of them from a fixed
seed. The aggregator answers each with an error or closes the connection, never crashes
(nor, in the sanitizer build, reports anything), and afterwards still stores and answers."""
import os
import random
import socket

import aptest
from aggregator import Aggregator, pprof_from_folded, push_request

SEED = 11


def raw(agg, data, read=True):
    """Send bytes on a fresh connection; return the first answer (b"" when it hung up).
    Reads up to the end of that answer (its Content-Length), as a keep-alive connection
    stays open after it."""
    s = socket.create_connection(("127.0.0.1", agg.port), timeout=3)
    try:
        s.sendall(data)
        if not read:
            return b""
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            head, sep, rest = out.partition(b"\r\n\r\n")
            if sep:
                n = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        n = int(v)
                if len(rest) >= n:
                    return out
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                return out
            if not chunk:
                return out
            out += chunk
    except (BrokenPipeError, ConnectionResetError):
        return b""
    finally:
        s.close()


def main():
    rng = random.Random(SEED)
    with Aggregator(ingest_token="in-tok", read_token="rd-tok", max_body="256K") as agg:
        pb = pprof_from_folded(agg.dir, "app;main;survivor 5\n")
        params, body, ctype = push_request(pb, {"mode": "cpu", "host": "h"})
        import urllib.parse
        qs = urllib.parse.urlencode(params)
        # Connection: close, so that the end of the answer is the end of the stream
        good_head = (f"POST /api/v1/push?{qs} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     f"Authorization: Bearer in-tok\r\nContent-Type: {ctype}\r\n")
        cases = [
            b"\r\n\r\n", b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
            b"GET /" + b"a" * 300000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 300000 + b"\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(5000)) + b"\r\n",
            b"POST /api/v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer in-tok\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n",
            b"POST /api/v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer in-tok\r\n"
            b"Content-Length: -5\r\n\r\n",
            b"POST /api/v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer in-tok\r\n"
            b"Content-Length: 99999999999999999999999\r\n\r\n",
            b"POST /api/v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer in-tok\r\n"
            b"Content-Length: 100\r\n\r\nshort",
            b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \r\n\r\n",
            b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + b"=" * 5000 + b"\r\n\r\n",
            b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n\r\n",
            b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"r" * 10000 + b"\r\n\r\n",
            b"GET /api/v1/labels?query=%00%ff%fe&from=%00 HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer rd-tok\r\n\r\n",
            b"GET /api/v1/profile?query=%7Bmode%3D~%22(((((%22%7D HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer rd-tok\r\n\r\n",
            b"GET /api/v1/series?query=cpu&step=1ns&from=0 HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer rd-tok\r\n\r\n",
            b"GET /api/v1/series?query=cpu&from=9999999999999999999&until=now HTTP/1.1\r\n"
            b"Host: x\r\nAuthorization: Bearer rd-tok\r\n\r\n",
            b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
            (good_head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:len(body) // 2],
        ]
        for c in cases:
            out = raw(agg, c)
            aptest.check(out == b"" or out.startswith(b"HTTP/1."), f"odd answer to {c[:80]!r}: {out[:200]!r}")
            aptest.check(b"root:" not in out, "a path outside the UI was served")
        # random corruption of a good push: flipped bytes in the body, truncations
        for i in range(150):
            b = bytearray(body)
            for _ in range(rng.randint(1, 20)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            if rng.random() < 0.3:
                b = b[:rng.randrange(len(b))]
            req = (good_head + f"Content-Length: {len(b)}\r\n\r\n").encode() + bytes(b)
            out = raw(agg, req)
            aptest.check(out.startswith(b"HTTP/1.1 200") or out.startswith(b"HTTP/1.1 400")
                         or out.startswith(b"HTTP/1.1 413") or out == b"",
                         f"corrupt push {i} answered {out[:200]!r}")
        # random bytes as whole requests, and connections that go away mid-request
        for i in range(150):
            if rng.random() < 0.5:
                # random bytes ending a request head, so that it is answered now
                out = raw(agg, os.urandom(rng.randint(1, 4000)) + b"\r\n\r\n")
                aptest.check(out == b"" or out.startswith(b"HTTP/1.1 4"),
                             f"random bytes answered {out[:200]!r}")
            else:  # a body cut short, then the client goes away
                raw(agg, (good_head + "Content-Length: 5000\r\n\r\n").encode()
                    + bytes(rng.randint(0, 4999)), read=False)
        # still alive, still storing and answering
        aptest.check(agg.get("/healthz", token=False).status == 200, "alive after the storm")
        agg.push(pb, {"mode": "cpu", "host": "after"})
        got = agg.folded('{mode="cpu",host="after"}')
        aptest.check(sum(got.values()) == 5, f"stores after the storm: {got}")
        m = agg.metrics()
        aptest.check(m.get(("aperture_refusals_total", (("reason", "malformed"),)), 0) > 0,
                     "malformed pushes counted")
        agg.stop()  # exit 0, and a sanitizer report in the log would fail here
    print("PASS")


if __name__ == "__main__":
    main()
