#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TLS: with a certificate the test makes (openssl), pushes and queries work over HTTPS and
the certificate is verified; plain HTTP on the TLS port gets no HTTP answer; unreadable,
non-PEM or mismatched certificate/key files stop the start with a clear message."""
import os
import socket
import subprocess

import aptest
from aggregator import BIN, Aggregator, make_cert, pprof_from_folded


def start_fails(args, want):
    res = subprocess.run([BIN, "--listen", "127.0.0.1:0", *args], capture_output=True,
                         text=True, timeout=30)
    aptest.check(res.returncode != 0, f"{args} started")
    aptest.check(want in res.stderr, f"{args}: message {res.stderr!r} lacks {want!r}")


def main():
    with Aggregator(tls=True, ingest_token="i-tok", read_token="r-tok") as agg:
        aptest.check(agg.url.startswith("https://"), agg.url)
        pb = pprof_from_folded(agg.dir, "app;main;tls_hot 9\n")
        agg.push(pb, {"mode": "cpu", "host": "tls"})
        got = agg.folded('{mode="cpu",host="tls"}')
        aptest.check(any(k.endswith("tls_hot") and v == 9 for k, v in got.items()),
                     f"pushed over TLS, read back over TLS: {got}")

        # plain HTTP to the TLS port: no HTTP answer (the handshake fails)
        s = socket.create_connection(("127.0.0.1", agg.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            data = b""
        s.close()
        aptest.check(not data.startswith(b"HTTP/"), f"plain HTTP answered on the TLS port: {data!r}")
        # and a client that checks certificates refuses one it does not trust
        other_dir = os.path.join(agg.dir, "other")
        os.mkdir(other_dir)
        other_cert, _ = make_cert(other_dir)
        import http.client
        import ssl
        ctx = ssl.create_default_context(cafile=other_cert)
        conn = http.client.HTTPSConnection("127.0.0.1", agg.port, timeout=10, context=ctx)
        try:
            conn.request("GET", "/healthz")
            conn.getresponse()
            aptest.fail("a certificate from another CA was accepted")
        except ssl.SSLError:
            pass
        finally:
            conn.close()
        # still serving
        aptest.check(agg.get("/healthz", token=False).status == 200, "TLS healthz after that")

        d = agg.dir
        cert, key = agg.cert, agg.key
        other_key = os.path.join(other_dir, "key.pem")
        store = ["--storage", f"sqlite:{d}/other.db"]
        start_fails([*store, "--tls-cert", cert], "--tls-key")
        start_fails([*store, "--tls-cert", os.path.join(d, "nope.pem"), "--tls-key", key],
                    "nope.pem")
        start_fails([*store, "--tls-cert", agg.log_path, "--tls-key", key], "not PEM")
        start_fails([*store, "--tls-cert", cert, "--tls-key", other_key], "do not match")
    print("PASS")


if __name__ == "__main__":
    main()
