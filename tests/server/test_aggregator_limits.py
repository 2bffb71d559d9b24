#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Limits and bad input: a body over --max-body is refused with 413 from its Content-Length
(before the body is read; the client that sent only the headers gets the answer) and when sent
chunked (read and dropped to its end); a gzip bomb gets 413; too many or too long
labels 400; a malformed pprof 400 with the reason; every refusal counted by reason in
/metrics; after all of it the aggregator still stores and answers."""
import http.client
import os
import socket

import aptest
from aggregator import Aggregator, gzip_bomb, pprof_from_folded, push_request

MAX_BODY = 256 * 1024


def refusals(agg):
    m = agg.metrics()
    return {dict(k[1])["reason"]: v for k, v in m.items() if k[0] == "aperture_refusals_total"}


def chunked_push(agg, body, ctype, params):
    """POST with Transfer-Encoding: chunked (no Content-Length)."""
    import urllib.parse
    conn = http.client.HTTPConnection("127.0.0.1", agg.port, timeout=60)
    path = "/api/v1/push?" + urllib.parse.urlencode(params)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", ctype)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for i in range(0, len(body), 65536):
            piece = body[i:i + 65536]
            conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may hang up once it has refused
    try:
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (http.client.HTTPException, ConnectionResetError):
        return None, b""
    finally:
        conn.close()


def main():
    with Aggregator(max_body=MAX_BODY) as agg:
        pb = pprof_from_folded(agg.dir, "app;main;hot 10\n")
        labels = {"mode": "cpu", "host": "h1"}

        # 1. Content-Length over the limit: 413 without reading the body. The client sends
        # the headers only and still gets its answer.
        params, body, ctype = push_request(pb + os.urandom(MAX_BODY), labels)
        s = socket.create_connection(("127.0.0.1", agg.port), timeout=30)
        import urllib.parse
        s.sendall((f"POST /api/v1/push?{urllib.parse.urlencode(params)} HTTP/1.1\r\n"
                   f"Host: x\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n")
                  .encode())
        head = s.recv(65536).decode(errors="replace")
        s.close()
        aptest.check(head.startswith("HTTP/1.1 413"), f"early 413 expected, got {head[:200]!r}")
        aptest.check("--max-body" in head, f"413 names the flag: {head!r}")

        # 3. chunked, no Content-Length: refused once the limit is passed
        status, _ = chunked_push(agg, body, ctype, params)
        aptest.check(status == 413, f"chunked body over the limit answered {status}")

        # 4. a gzip bomb (64 MiB of zeros in ~64 KiB) as the profile: 413
        bomb = gzip_bomb(64 << 20)
        aptest.check(len(bomb) < MAX_BODY, "the bomb fits the body limit")
        res = agg.push(bomb, labels, expect=None)
        aptest.check(res.status == 413, f"gzip bomb answered {res}")
        aptest.check("inflat" in res.json()["message"], f"bomb reason: {res}")

        # 5. too many labels, a label too long
        many = {"mode": "cpu", **{f"k{i}": "v" for i in range(40)}}
        res = agg.push(pb, many, expect=400)
        aptest.check("labels" in res.json()["message"], f"too many labels: {res}")
        res = agg.push(pb, {"mode": "cpu", "big": "x" * 5000}, expect=400)
        aptest.check("long" in res.json()["message"], f"label too long: {res}")

        # 6. malformed pprof: 400 with the decoder's reason
        res = agg.push(b"\x0a\xff\xff\xff\xff\x0fgarbage" * 10, labels, expect=400)
        msg = res.json()["message"]
        aptest.check(len(msg) > 20 and "profile" in msg, f"malformed pprof reason: {msg}")
        # and a push without its push_id
        params, body, ctype = push_request(pb, labels)
        params = [p for p in params if p[0] != "push_id"]
        res = agg.request("POST", "/api/v1/push", params=params, body=body,
                          headers={"Content-Type": ctype})
        aptest.check(res.status == 400 and "push_id" in res.json()["message"],
                     f"push without push_id: {res}")

        # 7. routes and methods
        aptest.check(agg.get("/api/v1/nothing").status == 404, "unknown API route 404")
        res = agg.request("GET", "/api/v1/push")
        aptest.check(res.status == 405 and "POST" in res.headers.get("allow", ""),
                     f"GET on push: {res} {res.headers}")
        aptest.check(agg.get("/api/v1/profile", query="{mode=").status == 400,
                     "bad selector 400")
        aptest.check(agg.get("/api/v1/profile", query='{mode="cpu"}', **{"from": "yesterday"})
                     .status == 400, "bad time 400")

        # every refusal counted by reason
        r = refusals(agg)
        want = {"body_too_large": 2, "inflated_too_large": 1, "labels": 2, "malformed": 2,
                "not_found": 1, "method_not_allowed": 1, "bad_query": 2}
        for reason, n in want.items():
            got = r.get(reason, 0)
            aptest.check(got == n, f"refusals[{reason}] = {got}, expected {n}; all: {r}")
        pr = agg.metric("aperture_ingest_refusals_total", route="push", reason="labels")
        aptest.check(pr == 2, f"push refusals by route: labels {pr}")

        # and it still works
        agg.push(pb, labels)
        got = agg.folded('{mode="cpu"}')
        aptest.check(sum(got.values()) == 10, f"one good push stored: {got}")
    print("PASS")


if __name__ == "__main__":
    main()
