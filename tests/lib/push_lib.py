# SPDX-License-Identifier: MIT
"""Helpers of the continuous-mode tests (tests/bpf/test_push_*.py,
tests/server/test_agent_push_e2e.py): a small HTTP server of our own that records the agent's
pushes (POST /api/v1/push, docs/api.md) and injects faults, the decoding of a push (multipart
parts, gzipped pprof through protoc), and agents in the background."""
import atexit
import gzip
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

from aptest import BIN_DIR, SAN_EXIT, check, fail
from aptest import _SAN_MARKERS as SAN_MARKERS

PROTO_DIR = os.environ.get("AP_PPROF_PROTO_DIR", "")
AGENT = os.path.join(BIN_DIR, "aperture-agent")
RUNNING = []


@atexit.register
def kill_leftovers():
    for proc in RUNNING:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Push:
    """One received push: its query, parts and decoded profile."""

    def __init__(self, query, parts):
        self.query = query
        self.parts = parts
        self.push_id = query["push_id"][0]
        self.start = int(query["from"][0])
        self.until = int(query["until"][0])
        self.labels = dict(l.split("=", 1) for l in query.get("label", []))
        self.mode = self.labels.get("mode")
        self._samples = None

    @property
    def samples(self):
        if self._samples is None:
            self._samples = decode_pprof(self.parts["profile"])
        return self._samples

    def total(self, vi=0):
        return sum(s["values"][vi] for s in self.samples)


def parse_multipart(body, content_type):
    m = re.search(r'boundary=([^;\s]+)', content_type)
    if not m:
        raise ValueError(f"no boundary in {content_type!r}")
    delim = b"--" + m.group(1).encode()
    parts = {}
    chunks = body.split(delim)
    if not chunks[-1].startswith(b"--"):
        raise ValueError("multipart body has no closing delimiter")
    for chunk in chunks[1:-1]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]+)"', head).group(1).decode()
        if not data.endswith(b"\r\n"):
            raise ValueError(f"part {name} does not end in CRLF")
        parts[name] = data[:-2]
    return parts


class Server:
    """Records pushes; `mode` injects faults:
    ok           200 {"status":"stored"} (a known push_id: {"status":"duplicate"})
    503          503 with Retry-After 1, nothing stored
    429          429 with Retry-After `retry_after`, nothing stored
    400          400 {"code":400,"message":"..."}, nothing stored
    lose_answer  stored, then the connection is closed without an answer
    """

    def __init__(self, port=None):
        self.port = port or free_port()
        self.pushes = []      # stored, in arrival order (duplicates not stored twice)
        self.attempts = []    # (time, push_id, status) of every request
        self.mode = "ok"
        self.retry_after = 2
        self.lock = threading.Lock()
        self.httpd = None
        self.thread = None
        self.conns = set()  # open connections: an outage closes the kept-alive ones too

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, ssl_ctx=None):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                with server.lock:
                    server.conns.add(self.connection)

            def finish(self):
                with server.lock:
                    server.conns.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def answer(self, code, obj, headers=()):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                url = urllib.parse.urlparse(self.path)
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                q = urllib.parse.parse_qs(url.query)
                pid = q.get("push_id", ["?"])[0]
                with server.lock:
                    mode = server.mode
                    server.attempts.append((time.time(), pid, mode,
                                            self.headers.get("Authorization")))
                if url.path != "/api/v1/push":
                    return self.answer(404, {"code": 404, "message": "no such route"})
                if mode == "503":
                    return self.answer(503, {"code": 503, "message": "storage down"},
                                       [("Retry-After", "1")])
                if mode == "429":
                    return self.answer(429, {"code": 429, "message": "slow down"},
                                       [("Retry-After", str(server.retry_after))])
                if mode == "400":
                    return self.answer(400, {"code": 400, "message":
                                             "malformed pprof: test refusal"})
                try:
                    parts = parse_multipart(body, self.headers.get("Content-Type", ""))
                    push = Push(q, parts)
                except Exception as e:  # noqa: BLE001 - a test server reports what it saw
                    return self.answer(400, {"code": 400, "message": f"bad push: {e}"})
                with server.lock:
                    dup = any(p.push_id == push.push_id for p in server.pushes)
                    if not dup:
                        server.pushes.append(push)
                if mode == "lose_answer":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.answer(200, {"status": "duplicate" if dup else "stored"})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        if ssl_ctx:
            self.httpd.socket = ssl_ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        with self.lock:
            for c in list(self.conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def set_mode(self, mode):
        with self.lock:
            self.mode = mode

    def stored(self, mode=None):
        with self.lock:
            return [p for p in self.pushes if mode is None or p.mode == mode]

    def wait_for(self, cond, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return
            time.sleep(0.2)
        fail(f"timed out after {timeout} s waiting for {what}")


def decode_pprof(gz):
    """Samples of a gzipped pprof: [{"values": [...], "labels": {key: str or num}}]."""
    raw = gzip.decompress(gz)
    dec = subprocess.run(["protoc", "--decode=perftools.profiles.Profile",
                          f"--proto_path={PROTO_DIR}", "profile.proto"],
                         input=raw, capture_output=True, check=True).stdout.decode()
    strings = [bytes(s, "utf-8").decode("unicode_escape")
               for s in re.findall(r'^string_table: "(.*)"$', dec, re.M)]
    out = []
    for body in re.findall(r"^sample \{(.*?)^\}", dec, re.M | re.S):
        values = [int(v) for v in re.findall(r"^  value: (-?\d+)$", body, re.M)]
        labels = {}
        for lab in re.findall(r"^  label \{(.*?)^  \}", body, re.M | re.S):
            key = strings[int(re.search(r"key: (\d+)", lab).group(1))]
            s = re.search(r"\bstr: (\d+)", lab)
            n = re.search(r"\bnum: (-?\d+)", lab)
            labels[key] = strings[int(s.group(1))] if s else int(n.group(1)) if n else None
        out.append({"values": values, "labels": labels})
    return out


def start_agent(*args, env=None):
    """aperture-agent -v ARGS in the background, once it records; returns the Popen (stderr
    is collected by a thread: .stderr_lines)."""
    cmd = [AGENT, "-v", *map(str, args)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=env)
    RUNNING.append(proc)
    proc.stderr_lines = []
    started = threading.Event()

    def reader():
        for line in proc.stderr:
            proc.stderr_lines.append(line)
            if "Ctrl-C to stop" in line:
                started.set()
        started.set()

    threading.Thread(target=reader, daemon=True).start()
    if not started.wait(90) or proc.poll() is not None:
        proc.kill()
        fail(f"{' '.join(cmd)} did not start recording: {''.join(proc.stderr_lines)}")
    return proc


def stop_agent(proc, sig=signal.SIGTERM, timeout=60):
    """Signal it, wait; returns its stderr."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        fail(f"agent did not stop within {timeout} s after signal {sig}")
    time.sleep(0.2)  # the reader thread's last lines
    err = "".join(proc.stderr_lines)
    if proc.returncode == SAN_EXIT or any(m in err for m in SAN_MARKERS):
        fail(f"sanitizer report from the agent (exit {proc.returncode}):\n{err}")
    return err


def summary(stderr, mode):
    """The agent's exit summary of a mode: (intervals, {value: pushed total}, recorded)."""
    m = re.search(rf"^\S+: {mode}: (\d+) intervals pushed,((?: \w+=\d+)*) \(recorded (\w+)="
                  r"(\d+)\)", stderr, re.M)
    check(m, f"no {mode} summary in the agent's stderr:\n{stderr}")
    values = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2)))
    return int(m.group(1)), values, int(m.group(4))


def counters(stderr):
    """The agent's last 'pushes:' line as a dict."""
    lines = re.findall(r"pushes: (ok=.*)$", stderr, re.M)
    check(lines, f"no push counters in:\n{stderr}")
    return dict((k, float(v)) for k, v in re.findall(r"(\w+)=([\d.]+)", lines[-1]))


def check_abutting(pushes, what):
    """Consecutive pushes of one mode cover abutting time ranges."""
    ranges = sorted((p.start, p.until) for p in pushes)
    for (a0, a1), (b0, b1) in zip(ranges, ranges[1:]):
        check(a1 == b0, f"{what}: ranges do not abut: [{a0}, {a1}) then [{b0}, {b1})")
    for a, b in ranges:
        check(a < b, f"{what}: empty or reversed range [{a}, {b})")
