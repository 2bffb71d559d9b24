# SPDX-License-Identifier: MIT
"""tests/lib/clickhouse.py, the launcher the ClickHouse backend's tests stand on: a single node
answers queries and takes the aggregator's login (user aperture, password file) and refuses a
wrong password; the two-shard cluster runs ON CLUSTER DDL through ZooKeeper, a Distributed
table spreads rows over both shards, a stopped shard makes reads through it fail and, once
started again, it has its rows back; a restart of everything keeps the data; and teardown leaves
no process and no directory behind."""
import os
import urllib.error
import urllib.parse
import urllib.request

import clickhouse
from aptest import check

clickhouse.require()


def as_aperture(server, sql, password):
    url = server.url + "/?" + urllib.parse.urlencode(
        {"query": sql, "user": "aperture", "password": password})
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


with clickhouse.single_node() as ch:
    check(ch.scalar("SELECT 1 + 1") == "2", "single node does not answer SELECT")
    with open(ch.password_file) as f:
        pw = f.read().strip()
    check(as_aperture(ch, "SELECT 7", pw) == (200, "7\n"), "user aperture cannot log in")
    status, _ = as_aperture(ch, "SELECT 7", pw + "x")
    check(status in (401, 403, 500) and status != 200, f"a wrong password got HTTP {status}")
    url = ch.storage_url("db1")
    check(url.startswith(f"clickhouse://127.0.0.1:{ch.http_port}/db1?") and
          "password_file=" in url, f"storage URL {url}")
    single_dir, single_pid = ch.dir, ch.server.pid()
check(not os.path.exists(single_dir), f"{single_dir} left behind")
check(not alive(single_pid), "single node's server outlived its teardown")

with clickhouse.cluster() as cl:
    name = cl.name
    cl.query(f"CREATE DATABASE IF NOT EXISTS lt ON CLUSTER {name}")
    cl.query(f"CREATE TABLE lt.l ON CLUSTER {name} (k UInt64) ENGINE = "
             "ReplicatedMergeTree('/clickhouse/tables/{shard}/lt_l', '{replica}') ORDER BY k")
    cl.query(f"CREATE TABLE lt.d ON CLUSTER {name} (k UInt64) ENGINE = "
             f"Distributed({name}, lt, l, k)")
    # the DDL reached both servers through ZooKeeper
    for s in cl.shards:
        check(s.scalar("EXISTS TABLE lt.d") == "1", f"shard {s.shard} lacks lt.d")
        zk_path = s.scalar("SELECT zookeeper_path FROM system.replicas WHERE table = 'l'")
        check(zk_path == f"/clickhouse/tables/{s.shard}/lt_l", f"macro shard: {zk_path}")
    cl.query("INSERT INTO lt.d SELECT number FROM system.numbers LIMIT 1000",
             insert_distributed_sync=1)
    counts = [int(s.scalar("SELECT count() FROM lt.l")) for s in cl.shards]
    check(sum(counts) == 1000 and min(counts) > 0, f"rows per shard: {counts}")
    check(cl.scalar("SELECT sum(k) FROM lt.d") == str(sum(range(1000))), "sum through Distributed")

    cl.shards[1].stop()
    status, text = cl.query("SELECT count() FROM lt.d", check=False)
    check(status != 200, f"a read through Distributed with a shard down answered {status} {text}")
    cl.shards[1].start()
    check(cl.scalar("SELECT count() FROM lt.d") == "1000", "rows after the shard came back")

    cl.shards[0].kill()
    cl.shards[0].start()
    check(cl.scalar("SELECT count() FROM lt.d") == "1000", "rows after SIGKILL of a shard")

    cl.restart()
    check(cl.scalar("SELECT count() FROM lt.d") == "1000", "rows after restarting everything")
    pids = [s.pid() for s in cl.shards] + [cl.zk.pid()]
    cluster_dir = cl.dir
check(not os.path.exists(cluster_dir), f"{cluster_dir} left behind")
check(not any(alive(p) for p in pids), "a cluster process outlived its teardown")
print("PASS")
