#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SQLite and ClickHouse behind the aggregator, side by side in one run (not a test).

For each backend in turn (--backends, default sqlite,clickhouse): a fresh store (SQLite file in
a temporary directory; a fresh clickhouse-server started by tests/lib/clickhouse.py from
dist/clickhouse/*.xml, or with clickhouse-cluster ZooKeeper and two shards), a fresh
aperture-aggregator on it, then the same load from aperture-loadgen (real recorded profiles,
bench/data/*.pb.gz, as bench/aggregator_bench.py replays them):

  fleet100  100 hosts x 1 h of --fleet-interval s pushes (default 10 s: 36,000 pushes;
            the query: 1 h x 100 hosts)
  week10    10 hosts x 7 d of --week-interval s pushes (default 600 s: 10,080 pushes;
            the query: 7 d x 10 hosts)

and reports per backend and scenario:
  - ingest: sample records/s over the loadgen's wall time; per aggregator core (records / the
    aggregator's CPU time, /proc/PID/stat, from the start of the load to 2 s after it) and
    per ClickHouse core (records / clickhouse-server's CPU time over the same window; all
    servers of a cluster summed); with both, per core of the whole store path;
  - bytes per stored sample record: SQLite, the store's files; ClickHouse, the active parts'
    bytes_on_disk of the aggregator's database (system.parts), both grown over the scenario;
  - query latency p50/p99 (--reps each) of GET /api/v1/profile?format=pprof and
    GET /api/v1/flamegraph over the scenario's whole range, after checking the merged total
    equals what the loadgen pushed.

Usage: bench/storage_compare.py [--build DIR] [--backends sqlite,clickhouse,clickhouse-cluster]
           [--scenarios fleet100,week10] [--scale 1] [--week-interval 600]
           [--fleet-interval 10] [--concurrency 4]
           [--reps 20] [--csv storage-compare.csv] [--keep] [--reuse DIR]

--reuse DIR keeps each backend's store in DIR/<backend>/ (SQLite file; single ClickHouse
server's directory, started again on new ports) with the loadgen's results in state.json: a
later run with the same DIR skips the ingest of the scenarios it has and only queries, with a
fresh aggregator (built from --build) - for iterating on queries without minutes of ingest.
The first query after the aggregator starts (cold caches in the aggregator) is reported as
query_first_ms; the p50/p99 runs follow it (warm).
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
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
import aggregator_bench as ab  # noqa: E402  (cpu_seconds, run_loadgen, query_latency, ...)

DB = "aperture_bench"


class Store:
    """The backend under the aggregator: its --storage argument, CPU time and bytes."""

    def __init__(self, kind, tmp, reuse=None):
        self.kind = kind
        self.servers = []
        self.ch = None
        if kind == "sqlite":
            self.db = os.path.join(reuse or tmp, "store.db")
            self.storage = f"sqlite:{self.db}"
            return
        import clickhouse
        clickhouse.require()
        if reuse and kind == "clickhouse":  # kept data, new ports and password
            self.ch = _KeptServer(clickhouse.ClickHouse(os.path.join(reuse, "ch"))).start()
            self.storage = self.ch.storage_url(DB)
        elif reuse:
            sys.exit("--reuse: only sqlite and clickhouse (single node)")
        elif kind == "clickhouse":
            self.ch = clickhouse.single_node().start()
            self.storage = self.ch.storage_url(DB)
        elif kind == "clickhouse-cluster":
            self.ch = clickhouse.cluster().start()
            self.storage = self.ch.storage_url(DB)
        else:
            sys.exit(f"unknown backend {kind!r} (sqlite, clickhouse, clickhouse-cluster)")
        self.servers = self.ch.servers

    def version(self):
        if self.ch is None:
            return "SQLite (in the aggregator)"
        return f"ClickHouse {self.ch.servers[0].scalar('SELECT version()')} x " \
               f"{len(self.servers)}"

    def cpu(self):
        return sum(s.cpu_seconds() for s in self.servers)

    def bytes(self):
        if self.ch is None:
            return ab.store_bytes(self.db)
        return sum(s.disk_bytes(DB) for s in self.servers)

    def close(self, keep):
        if self.ch is not None:
            if keep:
                self.ch.keep = True
            self.ch.close()


class _KeptServer:
    """A ClickHouse server whose directory outlives the run (--reuse): stopped, not wiped."""

    def __init__(self, server):
        self.server = server
        self.servers = [server]
        self.keep = True

    def __getattr__(self, name):
        return getattr(self.server, name)

    def start(self):
        self.server.start()
        return self

    def close(self):
        self.server.stop()


class Aggregator:
    """aperture-aggregator on a --storage URL; .proc and .url as bench/aggregator_bench.py's
    run_loadgen and query_latency expect."""

    def __init__(self, build, tmp, storage, extra=()):
        self.bin = os.path.join(build, "bin", "aperture-aggregator")
        self.port = ab.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(tmp, "aggregator.log"), "w")
        self.proc = subprocess.Popen([self.bin, "--listen", f"127.0.0.1:{self.port}",
                                      "--storage", storage, "--retention", "30d", *extra],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"aggregator exited {self.proc.returncode}: see {self.log.name}")
            try:
                if ab.http_get(self.url + "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        sys.exit("aggregator did not answer /healthz in 60 s")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def get(url, timeout=300):
    """(status, body) of a GET; an HTTP error's status and body instead of an exception."""
    try:
        return ab.http_get(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def query_latency(agg, route, params, reps):
    """(p50 ms, p99 ms, bytes, errors) of reps GETs; a failed one is reported, not timed."""
    url = f"{agg.url}{route}?{urllib.parse.urlencode(params)}"
    times, size, errors = [], 0, 0
    for _ in range(reps):
        t0 = time.monotonic()
        status, body = get(url)
        if status != 200:
            errors += 1
            print(f"WARNING: {route} answered {status}: {body[:300]!r}")
            continue
        times.append((time.monotonic() - t0) * 1e3)
        size = len(body)
    if not times:
        return 0.0, 0.0, 0, errors
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return statistics.median(times), p99, size, errors


def peak_rss_mb(pid):
    """VmHWM of a process (its peak resident memory so far), MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_backend(kind, a, profiles, end_s, rows, stamp):
    tmp = tempfile.mkdtemp(prefix=f"aperture-cmp-{kind}-")
    reuse = os.path.join(os.path.abspath(a.reuse), kind) if a.reuse else None
    state, state_path = {}, None
    if reuse:
        os.makedirs(reuse, exist_ok=True)
        state_path = os.path.join(reuse, "state.json")
        if os.path.exists(state_path):
            with open(state_path) as f:
                state = json.load(f)
    store = Store(kind, tmp, reuse)
    agg = Aggregator(a.build, tmp, store.storage,
                     ["--threads", str(a.aggregator_threads)] if a.aggregator_threads else [])
    print(f"\n=== {kind}: {store.version()}; aggregator {agg.url}")
    out = {}
    try:
        for name in a.scenarios.split(","):
            hosts, span, interval = {"fleet100": (100, int(3600 * a.scale), a.fleet_interval),
                                     "week10": (10, int(7 * 86400 * a.scale),
                                                a.week_interval)}[name]
            span = max(interval, span // interval * interval)
            if name in state:  # --reuse: stored by an earlier run (its span and interval)
                r, b0, s0, s1, b1 = state[name]
                span, interval = r.get("span_s", span), r.get("interval_s", interval)
            else:
                b0, s0 = store.bytes(), store.cpu()
                r = ab.run_loadgen(ab_loadgen(a), agg, profiles, hosts, span, end_s,
                                   f"{name}", a, interval)
                s1 = store.cpu()
                b1 = store.bytes()
                if state_path:
                    r.update(span_s=span, interval_s=interval)
                    state[name] = [r, b0, s0, s1, b1]
                    with open(state_path, "w") as f:
                        json.dump(state, f)
            cpu_agg = r["agg_cpu_settled_s"]
            cpu_store = s1 - s0
            recs = r["records"]
            m = {"pushes": r["stored"], "failed_pushes": r["failed"], "records": recs,
                 "wall_s": r["wall_s"],
                 "samples_per_s": recs / r["wall_s"],
                 "agg_cpu_s": cpu_agg,
                 "samples_per_agg_core_s": recs / cpu_agg if cpu_agg else 0.0,
                 "clickhouse_cpu_s": cpu_store,
                 "samples_per_clickhouse_core_s": recs / cpu_store if cpu_store else 0.0,
                 "samples_per_core_s_total": recs / (cpu_agg + cpu_store),
                 "push_latency_p50_ms": r["lat_p50_ms"],
                 "push_latency_p99_ms": r["lat_p99_ms"],
                 "bytes_added": b1 - b0,
                 "bytes_per_sample": (b1 - b0) / recs if recs else 0.0}
            base = {"query": f'{{mode="cpu",cluster="{name}"}}',
                    "from": str(r["from_ns"] // 10**9), "until": str(r["until_ns"] // 10**9)}
            # the rows may still be on their way to a shard (Distributed): wait for the total
            deadline = time.time() + 60
            first_ms = None
            while True:
                t0 = time.monotonic()
                st, body = get(f"{agg.url}/api/v1/flamegraph?" + urllib.parse.urlencode(
                    {**base, "value": "samples"}))
                if st != 200:
                    print(f"WARNING: {kind} {name}: the flamegraph query answered {st}: "
                          f"{body[:500]!r}")
                if first_ms is None:
                    first_ms = (time.monotonic() - t0) * 1e3
                total = json.loads(body)["total"] if st == 200 else -1
                if total == r["value0"] or st != 200 or time.time() > deadline:
                    break
                time.sleep(1)
            m["query_first_ms"] = first_ms
            m["agg_peak_rss_mb"] = peak_rss_mb(agg.proc.pid)
            m["clickhouse_peak_rss_mb"] = max([peak_rss_mb(s.proc.pid) for s in store.servers]
                                              or [0.0])
            m["merged_total_matches"] = int(total == r["value0"])
            if total != r["value0"]:
                print(f"WARNING: {kind} {name}: merged total {total} != {r['value0']} pushed")
            for route, extra, key in (("/api/v1/profile", {"format": "pprof"}, "pprof"),
                                      ("/api/v1/flamegraph", {}, "flamegraph")):
                p50, p99, size, errors = query_latency(agg, route, {**base, **extra}, a.reps)
                m[f"query_{key}_errors"] = errors
                m[f"query_{key}_p50_ms"] = p50
                m[f"query_{key}_p99_ms"] = p99
                m[f"query_{key}_bytes"] = size
            print(f"\n{kind} {name}: {hosts} hosts x {span} s in {interval} s pushes")
            for k, v in m.items():
                print(f"  {k:30s} {v:14.2f}" if isinstance(v, float) else f"  {k:30s} {v:14d}")
                rows.append({"date": stamp, "backend": kind, "store": store.version(),
                             "scenario": name, "hosts": hosts, "span_s": span,
                             "interval_s": interval, "concurrency": a.concurrency,
                             "metric": k, "value": v})
            out[name] = m
    finally:
        agg.stop()
        store.close(a.keep)
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def ab_loadgen(a):
    return os.path.join(a.build, "tests", "bin", "aperture-loadgen")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--backends", default="sqlite,clickhouse")
    ap.add_argument("--scenarios", default="fleet100,week10")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--week-interval", type=int, default=600)
    ap.add_argument("--fleet-interval", type=int, default=10,
                    help="seconds each fleet100 push covers (more: fewer pushes over the same "
                         "1 h range, when a backend ingests too slowly for a full run)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--no-keepalive", action="store_true")
    ap.add_argument("--aggregator-threads", type=int, default=0,
                    help="the aggregator's --threads (default: its own default)")
    ap.add_argument("--csv", default="storage-compare.csv")
    ap.add_argument("--keep", action="store_true", help="keep the stores")
    ap.add_argument("--reuse", metavar="DIR",
                    help="keep the stores in DIR; a later run with DIR only queries them")
    a, _ = ap.parse_known_args()
    a.build = os.path.abspath(a.build)
    a.perf = False  # aggregator_bench.run_loadgen's flag
    profiles = sorted(glob.glob(os.path.join(ab.DATA, "cpu-*.pb.gz")))
    if not profiles:
        sys.exit(f"no recorded profiles in {ab.DATA}: run bench/aggregator_bench.py --record")
    end_s = int(time.time()) // 600 * 600
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"{stamp}  {platform.node()} {platform.machine()} {os.cpu_count()} CPUs "
          f"{platform.release()}; loadgen {a.concurrency} connections")
    rows, res = [], {}
    for kind in a.backends.split(","):
        res[kind] = run_backend(kind, a, profiles, end_s, rows, stamp)

    keys = [("samples_per_s", "ingest, samples/s (wall)", "{:.0f}"),
            ("samples_per_agg_core_s", "ingest per aggregator core", "{:.0f}"),
            ("samples_per_clickhouse_core_s", "ingest per ClickHouse core", "{:.0f}"),
            ("samples_per_core_s_total", "ingest per core, aggregator + store", "{:.0f}"),
            ("bytes_per_sample", "bytes per stored sample", "{:.1f}"),
            ("query_first_ms", "first query (cold aggregator cache) ms", "{:.0f}"),
            ("query_pprof_p50_ms", "query pprof p50 ms", "{:.0f}"),
            ("query_pprof_p99_ms", "query pprof p99 ms", "{:.0f}"),
            ("query_flamegraph_p50_ms", "query flamegraph p50 ms", "{:.0f}"),
            ("query_flamegraph_p99_ms", "query flamegraph p99 ms", "{:.0f}"),
            ("agg_peak_rss_mb", "aggregator peak RSS MiB", "{:.0f}"),
            ("clickhouse_peak_rss_mb", "ClickHouse peak RSS MiB (largest server)", "{:.0f}"),
            ("merged_total_matches", "merged total = pushed", "{}")]
    kinds = list(res)
    for name in a.scenarios.split(","):
        print(f"\n| {name} | " + " | ".join(kinds) + " |")
        print("|---|" + "---|" * len(kinds))
        for k, label, fmt in keys:
            vals = [fmt.format(res[b][name][k]) if name in res[b] and
                    (b != "sqlite" or k not in ("samples_per_clickhouse_core_s",
                                                 "clickhouse_peak_rss_mb")) else "-"
                    for b in kinds]
            print(f"| {label} | " + " | ".join(vals) + " |")
    with open(a.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()) if rows else ["metric"])
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {a.csv}")


if __name__ == "__main__":
    main()
