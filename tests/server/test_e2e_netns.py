# SPDX-License-Identifier: MIT
"""Agents on two "hosts" push to one aggregator: two network namespaces (ip netns), each joined
to a bridge on the host by a veth pair, addresses on a private /24. In each namespace a real
aperture-agent runs in continuous mode (in its own UTS namespace too, so that each has its
own hostname, as two machines would: that is where the agent's `host` label comes from) and
records (cpu and syscall modes) ap_chain and ap_syscalls, which makes an exact number of
getppid() calls, pushing every second to the one aggregator listening on the bridge's address.

Checked: both hosts' data arrive, labelled with their own host and --label; for each host the
stored getppid() total (merged profile and syscall table) equals the calls its workload made,
exactly, and nothing of one host is counted under the other; in each mode the host's stored
total equals what its agent says it recorded; no push is left in a spool.
The namespaces, veths and bridge are removed in a finally, even when a check fails."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from aptest import check, fail, require_bpf, skip
from e2e_lib import (N_FAST, Agent, NetAggregator, Workload, agent_recorded, getppid_total,
                     merged_total, spool_files, start_chain)


def ip(*args, check_rc=True):
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check_rc and res.returncode != 0:
        fail(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


def free_subnet():
    """A 10.231.N.0/24 that nothing on this host uses (tests in other trees may run too)."""
    used = ip("-4", "addr").stdout + ip("-4", "route").stdout
    start = os.getpid() % 200
    for k in range(200):
        n = 20 + (start + k) % 200
        if f"10.231.{n}." not in used:
            return f"10.231.{n}"
    skip("no free 10.231.N.0/24 subnet for the test network")


def main():
    require_bpf()
    # a timeout's SIGTERM still removes the namespaces, veths and bridge (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("FAIL: terminated"))
    if not shutil.which("ip") or not shutil.which("unshare"):
        skip("needs ip (iproute2) and unshare (util-linux)")
    tag = os.getpid() % 100000
    bridge = f"apbr{tag}"
    hosts = [("a", f"apns{tag}a", f"apva{tag}", "e2e-host-a", 2),
             ("b", f"apns{tag}b", f"apvb{tag}", "e2e-host-b", 3)]  # rounds differ per host
    tmp = tempfile.mkdtemp(prefix="aperture-e2e-netns-")
    agg, agents, works, chains = None, [], [], []
    made_bridge, made_ns = False, []
    try:
        if ip("netns", "add", f"apns{tag}probe", check_rc=False).returncode != 0:
            skip("cannot create network namespaces here")
        ip("netns", "del", f"apns{tag}probe")
        net = free_subnet()
        ip("link", "add", bridge, "type", "bridge")
        made_bridge = True
        ip("addr", "add", f"{net}.1/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for i, (_, ns, veth, _, _) in enumerate(hosts):
            ip("netns", "add", ns)
            made_ns.append(ns)
            ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}n")
            ip("link", "set", veth, "master", bridge)
            ip("link", "set", veth, "up")
            ip("link", "set", f"{veth}n", "netns", ns)
            ip("-n", ns, "addr", "add", f"{net}.{2 + i}/24", "dev", f"{veth}n")
            ip("-n", ns, "link", "set", f"{veth}n", "up")
            ip("-n", ns, "link", "set", "lo", "up")

        os.makedirs(os.path.join(tmp, "agg"))
        agg = NetAggregator(f"{net}.1", directory=os.path.join(tmp, "agg")).start()
        t0 = time.time() - 5
        for _, ns, veth, hostname, _ in hosts:
            # the aggregator's address is reached over this namespace's veth
            res = ip("-n", ns, "route", "get", f"{net}.1")
            check(f"dev {veth}n" in res.stdout, f"{ns}: {net}.1 not via {veth}n: {res.stdout}")
            netns = ["ip", "netns", "exec", ns]
            w = Workload(netns)
            works.append(w)
            chain, chain_pid = start_chain(netns)
            chains.append(chain)
            # own hostname per "host": a UTS namespace inside the network namespace
            prefix = [*netns, "unshare", "--uts", "sh", "-c",
                      f'hostname {hostname} && exec "$@"', "sh"]
            agents.append(Agent(["--mode", "cpu,syscall", "--pid", w.pid, "--pid", chain_pid,
                                 "--server", agg.url,
                                 "--push-interval", "1s", "--spool-dir",
                                 os.path.join(tmp, f"spool-{ns}"), "--label", f"netns={ns}"],
                                prefix))
        # interleave the hosts' rounds, a push interval apart, so pushes from both overlap
        for r in range(max(h[4] for h in hosts)):
            for (_, _, _, _, rounds), w in zip(hosts, works):
                if r < rounds:
                    w.round()
            time.sleep(1.2)
        for (_, ns, _, _, _), a in zip(hosts, agents):
            rc = a.stop()
            check(rc == 0, f"agent in {ns} exited {rc}:\n{a.err[-3000:]}")
        t1 = time.time() + 5

        names = agg.query("/api/v1/label-values", name="host", query='{mode="syscall"}',
                          **{"from": str(int(t0)), "until": str(int(t1))}).json()
        got_hosts = set(names["values"])
        for _, ns, _, hostname, rounds in hosts:
            check(hostname in got_hosts,
                  f"no data from host {hostname} ({ns}); hosts stored: {sorted(got_hosts)}")
        for (_, ns, _, hostname, rounds), w, a in zip(hosts, works, agents):
            want = rounds * N_FAST
            fg_total, table_calls = getppid_total(agg, w.pid, t0, t1)
            print(f"{hostname} ({ns}): workload {want} getppid, merged profile {fg_total}, "
                  f"syscall table {table_calls}")
            check(fg_total == want, f"{hostname}: merged profile says {fg_total} getppid calls, "
                  f"the workload made {want}\nagent log:\n{a.err[-3000:]}")
            check(table_calls == want, f"{hostname}: syscall table says {table_calls} getppid "
                  f"calls, the workload made {want}")
            by_host = agg.query("/api/v1/flamegraph", value="calls", **{
                "query": f'{{mode="syscall",host="{hostname}",netns="{ns}",syscall="getppid",'
                         f'comm="ap_syscalls"}}',
                "from": str(int(t0)), "until": str(int(t1))}).json()
            check(by_host["total"] == want,
                  f"{hostname}: selecting by host and netns labels gives {by_host['total']} "
                  f"getppid calls, want {want} (labels mixed up between hosts?)")
            # and all the agent recorded, in each mode: its own count, from its exit summary
            for mode in ("cpu", "syscall"):
                value, recorded = agent_recorded(a.err, mode)
                stored = merged_total(agg, f'{{mode="{mode}",host="{hostname}"}}', value, t0, t1)
                print(f"{hostname}: {mode}: agent recorded {recorded} {value}, stored {stored}")
                check(recorded > 0, f"{hostname}: the agent recorded no {mode} {value}")
                check(stored == recorded, f"{hostname}: {mode}: the aggregator holds {stored} "
                      f"{value}, the agent recorded {recorded}")
            left = spool_files(os.path.join(tmp, f"spool-{ns}"))
            check(not left, f"{ns}: pushes left in the spool: {left}")
        print("ok: two hosts in two network namespaces, exact totals per host")
    finally:
        for a in agents:
            if a.proc.poll() is None:
                a.proc.kill()
                a.proc.wait()
        for w in works:
            w.close()
        for c in chains:
            c.kill()
            c.wait()
        if agg and agg.proc:
            agg.kill(signal.SIGTERM)
        for ns in made_ns:
            ip("netns", "del", ns, check_rc=False)
        if made_bridge:
            ip("link", "del", bridge, check_rc=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
