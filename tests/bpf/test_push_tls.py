# SPDX-License-Identifier: MIT
"""Pushes over HTTPS: with --ca-file naming the CA of a certificate the test makes (openssl),
the agent delivers; without it (the system's CAs do not know that CA) every attempt fails
the TLS check and the pushes wait in the spool."""
import os
import ssl
import subprocess
import tempfile
import time

from aptest import check, require_bpf, skip, start_workload, wait_all
from push_lib import Server, counters, start_agent, stop_agent, summary

require_bpf()
ENV = dict(os.environ, AP_TEST_PUSH_BACKOFF_MIN_MS="200", AP_TEST_PUSH_BACKOFF_MAX_MS="1000")


def make_cert(d):
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    def run(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=aperture test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return os.path.join(d, "ca.pem"), os.path.join(d, "srv.pem"), os.path.join(d, "srv.key")


with tempfile.TemporaryDirectory() as tmp:
    try:
        ca, cert, key = make_cert(tmp)
    except (OSError, subprocess.CalledProcessError) as e:
        skip(f"cannot make a test certificate with openssl: {e}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = Server().start(ssl_ctx=ctx)
    url = f"https://127.0.0.1:{srv.port}"
    wl, pid = start_workload("ap_chain", 60)

    # trusted through --ca-file
    agent = start_agent("-m", "cpu", "--server", url, "--push-interval", "1s", "--ca-file", ca,
                        "--spool-dir", os.path.join(tmp, "spool1"), "-p", pid, env=ENV)
    srv.wait_for(lambda: len(srv.stored()) >= 2, 30, "pushes over TLS")
    err = stop_agent(agent)
    intervals, _, recorded = summary(err, "cpu")
    check(len(srv.stored()) == intervals, f"{len(srv.stored())} stored of {intervals}")
    check(sum(p.total() for p in srv.stored()) == recorded, "TLS totals differ")

    # not trusted: nothing delivered, all spooled
    n = len(srv.stored())
    spool = os.path.join(tmp, "spool2")
    agent = start_agent("-m", "cpu", "--server", url, "--push-interval", "1s",
                        "--spool-dir", spool, "--shutdown-timeout", "1s", "-p", pid, env=ENV)
    time.sleep(2.5)
    err = stop_agent(agent)
    check(len(srv.stored()) == n, "a push went to a server whose certificate is not trusted")
    c = counters(err)
    check(c["ok"] == 0 and c["failed"] >= 1 and c["spool_files"] >= 1, f"counters {c}")
    check("certificate" in err.lower() or "ssl" in err.lower(), f"no TLS reason:\n{err}")
    wl.kill()
    wait_all([wl])
    srv.stop()
print("PASS")
