# SPDX-License-Identifier: MIT
"""`aperture query`, `diff` and `labels` against a scripted HTTP(S) server: the requests they
send (route, parameters, relative times, token), what they print from the answers, and how
they fail (the server's message, a body that is no profile, nobody listening, TLS without
the CA). The real aggregator is tests/server/test_cli_query.py; this one needs nothing but
the CLI, so it runs in every build.

usage: query_cli_test.py APERTURE
"""
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.parse

aperture = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="aperture-query-")


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def pprof_of(folded, name):
    src, out = os.path.join(tmp, name + ".folded"), os.path.join(tmp, name + ".pb.gz")
    with open(src, "w") as f:
        f.write(folded)
    subprocess.run([aperture, "report", src, "-o", out], check=True)
    with open(out, "rb") as f:
        return f.read()


BASE = "bash;main;foo;bar 10\nbash;main;foo 5\npy;run;loop 5\n"
CMP = "bash;main;foo;bar 30\nbash;main;qux 10\n"
PROFILES = {"base": pprof_of(BASE, "base"), "cmp": pprof_of(CMP, "cmp")}


class Server:
    """Answers from `routes` (path -> function(params) -> (status, bytes)); records requests."""

    def __init__(self, routes, tls=None):
        self.routes = routes
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                params = urllib.parse.parse_qs(u.query, keep_blank_values=True)
                outer.requests.append((u.path, params, self.headers.get("Authorization")))
                fn = outer.routes.get(u.path)
                status, body = fn(params) if fn else (404, b'{"code":404,"message":"no"}')
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def run(*args, rc=0, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("APERTURE_")}
    e.update(env or {})
    p = subprocess.run([aperture, *args], capture_output=True, text=True, timeout=60, env=e)
    if rc is not None and p.returncode != rc:
        fail(f"aperture {' '.join(args)}: exit {p.returncode}, expected {rc}\n"
             f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def folded(text):
    return dict((ln.rsplit(" ", 1)[0], int(ln.rsplit(" ", 1)[1])) for ln in text.splitlines())


def profile_route(params):
    if params.get("query") == ["{}"]:
        return 400, json.dumps({"code": 400, "message": "the query matches several modes "
                                "(cpu, lock): add mode=\"...\" to it"}).encode()
    if params.get("query") == ["{broken}"]:
        return 200, b"<html>this is no profile</html>"
    if params.get("query") == ["{crash}"]:
        return 500, b"Internal error\x1b[31m red"
    if params.get("format") != ["pprof"]:
        return 400, b'{"code":400,"message":"want pprof"}'
    return 200, PROFILES["base" if params["from"] == ["now-2h"] else "cmp"]


srv = Server({
    "/api/v1/profile": profile_route,
    "/api/v1/labels": lambda p: (200, json.dumps({"names": ["comm", "host", "mode"]}).encode()),
    "/api/v1/label-values": lambda p: (200, json.dumps(
        {"values": [f"{p['name'][0]}-1", "evil\x1b[2J"]}).encode()),
})

# query: the route and its parameters, relative times as now-N, the profile as report writes it
res = run("query", "--server", srv.url + "/", '{mode="cpu",comm=~"ba.*"}', "--from", "-2h",
          "--until", "-1h", "--format", "folded")
check(folded(res.stdout) == folded(BASE), f"query folded: {res.stdout}")
path, params, auth = srv.requests[-1]
check(path == "/api/v1/profile" and params == {
    "query": ['{mode="cpu",comm=~"ba.*"}'], "from": ["now-2h"], "until": ["now-1h"],
    "format": ["pprof"]}, f"query request: {path} {params}")
check(auth is None, "no token was given, none must be sent")
res = run("query", '{mode="cpu"}', env={"APERTURE_SERVER": srv.url})
check(srv.requests[-1][1]["from"] == ["now-1h"] and srv.requests[-1][1]["until"] == ["now"],
      f"default range: {srv.requests[-1]}")
check("Total: 40 samples" in res.stdout, f"text by default: {res.stdout}")
for t in ("now-30m", "1733480000", "2026-12-06T14:00:00Z"):
    run("query", "--server", srv.url, "{}x", "--from", t, rc=None)
    check(srv.requests[-1][1]["from"] == [t], f"--from {t} passes as is: {srv.requests[-1]}")
pb = os.path.join(tmp, "q.pb.gz")
run("query", "--server", srv.url, "{}q", "-o", pb)
check(folded(run("report", pb, "--format", "folded", "-o", "-").stdout) == folded(CMP),
      "pprof output reads back")

# the token, from --token-file or APERTURE_TOKEN_FILE, whitespace dropped
tok = os.path.join(tmp, "tok")
with open(tok, "w") as f:
    f.write("s3cret-token\n")
run("labels", "--server", srv.url, "--token-file", tok)
check(srv.requests[-1][2] == "Bearer s3cret-token", f"token header: {srv.requests[-1][2]}")
run("labels", "--server", srv.url, env={"APERTURE_TOKEN_FILE": tok})
check(srv.requests[-1][2] == "Bearer s3cret-token", "APERTURE_TOKEN_FILE")
res = run("labels", "--server", srv.url, "--token-file", os.path.join(tmp, "missing"), rc=2)
check("token file" in res.stderr and "s3cret" not in res.stderr + res.stdout, res.stderr)

# labels: one per line, control bytes made harmless; NAME and --query sent
res = run("labels", "--server", srv.url)
check(res.stdout == "comm\nhost\nmode\n", f"labels: {res.stdout!r}")
res = run("labels", "host", "--query", '{mode="cpu"}', "--from", "-3d", "--server", srv.url)
check(res.stdout == "host-1\nevil?[2J\n", f"label values: {res.stdout!r}")
check(srv.requests[-1][0] == "/api/v1/label-values" and srv.requests[-1][1] == {
    "query": ['{mode="cpu"}'], "from": ["now-3d"], "until": ["now"], "name": ["host"]},
    f"label-values request: {srv.requests[-1]}")

# diff: two fetches (--to-from alone runs to now), deltas computed locally
n = len(srv.requests)
res = run("diff", '{mode="cpu"}', "--server", srv.url, "--from", "-2h", "--until", "-1h",
          "--to-from", "-1h", "--format", "json")
check([r[1]["from"][0] + ".." + r[1]["until"][0] for r in srv.requests[n:]] ==
      ["now-2h..now-1h", "now-1h..now"], f"diff requests: {srv.requests[n:]}")
d = json.loads(res.stdout)
fns = {f["name"]: f for f in d["functions"]}
check(d["base_total_raw"] == 20 and d["base_total"] == 40 and d["cmp_total"] == 40,
      f"diff totals: {d}")
check((fns["bar"]["base_self"], fns["bar"]["cmp_self"]) == (20, 30) and
      (fns["loop"]["base_self"], fns["loop"]["cmp_self"]) == (10, 0) and
      (fns["qux"]["base_self"], fns["qux"]["cmp_self"]) == (0, 10), f"diff functions: {fns}")
res = run("diff", '{mode="cpu"}', "--server", srv.url, "--from", "-2h", "--to-from", "-1h",
          "--to-query", '{mode="lock"}', "--absolute", "--format", "folded")
check(srv.requests[-1][1]["query"] == ['{mode="lock"}'], "--to-query")
check(folded_lines := res.stdout.splitlines(), "diff folded output")
check("bash;main;qux 0 10" in folded_lines and "py;run;loop 5 0" in folded_lines,
      f"diff folded: {folded_lines}")
svg = os.path.join(tmp, "d.svg")
run("diff", "{}q", "--server", srv.url, "--from", "-2h", "--to-from", "-1h", "-o", svg)
n = len(srv.requests)
run("diff", "{}q", "--server", srv.url, "--from", "-3h", "--until", "-2h", "--to-query", "{}r",
    "--format", "text")
check([r[1]["from"][0] + ".." + r[1]["until"][0] for r in srv.requests[n:]] ==
      ["now-3h..now-2h", "now-3h..now-2h"], f"diff range defaults: {srv.requests[n:]}")
check(open(svg).read().startswith("<?xml"), "diff svg")

# failures: the server's message (exit 1), usage (exit 2)
res = run("query", "{}", "--server", srv.url, rc=1)
check("answered 400: the query matches several modes (cpu, lock)" in res.stderr, res.stderr)
res = run("diff", "{}", "--server", srv.url, rc=1)
check("several modes" in res.stderr, res.stderr)
res = run("query", "{crash}", "--server", srv.url, rc=1)
check("answered 500: Internal error?[31m red" in res.stderr, f"non-JSON error: {res.stderr!r}")
res = run("query", "{broken}", "--server", srv.url, rc=1)
check("not a profile" in res.stderr, res.stderr)
res = run("query", "{}q", "--server", srv.url, "--value", "cpu", rc=2)
check("it has: samples" in res.stderr, res.stderr)
res = run("diff", "{}q", "--server", srv.url, "--value", "cpu", rc=1)
check("not in both profiles" in res.stderr, res.stderr)
for args in (["query"], ["query", "a", "b"], ["query", "q", "--from", "-2x"],
             ["query", "q", "--top", "0"], ["query", "q", "--format", "bmp"],
             ["query", "q", "--server", "localhost:7070"], ["diff", "q", "-o", "x.pb.gz"],
             ["diff", "q", "--max-nodes", "0"], ["labels", "a", "b"], ["query", "q", "--bogus"]):
    res = run(*args, rc=2)
    check(res.stderr.startswith(f"aperture {args[0]}: "), f"{args}: {res.stderr}")
check("query" in run("--help").stdout and "labels" in run("--help").stdout, "aperture --help")
for cmd in ("query", "diff", "labels"):
    check("Usage: aperture " + cmd in run(cmd, "--help").stdout, f"{cmd} --help")
srv.close()

# nobody listening: the URL named, exit 1
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}"
for args in (["query", "q"], ["diff", "q"], ["labels"]):
    res = run(*args, "--server", dead, rc=1)
    check(f"cannot reach the aggregator at {dead}" in res.stderr, res.stderr)
res = run("labels", rc=1, env={"APERTURE_SERVER": dead})
check(dead in res.stderr, res.stderr)

# TLS: a self-signed certificate, trusted through --ca-file only
if shutil.which("openssl"):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    tls = Server({"/api/v1/labels": lambda p: (200, b'{"names":["tls"]}')}, tls=(cert, key))
    check(run("labels", "--server", tls.url, "--ca-file", cert).stdout == "tls\n", "https")
    res = run("labels", "--server", tls.url, rc=1)
    check("--ca-file" in res.stderr, f"TLS without the CA: {res.stderr}")
    tls.close()
else:
    print("note: openssl missing, TLS not checked")

shutil.rmtree(tmp)
print("ok")
