#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run a command against a throw-away single-node ClickHouse (Debian's clickhouse-server).

    clickhouse_server.py -- CMD ARGS...      start a server, run CMD, stop the server
    clickhouse_server.py --ctl stop|start DIR   (used by CMD through $AP_CH_STOP / $AP_CH_START)

The server gets its own config, data folder and free loopback ports in a temporary folder, its
caches capped (the Debian defaults are 5 and 8 GiB), and is stopped by its pid afterwards. CMD
sees AP_STORE_SPEC=clickhouse://127.0.0.1:PORT/aperture_test, AP_CH_HTTP (the base URL) and
AP_CH_STOP / AP_CH_START (shell commands that stop the server with SIGTERM and start it again on
the same ports and data). Exit status: CMD's; 77 (skip) with a reason when clickhouse-server is
not installed or cannot start here.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CONFIG = """<yandex>
  <logger><level>warning</level><log>{d}/log/server.log</log>
    <errorlog>{d}/log/server.err.log</errorlog><size>10M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port><tcp_port>{tcp}</tcp_port>
  <interserver_http_port>{inter}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <max_connections>256</max_connections><keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <mark_cache_size>67108864</mark_cache_size>
  <path>{d}/data/</path><tmp_path>{d}/data/tmp/</tmp_path>
  <user_files_path>{d}/data/user_files/</user_files_path>
  <format_schema_path>{d}/data/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <timezone>UTC</timezone><mlock_executable>false</mlock_executable>
</yandex>
"""
USERS = """<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"""


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def ping(port, timeout):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
                if r.read().startswith(b"Ok"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def start(d):
    binary = shutil.which("clickhouse-server")
    with open(os.path.join(d, "http_port")) as f:
        port = int(f.read())
    log = open(os.path.join(d, "log", "stdout.log"), "ab")
    p = subprocess.Popen([binary, f"--config-file={d}/config.xml"], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(d, "pid"), "w") as f:
        f.write(str(p.pid))
    if not ping(port, 30):
        return False
    return True


def stop(d):
    try:
        with open(os.path.join(d, "pid")) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(300):
        try:
            os.kill(pid, 0)
            # reap it when it is our child (started by start() in this process)
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "--ctl":
        d = sys.argv[3]
        if sys.argv[2] == "stop":
            stop(d)
            return 0
        return 0 if start(d) else 1
    if len(sys.argv) < 3 or sys.argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    if not shutil.which("clickhouse-server"):
        print("SKIP: clickhouse-server is not installed (apt-get install clickhouse-server)")
        return 77
    d = tempfile.mkdtemp(prefix="ap-clickhouse-")
    os.makedirs(os.path.join(d, "log"))
    http, tcp, inter = free_ports(3)
    with open(os.path.join(d, "config.xml"), "w") as f:
        f.write(CONFIG.format(d=d, http=http, tcp=tcp, inter=inter))
    with open(os.path.join(d, "users.xml"), "w") as f:
        f.write(USERS)
    with open(os.path.join(d, "http_port"), "w") as f:
        f.write(str(http))
    me = f"{sys.executable} {os.path.abspath(__file__)}"
    try:
        if not start(d):
            err = ""
            try:
                with open(os.path.join(d, "log", "server.err.log")) as f:
                    err = f.read()[-600:]
            except OSError:
                pass
            print(f"SKIP: clickhouse-server did not start on 127.0.0.1:{http}: {err}")
            return 77
        env = dict(os.environ)
        env["AP_STORE_SPEC"] = f"clickhouse://127.0.0.1:{http}/aperture_test"
        env["AP_CH_HTTP"] = f"http://127.0.0.1:{http}/"
        env["AP_CH_STOP"] = f"{me} --ctl stop {d}"
        env["AP_CH_START"] = f"{me} --ctl start {d}"
        return subprocess.call(sys.argv[2:], env=env)
    finally:
        stop(d)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
