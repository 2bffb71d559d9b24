# SPDX-License-Identifier: MIT
"""Agent -> aggregator over TLS, with a certificate this test makes (openssl req -x509, subject
alternative name IP:127.0.0.1; the aggregator's --tls-cert/--tls-key, the agent's --ca-file).

1. The right CA: a real aperture-agent in continuous mode records ap_syscalls (exact getppid()
   counts) and ap_chain (cpu) and pushes every second over https; the stored totals equal the
   calls made, exactly, and the CPU samples the agent says it recorded.
2. A wrong CA (another self-signed certificate): the agent refuses the server (its log says
   why: the certificate), stores nothing there, and keeps the interval in its spool on disk.
3. Fixed: an agent with the right CA and the same spool delivers the spooled push at start;
   the totals of step 2's workload then equal its calls, exactly (nothing lost, nothing twice).
"""
import os
import shutil
import signal
import tempfile
import time

from aggregator import Aggregator, make_cert
from aptest import check, require_bpf, skip
from e2e_lib import (N_FAST, Agent, Workload, agent_recorded, getppid_total, merged_total,
                     spool_files, start_chain)


def main():
    require_bpf()
    if not shutil.which("openssl"):
        skip("needs openssl to make the test certificates")
    tmp = tempfile.mkdtemp(prefix="aperture-e2e-tls-")
    agg, agents, works = None, [], []
    try:
        # the aggregator's own: self-signed, subjectAltName IP:127.0.0.1 (openssl req -x509)
        os.makedirs(os.path.join(tmp, "agg"))
        agg = Aggregator(tls=True, directory=os.path.join(tmp, "agg")).start()
        cert = agg.cert
        os.makedirs(os.path.join(tmp, "other"))
        wrong, _ = make_cert(os.path.join(tmp, "other"))
        check(agg.url.startswith("https://"), agg.url)
        t0 = time.time() - 5

        # 1. the right CA
        w1 = Workload()
        works.append(w1)
        chain, chain_pid = start_chain()
        works.append(chain)
        spool1 = os.path.join(tmp, "spool1")
        a = Agent(["--mode", "cpu,syscall", "--pid", w1.pid, "--pid", chain_pid, "--server",
                   agg.url, "--ca-file", cert,
                   "--push-interval", "1s", "--spool-dir", spool1, "--label", "e2e=tls"])
        agents.append(a)
        for _ in range(3):
            w1.round()
            time.sleep(1.2)
        rc = a.stop()
        check(rc == 0, f"agent exited {rc}:\n{a.err[-3000:]}")
        fg, table = getppid_total(agg, w1.pid, t0, time.time() + 5)
        want = w1.rounds * N_FAST
        print(f"right CA: workload {want} getppid; merged profile {fg}, syscall table {table}")
        check(fg == want, f"over TLS the merged profile holds {fg} getppid calls, the workload "
              f"made {want}\nagent log:\n{a.err[-3000:]}\n"
              f"aggregator log:\n{agg.log()[-3000:]}")
        check(table == want, f"over TLS the syscall table says {table} calls, want {want}")
        check(not spool_files(spool1), f"pushes left in the spool: {spool_files(spool1)}")
        value, recorded = agent_recorded(a.err, "cpu")
        stored = merged_total(agg, '{mode="cpu",e2e="tls"}', value, t0, time.time() + 5)
        print(f"right CA: cpu: agent recorded {recorded} {value}, stored {stored}")
        check(recorded > 0 and stored == recorded,
              f"over TLS the aggregator holds {stored} cpu {value}, the agent recorded {recorded}")

        # 2. a wrong CA: refused, spooled
        w2 = Workload()
        works.append(w2)
        spool2 = os.path.join(tmp, "spool2")
        a = Agent(["--mode", "syscall", "--pid", w2.pid, "--server", agg.url, "--ca-file", wrong,
                   "--push-interval", "1s", "--spool-dir", spool2, "--shutdown-timeout", "2s"])
        agents.append(a)
        w2.round()
        time.sleep(2.5)
        rc = a.stop()
        print(f"wrong CA: agent exited {rc}; spool {spool_files(spool2)}")
        check("stay in the spool" in a.err, f"the agent does not say what it left in its spool "
              f"for the next start:\n{a.err[-3000:]}")
        check("certificate" in a.err.lower() or "ssl" in a.err.lower(),
              f"the agent's log does not say the server's certificate was refused:\n"
              f"{a.err[-3000:]}")
        check(spool_files(spool2), f"a wrong CA left nothing in the spool:\n{a.err[-3000:]}")
        rng = {"from": str(int(t0)), "until": str(int(time.time()) + 5)}
        got = agg.query("/api/v1/flamegraph", query=f'{{pid="{w2.pid}"}}', **rng).json()
        check(got["total"] == 0, f"a server whose certificate the agent does not trust got "
              f"{got['total']} of the agent's data")

        # 3. fixed: the spool is delivered, exactly once
        a = Agent(["--mode", "syscall", "--pid", w2.pid, "--server", agg.url, "--ca-file", cert,
                   "--push-interval", "1s", "--spool-dir", spool2])
        agents.append(a)
        deadline = time.monotonic() + 30
        while spool_files(spool2) and time.monotonic() < deadline:
            time.sleep(0.5)
        rc = a.stop()
        check(rc == 0, f"agent exited {rc}:\n{a.err[-3000:]}")
        check(not spool_files(spool2), f"spool not delivered: {spool_files(spool2)}\n"
              f"{a.err[-3000:]}")
        fg, table = getppid_total(agg, w2.pid, t0, time.time() + 5)
        want = w2.rounds * N_FAST
        print(f"fixed CA: workload {want} getppid; merged profile {fg}, syscall table {table}")
        check(fg == want, f"after fixing the CA the merged profile holds {fg} getppid calls, "
              f"the workload made {want}\nagent log:\n{a.err[-3000:]}")
        check(table == want, f"after fixing the CA the syscall table says {table}, want {want}")
        print("ok: TLS push with a test CA, a wrong CA refused and spooled, then delivered")
    finally:
        for a in agents:
            if a.proc.poll() is None:
                a.proc.kill()
                a.proc.wait()
        for w in works:
            if hasattr(w, "close"):
                w.close()
            else:
                w.kill()
                w.wait()
        if agg and agg.proc:
            agg.kill(signal.SIGTERM)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
