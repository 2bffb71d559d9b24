# SPDX-License-Identifier: MIT
"""A real aperture-aggregator on loopback for the tests: start it on a free port with a temporary
SQLite store (optionally with tokens and TLS), push profiles the way the agent does (multipart
/api/v1/push), query it, read /metrics, kill and restart it.

    with Aggregator() as agg:
        pb = pprof_from_folded(agg.dir, "app;main;hot 70\\n")
        agg.push(pb, {"mode": "cpu", "host": "h1"})
        text = agg.get("/api/v1/profile", query='{mode="cpu"}', format="folded").text()
"""
import base64
import gzip
import http.client
import json
import os
import select
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.parse
import uuid

import aptest

BIN = os.path.join(aptest.BIN_DIR, "aperture-aggregator")
CLI = os.path.join(aptest.BIN_DIR, "aperture")
NS = 1_000_000_000


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # dict, lower-case names
        self.body = body

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            aptest.fail(f"not JSON (HTTP {self.status}): {self.body[:500]!r}")

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:300]!r}>"


def write_token(path, token):
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path


def make_cert(directory, cn="127.0.0.1"):
    """A self-signed certificate for 127.0.0.1/localhost; returns (cert, key) paths."""
    if not shutil.which("openssl"):
        aptest.skip("openssl is not installed")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


def pprof_from_folded(directory, folded, name=None):
    """Gzipped pprof bytes of a folded profile ('comm;root;...;leaf COUNT' lines), written by
    the format module through `aperture report`."""
    name = name or f"p{uuid.uuid4().hex[:8]}"
    src = os.path.join(directory, name + ".folded")
    out = os.path.join(directory, name + ".pb.gz")
    with open(src, "w") as f:
        f.write(folded)
    res = subprocess.run([CLI, "report", src, "-o", out], capture_output=True, text=True,
                         timeout=60)
    if res.returncode != 0:
        aptest.fail(f"aperture report {src} -o {out}: {res.stderr}")
    with open(out, "rb") as f:
        return f.read()


def multipart(parts):
    """parts: list of (name, bytes, content_type). Returns (body, content-type header)."""
    boundary = "----aperture" + uuid.uuid4().hex
    out = bytearray()
    for name, data, ctype in parts:
        out += f"--{boundary}\r\n".encode()
        out += (f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n").encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def push_request(profile, labels, push_id=None, from_ns=None, until_ns=None, tables=None,
                 agent=None):
    """(query params, body, content-type) of an /api/v1/push as docs/api.md describes it."""
    now = time.time_ns()
    until_ns = until_ns if until_ns is not None else now
    from_ns = from_ns if from_ns is not None else until_ns - 10 * NS
    params = [("push_id", push_id if push_id is not None else uuid.uuid4().hex),
              ("from", str(from_ns)), ("until", str(until_ns))]
    items = labels.items() if isinstance(labels, dict) else labels
    params += [("label", f"{k}={v}") for k, v in items]
    parts = [("profile", profile, "application/octet-stream")]
    if tables is not None:
        parts.append(("tables", tables if isinstance(tables, bytes) else
                      json.dumps(tables).encode(), "application/json"))
    if agent is not None:
        parts.append(("agent", json.dumps(agent).encode(), "application/json"))
    body, ctype = multipart(parts)
    return params, body, ctype


class Aggregator:
    """One aperture-aggregator process. Arguments after the keywords go to its command line."""

    def __init__(self, *args, ingest_token=None, read_token=None, tls=False, directory=None,
                 verbose=True, max_body=None, retention=None):
        self.own_dir = directory is None
        self.dir = directory or tempfile.mkdtemp(prefix="ap-agg-")
        self.db = os.path.join(self.dir, "data", "aperture.db")
        self.ingest_token = ingest_token
        self.read_token = read_token
        self.extra = list(map(str, args))
        if max_body:
            self.extra += ["--max-body", str(max_body)]
        if retention:
            self.extra += ["--retention", str(retention)]
        if verbose:
            self.extra.append("-v")
        if ingest_token:
            self.extra += ["--ingest-token-file",
                           write_token(os.path.join(self.dir, "ingest.token"), ingest_token)]
        if read_token:
            self.extra += ["--read-token-file",
                           write_token(os.path.join(self.dir, "read.token"), read_token)]
        self.cert = self.key = None
        if tls:
            self.cert, self.key = make_cert(self.dir)
            self.extra += ["--tls-cert", self.cert, "--tls-key", self.key]
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.dir, "aggregator.log")
        self.starts = 0

    # ---- life ----
    def command(self, port=0):
        return [BIN, "--listen", f"127.0.0.1:{port}", "--storage", f"sqlite:{self.db}",
                *self.extra]

    def start(self, timeout=30):
        """Start it (on the port it had before, if any) and wait for /healthz."""
        if not os.path.exists(BIN):
            aptest.fail(f"{BIN} is not built")
        log = open(self.log_path, "a")
        log.write(f"---- start {self.starts}\n")
        log.flush()
        self.proc = subprocess.Popen(self.command(self.port or 0), stdout=subprocess.PIPE,
                                     stderr=log, text=True)
        log.close()
        self.starts += 1
        deadline = time.time() + timeout
        line = ""
        while time.time() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        if "listening on" not in line:
            self.proc.kill()
            self.proc.wait()
            aptest.fail(f"aggregator did not start: {line!r}\n{self.log()}")
        self.port = int(line.split("://", 1)[1].split(" ", 1)[0].rsplit(":", 1)[1])
        while time.time() < deadline:
            try:
                if self.get("/healthz", token=False).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        aptest.fail(f"aggregator on port {self.port} never answered /healthz\n{self.log()}")

    def kill(self, sig=signal.SIGKILL):
        """Send sig and wait; returns the exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30) if self.proc else None
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        log = self.log()
        if rc == aptest.SAN_EXIT or any(m in log for m in aptest._SAN_MARKERS):
            aptest.fail(f"sanitizer report from the aggregator (exit {rc}):\n{log[-6000:]}")
        return rc

    def stop(self):
        """SIGTERM: a clean shutdown, exit status 0."""
        rc = self.kill(signal.SIGTERM)
        aptest.check(rc == 0, f"aggregator exited {rc} on SIGTERM\n{self.log()}")

    def restart(self, sig=signal.SIGKILL):
        self.kill(sig)
        return self.start()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.kill(signal.SIGTERM)
        if self.own_dir and not exc[0]:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- HTTP ----
    @property
    def scheme(self):
        return "https" if self.cert else "http"

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def connection(self, timeout=60):
        if self.cert:
            ctx = ssl.create_default_context(cafile=self.cert)
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, params=None, body=None, headers=None, token=None,
                basic=None, timeout=60):
        """token: None = the token the route needs (if any), False = none, str = that one.
        basic: a token to send as the Basic password instead."""
        headers = dict(headers or {})
        if basic is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"aperture:{basic}".encode()).decode()
        elif token is None:
            need = self.ingest_token if method == "POST" else self.read_token
            if need:
                headers["Authorization"] = f"Bearer {need}"
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        if params:
            path += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()},
                            resp.read())
        finally:
            conn.close()

    def get(self, path, token=None, basic=None, **params):
        return self.request("GET", path, params=params or None, token=token, basic=basic)

    def push(self, profile, labels, push_id=None, from_ns=None, until_ns=None, tables=None,
             agent=None, token=None, basic=None, expect=200):
        """POST /api/v1/push; checks the status against expect (None: no check)."""
        params, body, ctype = push_request(profile, labels, push_id, from_ns, until_ns, tables,
                                           agent)
        res = self.request("POST", "/api/v1/push", params=params, body=body,
                           headers={"Content-Type": ctype}, token=token, basic=basic)
        if expect is not None and res.status != expect:
            aptest.fail(f"push answered {res} (expected {expect})\n{self.log()[-3000:]}")
        return res

    def query(self, path, expect=200, **params):
        """GET a query route; returns the Response after checking its status."""
        res = self.get(path, **params)
        if expect is not None and res.status != expect:
            aptest.fail(f"GET {path} {params} answered {res} (expected {expect})")
        return res

    def folded(self, query, **params):
        """The merged profile as {stack: count} (stack = 'frame;frame;...' without counts)."""
        text = self.query("/api/v1/profile", query=query, format="folded", **params).text()
        out = {}
        for line in text.splitlines():
            if line.strip():
                stack, n = line.rsplit(" ", 1)
                out[stack] = out.get(stack, 0) + int(n)
        return out

    def metrics(self):
        """/metrics as {(name, ((label, value), ...)): float}."""
        res = self.get("/metrics", token=False)
        aptest.check(res.status == 200, f"/metrics answered {res}")
        out = {}
        for line in res.text().splitlines():
            if not line or line.startswith("#"):
                continue
            head, value = line.rsplit(" ", 1)
            if "{" in head:
                name, rest = head.split("{", 1)
                labels = []
                for part in _split_labels(rest.rstrip("}")):
                    k, v = part.split("=", 1)
                    labels.append((k, json.loads(v)))
                key = (name, tuple(sorted(labels)))
            else:
                key = (head, ())
            out[key] = float(value)
        return out

    def metric(self, metric, /, **labels):
        """One sample of /metrics (0 when absent): metric("x_total", route="push")."""
        return self.metrics().get((metric, tuple(sorted(labels.items()))), 0.0)


def _split_labels(s):
    """'a="x",b="y,z"' -> ['a="x"', 'b="y,z"'] (commas inside quotes kept)."""
    parts, cur, quoted, esc = [], "", False, False
    for ch in s:
        if esc:
            cur += ch
            esc = False
            continue
        if ch == "\\":
            cur += ch
            esc = True
            continue
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def gzip_bomb(inflated_bytes):
    """gzip of inflated_bytes zeros, made in pieces so the test needs little memory."""
    import io
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as g:
        chunk = bytes(1 << 20)
        left = inflated_bytes
        while left > 0:
            g.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)
    return buf.getvalue()
