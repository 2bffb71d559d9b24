# SPDX-License-Identifier: MIT
"""Real ClickHouse servers (Debian's clickhouse-server) and ZooKeeper (Debian's zookeeper) for
the tests and benchmarks, as plain background processes on loopback: each instance gets its own
config (dist/clickhouse/*.xml with the placeholders filled), data dir, log and free ports, and is
killed and wiped on teardown, also when the test fails (context managers, atexit, and
PR_SET_PDEATHSIG so a test killed by CTest's timeout takes its servers with it).

    with clickhouse.single_node() as ch:          # one server
        ch.query("SELECT 1")                      # -> "1\\n"
        ch.url                                    # http://127.0.0.1:PORT
        ch.storage_url("aperture")                # clickhouse://127.0.0.1:PORT/aperture

    with clickhouse.cluster() as cl:              # ZooKeeper + two shards, cluster "aperture"
        cl.query("CREATE TABLE t ON CLUSTER aperture (...) ENGINE = ReplicatedMergeTree(...)")
        cl.storage_url("aperture")                # ...?cluster=aperture
        cl.shards[1].stop(); ...; cl.shards[1].start()   # a shard down and back
        cl.shards[0].kill()                       # SIGKILL
        cl.restart()                              # everything, data kept

The user `aperture` (password in .password, also written to .password_file) is what the
aggregators log in as; `default` (no password) is for the tests' own queries.

require() skips the test (exit 77, "SKIP: reason") only when the packages cannot run here: not
installed, or the server dies of SIGILL on this CPU. Any other start failure fails the test
with the server's log.
"""
import atexit
import ctypes
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SERVER = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
JAVA = shutil.which("java") or "/usr/bin/java"
ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
ZK_JAR = "/usr/share/java/zookeeper.jar"
ZK_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
HOST = "127.0.0.1"
CLUSTER = "aperture"
TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dist",
                         "clickhouse")
# Small on purpose: several engineers' tests share a 2-core, 24 GiB box.
DEFAULTS = {"CACHE_BYTES": str(64 << 20), "MAX_QUERY_MEMORY": str(2 << 30),
            "BACKGROUND_POOL": "4", "OLD_PARTS_LIFETIME": "30", "LISTEN_HOST": HOST,
            "CLIENT_NETWORK": HOST}

_LIVE = []  # every process started here, killed at exit whatever happened


@atexit.register
def _kill_all():
    for inst in list(_LIVE):
        inst.kill()


def _skip(reason):
    print(f"SKIP: {reason}", flush=True)
    raise SystemExit(77)


def _fail(reason):
    print(f"FAIL: {reason}", flush=True)
    raise SystemExit(1)


def require():
    """Skip (77) unless Debian's clickhouse-server, zookeeper and a JRE are installed."""
    missing = [what for what, path in (("clickhouse-server", SERVER), ("java (default-jre)", JAVA),
                                       ("zookeeper", ZK_JAR)) if not os.path.exists(path)]
    if missing:
        _skip(f"not installed: {', '.join(missing)} (scripts/deps.sh installs them)")


def free_ports(n):
    """n distinct free TCP ports on loopback (held open together so they differ)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def fill(template, values, dest):
    """Copy dist/clickhouse/TEMPLATE to dest with every @NAME@ replaced; a placeholder left
    over is a bug in the caller (fail rather than start a server with a broken config)."""
    with open(os.path.join(TEMPLATES, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    left = sorted(set(re.findall(r"@([A-Z0-9_]+)@", text)))
    if left:
        _fail(f"{template}: placeholders not filled: {left}")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w") as f:
        f.write(text)
    return dest


def _die_with_parent():
    """In the child: SIGKILL when the test process dies (e.g. CTest's timeout kills it)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setpgrp()  # a Ctrl-C of the test reaches the test, which stops the servers itself


def _wipe_stale(base):
    """Directories of earlier runs whose owner died without teardown (SIGKILL): wipe them."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        d = os.path.join(base, name)
        if not name.startswith("ap-ch-") or not os.path.isdir(d):
            continue
        try:
            with open(os.path.join(d, "owner.pid")) as f:
                pid = int(f.read())
            os.kill(pid, 0)
        except (OSError, ValueError):
            shutil.rmtree(d, ignore_errors=True)


def _scratch(prefix="ap-ch-"):
    base = tempfile.gettempdir()
    _wipe_stale(base)
    d = tempfile.mkdtemp(prefix=prefix, dir=base)
    with open(os.path.join(d, "owner.pid"), "w") as f:
        f.write(str(os.getpid()))
    return d


class _Process:
    """One server process with a log; start/stop/kill keep its directory and ports."""

    name = "process"

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.proc = None
        self.out_path = os.path.join(directory, "stdout.log")

    def argv(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError

    def log(self):
        return ""

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=60):
        if self.running:
            return self
        with open(self.out_path, "a") as out:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir,
                                         preexec_fn=_die_with_parent)
        if self not in _LIVE:
            _LIVE.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                if rc == -signal.SIGILL:
                    _skip(f"{self.argv()[0]} dies of SIGILL on this CPU")
                _fail(f"{self.name} exited {rc} while starting\n{self.log()[-4000:]}")
            if self.ready():
                return self
            time.sleep(0.05)
        self.kill()
        _fail(f"{self.name} not ready within {timeout} s\n{self.log()[-4000:]}")

    def _signal(self, sig, timeout):
        if not self.running:
            return None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def stop(self, timeout=60):
        """SIGTERM, a clean shutdown (SIGKILL after timeout s)."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self):
        """SIGKILL, as a crash or a power cut."""
        return self._signal(signal.SIGKILL, 30)

    def pid(self):
        return self.proc.pid if self.running else None

    def cpu_seconds(self):
        """utime + stime of the whole process so far (for the benchmark)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ZooKeeper(_Process):
    name = "zookeeper"

    def __init__(self, directory, port=None):
        super().__init__(directory)
        self.port = port or free_ports(1)[0]
        self.cfg = fill("zoo.cfg", {"ZK_DATA_DIR": os.path.join(directory, "data"),
                                    "ZK_PORT": self.port, "ZK_HOST": HOST},
                        os.path.join(directory, "zoo.cfg"))
        os.makedirs(os.path.join(directory, "data"), exist_ok=True)

    def argv(self):
        # -Xmx: the JVM would otherwise size its heap from the machine's memory; the serial
        # collector and the C1 compiler only: it starts in about half the time (2 s, not 4)
        return [JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.log.dir=" + self.dir, "-cp", ZK_CLASSPATH, ZK_MAIN, self.cfg]

    def four(self, word):
        """A four-letter-word command ('ruok', 'srvr'); '' when nothing answers."""
        try:
            with socket.create_connection((HOST, self.port), timeout=2) as s:
                s.sendall(word.encode())
                out = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        return out.decode(errors="replace")
                    out += chunk
        except OSError:
            return ""

    def ready(self):
        # ruok answers imok before the server can serve; srvr only once it does
        return "Mode:" in self.four("srvr")

    def log(self):
        try:
            with open(self.out_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class ClickHouse(_Process):
    """One clickhouse-server. shard/replica/cluster_values: its place in a cluster."""

    name = "clickhouse-server"

    def __init__(self, directory, ports=None, password=None, shard=None, replica=None,
                 cluster_values=None, settings=None):
        super().__init__(directory)
        self.http_port, self.tcp_port, self.interserver_port = ports or free_ports(3)
        self.password = password or secrets.token_hex(12)
        self.password_file = os.path.join(directory, "aperture.password")
        with open(self.password_file, "w") as f:
            f.write(self.password + "\n")
        os.chmod(self.password_file, 0o600)
        self.data_dir = os.path.join(directory, "data")
        self.log_dir = os.path.join(directory, "log")
        os.makedirs(self.log_dir, exist_ok=True)
        values = dict(DEFAULTS, **(settings or {}))
        values.update(DATA_DIR=self.data_dir, LOG_DIR=self.log_dir, HTTP_PORT=self.http_port,
                      TCP_PORT=self.tcp_port, INTERSERVER_PORT=self.interserver_port,
                      APERTURE_PASSWORD_SHA256=hashlib.sha256(self.password.encode()).hexdigest())
        self.config = fill("config.xml", values, os.path.join(directory, "config.xml"))
        fill("users.xml", values, os.path.join(directory, "users.xml"))
        self.shard, self.replica = shard, replica
        if cluster_values is not None:
            fill("cluster.xml", dict(cluster_values, SHARD=shard, REPLICA=replica),
                 os.path.join(directory, "config.d", "cluster.xml"))

    def argv(self):
        return [SERVER, f"--config-file={self.config}"]

    @property
    def url(self):
        return f"http://{HOST}:{self.http_port}"

    def storage_url(self, db="aperture", cluster=None, user="aperture"):
        """The aggregator's --storage argument for this server."""
        q = {}
        if cluster:
            q["cluster"] = cluster
        if user:
            q["user"] = user
            q["password_file"] = self.password_file
        tail = ("?" + urllib.parse.urlencode(q, safe="/")) if q else ""
        return f"clickhouse://{HOST}:{self.http_port}/{db}{tail}"

    def ready(self):
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                return r.status == 200 and r.read().startswith(b"Ok.")
        except OSError:
            return False

    def query(self, sql, data=None, timeout=60, check=True, **settings):
        """Run one statement as `default` over HTTP; returns the body text. check: fail the
        test on an error (else return (status, text))."""
        params = {"query": sql, **{k: str(v) for k, v in settings.items()}}
        req = urllib.request.Request(self.url + "/?" + urllib.parse.urlencode(params),
                                     data=data if data is not None else
                                     (b"" if not sql.lstrip().upper().startswith(
                                         ("SELECT", "SHOW", "DESCRIBE", "EXISTS")) else None))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read().decode(errors="replace")
                return text if check else (r.status, text)
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            if check:
                _fail(f"ClickHouse on {self.http_port}: {sql[:300]}\n-> HTTP {e.code}: {text}")
            return e.code, text
        except OSError as e:
            if check:
                _fail(f"ClickHouse on {self.http_port} unreachable: {sql[:300]}: {e}")
            return 0, str(e)

    def scalar(self, sql, **settings):
        return self.query(sql, **settings).strip()

    def disk_bytes(self, db=None):
        """Bytes of the active parts on disk (system.parts), of one database or all."""
        where = f" AND database = '{db}'" if db else ""
        return int(self.scalar(f"SELECT sum(bytes_on_disk) FROM system.parts WHERE active{where}")
                   or 0)

    def log(self):
        out = []
        for p in (self.out_path, os.path.join(self.log_dir, "server.err.log")):
            try:
                with open(p, errors="replace") as f:
                    out.append(f.read()[-6000:])
            except OSError:
                pass
        return "\n".join(out)


class SingleNode:
    """One ClickHouse server in its own scratch directory."""

    def __init__(self, keep=False, settings=None):
        require()
        self.dir = _scratch()
        _OWNED.append(self)
        self.keep = keep
        self.server = ClickHouse(os.path.join(self.dir, "ch"), settings=settings)

    def __getattr__(self, name):  # ch.query, ch.url, ch.storage_url, ch.stop, ...
        return getattr(self.server, name)

    @property
    def servers(self):
        return [self.server]

    def start(self):
        self.server.start()
        return self

    def close(self):
        self.server.kill()
        if self in _OWNED:
            _OWNED.remove(self)
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] and exc[0] is not SystemExit or (exc[0] is SystemExit and exc[1].code):
            print(f"--- ClickHouse log ({self.server.http_port}):\n{self.server.log()[-3000:]}")
        self.close()


class Cluster:
    """ZooKeeper and `shards` ClickHouse servers of one replica each, in one cluster named
    `name` (remote_servers, macros {shard}=01.. and {replica}=r1, distributed_ddl), so that
    `ON CLUSTER name`, ReplicatedMergeTree and Distributed work."""

    def __init__(self, shards=2, name=CLUSTER, keep=False, settings=None):
        require()
        if shards != 2:
            raise ValueError("dist/clickhouse/cluster.xml describes two shards")
        self.name = name
        self.keep = keep
        self.dir = _scratch()
        _OWNED.append(self)
        self.zk = ZooKeeper(os.path.join(self.dir, "zk"))
        ports = [free_ports(3) for _ in range(shards)]
        password = secrets.token_hex(12)  # one aggregator login for the whole cluster
        values = {"CLUSTER": name, "ZK_HOST": HOST, "ZK_PORT": self.zk.port}
        for i, p in enumerate(ports, 1):
            values[f"SHARD{i}_HOST"] = HOST
            values[f"SHARD{i}_TCP_PORT"] = p[1]
        self.shards = [ClickHouse(os.path.join(self.dir, f"ch{i}"), ports=p, password=password,
                                  shard=f"{i:02d}", replica="r1", cluster_values=values,
                                  settings=settings)
                       for i, p in enumerate(ports, 1)]

    @property
    def servers(self):
        return self.shards

    @property
    def password_file(self):
        return self.shards[0].password_file

    def storage_url(self, db="aperture", shard=0, user="aperture"):
        """--storage for an aggregator talking to shard `shard` (any shard serves reads and
        writes through the Distributed tables)."""
        return self.shards[shard].storage_url(db, cluster=self.name, user=user)

    def query(self, sql, **kw):
        return self.shards[0].query(sql, **kw)

    def scalar(self, sql, **kw):
        return self.shards[0].scalar(sql, **kw)

    def start(self):
        self.zk.start()
        for s in self.shards:
            s.start()
        return self

    def stop(self):
        """Everything down cleanly (SIGTERM), data kept."""
        for s in self.shards:
            s.stop()
        self.zk.stop()

    def restart(self):
        self.stop()
        return self.start()

    def kill(self):
        for s in self.shards:
            s.kill()
        self.zk.kill()

    def close(self):
        self.kill()
        if self in _OWNED:
            _OWNED.remove(self)
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def disk_bytes(self, db=None):
        return sum(s.disk_bytes(db) for s in self.shards)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] and exc[0] is not SystemExit or (exc[0] is SystemExit and exc[1].code):
            for s in self.shards:
                print(f"--- ClickHouse shard {s.shard} log:\n{s.log()[-3000:]}")
        self.close()


_OWNED = []  # scratch directories to wipe at exit (after the processes are killed)


@atexit.register
def _wipe_owned():
    for o in list(_OWNED):
        o.close()


def single_node(**kw):
    return SingleNode(**kw)


def cluster(**kw):
    return Cluster(**kw)
