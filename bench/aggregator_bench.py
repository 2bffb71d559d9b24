#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Aggregator ingest and query benchmark (not a test).

Starts aperture-aggregator on a fresh SQLite store in a temporary directory, replays real
recorded profiles (bench/data/*.pb.gz, or fresh ones with --record) through aperture-loadgen as
many agents pushing to POST /api/v1/push, and reports per scenario:
  - end-to-end ingest: pushes/s and samples/s over the loadgen's wall time, and per aggregator
    core: sample records / the aggregator's CPU time (utime+stime of the whole process from
    /proc/PID/stat, read before and after the run, plus 2 s of settling for any work the
    aggregator finishes after its answers);
  - storage bytes per stored sample record (the store's files / the records stored);
  - query latency p50/p99 (each query --reps times) for the merged profile of the scenario:
    GET /api/v1/profile?format=pprof and GET /api/v1/flamegraph;
and checks the merged total (value=samples) equals the samples the loadgen pushed.

"Samples" are pprof Sample records (one stack with its values: what the store keeps a row
for); "events" are the sum of their first value (CPU samples taken at 99 Hz).

Scenarios (timestamps backfilled, ending at the start of the run):
  fleet100: 100 hosts x 1 h of 10 s pushes (cluster=fleet100)
  day10:    10 hosts x 24 h of 10 s pushes (cluster=day10)
  modes:    lock + syscall profiles, 10 hosts x 5 min (cluster=modes), when recorded ones exist
--scale F multiplies the spans (e.g. 0.1 for a quick look); the query ranges follow.

Usage: bench/aggregator_bench.py [--build DIR] [--concurrency 4] [--reps 20] [--scale 1]
                                 [--record] [--no-keepalive] [--perf] [--csv FILE]
"""
import argparse
import csv
import datetime
import glob
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def cpu_seconds(pid):
    """utime + stime of a whole process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=120):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def store_bytes(path):
    return sum(os.path.getsize(p) for p in glob.glob(path + "*") if os.path.isfile(p))


def record_profiles(build, seconds):
    """Record real profiles with the agent while real work runs: the whole machine's CPU
    (a parallel build of the tree is running on this box most of the time; ap_chain is added
    so there is always something), and lock and syscall modes over their test workloads."""
    if os.geteuid() != 0:
        sys.exit("--record needs root (the agent loads BPF programs)")
    agent = os.path.join(build, "bin", "aperture-agent")
    tb = os.path.join(build, "tests", "bin")
    os.makedirs(DATA, exist_ok=True)
    jobs = [("cpu", ["--mode", "cpu"], [os.path.join(tb, "ap_chain"), str(seconds + 30)]),
            ("lock", ["--mode", "lock"], [os.path.join(tb, "ap_locks"), str(seconds + 30)]),
            ("syscall", ["--mode", "syscall"],
             [os.path.join(tb, "ap_syscalls"), "-n", "2000000", "-e", "20000", "-s", "500"])]
    for mode, flags, work in jobs:
        for i in range(2 if mode == "cpu" else 1):
            out = os.path.join(DATA, f"{mode}-{i}.pb.gz")
            w = subprocess.Popen(work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                subprocess.run([agent, *flags, "--duration", f"{seconds}s", "--output", out],
                               check=True, capture_output=True, timeout=seconds + 120)
            finally:
                w.kill()
                w.wait()
            print(f"recorded {out}: {os.path.getsize(out)} bytes")


class Aggregator:
    def __init__(self, build, tmp):
        self.bin = os.path.join(build, "bin", "aperture-aggregator")
        self.db = os.path.join(tmp, "store.db")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(tmp, "aggregator.log"), "w")
        self.proc = subprocess.Popen([self.bin, "--listen", f"127.0.0.1:{self.port}",
                                      "--storage", f"sqlite:{self.db}", "--retention", "30d"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"aggregator exited {self.proc.returncode}: see {self.log.name}")
            try:
                if http_get(self.url + "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        sys.exit("aggregator did not answer /healthz in 30 s")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def perf_start(agg, a, what):
    out = os.path.join(a.tmp, f"perf-{what}.data")
    proc = subprocess.Popen(["perf", "record", "-g", "-F", "499", "-o", out, "-p",
                             str(agg.proc.pid)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the work starts
    return proc, out


def perf_report(perf, what):
    """Where the aggregator's time went: perf's top symbols, self and with children."""
    proc, out = perf
    proc.send_signal(signal.SIGINT)
    proc.wait()
    for how, flags in (("self", ["--no-children", "--sort", "dso,symbol"]),
                       ("self + children", ["--children", "--sort", "symbol"])):
        rep = subprocess.run(["perf", "report", "-i", out, "--stdio", *flags, "-g", "none",
                              "--percent-limit", "1.5"], capture_output=True, text=True)
        print(f"\nperf, aggregator during {what}, {how}:")
        print("\n".join(line.rstrip() for line in rep.stdout.splitlines()
                        if line and not line.startswith("#"))[:5000])


def run_loadgen(loadgen, agg, profiles, hosts, span_s, end_s, cluster, a, interval=10):
    cmd = [loadgen, "--url", agg.url, "--hosts", str(hosts), "--span", f"{span_s}s",
           "--interval", f"{interval}s", "--end", str(end_s),
           "--concurrency", str(a.concurrency),
           "--label", f"cluster={cluster}"]
    for p in profiles:
        cmd += ["--profile", p]
    if a.no_keepalive:
        cmd.append("--no-keepalive")
    c0 = cpu_seconds(agg.proc.pid)
    perf = perf_start(agg, a, f"ingest-{cluster}") if a.perf else None
    res = subprocess.run(cmd, capture_output=True, text=True)
    c1 = cpu_seconds(agg.proc.pid)
    time.sleep(2)  # anything the aggregator does after answering (rollups, checkpoints)
    c2 = cpu_seconds(agg.proc.pid)
    if perf:
        perf_report(perf, f"ingest of {cluster}")
    if not res.stdout.strip():
        sys.exit(f"loadgen failed ({res.returncode}): {res.stderr}")
    r = json.loads(res.stdout.strip().splitlines()[-1])
    if r["failed"]:
        print(f"WARNING: {r['failed']} pushes failed, first: {r['first_error']}")
    r["agg_cpu_s"] = c1 - c0
    r["agg_cpu_settled_s"] = c2 - c0
    return r


def query_latency(agg, route, params, reps):
    url = f"{agg.url}{route}?{urllib.parse.urlencode(params)}"
    times, size = [], 0
    for _ in range(reps):
        t0 = time.monotonic()
        status, body = http_get(url)
        times.append((time.monotonic() - t0) * 1e3)
        size = len(body)
        if status != 200:
            sys.exit(f"{url}: HTTP {status}")
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return statistics.median(times), p99, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--record", action="store_true", help="re-record bench/data/*.pb.gz first")
    ap.add_argument("--record-seconds", type=int, default=10)
    ap.add_argument("--no-keepalive", action="store_true")
    ap.add_argument("--perf", action="store_true", help="perf record the aggregator, print top")
    ap.add_argument("--scenarios", default="fleet100,day10,modes")
    ap.add_argument("--day10-interval", type=int, default=10,
                    help="seconds each day10 push covers (60: 6x fewer pushes for the same "
                         "24 h range, when the full run takes too long)")
    ap.add_argument("--csv", default="aggregator-bench.csv")
    ap.add_argument("--keep", action="store_true", help="keep the temporary store")
    a, _ = ap.parse_known_args()  # bench/run.sh passes every benchmark the same flags
    a.build = os.path.abspath(a.build)
    loadgen = os.path.join(a.build, "tests", "bin", "aperture-loadgen")
    if a.record:
        record_profiles(a.build, a.record_seconds)
    cpu_profiles = sorted(glob.glob(os.path.join(DATA, "cpu-*.pb.gz")))
    mode_profiles = [f"{os.path.basename(p).split('-')[0]}:{p}"
                     for p in sorted(glob.glob(os.path.join(DATA, "lock-*.pb.gz")) +
                                     glob.glob(os.path.join(DATA, "syscall-*.pb.gz")))]
    if not cpu_profiles:
        sys.exit(f"no recorded profiles in {DATA}: run with --record (root)")

    a.tmp = tempfile.mkdtemp(prefix="aperture-aggbench-")
    agg = Aggregator(a.build, a.tmp)
    end_s = int(time.time()) // 10 * 10
    rows = []
    now = datetime.datetime.now().isoformat(timespec="seconds")
    machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs {platform.release()}"
    print(f"{now}  {machine}\naggregator {agg.url}, store {agg.db}; loadgen "
          f"{a.concurrency} connections{' (no keep-alive)' if a.no_keepalive else ''}")
    scen = {"fleet100": (cpu_profiles, 100, int(3600 * a.scale)),
            "day10": (cpu_profiles, 10, int(86400 * a.scale)),
            "modes": (mode_profiles, 10, int(300 * a.scale))}
    results = {}
    try:
        for name in a.scenarios.split(","):
            profiles, hosts, span = scen[name]
            if not profiles:
                print(f"{name}: no recorded lock/syscall profiles, skipped")
                continue
            size0 = store_bytes(agg.db)
            interval = a.day10_interval if name == "day10" else 10
            span = max(interval, span // interval * interval)
            r = run_loadgen(loadgen, agg, profiles, hosts, span, end_s, name, a, interval)
            r["store_delta"] = store_bytes(agg.db) - size0
            results[name] = (r, hosts, span)
            print(f"\n{name}: {hosts} hosts x {span} s in {interval} s pushes: "
                  f"{r['stored']} pushes stored, "
                  f"{r['failed']} failed, {r['retried']} retried (429/503), "
                  f"{r['records']} sample records, {r['value0']} events, "
                  f"{r['bytes'] / 1e6:.1f} MB of gzipped pprof in {r['wall_s']:.1f} s")
            cpu = r["agg_cpu_settled_s"]
            m = {"pushes_per_s": r["stored"] / r["wall_s"],
                 "samples_per_s": r["records"] / r["wall_s"],
                 "events_per_s": r["value0"] / r["wall_s"],
                 "agg_cpu_s": cpu,
                 "agg_cores_busy": cpu / r["wall_s"],
                 "pushes_per_core_s": r["stored"] / cpu if cpu else 0,
                 "samples_per_core_s": r["records"] / cpu if cpu else 0,
                 "events_per_core_s": r["value0"] / cpu if cpu else 0,
                 "push_latency_p50_ms": r["lat_p50_ms"],
                 "push_latency_p99_ms": r["lat_p99_ms"],
                 "store_bytes_added": r["store_delta"],
                 "bytes_per_sample": r["store_delta"] / r["records"] if r["records"] else 0}
            if name != "modes":
                sel = f'{{mode="cpu",cluster="{name}"}}'
                base = {"query": sel, "from": str(r["from_ns"] // 10**9),
                        "until": str(r["until_ns"] // 10**9)}
                st, body = http_get(f"{agg.url}/api/v1/flamegraph?" + urllib.parse.urlencode(
                    {**base, "value": "samples"}))
                total = json.loads(body)["total"]
                m["merged_total_matches"] = int(total == r["value0"])
                if total != r["value0"]:
                    print(f"WARNING: merged total {total} != {r['value0']} events pushed")
                for route, extra, key in (("/api/v1/profile", {"format": "pprof"}, "pprof"),
                                          ("/api/v1/flamegraph", {}, "flamegraph")):
                    perf = perf_start(agg, a, f"query-{name}") if a.perf and key == "pprof" \
                        else None
                    p50, p99, size = query_latency(agg, route, {**base, **extra}, a.reps)
                    if perf:
                        perf_report(perf, f"the {name} pprof queries")
                    m[f"query_{key}_p50_ms"] = p50
                    m[f"query_{key}_p99_ms"] = p99
                    m[f"query_{key}_bytes"] = size
            for k, v in m.items():
                print(f"  {k:24s} {v:14.2f}" if isinstance(v, float) else f"  {k:24s} {v:14d}")
                rows.append({"date": now, "machine": machine, "scenario": name, "hosts": hosts,
                             "span_s": span, "interval_s": interval,
                             "concurrency": a.concurrency,
                             "keepalive": not a.no_keepalive, "metric": k, "value": v})
        total_size = store_bytes(agg.db)
        total_records = sum(r["records"] for r, _, _ in results.values())
        print(f"\nstore: {total_size / 1e6:.1f} MB for {total_records} sample records: "
              f"{total_size / max(1, total_records):.1f} bytes per record")
        rows.append({"date": now, "machine": machine, "scenario": "all", "hosts": "",
                     "span_s": "", "interval_s": "", "concurrency": a.concurrency,
                     "keepalive": not a.no_keepalive, "metric": "store_bytes_per_sample",
                     "value": total_size / max(1, total_records)})
        for name in ("fleet100", "day10"):
            if name in results:
                mm = {row["metric"]: row["value"] for row in rows if row["scenario"] == name}
                rate = mm["samples_per_core_s"]
                print(f"target {name}: ingest {rate:.0f} samples/s per core "
                      f"(target >= 200000: {'met' if rate >= 2e5 else 'NOT met'})"
                      + (f"; query pprof p50 {mm['query_pprof_p50_ms']:.0f} ms (target <= 500: "
                         f"{'met' if mm['query_pprof_p50_ms'] <= 500 else 'NOT met'})"
                         if name == "fleet100" else ""))
    finally:
        agg.stop()
        if not a.keep:
            shutil.rmtree(a.tmp, ignore_errors=True)
        else:
            print(f"kept {a.tmp}")
    with open(a.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["metric"])
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {a.csv}")


if __name__ == "__main__":
    main()
